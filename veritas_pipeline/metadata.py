"""What a group sync shows in the Dagster UI: flat typed figures and typed tables, under keys defined here
once and shared by the assets, the checks and the CLI.

Tables are `MetadataValue.table` with a `TableSchema`; rows that stand for an object carry links to it in
the production and the VeritasBot web UI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from .engine.planner import IDENTITY_ACTION
from .engine.prune import PruneReport
from .engine.registry import MODELS
from .engine.sync import GroupReport

MAX_ROWS = 200  # a readable table; the full record is in the state database


class Key:
    """Metadata keys of the sync's materializations."""

    DRY_RUN = "dry_run"
    INCREMENTAL = "incremental"
    # Per-model counters (COUNTERS), also summed per group; FAILED and ORPHANS below are counters too
    IN_PRODUCTION = "in_production"
    IN_VERITAS = "in_veritas"
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    ADOPTED = "adopted"
    PENDING = "pending"
    CONFLICTS = "conflicts"
    MODELS = "models"
    PLANNED_CREATES = "planned_creates"
    PLANNED_UPDATES = "planned_updates"
    SECONDS = {phase: f"seconds_{phase}" for phase in ("load", "plan", "apply")}
    REQUESTS = {"production": "requests_production", "veritas": "requests_veritas"}
    SYNC_RUN_ID = "sync_run_id"
    PLAN = "plan"
    FAILURES = "failures"
    FAILED = "failed"
    CONFLICTS_NEW = "conflicts_new"
    CONFLICTS_RESOLVED = "conflicts_resolved"
    CONFLICT_TABLE = "conflict_table"
    CONFLICTS_NEW_TABLE = "conflicts_new_table"
    CONFLICTS_RESOLVED_TABLE = "conflicts_resolved_table"
    PENDING_TABLE = "pending_table"
    ORPHAN_TABLE = "orphan_table"
    ADOPTION_TABLE = "adoption_table"
    # The orphans step
    ORPHANS = "orphans"
    DELETED = "deleted"
    KEPT = "kept"
    PRUNE_ENABLED = "prune_enabled"
    PRUNE_LIMIT = "prune_limit"
    ORPHANS_PER_MODEL = "orphans_per_model"
    SKIPPED = "skipped"
    HELD_BACK = "held_back"
    # Data-quality checks
    OFFENDING = "offending"
    OBJECTS = "objects"
    # How a full sync's synced models, or the data of checks run alone, were read: whole, or the row snapshot
    # brought up to date through the change feeds
    DATA_SOURCE = "data_source"
    SNAPSHOT_AGE_HOURS = "snapshot_age_hours"
    SNAPSHOT_CHANGES = {"production": "snapshot_changes_production", "veritas": "snapshot_changes_veritas"}
    SNAPSHOT_REREAD = {"production": "snapshot_reread_production", "veritas": "snapshot_reread_veritas"}
    SNAPSHOT_READ_WHOLE = "snapshot_models_read_whole"


# Per-model counters of a group, in the order the UI and the CLI show them.
COUNTERS = (Key.IN_PRODUCTION, Key.IN_VERITAS, Key.CREATED, Key.UPDATED, Key.UNCHANGED, Key.ADOPTED, Key.PENDING,
            Key.FAILED, Key.CONFLICTS, Key.ORPHANS)


@dataclass(frozen=True)
class ObjectLinks:
    """Web UI addresses of objects in both instances (a Nautobot UI path is its REST path without /api)."""

    production_url: str = ""
    veritas_url: str = ""

    @staticmethod
    def _link(base: str, label: str, object_id: str | None) -> str:
        if not base or not object_id or label not in MODELS:
            return ""
        return f"{base.rstrip('/')}/{MODELS[label].endpoint}/{object_id}/"

    def production(self, label: str, object_id: str | None) -> str:
        return self._link(self.production_url, label, object_id)

    def veritas(self, label: str, object_id: str | None) -> str:
        return self._link(self.veritas_url, label, object_id)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)


def _cell(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value  # numpy scalars from pandas frames
    return value if isinstance(value, (int, float, bool)) or value is None else _text(value)


def table(columns: Sequence[tuple[str, str, str]], rows: Iterable[Sequence[Any]]) -> MetadataValue:
    """A typed table: columns are (name, type, description); at most MAX_ROWS rows."""
    names = [name for name, _type, _description in columns]
    records = [TableRecord(dict(zip(names, map(_cell, row)))) for _, row in zip(range(MAX_ROWS), rows)]
    schema = TableSchema(columns=[TableColumn(name, kind, description=description or None)
                                  for name, kind, description in columns])
    return MetadataValue.table(records, schema)


MODEL = ("model", "string", "Nautobot model label")
OBJECT = ("object", "string", "The object's display name")
VERITAS_ID = ("veritasbot_id", "string", "The object's id in VeritasBot")
PRODUCTION_ID = ("production_id", "string", "The object's id in production")
PRODUCTION_LINK = ("production_link", "url", "The object in production's web UI")
VERITAS_LINK = ("veritasbot_link", "url", "The object in VeritasBot's web UI")


def model_table(report: GroupReport) -> MetadataValue:
    columns = [MODEL, *((counter, "int", "") for counter in COUNTERS)]
    rows = [[model.label, *(getattr(model, counter) for counter in COUNTERS)] for model in report.models]
    if report.dry_run:
        columns += [("would_create", "int", ""), ("would_update", "int", "")]
        rows = [[*row, model.planned_creates, model.planned_updates] for row, model in zip(rows, report.models)]
    return table(columns, rows)


def plan_table(report: GroupReport, links: ObjectLinks) -> MetadataValue:
    return table(
        [MODEL, ("action", "string", "create or update"), OBJECT, VERITAS_ID,
         ("fields", "string", "Fields written"), PRODUCTION_LINK, VERITAS_LINK],
        [[w.label, w.action, w.name, w.veritas_id, ", ".join(w.changes),
          links.production(w.label, w.production_id), links.veritas(w.label, w.veritas_id)] for w in report.writes])


def failure_table(report: GroupReport, links: ObjectLinks, failures: list | None = None) -> MetadataValue:
    """The group's failures (or those given): an identity failure's object is the production object."""
    production_ids = {write.veritas_id: write.production_id for write in report.writes}
    return table(
        [MODEL, ("action", "string", ""), OBJECT, VERITAS_ID, ("error", "string", "Nautobot's own error text"),
         PRODUCTION_LINK, VERITAS_LINK],
        [[f.label, f.action, f.name, f.object_id, f.error,
          links.production(f.label, production_ids.get(f.object_id, f.object_id)),
          links.veritas(f.label, f.object_id) if f.action not in ("create", IDENTITY_ACTION) else ""]
         for f in (report.failures if failures is None else failures)])


CONFLICT_COLUMNS = [MODEL, OBJECT, VERITAS_ID, ("field", "string", ""),
                    ("production_value", "string", ""), ("veritasbot_value", "string", "Kept")]


def conflict_table(report: GroupReport, links: ObjectLinks) -> MetadataValue:
    return table(
        [*CONFLICT_COLUMNS, ("rule", "string", "Why VeritasBot's value stands"), PRODUCTION_LINK, VERITAS_LINK],
        [[c.label, c.name, c.veritas_id, c.field, c.production_value, c.veritas_value, c.rule,
          links.production(c.label, c.production_id), links.veritas(c.label, c.veritas_id)]
         for c in report.conflicts])


def conflict_change_table(conflicts: list[dict], links: ObjectLinks) -> MetadataValue:
    return table(
        [*CONFLICT_COLUMNS, VERITAS_LINK],
        [[c["model"], c["object_name"], c["object_id"], c["field"], c["production_value"], c["veritas_value"],
          links.veritas(c["model"], c["object_id"])] for c in conflicts])


def pending_table(report: GroupReport, links: ObjectLinks) -> MetadataValue:
    return table(
        [MODEL, OBJECT, PRODUCTION_ID, ("field", "string", "The reference that does not resolve"),
         ("why", "string", ""), ("effect", "string", ""), PRODUCTION_LINK],
        [[p.label, p.name, p.production_id, p.field, p.reason,
          "not written" if p.blocking else "field left out", links.production(p.label, p.production_id)]
         for p in report.pending])


def group_metadata(report: GroupReport, links: ObjectLinks) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        Key.DRY_RUN: report.dry_run,
        Key.MODELS: model_table(report),
        **{counter: report.total(counter) for counter in COUNTERS},
        Key.PLANNED_CREATES: report.total("planned_creates"),
        Key.PLANNED_UPDATES: report.total("planned_updates"),
        **{key: round(report.seconds[phase], 2) for phase, key in Key.SECONDS.items()},
        **{key: report.requests.get(side, 0) for side, key in Key.REQUESTS.items()},
        Key.SYNC_RUN_ID: report.run_id,
        Key.CONFLICTS_NEW: len(report.conflicts_new),
        Key.CONFLICTS_RESOLVED: len(report.conflicts_resolved),
    }
    if report.rows_source:
        metadata[Key.DATA_SOURCE] = report.rows_source
    if report.writes:
        metadata[Key.PLAN] = plan_table(report, links)
    if report.failures:
        metadata[Key.FAILURES] = failure_table(report, links)
    if report.conflicts:
        metadata[Key.CONFLICT_TABLE] = conflict_table(report, links)
    if report.conflicts_new:
        metadata[Key.CONFLICTS_NEW_TABLE] = conflict_change_table(report.conflicts_new, links)
    if report.conflicts_resolved:
        metadata[Key.CONFLICTS_RESOLVED_TABLE] = conflict_change_table(report.conflicts_resolved, links)
    if report.pending:
        metadata[Key.PENDING_TABLE] = pending_table(report, links)
    if report.adoptions:
        metadata[Key.ADOPTION_TABLE] = table(
            [MODEL, OBJECT, VERITAS_ID, PRODUCTION_ID,
             ("rule", "string", "Discovery owns it (only safe fields are written), or it follows production"),
             PRODUCTION_LINK, VERITAS_LINK],
            [[label, name, veritas_id, production_id, rule, links.production(label, production_id),
              links.veritas(label, veritas_id)] for label, production_id, veritas_id, name, rule in report.adoptions])
    if report.orphans:
        metadata[Key.ORPHAN_TABLE] = table(
            [MODEL, VERITAS_ID, OBJECT, VERITAS_LINK],
            [[label, veritas_id, name, links.veritas(label, veritas_id)] for label, veritas_id, name in report.orphans])
    return metadata


def orphan_metadata(report: PruneReport, links: ObjectLinks) -> dict[str, Any]:
    per_model: dict[str, int] = {}
    for orphan in report.orphans:
        per_model[orphan.label] = per_model.get(orphan.label, 0) + 1
    deleted = {orphan.veritas_id for orphan in report.deleted}
    kept = {orphan.veritas_id: reason for orphan, reason in report.kept}
    metadata: dict[str, Any] = {
        Key.ORPHANS: len(report.orphans),
        Key.DELETED: len(report.deleted),
        Key.KEPT: len(report.orphans) - len(report.deleted),
        Key.PRUNE_ENABLED: report.enabled,
        Key.PRUNE_LIMIT: report.limit,
        Key.ORPHANS_PER_MODEL: table([MODEL, ("orphans", "int", "")], sorted(per_model.items())),
    }
    if report.skipped:
        metadata[Key.SKIPPED] = report.skipped
    if report.held_back:
        metadata[Key.HELD_BACK] = table([MODEL, ("why", "string", "Why none of its orphans was deleted")],
                                        sorted(report.held_back.items()))
    if report.orphans:
        metadata[Key.ORPHAN_TABLE] = table(
            [MODEL, OBJECT, VERITAS_ID, ("outcome", "string", "deleted, or why it was kept"), VERITAS_LINK],
            [[o.label, o.name, o.veritas_id,
              "deleted" if o.veritas_id in deleted else kept.get(o.veritas_id, report.skipped or "reported"),
              links.veritas(o.label, o.veritas_id)] for o in report.orphans])
    return metadata
