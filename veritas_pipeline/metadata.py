"""Operator-facing summaries of a group sync: markdown tables and figures for the Dagster UI."""

from __future__ import annotations

import json
from typing import Any

from dagster import MetadataValue

from .engine.prune import PruneReport
from .engine.sync import GroupReport

MAX_ROWS = 200  # a readable table; the full record is in the state database
COUNTERS = ("in_production", "in_veritas", "created", "updated", "unchanged", "adopted", "pending", "failed",
            "conflicts", "orphans")


def _cell(value: Any, width: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def markdown_table(headers: list[str], rows: list[list[Any]], total: int | None = None) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows[:MAX_ROWS]]
    total = len(rows) if total is None else total
    if total > MAX_ROWS:
        lines.append(f"\n{total - MAX_ROWS} more not shown.")
    return "\n".join(lines)


def model_table(report: GroupReport) -> str:
    rows = [[model.label, *(getattr(model, counter) for counter in COUNTERS)] for model in report.models]
    if report.dry_run:
        rows = [[*row, model.planned_creates, model.planned_updates] for row, model in zip(rows, report.models)]
        return markdown_table(["model", *COUNTERS, "would create", "would update"], rows)
    return markdown_table(["model", *COUNTERS], rows)


def plan_table(report: GroupReport) -> str:
    rows = [[write.label, write.action, write.name, write.veritas_id, ", ".join(write.changes)]
            for write in report.writes]
    return markdown_table(["model", "action", "object", "id", "fields"], rows)


def failure_table(report: GroupReport) -> str:
    rows = [[failure.label, failure.action, failure.name, failure.object_id, failure.error]
            for failure in report.failures]
    return markdown_table(["model", "action", "object", "id", "Nautobot's error"], rows)


def conflict_table(report: GroupReport) -> str:
    rows = [[c.label, c.name, c.veritas_id, c.field, c.production_value, c.veritas_value, c.rule]
            for c in report.conflicts]
    return markdown_table(["model", "object", "id", "field", "production", "VeritasBot", "rule"], rows)


def conflict_change_table(conflicts: list[dict]) -> str:
    rows = [[c["model"], c["object_name"], c["object_id"], c["field"], c["production_value"], c["veritas_value"]]
            for c in conflicts]
    return markdown_table(["model", "object", "id", "field", "production", "VeritasBot"], rows)


def pending_table(report: GroupReport) -> str:
    rows = [[p.label, p.name, p.production_id, p.field, p.reason, "not written" if p.blocking else "field left out"]
            for p in report.pending]
    return markdown_table(["model", "object", "production id", "field", "why", "effect"], rows)


def group_metadata(report: GroupReport) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "dry_run": report.dry_run,
        "models": MetadataValue.md(model_table(report)),
        **{counter: report.total(counter) for counter in COUNTERS},
        "planned_creates": report.total("planned_creates"),
        "planned_updates": report.total("planned_updates"),
        "seconds_load": round(report.seconds["load"], 2),
        "seconds_plan": round(report.seconds["plan"], 2),
        "seconds_apply": round(report.seconds["apply"], 2),
        "requests_production": report.requests.get("production", 0),
        "requests_veritas": report.requests.get("veritas", 0),
        "sync_run_id": report.run_id,
    }
    if report.writes:
        metadata["plan"] = MetadataValue.md(plan_table(report))
    if report.failures:
        metadata["failures"] = MetadataValue.md(failure_table(report))
    metadata["conflicts_new"] = len(report.conflicts_new)
    metadata["conflicts_resolved"] = len(report.conflicts_resolved)
    if report.conflicts:
        metadata["conflict_table"] = MetadataValue.md(conflict_table(report))
    if report.conflicts_new:
        metadata["conflicts_new_table"] = MetadataValue.md(conflict_change_table(report.conflicts_new))
    if report.conflicts_resolved:
        metadata["conflicts_resolved_table"] = MetadataValue.md(conflict_change_table(report.conflicts_resolved))
    if report.pending:
        metadata["pending_table"] = MetadataValue.md(pending_table(report))
    if report.orphans:
        metadata["orphan_table"] = MetadataValue.md(markdown_table(
            ["model", "VeritasBot id", "object"], [list(orphan) for orphan in report.orphans]))
    return metadata


def orphan_metadata(report: PruneReport) -> dict[str, Any]:
    per_model: dict[str, int] = {}
    for orphan in report.orphans:
        per_model[orphan.label] = per_model.get(orphan.label, 0) + 1
    deleted = {orphan.veritas_id for orphan in report.deleted}
    kept = {orphan.veritas_id: reason for orphan, reason in report.kept}
    rows = [[o.label, o.name, o.veritas_id,
             "deleted" if o.veritas_id in deleted else kept.get(o.veritas_id, report.skipped or "reported")]
            for o in report.orphans]
    metadata: dict[str, Any] = {
        "orphans": len(report.orphans),
        "deleted": len(report.deleted),
        "kept": len(report.orphans) - len(report.deleted),
        "prune_enabled": report.enabled,
        "prune_limit": report.limit,
        "orphans_per_model": MetadataValue.md(markdown_table(["model", "orphans"], sorted(per_model.items()))),
    }
    if report.skipped:
        metadata["skipped"] = report.skipped
    if rows:
        metadata["orphan_table"] = MetadataValue.md(markdown_table(["model", "object", "id", "outcome"], rows))
    return metadata
