"""Lookup matches keep the natural key both objects share: a full sync or the checks planned from the row
snapshot compute a cable's key without reading its ends on either side.

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    with op.batch_alter_table("lookup_matches") as table:
        table.add_column(sa.Column("natural_key", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lookup_matches") as table:
        table.drop_column("natural_key")
