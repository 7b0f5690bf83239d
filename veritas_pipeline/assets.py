"""One Dagster asset per sync group, derived from the registry.

Each asset's upstream groups are the groups its models reference; its materialization carries the
per-model counts, the plan, failures with Nautobot's own text, conflicts, pending references, adoptions
(with the precedence rule each got), orphans and the phase durations. A run in which any write failed
fails the blocking `write_failures` check, so it is never shown green and downstream groups do not write
on a broken base. A production object without a VeritasBot counterpart of its own (two production objects
claim one VeritasBot object, or several VeritasBot objects match) fails the `identity` check: an error,
but not blocking, since that object was never written and whatever references it waits as pending.

A run whose config names changed production objects (the change sensor's runs) is incremental: it reads
and syncs only those objects, and plans whole only the models listed in `whole_models`.
"""

from typing import Optional

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Config,
    MaterializeResult,
    asset,
)
from pydantic import Field

from .engine.changes import GroupScope
from .engine.registry import GROUPS, group_dependencies, models_of_group
from .metadata import Key, failure_table, group_metadata, orphan_metadata
from .metrics import FULL, INCREMENTAL, PARTIAL, RunMetrics
from .resources import SyncResource

SYNC_ASSET_GROUP = "veritas_sync"
WRITE_FAILURES_CHECK = "write_failures"
IDENTITY_CHECK = "identity"
SYNC_CHECKS = (WRITE_FAILURES_CHECK, IDENTITY_CHECK)  # the checks each group asset reports itself


class GroupSyncConfig(Config):
    dry_run: bool = Field(default=False, description="Compute and report the plan; write nothing")
    changed_ids: Optional[dict[str, list[str]]] = Field(
        default=None, description="Incremental run (set by the production change sensor): model label -> the "
                                  "production ids to sync; the group's other models are skipped. Unset: every model")
    whole_models: list[str] = Field(
        default=[], description="Incremental run: models planned whole, orphans included (production deletions)")

    @property
    def incremental(self) -> bool:
        return self.changed_ids is not None or bool(self.whole_models)

    def production_ids(self, group: str) -> dict[str, set[str] | None] | None:
        """The engine's scope for this group: None for a full sync of the group."""
        if not self.incremental:
            return None
        scope = GroupScope({label: set(ids) for label, ids in (self.changed_ids or {}).items()}, set(self.whole_models))
        unknown = set(scope.production_ids()) - {spec.label for spec in models_of_group(group)}
        if unknown:
            raise ValueError(f"group {group!r} has no model {', '.join(sorted(unknown))}")
        return scope.production_ids()


def run_metrics(context, sync: SyncResource) -> RunMetrics:
    """The run's metrics: a dry run pushes nothing; a run of the change sensor is incremental; else a
    whole run (every group and the orphans step) is full, the only kind whose outcome is a full sync's,
    and a run of some groups is partial, so that it never replaces the last full sync's figures."""
    configs = [(op or {}).get("config") or {} for op in ((context.run.run_config or {}).get("ops") or {}).values()]
    steps = context.run.step_keys_to_execute
    steps = steps if steps is not None else [node.name for node in context.job_def.nodes]
    whole_run = {*GROUPS, ORPHANS_ASSET} <= set(steps)  # the orphans step alone is not a full sync
    if any(config.get("dry_run") for config in configs):
        mode = None
    elif any(config.get("changed_ids") is not None or config.get("whole_models") for config in configs):
        mode = INCREMENTAL
    else:
        mode = FULL if whole_run else PARTIAL
    return sync.metrics(context.run.run_id, mode, whole_run)


def _description(group: str) -> str:
    models = ", ".join(spec.label for spec in models_of_group(group))
    return f"Sync group '{group}' from production Nautobot to VeritasBot: {models}."


def build_group_asset(group: str):
    @asset(
        name=group,
        group_name=SYNC_ASSET_GROUP,
        deps=[AssetKey(upstream) for upstream in group_dependencies(group)],
        description=_description(group),
        kinds={"nautobot", "python"},
        check_specs=[AssetCheckSpec(WRITE_FAILURES_CHECK, asset=group, blocking=True,
                                    description="Every object the group tried to write was written"),
                     AssetCheckSpec(IDENTITY_CHECK, asset=group, blocking=False,
                                    description="Every production object of the group has a VeritasBot "
                                                "counterpart of its own")],
        metadata={"models": [spec.label for spec in models_of_group(group)]},
    )
    def _sync_group(context: AssetExecutionContext, config: GroupSyncConfig, sync: SyncResource) -> MaterializeResult:
        # The metrics come first: whatever fails after this (the writer slot, an unreachable state
        # database, a bad policy file, the sync itself) is pushed as the group's error outcome.
        metrics = run_metrics(context, sync)
        engine = None
        try:
            if not config.dry_run:
                sync.hold_writer_slot(context.run.run_id)
            engine = sync.engine(context.run.run_id, incremental=config.incremental, whole_run=metrics.whole_run)
            report = engine.sync_group(group, dry_run=config.dry_run, production_ids=config.production_ids(group))
        except Exception:
            metrics.group_error(group, _last_success(engine, group))
            raise
        metrics.group_done(report, _last_success(engine, group))
        for failure in report.failures:
            context.log.error(f"{failure.label} {failure.name!r} ({failure.object_id}) {failure.action} failed: "
                              f"{failure.error}")
        context.log.info(f"{group}: created {report.total('created')}, updated {report.total('updated')}, "
                         f"unchanged {report.total('unchanged')}, failed {report.total('failed')}")
        links = sync.links()
        checks = [AssetCheckResult(check_name=name, passed=not failures, severity=AssetCheckSeverity.ERROR,
                                   metadata={Key.FAILED: len(failures),
                                             **({Key.FAILURES: failure_table(report, links, failures)}
                                                if failures else {})})
                  for name, failures in ((WRITE_FAILURES_CHECK, report.write_failures),
                                         (IDENTITY_CHECK, report.identity_failures))]
        return MaterializeResult(metadata={**group_metadata(report, links), Key.INCREMENTAL: config.incremental},
                                 check_results=checks)

    return _sync_group


def _last_success(engine, group: str):
    """The group's last success in the state database; None without an engine (it could not be built)."""
    if engine is None or not engine.state:
        return None
    try:
        return engine.state.last_successful_run(group)
    except Exception:  # noqa: BLE001 - the state database failing must not hide the error being reported
        return None


group_assets = [build_group_asset(group) for group in GROUPS]

ORPHANS_ASSET = "orphans"


class OrphansConfig(Config):
    dry_run: bool = Field(default=False, description="Report orphans; delete nothing even if pruning is on")


@asset(
    name=ORPHANS_ASSET,
    group_name=SYNC_ASSET_GROUP,
    deps=[AssetKey(group) for group in GROUPS],
    description="Objects tagged by the sync that production no longer has: reported every full run; deleted "
                "only when the policy turns pruning on (children first, capped per run). Runs only after "
                "every group succeeded, on a full read of production.",
    kinds={"nautobot", "python"},
)
def orphans(context: AssetExecutionContext, config: OrphansConfig, sync: SyncResource) -> MaterializeResult:
    metrics = run_metrics(context, sync)  # first, so that a failing slot or engine still pushes the failure
    try:
        if not config.dry_run:
            sync.hold_writer_slot(context.run.run_id)
        engine = sync.engine(context.run.run_id)
        report = engine.prune_orphans(dry_run=config.dry_run)
        # The last step of a full sync: what it planned from and wrote becomes the row snapshot that the checks
        # between syncs and the next full sync start from.
        if engine.save_snapshot():
            context.log.info("row snapshot of both instances stored for the checks between syncs and the next full sync")
    except Exception:
        metrics.push_run(succeeded=False)
        raise
    deleted: dict[str, int] = {}
    for orphan in report.deleted:
        deleted[orphan.label] = deleted.get(orphan.label, 0) + 1
    metrics.deletes_done(deleted)
    metrics.push_run(succeeded=True)
    for orphan, reason in report.kept:
        context.log.warning(f"orphan {orphan.label} {orphan.name!r} ({orphan.veritas_id}) kept: {reason}")
    if report.skipped:
        context.log.info(f"nothing pruned: {report.skipped}")
    return MaterializeResult(metadata=orphan_metadata(report, sync.links()))
