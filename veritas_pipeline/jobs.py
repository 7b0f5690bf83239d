"""Jobs: the full sync, its dry run, and one job per group for targeted runs."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from .assets import SYNC_ASSET_GROUP
from .engine.registry import GROUPS

# Runs that write to VeritasBot carry this tag; dagster.yaml lets one such run at a time proceed.
WRITER_TAG = {"veritas/writer": "veritasbot"}

all_groups = AssetSelection.groups(SYNC_ASSET_GROUP)


def dry_run_config(groups=GROUPS) -> dict:
    return {"ops": {group: {"config": {"dry_run": True}} for group in groups}}


full_sync_job = define_asset_job(
    "full_sync", selection=all_groups, tags=WRITER_TAG,
    description="Every sync group, in dependency order: production Nautobot to VeritasBot.")

full_sync_dry_run_job = define_asset_job(
    "full_sync_dry_run", selection=all_groups, config=dry_run_config(),
    description="The plan of a full sync, reported per group; writes nothing.")

jobs = [full_sync_job, full_sync_dry_run_job]
