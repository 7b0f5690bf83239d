"""From what the two instances hold to a plan: creates, updates, conflicts, pending objects and orphans.

For one model: every production object is translated into VeritasBot's terms (references through the
identity map, tags and custom fields normalized), both sides become diffsync models derived from the
registry entry, diffsync computes the difference, and each difference becomes a write, a conflict
(a discovery-owned field that production would change), or nothing. No I/O happens here beyond the
catalog's lazy reads.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import structlog
from diffsync import Adapter, DiffSyncModel

from .catalog import Catalog, Match, Side
from .policy import PrecedencePolicy
from .registry import MODELS, ModelSpec
from .values import content_type_label, ref_id


@dataclass
class Write:
    label: str
    action: str  # "create" | "update"
    veritas_id: str
    production_id: str
    name: str
    body: dict
    changes: dict[str, tuple[Any, Any]]  # field -> (VeritasBot before, after), for the audit trail
    level: int = 0  # tree depth among this run's creates: parents are written first


@dataclass(frozen=True)
class Conflict:
    label: str
    veritas_id: str
    name: str
    field: str
    production_value: Any
    veritas_value: Any
    rule: str


@dataclass(frozen=True)
class Pending:
    """A reference that cannot resolve in VeritasBot (yet). Blocking: the object itself is not written."""

    label: str
    production_id: str
    name: str
    field: str
    reason: str
    blocking: bool


@dataclass(frozen=True)
class Failure:
    label: str
    object_id: str
    name: str
    action: str
    error: Any


@dataclass
class ModelPlan:
    spec: ModelSpec
    production_count: int = 0
    veritas_count: int = 0
    writes: list[Write] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)  # found while planning (ambiguous identity)
    adopted: dict[str, str] = field(default_factory=dict)  # production id -> VeritasBot id
    unchanged: int = 0
    orphans: list[tuple[str, str]] = field(default_factory=list)  # (VeritasBot id, name), carry the sync tag
    deferred: list[Write] = field(default_factory=list)  # updates written once the whole group exists

    @property
    def creates(self) -> list[Write]:
        return [write for write in self.writes if write.action == "create"]

    @property
    def updates(self) -> list[Write]:
        return [write for write in self.writes if write.action == "update"]


class _Unresolved:
    """Marks a reference that could not be translated: it is left out of the write."""

    def __repr__(self) -> str:
        return "<unresolved>"


UNRESOLVED = _Unresolved()


@cache
def _route_diffsync_logs() -> None:
    """diffsync logs every diff through structlog at info level. Unless the application configured
    structlog itself, send those records to the standard `diffsync` logger, kept at WARNING."""
    if not structlog.is_configured():
        structlog.configure(logger_factory=structlog.stdlib.LoggerFactory(),
                            wrapper_class=structlog.stdlib.BoundLogger)
    logging.getLogger("diffsync").setLevel(logging.WARNING)


@cache
def diffsync_model(spec: ModelSpec) -> type[DiffSyncModel]:
    """The diffsync model of a registry entry: one identifier (the VeritasBot id), one attribute per field.

    Attribute names get a prefix so that no Nautobot field name can shadow a pydantic method.
    """
    annotations = {"uid": str, **{f"f_{name}": Any for name in spec.compared_fields}}
    namespace = {
        "__annotations__": annotations,
        "__module__": __name__,
        "_modelname": spec.name,
        "_identifiers": ("uid",),
        "_attributes": tuple(f"f_{name}" for name in spec.compared_fields),
        **{f"f_{name}": None for name in spec.compared_fields},
    }
    return type(f"Sync_{spec.name}", (DiffSyncModel,), namespace)


def _adapter_for(spec: ModelSpec, side: Side) -> Adapter:
    model = diffsync_model(spec)
    adapter_class = type(f"{side.value.title()}Adapter_{spec.name}", (Adapter,),
                         {spec.name: model, "top_level": [spec.name]})
    return adapter_class(name=side.value)


class Planner:
    def __init__(self, catalog: Catalog, policy: PrecedencePolicy, sync_tag_id: str | None,
                 discovery_tag_ids: frozenset[str], holders: dict[str, set[str]]):
        _route_diffsync_logs()
        self.catalog = catalog
        self.policy = policy
        self.sync_tag_id = sync_tag_id
        self.discovery_tag_ids = discovery_tag_ids
        self.managed_tag_ids = discovery_tag_ids | ({sync_tag_id} if sync_tag_id else set())
        self.holders = holders  # label -> VeritasBot ids that hold discovered devices or VMs
        # Production ids that will not exist in VeritasBot after this run (failed or pending objects).
        self.unavailable: dict[str, dict[str, str]] = {}

    # ---------------------------------------------------------------- public
    def plan(self, spec: ModelSpec, production_ids: set[str] | None = None) -> ModelPlan:
        """Plan one model; with `production_ids`, only those objects (an incremental run)."""
        production_rows = self.catalog.rows(Side.PRODUCTION, spec.label)
        veritas_rows = self.catalog.rows(Side.VERITAS, spec.label)
        plan = ModelPlan(spec, production_count=len(production_rows), veritas_count=len(veritas_rows))
        selected = production_rows if production_ids is None else {
            pid: row for pid, row in production_rows.items() if pid in production_ids}

        source, target = _adapter_for(spec, Side.PRODUCTION), _adapter_for(spec, Side.VERITAS)
        model = diffsync_model(spec)
        desired_by_id: dict[str, dict] = {}
        production_of: dict[str, str] = {}
        matched: set[str] = set()  # every VeritasBot object a production object stands for, even unwritable
        for production_id, row in selected.items():
            veritas_id = self._veritas_id_or_fail(spec, production_id, plan)
            identity = self.catalog.identity(spec.label, production_id)
            matched.update(identity.candidates or [veritas_id])
            if veritas_id is None:
                continue
            desired = self._translate(spec, production_id, row, plan)
            if desired is None:
                continue
            desired_by_id[veritas_id] = desired
            production_of[veritas_id] = production_id
            source.add(model(uid=veritas_id, **self._comparable(spec, desired)))
            current = veritas_rows.get(veritas_id)
            if current is not None:
                target.add(model(uid=veritas_id, **self._comparable(spec, self._current(spec, current, desired))))

        adopted = set(plan.adopted.values())
        if production_ids is None:  # orphans only make sense against the whole of production
            plan.orphans = self._orphans(spec, veritas_rows, matched)

        diff = target.diff_from(source)
        changed: set[str] = set()
        for element in diff.get_children():
            veritas_id = element.keys["uid"]
            if element.action == "create":
                changed.add(veritas_id)
                create = self._create(spec, production_of[veritas_id], veritas_id, desired_by_id[veritas_id])
                plan.writes.append(create)
                follow_up = self._deferred_update(spec, create, desired_by_id[veritas_id])
                if follow_up:
                    plan.deferred.append(follow_up)
            elif element.action == "update":
                changed.add(veritas_id)
                write = self._update(spec, production_of[veritas_id], veritas_id, desired_by_id[veritas_id],
                                     veritas_rows[veritas_id], plan, veritas_id in adopted)
                if write:
                    plan.writes.append(write)
        plan.unchanged = len(desired_by_id) - len(changed)
        self._assign_levels(spec, plan)
        return plan

    def _orphans(self, spec: ModelSpec, veritas_rows: dict[str, dict], matched: set[str]) -> list[tuple[str, str]]:
        """Objects the sync wrote (they carry its tag) that production no longer has. Never an object
        discovery owns: one carrying a discovery tag, or one the sync ever adopted."""
        ever_adopted = set(self.catalog.remembered_adoptions(spec.label).values())
        orphans = []
        for veritas_id, row in veritas_rows.items():
            tags = {ref_id(tag) for tag in row.get("tags") or ()}
            if veritas_id in matched or veritas_id in ever_adopted or self.sync_tag_id not in tags \
                    or tags & self.discovery_tag_ids:
                continue
            orphans.append((veritas_id, str(row.get("display") or veritas_id)))
        return orphans

    def mark_unavailable(self, label: str, production_id: str, reason: str) -> None:
        self.unavailable.setdefault(label, {})[production_id] = reason

    # ---------------------------------------------------------------- identity
    def _veritas_id_or_fail(self, spec: ModelSpec, production_id: str, plan: ModelPlan) -> str | None:
        identity = self.catalog.identity(spec.label, production_id)
        name = self.catalog.display(Side.PRODUCTION, spec.label, production_id)
        if identity.match is Match.AMBIGUOUS:
            error = (f"{len(identity.candidates)} objects in VeritasBot share its natural key "
                     f"({', '.join(identity.candidates)}); refusing to guess which one it is")
            plan.failures.append(Failure(spec.label, production_id, name, "match", error))
            self.mark_unavailable(spec.label, production_id, "ambiguous in VeritasBot")
            return None
        if identity.match is Match.ADOPTED:
            plan.adopted[production_id] = identity.veritas_id
            return identity.veritas_id
        return identity.veritas_id or production_id

    def _resolve(self, label: str, production_id: str | None) -> tuple[str | None, str | None]:
        """(VeritasBot id, None) or (None, why not)."""
        if production_id is None:
            return None, None
        spec = MODELS.get(label)
        if spec is None:
            return None, f"references a {label}, which the sync does not know"
        if production_id in self.unavailable.get(label, {}):
            name = self.catalog.display(Side.PRODUCTION, label, production_id)
            return None, f"{label} {name!r} is {self.unavailable[label][production_id]}"
        identity = self.catalog.identity(label, production_id)
        if identity.match in (Match.SAME, Match.ADOPTED):
            return identity.veritas_id, None
        if production_id not in self.catalog.rows(Side.PRODUCTION, label):
            return None, f"{label} {production_id} does not exist in production"
        if spec.synced and identity.match is Match.ABSENT:
            return production_id, None  # created by this run under its production UUID
        name = self.catalog.display(Side.PRODUCTION, label, production_id)
        return None, f"{label} {name!r} is not in VeritasBot"

    # ---------------------------------------------------------------- translation
    def _translate(self, spec: ModelSpec, production_id: str, row: dict, plan: ModelPlan) -> dict | None:
        """Production values in VeritasBot's terms, as they would be written. None if not writable."""
        name = self.catalog.display(Side.PRODUCTION, spec.label, production_id)
        desired: dict[str, Any] = {}
        blocked = False

        def unresolved(field_name: str, reason: str) -> None:
            nonlocal blocked
            blocking = field_name in spec.required
            blocked |= blocking
            plan.pending.append(Pending(spec.label, production_id, name, field_name, reason, blocking))
            desired[field_name] = UNRESOLVED

        for field_name in spec.compared_fields:
            value = row.get(field_name)
            if field_name in spec.refs:
                resolved, reason = self._resolve(spec.refs[field_name], ref_id(value))
                if reason:
                    unresolved(field_name, reason)
                else:
                    desired[field_name] = resolved
            elif field_name in spec.generic:
                target_label = content_type_label(row.get(spec.generic[field_name]))
                resolved, reason = self._resolve(target_label, ref_id(value))
                if reason:
                    unresolved(field_name, reason)
                else:
                    desired[field_name] = resolved
            elif field_name in spec.m2m or field_name == "tags":
                target_label = spec.m2m.get(field_name, "extras.tag")
                ids = []
                for item in value or ():
                    resolved, reason = self._resolve(target_label, ref_id(item))
                    if reason:
                        plan.pending.append(Pending(spec.label, production_id, name, field_name, reason, False))
                    elif resolved not in self.managed_tag_ids or field_name != "tags":
                        ids.append(resolved)
                desired[field_name] = sorted(set(ids))
            elif field_name in spec.union:
                desired[field_name] = sorted(set(value or ()))
            elif field_name == "custom_fields":
                desired[field_name] = dict(value or {})
            elif isinstance(value, dict) and set(value) == {"value", "label"}:
                desired[field_name] = value["value"]
            else:
                desired[field_name] = value
        if blocked:
            self.mark_unavailable(spec.label, production_id, "pending")
            return None
        return desired

    def _current(self, spec: ModelSpec, row: dict, desired: dict) -> dict:
        """VeritasBot's values in the same shape, restricted to what the sync manages."""
        current: dict[str, Any] = {}
        for field_name in spec.compared_fields:
            value = row.get(field_name)
            if desired.get(field_name) is UNRESOLVED:
                current[field_name] = UNRESOLVED  # left out of the write, so never a difference
            elif field_name in spec.refs or field_name in spec.generic:
                current[field_name] = ref_id(value)
            elif field_name == "tags":
                current[field_name] = sorted({ref_id(tag) for tag in value or ()} - self.managed_tag_ids)
            elif field_name in spec.m2m:
                current[field_name] = sorted({ref_id(item) for item in value or ()})
            elif field_name in spec.union:
                # Only additions are written: what VeritasBot allows beyond production stays.
                current[field_name] = sorted(set(value or ()) & set(desired[field_name]))
            elif field_name == "custom_fields":
                values = value or {}
                current[field_name] = {key: values.get(key) for key in desired[field_name]}
            elif isinstance(value, dict) and set(value) == {"value", "label"}:
                current[field_name] = value["value"]
            else:
                current[field_name] = value
        return current

    @staticmethod
    def _comparable(spec: ModelSpec, values: dict) -> dict:
        comparable = {}
        for field_name, value in values.items():
            if value is UNRESOLVED:
                comparable[f"f_{field_name}"] = "<unresolved>"
            elif field_name == "custom_fields":
                comparable[f"f_{field_name}"] = json.dumps(
                    {key: spec.normalize(field_name, item) for key, item in sorted(value.items())}, default=str)
            else:
                comparable[f"f_{field_name}"] = spec.normalize(field_name, value)
        return comparable

    # ---------------------------------------------------------------- writes
    def _create(self, spec: ModelSpec, production_id: str, veritas_id: str, desired: dict) -> Write:
        body = {"id": veritas_id}
        for field_name, value in desired.items():
            if value is UNRESOLVED or field_name in spec.deferred:
                continue
            body[field_name] = value
        if spec.tags and "tags" not in spec.deferred:
            body["tags"] = self._tags_to_write(desired["tags"])
        changes = {name: (None, value) for name, value in body.items() if name != "id"}
        return Write(spec.label, "create", veritas_id, production_id,
                     self.catalog.display(Side.PRODUCTION, spec.label, production_id), body, changes)

    def _tags_to_write(self, tag_ids) -> list[dict]:
        return [*({"id": tag} for tag in tag_ids), {"name": self.policy.sync_tag}]

    def _deferred_update(self, spec: ModelSpec, create: Write, desired: dict) -> Write | None:
        values = {name: desired[name] for name in spec.deferred
                  if desired.get(name) is not None and desired[name] is not UNRESOLVED}
        if "tags" in values:
            values["tags"] = self._tags_to_write(values["tags"])
        if not values:
            return None
        return Write(spec.label, "update", create.veritas_id, create.production_id, create.name,
                     {"id": create.veritas_id, **values}, {name: (None, value) for name, value in values.items()})

    def _update(self, spec: ModelSpec, production_id: str, veritas_id: str, desired: dict, row: dict,
                plan: ModelPlan, adopted: bool) -> Write | None:
        current = self._current(spec, row, desired)
        name = self.catalog.display(Side.VERITAS, spec.label, veritas_id)
        touched_rule = self.touched_rule(spec, veritas_id, row, adopted)
        body: dict[str, Any] = {"id": veritas_id}
        changes: dict[str, tuple[Any, Any]] = {}
        for field_name in spec.compared_fields:
            want, have = desired[field_name], current[field_name]
            if want is UNRESOLVED:
                continue
            if field_name == "custom_fields":
                want = {key: item for key, item in want.items()
                        if spec.normalize(field_name, item) != spec.normalize(field_name, have.get(key))}
                if not want:
                    continue
                have = {key: have.get(key) for key in want}
            elif spec.normalize(field_name, want) == spec.normalize(field_name, have):
                continue
            if touched_rule and field_name not in self.policy.safe_fields(spec):
                plan.conflicts.append(Conflict(spec.label, veritas_id, name, field_name, want, have, touched_rule))
                continue
            body[field_name] = self._write_value(spec, field_name, want, row)
            changes[field_name] = (have, want)
        if not changes:
            return None
        if spec.tags and "tags" not in body:
            body["tags"] = self._write_value(spec, "tags", desired["tags"], row)
        return Write(spec.label, "update", veritas_id, production_id, name, body, changes)

    def _write_value(self, spec: ModelSpec, field_name: str, want: Any, row: dict) -> Any:
        if field_name in spec.union:
            return sorted(set(want) | set(row.get(field_name) or ()))
        if field_name == "tags":
            kept = {ref_id(tag) for tag in row.get("tags") or ()} & self.discovery_tag_ids
            return self._tags_to_write(sorted(set(want) | kept))
        return want

    def touched_rule(self, spec: ModelSpec, veritas_id: str, row: dict, adopted: bool) -> str | None:
        """Why discovery owns this object, or None when the sync may write every field."""
        if any(ref_id(tag) in self.discovery_tag_ids for tag in row.get("tags") or ()):
            return "discovery tag: discovery owns this object"
        if adopted:
            return "adopted: VeritasBot had this object before the sync"
        if veritas_id in self.holders.get(spec.label, ()):
            return "holds discovered devices or virtual machines"
        return None

    @staticmethod
    def _assign_levels(spec: ModelSpec, plan: ModelPlan) -> None:
        if not spec.tree:
            return
        creates = {write.veritas_id: write for write in plan.creates}

        def depth(write: Write, seen: frozenset = frozenset()) -> int:
            parent = write.body.get(spec.tree)
            if parent in creates and parent not in seen:
                return depth(creates[parent], seen | {write.veritas_id}) + 1
            return 0

        for write in creates.values():
            write.level = depth(write)
