"""start runs from webhooks

Revision ID: 27d45c6b7b7a
Revises: 5e0c2b7d9a14
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "27d45c6b7b7a"
down_revision: str | None = "5e0c2b7d9a14"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pipeline_hook",
        sa.Column("hook_id", sa.String(length=32), nullable=False),
        sa.Column("pipeline_id", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipeline.id"],
            name=op.f("fk_pipeline_hook__pipeline_id__pipeline"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("hook_id", name=op.f("pk_pipeline_hook")),
    )
    with op.batch_alter_table("pipeline_hook", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pipeline_hook__pipeline_id"), ["pipeline_id"], unique=False
        )
    op.create_table(
        "webhook_delivery",
        sa.Column("hook_id", sa.String(length=32), nullable=False),
        sa.Column("delivery_id", sa.String(length=128), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("hook_id", "delivery_id", name=op.f("pk_webhook_delivery")),
    )
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_delivery__received_at"), ["received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_delivery__received_at"))
    op.drop_table("webhook_delivery")
    with op.batch_alter_table("pipeline_hook", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pipeline_hook__pipeline_id"))
    op.drop_table("pipeline_hook")
