"""datasets unique per name and source

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 14:46:49.448963
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f("uq_datasets_name_source_sha256"), ["name", "source_sha256"]
        )


def downgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_datasets_name_source_sha256"), type_="unique")
