"""What the two instances hold, and how an object of one is identified in the other.

The catalog reads each model's rows from each side once per run, on first use, in one of two ways:
- whole: every row (synced models in a full run; tags and tree models always);
- by need: only the rows asked for, by id, plus, on VeritasBot, those found by natural key through batched
  filters. Lookup models (discovered data: devices, interfaces, VMs...) are always read by need, and so are
  both sides of the synced models an incremental run plans by id. `prepare` batches the reads that the
  identities of many objects will need, so the planner and the checks ask once per model, not per object.

It answers:
- the natural key of any row (references resolved recursively on the row's own side);
- the VeritasBot id of a production object: the same UUID when it is there, else the object an earlier
  run adopted for it (remembered, if it still exists), else the object that has the same natural key
  (adopted), else none (the sync will create it under its production UUID). A VeritasBot object is the
  counterpart of at most one production object: when a second one claims it by natural key, the first
  keeps it (its remembered adoption; among production objects sharing a natural key, the oldest) and the
  second is CLAIMED, not synced.

Lookup matches: a full sync planned from the row snapshot (and the checks run alone) is handed the
lookup-model identities an earlier run resolved and no feed entry since has touched (`use_lookup_matches`),
and asks neither side about those objects, nor, for a match made by natural key, about their keys;
`lookup_matches` gives back this run's, with the ids each was read from and the key, to be kept for the next.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Iterable, Iterator

from .client import IncompleteRead, NautobotClient, NautobotUnavailable, QueryRefused
from .registry import MODELS, TAG_MODEL, ModelSpec
from .state import LookupMatch, storable_key
from .values import ref_id

log = logging.getLogger(__name__)


class Side(str, Enum):
    PRODUCTION = "production"
    VERITAS = "veritas"


class Match(str, Enum):
    SAME = "same"  # the production UUID exists in VeritasBot
    ADOPTED = "adopted"  # VeritasBot holds it under another UUID, found by natural key
    ABSENT = "absent"  # not in VeritasBot
    AMBIGUOUS = "ambiguous"  # several VeritasBot objects share its natural key
    CLAIMED = "claimed"  # its natural-key match is already another production object's counterpart


@dataclass(frozen=True)
class Identity:
    match: Match
    veritas_id: str | None  # CLAIMED: the VeritasBot object it would have matched, which is not its own
    candidates: tuple[str, ...] = ()
    remembered: bool = False  # ADOPTED through an adoption an earlier run recorded
    claimed_by: str | None = None  # CLAIMED: the production object whose counterpart it is


class ReadFailed(RuntimeError):
    """A model could not be read whole (or by the ids asked): nothing may be planned, written or pruned from
    what was read of it."""


class Catalog:
    """Rows of every model on both sides, read whole or by need, plus natural keys and identities."""

    def __init__(self, production: NautobotClient, veritas: NautobotClient,
                 adoptions: Callable[[str], dict[str, str]] | None = None, by_id: bool = False):
        self.clients = {Side.PRODUCTION: production, Side.VERITAS: veritas}
        self.by_id = by_id  # an incremental run: synced models too are read by need, unless planned whole
        self._rows: dict[tuple[Side, str], Mapping[str, dict]] = {}
        self._keys: dict[tuple[Side, str], dict[str, Any]] = {}
        self._key_index: dict[str, dict[Any, list[str]]] = {}
        # VeritasBot objects of by-need models found by natural key: key -> ids, and the keys searched.
        self._found_by_key: dict[str, dict[Any, list[str]]] = {}
        self._keys_searched: dict[str, set[Any]] = {}
        self._identities: dict[str, dict[str, Identity]] = {}
        # Adoptions remembered from earlier runs: they survive a rename in production.
        self._remembered = adoptions or (lambda label: {})
        self._remembered_by_label: dict[str, dict[str, str]] = {}
        self._remembering: dict[str, dict[str, list[str]]] = {}  # label -> VeritasBot id -> production ids
        # label -> (natural key -> production ids, how many of the model's production rows it covers): rows
        # read by need only grow, in the order read, so each is indexed once however often the index is asked.
        self._production_key_index: dict[str, tuple[dict[Any, list[str]], int]] = {}
        self.load_seconds = 0.0
        self.failed_reads: list[tuple[Side, str, str]] = []  # (side, label, error) of every whole read that raised
        self.rows_read = {Side.PRODUCTION: 0, Side.VERITAS: 0}
        self.written: dict[str, set[str]] = {}  # label -> ids of the VeritasBot objects this run wrote
        # Lookup-model identities an earlier run resolved that still hold (label -> production id -> match).
        self._known_matches: dict[str, dict[str, LookupMatch]] = {}
        # Every object some known match was read from, per side: most writes touch none, and skip the scan.
        self._match_sources: dict[str, set[str]] = {}
        # Known matches that keep their natural key, by their object on each side ((side, label) -> id ->
        # match): the key, and the objects it was read from, need no read.
        self._keyed_matches: dict[tuple[Side, str], dict[str, LookupMatch]] = {}

    # ---------------------------------------------------------------- rows
    def rows(self, side: Side, label: str) -> Mapping[str, dict]:
        cache_key = (side, label)
        if cache_key not in self._rows:
            if self._read_by_need(side, label):
                self._rows[cache_key] = _RowsById(lambda ids: self._read(side, label, ids))
            else:
                self._load_whole(side, label)
        return self._rows[cache_key]

    def _read_by_need(self, side: Side, label: str) -> bool:
        spec = MODELS[label]
        return spec.key_filterable and (not spec.synced or self.by_id)

    def load_model(self, label: str, production_ids: set[str] | None) -> None:
        """Both sides of a model about to be planned: whole, or (read by need) the objects `production_ids`
        and what their identities need."""
        for side in Side:
            if production_ids is None and isinstance(self.rows(side, label), _RowsById):
                self._load_whole(side, label)
                self._forget(label)
        if production_ids is not None:
            self.fetch(Side.PRODUCTION, label, production_ids)  # the objects to plan, matched or not
            self.prepare(label, production_ids)

    def use_rows(self, side: Side, label: str, rows: Mapping[str, dict]) -> None:
        """Take `rows` (id -> row, read elsewhere, e.g. a snapshot kept current by the change feeds) as the
        whole of a model on one side, instead of reading it."""
        self._rows[(side, label)] = dict(rows)
        self._forget(label)

    def whole_rows(self) -> dict[tuple[Side, str], Mapping[str, dict]]:
        """(side, label) -> rows of every model read whole (or handed over whole) so far."""
        return {key: rows for key, rows in self._rows.items() if not isinstance(rows, _RowsById)}

    def _load_whole(self, side: Side, label: str) -> None:
        try:
            rows = self._read(side, label)
        except Exception as error:
            self.failed_reads.append((side, label, str(error)))
            raise
        self._rows[(side, label)] = {row["id"]: row for row in rows}

    def _read(self, side: Side, label: str, ids: set[str] | None = None, **filters: Any) -> list[dict]:
        started = time.monotonic()
        client, spec = self.clients[side], MODELS[label]
        try:
            rows = client.list_by_ids(spec.endpoint, ids) if ids is not None else client.list(spec.endpoint, **filters)
        except (NautobotUnavailable, IncompleteRead) as error:
            if filters and isinstance(error, QueryRefused):
                raise  # a natural-key lookup: its caller reads the model whole instead
            raise ReadFailed(f"reading {label} failed: {error}") from None
        finally:
            self.load_seconds += time.monotonic() - started
        self.rows_read[side] += len(rows)
        log.debug("read %d %s from %s in %.1f s", len(rows), label, side.value, time.monotonic() - started)
        return [spec.kept(row) for row in rows]

    def _forget(self, label: str) -> None:
        self._keys.pop((Side.PRODUCTION, label), None)
        self._keys.pop((Side.VERITAS, label), None)
        self._key_index.pop(label, None)
        self._production_key_index.pop(label, None)
        self._identities.pop(label, None)

    def record_written(self, label: str, rows: list[dict]) -> None:
        """Make objects this run wrote to VeritasBot visible to later lookups."""
        spec, table = MODELS[label], self.rows(Side.VERITAS, label)
        kept = [spec.kept(row) for row in rows]
        self.written.setdefault(label, set()).update(row["id"] for row in kept)
        self._drop_known_matches(Side.VERITAS, {row["id"] for row in kept})
        if isinstance(table, _RowsById):
            table.add(kept)
        else:
            for row in kept:
                table[row["id"]] = row
        self._forget(label)
        if isinstance(table, _RowsById) and label in self._found_by_key:
            # Their natural keys may be new (a create) or changed (a rename): index them afresh.
            written = {row["id"] for row in kept}
            found = self._found_by_key[label]
            for ids in found.values():
                ids[:] = [object_id for object_id in ids if object_id not in written]
            for object_id in written:
                found.setdefault(self.natural_key(Side.VERITAS, label, object_id), []).append(object_id)

    # ---------------------------------------------------------------- reading by need, in batches
    def prepare(self, label: str, production_ids: Iterable[str]) -> None:
        """Read, in batches, what the identities of these production objects need from by-need models: on
        VeritasBot the same ids and the objects earlier runs adopted for them; for the rest, their
        production rows (and what their natural keys reference) and VeritasBot's objects sharing those keys."""
        ids = set(production_ids) - self._known_matches.get(label, {}).keys()
        production, veritas = self.rows(Side.PRODUCTION, label), self.rows(Side.VERITAS, label)
        remembered = self.remembered_adoptions(label)
        if isinstance(veritas, _RowsById):
            asked = ids | {remembered[pid] for pid in ids if pid in remembered}
            veritas.fetch(asked)
            self._fetch_key_references(Side.VERITAS, label, {object_id for object_id in asked if object_id in veritas})
        unmatched = {pid for pid in ids if pid not in veritas and not self._remembered_counterpart(label, pid)}
        if isinstance(production, _RowsById):
            production.fetch(unmatched)
            self._fetch_key_references(Side.PRODUCTION, label, unmatched)
        if not isinstance(veritas, _RowsById):
            return
        keys = {pid: self.natural_key(Side.PRODUCTION, label, pid) for pid in unmatched if pid in production}
        self.find_by_keys(label, keys.values())
        if isinstance(production, _RowsById):  # a candidate that is itself a production object is not one
            production.fetch({candidate for key in keys.values() for candidate in self.veritas_ids_with_key(label, key)})

    def prepare_references(self, spec: ModelSpec, rows: Iterable[dict]) -> None:
        """`prepare` every by-need model that these production rows of `spec` reference, once per model."""
        targets: dict[str, set[str]] = {}
        for row in rows:
            for reference in spec.references():
                target = reference.target_of(row)
                if target in MODELS:
                    targets.setdefault(target, set()).update(reference.target_ids(row))
        for target, ids in targets.items():
            if any(isinstance(self.rows(side, target), _RowsById) for side in Side):
                self.prepare(target, ids)

    def fetch(self, side: Side, label: str, ids: Iterable[str]) -> None:
        """Read these objects of a by-need model, in batches (a no-op for a model read whole)."""
        rows = self.rows(side, label)
        if isinstance(rows, _RowsById):
            rows.fetch(ids)

    def fetch_ancestors(self, side: Side, label: str) -> None:
        """For a tree read by need: the parents of what was read, level by level, up to the roots."""
        spec, rows = MODELS[label], self.rows(side, label)
        while isinstance(rows, _RowsById):
            parents = {ref_id(rows[object_id].get(spec.tree)) for object_id in rows.found()} - {None}
            missing = parents - set(rows.found()) - rows.absent
            if not missing:
                return
            rows.fetch(missing)

    def tag_ids(self, names: Iterable[str]) -> dict[str, str]:
        """VeritasBot's tags of these names: name -> id (a name VeritasBot lacks is left out)."""
        names = list(names)
        self.find_by_keys(TAG_MODEL, [(name,) for name in names])
        return {name: ids[0] for name in names if (ids := self.veritas_ids_with_key(TAG_MODEL, (name,)))}

    def prepare_keys(self, side: Side, label: str, ids: Iterable[str]) -> None:
        """Before computing the natural keys of many rows: read, in batches, the by-need rows they reference
        (a cable's ends and their devices), which would otherwise be read one by one."""
        self._fetch_key_references(side, label, set(ids))

    def _fetch_key_references(self, side: Side, label: str, ids: set[str]) -> None:
        """Read what the natural keys of these rows reference, model by model, down to models read whole (or
        to keys known matches keep)."""
        spec, rows = MODELS[label], self.rows(side, label)
        targets: dict[str, set[str]] = {}
        for object_id in ids - self._keyed_matches.get((side, label), {}).keys():  # their rows are not needed
            row = rows.get(object_id)
            for name in spec.key if row else ():
                key_field = spec.field(name)
                target = key_field.target_of(row) if key_field.is_reference else None
                if target in MODELS and ref_id(row.get(name)):
                    targets.setdefault(target, set()).add(ref_id(row.get(name)))
        for target, target_ids in targets.items():
            target_ids -= self._keyed_matches.get((side, target), {}).keys()
            target_rows = self.rows(side, target)
            if isinstance(target_rows, _RowsById):
                target_rows.fetch(target_ids)
                self._fetch_key_references(side, target, target_ids)

    def find_by_keys(self, label: str, keys: Iterable[Any]) -> None:
        """Read the VeritasBot objects of a by-need model that have these natural keys: one filtered listing
        per batch of keys (key parts as filters, several values ORed), checked against each row's own key."""
        if not isinstance(self.rows(Side.VERITAS, label), _RowsById):
            return  # read whole: its key index answers
        spec, searched = MODELS[label], self._keys_searched.setdefault(label, set())
        wanted = [key for key in dict.fromkeys(keys) if key is not None and not _key_is_empty(key)
                  and key not in searched]
        if not wanted:
            return
        searched.update(wanted)
        self._find_key_references(spec, wanted)
        found: list[dict] = []
        try:
            key_filters = [self._key_filters(spec, key) for key in wanted]
            for filters in _batched_filters([filters for filters in key_filters if filters]):
                found += self._read(Side.VERITAS, label, **filters)
        except QueryRefused as error:
            # A filter this model's endpoint lacks: correct, if not cheap, is to read it whole.
            log.warning("%s: cannot look up VeritasBot objects by natural key (%s); reading them all", label, error)
            self._load_whole(Side.VERITAS, label)
            self._forget(label)
            return
        rows = self.rows(Side.VERITAS, label)
        rows.add(found)
        self._fetch_key_references(Side.VERITAS, label, {row["id"] for row in found})
        index = self._found_by_key.setdefault(label, {})
        for row in found:
            same_key = index.setdefault(self.natural_key(Side.VERITAS, label, row["id"]), [])
            if row["id"] not in same_key:
                same_key.append(row["id"])

    def _find_key_references(self, spec: ModelSpec, keys: list[tuple]) -> None:
        """Before filtering by these keys, find the VeritasBot objects their reference parts name."""
        wanted: dict[str, set[Any]] = {}
        for key in keys:
            for _name, part, target in spec.key_parts(key):
                if target in MODELS and part is not None:
                    wanted.setdefault(target, set()).add(part)
        for target, target_keys in wanted.items():
            if isinstance(self.rows(Side.VERITAS, target), _RowsById):
                self.find_by_keys(target, target_keys)

    def _key_filters(self, spec: ModelSpec, key: tuple) -> dict[str, set[Any]] | None:
        """The filters that find every VeritasBot object with this natural key (and maybe more); None when
        none can have it (a referenced object is not in VeritasBot). Empty parts are left out."""
        filters: dict[str, set[Any]] = {}
        for name, part, target in spec.key_parts(key):
            if part is None:
                continue
            if target in MODELS:
                candidates = self.veritas_ids_with_key(target, part)
                if not candidates:
                    return None
                filters[name] = set(candidates)
            else:
                filters[name] = {part}
        return filters

    def veritas_ids_with_key(self, label: str, key: Any) -> list[str]:
        """VeritasBot ids of the objects with this natural key."""
        if isinstance(self.rows(Side.VERITAS, label), _RowsById):
            self.find_by_keys(label, [key])
        if isinstance(self.rows(Side.VERITAS, label), _RowsById):  # still: no fallback to a whole read
            return list(self._found_by_key.get(label, {}).get(key, ()))
        return list(self._index(label).get(key, ()))

    # ---------------------------------------------------------------- natural keys
    def natural_key(self, side: Side, label: str, object_id: str | None) -> Any:
        if object_id is None:
            return None
        keyed = self._keyed_matches.get((side, label), {}).get(object_id)
        if keyed is not None:
            return keyed.key
        keys = self._keys.setdefault((side, label), {})
        if object_id not in keys:
            row = self.rows(side, label).get(object_id)
            keys[object_id] = None  # guards against a reference cycle in broken data
            keys[object_id] = self._compute_key(side, MODELS[label], row) if row else None
        return keys[object_id]

    def _compute_key(self, side: Side, spec: ModelSpec, row: dict) -> tuple:
        parts = []
        for name in spec.key:
            key_field = spec.field(name)
            if not key_field.is_reference:
                parts.append(key_field.canonical(row.get(name)))
                continue
            target, target_id = key_field.target_of(row), ref_id(row.get(name))
            # A generic reference into a model the registry does not know keeps its bare id.
            parts.append(self.natural_key(side, target, target_id) if target in MODELS else target_id)
        return tuple(parts)

    def display(self, side: Side, label: str, object_id: str) -> str:
        """The object's name as read, else its id: naming an object never reads it (one GET per name)."""
        row = self._row_if_read(side, label, object_id) or {}
        return str(row.get("display") or row.get("name") or object_id)

    def _row_if_read(self, side: Side, label: str, object_id: str) -> dict | None:
        """The row, if the model's rows hold it: a model read by need is not asked for it."""
        table = self.rows(side, label)
        return table.read(object_id) if isinstance(table, _RowsById) else table.get(object_id)

    def remembered_adoptions(self, label: str) -> dict[str, str]:
        """Production id -> VeritasBot id of every adoption an earlier run recorded (read once per run)."""
        if label not in self._remembered_by_label:
            self._remembered_by_label[label] = self._remembered(label)
        return self._remembered_by_label[label]

    def stale_adoptions(self, label: str, production_ids: set[str] | None = None) -> set[str]:
        """Production ids of remembered adoptions (of `production_ids`, or all) whose VeritasBot object is gone."""
        adoptions = {production_id: veritas_id for production_id, veritas_id in self.remembered_adoptions(label).items()
                     if production_ids is None or production_id in production_ids}
        self.fetch(Side.VERITAS, label, adoptions.values())
        veritas_rows = self.rows(Side.VERITAS, label)
        return {production_id for production_id, veritas_id in adoptions.items() if veritas_id not in veritas_rows}

    def forget_adoptions(self, label: str, production_ids: set[str]) -> None:
        """Drop remembered adoptions (stale ones) from this run's view: those objects are matched again."""
        remembered = self.remembered_adoptions(label)
        for production_id in production_ids:
            remembered.pop(production_id, None)
        self._remembering.pop(label, None)
        self._identities.pop(label, None)

    # ---------------------------------------------------------------- lookup matches
    def use_lookup_matches(self, matches: Mapping[str, Mapping[str, LookupMatch]]) -> None:
        """Take these lookup-model identities (resolved by an earlier run, untouched by any change logged
        since) as they are, instead of reading both sides for them."""
        self._known_matches = {label: dict(by_id) for label, by_id in matches.items()
                               if label in MODELS and not MODELS[label].synced}
        self._match_sources, self._keyed_matches = {}, {}
        for label, by_id in self._known_matches.items():
            self._identities.pop(label, None)
            self._remembering.pop(label, None)
            for production_id, match in by_id.items():
                for side, ids in match.depends_on.items():
                    self._match_sources.setdefault(side, set()).update(ids)
                if match.key is not None:
                    self._keyed_matches.setdefault((Side.PRODUCTION, label), {})[production_id] = match
                    self._keyed_matches.setdefault((Side.VERITAS, label), {})[match.veritas_id] = match

    def _drop_known_matches(self, side: Side, changed: set[str]) -> None:
        """Forget the known matches read from these objects of `side` (this run changed them)."""
        if changed.isdisjoint(self._match_sources.get(side.value, ())):
            return
        for label, by_id in self._known_matches.items():
            stale = [production_id for production_id, match in by_id.items() if match.stale(side.value, changed)]
            for production_id in stale:
                match = by_id.pop(production_id)
                self._identities.get(label, {}).pop(production_id, None)
                for key_side, object_id in ((Side.PRODUCTION, production_id), (Side.VERITAS, match.veritas_id)):
                    self._keyed_matches.get((key_side, label), {}).pop(object_id, None)
                    self._keys.get((key_side, label), {}).pop(object_id, None)
            if stale:
                self._remembering.pop(label, None)

    def lookup_matches(self) -> dict[str, dict[str, LookupMatch]]:
        """label -> production id -> match, for every lookup-model object this run resolved to a VeritasBot
        object (or was handed still holding): what the next full run planned from the snapshot may reuse.
        A match resolved in this run was read after the run's writes to the synced objects its keys name
        (locations): their group writes before any group whose objects reference discovered ones."""
        matches: dict[str, dict[str, LookupMatch]] = {}
        for label, identities in self._identities.items():
            if MODELS[label].synced:
                continue
            known = self._known_matches.get(label, {})
            for production_id, identity in identities.items():
                if production_id in known:
                    match = known[production_id]
                elif identity.match is Match.SAME:  # it holds while the object is there
                    match = LookupMatch(identity.veritas_id, {side.value: frozenset({production_id}) for side in Side})
                elif identity.match is Match.ADOPTED:  # it holds while neither natural key changes
                    match = LookupMatch(identity.veritas_id, {
                        Side.PRODUCTION.value: frozenset(self._key_sources(Side.PRODUCTION, label, production_id)),
                        Side.VERITAS.value: frozenset(self._key_sources(Side.VERITAS, label, identity.veritas_id))},
                        key=self._shared_key(label, production_id, identity.veritas_id))
                else:
                    continue
                matches.setdefault(label, {})[production_id] = match
        return matches

    def _shared_key(self, label: str, production_id: str, veritas_id: str) -> tuple | None:
        """The natural key both objects were found to have (as computed: nothing is read), if the state
        database can keep it; None for an adoption remembered across a rename."""
        key = self._keys.get((Side.PRODUCTION, label), {}).get(production_id)
        same = key is not None and key == self._keys.get((Side.VERITAS, label), {}).get(veritas_id)
        return storable_key(key) if same else None

    def known_veritas_ids(self, label: str) -> set[str]:
        """VeritasBot objects of a lookup model that known matches stand for: there, as a deletion logged in
        VeritasBot's feed would have dropped their match."""
        return {match.veritas_id for match in self._known_matches.get(label, {}).values()}

    def _key_sources(self, side: Side, label: str, object_id: str | None) -> set[str]:
        """The object and every object its natural key was read from, on one side (as read: nothing is fetched)."""
        if object_id is None:
            return set()
        keyed = self._keyed_matches.get((side, label), {}).get(object_id)
        if keyed is not None:  # its key came from its match, unread: so do the objects it was read from
            return {object_id, *keyed.depends_on.get(side.value, ())}
        row = self._row_if_read(side, label, object_id)
        found = {object_id}
        for name in MODELS[label].key if row else ():
            key_field = MODELS[label].field(name)
            target = key_field.target_of(row) if key_field.is_reference else None
            if target in MODELS and ref_id(row.get(name)) not in found:
                found |= self._key_sources(side, target, ref_id(row.get(name)))
        return found

    # ---------------------------------------------------------------- identity
    def identity(self, label: str, production_id: str) -> Identity:
        table = self._identities.get(label)
        if table is None:
            table = self._identities[label] = {}
        if production_id not in table:
            table[production_id] = self._resolve(label, production_id)
        return table[production_id]

    def _resolve(self, label: str, production_id: str) -> Identity:
        known = self._known_matches.get(label, {}).get(production_id)
        if known is not None:
            if known.veritas_id == production_id:
                return Identity(Match.SAME, production_id)
            return Identity(Match.ADOPTED, known.veritas_id, remembered=True)
        veritas_rows = self.rows(Side.VERITAS, label)
        if production_id in veritas_rows:
            return Identity(Match.SAME, production_id)
        if self._remembered_counterpart(label, production_id):
            return Identity(Match.ADOPTED, self.remembered_adoptions(label)[production_id], remembered=True)
        key = self.natural_key(Side.PRODUCTION, label, production_id)
        if key is None or _key_is_empty(key):
            return Identity(Match.ABSENT, None)
        candidates = [candidate for candidate in self.veritas_ids_with_key(label, key)
                      if candidate not in self.rows(Side.PRODUCTION, label)]
        if len(candidates) > 1:
            return Identity(Match.AMBIGUOUS, None, tuple(sorted(candidates)))
        if not candidates:
            return Identity(Match.ABSENT, None)
        holder = self._holder(label, candidates[0], production_id, key)
        if holder is not None:
            return Identity(Match.CLAIMED, candidates[0], claimed_by=holder)
        return Identity(Match.ADOPTED, candidates[0])

    def _remembered_counterpart(self, label: str, production_id: str) -> bool:
        adopted = self.remembered_adoptions(label).get(production_id)
        return adopted is not None and adopted in self.rows(Side.VERITAS, label)

    def _holder(self, label: str, veritas_id: str, production_id: str, key: Any) -> str | None:
        """The other production object whose counterpart `veritas_id` is, if any: the one that remembers
        adopting it, else the oldest of the production objects sharing its natural key that have no
        counterpart of their own (production ids order objects created in the same instant)."""
        production_rows = self.rows(Side.PRODUCTION, label)
        if label not in self._remembering:
            by_veritas_id: dict[str, list[str]] = {}
            known = {other: match.veritas_id for other, match in self._known_matches.get(label, {}).items()}
            for other, adopted in sorted({**known, **self.remembered_adoptions(label)}.items()):
                by_veritas_id.setdefault(adopted, []).append(other)
            self._remembering[label] = by_veritas_id
        remembering = [other for other in self._remembering[label].get(veritas_id, ())
                       if other != production_id and other in production_rows]
        if remembering:
            return remembering[0]
        contenders = [other for other in self._production_index(label).get(key, ())
                      if other not in self.rows(Side.VERITAS, label) and not self._remembered_counterpart(label, other)]
        oldest = min([*contenders, production_id],
                     key=lambda other: (str((production_rows.get(other) or {}).get("created") or ""), other))
        return None if oldest == production_id else oldest

    def _production_index(self, label: str) -> dict[Any, list[str]]:
        """Natural key -> production ids, over the production rows read so far."""
        rows = self.rows(Side.PRODUCTION, label)
        index, indexed = self._production_key_index.get(label, ({}, 0))
        if len(rows) > indexed:
            new = list(rows)[indexed:]
            self.prepare_keys(Side.PRODUCTION, label, new)  # may read more of a tree model: indexed next time
            for object_id in new:
                index.setdefault(self.natural_key(Side.PRODUCTION, label, object_id), []).append(object_id)
            self._production_key_index[label] = index, indexed + len(new)
        return index

    def _index(self, label: str) -> dict[Any, list[str]]:
        if label not in self._key_index:
            self.prepare_keys(Side.VERITAS, label, list(self.rows(Side.VERITAS, label)))
            index: dict[Any, list[str]] = {}
            for object_id in self.rows(Side.VERITAS, label):
                index.setdefault(self.natural_key(Side.VERITAS, label, object_id), []).append(object_id)
            self._key_index[label] = index
        return self._key_index[label]


class _RowsById(Mapping):
    """Rows of one model on one side, read by need: by id on first use (in batches through `fetch`), or
    added when found otherwise (by natural key, or written by this run). Iterating sees only what was read."""

    def __init__(self, read: Callable[[set[str]], list[dict]]):
        self._read = read
        self._found: dict[str, dict] = {}
        self._absent: set[str] = set()  # not on that side (deleted, or never there): asked once

    def fetch(self, ids: Iterable[str]) -> None:
        # Membership per id asked: a set difference with the dict's keys would walk every row read so far.
        # No id is asked for: an empty `id=` lists everything.
        missing = {object_id for object_id in ids
                   if object_id is not None and object_id not in self._found and object_id not in self._absent}
        if missing:
            self._found.update((row["id"], row) for row in self._read(missing))
            self._absent |= missing - self._found.keys()

    def add(self, rows: Iterable[dict]) -> None:
        for row in rows:
            self._found[row["id"]] = row
            self._absent.discard(row["id"])

    def found(self) -> list[str]:
        return list(self._found)

    def read(self, object_id: str) -> dict | None:
        """The row if it was read (never fetches)."""
        return self._found.get(object_id)

    @property
    def absent(self) -> set[str]:
        return set(self._absent)

    def __getitem__(self, object_id: str) -> dict:
        if object_id not in self._found:
            self.fetch([object_id])
        return self._found[object_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._found)

    def __len__(self) -> int:
        return len(self._found)


# Bounds of one natural-key lookup: distinct values per filter (the URL stays short), and the product of
# their counts (the most rows the listing can return), at most a page and a few times the keys it asks for.
_MAX_FILTER_VALUES, _MAX_FILTER_PRODUCT, _MAX_OVERREAD = 40, 1000, 4


def _batched_filters(key_filters: list[dict[str, set[Any]]]) -> Iterator[dict[str, list[Any]]]:
    """Merge the filters of many keys into few listings: keys filtering on the same parameters go together
    (in sorted order, so that keys sharing a reference sit in one batch) while each stays within bounds."""
    by_parameters: dict[tuple[str, ...], list[dict[str, set[Any]]]] = {}
    for filters in key_filters:
        by_parameters.setdefault(tuple(sorted(filters)), []).append(filters)
    for names, same in by_parameters.items():
        same.sort(key=lambda filters: [sorted(map(str, filters[name])) for name in names])
        merged: dict[str, set[Any]] = {}
        keys = 0
        for filters in same:
            trial = {name: merged.get(name, set()) | filters[name] for name in names}
            product = math.prod(len(values) for values in trial.values())
            if merged and (max(len(values) for values in trial.values()) > _MAX_FILTER_VALUES
                           or product > min(_MAX_FILTER_PRODUCT, _MAX_OVERREAD * (keys + 1))):
                yield {name: sorted(values, key=str) for name, values in merged.items()}
                trial, keys = {name: set(filters[name]) for name in names}, 0
            merged, keys = trial, keys + 1
        if merged:
            yield {name: sorted(values, key=str) for name, values in merged.items()}


def _key_is_empty(key: Any) -> bool:
    if isinstance(key, tuple):
        return all(_key_is_empty(part) for part in key)
    return key is None
