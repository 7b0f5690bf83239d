"""What the two instances hold, and how an object of one is identified in the other.

The catalog loads each model's rows from each side once per run, on first use (in an incremental run,
production rows are read by id as they are needed, except for models planned whole), and answers:
- the natural key of any row (references resolved recursively on the row's own side);
- the VeritasBot id of a production object: the same UUID when it is there, else the object an earlier
  run adopted for it (remembered, if it still exists), else the object that has the same natural key
  (adopted), else none (the sync will create it under its production UUID). A VeritasBot object is the
  counterpart of at most one production object: when a second one claims it by natural key, the first
  keeps it (its remembered adoption; among production objects sharing a natural key, the oldest) and the
  second is CLAIMED, not synced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Iterable, Iterator

from .client import IncompleteRead, NautobotClient, NautobotUnavailable
from .registry import MODELS, ModelSpec
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
    """Rows of every model on both sides, loaded lazily, plus natural keys and identities."""

    def __init__(self, production: NautobotClient, veritas: NautobotClient,
                 adoptions: Callable[[str], dict[str, str]] | None = None, production_by_id: bool = False):
        self.clients = {Side.PRODUCTION: production, Side.VERITAS: veritas}
        self.production_by_id = production_by_id
        self._rows: dict[tuple[Side, str], Mapping[str, dict]] = {}
        self._keys: dict[tuple[Side, str], dict[str, Any]] = {}
        self._key_index: dict[str, dict[Any, list[str]]] = {}
        self._identities: dict[str, dict[str, Identity]] = {}
        # Adoptions remembered from earlier runs: they survive a rename in production.
        self._remembered = adoptions or (lambda label: {})
        self._remembered_by_label: dict[str, dict[str, str]] = {}
        self._remembering: dict[str, dict[str, list[str]]] = {}  # label -> VeritasBot id -> production ids
        self._production_key_index: dict[str, dict[Any, list[str]]] = {}
        self.load_seconds = 0.0
        self.failed_reads: list[tuple[Side, str, str]] = []  # (side, label, error) of every whole read that raised

    # ---------------------------------------------------------------- rows
    def rows(self, side: Side, label: str) -> Mapping[str, dict]:
        cache_key = (side, label)
        if cache_key not in self._rows:
            if side is Side.PRODUCTION and self.production_by_id:
                self._rows[cache_key] = _RowsById(lambda ids: self._read(side, label, ids))
            else:
                self._load_whole(side, label)
        return self._rows[cache_key]

    def load_production(self, label: str, ids: set[str] | None) -> Mapping[str, dict]:
        """Production rows of a model about to be planned: all of them, or (reading by id) those `ids`."""
        rows = self.rows(Side.PRODUCTION, label)
        if isinstance(rows, _RowsById):
            if ids is None:
                self._load_whole(Side.PRODUCTION, label)
            else:
                rows.fetch(ids)
        return self.rows(Side.PRODUCTION, label)

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

    def _read(self, side: Side, label: str, ids: set[str] | None = None) -> list[dict]:
        started = time.monotonic()
        client, endpoint = self.clients[side], MODELS[label].endpoint
        try:
            rows = client.list(endpoint) if ids is None else client.list_by_ids(endpoint, ids)
        except (NautobotUnavailable, IncompleteRead) as error:
            raise ReadFailed(f"reading {label} failed: {error}") from None
        finally:
            self.load_seconds += time.monotonic() - started
        log.debug("read %d %s from %s in %.1f s", len(rows), label, side.value, time.monotonic() - started)
        return rows

    def _forget(self, label: str) -> None:
        self._keys.pop((Side.PRODUCTION, label), None)
        self._keys.pop((Side.VERITAS, label), None)
        self._key_index.pop(label, None)
        self._production_key_index.pop(label, None)
        self._identities.pop(label, None)

    def record_written(self, label: str, rows: list[dict]) -> None:
        """Make objects this run wrote to VeritasBot visible to later lookups."""
        table = self.rows(Side.VERITAS, label)
        for row in rows:
            table[row["id"]] = row
        self._forget(label)

    # ---------------------------------------------------------------- natural keys
    def natural_key(self, side: Side, label: str, object_id: str | None) -> Any:
        if object_id is None:
            return None
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
        row = self.rows(side, label).get(object_id) or {}
        return str(row.get("display") or row.get("name") or object_id)

    def remembered_adoptions(self, label: str) -> dict[str, str]:
        """Production id -> VeritasBot id of every adoption an earlier run recorded (read once per run)."""
        if label not in self._remembered_by_label:
            self._remembered_by_label[label] = self._remembered(label)
        return self._remembered_by_label[label]

    def stale_adoptions(self, label: str) -> set[str]:
        """Production ids of remembered adoptions whose VeritasBot object is gone."""
        veritas_rows = self.rows(Side.VERITAS, label)
        return {production_id for production_id, veritas_id in self.remembered_adoptions(label).items()
                if veritas_id not in veritas_rows}

    def forget_adoptions(self, label: str, production_ids: set[str]) -> None:
        """Drop remembered adoptions (stale ones) from this run's view: those objects are matched again."""
        remembered = self.remembered_adoptions(label)
        for production_id in production_ids:
            remembered.pop(production_id, None)
        self._remembering.pop(label, None)
        self._identities.pop(label, None)

    # ---------------------------------------------------------------- identity
    def identity(self, label: str, production_id: str) -> Identity:
        table = self._identities.get(label)
        if table is None:
            table = self._identities[label] = {}
        if production_id not in table:
            table[production_id] = self._resolve(label, production_id)
        return table[production_id]

    def _resolve(self, label: str, production_id: str) -> Identity:
        veritas_rows = self.rows(Side.VERITAS, label)
        if production_id in veritas_rows:
            return Identity(Match.SAME, production_id)
        if self._remembered_counterpart(label, production_id):
            return Identity(Match.ADOPTED, self.remembered_adoptions(label)[production_id], remembered=True)
        key = self.natural_key(Side.PRODUCTION, label, production_id)
        if key is None or _key_is_empty(key):
            return Identity(Match.ABSENT, None)
        candidates = [candidate for candidate in self._index(label).get(key, ())
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
        return self.remembered_adoptions(label).get(production_id) in self.rows(Side.VERITAS, label)

    def _holder(self, label: str, veritas_id: str, production_id: str, key: Any) -> str | None:
        """The other production object whose counterpart `veritas_id` is, if any: the one that remembers
        adopting it, else the oldest of the production objects sharing its natural key that have no
        counterpart of their own (production ids order objects created in the same instant)."""
        production_rows = self.rows(Side.PRODUCTION, label)
        if label not in self._remembering:
            by_veritas_id: dict[str, list[str]] = {}
            for other, adopted in sorted(self.remembered_adoptions(label).items()):
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
        """Natural key -> production ids, over the production rows read so far (kept once the model is
        read whole)."""
        if label in self._production_key_index:
            return self._production_key_index[label]
        rows = self.rows(Side.PRODUCTION, label)
        index: dict[Any, list[str]] = {}
        for object_id in list(rows):
            index.setdefault(self.natural_key(Side.PRODUCTION, label, object_id), []).append(object_id)
        if not isinstance(rows, _RowsById):
            self._production_key_index[label] = index
        return index

    def _index(self, label: str) -> dict[Any, list[str]]:
        if label not in self._key_index:
            index: dict[Any, list[str]] = {}
            for object_id in self.rows(Side.VERITAS, label):
                index.setdefault(self.natural_key(Side.VERITAS, label, object_id), []).append(object_id)
            self._key_index[label] = index
        return self._key_index[label]


class _RowsById(Mapping):
    """Production rows of one model, read by id on first use: an incremental run reads the objects it
    syncs and those their references need, not whole models. Iterating sees only what was read."""

    def __init__(self, read: Callable[[set[str]], list[dict]]):
        self._read = read
        self._found: dict[str, dict] = {}
        self._absent: set[str] = set()  # not in production (deleted): asked once

    def fetch(self, ids: Iterable[str]) -> None:
        missing = set(ids) - self._found.keys() - self._absent
        if missing:
            self._found.update((row["id"], row) for row in self._read(missing))
            self._absent |= missing - self._found.keys()

    def __getitem__(self, object_id: str) -> dict:
        self.fetch([object_id])
        return self._found[object_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._found)

    def __len__(self) -> int:
        return len(self._found)


def _key_is_empty(key: Any) -> bool:
    if isinstance(key, tuple):
        return all(_key_is_empty(part) for part in key)
    return key is None
