"""From what the two instances hold to a plan: creates, updates, conflicts, pending objects and orphans.

For one model: every production object is translated into VeritasBot's terms (references through the
identity map, tags and custom fields normalized), both sides become diffsync models derived from the
registry entry, diffsync computes the difference once, and each difference becomes a write, a conflict
(a discovery-owned field that production would change), or nothing. The diffsync attributes carry the
values to write and compare by their canonical form, so a diff element holds everything a write needs:
the production values ("+") and VeritasBot's ("-") of exactly the fields that differ. No I/O happens
here beyond the catalog's lazy reads.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Iterable, Mapping, Protocol

import structlog
from diffsync import Adapter, DiffSyncModel

from .catalog import Catalog, Match, Side
from .policy import PrecedencePolicy
from .registry import MODELS, Field, ModelSpec
from .trees import depths
from .values import ref_id


@dataclass
class Write:
    label: str
    action: str  # "create" | "update"
    veritas_id: str
    production_id: str
    name: str
    body: dict
    # field -> (VeritasBot before, after), for the audit trail: credential-bearing fields as digests
    changes: dict[str, tuple[Any, Any]]
    level: int = 0  # tree depth among this run's creates: parents are written first
    # The values this write sets, in the planner's terms (translated references, tags without the managed
    # ones): what VeritasBot must hold for a write whose answer was lost to count as landed.
    intended: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Conflict:
    label: str
    veritas_id: str
    name: str
    field: str
    production_value: Any  # as shown: references by display name and id, credentials as digests
    veritas_value: Any
    rule: str
    production_id: str = ""


# The rule for an adopted object whose model discovery jobs do not create (a status, a role, ... that both
# instances made at install): no discovery owner, so every field follows production.
FOLLOWS_PRODUCTION = "follows production: adopted, of a model discovery jobs do not create (discovery_owned_models)"


@dataclass(frozen=True)
class Pending:
    """A reference that cannot resolve in VeritasBot (yet). Blocking: the object itself is not written."""

    label: str
    production_id: str
    name: str
    field: str
    reason: str
    blocking: bool


IDENTITY_ACTION = "match"  # a Failure's action when the object has no VeritasBot counterpart of its own


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
    adoption_rules: dict[str, str] = field(default_factory=dict)  # production id -> the precedence rule applied
    covered: set[str] = field(default_factory=set)  # VeritasBot ids of the objects planned (conflict accounting)
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
class Holders(Protocol):
    """Which VeritasBot objects hold discovered devices or VMs (engine/holders.py asks VeritasBot)."""

    def prefetch(self, label: str, veritas_ids: Iterable[str]) -> None:
        """Find out for these objects at once: `holds` will ask about them."""

    def holds(self, label: str, veritas_id: str) -> bool: ...


def _route_diffsync_logs() -> None:
    """diffsync logs every diff through structlog at info level. Unless the application configured
    structlog itself, send those records to the standard `diffsync` logger, kept at WARNING."""
    if not structlog.is_configured():
        structlog.configure(logger_factory=structlog.stdlib.LoggerFactory(),
                            wrapper_class=structlog.stdlib.BoundLogger)
    logging.getLogger("diffsync").setLevel(logging.WARNING)


class Compared:
    """A diffsync attribute value: compared by its canonical form, it carries the value itself (as it
    would be written, or as VeritasBot holds it), so that the diff alone says what to write."""

    __slots__ = ("value", "canonical")

    def __init__(self, value: Any, canonical: Any):
        self.value = value
        self.canonical = canonical

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Compared) and self.canonical == other.canonical

    def __hash__(self) -> int:
        return hash(self.canonical)

    def __repr__(self) -> str:
        return repr(self.value)


# Attribute names get a prefix so that no Nautobot field name can shadow a pydantic method. A field whose
# handling compares it key by key (custom fields) is one attribute per key, so that the diff names the keys
# that differ: "k_<field>__<key>" (Django field names never hold a double underscore).
FIELD_PREFIX, KEYED_PREFIX, KEY_SEPARATOR = "f_", "k_", "__"


def _attribute(field_name: str, key: str | None) -> str:
    return FIELD_PREFIX + field_name if key is None else f"{KEYED_PREFIX}{field_name}{KEY_SEPARATOR}{key}"


@cache
def diffsync_model(spec: ModelSpec, attributes: tuple[str, ...]) -> type[DiffSyncModel]:
    """The diffsync model of a registry entry: identified by the VeritasBot id and the production id it
    stands for, one attribute per compared field (or per key of a field compared key by key)."""
    namespace = {
        "__annotations__": {"veritas_id": str, "production_id": str, **dict.fromkeys(attributes, Any)},
        "__module__": __name__,
        "_modelname": spec.name,
        "_identifiers": ("veritas_id", "production_id"),
        "_attributes": attributes,
        **dict.fromkeys(attributes),
    }
    return type(f"Sync_{spec.name}", (DiffSyncModel,), namespace)


def _adapter_for(model: type[DiffSyncModel], side: Side) -> Adapter:
    adapter_class = type(f"{side.value.title()}Adapter_{model.__name__}", (Adapter,),
                         {model._modelname: model, "top_level": [model._modelname]})
    return adapter_class(name=side.value)


def _attributes(spec: ModelSpec, values: dict) -> dict[str, Compared]:
    """Translated field values (all of an object's, or some) as diffsync attributes."""
    attributes = {}
    for spec_field in spec.comparable():
        if spec_field.name not in values:
            continue
        value = values[spec_field.name]
        if value is UNRESOLVED:
            attributes[_attribute(spec_field.name, None)] = Compared(value, value)
            continue
        for key, item in spec_field.handling.parts(value).items():
            attributes[_attribute(spec_field.name, key)] = Compared(item, spec_field.canonical(item))
    return attributes


def _values(attributes: dict[str, Any]) -> dict[str, Any]:
    """Field values back from diffsync attributes (all of an object's, or those of a diff)."""
    values: dict[str, Any] = {}
    for attribute, compared in attributes.items():
        if not isinstance(compared, Compared):
            continue  # a key this object does not have
        if attribute.startswith(KEYED_PREFIX):
            field_name, key = attribute[len(KEYED_PREFIX):].split(KEY_SEPARATOR, 1)
            values.setdefault(field_name, {})[key] = compared.value
        else:
            values[attribute[len(FIELD_PREFIX):]] = compared.value
    return values


def _digest(value: Any) -> str | None:
    """A credential-bearing value as the audit trail and conflicts keep it: equal values, equal digests."""
    if value is None:
        return None
    return "sha256:" + hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def recorded_value(spec_field: Field, value: Any) -> Any:
    """A value as the state database records it (audit trail, journal): credentials only as a digest."""
    return _digest(value) if spec_field.credentials else value


class Planner:
    def __init__(self, catalog: Catalog, policy: PrecedencePolicy, sync_tag_id: str | None,
                 discovery_tag_ids: frozenset[str], holders: Holders):
        _route_diffsync_logs()
        self.catalog = catalog
        self.policy = policy
        self.sync_tag_id = sync_tag_id
        self.discovery_tag_ids = discovery_tag_ids
        self.managed_tag_ids = discovery_tag_ids | ({sync_tag_id} if sync_tag_id else set())
        self.holders = holders  # which VeritasBot objects hold discovered devices or VMs
        # Production ids that will not exist in VeritasBot after this run (failed or pending objects).
        self.unavailable: dict[str, dict[str, str]] = {}
        self._orphans: dict[str, list[tuple[str, str]]] = {}

    # ---------------------------------------------------------------- public
    def plan(self, spec: ModelSpec, production_ids: set[str] | None = None) -> ModelPlan:
        """Plan one model; with `production_ids`, only those objects (an incremental run)."""
        production_rows = self.catalog.rows(Side.PRODUCTION, spec.label)
        veritas_rows = self.catalog.rows(Side.VERITAS, spec.label)
        plan = ModelPlan(spec, production_count=len(production_rows), veritas_count=len(veritas_rows))
        selected = production_rows if production_ids is None else {
            pid: row for pid, row in production_rows.items() if pid in production_ids}

        self.catalog.prepare_references(spec, selected.values())
        translated: list[tuple[str, str, dict]] = []  # (VeritasBot id, production id, desired values)
        # Parents first: a child sees whether its parent is writable in this run before it is translated.
        for production_id in self._parents_first(spec, selected):
            veritas_id = self._veritas_id_or_fail(spec, production_id, plan)
            if veritas_id is None:
                continue
            plan.covered.add(veritas_id)
            desired = self._translate(spec, production_id, selected[production_id], plan)
            if desired is not None:
                translated.append((veritas_id, production_id, desired))
        if not self.policy.discovery_owned(spec):
            self.holders.prefetch(spec.label, plan.adopted.values())
        for production_id, veritas_id in plan.adopted.items():
            plan.adoption_rules[production_id] = self.touched_rule(
                spec, veritas_id, veritas_rows[veritas_id], adopted=True) or FOLLOWS_PRODUCTION

        wanted = [_attributes(spec, desired) for _veritas_id, _production_id, desired in translated]
        model = diffsync_model(spec, tuple(sorted({name for attributes in wanted for name in attributes})))
        source, target = _adapter_for(model, Side.PRODUCTION), _adapter_for(model, Side.VERITAS)
        for (veritas_id, production_id, desired), attributes in zip(translated, wanted):
            source.add(model(veritas_id=veritas_id, production_id=production_id, **attributes))
            row = veritas_rows.get(veritas_id)
            if row is not None:
                target.add(model(veritas_id=veritas_id, production_id=production_id,
                                 **_attributes(spec, self._current(spec, row, desired))))

        if production_ids is None:  # orphans only make sense against the whole of production
            plan.orphans = self.orphans(spec)

        adopted = set(plan.adopted.values())
        changed: set[str] = set()
        elements = list(target.diff_from(source).get_children())
        self.holders.prefetch(spec.label, [element.keys["veritas_id"] for element in elements
                                           if element.action == "update"])
        for element in elements:
            veritas_id, production_id = element.keys["veritas_id"], element.keys["production_id"]
            if element.action == "create":
                changed.add(veritas_id)
                desired = _values(element.source_attrs)
                create = self._create(spec, production_id, veritas_id, desired)
                plan.writes.append(create)
                follow_up = self._deferred_update(spec, create, desired)
                if follow_up:
                    plan.deferred.append(follow_up)
            elif element.action == "update":
                now, later = self._update(spec, production_id, veritas_id, element, veritas_rows[veritas_id], plan,
                                          veritas_id in adopted)
                plan.writes += now
                plan.deferred += later
                if now or later:
                    changed.add(veritas_id)
        for veritas_id, production_id, desired in translated:
            if veritas_id not in changed and veritas_id in veritas_rows:
                healing = self._sync_tag_restored(spec, production_id, veritas_id, desired, veritas_rows[veritas_id])
                if healing:
                    changed.add(veritas_id)
                    (plan.deferred if healing.body.keys() & set(spec.deferred) else plan.writes).append(healing)
        plan.unchanged = len(translated) - len(changed)
        self._assign_levels(spec, plan)
        return plan

    def _parents_first(self, spec: ModelSpec, rows: Mapping[str, dict]) -> list[str]:
        if not spec.tree:
            return list(rows)
        depth = depths(rows, {object_id: ref_id(row.get(spec.tree)) for object_id, row in rows.items()})
        return sorted(rows, key=depth.__getitem__)

    def orphans(self, spec: ModelSpec) -> list[tuple[str, str]]:
        """(VeritasBot id, name) of the objects the sync wrote (they carry its tag) that production no
        longer has: computed once per run and model, against the whole of production. Never an object
        discovery owns: one carrying a discovery tag, or one the sync ever adopted."""
        if spec.label not in self._orphans:
            matched: set[str] = set()  # every VeritasBot object a production object stands for, even unwritable
            for production_id in self.catalog.rows(Side.PRODUCTION, spec.label):
                identity = self.catalog.identity(spec.label, production_id)
                matched.update(identity.candidates or [identity.veritas_id or production_id])
            ever_adopted = set(self.catalog.remembered_adoptions(spec.label).values())
            orphans = []
            for veritas_id, row in self.catalog.rows(Side.VERITAS, spec.label).items():
                tags = spec.tag_ids(row)
                if veritas_id in matched or veritas_id in ever_adopted or self.sync_tag_id not in tags \
                        or tags & self.discovery_tag_ids:
                    continue
                orphans.append((veritas_id, str(row.get("display") or veritas_id)))
            self._orphans[spec.label] = orphans
        return self._orphans[spec.label]

    def synced_count(self, spec: ModelSpec) -> int:
        """How many of the model's VeritasBot objects carry the sync tag (the base of prune_max_fraction)."""
        return sum(1 for row in self.catalog.rows(Side.VERITAS, spec.label).values()
                   if self.sync_tag_id in spec.tag_ids(row))

    def mark_unavailable(self, label: str, production_id: str, reason: str) -> None:
        self.unavailable.setdefault(label, {})[production_id] = reason

    # ---------------------------------------------------------------- identity
    def _veritas_id_or_fail(self, spec: ModelSpec, production_id: str, plan: ModelPlan) -> str | None:
        identity = self.catalog.identity(spec.label, production_id)
        name = self.catalog.display(Side.PRODUCTION, spec.label, production_id)
        if identity.match is Match.AMBIGUOUS:
            error = (f"{len(identity.candidates)} objects in VeritasBot share its natural key "
                     f"({', '.join(identity.candidates)}); refusing to guess which one it is")
            plan.failures.append(Failure(spec.label, production_id, name, IDENTITY_ACTION, error))
            self.mark_unavailable(spec.label, production_id, "ambiguous in VeritasBot")
            return None
        if identity.match is Match.CLAIMED:
            plan.failures.append(Failure(spec.label, production_id, name, IDENTITY_ACTION,
                                         self._claim_error(spec, production_id, identity)))
            self.mark_unavailable(spec.label, production_id, "in an identity conflict")
            return None
        if identity.match is Match.ADOPTED:
            plan.adopted[production_id] = identity.veritas_id
            return identity.veritas_id
        return identity.veritas_id or production_id

    def _claim_error(self, spec: ModelSpec, production_id: str, identity: Any) -> str:
        """Both production objects, the VeritasBot object, why the other keeps it, and what to do."""
        def production(object_id: str) -> str:
            return f"{self.catalog.display(Side.PRODUCTION, spec.label, object_id)!r} ({object_id})"

        holder, veritas_id = identity.claimed_by, identity.veritas_id
        why = ("an earlier run adopted it for that object"
               if self.catalog.identity(spec.label, holder).remembered
               else "that object is the older of the production objects sharing this natural key")
        veritas = f"{self.catalog.display(Side.VERITAS, spec.label, veritas_id)!r} ({veritas_id})"
        return (f"production {spec.label} {production(production_id)} and {production(holder)} both claim "
                f"VeritasBot's {veritas}; it stays the counterpart of {production(holder)} ({why}), so "
                f"{production(production_id)} is not synced. To sync it, make the natural keys differ: rename one "
                f"of the two in production, or, if VeritasBot's object should follow a rename of the other, "
                f"rename it in VeritasBot")

    def resolve(self, label: str | None, production_id: str | None) -> tuple[str | None, str | None]:
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
            # A child whose parent cannot be written waits: created without it, it would stand at the root.
            blocking = field_name in spec.required or field_name == spec.tree
            blocked |= blocking
            plan.pending.append(Pending(spec.label, production_id, name, field_name, reason, blocking))
            desired[field_name] = UNRESOLVED

        for spec_field in spec.comparable():
            translated = spec_field.handling.translate(spec_field, row, self)
            plan.pending += [Pending(spec.label, production_id, name, spec_field.name, reason, False)
                             for reason in translated.pending]
            if translated.problem:
                unresolved(spec_field.name, translated.problem)
            else:
                desired[spec_field.name] = translated.value
        if blocked:
            self.mark_unavailable(spec.label, production_id, "pending")
            return None
        return desired

    def _current(self, spec: ModelSpec, row: dict, desired: dict) -> dict:
        """VeritasBot's values in the same shape, restricted to what the sync manages."""
        current: dict[str, Any] = {}
        for spec_field in spec.comparable():
            field_name = spec_field.name
            if field_name not in desired:
                continue
            if desired[field_name] is UNRESOLVED:
                current[field_name] = UNRESOLVED  # left out of the write, so never a difference
            else:
                current[field_name] = spec_field.handling.current(spec_field, row, desired[field_name], self)
        return current

    # ---------------------------------------------------------------- writes
    def _create(self, spec: ModelSpec, production_id: str, veritas_id: str, desired: dict) -> Write:
        body, intended = {"id": veritas_id}, {}
        for spec_field in spec.comparable():
            value = desired.get(spec_field.name, spec_field.handling.empty())
            if value is UNRESOLVED or spec_field.name in spec.deferred:
                continue
            intended[spec_field.name] = value
            body[spec_field.name] = spec_field.handling.created(spec_field, value, self)
        changes = {name: (None, recorded_value(spec.field(name), value))
                   for name, value in body.items() if name != "id"}
        return Write(spec.label, "create", veritas_id, production_id,
                     self.catalog.display(Side.PRODUCTION, spec.label, production_id), body, changes,
                     intended=intended)

    def tags_to_write(self, tag_ids) -> list[dict]:
        return [*({"id": tag} for tag in tag_ids), {"name": self.policy.sync_tag}]

    def _deferred_update(self, spec: ModelSpec, create: Write, desired: dict) -> Write | None:
        intended = {spec_field.name: desired[spec_field.name] for spec_field in spec.deferred_fields()
                    if desired.get(spec_field.name) is not None and desired[spec_field.name] is not UNRESOLVED}
        values = {name: spec.field(name).handling.created(spec.field(name), value, self)
                  for name, value in intended.items()}
        if not values:
            return None
        return Write(spec.label, "update", create.veritas_id, create.production_id, create.name,
                     {"id": create.veritas_id, **values},
                     {name: (None, recorded_value(spec.field(name), value)) for name, value in values.items()},
                     intended=intended)

    def _update(self, spec: ModelSpec, production_id: str, veritas_id: str, element: Any, row: dict,
                plan: ModelPlan, adopted: bool) -> tuple[list[Write], list[Write]]:
        """The writes of one diff element, (now, at the end of the group): its differing fields, each
        production's ("+") over VeritasBot's ("-"), except the fields discovery owns on a discovery-touched
        object (conflicts). Deferred fields wait for the end of the group, as on a create."""
        difference = element.get_attrs_diffs()
        wanted, held = _values(difference.get("+", {})), _values(difference.get("-", {}))
        name = self.catalog.display(Side.VERITAS, spec.label, veritas_id)
        touched_rule = self.touched_rule(spec, veritas_id, row, adopted)
        # deferred? -> (body, changes, intended)
        parts: dict[bool, tuple[dict, dict, dict]] = {False: ({}, {}, {}), True: ({}, {}, {})}
        for spec_field in spec.comparable():
            if spec_field.name not in wanted:
                continue
            want, have = wanted[spec_field.name], held.get(spec_field.name)
            if touched_rule and spec_field.name not in self.policy.safe_fields(spec):
                plan.conflicts.append(Conflict(
                    spec.label, veritas_id, name, spec_field.name,
                    self._shown(spec_field, want, _values(element.source_attrs)),
                    self._shown(spec_field, have, row), touched_rule, production_id))
                continue
            body, changes, intended = parts[spec_field.name in spec.deferred]
            body[spec_field.name] = spec_field.handling.written(spec_field, want, row, self)
            intended[spec_field.name] = want
            changes[spec_field.name] = (recorded_value(spec_field, have), recorded_value(spec_field, want))
        writes: tuple[list[Write], list[Write]] = ([], [])
        for deferred, (body, changes, intended) in parts.items():
            if not changes:
                continue
            tags = spec.tags_field  # every update restates the tags, so the sync tag stays
            if tags and tags.name not in body:
                intended[tags.name] = _values(element.source_attrs)[tags.name]
                body[tags.name] = tags.handling.written(tags, intended[tags.name], row, self)
            writes[deferred].append(Write(spec.label, "update", veritas_id, production_id, name,
                                          {"id": veritas_id, **body}, changes, intended=intended))
        return writes

    def _sync_tag_restored(self, spec: ModelSpec, production_id: str, veritas_id: str, desired: dict,
                           row: dict) -> Write | None:
        """An update giving back the sync tag to an object the sync created (it has its production UUID)
        that lost it: removed by hand, or the create's follow-up update of a deferred tag failed."""
        if veritas_id != production_id or self.sync_tag_id is None:
            return None
        tags = spec.tags_field
        if tags is None or self.sync_tag_id in tags.target_ids(row):
            return None
        held = tags.target_ids(row)
        name = self.catalog.display(Side.VERITAS, spec.label, veritas_id)
        return Write(spec.label, "update", veritas_id, production_id, name,
                     {"id": veritas_id, tags.name: tags.handling.written(tags, desired[tags.name], row, self)},
                     {tags.name: (sorted(held), sorted({*held, self.sync_tag_id}))},
                     intended={tags.name: desired[tags.name]})

    def _shown(self, spec_field: Field, value: Any, values: dict) -> Any:
        """A conflict's value as an operator reads it: each referenced object by display name and id (`values`,
        the side's whole object, names a generic reference's model)."""
        if spec_field.credentials:
            return _digest(value)
        return spec_field.handling.shown(spec_field, value, values, self)

    def described(self, label: str | None, object_id: str) -> str:
        """"Active (id)": the VeritasBot object's name, or production's for one this run creates."""
        for side in (Side.VERITAS, Side.PRODUCTION):
            if label in MODELS and object_id in self.catalog.rows(side, label):
                return f"{self.catalog.display(side, label, object_id)} ({object_id})"
        return object_id

    def written_as_intended(self, spec: ModelSpec, write: Write, row: dict) -> bool:
        """Whether VeritasBot's `row` holds what `write` set, compared as the diff compares: how a write whose
        answer was lost is told apart from one that never landed. Runs in the writer threads: it reads only
        `row`, the write and the planner's fixed tag ids, never the catalog."""
        return _attributes(spec, self._current(spec, row, write.intended)) == _attributes(spec, write.intended)

    def touched_rule(self, spec: ModelSpec, veritas_id: str, row: dict, adopted: bool) -> str | None:
        """Why discovery owns this object, or None when the sync may write every field."""
        # Read off the row itself, not the declared tags field: a discovery tag wins on any model that carries one.
        if any(ref_id(tag) in self.discovery_tag_ids for tag in row.get("tags") or ()):
            return "discovery tag: discovery owns this object"
        if adopted and self.policy.discovery_owned(spec):
            return "adopted: VeritasBot had this object before the sync, and discovery jobs create its model"
        if self.holders.holds(spec.label, veritas_id):
            return "holds discovered devices or virtual machines"
        return None

    @staticmethod
    def _assign_levels(spec: ModelSpec, plan: ModelPlan) -> None:
        """Tree depth among this run's creates: the applier writes parents before their children."""
        if not spec.tree:
            return
        creates = {write.veritas_id: write for write in plan.creates}
        parent_of = {veritas_id: parent if (parent := write.body.get(spec.tree)) in creates else None
                     for veritas_id, write in creates.items()}
        for veritas_id, depth in depths(creates, parent_of).items():
            creates[veritas_id].level = depth
