"""Planning logic on fake data: identity, normalization, references, precedence. No Nautobot involved."""

from __future__ import annotations

import uuid

import pytest

from veritas_pipeline.engine.catalog import Catalog, Match
from veritas_pipeline.engine.policy import PrecedencePolicy
from veritas_pipeline.engine.planner import Planner
from veritas_pipeline.engine.registry import MODELS

SYNC_TAG = "SSoT Synced from Production"


class FakeClient:
    """Serves rows per endpoint, as NautobotClient.list would."""

    def __init__(self, rows: dict[str, list[dict]], read_only: bool = False):
        self.rows = rows
        self.read_only = read_only

    def list(self, endpoint: str, **filters) -> list[dict]:
        return [dict(row) for row in self.rows.get(endpoint, [])]


def uid() -> str:
    return str(uuid.uuid4())


def ref(object_id: str | None) -> dict | None:
    return None if object_id is None else {"id": object_id, "object_type": "x", "url": f"http://x/{object_id}/"}


def tenant(object_id: str, name: str, **extra) -> dict:
    row = {"id": object_id, "display": name, "name": name, "description": "", "comments": "", "tenant_group": None,
           "tags": [], "custom_fields": {}}
    row.update(extra)
    return row


def planner_for(production: dict, veritas: dict, policy: PrecedencePolicy | None = None,
                holders: dict | None = None) -> Planner:
    catalog = Catalog(FakeClient(production, read_only=True), FakeClient(veritas))
    sync_tag_id = next((row["id"] for row in veritas.get("extras/tags", []) if row["name"] == SYNC_TAG), None)
    discovery = frozenset(row["id"] for row in veritas.get("extras/tags", []) if row["name"].startswith("SSoT Synced from")
                          and row["name"] != SYNC_TAG)
    return Planner(catalog, policy or PrecedencePolicy(), sync_tag_id, discovery, holders or {})


def test_new_object_is_created_under_its_production_uuid_with_the_sync_tag():
    tenant_id = uid()
    plan = planner_for({"tenancy/tenants": [tenant(tenant_id, "Acme")]}, {}).plan(MODELS["tenancy.tenant"])
    [write] = plan.writes
    assert (write.action, write.veritas_id, write.body["id"], write.body["name"]) == ("create", tenant_id, tenant_id, "Acme")
    assert {"name": SYNC_TAG} in write.body["tags"]


def test_equal_values_in_other_shapes_are_unchanged():
    location_id, type_id, status_id = uid(), uid(), uid()
    production_row = {"id": location_id, "display": "L", "name": "L", "parent": None, "location_type": ref(type_id),
                      "status": ref(status_id), "tenant": None, "time_zone": "", "facility": None, "asn": None,
                      "physical_address": "", "shipping_address": "", "latitude": "12.500000", "longitude": None,
                      "contact_name": "", "contact_phone": "", "contact_email": "", "description": "", "comments": "",
                      "tags": [], "custom_fields": {"a": {"k": 1, "j": [1, 2]}}}
    veritas_row = dict(production_row, time_zone=None, facility="", latitude="12.5", location_type=type_id,
                       custom_fields={"a": {"j": [1, 2], "k": 1}, "veritas_only": 5})
    rows = {"dcim/locations": [production_row], "dcim/location-types": [{"id": type_id, "name": "T"}],
            "extras/statuses": [{"id": status_id, "name": "Active"}]}
    veritas = {**rows, "dcim/locations": [veritas_row]}
    plan = planner_for(rows, veritas).plan(MODELS["dcim.location"])
    assert plan.writes == [] and plan.unchanged == 1


def test_object_with_same_natural_key_is_adopted_and_references_follow_it():
    production_group, veritas_group = uid(), uid()
    production = {"tenancy/tenant-groups": [{"id": production_group, "name": "G", "parent": None, "description": "",
                                             "custom_fields": {}}],
                  "tenancy/tenants": [tenant(uid(), "Acme", tenant_group=ref(production_group))]}
    veritas = {"tenancy/tenant-groups": [{"id": veritas_group, "name": "G", "parent": None, "description": "",
                                          "custom_fields": {}}]}
    planner = planner_for(production, veritas)
    assert planner.catalog.identity("tenancy.tenantgroup", production_group).match is Match.ADOPTED
    group_plan = planner.plan(MODELS["tenancy.tenantgroup"])
    assert group_plan.adopted == {production_group: veritas_group} and not group_plan.writes
    [write] = planner.plan(MODELS["tenancy.tenant"]).writes
    assert write.body["tenant_group"] == veritas_group


def test_two_veritas_objects_with_one_natural_key_fail_the_object_instead_of_guessing():
    production = {"dcim/manufacturers": [{"id": uid(), "name": "M", "display": "M", "description": "",
                                          "custom_fields": {}}]}
    # Manufacturer names are unique in Nautobot; two rows only happen in broken data, which must not be guessed.
    veritas = {"dcim/manufacturers": [{"id": uid(), "name": "M", "description": "", "custom_fields": {}},
                                      {"id": uid(), "name": "M", "description": "", "custom_fields": {}}]}
    plan = planner_for(production, veritas).plan(MODELS["dcim.manufacturer"])
    assert not plan.writes
    [failure] = plan.failures
    assert "share its natural key" in failure.error and failure.name == "M"


def test_unresolvable_optional_reference_is_left_out_and_reported_pending():
    production = {"tenancy/tenants": [tenant(uid(), "Acme", tenant_group=ref(uid()))]}
    plan = planner_for(production, {}).plan(MODELS["tenancy.tenant"])
    [write] = plan.writes
    assert "tenant_group" not in write.body
    [pending] = plan.pending
    assert pending.field == "tenant_group" and not pending.blocking and "does not exist in production" in pending.reason


def test_unresolvable_required_reference_blocks_the_object_and_its_dependants():
    device_id, location_id = uid(), uid()
    production = {
        "dcim/locations": [{"id": location_id, "name": "L", "parent": None}],
        "dcim/devices": [{"id": device_id, "name": "d1", "display": "d1", "location": ref(location_id)}],
        "extras/statuses": [{"id": (status := uid()), "name": "Active"}],
        "dcim/cables": [{"id": uid(), "display": "c", "termination_a_type": "dcim.device",
                         "termination_a_id": device_id, "termination_b_type": "dcim.device",
                         "termination_b_id": device_id, "status": ref(status), "type": "", "label": "",
                         "color": "", "length": None, "length_unit": None, "cable_type": None, "tags": [],
                         "custom_fields": {}}],
    }
    plan = planner_for(production, {"extras/statuses": [{"id": status, "name": "Active"}]}).plan(MODELS["dcim.cable"])
    assert not plan.writes
    assert {p.field for p in plan.pending if p.blocking} == {"termination_a_id", "termination_b_id"}
    assert all("not in VeritasBot" in p.reason for p in plan.pending)


def test_discovery_touched_object_gets_safe_fields_and_conflicts_for_the_rest():
    tag_id, object_id = uid(), uid()
    discovery_tag = {"id": tag_id, "name": "SSoT Synced from vSphere"}
    production = {"tenancy/tenants": [tenant(object_id, "Acme", description="new text",
                                             comments="c", tenant_group=None)],
                  "tenancy/tenant-groups": []}
    veritas = {"tenancy/tenants": [tenant(object_id, "Acme", description="old", comments="c",
                                          tags=[ref(tag_id)])],
               "extras/tags": [discovery_tag]}
    policy = PrecedencePolicy(safe_field_overrides={"tenancy.tenant": ("comments",)})
    plan = planner_for(production, veritas, policy).plan(MODELS["tenancy.tenant"])
    assert not plan.writes
    [conflict] = plan.conflicts
    assert (conflict.field, conflict.production_value, conflict.veritas_value) == ("description", "new text", "old")
    assert conflict.rule.startswith("discovery tag")

    plan = planner_for(production, veritas).plan(MODELS["tenancy.tenant"])  # default policy: description is safe
    [write] = plan.writes
    assert write.body["description"] == "new text"
    assert {"id": tag_id} in write.body["tags"], "the discovery tag must survive the update"


def test_content_types_are_written_as_a_union_and_never_shrink():
    status_id = uid()
    production = {"extras/statuses": [{"id": status_id, "name": "Active", "display": "Active", "color": "00ff00",
                                       "description": "", "content_types": ["dcim.rack"], "custom_fields": {}}]}
    veritas_status = {"id": status_id, "name": "Active", "color": "00ff00", "description": "",
                      "content_types": ["dcim.device", "dcim.rack"], "custom_fields": {}}
    assert not planner_for(production, {"extras/statuses": [veritas_status]}).plan(MODELS["extras.status"]).writes

    production["extras/statuses"][0]["content_types"] = ["dcim.rack", "circuits.circuit"]
    [write] = planner_for(production, {"extras/statuses": [veritas_status]}).plan(MODELS["extras.status"]).writes
    assert write.body["content_types"] == ["circuits.circuit", "dcim.device", "dcim.rack"]


def test_tree_creates_are_levelled_parents_first():
    ids = [uid() for _ in range(3)]
    groups = [{"id": ids[0], "name": "root", "parent": None, "description": "", "custom_fields": {}},
              {"id": ids[1], "name": "child", "parent": ref(ids[0]), "description": "", "custom_fields": {}},
              {"id": ids[2], "name": "grandchild", "parent": ref(ids[1]), "description": "", "custom_fields": {}}]
    plan = planner_for({"tenancy/tenant-groups": list(reversed(groups))}, {}).plan(MODELS["tenancy.tenantgroup"])
    levels = {write.veritas_id: write.level for write in plan.writes}
    assert [levels[i] for i in ids] == [0, 1, 2]


@pytest.mark.parametrize("production_value, veritas_value, differs", [
    ("", None, False), ({"value": "a", "label": "A"}, "a", False), ("15.10", "15.1", True), ([2, 1], [1, 2], True),
])
def test_value_normalization(production_value, veritas_value, differs):
    version = MODELS["dcim.softwareversion"].field("version")
    assert (version.canonical(production_value) != version.canonical(veritas_value)) is differs


def test_an_update_writes_only_what_the_diff_found_different_with_both_values():
    """diffsync's diff is the only comparison: each differing field (each custom field key) comes with
    VeritasBot's value and production's, and nothing that compares equal is written."""
    tenant_id = uid()
    production = tenant(tenant_id, "Acme", description="new", comments="same",
                        custom_fields={"site_code": "A1", "owner": "ops"})
    veritas = tenant(tenant_id, "Acme", description="old", comments="same",
                     custom_fields={"site_code": "A1", "owner": "noc", "extra": "kept"})
    plan = planner_for({"tenancy/tenants": [production]}, {"tenancy/tenants": [veritas]}).plan(MODELS["tenancy.tenant"])
    [write] = plan.writes
    assert write.action == "update"
    assert write.changes == {"description": ("old", "new"), "custom_fields": ({"owner": "noc"}, {"owner": "ops"})}
    assert write.body["custom_fields"] == {"owner": "ops"}
    assert "comments" not in write.body and "name" not in write.body
    assert plan.unchanged == 0


def test_orphans_are_computed_once_per_model_and_run():
    tag_id, orphan_id = uid(), uid()
    sync_tag = {"id": tag_id, "name": SYNC_TAG, "display": SYNC_TAG, "content_types": ["tenancy.tenant"]}
    planner = planner_for({"tenancy/tenants": []},
                          {"extras/tags": [sync_tag], "tenancy/tenants": [tenant(orphan_id, "Gone", tags=[ref(tag_id)])]})
    spec = MODELS["tenancy.tenant"]
    assert planner.plan(spec).orphans == [(orphan_id, "Gone")]
    assert planner.orphans(spec) is planner.orphans(spec), "a second computation of the same orphans"
