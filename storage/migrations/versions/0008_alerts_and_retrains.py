"""alerts, webhook deliveries, retrain policies and retrains

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 08:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import storage.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = storage.models.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alert_states",
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("state", JSON, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("model_name", "kind", name=op.f("pk_alert_states")),
    )
    op.create_table(
        "retrain_policies",
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("model_name", name=op.f("pk_retrain_policies")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("numbers", JSON, nullable=False),
        sa.Column("check_job_id", sa.String(length=64), nullable=True),
        sa.Column("version_id", sa.Integer(), nullable=True),
        sa.Column("at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["check_job_id"], ["jobs.id"], name=op.f("fk_alerts_check_job_id_jobs")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"], ["model_versions.id"], name=op.f("fk_alerts_version_id_model_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("check_job_id", "kind", name=op.f("uq_alerts_check_job_id_kind")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_model_at", ["model_name", "at"], unique=False)

    op.create_table(
        "retrains",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("trigger_key", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("numbers", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("check_job_id", sa.String(length=64), nullable=True),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("coalesced_into", BIG_ID, nullable=True),
        sa.Column("from_version_id", sa.Integer(), nullable=True),
        sa.Column("version_id", sa.Integer(), nullable=True),
        sa.Column("decision", JSON, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("decided_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(
            ["check_job_id"], ["jobs.id"], name=op.f("fk_retrains_check_job_id_jobs")
        ),
        sa.ForeignKeyConstraint(
            ["coalesced_into"], ["retrains.id"], name=op.f("fk_retrains_coalesced_into_retrains")
        ),
        sa.ForeignKeyConstraint(
            ["from_version_id"],
            ["model_versions.id"],
            name=op.f("fk_retrains_from_version_id_model_versions"),
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_retrains_job_id_jobs")),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_retrains_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrains")),
        sa.UniqueConstraint("trigger_key", name=op.f("uq_retrains_trigger_key")),
    )
    with op.batch_alter_table("retrains", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_retrains_job_id"), ["job_id"], unique=False)
        batch_op.create_index(
            "ix_retrains_model_created", ["model_name", "created_at"], unique=False
        )
        batch_op.create_index(
            "uq_retrains_open_model",
            ["model_name"],
            unique=True,
            postgresql_where=sa.text("status = 'open'"),
            sqlite_where=sa.text("status = 'open'"),
        )

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("alert_id", BIG_ID, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", WHEN, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("delivered_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_webhook_deliveries_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_alert_id"), ["alert_id"], unique=False
        )
        batch_op.create_index(
            "ix_webhook_deliveries_status", ["status", "next_attempt_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_status")
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_alert_id"))

    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("retrains", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_retrains_open_model",
            postgresql_where=sa.text("status = 'open'"),
            sqlite_where=sa.text("status = 'open'"),
        )
        batch_op.drop_index("ix_retrains_model_created")
        batch_op.drop_index(batch_op.f("ix_retrains_job_id"))

    op.drop_table("retrains")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_model_at")

    op.drop_table("alerts")
    op.drop_table("retrain_policies")
    op.drop_table("alert_states")
