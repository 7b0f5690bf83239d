"""The schema as the pipeline created it before migrations: runs, writes, conflicts, adoptions.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "sync_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("group_name", sa.String(64), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("succeeded", sa.Boolean),
        sa.Column("summary", sa.JSON),
    )
    op.create_table(
        "sync_writes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("group_name", sa.String(64), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("object_id", sa.String(36), nullable=False),
        sa.Column("object_name", sa.Text),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("changes", sa.JSON),
        sa.Column("succeeded", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
    )
    for column in ("run_id", "model", "object_id"):
        op.create_index(f"ix_sync_writes_{column}", "sync_writes", [column])
    op.create_table(
        "sync_conflicts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("group_name", sa.String(64), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("object_id", sa.String(36), nullable=False),
        sa.Column("object_name", sa.Text),
        sa.Column("field", sa.String(100), nullable=False),
        sa.Column("production_value", sa.Text),
        sa.Column("veritas_value", sa.Text),
        sa.Column("rule", sa.Text, nullable=False),
    )
    op.create_index("ix_sync_conflicts_run_id", "sync_conflicts", ["run_id"])
    op.create_table(
        "sync_adoptions",
        sa.Column("model", sa.String(100), primary_key=True),
        sa.Column("production_id", sa.String(36), primary_key=True),
        sa.Column("veritas_id", sa.String(36), nullable=False),
    )


def downgrade() -> None:
    for table in ("sync_adoptions", "sync_conflicts", "sync_writes", "sync_runs"):
        op.drop_table(table)
