"""quality reports; dataset lineage (parent, fitted pipeline)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 16:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import storage.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "quality_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("json_sha256", sa.String(length=64), nullable=False),
        sa.Column("html_sha256", sa.String(length=64), nullable=False),
        sa.Column("scores", JSON, nullable=False),
        sa.Column("as_of", storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_at", storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_quality_reports_dataset_id_datasets")
        ),
        sa.ForeignKeyConstraint(
            ["html_sha256"],
            ["artifacts.sha256"],
            name=op.f("fk_quality_reports_html_sha256_artifacts"),
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_quality_reports_job_id_jobs")
        ),
        sa.ForeignKeyConstraint(
            ["json_sha256"],
            ["artifacts.sha256"],
            name=op.f("fk_quality_reports_json_sha256_artifacts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_reports")),
        sa.UniqueConstraint("job_id", name=op.f("uq_quality_reports_job_id")),
    )
    with op.batch_alter_table("quality_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_quality_reports_dataset_id"), ["dataset_id"], unique=False
        )
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("pipeline_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("lineage", JSON, nullable=True))
        batch_op.create_index(batch_op.f("ix_datasets_parent_id"), ["parent_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_datasets_parent_id_datasets"), "datasets", ["parent_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_datasets_pipeline_sha256_artifacts"),
            "artifacts",
            ["pipeline_sha256"],
            ["sha256"],
        )


def downgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_datasets_pipeline_sha256_artifacts"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("fk_datasets_parent_id_datasets"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_datasets_parent_id"))
        batch_op.drop_column("lineage")
        batch_op.drop_column("pipeline_sha256")
        batch_op.drop_column("parent_id")
    with op.batch_alter_table("quality_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quality_reports_dataset_id"))
    op.drop_table("quality_reports")
