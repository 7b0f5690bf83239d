"""The data-quality check functions on small hand-made frames. No Nautobot involved."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from veritas_pipeline.engine import quality
from veritas_pipeline.engine.quality import (
    FIELD_COLUMNS,
    PRODUCTION,
    PRODUCTION_COLUMNS,
    REFERENCE_COLUMNS,
    TREE_COLUMNS,
    TYPE_COLUMNS,
    VERITAS,
    VERITAS_COLUMNS,
    frame,
)


def production_rows(*rows: dict):
    defaults = {"key": None, "counterpart": None, "in_scope": True}
    return frame([{**defaults, **row} for row in rows], PRODUCTION_COLUMNS)


def veritas_rows(*rows: dict):
    defaults = {"key": None, "production_id": None, "sync_tag": False, "discovery_tag": False, "written": False}
    return frame([{**defaults, **row} for row in rows], VERITAS_COLUMNS)


def references(*rows: tuple):
    return frame([dict(zip(REFERENCE_COLUMNS, row)) for row in rows], REFERENCE_COLUMNS)


def problems(outcome) -> dict[str, str]:
    return {finding.object_id: finding.problem for finding in outcome.findings}


# ---------------------------------------------------------------- referential integrity

def test_referential_integrity_passes_when_every_reference_resolves():
    production = production_rows(
        {"label": "tenancy.tenant", "id": "t1", "name": "Acme", "counterpart": "t1"},
        {"label": "tenancy.tenantgroup", "id": "g1", "name": "Customers", "counterpart": "g1"})
    veritas = veritas_rows(
        {"label": "tenancy.tenant", "id": "t1", "name": "Acme", "production_id": "t1"},
        {"label": "tenancy.tenantgroup", "id": "g1", "name": "Customers"})
    refs = references((PRODUCTION, "tenancy.tenant", "t1", "tenant_group", "tenancy.tenantgroup", "g1"),
                      (VERITAS, "tenancy.tenant", "t1", "tenant_group", "tenancy.tenantgroup", "g1"))
    outcome = quality.referential_integrity("organization", production, veritas, refs)
    assert outcome.passed, outcome.findings
    assert outcome.counts["synced_objects"] == 1


def test_a_reference_whose_target_vanished_from_veritas_names_the_referencing_object():
    # The group was deleted in VeritasBot behind the sync's back; Nautobot set the tenant's reference to null.
    production = production_rows(
        {"label": "tenancy.tenant", "id": "t1", "name": "Acme", "counterpart": "t1"},
        {"label": "tenancy.tenantgroup", "id": "g1", "name": "Customers", "counterpart": None})
    veritas = veritas_rows({"label": "tenancy.tenant", "id": "t1", "name": "Acme", "production_id": "t1"})
    refs = references((PRODUCTION, "tenancy.tenant", "t1", "tenant_group", "tenancy.tenantgroup", "g1"))
    outcome = quality.referential_integrity("organization", production, veritas, refs)
    assert not outcome.passed
    [finding] = outcome.findings
    assert (finding.label, finding.object_id, finding.name) == ("tenancy.tenant", "t1", "Acme")
    assert "'Customers'" in finding.problem and "not in VeritasBot" in finding.problem


def test_a_dangling_veritas_reference_is_found_and_pending_discovered_targets_are_not():
    production = production_rows(
        {"label": "dcim.cable", "id": "c1", "name": "cable 1", "counterpart": "c1"},
        {"label": "dcim.cable", "id": "c2", "name": "cable 2", "counterpart": "c2"})
    veritas = veritas_rows(
        {"label": "dcim.cable", "id": "c1", "name": "cable 1", "production_id": "c1"},
        {"label": "dcim.cable", "id": "c2", "name": "cable 2", "production_id": "c2"},
        {"label": "dcim.interface", "id": "i1", "name": "eth0"})
    refs = references(
        (VERITAS, "dcim.cable", "c1", "termination_a_id", "dcim.interface", "i1"),
        (VERITAS, "dcim.cable", "c2", "termination_a_id", "dcim.interface", "gone"),
        # Production points at an interface VeritasBot lacks: discovered data, pending by design.
        (PRODUCTION, "dcim.cable", "c1", "termination_b_id", "dcim.interface", "p-i9"))
    outcome = quality.referential_integrity("cabling", production, veritas, refs)
    assert problems(outcome) == {"c2": "termination_a_id points at dcim.interface gone, which VeritasBot does not hold"}


def test_references_of_objects_discovery_alone_owns_are_not_judged():
    veritas = veritas_rows({"label": "tenancy.tenant", "id": "d1", "name": "Discovered"})
    refs = references((VERITAS, "tenancy.tenant", "d1", "tenant_group", "tenancy.tenantgroup", "gone"))
    assert quality.referential_integrity("organization", production_rows(), veritas, refs).passed


# ---------------------------------------------------------------- required fields

def test_required_and_natural_key_fields_must_be_set():
    fields = frame([
        {"label": "dcim.rack", "id": "r1", "name": "R1", "field": "status", "required": True,
         "in_production": True, "in_veritas": False},
        {"label": "dcim.rack", "id": "r1", "name": "R1", "field": "name", "required": False,
         "in_production": True, "in_veritas": False},
        # Optional key parts production leaves empty may be empty.
        {"label": "extras.contact", "id": "c1", "name": "Ann", "field": "phone", "required": False,
         "in_production": False, "in_veritas": False},
    ], FIELD_COLUMNS)
    outcome = quality.required_fields("physical_infrastructure", fields)
    assert not outcome.passed
    assert [(f.object_id, f.problem) for f in outcome.findings] == [
        ("r1", "required field 'status' is empty (production has it)"),
        ("r1", "natural-key field 'name' is empty (production has it)")]
    assert quality.required_fields("organization", fields).passed


# ---------------------------------------------------------------- uniqueness

def test_veritas_objects_sharing_a_natural_key_are_named():
    key = (("Site A",), None, "R1")
    production = production_rows({"label": "dcim.rack", "id": "r1", "name": "R1", "key": key, "counterpart": "r1"})
    veritas = veritas_rows(
        {"label": "dcim.rack", "id": "r1", "name": "R1", "key": key, "production_id": "r1"},
        {"label": "dcim.rack", "id": "r2", "name": "R1", "key": key},
        {"label": "dcim.rack", "id": "r3", "name": "R3", "key": (("Site A",), None, "R3"), "production_id": "r3"})
    outcome = quality.uniqueness("physical_infrastructure", production, veritas)
    assert not outcome.passed
    assert problems(outcome) == {"r1": "2 objects in VeritasBot share the natural key Site A / R1",
                                 "r2": "2 objects in VeritasBot share the natural key Site A / R1"}
    assert outcome.counts["shared_keys"] == 1


def test_duplicates_production_has_too_or_that_only_discovery_knows_are_not_findings():
    key = ("Ann", None, None)
    production = production_rows(
        {"label": "extras.contact", "id": "p1", "key": key, "name": "Ann", "counterpart": "p1"},
        {"label": "extras.contact", "id": "p2", "key": key, "name": "Ann", "counterpart": "p2"})
    veritas = veritas_rows(
        {"label": "extras.contact", "id": "p1", "name": "Ann", "key": key, "production_id": "p1"},
        {"label": "extras.contact", "id": "p2", "name": "Ann", "key": key, "production_id": "p2"},
        {"label": "extras.contact", "id": "d1", "name": "Bob", "key": ("Bob", None, None)},
        {"label": "extras.contact", "id": "d2", "name": "Bob", "key": ("Bob", None, None)})
    assert quality.uniqueness("organization", production, veritas).passed


# ---------------------------------------------------------------- hierarchy

def tree(*rows: tuple):
    return frame([dict(zip(TREE_COLUMNS, row)) for row in rows], TREE_COLUMNS)


def test_a_sound_forest_passes():
    nodes = tree(("cloud.cloudnetwork", "a", "A", None, None), ("cloud.cloudnetwork", "b", "B", "a", None))
    assert quality.hierarchy("cloud", nodes, frame([], TYPE_COLUMNS)).passed


def test_cycles_missing_parents_and_what_hangs_under_them_are_named():
    nodes = tree(
        ("cloud.cloudnetwork", "a", "A", "b", None),  # a <-> b: a cycle
        ("cloud.cloudnetwork", "b", "B", "a", None),
        ("cloud.cloudnetwork", "c", "C", "a", None),  # under the cycle
        ("cloud.cloudnetwork", "d", "D", "gone", None),  # parent missing
        ("cloud.cloudnetwork", "e", "E", "d", None),  # under it
        ("cloud.cloudnetwork", "f", "F", None, None))
    outcome = quality.hierarchy("cloud", nodes, frame([], TYPE_COLUMNS))
    assert problems(outcome) == {
        "a": "in a parent cycle: A → B → A",
        "b": "in a parent cycle: A → B → A",
        "c": "orphaned: under 'A', whose branch is broken",
        "d": "its parent gone does not exist",
        "e": "orphaned: under 'D', whose branch is broken",
    }


def test_a_location_type_must_be_allowed_under_its_parents_type():
    types = frame([
        {"label": "dcim.locationtype", "id": "region", "name": "Region", "parent": None, "nestable": True},
        {"label": "dcim.locationtype", "id": "site", "name": "Site", "parent": "region", "nestable": False},
    ], TYPE_COLUMNS)
    nodes = tree(
        ("dcim.location", "eu", "Europe", None, "region"),
        ("dcim.location", "west", "West", "eu", "region"),  # nestable: a region under a region
        ("dcim.location", "paris", "Paris", "west", "site"),
        ("dcim.location", "lyon", "Lyon", "paris", "site"),  # a site under a site: not nestable
        ("dcim.location", "nice", "Nice", None, "site"))  # a site must have a region above it
    outcome = quality.hierarchy("locations", nodes, types)
    assert problems(outcome) == {
        "lyon": "type 'Site' may not sit under a 'Site' (allowed: 'Region')",
        "nice": "type 'Site' may not sit at the top (allowed: 'Region')",
    }


# ---------------------------------------------------------------- tags

def test_objects_the_sync_wrote_carry_its_tag_and_only_they_do():
    production = production_rows({"label": "tenancy.tenant", "id": "t1", "name": "Acme", "counterpart": "t1"},
                                 {"label": "tenancy.tenant", "id": "t2", "name": "Beta", "counterpart": "v2"})
    veritas = veritas_rows(
        {"label": "tenancy.tenant", "id": "t1", "name": "Acme", "production_id": "t1"},  # created, tag removed
        {"label": "tenancy.tenant", "id": "v2", "name": "Beta", "production_id": "t2", "written": True},  # updated
        {"label": "tenancy.tenant", "id": "v3", "name": "Gone", "sync_tag": True},  # production lacks it
        {"label": "tenancy.tenant", "id": "v4", "name": "Discovered"})
    outcome = quality.tag_consistency("organization", production, veritas)
    assert problems(outcome) == {"t1": "created by the sync but lacks the sync tag",
                                 "v2": "updated by the sync but lacks the sync tag",
                                 "v3": "carries the sync tag but production has no such object"}


def test_both_tags_on_an_adopted_object_are_listed_on_a_created_one_they_warn():
    production = production_rows({"label": "dcim.rack", "id": "r1", "name": "R1", "counterpart": "v1"},
                                 {"label": "dcim.rack", "id": "r2", "name": "R2", "counterpart": "r2"})
    adopted = {"label": "dcim.rack", "id": "v1", "name": "R1", "production_id": "r1", "sync_tag": True,
               "discovery_tag": True}
    outcome = quality.discovery_consistency("physical_infrastructure", production, veritas_rows(adopted))
    assert outcome.passed and [f.object_id for f in outcome.findings] == ["v1"]
    claimed = {"label": "dcim.rack", "id": "r2", "name": "R2", "production_id": "r2", "sync_tag": True,
               "discovery_tag": True}
    outcome = quality.discovery_consistency("physical_infrastructure", production, veritas_rows(adopted, claimed))
    assert not outcome.passed
    assert problems(outcome)["r2"] == "created by the sync, since claimed by a discovery job"


# ---------------------------------------------------------------- coverage and freshness

def test_coverage_counts_in_scope_objects_per_model_against_the_threshold():
    production = production_rows(
        *({"label": "dcim.rackreservation", "id": f"r{n}", "name": f"res {n}", "counterpart": f"r{n}"}
          for n in range(3)),
        {"label": "dcim.rackreservation", "id": "r3", "name": "res 3"},
        {"label": "dcim.rack", "id": "k1", "name": "rack", "counterpart": "k1"})
    outcome = quality.coverage("physical_infrastructure", production, threshold=0.8)
    assert not outcome.passed
    assert problems(outcome) == {"r3": "in production, not in VeritasBot"}
    shares = dict(zip(outcome.per_model["model"], outcome.per_model["share"]))
    assert shares["dcim.rackreservation"] == 0.75 and shares["dcim.rack"] == 1.0 and shares["dcim.powerfeed"] == 1.0
    assert quality.coverage("physical_infrastructure", production, threshold=0.75).passed


def test_objects_pending_on_discovered_data_are_out_of_scope():
    production = production_rows({"label": "dcim.cable", "id": "c1", "name": "c1", "counterpart": "c1"},
                                 {"label": "dcim.cable", "id": "c2", "name": "c2", "in_scope": False})
    outcome = quality.coverage("cabling", production, threshold=1.0)
    assert outcome.passed and outcome.counts["out_of_scope"] == 1


def test_freshness_warns_past_the_maximum_age_and_when_never_synced():
    now = datetime(2025, 1, 2, 12, tzinfo=timezone.utc)
    assert quality.freshness("locations", now - timedelta(hours=2), now, timedelta(hours=24)).passed
    stale = quality.freshness("locations", now - timedelta(days=3), now, timedelta(hours=24))
    assert not stale.passed and stale.counts["age_hours"] == 72
    assert not quality.freshness("locations", None, now, timedelta(hours=24)).passed


def test_key_text_flattens_references():
    assert quality.key_text((("Europe", ("Paris",)), None, "R1")) == "Europe / Paris / R1"


# ---------------------------------------------------------------- frames from the registry

def test_a_generic_reference_to_an_object_missing_in_veritasbot_is_a_lost_reference():
    """The frames take a generic reference's target from the row (here a tenant a contact association
    points at), like the registry's other references: its loss is reported like theirs."""
    from veritas_pipeline.engine.catalog import Catalog
    from veritas_pipeline.engine.frames import GroupData
    from veritas_pipeline.engine.policy import PrecedencePolicy

    from .test_planner import FakeClient, tenant, uid

    tenant_id, association_id = uid(), uid()
    association = {"id": association_id, "display": "Acme contact", "contact": None, "team": None, "role": None,
                   "status": None, "associated_object_type": "tenancy.tenant", "associated_object_id": tenant_id,
                   "custom_fields": {}}
    catalog = Catalog(FakeClient({"tenancy/tenants": [tenant(tenant_id, "Acme")],
                                  "extras/contact-associations": [association]}, read_only=True),
                      FakeClient({"extras/contact-associations": [association]}))
    data = GroupData(catalog, PrecedencePolicy(), None, "metadata")

    lost = data.production[data.production["id"] == tenant_id]
    assert list(lost["label"]) == ["tenancy.tenant"] and lost["counterpart"].isna().all()
    outcome = quality.referential_integrity("metadata", data.production, data.veritas, data.references)
    assert problems(outcome) == {association_id: f"associated_object_id: tenancy.tenant 'Acme' ({tenant_id}) "
                                                 "is not in VeritasBot"}
