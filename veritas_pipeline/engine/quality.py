"""Data-quality checks of what the sync leaves in VeritasBot: pandas DataFrames in, findings out.

The check functions here are pure and know nothing of Nautobot; `frames.GroupData` builds their frames
from the instances (through a catalog) and the state database. This module defines the frames' columns.

A *synced object* is a VeritasBot object that stands for a production object: it has the production UUID,
or it was adopted by natural key. The frames (columns in the *_COLUMNS constants):
- production: production objects of the group's models and of the synced models they reference, with
  their VeritasBot counterpart and whether they are in scope (references into discovered data resolve);
- veritas: VeritasBot objects of the group's models and of every model they reference, with the
  production object each stands for, its sync and discovery tags, and whether the sync ever wrote it;
- references: one row per reference value of a group object, on either side;
- fields: required and natural-key fields of each synced object, set or not on either side;
- trees / types: VeritasBot tree nodes with their parent and type, and the types' own tree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Sequence

import pandas as pd

from .registry import MODELS, models_of_group
from .trees import Ending, walk_up

PRODUCTION_COLUMNS = ["label", "id", "name", "key", "counterpart", "in_scope"]
VERITAS_COLUMNS = ["label", "id", "name", "key", "production_id", "sync_tag", "discovery_tag", "written"]
REFERENCE_COLUMNS = ["side", "label", "object_id", "field", "target_label", "target_id"]
FIELD_COLUMNS = ["label", "id", "name", "field", "required", "in_production", "in_veritas"]
TREE_COLUMNS = ["label", "id", "name", "parent", "type_id"]
TYPE_COLUMNS = ["label", "id", "name", "parent", "nestable"]
PRODUCTION, VERITAS = "production", "veritas"  # the `side` column (catalog.Side values)


@dataclass(frozen=True)
class Finding:
    label: str
    object_id: str
    name: str
    problem: str


@dataclass
class Outcome:
    passed: bool
    summary: str
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)
    per_model: pd.DataFrame | None = None  # coverage: one row per model


def frame(rows: Sequence[dict], columns: list[str]) -> pd.DataFrame:
    """A frame with exactly these columns, also when there are no rows (object dtype: ids stay strings)."""
    return pd.DataFrame(list(rows), columns=columns, dtype=object)


def _labels(group: str) -> list[str]:
    return [spec.label for spec in models_of_group(group)]


def _is_synced(label: str) -> bool:
    return label in MODELS and MODELS[label].synced


def _findings(rows: pd.DataFrame, id_column: str = "id") -> list[Finding]:
    """Rows with label, name and problem columns as findings; the object's VeritasBot id is in `id_column`."""
    return [Finding(row["label"], str(row[id_column]), str(row["name"]), row["problem"])
            for row in rows.to_dict("records")]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# ---------------------------------------------------------------------------------------------- checks

def referential_integrity(group: str, production: pd.DataFrame, veritas: pd.DataFrame,
                          references: pd.DataFrame) -> Outcome:
    """Every reference of a synced object resolves in VeritasBot.

    Two ways to break: VeritasBot points at an id it does not hold (dangling), or production points at an
    object of a synced model that has no counterpart in VeritasBot (deleted behind the sync's back, or never
    written), so the synced object has lost that reference. References into discovered data that VeritasBot
    lacks are pending by design (the sync reports them) and are not counted here.
    """
    own = veritas[veritas["label"].isin(_labels(group)) & veritas["production_id"].notna()][["label", "id", "name"]]
    existing = veritas[["label", "id"]].rename(columns={"label": "target_label", "id": "target_id"})

    veritas_refs = references[references["side"] == VERITAS].merge(
        own, left_on=["label", "object_id"], right_on=["label", "id"])
    dangling = veritas_refs.merge(existing, on=["target_label", "target_id"], how="left", indicator=True)
    dangling = dangling[dangling["_merge"] == "left_only"].copy()
    dangling["problem"] = [f"{row.field} points at {row.target_label} {row.target_id}, which VeritasBot does not hold"
                           for row in dangling.itertuples()]

    present = production[production["label"].isin(_labels(group)) & production["counterpart"].notna()]
    production_refs = references[(references["side"] == PRODUCTION)
                                 & references["target_label"].map(_is_synced).astype(bool)].merge(
        present[["label", "id", "counterpart"]], left_on=["label", "object_id"], right_on=["label", "id"])
    targets = production[["label", "id", "name", "counterpart", "in_scope"]].rename(columns={
        "label": "target_label", "id": "target_id", "name": "target_name", "counterpart": "target_counterpart",
        "in_scope": "target_in_scope"})
    lost = production_refs.merge(targets, on=["target_label", "target_id"])
    lost = lost[lost["target_counterpart"].isna() & lost["target_in_scope"].astype(bool)]
    lost = lost.merge(own.rename(columns={"id": "counterpart"}), on=["label", "counterpart"])
    lost["problem"] = [f"{row.field}: {row.target_label} {row.target_name!r} ({row.target_id}) is not in VeritasBot"
                       for row in lost.itertuples()]

    findings = _findings(dangling) + _findings(lost, id_column="counterpart")
    checked = len(own)
    return Outcome(not findings, f"{_plural(len(findings), 'broken reference')} among {checked} synced objects",
                   findings, {"synced_objects": checked, "references": len(veritas_refs) + len(production_refs),
                              "dangling": len(dangling), "unresolved": len(lost)})


def required_fields(group: str, fields: pd.DataFrame) -> Outcome:
    """Required fields are set on every synced object, and so is every natural-key field production sets."""
    own = fields[fields["label"].isin(_labels(group))]
    empty = own[~own["in_veritas"].astype(bool) & (own["required"].astype(bool) | own["in_production"].astype(bool))]
    empty = empty.assign(problem=[f"{'required' if row.required else 'natural-key'} field {row.field!r} is empty"
                                  + ("" if not row.in_production else " (production has it)")
                                  for row in empty.itertuples()])
    findings = _findings(empty)
    objects = own[["label", "id"]].drop_duplicates()
    return Outcome(not findings, f"{_plural(len(findings), 'empty field')} on {len(objects)} synced objects",
                   findings, {"synced_objects": len(objects), "fields_checked": len(own), "empty": len(findings)})


def uniqueness(group: str, production: pd.DataFrame, veritas: pd.DataFrame) -> Outcome:
    """No two VeritasBot objects share a natural key, unless production holds as many under that key.

    A shared key makes the sync's identity ambiguous: it refuses to guess which object is production's.
    Keys no production object and no synced object has are discovery's own business.
    """
    labels = _labels(group)
    # Keys are nested tuples; their repr groups and joins safely where the tuples themselves would not.
    own_veritas = veritas[veritas["label"].isin(labels) & veritas["key"].notna()]
    own_veritas = own_veritas.assign(key_repr=own_veritas["key"].map(repr), synced=own_veritas["production_id"].notna())
    own_production = production[production["label"].isin(labels) & production["key"].notna()]
    in_production = (own_production.assign(key_repr=own_production["key"].map(repr))
                     .groupby(["label", "key_repr"]).size().rename("production_count").reset_index())
    counts = own_veritas.groupby(["label", "key_repr"]).agg(veritas_count=("id", "size"), any_synced=("synced", "any"))
    counts = counts.reset_index().merge(in_production, on=["label", "key_repr"], how="left")
    counts["production_count"] = counts["production_count"].fillna(0).astype(int)
    shared = counts[(counts["veritas_count"] > counts["production_count"].clip(lower=1))
                    & ((counts["production_count"] > 0) | counts["any_synced"].astype(bool))]
    offenders = own_veritas.merge(shared[["label", "key_repr", "veritas_count"]], on=["label", "key_repr"])
    offenders = offenders.sort_values(["label", "key_repr", "id"]).assign(problem=lambda rows: [
        f"{count} objects in VeritasBot share the natural key {key_text(key)}"
        for count, key in zip(rows["veritas_count"], rows["key"])])
    findings = _findings(offenders)
    return Outcome(not findings, f"{_plural(len(shared), 'natural key')} shared in VeritasBot", findings,
                   {"objects_checked": len(own_veritas), "shared_keys": len(shared), "objects": len(findings)})


def key_text(key: Any) -> str:
    """A natural key for people: its set parts, references flattened, joined by ' / '."""
    def parts(value: Any):
        if isinstance(value, tuple):
            for item in value:
                yield from parts(item)
        elif value is not None:
            yield str(value)
    return " / ".join(parts(key)) or "(empty)"


def hierarchy(group: str, trees: pd.DataFrame, types: pd.DataFrame) -> Outcome:
    """Every tree of the group is a forest: no cycles, every parent exists, nothing hangs under a broken
    branch, and (typed trees) each node's type is allowed under its parent's type: the type's own parent,
    or the type itself when that type is nestable."""
    findings: list[Finding] = []
    own = trees[trees["label"].isin(_labels(group))]
    for label, nodes in own.groupby("label", sort=True):
        spec = MODELS[label]
        findings += _broken_branches(label, nodes)
        if spec.tree_type:
            findings += _misplaced_types(label, nodes, types[types["label"] == spec.field(spec.tree_type).target])
    return Outcome(not findings, f"{_plural(len(findings), 'misplaced node')} in {own['label'].nunique()} trees",
                   findings, {"nodes": len(own), "misplaced": len(findings)})


def _broken_branches(label: str, nodes: pd.DataFrame) -> list[Finding]:
    parent_of = {node: None if blank(parent) else parent for node, parent in zip(nodes["id"], nodes["parent"])}
    name_of = dict(zip(nodes["id"], nodes["name"]))
    problem_of: dict[str, str] = {}  # broken nodes only
    sound: set[str] = set()  # nodes whose ancestry reaches a root
    settled: set[str] = set()  # sound or broken: every node walked gets its answer

    def orphan(members: list[str]) -> None:
        cause = parent_of[members[-1]] if members else None
        for member in members:
            problem_of[member] = f"orphaned: under {name_of[cause]!r}, whose branch is broken"

    for start in sorted(parent_of):
        path, stop, ending = walk_up(start, parent_of, known=settled)
        settled.update(path)
        if ending is Ending.ROOT or (ending is Ending.STOPPED and stop in sound):
            sound.update(path)
        elif ending is Ending.STOPPED:
            orphan(path)
        elif ending is Ending.CYCLE:
            cycle = path[path.index(stop):]
            ring = " → ".join(str(name_of[member]) for member in (*cycle, stop))
            for member in cycle:
                problem_of[member] = f"in a parent cycle: {ring}"
            orphan(path[:path.index(stop)])
        else:  # the last node's parent does not exist
            problem_of[path[-1]] = f"its parent {stop} does not exist"
            orphan(path[:-1])
    return [Finding(label, node, str(name_of[node]), problem) for node, problem in sorted(problem_of.items())]


def _misplaced_types(label: str, nodes: pd.DataFrame, types: pd.DataFrame) -> list[Finding]:
    if types.empty:
        return []
    type_parent = dict(zip(types["id"], types["parent"]))
    nestable = dict(zip(types["id"], types["nestable"].astype(bool)))
    type_name = dict(zip(types["id"], types["name"]))
    type_of = dict(zip(nodes["id"], nodes["type_id"]))
    findings = []
    for row in nodes.itertuples():
        if row.type_id not in type_parent:
            continue  # a dangling type is referential integrity's finding
        parent = None if blank(row.parent) else row.parent
        if parent is not None and parent not in type_of:
            continue  # a missing parent is already reported
        allowed = {type_parent[row.type_id]} | ({row.type_id} if nestable[row.type_id] else set())
        parent_type = type_of.get(parent) if parent else None
        if parent_type not in allowed:
            under = f"under a {type_name.get(parent_type, parent_type)!r}" if parent else "at the top"
            allowed_text = " or ".join(sorted("the top" if t is None else repr(type_name.get(t, t)) for t in allowed))
            findings.append(Finding(label, row.id, str(row.name),
                                    f"type {type_name[row.type_id]!r} may not sit {under} (allowed: {allowed_text})"))
    return findings


def tag_consistency(group: str, production: pd.DataFrame, veritas: pd.DataFrame) -> Outcome:
    """Every object the sync created or updated carries the sync tag; no object carries it that production lacks."""
    own = _tagged(group, veritas)
    created = _created_by_sync(own, production)
    written = own["written"].astype(bool)
    sync_tag = own["sync_tag"].astype(bool)
    untagged = own[(created | written) & ~sync_tag]
    untagged = untagged.assign(problem=[f"{'created' if made else 'updated'} by the sync but lacks the sync tag"
                                        for made in created[untagged.index]])
    stray = own[sync_tag & own["production_id"].isna()]
    stray = stray.assign(problem="carries the sync tag but production has no such object")
    findings = _findings(untagged) + _findings(stray)
    return Outcome(not findings, f"{_plural(len(untagged), 'synced object')} without the sync tag, "
                                 f"{_plural(len(stray), 'tagged object')} unknown to production", findings,
                   {"objects_checked": len(own), "missing_sync_tag": len(untagged),
                    "tagged_not_in_production": len(stray)})


def discovery_consistency(group: str, production: pd.DataFrame, veritas: pd.DataFrame) -> Outcome:
    """Objects carrying both the sync tag and a discovery tag, listed. Those the sync adopted from discovery
    are expected (the sync writes only their safe fields); those it created and a discovery job claimed
    since are a warning: from now on they follow discovery, not production."""
    own = _tagged(group, veritas)
    both = own[own["sync_tag"].astype(bool) & own["discovery_tag"].astype(bool)]
    created = _created_by_sync(both, production)
    both = both.assign(problem=["created by the sync, since claimed by a discovery job" if made else
                                "adopted from discovery: the sync writes only its safe fields" for made in created])
    claimed = int(created.sum())
    return Outcome(claimed == 0, f"{_plural(len(both), 'object')} with the sync tag and a discovery tag, "
                                 f"{claimed} of them created by the sync", _findings(both),
                   {"objects_checked": len(own), "both_tags": len(both), "claimed_after_sync": claimed})


def _tagged(group: str, veritas: pd.DataFrame) -> pd.DataFrame:
    labels = [label for label in _labels(group) if MODELS[label].tags]
    return veritas[veritas["label"].isin(labels)]


def _created_by_sync(objects: pd.DataFrame, production: pd.DataFrame) -> pd.Series:
    """The sync creates objects under their production UUID; nothing else holds one."""
    production_ids = set(zip(production["label"], production["id"]))
    return pd.Series([pair in production_ids for pair in zip(objects["label"], objects["id"])],
                     index=objects.index, dtype=bool)


def coverage(group: str, production: pd.DataFrame, threshold: float) -> Outcome:
    """Share of the in-scope production objects that VeritasBot holds, per model; below `threshold` is a
    warning. Out of scope: objects whose required references point at discovered data VeritasBot lacks."""
    own = production[production["label"].isin(_labels(group))]
    scoped = own[own["in_scope"].astype(bool)].assign(present=lambda rows: rows["counterpart"].notna())
    per_model = pd.DataFrame({"model": _labels(group)})
    stats = scoped.groupby("label").agg(in_scope=("id", "size"), present=("present", "sum")).reset_index()
    per_model = per_model.merge(stats.rename(columns={"label": "model"}), on="model", how="left").fillna(0)
    per_model[["in_scope", "present"]] = per_model[["in_scope", "present"]].astype(int)
    per_model["share"] = [1.0 if total == 0 else round(present / total, 4)
                          for present, total in zip(per_model["present"], per_model["in_scope"])]
    low = per_model[per_model["share"] < threshold]
    missing = scoped[~scoped["present"]].assign(problem="in production, not in VeritasBot")
    total, present = int(per_model["in_scope"].sum()), int(per_model["present"].sum())
    overall = 1.0 if total == 0 else round(present / total, 4)
    verdict = (f"below {threshold:.0%}: {', '.join(low['model'])}" if len(low)
               else f"every model at {threshold:.0%} or more")
    summary = f"{present} of {total} in-scope production objects are in VeritasBot ({overall:.1%}); {verdict}"
    return Outcome(low.empty, summary, _findings(missing.sort_values(["label", "name"])),
                   {"in_scope": total, "present": present, "missing": total - present, "share": overall,
                    "threshold": threshold, "models_below_threshold": len(low),
                    "out_of_scope": int((~own["in_scope"].astype(bool)).sum())}, per_model)


def freshness(group: str, last_success: datetime | None, now: datetime, max_age: timedelta) -> Outcome:
    """Time since the group's last successful (not dry) sync; older than `max_age` is a warning."""
    limit_hours = round(max_age.total_seconds() / 3600, 2)
    if last_success is None:
        return Outcome(False, f"group {group!r} has never synced successfully",
                       counts={"max_age_hours": limit_hours})
    age = now - last_success
    hours = round(age.total_seconds() / 3600, 2)
    fresh = age <= max_age
    return Outcome(fresh, f"last successful sync {hours} h ago ({'within' if fresh else 'more than'} {limit_hours} h)",
                   counts={"last_successful_sync": last_success.isoformat(), "age_hours": hours,
                           "max_age_hours": limit_hours})


def blank(value: Any) -> bool:
    """None, NaN (pandas' missing value), or a key made only of those."""
    if isinstance(value, tuple):
        return all(blank(part) for part in value)
    return value is None or (isinstance(value, float) and math.isnan(value))
