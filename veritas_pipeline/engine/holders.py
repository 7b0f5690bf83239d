"""Which VeritasBot objects of the holder models (locations, racks) hold discovered objects.

A holder is the synced model at the end of a lookup model's `discovered_in` path: a location holding a
device that carries a discovery tag, or a cluster of tagged virtual machines, is discovery-touched. The
answer is asked for only the holders whose handling depends on it (adopted ones the policy does not give to
discovery anyway, and those about to be updated), in batches: one GraphQL query per batch walks each path
backwards from the holders asked about (a location's `clusters`, then their `virtual_machines`) and, per
discovery tag (several tags in one filter must all match), returns the ids of the tagged objects that sit
directly in them. Nothing else of the discovered data is read.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from .bounded import in_chunks
from .client import NautobotClient
from .registry import MODELS, ModelSpec, discovery_placements

_HOLDERS_PER_QUERY = 100


class DiscoveryHolders:
    def __init__(self, veritas: NautobotClient, discovery_tags: list[str]):
        self.veritas = veritas
        self.tags = discovery_tags
        self._holds: dict[str, dict[str, bool]] = {}  # holder model -> VeritasBot id -> holds discovered objects
        self._paths: dict[str, list[list[ModelSpec]]] = {}  # holder model -> model chains, discovered model first
        for spec, path, holder in discovery_placements():
            chain = [spec]
            for hop in path:
                chain.append(MODELS[chain[-1].field(hop).target])
            self._paths.setdefault(holder, []).append(chain)
        self.queries = 0

    def holds(self, label: str, veritas_id: str) -> bool:
        self.prefetch(label, [veritas_id])
        return self._holds.get(label, {}).get(veritas_id, False)

    def prefetch(self, label: str, veritas_ids: Iterable[str]) -> None:
        """Find out, in batches, which of these objects of a holder model hold discovered objects."""
        if label not in self._paths:
            return
        known = self._holds.setdefault(label, {})
        asked = sorted(set(veritas_ids) - known.keys())
        if not self.tags:
            known.update(dict.fromkeys(asked, False))
            return
        for batch in in_chunks(asked, _HOLDERS_PER_QUERY):
            known.update(dict.fromkeys(batch, False))
            self.queries += 1
            for holder in self.veritas.graphql(self._query(label, batch))[MODELS[label].graphql_name]:
                known[holder["id"]] = any(_reaches(value) for name, value in holder.items() if name != "id")

    def _query(self, label: str, ids: list[str]) -> str:
        selections = []
        for path_number, chain in enumerate(self._paths[label]):
            for tag_number, tag in enumerate(self.tags):
                # From the holder back to the discovered model: the chain's models but the holder, reversed.
                reverse = [spec.graphql_name for spec in reversed(chain[:-1])]
                inner = f"{reverse[-1]}(tags: [{json.dumps(tag)}]) {{ id }}"
                for name in reversed(reverse[:-1]):
                    inner = f"{name} {{ {inner} }}"
                selections.append(f"path{path_number}_tag{tag_number}: {inner}")
        return (f"{{ {MODELS[label].graphql_name}(id: {json.dumps(ids)}) {{ id {' '.join(selections)} }} }}")


def _reaches(value: Any) -> bool:
    """Whether a GraphQL answer along a path reaches at least one discovered object."""
    if isinstance(value, list):
        return any(_reaches(item) for item in value)
    if isinstance(value, dict):
        return "id" in value or any(_reaches(item) for item in value.values())
    return False
