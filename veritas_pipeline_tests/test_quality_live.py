"""The data-quality asset checks against the live stack (any seed).

After one clean sync (the full_sync job, checks in the same run) every check passes. Then each test
breaks VeritasBot the way one check guards against, runs the `data_quality` job (the checks alone, a
fresh read), asserts that the check fails and names the offending object, and repairs what it broke.
Objects are picked from live data, never by name.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from dagster import AssetCheckSeverity

from veritas_pipeline.checks import QUALITY_CHECK_KEYS
from veritas_pipeline.cli import group_outcomes
from veritas_pipeline.engine.registry import GROUPS, MODELS
from veritas_pipeline.engine.state import StateStore

from veritas_pipeline.metadata import Key

from .conftest import StackInfo, check_results, group_metadata, run_checks, run_full_sync, run_sync, table_rows, veritas_sql
from .stack_helpers import REPO, STACK_DIR

SYNC_TAG = "SSoT Synced from Production"
DISCOVERY_TAG = "SSoT Synced from Network Discovery"


@dataclass
class SyncedStack:
    stack: StackInfo
    state_db: Path
    run: object
    started: float  # epoch seconds
    finished: float
    # Each server's requests during the run, from its own log: (method, path, HTTP status).
    requests: dict[str, list[tuple[str, str, int]]]


@pytest.fixture(scope="module")
def synced(fresh_stack: StackInfo, tmp_path_factory) -> SyncedStack:
    """One clean full sync (groups, checks, orphans) that also pushes its metrics: the metrics tests at the
    end of this module query them from the stack's Prometheus."""
    state_db = tmp_path_factory.mktemp("quality") / "state.db"
    pushgateway = fresh_stack.env["VERITAS_PUSHGATEWAY_URL"]
    requests.put(f"{pushgateway}/api/v1/admin/wipe", timeout=10).raise_for_status()  # only this run's pushes
    offsets = {name: server_log(name).stat().st_size for name in SERVERS}
    started = time.time()
    result = run_full_sync(state_db, pushgateway_url=pushgateway)
    finished = time.time()
    return SyncedStack(fresh_stack, state_db, result, started, finished,
                       {name: served_requests(name, offset) for name, offset in offsets.items()})


SERVERS = {"production": "production", "veritasbot": "veritas"}  # metrics label -> the stack's server name


def server_log(name: str) -> Path:
    return STACK_DIR / "logs" / f"nautobot-{SERVERS[name]}.log"


def served_requests(name: str, offset: int) -> list[tuple[str, str, int]]:
    with server_log(name).open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    # REST API requests only: the stack's own health probes are logged too.
    return [(method, path, int(status)) for method, path, status
            in re.findall(r"\] (GET|HEAD|OPTIONS|POST|PUT|PATCH|DELETE) (/api/\S*) => .*?\(HTTP/[\d.]+ (\d{3})\)", text)]


def rid(value):
    return value.get("id") if isinstance(value, dict) else value


def created_by_sync(stack: StackInfo, label: str) -> list[dict]:
    """VeritasBot objects of a model that hold their production UUID, i.e. the sync created them."""
    endpoint = MODELS[label].endpoint
    production_ids = {row["id"] for row in stack.production.all(endpoint)}
    return sorted((row for row in stack.veritas.all(endpoint) if row["id"] in production_ids), key=lambda r: r["id"])


def evaluation_of(result, group: str, check: str):
    results = check_results(result)
    assert (group, check) in results, f"{group} {check} did not run: {sorted(results)}"
    return results[(group, check)]


def offending(evaluation) -> str:
    """The evaluation's table of offending objects, its cells as text; empty when there is none."""
    return " | ".join(str(value) for row in table_rows(evaluation.metadata, Key.OBJECTS) for value in row.values())


def tag_ids(stack: StackInfo) -> dict[str, str]:
    return {row["name"]: row["id"] for row in stack.veritas.all("extras/tags")}


def set_tags(stack: StackInfo, label: str, object_id: str, tags: list[str]) -> None:
    response = stack.veritas.write("PATCH", f"{MODELS[label].endpoint}/{object_id}", {"tags": tags})
    assert response.ok, response.text


# ---------------------------------------------------------------- a clean sync

def test_after_a_clean_sync_every_check_passes_in_the_same_run(synced: SyncedStack):
    results = check_results(synced.run)
    assert set(QUALITY_CHECK_KEYS) <= {evaluation.asset_check_key for evaluation in results.values()}
    failed = {key: evaluation.description for key, evaluation in results.items() if not evaluation.passed}
    assert not failed
    assert synced.run.success


def test_after_a_clean_sync_the_checks_alone_pass(synced: SyncedStack):
    result = run_checks(synced.state_db)
    results = check_results(result)
    assert {evaluation.asset_check_key for evaluation in results.values()} == set(QUALITY_CHECK_KEYS)
    assert not result.asset_materializations_for_node("foundation"), "the checks alone must not sync"
    failed = {key: offending(evaluation) for key, evaluation in results.items() if not evaluation.passed}
    assert not failed
    assert result.success


# ---------------------------------------------------------------- the row snapshot between syncs

SYNCED_ENDPOINTS = {f"/api/{spec.endpoint}/": label for label, spec in MODELS.items() if spec.synced}


def checks_alone_requests(state_db: Path, groups: list[str] | None = None):
    """The data_quality job's result and each server's REST requests during it."""
    offsets = {name: server_log(name).stat().st_size for name in SERVERS}
    result = run_checks(state_db, groups)
    return result, {name: served_requests(name, offset) for name, offset in offsets.items()}


def whole_listings(served: dict[str, list[tuple[str, str, int]]]) -> set[tuple[str, str]]:
    """(server, model) of every listing of a synced model that did not ask for ids."""
    return {(name, SYNCED_ENDPOINTS[path.split("?")[0]]) for name, requests_ in served.items()
            for method, path, _status in requests_
            if method == "GET" and path.split("?")[0] in SYNCED_ENDPOINTS and "id=" not in path}


def test_the_checks_alone_read_the_feeds_and_changed_ids_not_whole_models(synced: SyncedStack):
    result, served = checks_alone_requests(synced.state_db)
    assert result.success
    assert not whole_listings(served)
    assert all(any("/api/extras/object-changes/" in path for _method, path, _status in served[name]) for name in SERVERS)
    source = check_results(result)[("organization", "uniqueness")].metadata[Key.DATA_SOURCE].value
    assert source.startswith("row snapshot:"), source


def test_a_production_change_after_the_sync_is_seen_by_the_checks_alone(synced: SyncedStack):
    stack = synced.stack
    before = evaluation_of(run_checks(synced.state_db, ["organization"]), "organization", "coverage")
    created = stack.production.write("POST", "tenancy/tenants", {"name": f"unsynced {uuid.uuid4().hex[:8]}"})
    assert created.ok, created.text
    try:
        result, served = checks_alone_requests(synced.state_db, ["organization"])
        after = evaluation_of(result, "organization", "coverage")
        assert after.metadata["missing"].value == before.metadata["missing"].value + 1
        assert created.json()["id"] in offending(after)
        assert not whole_listings(served)
    finally:
        stack.production.write("DELETE", f"tenancy/tenants/{created.json()['id']}", None)


def test_without_a_snapshot_the_checks_read_whole_and_save_one(synced: SyncedStack):
    StateStore(f"sqlite:///{synced.state_db}").forget_snapshot()
    result, served = checks_alone_requests(synced.state_db)
    assert result.success
    assert {model for _name, model in whole_listings(served)} >= {"tenancy.tenant", "dcim.location"}
    assert set(StateStore(f"sqlite:///{synced.state_db}").load_snapshot()) == {"production", "veritas"}
    result, served = checks_alone_requests(synced.state_db)
    assert result.success and not whole_listings(served)


def forget_snapshot(synced: SyncedStack) -> None:
    """A change made in VeritasBot's database logs no change: the checks see it only on a whole read."""
    StateStore(f"sqlite:///{synced.state_db}").forget_snapshot()


# ---------------------------------------------------------------- each check, broken on purpose

def test_referential_integrity_names_the_object_whose_reference_was_deleted(synced: SyncedStack):
    stack = synced.stack
    groups = {row["id"]: row for row in created_by_sync(stack, "tenancy.tenantgroup")}
    parents = {rid(row["parent"]) for row in groups.values()}
    candidates = [tenant for tenant in created_by_sync(stack, "tenancy.tenant")
                  if rid(tenant["tenant_group"]) in groups and rid(tenant["tenant_group"]) not in parents]
    assert candidates, "the seed has no synced tenant in a synced leaf tenant group"
    tenant = candidates[0]
    group_id = rid(tenant["tenant_group"])
    # Behind the sync's back: Nautobot lets the group go and empties the tenant's reference.
    assert stack.veritas.write("DELETE", f"tenancy/tenant-groups/{group_id}", None).status_code == 204
    try:
        evaluation = evaluation_of(run_checks(synced.state_db, ["organization"]), "organization",
                                   "referential_integrity")
        assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
        assert tenant["id"] in offending(evaluation) and group_id in offending(evaluation)
    finally:
        run_sync(synced.state_db, groups=["foundation", "organization"])
    assert evaluation_of(run_checks(synced.state_db, ["organization"]), "organization", "referential_integrity").passed


def test_required_fields_names_the_object_whose_name_was_emptied(synced: SyncedStack):
    tenant = created_by_sync(synced.stack, "tenancy.tenant")[0]
    # The API refuses an empty name; an old import or a script on the database does not.
    veritas_sql(f"UPDATE tenancy_tenant SET name = '' WHERE id = '{tenant['id']}'")
    forget_snapshot(synced)
    try:
        evaluation = evaluation_of(run_checks(synced.state_db, ["organization"]), "organization", "required_fields")
        assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
        assert tenant["id"] in offending(evaluation) and "'name' is empty" in offending(evaluation)
    finally:
        name = tenant["name"].replace("'", "''")
        veritas_sql(f"UPDATE tenancy_tenant SET name = '{name}' WHERE id = '{tenant['id']}'")
        forget_snapshot(synced)


def test_uniqueness_names_both_objects_sharing_a_natural_key(synced: SyncedStack):
    stack = synced.stack
    marker = uuid.uuid4().hex[:8]
    template = sorted(stack.production.all("dcim/racks"), key=lambda row: row["id"])[0]
    rack = {"name": f"rack {marker}", "location": rid(template["location"]), "status": rid(template["status"])}
    created = stack.production.write("POST", "dcim/racks", rack)
    assert created.ok, created.text
    original = created.json()["id"]
    assert run_sync(synced.state_db, groups=["physical_infrastructure"]).success
    synced_rack = stack.veritas.get(f"dcim/racks/{original}")
    # Nautobot only holds rack names unique within a rack group: without one, a second rack may take the name.
    duplicate = stack.veritas.write("POST", "dcim/racks", {
        "name": rack["name"], "location": rid(synced_rack["location"]), "status": rid(synced_rack["status"])})
    assert duplicate.ok, duplicate.text
    try:
        evaluation = evaluation_of(run_checks(synced.state_db, ["physical_infrastructure"]),
                                   "physical_infrastructure", "uniqueness")
        assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
        assert original in offending(evaluation) and duplicate.json()["id"] in offending(evaluation)
        assert f"rack {marker}" in offending(evaluation)
    finally:
        stack.veritas.write("DELETE", f"dcim/racks/{duplicate.json()['id']}", None)


def test_hierarchy_names_the_networks_of_a_parent_cycle(synced: SyncedStack):
    first, second = created_by_sync(synced.stack, "cloud.cloudnetwork")[:2]
    # The API refuses a cycle (a network may not even sit under a child); the database does not.
    veritas_sql(f"UPDATE cloud_cloudnetwork SET parent_id = '{second['id']}' WHERE id = '{first['id']}';"
                f"UPDATE cloud_cloudnetwork SET parent_id = '{first['id']}' WHERE id = '{second['id']}'")
    forget_snapshot(synced)
    try:
        evaluation = evaluation_of(run_checks(synced.state_db, ["cloud"]), "cloud", "hierarchy")
        assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
        table = offending(evaluation)
        assert first["id"] in table and second["id"] in table and "parent cycle" in table
    finally:
        for network in (first, second):
            parent = f"'{rid(network['parent'])}'" if network["parent"] else "NULL"
            veritas_sql(f"UPDATE cloud_cloudnetwork SET parent_id = {parent} WHERE id = '{network['id']}'")
        forget_snapshot(synced)


def test_tag_consistency_names_the_object_that_lost_the_sync_tag(synced: SyncedStack):
    stack = synced.stack
    sync_tag = tag_ids(stack)[SYNC_TAG]
    tenant = next(row for row in created_by_sync(stack, "tenancy.tenant")
                  if sync_tag in {rid(tag) for tag in row["tags"]})
    kept = [rid(tag) for tag in tenant["tags"] if rid(tag) != sync_tag]
    set_tags(stack, "tenancy.tenant", tenant["id"], kept)
    try:
        evaluation = evaluation_of(run_checks(synced.state_db, ["organization"]), "organization", "tag_consistency")
        assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.WARN
        assert tenant["id"] in offending(evaluation) and "lacks the sync tag" in offending(evaluation)
    finally:
        set_tags(stack, "tenancy.tenant", tenant["id"], [*kept, sync_tag])


def test_discovery_consistency_names_a_synced_object_a_discovery_job_claimed(synced: SyncedStack):
    stack = synced.stack
    tags = tag_ids(stack)
    location = next(row for row in created_by_sync(stack, "dcim.location")
                    if tags[SYNC_TAG] in {rid(tag) for tag in row["tags"]})
    before = [rid(tag) for tag in location["tags"]]
    set_tags(stack, "dcim.location", location["id"], [*before, tags[DISCOVERY_TAG]])
    try:
        evaluation = evaluation_of(run_checks(synced.state_db, ["locations"]), "locations", "discovery_consistency")
        assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.WARN
        assert location["id"] in offending(evaluation) and "claimed by a discovery job" in offending(evaluation)
    finally:
        set_tags(stack, "dcim.location", location["id"], before)


def test_coverage_names_the_missing_half_of_a_half_synced_model(synced: SyncedStack):
    stack = synced.stack
    reservations = created_by_sync(stack, "dcim.rackreservation")
    assert len(reservations) >= 2, "the seed has too few rack reservations"
    removed = reservations[: len(reservations) // 2 + 1]
    response = stack.veritas.write("DELETE", "dcim/rack-reservations", [{"id": row["id"]} for row in removed])
    assert response.status_code == 204, response.text
    try:
        evaluation = evaluation_of(run_checks(synced.state_db, ["physical_infrastructure"]),
                                   "physical_infrastructure", "coverage")
        assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.WARN
        assert all(row["id"] in offending(evaluation) for row in removed)
        assert evaluation.metadata["missing"].value == len(removed)
    finally:
        run_sync(synced.state_db, groups=["physical_infrastructure"])
    assert evaluation_of(run_checks(synced.state_db, ["physical_infrastructure"]),
                         "physical_infrastructure", "coverage").passed


def test_freshness_warns_when_the_last_sync_is_too_old(synced: SyncedStack):
    def shift(days: int) -> None:
        with sqlite3.connect(synced.state_db) as connection:
            connection.execute(f"UPDATE sync_runs SET finished_at = datetime(finished_at, '{days:+d} days') "
                               "WHERE group_name = 'wireless'")

    shift(-3)
    try:
        evaluation = evaluation_of(run_checks(synced.state_db, ["wireless"]), "wireless", "freshness")
        assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.WARN
        assert evaluation.metadata["age_hours"].value >= 72 and "more than 24.0 h" in evaluation.description
    finally:
        shift(+3)
    assert evaluation_of(run_checks(synced.state_db, ["wireless"]), "wireless", "freshness").passed


# ---------------------------------------------------------------- blocking

def test_a_blocking_failure_stops_the_downstream_groups_of_the_run(synced: SyncedStack):
    stack = synced.stack
    template = created_by_sync(stack, "cloud.cloudnetwork")[0]
    marker = uuid.uuid4().hex[:8]
    # Two networks only VeritasBot holds, so the sync leaves them alone, in a cycle the API would refuse.
    made = []
    for number in (1, 2):
        response = stack.veritas.write("POST", "cloud/cloud-networks", {
            "name": f"loop {marker} {number}", "cloud_resource_type": rid(template["cloud_resource_type"]),
            "cloud_account": rid(template["cloud_account"])})
        assert response.ok, response.text
        made.append(response.json()["id"])
    veritas_sql(f"UPDATE cloud_cloudnetwork SET parent_id = '{made[1]}' WHERE id = '{made[0]}';"
                f"UPDATE cloud_cloudnetwork SET parent_id = '{made[0]}' WHERE id = '{made[1]}'")
    try:
        result = run_full_sync(synced.state_db, groups=["cloud", "network_services"])
        assert result.asset_materializations_for_node("cloud"), "the cloud group itself should sync"
        assert evaluation_of(result, "cloud", "write_failures").passed
        hierarchy = evaluation_of(result, "cloud", "hierarchy")
        assert not hierarchy.passed and all(network in offending(hierarchy) for network in made)
        assert not result.success
        assert not result.asset_materializations_for_node("network_services"), "a downstream group ran"
        # What veritas-sync prints: the group whose check failed, and the group skipped because of it.
        outcomes = group_outcomes(result, ["cloud", "network_services"])
        assert outcomes["cloud"] == ("check failed", "blocking check hierarchy")
        assert outcomes["network_services"] == ("skipped", "upstream cloud failed")
    finally:
        veritas_sql(f"UPDATE cloud_cloudnetwork SET parent_id = NULL WHERE id IN ('{made[0]}', '{made[1]}')")
        stack.veritas.write("DELETE", "cloud/cloud-networks", [{"id": network} for network in made])


# ---------------------------------------------------------------- metrics of the module's clean sync
# The fixture's run pushed its metrics; the stack's Prometheus scrapes the Pushgateway every 2 s and
# evaluates the rules (freshness) as often.

def prometheus(stack: StackInfo, query: str) -> list[dict]:
    response = requests.get(f"{stack.env['VERITAS_PROMETHEUS_URL']}/api/v1/query", params={"query": query},
                            timeout=30)
    assert response.ok, f"{query}: {response.text}"
    return response.json()["data"]["result"]


def by_labels(stack: StackInfo, query: str, *labels: str) -> dict[tuple, float]:
    return {tuple(row["metric"].get(label, "") for label in labels): float(row["value"][1])
            for row in prometheus(stack, query)}


@pytest.fixture(scope="module")
def scraped(synced: SyncedStack) -> SyncedStack:
    """The run's last push scraped, and freshness recorded since."""
    models = sum(len(rows) for rows in model_rows(synced).values())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = prometheus(synced.stack, 'nautobot_production_sync_last_success_timestamp_seconds{mode="full"}')
        fresh = prometheus(synced.stack, "nautobot_production_data_freshness_seconds")
        if done and len(fresh) == models:
            return synced
        time.sleep(1)
    raise AssertionError("Prometheus never showed the run's last push and the recorded freshness")


def model_rows(synced: SyncedStack) -> dict[str, list[dict]]:
    """group -> its models table (per-model counts) from the run's materializations."""
    return {group: table_rows(group_metadata(synced.run, group), Key.MODELS) for group in GROUPS}


def test_objects_processed_by_model_and_operation_equal_the_run_counts(scraped: SyncedStack):
    from veritas_pipeline.metrics import OPERATIONS

    expected = {(row["model"], operation): float(row[counter])
                for rows in model_rows(scraped).values() for row in rows for counter, operation in OPERATIONS.items()}
    got = by_labels(scraped.stack, 'nautobot_production_objects_processed_total{mode="full",operation!="delete"}',
                    "model_type", "operation")
    assert got == expected
    assert sum(value for (_model, operation), value in got.items() if operation == "create") > 0


def test_conflicts_freshness_and_coverage_match_the_run(scraped: SyncedStack):
    stack = scraped.stack
    conflicts = by_labels(stack, 'sum by (model_type) (nautobot_production_conflicts_total{mode="full"})', "model_type")
    assert conflicts == {(row["model"],): float(row["conflicts"])
                         for rows in model_rows(scraped).values() for row in rows}

    # Freshness: seconds since the group's success in this run (its state database record), growing with time.
    with sqlite3.connect(scraped.state_db) as connection:
        finished = dict(connection.execute("SELECT group_name, finished_at FROM sync_runs WHERE run_id = ?",
                                           (group_metadata(scraped.run, "foundation")[Key.SYNC_RUN_ID],)))
    freshness = by_labels(stack, "nautobot_production_data_freshness_seconds", "group", "model_type")
    now = time.time()
    for group, rows in model_rows(scraped).items():
        succeeded = datetime.fromisoformat(finished[group]).replace(tzinfo=timezone.utc).timestamp()
        assert scraped.started <= succeeded <= scraped.finished
        for row in rows:
            age = freshness[(group, row["model"])]
            assert now - succeeded - 10 <= age <= now - succeeded + 1, (group, row["model"], age)

    # Coverage: the coverage check's share per model, in percent.
    coverage = by_labels(stack, "nautobot_production_coverage_percentage", "model_type")
    expected = {}
    for group in GROUPS:
        per_model = table_rows(evaluation_of(scraped.run, group, "coverage").metadata, Key.MODELS)
        expected.update({(row["model"],): round(row["share"] * 100, 2) for row in per_model})
    assert coverage == expected and all(0 <= value <= 100 for value in coverage.values())


def test_request_counts_and_durations_by_endpoint_and_status_match_the_servers_logs(scraped: SyncedStack):
    from veritas_pipeline.engine.client import endpoint_of
    from veritas_pipeline.resources import NautobotResource, SyncResource

    stack = scraped.stack
    counts = by_labels(stack, 'nautobot_production_api_requests_total{mode="full"}', "nautobot", "endpoint", "status")
    served: dict[tuple, float] = {}
    for name, lines in scraped.requests.items():
        for _method, path, status in lines:
            key = (name, endpoint_of(path), str(status))
            served[key] = served.get(key, 0) + 1
    assert counts == served
    assert {name for name, _endpoint, _status in counts} == set(SERVERS)
    assert any(status == "201" for _name, _endpoint, status in counts), "no create reached VeritasBot"

    timed = by_labels(stack, 'nautobot_production_api_request_duration_seconds_count{mode="full"}', "nautobot", "endpoint",
                      "status")
    assert timed == served
    seconds = by_labels(stack, 'nautobot_production_api_request_duration_seconds_sum{mode="full"}', "nautobot", "endpoint",
                        "status")
    assert set(seconds) == set(timed) and all(value > 0 for value in seconds.values())
    # Requests overlap (reads and writes in flight side by side), but no more of them than the settings allow.
    reads = NautobotResource.model_fields["read_concurrency"].default
    writes = SyncResource.model_fields["write_concurrency"].default
    for name, in_flight in (("production", reads), ("veritasbot", reads + writes)):
        spent = sum(value for (server, _endpoint, _status), value in seconds.items() if server == name)
        assert spent <= in_flight * (scraped.finished - scraped.started), name


def test_the_run_outcome_duration_and_last_success(scraped: SyncedStack):
    stack = scraped.stack
    assert by_labels(stack, 'nautobot_production_sync_last_run_succeeded{mode="full"}') == {(): 1.0}
    [(_, last_success)] = by_labels(stack, 'nautobot_production_sync_last_success_timestamp_seconds{mode="full"}').items()
    assert scraped.started <= last_success <= scraped.finished
    [(_, duration)] = by_labels(stack, 'nautobot_production_sync_duration_seconds{mode="full"}').items()
    assert 0 < duration <= scraped.finished - scraped.started
    outcomes = by_labels(stack, 'nautobot_production_sync_group_outcome{mode="full"} == 1', "group", "outcome")
    assert outcomes == {(group, "succeeded"): 1.0 for group in GROUPS}


def test_every_dashboard_panel_query_returns_data(scraped: SyncedStack):
    dashboard = json.loads((REPO / "monitoring" / "grafana-dashboard.json").read_text())
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert prometheus(scraped.stack, target["expr"]), f"panel {panel['title']!r}: no data for {target['expr']}"
