"""New and resolved conflicts are counted against the newest earlier run that covered the same objects."""

from __future__ import annotations

from veritas_pipeline.engine.planner import Conflict
from veritas_pipeline.engine.state import StateStore

LABEL = "tenancy.tenant"


def run(state: StateStore, run_id: str, conflicting: list[str], covered: list[str] | None):
    """A real run of the organization group that planned `covered` (None: every tenant) and found a conflict
    on the description of each of `conflicting`; returns its (new, resolved) object ids."""
    state.start_run(run_id, "organization", dry_run=False)
    state.record_conflicts(run_id, "organization", [
        Conflict(LABEL, object_id, object_id, "description", "production", "veritas", "adopted") for object_id in conflicting])
    new, resolved = state.conflict_changes(run_id, "organization", {LABEL: covered})
    state.finish_run(run_id, "organization", True, {"covered": {LABEL: covered}})
    return sorted(c["object_id"] for c in new), sorted(c["object_id"] for c in resolved)


def test_an_incremental_run_neither_resolves_nor_renews_conflicts_on_objects_it_did_not_plan(tmp_path):
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    assert run(state, "full-1", ["a", "b"], None) == (["a", "b"], [])
    # An incremental run that planned b and c only: a stands, b is unchanged, c is new.
    assert run(state, "incremental-1", ["b", "c"], ["b", "c"]) == (["c"], [])
    # Another that planned b, whose conflict went away: b resolved, a untouched.
    assert run(state, "incremental-2", [], ["b"]) == ([], ["b"])
    # The next full run compares each object with the newest run that covered it: a (full-1) and c
    # (incremental-1) unchanged, b (incremental-2) had none and is back as new.
    assert run(state, "full-2", ["a", "b", "c"], None) == (["b"], [])
    assert run(state, "full-3", ["a"], None) == ([], ["b", "c"])


def test_runs_recorded_before_coverage_was_kept_covered_their_whole_group(tmp_path):
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    state.start_run("old", "organization", dry_run=False)
    state.record_conflicts("old", "organization", [Conflict(LABEL, "a", "a", "description", 1, 2, "adopted")])
    state.finish_run("old", "organization", True, {"models": []})
    assert run(state, "incremental", [], ["b"]) == ([], [])
    assert run(state, "full", [], None) == ([], ["a"])
