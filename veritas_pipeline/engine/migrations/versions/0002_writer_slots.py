"""Who holds the writer slot of a VeritasBot, and who held it: the single-writer rule's record.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "writer_slots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("slot", sa.String(200), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_writer_slots_slot", "writer_slots", ["slot"])


def downgrade() -> None:
    op.drop_table("writer_slots")
