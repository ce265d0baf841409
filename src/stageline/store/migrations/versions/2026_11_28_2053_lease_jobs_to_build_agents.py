"""lease jobs to build agents

Revision ID: f89b04cc7f33
Revises: 7b3ccd537dac
Create Date: 2026-11-28 20:56:19.400402
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f89b04cc7f33"
down_revision: str | None = "7b3ccd537dac"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "artifact",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("job_run_id", sa.String(length=32), nullable=False),
        sa.Column("step_run_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["pipeline_run.id"],
            name=op.f("fk_artifact__run_id__pipeline_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifact")),
        sa.UniqueConstraint("run_id", "name", name=op.f("uq_artifact__run_id_name")),
    )
    with op.batch_alter_table("artifact", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_artifact__run_id"), ["run_id"], unique=False)

    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=8), server_default="person", nullable=False)
        )

    with op.batch_alter_table("job_run", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pool", sa.String(length=64), server_default="default", nullable=False)
        )
        batch_op.add_column(sa.Column("labels", sa.JSON(), server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("dispatch_id", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("dispatch_count", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("lease_expires_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("events_applied", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("deadline_at", sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f("ix_job_run__deadline_at"), ["deadline_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_job_run__lease_expires_at"), ["lease_expires_at"], unique=False
        )

    with op.batch_alter_table("pipeline_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stop_requested_at", sa.BigInteger(), nullable=True))

    with op.batch_alter_table("step_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outputs", sa.JSON(), server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("approvals", sa.JSON(), server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("deadline_at", sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f("ix_step_run__deadline_at"), ["deadline_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("step_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_step_run__deadline_at"))
        batch_op.drop_column("deadline_at")
        batch_op.drop_column("approvals")
        batch_op.drop_column("outputs")

    with op.batch_alter_table("pipeline_run", schema=None) as batch_op:
        batch_op.drop_column("stop_requested_at")

    with op.batch_alter_table("job_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_run__lease_expires_at"))
        batch_op.drop_index(batch_op.f("ix_job_run__deadline_at"))
        batch_op.drop_column("deadline_at")
        batch_op.drop_column("events_applied")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("dispatch_count")
        batch_op.drop_column("dispatch_id")
        batch_op.drop_column("labels")
        batch_op.drop_column("pool")

    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("kind")

    with op.batch_alter_table("artifact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_artifact__run_id"))

    op.drop_table("artifact")
