"""know connected build agents

Revision ID: a87c43b78ba2
Revises: 3c1d0e5a7b21
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a87c43b78ba2"
down_revision: str | None = "3c1d0e5a7b21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "build_agent",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("pool", sa.String(length=64), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("last_seen_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_build_agent")),
    )
    with op.batch_alter_table("build_agent", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_build_agent__last_seen_at"), ["last_seen_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("build_agent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_build_agent__last_seen_at"))
    op.drop_table("build_agent")
