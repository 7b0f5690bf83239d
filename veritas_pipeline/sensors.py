"""The production change sensor: production's object-change feed, turned into incremental sync runs.

Each tick reads the feed from the sensor's cursor (see `engine/changes.py`), maps the changed models to
their sync groups and requests one `incremental_sync` run of just those groups, whose config names the
changed production objects. A production deletion makes its model, and the models that reference it, be
planned whole in that run, and adds the `orphans` asset, so what vanished is reported as an orphan (and
pruned, when the policy says so). The data-quality checks are left to their own schedule: they read whole
models. The run key is derived from the changes, so a tick re-evaluated after a crash cannot start the
same work twice. Stopped by default.
"""

from __future__ import annotations

from dagster import (
    AssetCheckKey,
    AssetKey,
    DefaultSensorStatus,
    RunConfig,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from .assets import ORPHANS_ASSET, SYNC_CHECKS, GroupSyncConfig
from .engine.changes import (
    Change,
    ChangeFeed,
    FeedCursor,
    GroupScope,
    changes_key,
    deletes_synced_objects,
    scopes_for,
)
from .jobs import incremental_sync_job
from .resources import SyncResource

# The sensor daemon looks at its sensors every 5 s at most often, and skips one whose last tick started less
# than its minimum interval ago. A tick starts a moment after its loop does, so an interval of 5 s skips every
# other loop (a tick every 10 s: a change waited 9 s for its run at 100k); a shorter one ticks on every loop.
CHANGE_SENSOR_INTERVAL_SECONDS = 2


@sensor(
    name="production_changes",
    job=incremental_sync_job,
    minimum_interval_seconds=CHANGE_SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.STOPPED,
    description="Polls production's object-change feed and syncs the changed objects' groups incrementally.",
)
def production_changes(context: SensorEvaluationContext, sync: SyncResource) -> SensorResult:
    feed = ChangeFeed(sync.production.client(read_only=True, name="production"))
    if context.cursor is None:
        # Earlier history is the full sync's business: a new sensor starts at the feed's end.
        return SensorResult(skip_reason="first tick: starting at the end of production's change feed",
                            cursor=feed.end().to_json())
    changes, cursor = feed.read(FeedCursor.from_json(context.cursor))
    scopes = scopes_for(changes)
    if not scopes:
        reason = "no production change" if not changes else f"{len(changes)} changes, none to synced models"
        return SensorResult(skip_reason=reason, cursor=cursor.to_json())
    return SensorResult(run_requests=[incremental_run(changes, scopes, cursor)], cursor=cursor.to_json())


def incremental_run(changes: list[Change], scopes: dict[str, GroupScope], cursor: FeedCursor) -> RunRequest:
    orphans = [AssetKey(ORPHANS_ASSET)] if deletes_synced_objects(changes) else []
    return RunRequest(
        run_key=f"changes-{changes_key(changes)}",
        asset_selection=[AssetKey(group) for group in scopes] + orphans,
        asset_check_keys=[AssetCheckKey(AssetKey(group), check) for group in scopes for check in SYNC_CHECKS],
        run_config=RunConfig(ops={
            group: GroupSyncConfig(changed_ids={label: sorted(ids) for label, ids in scope.changed_ids.items()
                                                if label not in scope.whole_models},
                                   whole_models=sorted(scope.whole_models))
            for group, scope in scopes.items()}),
        tags={"veritas/trigger": "production-changes", "veritas/changes": str(len(changes)),
              "veritas/changes-until": cursor.time.isoformat()},
    )
