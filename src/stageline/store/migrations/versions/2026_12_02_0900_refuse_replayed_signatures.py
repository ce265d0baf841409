"""refuse replayed signatures

Revision ID: 5e0c2b7d9a14
Revises: a87c43b78ba2
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e0c2b7d9a14"
down_revision: str | None = "a87c43b78ba2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "used_signature",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_used_signature")),
    )
    with op.batch_alter_table("used_signature", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_used_signature__expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("used_signature", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_used_signature__expires_at"))
    op.drop_table("used_signature")
