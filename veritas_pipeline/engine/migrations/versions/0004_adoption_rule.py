"""Which precedence rule applied to each adopted object (discovery-owned, or following production).

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.batch_alter_table("sync_adoptions") as table:
        table.add_column(sa.Column("rule", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("sync_adoptions") as table:
        table.drop_column("rule")
