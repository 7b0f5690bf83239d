"""The write-ahead journal: each write batch's intent, recorded before it is sent and closed with its outcome.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "write_journal",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("group_name", sa.String(64), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("objects", sa.JSON, nullable=False),
        sa.Column("body_digest", sa.String(64), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.String(32)),
    )
    op.create_index("ix_write_journal_run_id", "write_journal", ["run_id"])
    op.create_index("ix_write_journal_closed_at", "write_journal", ["closed_at"])


def downgrade() -> None:
    op.drop_table("write_journal")
