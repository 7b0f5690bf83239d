"""Jobs: the full sync, its dry run, the change sensor's incremental runs, and the data-quality checks alone."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from .assets import ORPHANS_ASSET, SYNC_ASSET_GROUP
from .checks import QUALITY_CHECK_KEYS
from .engine.registry import GROUPS

# Runs that write to VeritasBot carry this tag; dagster.yaml dequeues one such run at a time.
WRITER_TAG = {"veritas/writer": "veritasbot"}
# The change sensor's cursor moves past the changes a run was asked to sync: a failed run is retried (its
# writes are idempotent), from the start, so that a passing outage does not leave changes behind until the
# next full sync. dagster.yaml enables run retries; only this tag asks for them.
SENSOR_RUN_RETRIES = {"dagster/max_retries": "3", "dagster/retry_strategy": "ALL_STEPS"}

all_groups = AssetSelection.groups(SYNC_ASSET_GROUP)


def dry_run_config(assets=(*GROUPS, ORPHANS_ASSET)) -> dict:
    return {"ops": {asset: {"config": {"dry_run": True}} for asset in assets}}


full_sync_job = define_asset_job(
    "full_sync", selection=all_groups, tags=WRITER_TAG,
    description="Every sync group, in dependency order: production Nautobot to VeritasBot.")

# A dry run leaves VeritasBot as it is: judging it would only repeat the last run's verdict, and a blocking
# failure would stop the downstream groups' plans.
full_sync_dry_run_job = define_asset_job(
    "full_sync_dry_run", selection=all_groups - AssetSelection.checks(*QUALITY_CHECK_KEYS),
    config=dry_run_config(),
    description="The plan of a full sync, reported per group; writes nothing.")

incremental_sync_job = define_asset_job(
    "incremental_sync", selection=all_groups, tags={**WRITER_TAG, **SENSOR_RUN_RETRIES},
    description="The production change sensor's runs: only the changed production objects, in the groups they "
                "belong to (each run's config names them). Without that config, a full sync.")

data_quality_job = define_asset_job(
    "data_quality", selection=AssetSelection.checks(*QUALITY_CHECK_KEYS),
    description="The data-quality checks of every group on their own, on the last full sync's row snapshot "
                "brought up to date through both instances' change feeds; no sync, writes nothing to Nautobot.")

jobs = [full_sync_job, full_sync_dry_run_job, incremental_sync_job, data_quality_job]
