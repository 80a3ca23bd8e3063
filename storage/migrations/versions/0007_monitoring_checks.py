"""monitoring checks, and a per-deployment check interval

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 05:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import storage.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = storage.models.UtcDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("check_interval_s", sa.Double(), nullable=True))
    op.create_table(
        "monitoring_checks",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("checked_at", WHEN, nullable=False),
        sa.Column("window_start", WHEN, nullable=True),
        sa.Column("window_end", WHEN, nullable=True),
        sa.Column("window_rows", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("health_score", sa.Double(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("drifted", sa.Boolean(), nullable=False),
        sa.Column("result", JSON, nullable=False),
        sa.Column("report_sha256", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_monitoring_checks_job_id_jobs")
        ),
        sa.ForeignKeyConstraint(
            ["report_sha256"],
            ["artifacts.sha256"],
            name=op.f("fk_monitoring_checks_report_sha256_artifacts"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_monitoring_checks_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_checks")),
        sa.UniqueConstraint("job_id", name=op.f("uq_monitoring_checks_job_id")),
    )
    with op.batch_alter_table("monitoring_checks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_monitoring_checks_model_checked", ["model_name", "checked_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_monitoring_checks_version_id"), ["version_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("monitoring_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitoring_checks_version_id"))
        batch_op.drop_index("ix_monitoring_checks_model_checked")
    op.drop_table("monitoring_checks")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("check_interval_s")
