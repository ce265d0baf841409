"""forget access key lockouts

Failed signatures make only the failing client address wait (`auth.backoff`); nothing has read
or written an access key's `failed_signatures` and `locked_until` since.

Revision ID: 7c3a9e5d1f24
Revises: 4f2d8c61b7e3
Create Date: 2026-12-05 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c3a9e5d1f24"
down_revision: str | None = "4f2d8c61b7e3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("access_key", schema=None) as batch_op:
        batch_op.drop_column("locked_until")
        batch_op.drop_column("failed_signatures")


def downgrade() -> None:
    with op.batch_alter_table("access_key", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failed_signatures", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("locked_until", sa.BigInteger(), nullable=True))
