"""Data-quality asset checks: one multi-asset check per sync group, derived from the registry.

They run in the same run as their group's asset, after it, on the run's engine (so they judge what the
sync loaded and wrote), and on their own (the `data_quality` job, or "Execute" in the UI), on the row
snapshot the last full sync saved, brought up to date through both instances' change feeds (engine/snapshot.py). Failures that would make downstream groups write on a broken base are blocking ERRORs:
referential integrity, required fields, uniqueness, hierarchy. The others warn. Every result carries its
counts and a table of the offending objects. The check logic is in engine/quality.py, its frames are built in engine/frames.py.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    multi_asset_check,
)

from .engine import quality
from .engine.frames import GroupData
from .engine.quality import Outcome
from .engine.registry import GROUPS, models_of_group
from .engine.snapshot import RefreshReport
from .metadata import MODEL, OBJECT, Key, table
from .metrics import Pusher, push_coverage
from .resources import SyncResource


def _has_trees(group: str) -> bool:
    return any(spec.tree for spec in models_of_group(group))


def _has_tags(group: str) -> bool:
    return any(spec.tags for spec in models_of_group(group))


@dataclass(frozen=True)
class QualityCheck:
    name: str
    blocking: bool
    description: str
    evaluate: Callable[[GroupData, SyncResource], Outcome]
    applies: Callable[[str], bool] = lambda group: True


COVERAGE_CHECK = "coverage"

QUALITY_CHECKS: tuple[QualityCheck, ...] = (
    QualityCheck("referential_integrity", True,
                 "Every reference of a synced object resolves in VeritasBot",
                 lambda data, sync: quality.referential_integrity(data.group, data.production, data.veritas,
                                                                  data.references)),
    QualityCheck("required_fields", True,
                 "Required fields, and natural-key fields production sets, are set on every synced object",
                 lambda data, sync: quality.required_fields(data.group, data.fields)),
    QualityCheck("uniqueness", True,
                 "No two VeritasBot objects share a natural key (unless production has as many)",
                 lambda data, sync: quality.uniqueness(data.group, data.production, data.veritas)),
    QualityCheck("hierarchy", True,
                 "Trees have no cycles, no missing parents, no orphaned subtrees, and allowed types",
                 lambda data, sync: quality.hierarchy(data.group, data.trees, data.types), _has_trees),
    QualityCheck("tag_consistency", False,
                 "Objects the sync created or updated carry the sync tag; nothing production lacks carries it",
                 lambda data, sync: quality.tag_consistency(data.group, data.production, data.veritas), _has_tags),
    QualityCheck("discovery_consistency", False,
                 "Objects carrying the sync tag and a discovery tag, listed; warns on those the sync created",
                 lambda data, sync: quality.discovery_consistency(data.group, data.production, data.veritas),
                 _has_tags),
    QualityCheck(COVERAGE_CHECK, False,
                 "Share of in-scope production objects present in VeritasBot, per model",
                 lambda data, sync: quality.coverage(data.group, data.production, sync.coverage_threshold)),
    QualityCheck("freshness", False,
                 "Time since the group's last successful sync",
                 lambda data, sync: quality.freshness(data.group, data.last_successful_sync(),
                                                      datetime.now(timezone.utc),
                                                      timedelta(hours=sync.freshness_max_age_hours))),
)


def group_quality_checks(group: str) -> tuple[QualityCheck, ...]:
    return tuple(check for check in QUALITY_CHECKS if check.applies(group))


def _column_type(dtype) -> str:
    return "int" if dtype.kind in "iu" else "float" if dtype.kind == "f" else "bool" if dtype.kind == "b" else "string"


def _metadata(outcome: Outcome) -> dict:
    metadata = {Key.OFFENDING: len(outcome.findings), **outcome.counts}
    if outcome.findings:
        metadata[Key.OBJECTS] = table(
            [MODEL, ("id", "string", ""), OBJECT, ("problem", "string", "")],
            [[finding.label, finding.object_id, finding.name, finding.problem] for finding in outcome.findings])
    if outcome.per_model is not None:
        frame = outcome.per_model
        metadata[Key.MODELS] = table([(name, _column_type(frame[name].dtype), "") for name in frame.columns],
                                     frame.values.tolist())
    return metadata


def _source_metadata(refresh: RefreshReport | None) -> dict:
    """How the checks' rows were obtained: the sync of this run, or the row snapshot and the feeds."""
    if refresh is None:
        return {Key.DATA_SOURCE: "this run's reads and writes"}
    age = {} if refresh.age_seconds is None else {Key.SNAPSHOT_AGE_HOURS: round(refresh.age_seconds / 3600, 2)}
    return {Key.DATA_SOURCE: f"row snapshot: {refresh.summary()}", **age,
            **{Key.SNAPSHOT_CHANGES[side.value]: done.changes for side, done in refresh.sides.items()},
            **{Key.SNAPSHOT_REREAD[side.value]: done.reread for side, done in refresh.sides.items()},
            Key.SNAPSHOT_READ_WHOLE: ", ".join(f"{side.value} {label}" for side, done in refresh.sides.items()
                                               for label in done.whole) or "none"}


def build_group_checks(group: str):
    checks = {check.name: check for check in group_quality_checks(group)}

    @multi_asset_check(
        name=f"{group}_data_quality",
        specs=[AssetCheckSpec(check.name, asset=group, blocking=check.blocking, description=check.description)
               for check in checks.values()],
        can_subset=True,
        description=f"Data-quality checks of sync group '{group}' in VeritasBot",
    )
    def _data_quality(context: AssetCheckExecutionContext, sync: SyncResource):
        # With the sync in this run: its engine, holding what it loaded and wrote. Alone: the row snapshot,
        # brought up to date through both change feeds once per run (the resource keeps the engine).
        engine = sync.engine(context.run.run_id)
        source = _source_metadata(engine.refresh_from_snapshot())
        context.log.info(f"{group} checks read from {source[Key.DATA_SOURCE]}")
        data = GroupData(engine.catalog, engine.policy, engine.state, group)
        selected = {key.name for key in context.selected_asset_check_keys}
        for check in checks.values():
            if check.name not in selected:
                continue
            outcome = check.evaluate(data, sync)
            severity = AssetCheckSeverity.ERROR if check.blocking else AssetCheckSeverity.WARN
            if not outcome.passed:
                log = context.log.error if check.blocking else context.log.warning
                log(f"{group} {check.name}: {outcome.summary}")
                synced = sync.running_metrics(context.run.run_id)
                if check.blocking and synced:  # the sync of this run stops short of its last step: it failed
                    synced.push_run(succeeded=False)
            if check.name == COVERAGE_CHECK and outcome.per_model is not None:
                push_coverage(Pusher(sync.pushgateway_url), group,
                              zip(outcome.per_model["model"], outcome.per_model["share"]))
            yield AssetCheckResult(asset_key=AssetKey(group), check_name=check.name, passed=outcome.passed,
                                   severity=severity, description=outcome.summary,
                                   metadata={**_metadata(outcome), **source})

    return _data_quality


quality_checks = [build_group_checks(group) for group in GROUPS]
QUALITY_CHECK_KEYS = [AssetCheckKey(AssetKey(group), check.name)
                      for group in GROUPS for check in group_quality_checks(group)]
