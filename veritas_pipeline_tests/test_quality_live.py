"""The data-quality asset checks against the live stack (any seed).

After one clean sync (the full_sync job, checks in the same run) every check passes. Then each test
breaks VeritasBot the way one check guards against, runs the `data_quality` job (the checks alone, a
fresh read), asserts that the check fails and names the offending object, and repairs what it broke.
Objects are picked from live data, never by name.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import AssetCheckSeverity

from veritas_pipeline.checks import QUALITY_CHECK_KEYS
from veritas_pipeline.engine.registry import MODELS

from veritas_pipeline.metadata import Key

from .conftest import StackInfo, check_results, run_checks, run_full_sync, run_sync, table_rows, veritas_sql

SYNC_TAG = "SSoT Synced from Production"
DISCOVERY_TAG = "SSoT Synced from Network Discovery"


@dataclass
class SyncedStack:
    stack: StackInfo
    state_db: Path
    run: object


@pytest.fixture(scope="module")
def synced(fresh_stack: StackInfo, tmp_path_factory) -> SyncedStack:
    state_db = tmp_path_factory.mktemp("quality") / "state.db"
    return SyncedStack(fresh_stack, state_db, run_full_sync(state_db))


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
    try:
        evaluation = evaluation_of(run_checks(synced.state_db, ["organization"]), "organization", "required_fields")
        assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
        assert tenant["id"] in offending(evaluation) and "'name' is empty" in offending(evaluation)
    finally:
        name = tenant["name"].replace("'", "''")
        veritas_sql(f"UPDATE tenancy_tenant SET name = '{name}' WHERE id = '{tenant['id']}'")


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
    try:
        evaluation = evaluation_of(run_checks(synced.state_db, ["cloud"]), "cloud", "hierarchy")
        assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
        table = offending(evaluation)
        assert first["id"] in table and second["id"] in table and "parent cycle" in table
    finally:
        for network in (first, second):
            parent = f"'{rid(network['parent'])}'" if network["parent"] else "NULL"
            veritas_sql(f"UPDATE cloud_cloudnetwork SET parent_id = {parent} WHERE id = '{network['id']}'")


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
    finally:
        veritas_sql(f"UPDATE cloud_cloudnetwork SET parent_id = NULL WHERE id IN ('{made[0]}', '{made[1]}')")
        stack.veritas.write("DELETE", "cloud/cloud-networks", [{"id": network} for network in made])
