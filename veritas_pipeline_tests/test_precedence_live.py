"""Discovery precedence, conflicts, orphans and the opt-in prune, against the live stack (any seed)."""

from __future__ import annotations

import importlib
import json
import uuid
from pathlib import Path

import pytest

from veritas_pipeline.engine.policy import DEFAULT_DISCOVERY_OWNED_MODELS
from veritas_pipeline.engine.registry import MODELS
from veritas_pipeline.engine.state import StateStore
from veritas_pipeline.metadata import Key

from .conftest import Baseline, StackInfo, group_metadata, production_sql, run_sync, table_rows

DISCOVERY_TAGS = ("SSoT Synced from OpenShift", "SSoT Synced from vSphere", "SSoT Synced from Network Discovery")
UP_TO_LOCATIONS = ["foundation", "organization", "locations"]


def rid(value):
    return value.get("id") if isinstance(value, dict) else value


def placement(devices: list[dict]) -> dict[str, tuple]:
    return {device["id"]: (rid(device["location"]), rid(device["rack"]), device["position"]) for device in devices}


class Precedence:
    def __init__(self, stack: StackInfo, state_db: Path, placement_before: dict):
        self.stack, self.state_db, self.placement_before = stack, state_db, placement_before
        self.state = StateStore(f"sqlite:///{state_db}")

    def adopted(self, label: str) -> dict[str, str]:
        return self.state.adoptions(label)


@pytest.fixture(scope="module")
def precedence(synced_baseline: Baseline) -> Precedence:
    """The session's baseline sync, and where the seed placed VeritasBot's devices before it."""
    tags = {tag["id"] for tag in synced_baseline.stack.veritas.all("extras/tags") if tag["name"] in DISCOVERY_TAGS}
    assert any(rid(tag) in tags for device in synced_baseline.seeded_devices for tag in device["tags"]), \
        "the seed left no discovered device in VeritasBot"
    return Precedence(synced_baseline.stack, synced_baseline.state_db, placement(synced_baseline.seeded_devices))


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
    assert placement(precedence.stack.veritas.all("dcim/devices")) == precedence.placement_before


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

    # Pruning on with a cap of 2: the child network, then its parent (children first); tenants wait. The
    # fraction guard is lifted: for some seeds these few orphans are more than a tenth of their model.
    capped = run_sync(precedence.state_db, groups=["orphans"], prune_orphans=True, prune_limit=2,
                      prune_max_fraction=1.0)
    outcomes = orphan_outcomes(capped)
    assert outcomes[child["id"]] == "deleted" and outcomes[parent["id"]] == "deleted", outcomes
    assert not exists("cloud/cloud-networks", child["id"]) and not exists("cloud/cloud-networks", parent["id"])
    assert all("over the cap" in outcomes[t["id"]] for t in tenants)
    assert all(exists("tenancy/tenants", t["id"]) for t in tenants)

    # Without the cap in the way, the rest goes, and nothing else.
    counts_before = {endpoint: veritas.count(endpoint) for endpoint in ("dcim/locations", "circuits/circuits")}
    pruned = run_sync(precedence.state_db, groups=["orphans"], prune_orphans=True, prune_limit=100,
                      prune_max_fraction=1.0)
    assert group_metadata(pruned, "orphans")[Key.DELETED] == len(tenants)
    assert not any(exists("tenancy/tenants", t["id"]) for t in tenants)
    assert exists("tenancy/tenants", untagged["id"]) and exists("tenancy/tenants", discovered["id"])
    assert counts_before == {endpoint: veritas.count(endpoint) for endpoint in counts_before}


# ---------------------------------------------------------------- identity, built-in rows, self-healing, accounting

def counterpart(precedence: Precedence, label: str, production_id: str) -> str:
    """The VeritasBot id of a synced production object: its adoption, else its own UUID."""
    return precedence.adopted(label).get(production_id, production_id)


def check_outcomes(result) -> dict[tuple[str, str], bool]:
    return {(e.asset_key.path[0], e.check_name): e.passed for e in result.get_asset_check_evaluations()}


def identity_failures(result, group: str) -> list[dict]:
    return [row for row in table_rows(group_metadata(result, group), Key.FAILURES) if row["action"] == "match"]


def test_two_production_objects_claiming_one_veritas_object_fail_alone_and_everything_else_runs(
        precedence: Precedence):
    """A tenant, and a location inside a tree, each adopted, renamed in production, with a new object
    created under its old name (and for the location a child below the newcomer)."""
    production, veritas = precedence.stack.production, precedence.stack.veritas
    marker = uuid.uuid4().hex[:6]
    tenant_id, tenant_veritas_id = sorted(precedence.adopted("tenancy.tenant").items())[0]
    old_tenant = production.get(f"tenancy/tenants/{tenant_id}")["name"]
    nested = [(p, v) for p, v in sorted(precedence.adopted("dcim.location").items())
              if rid(production.get(f"dcim/locations/{p}")["parent"])]
    assert nested, "the seed left no adopted location inside a tree"
    location_id, location_veritas_id = nested[0]
    location = production.get(f"dcim/locations/{location_id}")

    assert production.write("PATCH", f"tenancy/tenants/{tenant_id}", {"name": f"{old_tenant} renamed {marker}"}).ok
    newcomer = production.write("POST", "tenancy/tenants", {"name": old_tenant}).json()
    assert production.write("PATCH", f"dcim/locations/{location_id}",
                            {"name": f"{location['name']} renamed {marker}"}).ok
    twin = production.write("POST", "dcim/locations", {
        "name": location["name"], "parent": rid(location["parent"]), "location_type": rid(location["location_type"]),
        "status": rid(location["status"])}).json()
    assert twin.get("id"), twin
    leaf_type = production.write("POST", "dcim/location-types",
                                 {"name": f"leaf type {marker}", "parent": rid(location["location_type"])}).json()
    child = production.write("POST", "dcim/locations", {
        "name": f"child of the twin {marker}", "parent": twin["id"], "location_type": leaf_type["id"],
        "status": rid(location["status"])}).json()
    assert child.get("id"), child

    for _ in range(2):  # the next run the same
        result = run_sync(precedence.state_db)
        assert result.success, "a group crashed"
        checks = check_outcomes(result)
        failing = sorted(key for key, passed in checks.items() if not passed)
        assert failing == [("locations", "identity"), ("organization", "identity")], failing
        assert all(result.asset_materializations_for_node(group) for group in ("cabling", "metadata")), \
            "later groups did not run"
        [tenant_failure] = identity_failures(result, "organization")
        [location_failure] = identity_failures(result, "locations")
        for failure, ids in ((tenant_failure, (newcomer["id"], tenant_id, tenant_veritas_id)),
                             (location_failure, (twin["id"], location_id, location_veritas_id))):
            assert all(object_id in failure["error"] for object_id in ids), failure
            assert "an earlier run adopted it" in failure["error"] and "rename" in failure["error"]
        # The newcomers are not written anywhere, and the child below the twin waits instead of landing at the root.
        for endpoint, object_id in (("tenancy/tenants", newcomer["id"]), ("dcim/locations", twin["id"]),
                                    ("dcim/locations", child["id"])):
            assert veritas.session.get(f"{veritas.url}/{endpoint}/{object_id}/").status_code == 404
        assert not veritas.all("dcim/locations", name=child["name"])
        pending = table_rows(group_metadata(result, "locations"), Key.PENDING_TABLE)
        assert [row["field"] for row in pending if row["production_id"] == child["id"]] == ["parent"]
        assert veritas.get(f"tenancy/tenants/{tenant_veritas_id}")["name"] == old_tenant  # discovery owns the name

    # The operator follows the message: VeritasBot's objects take production's new names. The newcomers are
    # created under their own UUIDs, the child below its parent, and the adopted objects stay matched.
    for endpoint, object_id, production_id in (("tenancy/tenants", tenant_veritas_id, tenant_id),
                                               ("dcim/locations", location_veritas_id, location_id)):
        assert veritas.write("PATCH", f"{endpoint}/{object_id}",
                             {"name": production.get(f"{endpoint}/{production_id}")["name"]}).ok
    result = run_sync(precedence.state_db, groups=UP_TO_LOCATIONS)
    assert result.success and all(check_outcomes(result).values()), check_outcomes(result)
    assert veritas.get(f"tenancy/tenants/{newcomer['id']}")["name"] == old_tenant
    assert rid(veritas.get(f"dcim/locations/{child['id']}")["parent"]) == twin["id"]
    assert precedence.adopted("tenancy.tenant")[tenant_id] == tenant_veritas_id
    assert precedence.adopted("dcim.location")[location_id] == location_veritas_id


def test_a_duplicate_natural_key_in_production_fails_the_newcomer_only(precedence: Precedence):
    """Root locations are unique by name only in Nautobot's forms: the database takes a second one."""
    production, veritas = precedence.stack.production, precedence.stack.veritas
    roots = [(p, v) for p, v in sorted(precedence.adopted("dcim.location").items())
             if not rid(production.get(f"dcim/locations/{p}")["parent"])]
    assert roots, "the seed left no adopted root location"
    original_id, veritas_id = roots[0]
    duplicate = str(uuid.uuid4())
    production_sql(f"CREATE TEMP TABLE twin AS SELECT * FROM dcim_location WHERE id = '{original_id}'; "
                   f"UPDATE twin SET id = '{duplicate}', created = created + interval '1 second'; "
                   "INSERT INTO dcim_location SELECT * FROM twin")
    try:
        result = run_sync(precedence.state_db, groups=UP_TO_LOCATIONS)
        [failure] = identity_failures(result, "locations")
        assert duplicate in failure["error"] and original_id in failure["error"] and veritas_id in failure["error"]
        assert veritas.session.get(f"{veritas.url}/dcim/locations/{duplicate}/").status_code == 404
        assert precedence.adopted("dcim.location")[original_id] == veritas_id
    finally:
        production_sql(f"DELETE FROM dcim_location WHERE id = '{duplicate}'")


def test_built_in_rows_follow_production_while_discovery_owned_and_discovery_tagged_objects_keep_their_values(
        precedence: Precedence, tmp_path):
    """Statuses and roles both instances made at install follow production; an adopted manufacturer stays
    discovery's. Nautobot's statuses and roles carry no tags, so "unless a discovery tag" is shown on an
    adopted tenant with tenants taken out of discovery_owned_models."""
    production, veritas = precedence.stack.production, precedence.stack.veritas
    marker = uuid.uuid4().hex[:6]
    status_id, status_veritas_id = sorted(precedence.adopted("extras.status").items())[0]
    role_id, role_veritas_id = sorted(precedence.adopted("extras.role").items())[0]
    manufacturer_id, manufacturer_veritas_id = sorted(precedence.adopted("dcim.manufacturer").items())[0]
    tenants = sorted(precedence.adopted("tenancy.tenant").items())
    tagged_id, tagged_veritas_id = tenants[-1]
    colour = "".join(sorted({"123456", "654321"} - {production.get(f"extras/statuses/{status_id}")["color"]}))[:6]
    weight = (production.get(f"extras/roles/{role_id}")["weight"] or 0) + 7
    assert production.write("PATCH", f"extras/statuses/{status_id}", {"color": colour}).ok
    assert production.write("PATCH", f"extras/roles/{role_id}", {"weight": weight}).ok
    manufacturer_name = production.get(f"dcim/manufacturers/{manufacturer_id}")["name"]
    assert production.write("PATCH", f"dcim/manufacturers/{manufacturer_id}",
                            {"name": f"{manufacturer_name} {marker}"}).ok
    [discovery_tag] = veritas.all("extras/tags", name=DISCOVERY_TAGS[0])
    assert veritas.write("PATCH", f"extras/tags/{discovery_tag['id']}",
                         {"content_types": sorted({*discovery_tag["content_types"], "tenancy.tenant"})}).ok
    assert veritas.write("PATCH", f"tenancy/tenants/{tagged_veritas_id}", {"tags": [
        *({"id": rid(tag)} for tag in veritas.get(f"tenancy/tenants/{tagged_veritas_id}")["tags"]),
        {"id": discovery_tag["id"]}]}).ok
    tagged_name = veritas.get(f"tenancy/tenants/{tagged_veritas_id}")["name"]
    assert production.write("PATCH", f"tenancy/tenants/{tagged_id}", {"name": f"{tagged_name} {marker}"}).ok
    policy = tmp_path / "policy.yaml"
    owned = [label for label in DEFAULT_DISCOVERY_OWNED_MODELS if label != "tenancy.tenant"]
    policy.write_text(f"discovery_owned_models: {json.dumps(owned)}\n")

    result = run_sync(precedence.state_db, groups=["foundation", "organization", "hardware_catalog"],
                      policy_file=str(policy))
    assert result.success
    assert veritas.get(f"extras/statuses/{status_veritas_id}")["color"] == colour
    assert veritas.get(f"extras/roles/{role_veritas_id}")["weight"] == weight
    assert veritas.get(f"dcim/manufacturers/{manufacturer_veritas_id}")["name"] == manufacturer_name
    assert veritas.get(f"tenancy/tenants/{tagged_veritas_id}")["name"] == tagged_name

    def conflict_rule(group: str, veritas_id: str, field: str) -> str | None:
        rows = [row for row in table_rows(group_metadata(result, group), Key.CONFLICT_TABLE)
                if row["veritasbot_id"] == veritas_id and row["field"] == field]
        return rows[0]["rule"] if rows else None

    assert conflict_rule("foundation", status_veritas_id, "color") is None
    assert conflict_rule("hardware_catalog", manufacturer_veritas_id, "name").startswith("adopted")
    assert conflict_rule("organization", tagged_veritas_id, "name").startswith("discovery tag")
    # Which rule applied to each adopted object: in the group's metadata and in the state database.
    adoptions = {row["veritasbot_id"]: row["rule"]
                 for group in ("foundation", "hardware_catalog")
                 for row in table_rows(group_metadata(result, group), Key.ADOPTION_TABLE)}
    assert adoptions[status_veritas_id].startswith("follows production")
    assert adoptions[role_veritas_id].startswith("follows production")
    assert adoptions[manufacturer_veritas_id].startswith("adopted")
    assert precedence.state.adoption_rules("extras.status")[status_id].startswith("follows production")
    assert precedence.state.adoption_rules("tenancy.tenant")[tagged_id].startswith("discovery tag")


def test_a_cable_whose_sync_tag_was_removed_gets_it_back(precedence: Precedence):
    veritas = precedence.stack.veritas
    [sync_tag] = veritas.all("extras/tags", name="SSoT Synced from Production")
    cables = [cable for cable in veritas.all("dcim/cables", tags=sync_tag["name"])
              if cable["id"] in {row["id"] for row in precedence.stack.production.all("dcim/cables")}]
    assert cables, "the sync wrote no cable"
    cable = cables[0]
    kept = [{"id": rid(tag)} for tag in cable["tags"] if rid(tag) != sync_tag["id"]]
    assert veritas.write("PATCH", f"dcim/cables/{cable['id']}", {"tags": kept}).ok
    result = run_sync(precedence.state_db, groups=["cabling"])
    assert result.success
    assert sync_tag["id"] in {rid(tag) for tag in veritas.get(f"dcim/cables/{cable['id']}")["tags"]}
    [write] = [w for w in precedence.state.writes_of_run(group_metadata(result, "cabling")["sync_run_id"])
               if w["object_id"] == cable["id"]]
    assert write["succeeded"] and sync_tag["id"] in write["changes"]["tags"][1]


def run_incremental(state_db: Path, group: str, changed_ids: dict[str, list[str]]):
    from dagster import DagsterInstance, materialize

    from veritas_pipeline.assets import group_assets, orphans

    from .conftest import sync_resource

    return materialize([*group_assets, orphans], selection=[group], resources={"sync": sync_resource(state_db)},
                       run_config={"ops": {group: {"config": {"changed_ids": changed_ids}}}},
                       instance=DagsterInstance.ephemeral(), raise_on_error=False)


def test_an_incremental_run_does_not_resolve_a_full_runs_conflicts(precedence: Precedence):
    """A conflict on a reference (an adopted location's status), shown by name and id; an incremental run
    of another location neither resolves it nor, on the next full run, makes it new again."""
    production, veritas = precedence.stack.production, precedence.stack.veritas
    adopted = sorted(precedence.adopted("dcim.location").items())
    (location_id, location_veritas_id), (other_id, _other) = adopted[0], adopted[-1]
    current = rid(production.get(f"dcim/locations/{location_id}")["status"])
    status = next(row for row in production.all("extras/statuses", content_types="dcim.location")
                  if row["id"] != current)
    status_veritas_id = counterpart(precedence, "extras.status", status["id"])
    kept_id = rid(veritas.get(f"dcim/locations/{location_veritas_id}")["status"])
    assert production.write("PATCH", f"dcim/locations/{location_id}", {"status": status["id"]}).ok
    full = group_metadata(run_sync(precedence.state_db, groups=UP_TO_LOCATIONS), "locations")
    [conflict] = [c for c in precedence.state.conflicts_of_run(full["sync_run_id"], "locations")
                  if c["object_id"] == location_veritas_id and c["field"] == "status"]
    shown = f"{status['name']} ({status_veritas_id})"
    assert json.loads(conflict["production_value"]) == shown
    assert json.loads(conflict["veritas_value"]) == f"{veritas.get(f'extras/statuses/{kept_id}')['display']} ({kept_id})"
    assert shown in [row["production_value"] for row in table_rows(full, Key.CONFLICT_TABLE)]

    incremental = group_metadata(run_incremental(precedence.state_db, "locations", {"dcim.location": [other_id]}),
                                 "locations")
    assert (incremental["conflicts_new"], incremental["conflicts_resolved"]) == (0, 0)
    again = group_metadata(run_sync(precedence.state_db, groups=UP_TO_LOCATIONS), "locations")
    assert (again["conflicts_new"], again["conflicts_resolved"]) == (0, 0)


def test_a_narrowed_production_token_prunes_nothing(precedence: Precedence):
    """A user who may see every model, but no tenant: its reads are complete and consistent, and every
    tenant the sync created looks orphaned."""
    from dagster import DagsterInstance, materialize

    from veritas_pipeline.assets import group_assets, orphans
    from veritas_pipeline.resources import NautobotResource, SyncResource

    import requests

    production, veritas = precedence.stack.production, precedence.stack.veritas
    name = f"narrowed-{uuid.uuid4().hex[:6]}"
    user = production.write("POST", "users/users", {"username": name, "password": f"pw-{name}"}).json()
    everything = [f"{ct['app_label']}.{ct['model']}" for ct in production.all("extras/content-types")]
    for permission in (
            {"object_types": [label for label in everything if label != "tenancy.tenant"], "actions": ["view"]},
            {"object_types": ["tenancy.tenant"], "actions": ["view"], "constraints": {"name": f"none {name}"}},
            {"object_types": ["users.token"], "actions": ["view", "add"]}):
        assert production.write("POST", "users/permissions", {
            "name": f"{name} {len(permission['object_types'])} {permission['actions'][-1]}", "users": [user["id"]],
            **permission}).ok
    token = requests.post(f"{production.url}/users/tokens/", auth=(name, f"pw-{name}"), json={}, timeout=60,
                          headers={"Accept": "application/json"}).json()["key"]
    tenants_before = veritas.count("tenancy/tenants")

    env = precedence.stack.env
    resource = SyncResource(
        production=NautobotResource(url=env["PRODUCTION_NAUTOBOT_URL"], token=token),
        veritas=NautobotResource(url=env["VERITASBOT_URL"], token=env["VERITASBOT_TOKEN"]),
        state_db_url=f"sqlite:///{precedence.state_db}", prune_orphans=True, prune_limit=1000)
    result = materialize([*group_assets, orphans], selection=["orphans"], resources={"sync": resource},
                         instance=DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success
    metadata = group_metadata(result, "orphans")
    assert metadata["deleted"] == 0 and metadata["orphans"] > 0, metadata
    held_back = {row["model"]: row["why"] for row in table_rows(metadata, Key.HELD_BACK)}
    assert "prune_max_fraction" in held_back["tenancy.tenant"]
    assert veritas.count("tenancy/tenants") == tenants_before
