"""deployments (arms, events, rollout ticks) and sweep periods

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 05:13:34.851934
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import storage.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sweep_periods",
        sa.Column("sweep", sa.String(length=64), nullable=False),
        sa.Column("period", sa.BigInteger(), nullable=False),
        sa.Column("claimed_at", storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("sweep", "period", name=op.f("pk_sweep_periods")),
    )

    op.create_table(
        "deployments",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("strategy", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("stable_version_id", sa.Integer(), nullable=True),
        sa.Column("candidate_version_id", sa.Integer(), nullable=True),
        sa.Column("previous_version_id", sa.Integer(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("step_started_at", storage.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("started_at", storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("memory", JSON, nullable=False),
        sa.Column("rollout", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["candidate_version_id"],
            ["model_versions.id"],
            name=op.f("fk_deployments_candidate_version_id_model_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["previous_version_id"],
            ["model_versions.id"],
            name=op.f("fk_deployments_previous_version_id_model_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["stable_version_id"],
            ["model_versions.id"],
            name=op.f("fk_deployments_stable_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
        sa.UniqueConstraint("model_name", name=op.f("uq_deployments_model_name")),
    )

    op.create_table(
        "deployment_arms",
        sa.Column("deployment_id", BIG_ID, nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_deployment_arms_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_deployment_arms_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("deployment_id", "role", name=op.f("pk_deployment_arms")),
    )

    op.create_table(
        "deployment_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("deployment_id", BIG_ID, nullable=False),
        sa.Column("rollout", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("at", storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.Column("arms", JSON, nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_deployment_events_deployment_id_deployments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_events")),
    )
    with op.batch_alter_table("deployment_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deployment_events_deployment_id_id", ["deployment_id", "id"], unique=False
        )

    op.create_table(
        "rollout_ticks",
        sa.Column("deployment_id", BIG_ID, nullable=False),
        sa.Column("tick", sa.String(length=64), nullable=False),
        sa.Column("at", storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_rollout_ticks_deployment_id_deployments"),
        ),
        sa.PrimaryKeyConstraint("deployment_id", "tick", name=op.f("pk_rollout_ticks")),
    )


def downgrade() -> None:
    op.drop_table("rollout_ticks")
    with op.batch_alter_table("deployment_events", schema=None) as batch_op:
        batch_op.drop_index("ix_deployment_events_deployment_id_id")

    op.drop_table("deployment_events")
    op.drop_table("deployment_arms")
    op.drop_table("deployments")
    op.drop_table("sweep_periods")
