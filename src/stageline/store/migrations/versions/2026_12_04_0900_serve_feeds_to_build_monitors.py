"""serve feeds to build monitors

Revision ID: 4f2d8c61b7e3
Revises: 9b4e1f6c2d80
Create Date: 2026-12-04 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4f2d8c61b7e3"
down_revision: str | None = "9b4e1f6c2d80"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BRANCH_OF_RUN = {
    "sqlite": "json_extract(build_params, '$.target_branch')",
    "postgresql": "build_params->>'target_branch'",
}
"""The branch a run built, read from its JSON `build_params` in each dialect's words."""


def upgrade() -> None:
    op.create_table(
        "feed_token",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("note", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_feed_token__project_id__project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_token")),
    )
    with op.batch_alter_table("feed_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feed_token__project_id"), ["project_id"], unique=False)
    with op.batch_alter_table("pipeline_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("branch", sa.String(length=255), nullable=True))
    branch = _BRANCH_OF_RUN[op.get_bind().dialect.name]
    op.execute(
        f"UPDATE pipeline_run SET branch = {branch}"
        f" WHERE build_params IS NOT NULL AND length({branch}) BETWEEN 1 AND 255"
    )
    with op.batch_alter_table("pipeline_run", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pipeline_run__pipeline_id_branch_run_number"),
            ["pipeline_id", "branch", "run_number"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("pipeline_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pipeline_run__pipeline_id_branch_run_number"))
        batch_op.drop_column("branch")
    with op.batch_alter_table("feed_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feed_token__project_id"))
    op.drop_table("feed_token")
