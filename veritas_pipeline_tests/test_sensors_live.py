"""The production change sensor and its incremental runs, against the live stack (any seed). Writers started
from every entry point, through a daemon, are in test_writers_live.py.

Each test starts its own sensor cursor at the end of production's change feed, changes production through
the admin token, and evaluates the sensor as the daemon would (`build_sensor_context`).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    DagsterInstance,
    Definitions,
    RunRequest,
    SensorResult,
    build_sensor_context,
)

from veritas_pipeline.assets import ORPHANS_ASSET, SYNC_CHECKS, group_assets, orphans
from veritas_pipeline.engine.changes import FeedCursor
from veritas_pipeline.engine.registry import GROUPS, SYNCED_MODELS
from veritas_pipeline.jobs import incremental_sync_job
from veritas_pipeline.metadata import Key
from veritas_pipeline.sensors import production_changes

from .conftest import Baseline, StackInfo, group_metadata, sync_resource, table_rows
from .stack_helpers import STACK_DIR

SYNCED_ENDPOINTS = tuple(f"/api/{spec.endpoint}/" for spec in SYNCED_MODELS)
SYNC_TAG = "SSoT Synced from Production"


@dataclass
class Synced:
    stack: StackInfo
    state_db: Path


@pytest.fixture(scope="module")
def synced(synced_baseline: Baseline) -> Synced:
    """A freshly seeded stack after one full sync: the baseline incremental runs build on."""
    return Synced(synced_baseline.stack, synced_baseline.state_db)


def evaluate(synced: Synced, cursor: str | None) -> SensorResult:
    with build_sensor_context(cursor=cursor, resources={"sync": sync_resource(synced.state_db)}) as context:
        return production_changes(context)


def feed_end(synced: Synced) -> str:
    result = evaluate(synced, None)
    assert not result.run_requests and result.skip_reason
    return result.cursor


def only_request(result: SensorResult) -> RunRequest:
    assert result.run_requests is not None and len(result.run_requests) == 1, result.skip_reason
    return result.run_requests[0]


def group_configs(request: RunRequest) -> dict[str, dict]:
    return {group: {key: value for key, value in op["config"].items() if key != "dry_run"}
            for group, op in request.run_config["ops"].items()}


def selected_ops(request: RunRequest) -> list[str]:
    """The request's assets as op names; the only checks it selects are the sync's own."""
    assert request.asset_check_keys == [AssetCheckKey(key, check) for key in request.asset_selection
                                        if key.path[-1] in GROUPS for check in SYNC_CHECKS]
    return [key.path[-1] for key in request.asset_selection]


def execute(synced: Synced, request: RunRequest):
    """Run what the sensor asked for: the incremental_sync job, its selection, config and tags."""
    defs = Definitions(assets=[*group_assets, orphans], jobs=[incremental_sync_job],
                       resources={"sync": sync_resource(synced.state_db)})
    return defs.resolve_job_def(incremental_sync_job.name).execute_in_process(
        run_config=request.run_config, op_selection=selected_ops(request), tags=request.tags,
        instance=DagsterInstance.ephemeral(), raise_on_error=False)


def first_synced(stack: StackInfo, endpoint: str) -> dict:
    """A production object that VeritasBot holds under the same UUID, without a discovery tag."""
    discovery_tags = {tag["id"] for tag in stack.veritas.all("extras/tags")
                      if tag["name"].startswith("SSoT Synced from") and tag["name"] != SYNC_TAG}
    veritas = {row["id"]: row for row in stack.veritas.all(endpoint)}
    for row in sorted(stack.production.all(endpoint), key=lambda row: row["id"]):
        counterpart = veritas.get(row["id"])
        if counterpart is not None and not {tag["id"] for tag in counterpart.get("tags") or ()} & discovery_tags:
            return row
    pytest.fail(f"no production object of {endpoint} was synced under its own id")


def touch(stack: StackInfo, endpoint: str, object_id: str, **changes) -> None:
    body = changes or {"description": f"changed {uuid.uuid4().hex[:8]}"}
    response = stack.production.write("PATCH", f"{endpoint}/{object_id}", body)
    assert response.ok, response.text


def requests_since(instance: str, offset: int) -> list[str]:
    """The paths of the GETs `instance`'s server logged after `offset`."""
    with (STACK_DIR / "logs" / f"nautobot-{instance}.log").open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    return re.findall(r"\] GET (/\S*)", text)


def log_size(instance: str) -> int:
    return (STACK_DIR / "logs" / f"nautobot-{instance}.log").stat().st_size


# ---------------------------------------------------------------- sensor evaluations

def test_no_change_gives_a_skip(synced: Synced):
    cursor = feed_end(synced)
    result = evaluate(synced, cursor)
    assert not result.run_requests
    assert "no production change" in result.skip_reason.skip_message
    assert FeedCursor.from_json(result.cursor) == FeedCursor.from_json(cursor)


def test_one_change_gives_one_run_request_for_its_group(synced: Synced):
    cursor = feed_end(synced)
    tenant = first_synced(synced.stack, "tenancy/tenants")
    touch(synced.stack, "tenancy/tenants", tenant["id"])

    result = evaluate(synced, cursor)
    request = only_request(result)
    assert request.asset_selection == [AssetKey("organization")]
    assert group_configs(request) == {"organization": {"changed_ids": {"tenancy.tenant": [tenant["id"]]},
                                                       "whole_models": []}}
    assert request.tags["veritas/changes"] == "1"
    # A tick evaluated again (the daemon died before storing the cursor) asks for the same run key,
    # which Dagster does not launch twice.
    assert only_request(evaluate(synced, cursor)).run_key == request.run_key
    assert evaluate(synced, result.cursor).skip_reason, "the cursor did not advance"


def test_changes_across_groups_select_exactly_those_groups(synced: Synced):
    cursor = feed_end(synced)
    changed = {"tenancy.tenant": first_synced(synced.stack, "tenancy/tenants")["id"],
               "dcim.rack": first_synced(synced.stack, "dcim/racks")["id"],
               "dcim.manufacturer": first_synced(synced.stack, "dcim/manufacturers")["id"]}
    touch(synced.stack, "tenancy/tenants", changed["tenancy.tenant"])
    touch(synced.stack, "dcim/racks", changed["dcim.rack"])
    touch(synced.stack, "dcim/manufacturers", changed["dcim.manufacturer"])
    devices = synced.stack.production.get("dcim/devices", limit=1)["results"]
    if devices:  # discovered data: never synced, so never a reason for a run
        touch(synced.stack, "dcim/devices", devices[0]["id"], comments=f"changed {uuid.uuid4().hex[:8]}")

    request = only_request(evaluate(synced, cursor))
    assert request.asset_selection == [AssetKey(group) for group in
                                       ("organization", "physical_infrastructure", "hardware_catalog")]
    assert group_configs(request) == {
        "organization": {"changed_ids": {"tenancy.tenant": [changed["tenancy.tenant"]]}, "whole_models": []},
        "physical_infrastructure": {"changed_ids": {"dcim.rack": [changed["dcim.rack"]]}, "whole_models": []},
        "hardware_catalog": {"changed_ids": {"dcim.manufacturer": [changed["dcim.manufacturer"]]},
                             "whole_models": []},
    }


def test_the_cursor_advances_and_survives_a_restart(synced: Synced):
    cursor = feed_end(synced)
    tenant = first_synced(synced.stack, "tenancy/tenants")
    touch(synced.stack, "tenancy/tenants", tenant["id"])
    touch(synced.stack, "tenancy/tenants", tenant["id"])  # most likely within the same second
    first = evaluate(synced, cursor)
    assert only_request(first).tags["veritas/changes"] == "2"
    assert FeedCursor.from_json(first.cursor).time > FeedCursor.from_json(cursor).time

    # A restart: the daemon keeps only the cursor string; the resource and its clients are new.
    stored = json.loads(json.dumps(first.cursor))
    assert evaluate(synced, stored).skip_reason
    touch(synced.stack, "tenancy/tenants", tenant["id"])
    after_restart = only_request(evaluate(synced, stored))
    assert after_restart.tags["veritas/changes"] == "1"
    assert after_restart.run_key != only_request(first).run_key


# ---------------------------------------------------------------- incremental runs, end to end

def test_a_production_rename_reaches_veritas_through_a_sensor_triggered_incremental_run(synced: Synced):
    cursor = feed_end(synced)
    tenant = first_synced(synced.stack, "tenancy/tenants")
    new_name = f"renamed {uuid.uuid4().hex[:8]}"
    touch(synced.stack, "tenancy/tenants", tenant["id"], name=new_name)

    request = only_request(evaluate(synced, cursor))
    offsets = {instance: log_size(instance) for instance in ("production", "veritas")}
    result = execute(synced, request)
    veritas_reads = [path for path in requests_since("veritas", offsets["veritas"]) if path.startswith(SYNCED_ENDPOINTS)]
    assert result.success
    assert synced.stack.veritas.get(f"tenancy/tenants/{tenant['id']}")["name"] == new_name
    metadata = group_metadata(result, "organization")
    assert metadata[Key.INCREMENTAL] is True and metadata[Key.UPDATED] == 1 and metadata[Key.CREATED] == 0
    # Only the changed object was read from production, by id: no whole model.
    reads = [path for path in requests_since("production", offsets["production"]) if path.startswith(SYNCED_ENDPOINTS)]
    assert reads and all(f"id={tenant['id']}" in path for path in reads), reads
    # VeritasBot too is read by need: the tenant by id, its tenant group, the sync and discovery tags by
    # name; no whole model, whatever the size of the discovery state.
    assert any(f"id={tenant['id']}" in path for path in veritas_reads), veritas_reads
    assert all("id=" in path or "name=" in path for path in veritas_reads), veritas_reads
    assert len(veritas_reads) <= 12, veritas_reads


def test_a_production_deletion_is_reported_as_an_orphan(synced: Synced):
    cursor = feed_end(synced)
    created = synced.stack.production.write("POST", "tenancy/tenants", {"name": f"short-lived {uuid.uuid4().hex[:8]}"})
    assert created.ok, created.text
    tenant_id = created.json()["id"]
    first = evaluate(synced, cursor)
    assert execute(synced, only_request(first)).success
    assert synced.stack.veritas.get(f"tenancy/tenants/{tenant_id}")["id"] == tenant_id

    assert synced.stack.production.write("DELETE", f"tenancy/tenants/{tenant_id}", None).ok
    request = only_request(evaluate(synced, first.cursor))
    configs = group_configs(request)
    assert "tenancy.tenant" in configs["organization"]["whole_models"]
    # Nautobot clears references to a deleted object without logging a change: the models that reference
    # tenants are planned whole too (their groups are selected).
    assert "dcim.location" in configs["locations"]["whole_models"]
    assert request.asset_selection[-1] == AssetKey(ORPHANS_ASSET)
    result = execute(synced, request)
    assert result.success
    organization = group_metadata(result, "organization")
    assert organization[Key.ORPHANS] >= 1
    assert tenant_id in [row["veritasbot_id"] for row in table_rows(organization, Key.ORPHAN_TABLE)]
    assert tenant_id in [row["veritasbot_id"] for row in table_rows(group_metadata(result, ORPHANS_ASSET), Key.ORPHAN_TABLE)]
