"""The row snapshot the data-quality checks start from between syncs, and each instance's feed cursor.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "row_snapshots",
        sa.Column("side", sa.String(16), primary_key=True),
        sa.Column("model", sa.String(100), primary_key=True),
        sa.Column("object_id", sa.String(36), primary_key=True),
        sa.Column("row", sa.JSON, nullable=False),
    )
    op.create_table(
        "snapshot_models",
        sa.Column("side", sa.String(16), primary_key=True),
        sa.Column("model", sa.String(100), primary_key=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "snapshot_feeds",
        sa.Column("side", sa.String(16), primary_key=True),
        sa.Column("cursor", sa.Text, nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("snapshot_feeds")
    op.drop_table("snapshot_models")
    op.drop_table("row_snapshots")
