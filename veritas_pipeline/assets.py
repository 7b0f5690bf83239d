"""One Dagster asset per sync group, derived from the registry.

Each asset's upstream groups are the groups its models reference; its materialization carries the
per-model counts, the plan, failures with Nautobot's own text, conflicts, pending references, orphans
and the phase durations. A run in which any object failed fails the blocking `write_failures` check, so
it is never shown green and downstream groups do not write on a broken base.
"""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from .engine.registry import GROUPS, group_dependencies, models_of_group
from .metadata import failure_table, group_metadata
from .resources import SyncResource

SYNC_ASSET_GROUP = "veritas_sync"
WRITE_FAILURES_CHECK = "write_failures"


class GroupSyncConfig(Config):
    dry_run: bool = Field(default=False, description="Compute and report the plan; write nothing")


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
                                    description="Every object the group tried to write was written")],
        metadata={"models": [spec.label for spec in models_of_group(group)]},
    )
    def _sync_group(context: AssetExecutionContext, config: GroupSyncConfig, sync: SyncResource) -> MaterializeResult:
        report = sync.engine(context.run_id).sync_group(group, dry_run=config.dry_run)
        for failure in report.failures:
            context.log.error(f"{failure.label} {failure.name!r} ({failure.object_id}) {failure.action} failed: "
                              f"{failure.error}")
        context.log.info(f"{group}: created {report.total('created')}, updated {report.total('updated')}, "
                         f"unchanged {report.total('unchanged')}, failed {report.total('failed')}")
        check = AssetCheckResult(
            check_name=WRITE_FAILURES_CHECK,
            passed=report.succeeded,
            severity=AssetCheckSeverity.ERROR,
            metadata={"failed": len(report.failures),
                      **({"failures": MetadataValue.md(failure_table(report))} if report.failures else {})},
        )
        return MaterializeResult(metadata=group_metadata(report), check_results=[check])

    return _sync_group


group_assets = [build_group_asset(group) for group in GROUPS]
