"""The sync engine and its Dagster assets against the live stack (any seed), deployed as in production: the
runs go through a Dagster instance configured by deploy/dagster.yaml, whose storage is the stack's PostgreSQL,
with the state database on PostgreSQL too. (The other live modules run on SQLite: a Dagster instance in
memory and a state database file.)

The comparisons here read both instances with plain REST calls and their own small normalization, not
the engine's catalog, so an engine bug cannot hide itself.
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qs, urlsplit
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Iterator

import pytest
import requests
from dagster import AssetKey, DagsterRunStatus
from prometheus_client.parser import text_string_to_metric_families
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

from veritas_pipeline.engine.client import ClientSettings, NautobotClient
from veritas_pipeline.engine.holders import DiscoveryHolders
from veritas_pipeline.engine.registry import GROUPS, MODELS, NOT_SYNCED_FIELDS, SYNCED_MODELS, Kind
from veritas_pipeline.engine.state import StateStore
from veritas_pipeline.metadata import Key

from .conftest import (
    Deployment,
    StackInfo,
    group_metadata,
    pipeline_job,
    postgres_deployment,
    production_sql,
    run_sync,
    table_rows,
    total,
)
from .stack_helpers import STACK_DIR

SYNC_TAG = "SSoT Synced from Production"
DISCOVERY_TAGS = ("SSoT Synced from OpenShift", "SSoT Synced from vSphere", "SSoT Synced from Network Discovery")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class SyncedStack:
    stack: StackInfo
    deployment: Deployment
    first_run: object
    production_requests: list[tuple[str, str]]  # (method, path) of the first run's requests, as each server logged them
    veritas_requests: list[tuple[str, str]]

    @property
    def state(self) -> StateStore:
        return StateStore(self.deployment.state_url)

    def sync(self, **arguments):
        return run_sync(self.deployment.state_url, instance=self.deployment.instance, **arguments)


def production_log() -> Path:
    return STACK_DIR / "logs" / "nautobot-production.log"


def veritas_log() -> Path:
    return STACK_DIR / "logs" / "nautobot-veritas.log"


def request_lines(log: Path, offset: int) -> list[str]:
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    return re.findall(r"\] (GET|HEAD|OPTIONS|POST|PUT|PATCH|DELETE) (/\S*)", text)


@pytest.fixture(scope="module")
def synced(fresh_stack: StackInfo, tmp_path_factory) -> Iterator[SyncedStack]:
    with postgres_deployment(tmp_path_factory.mktemp("dagster_home"), "sync_live") as deployment:
        offsets = production_log().stat().st_size, veritas_log().stat().st_size
        result = run_sync(deployment.state_url, instance=deployment.instance)
        yield SyncedStack(fresh_stack, deployment, result, request_lines(production_log(), offsets[0]),
                          request_lines(veritas_log(), offsets[1]))


# ---------------------------------------------------------------- an independent comparison

def plain(kind: Kind, value):
    if isinstance(value, dict) and set(value) == {"value", "label"}:
        value = value["value"]
    if value in ("", None):
        return None
    if kind is Kind.DECIMAL:
        return Decimal(str(value)).normalize()
    if isinstance(value, list) and kind is Kind.UNORDERED:
        return sorted(value, key=repr)
    return value


def rid(value):
    return value.get("id") if isinstance(value, dict) else value


class Mirror:
    """Both instances read afresh, and production ids mapped to VeritasBot ids (same UUID or adopted)."""

    def __init__(self, stack: StackInfo, adoptions: dict[str, dict[str, str]]):
        self.production = {spec.label: {r["id"]: r for r in stack.production.all(spec.endpoint)}
                           for spec in SYNCED_MODELS}
        self.veritas = {spec.label: {r["id"]: r for r in stack.veritas.all(spec.endpoint)} for spec in SYNCED_MODELS}
        self.adoptions = adoptions
        tags = {row["name"]: tag_id for tag_id, row in self.veritas["extras.tag"].items()}
        self.sync_tag = tags[SYNC_TAG]
        self.discovery_tags = {tags[name] for name in DISCOVERY_TAGS if name in tags}
        devices = [device for tag in DISCOVERY_TAGS
                   for device in stack.veritas.all("dcim/devices", tags=tag, exclude_m2m="true")]
        self.holders = {"dcim.location": {rid(d["location"]) for d in devices}, "dcim.rack": {rid(d["rack"]) for d in devices}}

    def counterpart(self, label: str, production_id: str) -> str | None:
        if production_id in self.veritas[label]:
            return production_id
        return self.adoptions.get(label, {}).get(production_id)

    def touched(self, label: str, veritas_id: str, production_id: str) -> bool:
        row = self.veritas[label][veritas_id]
        return (veritas_id != production_id or any(rid(t) in self.discovery_tags for t in row.get("tags") or ())
                or veritas_id in self.holders.get(label, ()))

    def mapped(self, label: str, production_id):
        if production_id is None or label not in self.production:
            return production_id
        return self.counterpart(label, production_id)


def mismatches(mirror: Mirror, spec, production_row: dict, veritas_row: dict, touched: bool) -> list[str]:
    problems = []
    fields = spec.compared_fields if not touched else [f for f in spec.compared_fields if f in spec.safe_fields]
    for name in fields:
        want, have = production_row.get(name), veritas_row.get(name)
        kind, target = spec.field(name).kind, spec.field(name).target
        if kind is Kind.REFERENCE:
            if target in mirror.production and mirror.mapped(target, rid(want)) != rid(have):
                problems.append(f"{name}: production {rid(want)} -> VeritasBot {rid(have)}")
        elif kind is Kind.MANY:
            if target in mirror.production:
                if {mirror.mapped(target, rid(v)) for v in want or ()} != {rid(v) for v in have or ()}:
                    problems.append(f"{name} differs")
        elif kind is Kind.TAGS:
            wanted = {mirror.mapped("extras.tag", rid(v)) for v in want or ()}
            if not wanted <= {rid(v) for v in have or ()}:
                problems.append("tags missing")
        elif kind is Kind.UNION:
            if not set(want or ()) <= set(have or ()):
                problems.append(f"{name} missing {set(want) - set(have or ())}")
        elif kind is Kind.CUSTOM_FIELDS:
            for key, value in (want or {}).items():
                if plain(kind, value) != plain(kind, (have or {}).get(key)):
                    problems.append(f"custom field {key}: {value!r} != {(have or {}).get(key)!r}")
        elif kind in (Kind.GENERIC, Kind.CONTENT_TYPE):
            continue  # generic references: checked through their natural counterpart below
        elif plain(kind, want) != plain(kind, have):
            problems.append(f"{name}: {want!r} != {have!r}")
    return problems


def test_full_sync_succeeds_through_dagster(synced: SyncedStack):
    assert synced.first_run.success
    assert total(synced.first_run, "failed") == 0
    assert total(synced.first_run, "created") > 0
    for evaluation in synced.first_run.get_asset_check_evaluations():
        assert evaluation.passed, evaluation.asset_check_key


def test_the_run_is_recorded_in_the_deployments_postgresql_storage(synced: SyncedStack):
    instance = synced.deployment.instance
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert instance.get_run_by_id(synced.first_run.run_id).status == DagsterRunStatus.SUCCESS
    for group in GROUPS:
        event = instance.get_latest_materialization_event(AssetKey(group))
        assert event is not None and event.run_id == synced.first_run.run_id, group


def test_the_audit_trail_and_the_conflicts_match_each_groups_materialization(synced: SyncedStack):
    for group in GROUPS:
        metadata = group_metadata(synced.first_run, group)
        written = [w for w in synced.state.writes_of_run(metadata["sync_run_id"]) if w["group_name"] == group]
        assert all(w["succeeded"] for w in written), group
        counted = {action: sum(1 for w in written if w["action"] == action) for action in ("create", "update")}
        assert counted == {"create": metadata[Key.CREATED], "update": metadata[Key.UPDATED]}, group
        conflicts = synced.state.conflicts_of_run(metadata[Key.SYNC_RUN_ID], group)
        assert len(conflicts) == metadata[Key.CONFLICTS], group
    assert total(synced.first_run, "created") == sum(
        1 for w in synced.state.writes_of_run(synced.first_run.run_id) if w["action"] == "create")


def test_production_received_nothing_but_get_requests(synced: SyncedStack):
    methods = {method for method, _path in synced.production_requests}
    assert synced.production_requests, "no request reached the production server's log"
    assert methods == {"GET"}, [line for line in synced.production_requests if line[0] != "GET"][:5]


def test_discovered_models_are_read_by_id_or_natural_key_never_whole(synced: SyncedStack):
    """Devices, interfaces, VMs...: both instances are asked only for the objects production references (by
    id), and VeritasBot also for those sharing their natural keys (by the key's fields); the holders of
    discovered objects come from GraphQL."""
    lookups = {spec.endpoint: spec for spec in MODELS.values() if not spec.synced}
    for side, requests_logged in (("production", synced.production_requests), ("veritas", synced.veritas_requests)):
        asked = [(path, parse_qs(urlsplit(path).query)) for method, path in requests_logged
                 if method == "GET" and urlsplit(path).path.strip("/").removeprefix("api/") in lookups]
        for path, query in asked:
            spec = lookups[urlsplit(path).path.strip("/").removeprefix("api/")]
            assert "id" in query or (side == "veritas" and set(query) & set(spec.key)), \
                f"{side}: {path} reads {spec.label} by neither id nor natural key"
        assert asked, f"{side}: no discovered model was read at all (the cables reference interfaces)"
    assert any(method == "POST" and path.startswith("/api/graphql/") for method, path in synced.veritas_requests)


def test_holders_of_discovered_objects_are_those_a_whole_read_finds(synced: SyncedStack):
    veritas = synced.stack.veritas
    devices = [device for tag in DISCOVERY_TAGS for device in veritas.all("dcim/devices", tags=tag)]
    machines = [machine for tag in DISCOVERY_TAGS for machine in veritas.all("virtualization/virtual-machines", tags=tag)]
    cluster_locations = {cluster["id"]: rid(cluster["location"]) for cluster in veritas.all("virtualization/clusters")}
    expected = {"dcim.location": {rid(d["location"]) for d in devices}
                | {cluster_locations[rid(m["cluster"])] for m in machines} - {None},
                "dcim.rack": {rid(d["rack"]) for d in devices} - {None}}
    assert expected["dcim.location"] and expected["dcim.rack"], "the seed places discovered objects"
    holders = DiscoveryHolders(NautobotClient(ClientSettings(synced.stack.env["VERITASBOT_URL"],
                                                             synced.stack.env["VERITASBOT_TOKEN"])), list(DISCOVERY_TAGS))
    for label, endpoint in (("dcim.location", "dcim/locations"), ("dcim.rack", "dcim/racks")):
        ids = [row["id"] for row in veritas.all(endpoint)]
        holders.prefetch(label, ids)
        assert {object_id for object_id in ids if holders.holds(label, object_id)} == expected[label], label
    assert holders.queries == sum(-(-veritas.count(endpoint) // 100) for endpoint in ("dcim/locations", "dcim/racks"))


def test_every_production_object_has_an_equal_counterpart_in_veritas(synced: SyncedStack):
    adoptions = {spec.label: synced.state.adoptions(spec.label) for spec in SYNCED_MODELS}
    mirror = Mirror(synced.stack, adoptions)
    problems, pending_explained = [], 0
    for spec in SYNCED_MODELS:
        for production_id, production_row in mirror.production[spec.label].items():
            name = f"{spec.label} {production_row.get('display')!r} ({production_id})"
            veritas_id = mirror.counterpart(spec.label, production_id)
            if veritas_id is None:
                # Only objects pointing at discovered data that VeritasBot lacks may be missing (pending).
                missing_targets = [field.name for field in spec.of_kind(Kind.GENERIC)
                                   if MODELS.get(production_row.get(field.type_field)) is not None
                                   and not MODELS[production_row[field.type_field]].synced
                                   and production_row.get(field.name)
                                   not in _ids(synced.stack, production_row[field.type_field])]
                if missing_targets:
                    pending_explained += 1
                else:
                    problems.append(f"{name}: missing in VeritasBot")
                continue
            veritas_row = mirror.veritas[spec.label][veritas_id]
            touched = mirror.touched(spec.label, veritas_id, production_id)
            problems += [f"{name}: {p}" for p in mismatches(mirror, spec, production_row, veritas_row, touched)]
            if veritas_id == production_id and spec.tags and not touched:
                if mirror.sync_tag not in {rid(t) for t in veritas_row.get("tags") or ()}:
                    problems.append(f"{name}: created by the sync but lacks the sync tag")
    assert not problems, "\n".join(problems[:40])
    assert total(synced.first_run, "pending") >= pending_explained, "objects left out without being reported pending"


_ID_CACHE: dict[str, set[str]] = {}


def _ids(stack: StackInfo, label: str) -> set[str]:
    if label not in _ID_CACHE:
        _ID_CACHE[label] = {row["id"] for row in stack.veritas.all(MODELS[label].endpoint, exclude_m2m="true")}
    return _ID_CACHE[label]


def test_registry_covers_every_writable_field(synced: SyncedStack):
    api = synced.stack.veritas
    uncovered = {}
    for spec in SYNCED_MODELS:
        response = api.session.options(f"{api.url}/{spec.endpoint}/", timeout=60)
        post = response.json()["actions"]["POST"]
        writable = {name for name, meta in post.items() if not meta.get("read_only")} - {"id"}
        missing = writable - set(spec.compared_fields) - set(NOT_SYNCED_FIELDS)
        unknown = set(spec.compared_fields) - writable
        if missing or unknown:
            uncovered[spec.label] = {"not synced": sorted(missing), "not writable": sorted(unknown)}
    assert not uncovered, uncovered


def test_second_run_writes_nothing(synced: SyncedStack):
    changes_before = synced.stack.veritas.count("extras/object-changes")
    result = synced.sync()
    assert result.success
    assert total(result, "created") == 0 and total(result, "updated") == 0
    run_id = group_metadata(result, "foundation")[Key.SYNC_RUN_ID]
    assert synced.state.writes_of_run(run_id) == []
    assert synced.stack.veritas.count("extras/object-changes") == changes_before


def planned_writes(result, groups) -> set[tuple[str, str, str]]:
    planned = set()
    for group in groups:
        for row in table_rows(group_metadata(result, group), Key.PLAN):
            planned.add((row["model"], row["action"], row["veritasbot_id"]))
    return planned


def test_production_changes_reach_veritas_and_a_dry_run_predicts_them(synced: SyncedStack):
    production, veritas = synced.stack.production, synced.stack.veritas
    mirror = Mirror(synced.stack, {spec.label: synced.state.adoptions(spec.label) for spec in SYNCED_MODELS})
    marker = uuid.uuid4().hex[:8]

    # A rename.
    tenant = next(t for t_id, t in sorted(mirror.production["tenancy.tenant"].items()) if t_id in mirror.veritas["tenancy.tenant"]
                  and not mirror.touched("tenancy.tenant", t_id, t_id))
    assert production.write("PATCH", f"tenancy/tenants/{tenant['id']}", {"name": f"renamed {marker}"}).ok
    # A new object.
    new_group = production.write("POST", "tenancy/tenant-groups", {"name": f"new group {marker}"}).json()
    # A changed custom field value, on a new custom field.
    field = production.write("POST", "extras/custom-fields", {
        "label": f"Note {marker}", "key": f"note_{marker}", "type": "text", "content_types": ["dcim.location"]}).json()
    location = next(loc for loc_id, loc in sorted(mirror.production["dcim.location"].items())
                    if not mirror.touched("dcim.location", loc_id, loc_id) and loc_id in mirror.veritas["dcim.location"])
    assert production.write("PATCH", f"dcim/locations/{location['id']}",
                            {"custom_fields": {field["key"]: f"value {marker}"}}).ok
    # A moved location: under another parent of its current parent's type.
    moved, new_parent = _movable_location(mirror)
    assert production.write("PATCH", f"dcim/locations/{moved}", {"parent": new_parent}).ok, "move refused"

    changes_before = veritas.count("extras/object-changes")
    dry = synced.sync(dry_run=True)
    assert dry.success
    assert veritas.count("extras/object-changes") == changes_before, "the dry run wrote to VeritasBot"
    plan = planned_writes(dry, ["foundation", "organization", "locations"])
    assert ("tenancy.tenant", "update", tenant["id"]) in plan
    assert ("tenancy.tenantgroup", "create", new_group["id"]) in plan
    assert ("extras.customfield", "create", field["id"]) in plan
    assert ("dcim.location", "update", moved) in plan

    real = synced.sync()
    assert real.success
    run_id = group_metadata(real, "foundation")[Key.SYNC_RUN_ID]
    written = {(w["model"], w["action"], w["object_id"]) for w in synced.state.writes_of_run(run_id)}
    assert written == planned_writes(dry, GROUPS), "the real run did not apply the dry run's plan"

    assert veritas.get(f"tenancy/tenants/{tenant['id']}")["name"] == f"renamed {marker}"
    assert veritas.get(f"tenancy/tenant-groups/{new_group['id']}")["name"] == f"new group {marker}"
    assert veritas.get(f"dcim/locations/{location['id']}")["custom_fields"][field["key"]] == f"value {marker}"
    assert rid(veritas.get(f"dcim/locations/{moved}")["parent"]) == new_parent


def _movable_location(mirror: Mirror) -> tuple[str, str]:
    locations = mirror.production["dcim.location"]
    children: dict[str, list[str]] = {}
    for loc_id, loc in locations.items():
        children.setdefault(rid(loc["parent"]), []).append(loc_id)

    def descendants(loc_id: str) -> set[str]:
        found = set()
        for child in children.get(loc_id, []):
            found |= {child} | descendants(child)
        return found

    for loc_id, loc in sorted(locations.items()):
        parent = rid(loc["parent"])
        synced_by_us = loc_id in mirror.veritas["dcim.location"] and not mirror.touched("dcim.location", loc_id, loc_id)
        if not parent or not synced_by_us:
            continue
        parent_type = rid(locations[parent]["location_type"])
        for other_id, other in sorted(locations.items()):
            if other_id != parent and rid(other["location_type"]) == parent_type \
                    and other_id not in descendants(loc_id) and other_id != loc_id \
                    and not any(locations[c]["name"] == loc["name"] for c in children.get(other_id, [])):
                return loc_id, other_id
    pytest.fail("the seed has no location that can move under another parent of the same type")


def test_a_malformed_object_fails_alone_the_run_is_red_and_a_rerun_retries_exactly_it(synced: SyncedStack):
    production, veritas = synced.stack.production, synced.stack.veritas
    marker = uuid.uuid4().hex[:8]
    template = next(iter(sorted(production.all("dcim/racks"), key=lambda r: r["id"])))
    base = {"location": rid(template["location"]), "status": rid(template["status"])}
    bad = production.write("POST", "dcim/racks", {**base, "name": f"bad {marker}"}).json()
    goods = [production.write("POST", "dcim/racks", {**base, "name": f"good {marker} {n}"}).json() for n in range(5)]
    # Production data that predates a validator: written past the API, as old data would be.
    production_sql(f"UPDATE dcim_rack SET u_height = 1000 WHERE id = '{bad['id']}'")

    pushgateway = synced.stack.env["VERITAS_PUSHGATEWAY_URL"]
    # Two racks a batch, three batches in flight: the bad rack's batch is bisected while the others land.
    result = synced.sync(groups=["physical_infrastructure"], pushgateway_url=pushgateway, batch_size=2,
                         write_concurrency=3)
    assert not result.success, "a run with a failed object must not be green"
    # Its metrics: a run of one group is partial, and its refused write is a validation error by field.
    pushed = {(sample.name, frozenset(sample.labels.items()) - {("instance", "")}): sample.value
              for family in text_string_to_metric_families(requests.get(f"{pushgateway}/metrics", timeout=10).text)
              for sample in family.samples}
    group = {("job", "veritas_sync"), ("mode", "partial"), ("group", "physical_infrastructure")}
    assert pushed[("nautobot_production_validation_errors_total",
                   frozenset({*group, ("model_type", "dcim.rack"), ("error_type", "u_height")}))] == 1
    assert pushed[("nautobot_production_sync_group_outcome", frozenset({*group, ("outcome", "failed")}))] == 1
    [evaluation] = [e for e in result.get_asset_check_evaluations()
                    if e.asset_check_key.asset_key.path == ["physical_infrastructure"]
                    and e.check_name == "write_failures"]
    assert not evaluation.passed
    failures = table_rows(evaluation.metadata, Key.FAILURES)
    assert any(row["veritasbot_id"] == bad["id"] and "u_height" in row["error"] for row in failures), failures
    assert [veritas.get(f"dcim/racks/{good['id']}")["name"] for good in goods] == \
        [f"good {marker} {n}" for n in range(5)], "a good rack did not land"
    racks = {bad["id"], *(good["id"] for good in goods)}
    run_id = group_metadata(result, "physical_infrastructure")[Key.SYNC_RUN_ID]
    assert sorted((w["object_id"], w["action"], w["succeeded"]) for w in synced.state.writes_of_run(run_id)
                  if w["object_id"] in racks) == \
        sorted([(bad["id"], "create", False), *((good["id"], "create", True) for good in goods)])
    assert veritas.session.get(f"{veritas.url}/dcim/racks/{bad['id']}/").status_code == 404

    rerun = synced.sync(groups=["physical_infrastructure"])
    run_id = group_metadata(rerun, "physical_infrastructure")[Key.SYNC_RUN_ID]
    attempts = synced.state.writes_of_run(run_id)
    assert [(w["object_id"], w["action"], w["succeeded"]) for w in attempts] == [(bad["id"], "create", False)]
    assert "u_height" in attempts[0]["error"]
    production_sql(f"DELETE FROM dcim_rack WHERE id = '{bad['id']}'")


def test_an_incremental_run_goes_through_the_deployment(synced: SyncedStack):
    """As the change sensor asks for one: only the named production object, recorded in PostgreSQL."""
    mirror = Mirror(synced.stack, {spec.label: synced.state.adoptions(spec.label) for spec in SYNCED_MODELS})
    tenant_id = next(t_id for t_id in sorted(mirror.production["tenancy.tenant"])
                     if t_id in mirror.veritas["tenancy.tenant"] and not mirror.touched("tenancy.tenant", t_id, t_id))
    new_name = f"incremental {uuid.uuid4().hex[:8]}"
    assert synced.stack.production.write("PATCH", f"tenancy/tenants/{tenant_id}", {"name": new_name}).ok

    job = pipeline_job(synced.deployment.state_url, "incremental_sync")
    result = job.execute_in_process(
        run_config={"ops": {"organization": {"config": {"changed_ids": {"tenancy.tenant": [tenant_id]}}}}},
        op_selection=["organization"], instance=synced.deployment.instance, raise_on_error=False)

    assert result.success
    metadata = group_metadata(result, "organization")
    assert (metadata[Key.INCREMENTAL], metadata[Key.UPDATED], metadata[Key.CREATED], metadata[Key.FAILED]) == (True, 1, 0, 0)
    [write] = synced.state.writes_of_run(result.run_id)
    assert (write["model"], write["action"], write["object_id"], write["succeeded"]) == \
        ("tenancy.tenant", "update", tenant_id, True)
    assert write["changes"]["name"] == [mirror.veritas["tenancy.tenant"][tenant_id]["name"], new_name]
    assert synced.stack.veritas.get(f"tenancy/tenants/{tenant_id}")["name"] == new_name
    # The conflicts are recorded as for a full run, and only of the one object the run planned.
    conflicts = synced.state.conflicts_of_run(result.run_id, "organization")
    assert len(conflicts) == metadata["conflicts"]
    assert {conflict["object_id"] for conflict in conflicts} <= {tenant_id}
    assert synced.deployment.instance.get_run_by_id(result.run_id).status == DagsterRunStatus.SUCCESS
    event = synced.deployment.instance.get_latest_materialization_event(AssetKey("organization"))
    assert event.run_id == result.run_id
