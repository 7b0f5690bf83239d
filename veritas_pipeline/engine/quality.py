"""Data-quality checks of what the sync leaves in VeritasBot: pandas DataFrames in, findings out.

`GroupData` lays out one sync group's objects as DataFrames, read through a catalog (the run's own when
the checks run with the sync, so what it loaded and wrote; a fresh one when they run alone). Everything is
derived from the registry: natural keys, references (foreign keys, many-to-many, generic, tags), required
fields, trees and their types. The check functions below it are pure and know nothing of Nautobot.

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
from functools import cached_property
from typing import Any, Sequence

import pandas as pd
from sqlalchemy import select

from .catalog import Catalog, Match, Side
from .policy import PrecedencePolicy
from .registry import MODELS, ModelSpec, models_of_group
from .state import StateStore, writes
from .values import content_type_label, normalize, ref_id

PRODUCTION_COLUMNS = ["label", "id", "name", "key", "counterpart", "in_scope"]
VERITAS_COLUMNS = ["label", "id", "name", "key", "production_id", "sync_tag", "discovery_tag", "written"]
REFERENCE_COLUMNS = ["side", "label", "object_id", "field", "target_label", "target_id"]
FIELD_COLUMNS = ["label", "id", "name", "field", "required", "in_production", "in_veritas"]
TREE_COLUMNS = ["label", "id", "name", "parent", "type_id"]
TYPE_COLUMNS = ["label", "id", "name", "parent", "nestable"]
PRODUCTION, VERITAS = Side.PRODUCTION.value, Side.VERITAS.value


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
            findings += _misplaced_types(label, nodes, types[types["label"] == spec.refs[spec.tree_type]])
    return Outcome(not findings, f"{_plural(len(findings), 'misplaced node')} in {own['label'].nunique()} trees",
                   findings, {"nodes": len(own), "misplaced": len(findings)})


def _broken_branches(label: str, nodes: pd.DataFrame) -> list[Finding]:
    parent_of = {node: None if _blank(parent) else parent for node, parent in zip(nodes["id"], nodes["parent"])}
    name_of = dict(zip(nodes["id"], nodes["name"]))
    problem_of: dict[str, str] = {}  # broken nodes only
    sound: set[str] = set()  # nodes whose ancestry reaches a root

    def orphan(members: list[str]) -> None:
        cause = parent_of[members[-1]] if members else None
        for member in members:
            problem_of[member] = f"orphaned: under {name_of[cause]!r}, whose branch is broken"

    for start in sorted(parent_of):
        path: list[str] = []  # from `start` up towards a root
        node = start
        while True:
            if node in sound:
                sound.update(path)
                break
            if node in problem_of:
                orphan(path)
                break
            if node in path:
                cycle = path[path.index(node):]
                ring = " → ".join(str(name_of[member]) for member in (*cycle, node))
                for member in cycle:
                    problem_of[member] = f"in a parent cycle: {ring}"
                orphan(path[:path.index(node)])
                break
            path.append(node)
            parent = parent_of[node]
            if parent is None:
                sound.update(path)
                break
            if parent not in parent_of:
                problem_of[node] = f"its parent {parent} does not exist"
                orphan(path[:-1])
                break
            node = parent
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
        parent = None if _blank(row.parent) else row.parent
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


# ---------------------------------------------------------------------------------------------- reading

class GroupData:
    """One group's frames, read lazily through a catalog (each frame once)."""

    def __init__(self, catalog: Catalog, policy: PrecedencePolicy, state: StateStore | None, group: str):
        self.catalog = catalog
        self.policy = policy
        self.state = state
        self.group = group
        self.specs = models_of_group(group)

    # ------------------------------------------------------------ identities
    @cached_property
    def counterparts(self) -> dict[str, dict[str, str | None]]:
        """label -> production id -> its VeritasBot id (or None), for the group's and the synced models they
        reference."""
        labels = [spec.label for spec in self.specs]
        labels += sorted({target for spec in self.specs for target in self._targets(spec) if _is_synced(target)}
                         - set(labels))
        return {label: {production_id: self._counterpart(label, production_id)
                        for production_id in self.catalog.rows(Side.PRODUCTION, label)} for label in labels}

    def _counterpart(self, label: str, production_id: str) -> str | None:
        identity = self.catalog.identity(label, production_id)
        return identity.veritas_id if identity.match in (Match.SAME, Match.ADOPTED) else None

    @staticmethod
    def _targets(spec: ModelSpec) -> set[str]:
        return {*spec.refs.values(), *spec.m2m.values(), *(("extras.tag",) if spec.tags else ())}

    def _in_scope(self, spec: ModelSpec, row: dict) -> bool:
        for name in spec.required:
            target = content_type_label(row.get(spec.generic[name])) if name in spec.generic else spec.refs.get(name)
            target_id = ref_id(row.get(name))
            if target_id is None or _is_synced(target):
                continue
            if target not in MODELS or self._counterpart(target, target_id) is None:
                return False  # points at discovered data VeritasBot lacks: pending by design
        return True

    # ------------------------------------------------------------ frames
    @cached_property
    def production(self) -> pd.DataFrame:
        own = {spec.label for spec in self.specs}
        rows = []
        for label, mapping in self.counterparts.items():
            spec, table = MODELS[label], self.catalog.rows(Side.PRODUCTION, label)
            for production_id, counterpart in mapping.items():
                rows.append({"label": label, "id": production_id, "counterpart": counterpart,
                             "name": self.catalog.display(Side.PRODUCTION, label, production_id),
                             "key": self._key(Side.PRODUCTION, label, production_id) if label in own else None,
                             "in_scope": self._in_scope(spec, table[production_id])})
        return frame(rows, PRODUCTION_COLUMNS)

    @cached_property
    def veritas(self) -> pd.DataFrame:
        tag_ids = {row["name"]: tag_id for tag_id, row in self.catalog.rows(Side.VERITAS, "extras.tag").items()}
        sync_tag = tag_ids.get(self.policy.sync_tag)
        discovery_tags = {tag_ids[name] for name in self.policy.discovery_tags if name in tag_ids}
        written = self._written_ids()
        rows = []
        for spec in self.specs:
            stands_for = {veritas_id: production_id
                          for production_id, veritas_id in self.counterparts[spec.label].items() if veritas_id}
            for veritas_id, row in self.catalog.rows(Side.VERITAS, spec.label).items():
                tags = {ref_id(tag) for tag in row.get("tags") or ()} if spec.tags else set()
                rows.append({"label": spec.label, "id": veritas_id,
                             "name": self.catalog.display(Side.VERITAS, spec.label, veritas_id),
                             "key": self._key(Side.VERITAS, spec.label, veritas_id),
                             "production_id": stands_for.get(veritas_id), "sync_tag": sync_tag in tags,
                             "discovery_tag": bool(tags & discovery_tags), "written": veritas_id in written})
        own = {spec.label for spec in self.specs}
        referenced = set(self.references["target_label"]) - own
        for label in sorted(referenced):
            for veritas_id in self.catalog.rows(Side.VERITAS, label):
                rows.append({"label": label, "id": veritas_id,
                             "name": self.catalog.display(Side.VERITAS, label, veritas_id), "key": None,
                             "production_id": None, "sync_tag": False, "discovery_tag": False, "written": False})
        return frame(rows, VERITAS_COLUMNS)

    @cached_property
    def references(self) -> pd.DataFrame:
        rows = []
        for spec in self.specs:
            for side in Side:
                for object_id, row in self.catalog.rows(side, spec.label).items():
                    rows += [{"side": side.value, "label": spec.label, "object_id": object_id, "field": name,
                              "target_label": target, "target_id": target_id}
                             for name, target, target_id in _references(spec, row)]
        return frame(rows, REFERENCE_COLUMNS)

    @cached_property
    def fields(self) -> pd.DataFrame:
        rows = []
        for spec in self.specs:
            names = dict.fromkeys((*spec.required, *(name for name in spec.key
                                                     if name not in spec.refs and name not in spec.generic)))
            production_rows = self.catalog.rows(Side.PRODUCTION, spec.label)
            for production_id, veritas_id in self.counterparts[spec.label].items():
                if veritas_id is None:
                    continue
                veritas_row = self.catalog.rows(Side.VERITAS, spec.label)[veritas_id]
                rows += [{"label": spec.label, "id": veritas_id, "field": name, "required": name in spec.required,
                          "name": self.catalog.display(Side.VERITAS, spec.label, veritas_id),
                          "in_production": _is_set(spec, name, production_rows[production_id]),
                          "in_veritas": _is_set(spec, name, veritas_row)} for name in names]
        return frame(rows, FIELD_COLUMNS)

    @cached_property
    def trees(self) -> pd.DataFrame:
        rows = []
        for spec in self.specs:
            if not spec.tree:
                continue
            for veritas_id, row in self.catalog.rows(Side.VERITAS, spec.label).items():
                rows.append({"label": spec.label, "id": veritas_id, "parent": ref_id(row.get(spec.tree)),
                             "name": row.get("name") or self.catalog.display(Side.VERITAS, spec.label, veritas_id),
                             "type_id": ref_id(row.get(spec.tree_type)) if spec.tree_type else None})
        return frame(rows, TREE_COLUMNS)

    @cached_property
    def types(self) -> pd.DataFrame:
        rows = []
        for spec in self.specs:
            if not (spec.tree and spec.tree_type):
                continue
            type_spec = MODELS[spec.refs[spec.tree_type]]
            for type_id, row in self.catalog.rows(Side.VERITAS, type_spec.label).items():
                # Nautobot's `nestable`: a node may also sit under a node of its own type.
                rows.append({"label": type_spec.label, "id": type_id, "name": row.get("name") or type_id,
                             "parent": ref_id(row.get(type_spec.tree)), "nestable": bool(row.get("nestable"))})
        return frame(rows, TYPE_COLUMNS)

    def last_successful_sync(self) -> datetime | None:
        return self.state.last_successful_run(self.group) if self.state else None

    # ------------------------------------------------------------ helpers
    def _key(self, side: Side, label: str, object_id: str) -> tuple | None:
        key = self.catalog.natural_key(side, label, object_id)
        return None if _blank(key) else key

    def _written_ids(self) -> set[str]:
        """Objects of the group the sync ever created or updated, from the audit trail."""
        if self.state is None:
            return set()
        query = (select(writes.c.object_id).distinct()
                 .where(writes.c.model.in_([spec.label for spec in self.specs]), writes.c.succeeded.is_(True),
                        writes.c.action.in_(("create", "update"))))
        with self.state.engine.connect() as connection:
            return set(connection.execute(query).scalars())


def _references(spec: ModelSpec, row: dict):
    """(field, target model, target id) for every reference value of a row."""
    for name, target in spec.refs.items():
        if ref_id(row.get(name)):
            yield name, target, ref_id(row.get(name))
    for name, target in spec.m2m.items():
        for item in row.get(name) or ():
            yield name, target, ref_id(item)
    if spec.tags:
        for tag in row.get("tags") or ():
            yield "tags", "extras.tag", ref_id(tag)
    for name, type_field in spec.generic.items():
        target = content_type_label(row.get(type_field))
        if target in MODELS and ref_id(row.get(name)):
            yield name, target, ref_id(row.get(name))


def _blank(value: Any) -> bool:
    """None, NaN (pandas' missing value), or a key made only of those."""
    if isinstance(value, tuple):
        return all(_blank(part) for part in value)
    return value is None or (isinstance(value, float) and math.isnan(value))


def _is_set(spec: ModelSpec, name: str, row: dict) -> bool:
    value = row.get(name)
    if name in spec.refs or name in spec.generic:
        return ref_id(value) is not None
    return normalize(value) is not None
