"""Walking up a tree (a model's self-referencing parent field): the one walk the planner's write levels,
the prune's deletion order and the hierarchy check share."""

from __future__ import annotations

from enum import Enum
from typing import Collection, Iterable, Mapping


class Ending(str, Enum):
    ROOT = "root"  # the last node of the path has no parent
    CYCLE = "cycle"  # the stop node is already on the path: path[path.index(stop):] is a parent cycle
    MISSING = "missing"  # the stop node is the last node's parent, which is not a node of the tree
    STOPPED = "stopped"  # the stop node is one of `known`, not walked


def walk_up(start: str, parent_of: Mapping[str, str | None],
            known: Collection[str] = ()) -> tuple[list[str], str | None, Ending]:
    """(path, stop node, ending): the nodes from `start` up towards its root, each once, until a root, a
    cycle, a parent that is not in `parent_of`, or a node in `known` (whose answer the caller has)."""
    path: list[str] = []
    node = start
    while True:
        if node in known:
            return path, node, Ending.STOPPED
        if node in path:
            return path, node, Ending.CYCLE
        path.append(node)
        parent = parent_of[node]
        if parent is None:
            return path, None, Ending.ROOT
        if parent not in parent_of:
            return path, parent, Ending.MISSING
        node = parent


def depths(nodes: Iterable[str], parent_of: Mapping[str, str | None]) -> dict[str, int]:
    """How many ancestors within `parent_of` each node has (a cycle counts each of its nodes once)."""
    return {node: len(walk_up(node, parent_of)[0]) - 1 for node in nodes}
