"""Orphans: objects the sync wrote that production no longer has. Reported every run; deleted only
on proof: when the policy opts in, children before parents, never more than the cap, never after a
failed production read in the run (an incomplete production would make live objects look orphaned), and
never more than `prune_max_fraction` of a model's synced objects at once (a production token narrowed
to see fewer objects reads complete and consistent, yet would make the rest look orphaned).

`SyncEngine.prune_orphans` runs it with the run's own catalog, planner (which computes each model's
orphans once per run) and applier."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .apply import Applier
from .catalog import Catalog, Side
from .planner import Write
from .policy import PrecedencePolicy
from .registry import SYNCED_MODELS, ModelSpec
from .trees import depths
from .values import ref_id

PRUNE_RUN_GROUP = "orphans"  # the state database's group name for prune runs


@dataclass(frozen=True)
class Orphan:
    label: str
    veritas_id: str
    name: str


@dataclass
class PruneReport:
    enabled: bool
    limit: int
    orphans: list[Orphan] = field(default_factory=list)
    deleted: list[Orphan] = field(default_factory=list)
    kept: list[tuple[Orphan, str]] = field(default_factory=list)  # (orphan, why it is still there)
    skipped: str | None = None  # why nothing was deleted at all
    held_back: dict[str, str] = field(default_factory=dict)  # label -> why none of its orphans was deleted


def prune_orphans(catalog: Catalog, find_orphans: Callable[[ModelSpec], list[tuple[str, str]]],
                  synced_count: Callable[[ModelSpec], int], applier: Applier, policy: PrecedencePolicy, *,
                  dry_run: bool) -> PruneReport:
    """Report every synced model's orphans (`find_orphans`: VeritasBot id and name) and delete them when
    the policy allows; `synced_count` is how many objects of a model carry the sync tag (the applier's
    journal audits each delete request)."""
    report = PruneReport(enabled=policy.prune_orphans and not dry_run, limit=policy.prune_limit)
    if catalog.by_id:
        report.skipped = "an incremental run reads both instances partly: orphans need a full read"
        return report
    failed = [(label, error) for side, label, error in catalog.failed_reads if side is Side.PRODUCTION]
    if failed:
        label, error = failed[0]
        report.skipped = f"a production read of this run ({label}) failed, so nothing is deleted: {error}"
        return report
    for spec in SYNCED_MODELS:
        try:
            catalog.rows(Side.PRODUCTION, spec.label)
        except Exception as error:  # noqa: BLE001 - any failed read makes every orphan suspect
            report.skipped = f"production read of {spec.label} failed, so nothing is deleted: {error}"
            return report
    levels_by_model = {}
    for spec in SYNCED_MODELS:
        orphans = [Orphan(spec.label, veritas_id, name) for veritas_id, name in find_orphans(spec)]
        report.orphans += orphans
        levels_by_model[spec.label] = _levels_children_first(catalog, spec, orphans)
    if not report.enabled:
        report.skipped = "dry run" if policy.prune_orphans else "pruning is off (policy prune_orphans)"
        return report

    for spec in SYNCED_MODELS:
        orphans = [orphan for level in levels_by_model[spec.label] for orphan in level]
        synced = synced_count(spec)
        if len(orphans) > policy.prune_max_fraction * synced:
            reason = (f"{len(orphans)} of the {synced} objects of {spec.label} the sync wrote look orphaned, more "
                      f"than prune_max_fraction {policy.prune_max_fraction:g}: a production read that sees fewer "
                      f"objects (a narrowed token) is likelier than so many deletions, so none is deleted")
            report.held_back[spec.label] = reason
            report.kept += [(orphan, reason) for orphan in orphans]
            levels_by_model[spec.label] = []

    budget = policy.prune_limit
    for spec in reversed(SYNCED_MODELS):  # later models reference earlier ones: their objects go first
        for level in levels_by_model[spec.label]:
            allowed, over = level[:budget], level[budget:]
            report.kept += [(orphan, f"over the cap of {policy.prune_limit} deletions per run") for orphan in over]
            budget -= len(allowed)
            if allowed:
                _delete(applier, spec, allowed, report)
    return report


def _levels_children_first(catalog: Catalog, spec: ModelSpec, orphans: list[Orphan]) -> list[list[Orphan]]:
    """Orphans in groups that can be deleted together: for a tree, one depth at a time, deepest first."""
    if not spec.tree or not orphans:
        return [orphans] if orphans else []
    rows = catalog.rows(Side.VERITAS, spec.label)
    parent_of = {object_id: ref_id(row.get(spec.tree)) for object_id, row in rows.items()}
    depth_of = depths((orphan.veritas_id for orphan in orphans), parent_of)
    by_depth: dict[int, list[Orphan]] = {}
    for orphan in orphans:
        by_depth.setdefault(depth_of[orphan.veritas_id], []).append(orphan)
    return [by_depth[d] for d in sorted(by_depth, reverse=True)]


def _delete(applier: Applier, spec: ModelSpec, orphans: list[Orphan], report: PruneReport) -> None:
    writes = [Write(spec.label, "delete", o.veritas_id, "", o.name, {"id": o.veritas_id}, {"object": (o.name, None)})
              for o in orphans]
    result = applier.delete(spec, writes)
    deleted = {write.veritas_id for write, _row in result.done}
    report.deleted += [orphan for orphan in orphans if orphan.veritas_id in deleted]
    report.kept += [(Orphan(f.label, f.object_id, f.name), f"VeritasBot refused the delete: {f.error}")
                    for f in result.failed]
