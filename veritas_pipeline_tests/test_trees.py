"""The one tree walk shared by write levels, prune order and the hierarchy check. No Nautobot involved."""

from __future__ import annotations

from veritas_pipeline.engine.trees import Ending, depths, walk_up

# a <- b <- c, d's parent is gone, e <-> f loop
PARENT_OF = {"a": None, "b": "a", "c": "b", "d": "gone", "e": "f", "f": "e"}


def test_a_walk_ends_at_the_root():
    assert walk_up("c", PARENT_OF) == (["c", "b", "a"], None, Ending.ROOT)


def test_a_walk_names_the_missing_parent():
    assert walk_up("d", PARENT_OF) == (["d"], "gone", Ending.MISSING)


def test_a_walk_stops_on_a_cycle_and_the_path_holds_it():
    path, stop, ending = walk_up("e", PARENT_OF)
    assert ending is Ending.CYCLE and stop == "e" and path[path.index(stop):] == ["e", "f"]


def test_a_walk_stops_at_a_node_whose_answer_is_known():
    assert walk_up("c", PARENT_OF, known={"b"}) == (["c"], "b", Ending.STOPPED)


def test_depths_count_ancestors_and_a_cycle_once():
    assert depths(["a", "b", "c", "d", "e"], PARENT_OF) == {"a": 0, "b": 1, "c": 2, "d": 0, "e": 1}
