"""Faults and crashes, for real: a fault-injecting proxy on loopback between the pipeline and each Nautobot,
and a `veritas-sync` killed with -9 while its write is in flight.

One faulted run covers every group: production's GETs answered 503 or reset, VeritasBot's writes answered 504
after committing, 503 before forwarding, or reset after committing; it starts on the state database of a
`veritas-sync` that was killed mid-write. It reads and writes concurrently (the default concurrency, small
batches so that a model's batches go side by side); its end state is compared, object by object and field by
field, with the session's fault-free baseline sync of the same seed (which test_sync_live compares with
production on its own). The smaller cases (truncated listings, errors that name no object, foreign
`next` links) run one group each on the synced stack.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import select

from veritas_pipeline.cli import one_line
from veritas_pipeline.engine.registry import SYNCED_MODELS
from veritas_pipeline.engine.state import StateStore, journal

from .conftest import SEED, Baseline, StackInfo, group_metadata, reset_stack, run_sync, total
from .fault_proxy import FaultProxy, FaultRules, TokenTrap
from .stack_helpers import REPO, read_stack_env

# The rates: of VeritasBot's writes 10% lose their answer after committing, 5% are refused before being
# forwarded, 5% are reset after committing; of production's reads 10% are refused or reset. Each kind hits at
# least once whatever the seed's number of requests (the first eligible requests get one kind each).
WRITE_FAULTS = FaultRules(write_lost_answer=0.10, write_refused=0.05, write_reset=0.05, ensure_each=True)
READ_FAULTS = FaultRules(read_refused=0.05, read_reset=0.05, ensure_each=True)
SYNC_TAG, SYNC_TAG_KEY = "SSoT Synced from Production", "<the sync tag>"
# Small enough that most models' writes take several batches, sent side by side.
FAULTED_BATCH_SIZE = 25
# Timestamps, and the natural slug, which embeds the object's id (the sync tag's differs between runs).
VOLATILE = ("created", "last_updated", "natural_slug")


def snapshot(stack: StackInfo) -> dict[tuple[str, str], dict]:
    """Every synced model's objects in VeritasBot, read with plain REST, lists in a stable order. The sync
    tag and the users are named rather than numbered: the sync creates its own tag, under a new id in each
    run, and the stack's reset makes its API users anew."""
    names = {row["id"]: SYNC_TAG_KEY for row in stack.veritas.all("extras/tags") if row["name"] == SYNC_TAG}
    names.update((row["id"], f"<user {row['username']}>") for row in stack.veritas.all("users/users"))

    def stable(value):
        if isinstance(value, list):
            return sorted((stable(item) for item in value), key=lambda item: json.dumps(item, sort_keys=True))
        if isinstance(value, dict):
            return {key: stable(item) for key, item in value.items()}
        if isinstance(value, str):
            for object_id, name in names.items():
                value = value.replace(object_id, name)
        return value

    return {(spec.label, stable(row["id"])): {key: stable(value) for key, value in row.items() if key not in VOLATILE}
            for spec in SYNCED_MODELS for row in stack.veritas.all(spec.endpoint)}


def differences(expected: dict, actual: dict) -> list[str]:
    found = [f"{key} only in the fault-free sync" for key in expected.keys() - actual.keys()]
    found += [f"{key} only in the faulted sync" for key in actual.keys() - expected.keys()]
    for key in expected.keys() & actual.keys():
        for name in expected[key].keys() | actual[key].keys():
            if expected[key].get(name) != actual[key].get(name):
                found.append(f"{key} {name}: {expected[key].get(name)!r} != {actual[key].get(name)!r}")
    return sorted(found)


def veritas_sync(env: dict, *args: str) -> subprocess.Popen:
    base = {key: value for key, value in os.environ.items()
            if not key.startswith(("PRODUCTION_NAUTOBOT_", "VERITASBOT_", "VERITAS_STATE_DB_URL", "DAGSTER_HOME"))}
    return subprocess.Popen([sys.executable, "-m", "veritas_pipeline.cli", *args], env={**base, **env}, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def step_error(result, step: str) -> str:
    """The one-line cause of a failed step, as veritas-sync's summary prints it."""
    return one_line(next(event for event in result.get_step_failure_events()
                         if event.step_key == step).step_failure_data.error)


@dataclass
class FaultedStack:
    stack: StackInfo
    before: dict  # VeritasBot freshly seeded
    fault_free: dict  # after a fault-free full sync
    faulted: dict  # after the killed veritas-sync and the faulted full sync, from the seeded state again
    result: object  # the faulted run
    state: StateStore  # the killed run's and the faulted run's
    killed_run_entries: list[dict]  # journal entries the killed run left open
    write_faults: Counter
    read_faults: Counter


@pytest.fixture(scope="module")
def faulted(synced_baseline: Baseline, tmp_path_factory) -> Iterator[FaultedStack]:
    home = tmp_path_factory.mktemp("faults")
    assert total(synced_baseline.first, "failed") == 0
    fault_free = snapshot(synced_baseline.stack)

    stack = reset_stack()
    before = snapshot(stack)
    env = stack.env
    state_url = f"sqlite:///{home / 'faulted.db'}"
    # A veritas-sync whose first tenant create is committed and never answered, killed -9 right then.
    with FaultProxy(env["VERITASBOT_URL"], rules=FaultRules(stall_after_forward=r"^POST /api/tenancy/tenants/")) \
            as stalling:
        dagster_home = home / "dagster_home"
        dagster_home.mkdir()
        process = veritas_sync({**{key: env[key] for key in ("PRODUCTION_NAUTOBOT_URL", "PRODUCTION_NAUTOBOT_TOKEN",
                                                             "VERITASBOT_TOKEN")},
                                "VERITASBOT_URL": stalling.url, "VERITAS_STATE_DB_URL": state_url,
                                "DAGSTER_HOME": str(dagster_home)}, "--groups", "foundation", "organization")
        try:
            assert stalling.stalled.wait(timeout=300), "veritas-sync never sent its tenant creates"
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
    state = StateStore(state_url)
    left_open = state.open_journal_entries()

    with FaultProxy(env["PRODUCTION_NAUTOBOT_URL"], seed=f"{SEED}-reads", rules=READ_FAULTS) as reads, \
            FaultProxy(env["VERITASBOT_URL"], seed=f"{SEED}-writes", rules=WRITE_FAULTS) as writes:
        result = run_sync(state_url, production={"url": reads.url}, veritas={"url": writes.url},
                          batch_size=FAULTED_BATCH_SIZE)
        read_faults, write_faults = reads.stats, writes.stats
    yield FaultedStack(stack, before, fault_free, snapshot(stack), result, state, left_open,
                       write_faults, read_faults)


def test_every_fault_happened(faulted: FaultedStack):
    for kind in ("write_lost_answer", "write_refused", "write_reset"):
        assert faulted.write_faults[kind] > 0, (kind, faulted.write_faults)
    for kind in ("read_refused", "read_reset"):
        assert faulted.read_faults[kind] > 0, (kind, faulted.read_faults)


def test_the_killed_run_left_its_tenant_create_open_in_the_journal(faulted: FaultedStack):
    # Writes go side by side: another model's create (teams, say) may have been in flight beside the stalled one.
    open_writes = [(entry["model"], entry["action"]) for entry in faulted.killed_run_entries]
    assert ("tenancy.tenant", "create") in open_writes, open_writes
    assert faulted.state.open_journal_entries() == [], "the next run settles every open entry"


def test_the_faulted_sync_is_green_with_no_failed_object(faulted: FaultedStack):
    assert faulted.result.success
    assert total(faulted.result, "failed") == 0
    for evaluation in faulted.result.get_asset_check_evaluations():
        assert evaluation.passed, evaluation.asset_check_key


def test_veritas_ends_as_after_a_fault_free_sync_object_by_object_and_field_by_field(faulted: FaultedStack):
    assert faulted.fault_free != faulted.before, "the fault-free sync changed nothing"
    assert differences(faulted.fault_free, faulted.faulted)[:20] == []


def test_the_audit_trail_holds_exactly_one_create_per_created_object(faulted: FaultedStack):
    # The sync tag is made before any group writes, not through the applier: it has no audit entry.
    created = {object_id for _label, object_id in faulted.faulted.keys() - faulted.before.keys()} - {SYNC_TAG_KEY}
    runs = {faulted.result.run_id, *(entry["run_id"] for entry in faulted.killed_run_entries)}
    entries = [entry for run in runs for entry in faulted.state.writes_of_run(run)]
    assert all(entry["succeeded"] for entry in entries), [e for e in entries if not e["succeeded"]][:5]
    creates = Counter(entry["object_id"] for entry in entries if entry["action"] == "create")
    assert set(creates) == created
    assert [object_id for object_id, count in creates.items() if count != 1] == []
    # The tenants the killed run committed (their creates stalled after forwarding) are recorded under that run,
    # settled by the next one. A create that went beside them is recorded only if it landed, which the counts
    # above already check.
    killed_tenants = {o["id"] for entry in faulted.killed_run_entries if entry["model"] == "tenancy.tenant"
                      for o in entry["objects"]}
    settled = {e["object_id"] for e in faulted.state.writes_of_run(faulted.killed_run_entries[0]["run_id"])
               if e["model"] == "tenancy.tenant"}
    assert killed_tenants and killed_tenants <= settled


def test_batches_went_side_by_side_and_each_tree_level_after_the_one_above_was_settled(faulted: FaultedStack):
    with faulted.state.engine.connect() as connection:
        entries = [dict(row._mapping) for row in connection.execute(
            select(journal).where(journal.c.run_id == faulted.result.run_id).order_by(journal.c.id))]
    assert entries and all(entry["closed_at"] for entry in entries)
    assert any(a["opened_at"] < b["closed_at"] and b["opened_at"] < a["closed_at"]
               for a, b in zip(entries, entries[1:]) if a["model"] == b["model"]), "no two batches were in flight together"
    # Every request that carried a location (sends again after lost answers included), first opened to last closed.
    spans: dict[str, tuple] = {}
    for entry in entries:
        if (entry["model"], entry["action"]) == ("dcim.location", "create"):
            for sent in entry["objects"]:
                opened, closed = spans.get(sent["id"], (entry["opened_at"], entry["closed_at"]))
                spans[sent["id"]] = (min(opened, entry["opened_at"]), max(closed, entry["closed_at"]))
    parents = {row["id"]: (row["parent"] or {}).get("id") for row in faulted.stack.production.all("dcim/locations")}
    nested = [(child, parent) for child, parent in parents.items() if child in spans and parent in spans]
    assert nested, "no location was created under a location created in the same run"
    assert [(child, parent) for child, parent in nested if spans[child][0] < spans[parent][1]] == []


def test_the_faulted_run_counts_agree_with_its_audit_trail(faulted: FaultedStack):
    own = faulted.state.writes_of_run(faulted.result.run_id)
    assert total(faulted.result, "created") == sum(1 for entry in own if entry["action"] == "create")


# ---------------------------------------------------------------- one group at a time, on the synced stack

@pytest.mark.parametrize("truncation, page_size", [("trim_results", 1000), ("drop_last_page", 5)])
def test_a_truncated_production_listing_fails_the_group_naming_the_model_and_writes_nothing(
        faulted: FaultedStack, tmp_path: Path, truncation: str, page_size: int):
    stack = faulted.stack
    tenant = sorted(stack.production.all("tenancy/tenants"), key=lambda row: row["id"])[0]
    stack.production.write("PATCH", f"tenancy/tenants/{tenant['id']}", {"description": "renamed behind a proxy"})
    changes_before = stack.veritas.count("extras/object-changes")
    env = read_stack_env()
    with FaultProxy(env["PRODUCTION_NAUTOBOT_URL"],
                    rules=FaultRules(truncate=truncation, truncate_pattern=r"^/api/tenancy/tenants/$")) as proxy:
        result = run_sync(faulted.state.url, groups=["organization", "orphans"], prune_orphans=True,
                          production={"url": proxy.url, "page_size": page_size})
        assert proxy.stats["truncated"] > 0
    assert not result.success
    message = step_error(result, "organization")
    assert "reading tenancy.tenant failed" in message and "the server counted" in message, message
    assert stack.veritas.count("extras/object-changes") == changes_before, "something was written"
    assert not result.asset_materializations_for_node("orphans"), "the prune ran after a failed read"


def test_writes_refused_without_end_stop_the_group_with_one_error_within_the_retry_budget(
        faulted: FaultedStack):
    stack = faulted.stack
    tenant = sorted(stack.production.all("tenancy/tenants"), key=lambda row: row["id"])[-1]
    stack.production.write("PATCH", f"tenancy/tenants/{tenant['id']}", {"description": "never gets through"})
    env = read_stack_env()
    with FaultProxy(env["VERITASBOT_URL"], rules=FaultRules(write_refused=1.0)) as proxy:
        started = time.monotonic()
        result = run_sync(faulted.state.url, groups=["organization"],
                          veritas={"url": proxy.url, "retry_budget_seconds": 4})
        seconds = time.monotonic() - started
    assert not result.success and seconds < 60
    message = step_error(result, "organization")
    assert f"VeritasBot Nautobot at {proxy.url.removeprefix('http://')}: PATCH tenancy/tenants" in message, message
    assert "answers to writes keep getting lost" in message
    own = [entry for entry in faulted.state.writes_of_run(result.run_id)]
    assert own == [], "an error that names no object is not a per-object failure"
    assert proxy.stats["write_refused"] >= 2, "settled and sent again at least once before giving up"


def test_a_refused_token_stops_the_group_at_once_naming_instance_endpoint_and_status(faulted: FaultedStack):
    result = run_sync(faulted.state.url, groups=["foundation"], veritas={"token": "0" * 40})
    message = step_error(result, "foundation")
    url = read_stack_env()["VERITASBOT_URL"].removeprefix("http://")
    # A run of some groups takes no feed cursors (it never saves the row snapshot): its first read is the tags.
    assert f"VeritasBot Nautobot at {url}: GET extras/tags: HTTP 403: the token was refused" in message, message
    assert faulted.state.writes_of_run(result.run_id) == []


def test_a_next_link_to_another_host_is_never_followed_with_the_token(faulted: FaultedStack):
    env = read_stack_env()
    with TokenTrap() as trap, FaultProxy(env["PRODUCTION_NAUTOBOT_URL"],
                                         rules=FaultRules(rewrite_next_to=trap.origin)) as proxy:
        result = run_sync(faulted.state.url, groups=["foundation"], dry_run=True,
                          production={"url": proxy.url, "page_size": 7})
        assert proxy.stats["next_rewritten"] > 0
    assert trap.hits == []
    assert result.success
    metadata = group_metadata(result, "foundation")
    assert metadata["in_production"] == sum(faulted.stack.production.count(spec.endpoint)
                                            for spec in SYNCED_MODELS if spec.group == "foundation")


def test_a_prune_delete_whose_answer_is_lost_is_done_once_not_a_failure(faulted: FaultedStack):
    stack = faulted.stack
    orphan = stack.veritas.write("POST", "tenancy/tenants", {"name": f"orphan {time.time_ns()}",
                                                             "tags": [{"name": "SSoT Synced from Production"}]})
    assert orphan.ok, orphan.text
    orphan_id = orphan.json()["id"]
    env = read_stack_env()
    with FaultProxy(env["VERITASBOT_URL"], rules=FaultRules(write_lost_answer=1.0,
                                                            path_pattern=r"^/api/tenancy/tenants/$")) as proxy:
        result = run_sync(faulted.state.url, groups=["orphans"], prune_orphans=True, veritas={"url": proxy.url})
        assert proxy.stats["write_lost_answer"] >= 1
    assert result.success
    assert stack.veritas.count("tenancy/tenants", id=orphan_id) == 0
    assert group_metadata(result, "orphans")["deleted"] == 1
    deletes = [entry for entry in faulted.state.writes_of_run(result.run_id) if entry["object_id"] == orphan_id]
    assert [(entry["action"], entry["succeeded"]) for entry in deletes] == [("delete", True)]


def test_a_create_that_commits_after_its_read_back_is_done_once_not_a_failure(faulted: FaultedStack):
    """The first send's answer is lost and it reaches Nautobot only after the read-back found nothing, just
    before the re-send: Nautobot refuses the re-send for the (parent, name) its own object holds, not as
    "already exists"."""
    stack = faulted.stack
    sibling = next(row for row in stack.production.all("dcim/locations") if row["parent"])
    name = f"late commit {time.time_ns()}"
    created = stack.production.write("POST", "dcim/locations", {
        "name": name, "parent": sibling["parent"]["id"], "location_type": sibling["location_type"]["id"],
        "status": sibling["status"]["id"]})
    assert created.ok, created.text
    location_id = created.json()["id"]
    env = read_stack_env()
    with FaultProxy(env["VERITASBOT_URL"], rules=FaultRules(commit_late=r"^POST /api/dcim/locations/$")) as proxy:
        result = run_sync(faulted.state.url, groups=["locations"], veritas={"url": proxy.url})
        assert (proxy.stats["commit_late_held"], proxy.stats["commit_late"]) == (1, 1), proxy.stats
    assert result.success
    assert total(result, "failed") == 0
    [landed] = stack.veritas.all("dcim/locations", name=name)
    # The parent may be an adopted VeritasBot location with its own id: it is matched by name.
    parent_names = [api.get(f"dcim/locations/{row['parent']['id']}")["name"]
                    for api, row in ((stack.production, sibling), (stack.veritas, landed))]
    assert landed["id"] == location_id
    assert parent_names[0] == parent_names[1], parent_names
    entries = [entry for entry in faulted.state.writes_of_run(result.run_id) if entry["object_id"] == location_id]
    assert [(entry["action"], entry["succeeded"]) for entry in entries] == [("create", True)]
