"""registry: aliases with history, version events, prediction files, outcomes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 02:03:02.419782
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outcomes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("observed_at", storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("writes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcomes")),
        sa.UniqueConstraint(
            "model_name",
            "subject_kind",
            "subject",
            name=op.f("uq_outcomes_model_name_subject_kind_subject"),
        ),
    )
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outcomes_model_observed", ["model_name", "observed_at"], unique=False
        )

    op.create_table(
        "prediction_files",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("hour", storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("first_at", storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_at", storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("batch_id", sa.String(length=100), nullable=False),
        sa.Column("created_at", storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_files")),
        sa.UniqueConstraint("batch_id", name=op.f("uq_prediction_files_batch_id")),
    )
    with op.batch_alter_table("prediction_files", schema=None) as batch_op:
        batch_op.create_index(
            "ix_prediction_files_model_hour", ["model_name", "hour"], unique=False
        )

    op.create_table(
        "alias_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("from_version_id", sa.Integer(), nullable=True),
        sa.Column("to_version_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["from_version_id"],
            ["model_versions.id"],
            name=op.f("fk_alias_events_from_version_id_model_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["to_version_id"],
            ["model_versions.id"],
            name=op.f("fk_alias_events_to_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alias_events")),
        sa.UniqueConstraint(
            "model_name",
            "alias",
            "revision",
            name=op.f("uq_alias_events_model_name_alias_revision"),
        ),
    )
    with op.batch_alter_table("alias_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_alias_events_model_alias_at", ["model_name", "alias", "at"], unique=False
        )

    op.create_table(
        "model_aliases",
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_aliases_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("model_name", "alias", name=op.f("pk_model_aliases")),
    )
    with op.batch_alter_table("model_aliases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_aliases_version_id"), ["version_id"], unique=False
        )

    op.create_table(
        "version_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_version_events_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_version_events")),
    )
    with op.batch_alter_table("version_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_version_events_version_id"), ["version_id"], unique=False
        )

    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("artifact_hmac", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("artifact_hmac")

    with op.batch_alter_table("version_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_version_events_version_id"))

    op.drop_table("version_events")
    with op.batch_alter_table("model_aliases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_aliases_version_id"))

    op.drop_table("model_aliases")
    with op.batch_alter_table("alias_events", schema=None) as batch_op:
        batch_op.drop_index("ix_alias_events_model_alias_at")

    op.drop_table("alias_events")
    with op.batch_alter_table("prediction_files", schema=None) as batch_op:
        batch_op.drop_index("ix_prediction_files_model_hour")

    op.drop_table("prediction_files")
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.drop_index("ix_outcomes_model_observed")

    op.drop_table("outcomes")
