"""The frames of the data-quality checks: one sync group's objects laid out as pandas DataFrames.

`GroupData` reads them through a catalog (the run's own when the checks run with the sync, so what it
loaded and wrote; a fresh one when they run alone) and the state database's `StateStore` methods.
Everything is derived from the registry's iterations: natural keys, references with their targets
(foreign keys, many-to-many, generic, tags), required fields, trees and their types. The frames and
their columns are described in quality.py, whose checks read them.
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import Iterator

import pandas as pd

from .catalog import Catalog, Match, Side
from .policy import PrecedencePolicy
from .quality import (
    FIELD_COLUMNS,
    PRODUCTION_COLUMNS,
    REFERENCE_COLUMNS,
    TREE_COLUMNS,
    TYPE_COLUMNS,
    VERITAS,
    VERITAS_COLUMNS,
    blank,
    frame,
)
from .registry import MODELS, ModelSpec, models_of_group
from .state import StateStore
from .values import ref_id


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
        # Declared targets, and those of generic references, which only the rows name.
        targets = {reference.target for spec in self.specs for reference in spec.references()}
        targets |= set(self.references["target_label"])
        labels += sorted({target for target in targets if _is_synced(target)} - set(labels))
        for spec in self.specs:  # the identities of what they reference, read in batches where read by need
            self.catalog.prepare_references(spec, self.catalog.rows(Side.PRODUCTION, spec.label).values())
        return {label: {production_id: self._counterpart(label, production_id)
                        for production_id in self.catalog.rows(Side.PRODUCTION, label)} for label in labels}

    def _counterpart(self, label: str, production_id: str) -> str | None:
        identity = self.catalog.identity(label, production_id)
        return identity.veritas_id if identity.match in (Match.SAME, Match.ADOPTED) else None

    def _in_scope(self, spec: ModelSpec, row: dict) -> bool:
        for name in spec.required:
            target, target_id = spec.field(name).target_of(row), ref_id(row.get(name))
            if target_id is None or _is_synced(target):
                continue
            if target not in MODELS or self._counterpart(target, target_id) is None:
                return False  # points at discovered data VeritasBot lacks: pending by design
        return True

    # ------------------------------------------------------------ frames
    @cached_property
    def production(self) -> pd.DataFrame:
        own = {spec.label for spec in self.specs}
        for label in own:
            self.catalog.prepare_keys(Side.PRODUCTION, label, self.counterparts[label])
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
        tag_ids = self.catalog.tag_ids([self.policy.sync_tag, *self.policy.discovery_tags])
        sync_tag = tag_ids.get(self.policy.sync_tag)
        discovery_tags = {tag_ids[name] for name in self.policy.discovery_tags if name in tag_ids}
        written = self._written_ids()
        rows = []
        for spec in self.specs:
            stands_for = {veritas_id: production_id
                          for production_id, veritas_id in self.counterparts[spec.label].items() if veritas_id}
            self.catalog.prepare_keys(Side.VERITAS, spec.label, list(self.catalog.rows(Side.VERITAS, spec.label)))
            for veritas_id, row in self.catalog.rows(Side.VERITAS, spec.label).items():
                tags = spec.tag_ids(row)
                rows.append({"label": spec.label, "id": veritas_id,
                             "name": self.catalog.display(Side.VERITAS, spec.label, veritas_id),
                             "key": self._key(Side.VERITAS, spec.label, veritas_id),
                             "production_id": stands_for.get(veritas_id), "sync_tag": sync_tag in tags,
                             "discovery_tag": bool(tags & discovery_tags), "written": veritas_id in written})
        own = {spec.label for spec in self.specs}
        referenced = self.references[self.references["side"] == VERITAS].groupby("target_label")["target_id"]
        for label, target_ids in sorted(referenced):
            if label in own:
                continue
            known = self.catalog.known_veritas_ids(label) & set(target_ids)  # there, and need not be read
            self.catalog.fetch(Side.VERITAS, label, set(target_ids) - known)  # the rest, where read by need
            for veritas_id in dict.fromkeys([*self.catalog.rows(Side.VERITAS, label), *sorted(known)]):
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
            names = dict.fromkeys((*spec.required, *(name for name in spec.key if not spec.field(name).is_reference)))
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
            self.catalog.fetch_ancestors(Side.VERITAS, spec.label)  # read by need: the branches up to the roots
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
            type_spec = MODELS[spec.field(spec.tree_type).target]
            self.catalog.fetch(Side.VERITAS, type_spec.label, self.trees["type_id"].dropna())
            self.catalog.fetch_ancestors(Side.VERITAS, type_spec.label)
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
        return None if blank(key) else key

    def _written_ids(self) -> set[str]:
        """Objects of the group the sync ever created or updated, from the audit trail."""
        if self.state is None:
            return set()
        return self.state.written_object_ids(spec.label for spec in self.specs)


def _is_synced(label: str | None) -> bool:
    return label in MODELS and MODELS[label].synced


def _references(spec: ModelSpec, row: dict) -> Iterator[tuple[str, str, str]]:
    """(field, target model, target id) for every reference value of a row."""
    for reference in spec.references():
        target = reference.target_of(row)
        if target in MODELS:
            for target_id in reference.target_ids(row):
                yield reference.name, target, target_id


def _is_set(spec: ModelSpec, name: str, row: dict) -> bool:
    spec_field, value = spec.field(name), row.get(name)
    if spec_field.is_reference:
        return ref_id(value) is not None
    return spec_field.canonical(value) is not None
