"""Discovery precedence, conflicts, orphans and the opt-in prune, against the live stack (any seed)."""

from __future__ import annotations

import importlib
import json
import uuid
from pathlib import Path

import pytest

from veritas_pipeline.engine.registry import MODELS
from veritas_pipeline.engine.state import StateStore
from veritas_pipeline.metadata import Key

from .conftest import StackInfo, group_metadata, production_sql, run_sync, table_rows

DISCOVERY_TAGS = ("SSoT Synced from OpenShift", "SSoT Synced from vSphere", "SSoT Synced from Network Discovery")
UP_TO_LOCATIONS = ["foundation", "organization", "locations"]


def rid(value):
    return value.get("id") if isinstance(value, dict) else value


def discovered_placement(veritas) -> dict[str, tuple]:
    devices = [device for tag in DISCOVERY_TAGS for device in veritas.all("dcim/devices", tags=tag)]
    return {device["id"]: (rid(device["location"]), rid(device["rack"]), device["position"]) for device in devices}


class Precedence:
    def __init__(self, stack: StackInfo, state_db: Path, placement_before: dict):
        self.stack, self.state_db, self.placement_before = stack, state_db, placement_before
        self.state = StateStore(f"sqlite:///{state_db}")

    def adopted(self, label: str) -> dict[str, str]:
        return self.state.adoptions(label)


@pytest.fixture(scope="module")
def precedence(fresh_stack: StackInfo, tmp_path_factory) -> Precedence:
    state_db = tmp_path_factory.mktemp("precedence") / "state.db"
    placement = discovered_placement(fresh_stack.veritas)
    assert placement, "the seed left no discovered device in VeritasBot"
    result = run_sync(state_db, groups=None)
    assert result.success
    return Precedence(fresh_stack, state_db, placement)


def conflicts_in(result, group: str) -> list[str]:
    """The fields of the group's conflict table."""
    return [row["field"] for row in table_rows(group_metadata(result, group), Key.CONFLICT_TABLE)]


def as_recorded(value) -> str | None:
    """How the state database stores a conflict value."""
    return None if value is None else json.dumps(value, sort_keys=True)


def test_discovery_owned_field_is_kept_and_recorded_while_a_safe_field_is_updated(precedence: Precedence):
    production, veritas = precedence.stack.production, precedence.stack.veritas
    production_id, veritas_id = sorted(precedence.adopted("dcim.location").items())[0]
    before = veritas.get(f"dcim/locations/{veritas_id}")
    # Start from agreement on the discovery-owned field, so the conflict below is a new one.
    assert production.write("PATCH", f"dcim/locations/{production_id}", {"asn": before["asn"]}).ok
    assert run_sync(precedence.state_db, groups=UP_TO_LOCATIONS).success

    new_asn = (before["asn"] or 64512) + 1
    marker = f"described {uuid.uuid4().hex[:8]}"
    assert production.write("PATCH", f"dcim/locations/{production_id}", {"asn": new_asn, "description": marker}).ok
    result = run_sync(precedence.state_db, groups=UP_TO_LOCATIONS)
    assert result.success
    after = veritas.get(f"dcim/locations/{veritas_id}")
    assert after["description"] == marker, "the safe field was not updated"
    assert after["asn"] == before["asn"], "a discovery-owned field was overwritten"

    metadata = group_metadata(result, "locations")
    [conflict] = [c for c in precedence.state.conflicts_of_run(metadata[Key.SYNC_RUN_ID], "locations")
                  if c["object_id"] == veritas_id and c["field"] == "asn"]
    assert (conflict["production_value"], conflict["veritas_value"]) == (as_recorded(new_asn), as_recorded(before["asn"]))
    assert conflict["rule"].startswith("adopted")
    assert veritas_id in [row["veritasbot_id"] for row in table_rows(metadata, Key.CONFLICT_TABLE)]
    assert veritas_id in [row["veritasbot_id"] for row in table_rows(metadata, Key.CONFLICTS_NEW_TABLE)]

    # Production agrees again: the next run reports the conflict resolved.
    assert production.write("PATCH", f"dcim/locations/{production_id}", {"asn": before["asn"]}).ok
    again = group_metadata(run_sync(precedence.state_db, groups=UP_TO_LOCATIONS), "locations")
    assert veritas_id in [row["veritasbot_id"] for row in table_rows(again, Key.CONFLICTS_RESOLVED_TABLE)]
    assert not [c for c in precedence.state.conflicts_of_run(again["sync_run_id"], "locations")
                if c["object_id"] == veritas_id and c["field"] == "asn"]


def test_adopted_object_keeps_its_veritas_uuid_and_receives_safe_fields(precedence: Precedence):
    production, veritas = precedence.stack.production, precedence.stack.veritas
    production_id, veritas_id = sorted(precedence.adopted("tenancy.tenant").items())[0]
    assert production_id != veritas_id
    marker = f"comment {uuid.uuid4().hex[:8]}"
    assert production.write("PATCH", f"tenancy/tenants/{production_id}", {"comments": marker}).ok
    assert run_sync(precedence.state_db, groups=["foundation", "organization"]).success
    assert veritas.get(f"tenancy/tenants/{veritas_id}")["comments"] == marker
    assert veritas.session.get(f"{veritas.url}/tenancy/tenants/{production_id}/").status_code == 404, \
        "the adopted tenant was duplicated under its production UUID"


def test_locations_with_discovered_devices_keep_them_and_their_placement(precedence: Precedence):
    assert discovered_placement(precedence.stack.veritas) == precedence.placement_before


def test_policy_changes_by_configuration_alone(precedence: Precedence, tmp_path, monkeypatch):
    production, veritas = precedence.stack.production, precedence.stack.veritas
    production_id, veritas_id = sorted(precedence.adopted("tenancy.tenant").items())[-1]
    policy = tmp_path / "policy.yaml"
    policy.write_text("safe_fields:\n  tenancy.tenant: [comments]\n")
    marker = f"policy {uuid.uuid4().hex[:8]}"
    assert production.write("PATCH", f"tenancy/tenants/{production_id}", {"description": marker}).ok

    result = run_sync(precedence.state_db, groups=["foundation", "organization"], policy_file=str(policy))
    assert veritas.get(f"tenancy/tenants/{veritas_id}")["description"] != marker, "the policy file was ignored"
    assert "description" in conflicts_in(result, "organization")

    assert run_sync(precedence.state_db, groups=["foundation", "organization"]).success  # default policy
    assert veritas.get(f"tenancy/tenants/{veritas_id}")["description"] == marker

    # The code location picks the file from the environment, with a clear error for a bad setting.
    monkeypatch.setenv("VERITAS_POLICY_FILE", str(policy))
    import veritas_pipeline.definitions as definitions

    policy_in_use = importlib.reload(definitions).sync_resource.policy()
    assert policy_in_use.safe_fields(MODELS["tenancy.tenant"]) == {"comments"}
    policy.write_text("prune_orphnas: true\n")
    with pytest.raises(ValueError, match="prune_orphnas"):
        definitions.sync_resource.policy()
    monkeypatch.delenv("VERITAS_POLICY_FILE")
    importlib.reload(definitions)


def orphan_outcomes(result) -> dict[str, str]:
    return {row["veritasbot_id"]: row["outcome"] for row in table_rows(group_metadata(result, "orphans"), Key.ORPHAN_TABLE)}


def test_orphans_are_reported_and_pruned_only_when_allowed(precedence: Precedence):
    production, veritas = precedence.stack.production, precedence.stack.veritas
    marker = uuid.uuid4().hex[:8]
    network = production.all("cloud/cloud-networks")[0]
    base = {"cloud_resource_type": rid(network["cloud_resource_type"]), "cloud_account": rid(network["cloud_account"])}
    parent = production.write("POST", "cloud/cloud-networks", {**base, "name": f"orphan parent {marker}"}).json()
    child = production.write("POST", "cloud/cloud-networks",
                             {**base, "name": f"orphan child {marker}", "parent": parent["id"]}).json()
    tenants = [production.write("POST", "tenancy/tenants", {"name": f"orphan {i} {marker}"}).json() for i in range(3)]
    assert run_sync(precedence.state_db).success
    # Objects the sync did not write: never orphans, whatever production says.
    untagged = veritas.write("POST", "tenancy/tenants", {"name": f"veritas only {marker}"}).json()
    [tag] = veritas.all("extras/tags", name=DISCOVERY_TAGS[0])
    assert veritas.write("PATCH", f"extras/tags/{tag['id']}",
                         {"content_types": sorted({*tag["content_types"], "tenancy.tenant"})}).ok
    discovered = veritas.write("POST", "tenancy/tenants", {"name": f"discovered {marker}", "tags": [
        {"name": DISCOVERY_TAGS[0]}, {"name": "SSoT Synced from Production"}]}).json()
    assert discovered.get("id"), discovered

    for gone in (child, parent):
        assert production.write("DELETE", f"cloud/cloud-networks/{gone['id']}", None).status_code == 204
    for tenant in tenants:
        assert production.write("DELETE", f"tenancy/tenants/{tenant['id']}", None).status_code == 204
    orphan_ids = {child["id"], parent["id"], *(t["id"] for t in tenants)}

    def exists(endpoint: str, object_id: str) -> bool:
        return veritas.session.get(f"{veritas.url}/{endpoint}/{object_id}/").status_code == 200

    # Reported, left alone: pruning is off by default.
    reported = run_sync(precedence.state_db, groups=["orphans"])
    outcomes = orphan_outcomes(reported)
    assert orphan_ids <= set(outcomes), outcomes
    assert untagged["id"] not in outcomes and discovered["id"] not in outcomes
    assert all(exists("tenancy/tenants", t["id"]) for t in tenants) and exists("cloud/cloud-networks", parent["id"])

    # A production read that fails in the run: nothing is deleted.
    location_id = production.all("dcim/locations")[0]["id"]
    time_zone = production_sql(f"SELECT time_zone FROM dcim_location WHERE id = '{location_id}'")
    production_sql(f"UPDATE dcim_location SET time_zone = 'Not/A_Zone' WHERE id = '{location_id}'")
    try:
        refused = run_sync(precedence.state_db, groups=["orphans"], prune_orphans=True)
    finally:
        production_sql(f"UPDATE dcim_location SET time_zone = '{time_zone}' WHERE id = '{location_id}'")
    assert "production read" in group_metadata(refused, "orphans")[Key.SKIPPED]
    assert group_metadata(refused, "orphans")[Key.DELETED] == 0
    assert exists("cloud/cloud-networks", child["id"])

    # Pruning on with a cap of 2: the child network, then its parent (children first); tenants wait.
    capped = run_sync(precedence.state_db, groups=["orphans"], prune_orphans=True, prune_limit=2)
    outcomes = orphan_outcomes(capped)
    assert outcomes[child["id"]] == "deleted" and outcomes[parent["id"]] == "deleted", outcomes
    assert not exists("cloud/cloud-networks", child["id"]) and not exists("cloud/cloud-networks", parent["id"])
    assert all("over the cap" in outcomes[t["id"]] for t in tenants)
    assert all(exists("tenancy/tenants", t["id"]) for t in tenants)

    # Without the cap in the way, the rest goes, and nothing else.
    counts_before = {endpoint: veritas.count(endpoint) for endpoint in ("dcim/locations", "circuits/circuits")}
    pruned = run_sync(precedence.state_db, groups=["orphans"], prune_orphans=True, prune_limit=100)
    assert group_metadata(pruned, "orphans")[Key.DELETED] == len(tenants)
    assert not any(exists("tenancy/tenants", t["id"]) for t in tenants)
    assert exists("tenancy/tenants", untagged["id"]) and exists("tenancy/tenants", discovered["id"])
    assert counts_before == {endpoint: veritas.count(endpoint) for endpoint in counts_before}
