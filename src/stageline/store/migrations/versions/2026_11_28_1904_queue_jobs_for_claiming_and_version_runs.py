"""queue jobs for claiming and version runs

Revision ID: 7b3ccd537dac
Revises: 7d60677338e0
Create Date: 2026-11-28 19:04:21.725913
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7b3ccd537dac"
down_revision: str | None = "7d60677338e0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queued_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.BigInteger(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_job_run__status_queued_at"), ["status", "queued_at"], unique=False
        )

    with op.batch_alter_table("pipeline_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="1"))

    with op.batch_alter_table("pipeline", schema=None) as batch_op:
        batch_op.add_column(sa.Column("latest_run_revision", sa.Integer(), nullable=True))
    op.execute("UPDATE pipeline SET latest_run_revision = 1 WHERE latest_run_id IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("pipeline", schema=None) as batch_op:
        batch_op.drop_column("latest_run_revision")

    with op.batch_alter_table("pipeline_run", schema=None) as batch_op:
        batch_op.drop_column("revision")

    with op.batch_alter_table("job_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_run__status_queued_at"))
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("queued_at")
