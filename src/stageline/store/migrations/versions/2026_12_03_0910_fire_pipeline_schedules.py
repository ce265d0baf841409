"""fire pipeline schedules

Revision ID: 9b4e1f6c2d80
Revises: 27d45c6b7b7a
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9b4e1f6c2d80"
down_revision: str | None = "27d45c6b7b7a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pipeline_schedule",
        sa.Column("pipeline_id", sa.String(length=32), nullable=False),
        sa.Column("schedule_uuid", sa.String(length=64), nullable=False),
        sa.Column("next_fire_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipeline.id"],
            name=op.f("fk_pipeline_schedule__pipeline_id__pipeline"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pipeline_id", "schedule_uuid", name=op.f("pk_pipeline_schedule")),
    )
    with op.batch_alter_table("pipeline_schedule", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pipeline_schedule__next_fire_at"), ["next_fire_at"], unique=False
        )
    op.create_table(
        "schedule_fire",
        sa.Column("pipeline_id", sa.String(length=32), nullable=False),
        sa.Column("schedule_uuid", sa.String(length=64), nullable=False),
        sa.Column("slot_at", sa.BigInteger(), nullable=False),
        sa.Column("fired_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipeline.id"],
            name=op.f("fk_schedule_fire__pipeline_id__pipeline"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "pipeline_id", "schedule_uuid", "slot_at", name=op.f("pk_schedule_fire")
        ),
    )
    op.create_table(
        "leader_lease",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leader_lease")),
    )


def downgrade() -> None:
    op.drop_table("leader_lease")
    op.drop_table("schedule_fire")
    with op.batch_alter_table("pipeline_schedule", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pipeline_schedule__next_fire_at"))
    op.drop_table("pipeline_schedule")
