"""Planning logic on fake data: identity, normalization, references, precedence. No Nautobot involved."""

from __future__ import annotations

import json
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

    def list_by_ids(self, endpoint: str, ids) -> list[dict]:
        ids = set(ids)
        return [dict(row) for row in self.rows.get(endpoint, []) if row["id"] in ids]


class KnownHolders:
    """The holders a test names (label -> VeritasBot ids), as engine/holders.py would find them."""

    def __init__(self, holders: dict[str, set[str]]):
        self.holders = holders

    def prefetch(self, label: str, veritas_ids) -> None:
        pass

    def holds(self, label: str, veritas_id: str) -> bool:
        return veritas_id in self.holders.get(label, ())


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
    return Planner(catalog, policy or PrecedencePolicy(), sync_tag_id, discovery, KnownHolders(holders or {}))


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


def remembering(planner: Planner, label: str, adoptions: dict[str, str]) -> Planner:
    """The planner's catalog, as if an earlier run had adopted these objects."""
    planner.catalog._remembered = lambda asked: dict(adoptions) if asked == label else {}
    return planner


def test_a_renamed_adopted_object_keeps_its_counterpart_and_the_new_one_with_its_old_name_fails_alone():
    renamed, newcomer, other, veritas_id = uid(), uid(), uid(), uid()
    production = {"tenancy/tenants": [tenant(renamed, "Acme Corp"), tenant(newcomer, "Acme"), tenant(other, "Beta")]}
    veritas = {"tenancy/tenants": [tenant(veritas_id, "Acme")]}
    plan = remembering(planner_for(production, veritas), "tenancy.tenant", {renamed: veritas_id}).plan(
        MODELS["tenancy.tenant"])
    assert plan.adopted == {renamed: veritas_id}
    [failure] = plan.failures
    assert (failure.object_id, failure.action) == (newcomer, "match")
    for named in (renamed, newcomer, veritas_id, "'Acme Corp'", "an earlier run adopted it", "rename"):
        assert named in failure.error
    assert [write.veritas_id for write in plan.creates] == [other], "everything else in the model lands"


def test_duplicate_natural_keys_in_production_the_oldest_keeps_the_veritas_object():
    older, younger, veritas_id = uid(), uid(), uid()
    production = {"tenancy/tenants": [tenant(younger, "Acme", created="2025-02-01T00:00:00Z"),
                                      tenant(older, "Acme", created="2024-01-01T00:00:00Z")]}
    plan = planner_for(production, {"tenancy/tenants": [tenant(veritas_id, "Acme")]}).plan(MODELS["tenancy.tenant"])
    assert plan.adopted == {older: veritas_id}
    [failure] = plan.failures
    assert failure.object_id == younger and "older of the production objects" in failure.error


def test_a_remembered_adoption_whose_veritas_object_is_gone_is_stale_and_the_object_is_matched_again():
    production_id, gone, replacement = uid(), uid(), uid()
    planner = remembering(planner_for({"tenancy/tenants": [tenant(production_id, "Acme")]},
                                      {"tenancy/tenants": [tenant(replacement, "Acme")]}),
                          "tenancy.tenant", {production_id: gone})
    assert planner.catalog.stale_adoptions("tenancy.tenant") == {production_id}
    planner.catalog.forget_adoptions("tenancy.tenant", {production_id})
    assert planner.plan(MODELS["tenancy.tenant"]).adopted == {production_id: replacement}


def tenant_group(object_id: str, name: str, parent: str | None = None) -> dict:
    return {"id": object_id, "display": name, "name": name, "parent": ref(parent), "description": "",
            "custom_fields": {}}


def test_a_child_whose_parent_is_unresolved_waits_instead_of_landing_at_the_root():
    claimed_parent, holder, child, grandchild, veritas_parent = uid(), uid(), uid(), uid(), uid()
    production = {"tenancy/tenant-groups": [tenant_group(grandchild, "grandchild", child),
                                            tenant_group(child, "child", claimed_parent),
                                            tenant_group(claimed_parent, "G", None),
                                            tenant_group(holder, "G renamed", None)]}
    veritas = {"tenancy/tenant-groups": [tenant_group(veritas_parent, "G")]}
    planner = remembering(planner_for(production, veritas), "tenancy.tenantgroup", {holder: veritas_parent})
    plan = planner.plan(MODELS["tenancy.tenantgroup"])
    assert not plan.creates, "a child of an unwritable parent was created (at the root)"
    assert {(p.production_id, p.field, p.blocking) for p in plan.pending} == {(child, "parent", True),
                                                                               (grandchild, "parent", True)}


def status(object_id: str, name: str, **extra) -> dict:
    return {"id": object_id, "display": name, "name": name, "color": "9e9e9e", "description": "",
            "content_types": ["dcim.location"], "custom_fields": {}, **extra}


def test_an_adopted_built_in_row_follows_production_unless_discovery_tags_it():
    production_id, veritas_id, tag_id = uid(), uid(), uid()
    production = {"extras/statuses": [status(production_id, "Active", color="4caf50")]}
    veritas = {"extras/statuses": [status(veritas_id, "Active")]}
    plan = planner_for(production, veritas).plan(MODELS["extras.status"])
    [write] = plan.writes
    assert write.changes == {"color": ("9e9e9e", "4caf50")} and not plan.conflicts
    assert plan.adoption_rules[production_id].startswith("follows production")

    veritas = {"extras/statuses": [status(veritas_id, "Active", tags=[ref(tag_id)])],
               "extras/tags": [{"id": tag_id, "name": "SSoT Synced from vSphere"}]}
    plan = planner_for(production, veritas).plan(MODELS["extras.status"])
    [conflict] = plan.conflicts
    assert conflict.field == "color" and conflict.rule.startswith("discovery tag") and not plan.writes


def test_an_adopted_object_of_a_discovery_owned_model_keeps_its_non_safe_fields():
    production_id, veritas_id = uid(), uid()
    manufacturer = {"name": "Acme", "display": "Acme", "description": "", "custom_fields": {}}
    plan = planner_for({"dcim/manufacturers": [{"id": production_id, **manufacturer, "name": "ACME"}]},
                       {"dcim/manufacturers": [{"id": veritas_id, **manufacturer}]})
    remembering(plan, "dcim.manufacturer", {production_id: veritas_id})
    result = plan.plan(MODELS["dcim.manufacturer"])
    [conflict] = result.conflicts
    assert (conflict.field, conflict.rule.split(":")[0]) == ("name", "adopted") and not result.writes
    assert result.adoption_rules[production_id].startswith("adopted")


def test_an_object_the_sync_created_gets_its_lost_sync_tag_back():
    tenant_id, tag_id = uid(), uid()
    sync_tag = {"id": tag_id, "name": SYNC_TAG}
    plan = planner_for({"tenancy/tenants": [tenant(tenant_id, "Acme")]},
                       {"tenancy/tenants": [tenant(tenant_id, "Acme")], "extras/tags": [sync_tag]}
                       ).plan(MODELS["tenancy.tenant"])
    [write] = plan.writes
    assert write.action == "update" and {"name": SYNC_TAG} in write.body["tags"]
    assert write.changes == {"tags": ([], [tag_id])}


def test_a_deferred_field_that_differs_on_an_existing_object_is_written_at_the_end_of_the_group():
    field_id = uid()
    custom_field = {"id": field_id, "display": "f", "key": "f", "label": "F", "type": "select", "grouping": "",
                    "description": "", "required": False, "default": "b", "weight": 100, "validation_minimum": None,
                    "validation_maximum": None, "validation_regex": "", "advanced_ui": False, "filter_logic": "loose",
                    "scope_filter": None, "content_types": ["dcim.location"]}
    plan = planner_for({"extras/custom-fields": [custom_field]},
                       {"extras/custom-fields": [dict(custom_field, default=None)]}).plan(MODELS["extras.customfield"])
    assert not plan.writes
    [write] = plan.deferred
    assert write.body == {"id": field_id, "default": "b"}


def test_credentials_are_digests_in_the_audit_trail_and_conflicts():
    integration_id, tag_id = uid(), uid()
    row = {"id": integration_id, "display": "vault", "name": "vault", "remote_url": "https://vault", "verify_ssl": True,
           "timeout": 30, "http_method": "GET", "ca_file_path": "", "secrets_group": None, "tags": [],
           "custom_fields": {}, "headers": {"X-Token": "s3cret"}, "extra_config": {"api_key": "k3y"}}
    [create] = planner_for({"extras/external-integrations": [row]}, {}).plan(
        MODELS["extras.externalintegration"]).writes
    assert create.body["headers"] == {"X-Token": "s3cret"}, "the real value is written"
    assert "s3cret" not in repr(create.changes) and "k3y" not in repr(create.changes)
    assert create.changes["headers"][1].startswith("sha256:")

    veritas = {"extras/external-integrations": [dict(row, headers={"X-Token": "old"}, tags=[ref(tag_id)])],
               "extras/tags": [{"id": tag_id, "name": "SSoT Synced from vSphere"}]}
    plan = planner_for({"extras/external-integrations": [row]}, veritas).plan(MODELS["extras.externalintegration"])
    [conflict] = [c for c in plan.conflicts if c.field == "headers"]
    assert conflict.production_value.startswith("sha256:") and "old" not in repr(conflict)


def test_conflicting_references_show_display_name_and_id():
    location_id, active, planned, type_id, tag_id = uid(), uid(), uid(), uid(), uid()
    location = {"id": location_id, "display": "L", "name": "L", "parent": None, "location_type": ref(type_id),
                "tenant": None, "tags": [ref(tag_id)], "custom_fields": {}}
    statuses = [status(active, "Active"), status(planned, "Planned")]
    rows = {"dcim/location-types": [{"id": type_id, "name": "T"}], "extras/statuses": statuses,
            "extras/tags": [{"id": tag_id, "name": "SSoT Synced from vSphere"}]}
    production = {**rows, "dcim/locations": [dict(location, status=ref(planned))]}
    veritas = {**rows, "dcim/locations": [dict(location, status=ref(active))]}
    [conflict] = planner_for(production, veritas).plan(MODELS["dcim.location"]).conflicts
    assert (conflict.production_value, conflict.veritas_value) == (f"Planned ({planned})", f"Active ({active})")


def test_a_conflicting_generic_reference_shows_the_object_it_points_at():
    association_id, role_id, status_id = uid(), uid(), uid()
    contact_id, first, second = uid(), uid(), uid()
    tenants = [tenant(first, "First"), tenant(second, "Second")]
    association = {"id": association_id, "display": "a", "contact": ref(contact_id), "team": None,
                   "associated_object_type": "tenancy.tenant", "role": ref(role_id), "status": ref(status_id),
                   "custom_fields": {}}
    rows = {"tenancy/tenants": tenants, "extras/roles": [{"id": role_id, "name": "R"}],
            "extras/statuses": [status(status_id, "Active")],
            "extras/contacts": [{"id": contact_id, "name": "C", "phone": "", "email": ""}]}
    production = {**rows, "extras/contact-associations": [dict(association, associated_object_id=second)]}
    veritas = {**rows, "extras/contact-associations": [dict(association, associated_object_id=first)]}
    # Discovery-touched (here: as if it held discovered objects), with no safe fields: every change conflicts.
    policy = PrecedencePolicy(safe_field_overrides={"extras.contactassociation": ()})
    planner = planner_for(production, veritas, policy, holders={"extras.contactassociation": {association_id}})
    [conflict] = planner.plan(MODELS["extras.contactassociation"]).conflicts
    assert (conflict.production_value, conflict.veritas_value) == (f"Second ({second})", f"First ({first})")


def test_the_journal_keeps_credentials_only_as_a_digest():
    from veritas_pipeline.engine.apply import journal_objects
    from veritas_pipeline.engine.planner import Write

    headers = {"Authorization": "Bearer very-secret"}
    write = Write("extras.externalintegration", "update", uid(), uid(), "vault", {"headers": headers},
                  {"headers": (None, "sha256:x")}, intended={"headers": headers, "name": "vault"})
    [kept] = journal_objects([write])
    assert "very-secret" not in json.dumps(kept)
    assert kept["intended"]["headers"].startswith("sha256:") and kept["intended"]["name"] == "vault"
