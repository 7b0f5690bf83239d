"""Lookup matches kept with the row snapshot: which VeritasBot object stands for a production object of a
lookup model, and the objects on each side its natural key was read from.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "lookup_matches",
        sa.Column("model", sa.String(100), primary_key=True),
        sa.Column("production_id", sa.String(36), primary_key=True),
        sa.Column("veritas_id", sa.String(36), nullable=False),
        sa.Column("depends_on", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("lookup_matches")
