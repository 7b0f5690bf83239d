"""Full syncs planned from the row snapshot, against the live stack (any seed).

The baseline full sync (conftest) read both instances whole and saved the snapshot; the next ones, within
`whole_read_interval_hours`, read only both change feeds and the objects they name. Each instance sits behind
a recording loopback proxy, so a test sees every request the run sent. Objects are picked from live data.
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from veritas_pipeline.engine.registry import GROUPS, MODELS, SYNCED_MODELS
from veritas_pipeline.engine.state import StateStore
from veritas_pipeline.metadata import Key

from .conftest import Baseline, group_metadata, run_sync, total, veritas_sql
from .fault_proxy import FaultProxy
from .stack_helpers import stack_command

SYNC_TAG = "SSoT Synced from Production"
WHOLE_RUN = [*GROUPS, "orphans"]  # every group and the orphans step: a full sync, which keeps the snapshot
SYNCED_ENDPOINTS = {f"/api/{spec.endpoint}/" for spec in SYNCED_MODELS}
PRODUCTION, VERITAS = "production", "veritas"


@pytest.fixture(scope="module")
def planned(synced_baseline: Baseline) -> Baseline:
    """The baseline full sync read both instances whole and saved the row snapshot in the state database."""
    return synced_baseline


def proxied_sync(planned: Baseline, **overrides) -> tuple[object, list[tuple[str, str, str]]]:
    """A full sync with both instances behind recording proxies: the result, and every (instance, method,
    path with query) it sent."""
    with FaultProxy(planned.stack.env["PRODUCTION_NAUTOBOT_URL"], recording=True) as production, \
            FaultProxy(planned.stack.env["VERITASBOT_URL"], recording=True) as veritas:
        result = run_sync(planned.state_db, groups=WHOLE_RUN, production={"url": production.url},
                          veritas={"url": veritas.url}, **overrides)
        sent = [(side, request.method, request.path) for side, proxy in ((PRODUCTION, production), (VERITAS, veritas))
                for request in proxy.requests]
    assert result.success
    return result, sent


def whole_listings(sent: list[tuple[str, str, str]]) -> list[str]:
    """The GETs that list a synced model without naming the ids they want: whole reads."""
    return [path for _side, method, path in sent if method == "GET" and urlsplit(path).path in SYNCED_ENDPOINTS
            and "id" not in parse_qs(urlsplit(path).query)]


def stored_matches(planned: Baseline) -> dict:
    """Production id -> LookupMatch of the interfaces matched, as the state database keeps them."""
    return StateStore(f"sqlite:///{planned.state_db}").load_lookup_matches().get("dcim.interface", {})


def looked_for(sent: list[tuple[str, str, str]], interface: dict) -> bool:
    """Whether the run looked for this VeritasBot interface by natural key: a listing of VeritasBot's
    interfaces filtered by both its device and its name."""
    return any(interface["device"]["id"] in query.get("device", ()) and interface["name"] in query.get("name", ())
               for query in (parse_qs(urlsplit(path).query) for side, method, path in sent
                             if side == VERITAS and method == "GET" and urlsplit(path).path == "/api/dcim/interfaces/"))


def searched_by_key(planned: Baseline, sent: list[tuple[str, str, str]], matches: dict) -> set[str]:
    """The production ids of the matched interfaces the run looked for by natural key."""
    return {production_id for production_id, match in matches.items()
            if looked_for(sent, planned.stack.veritas.get(f"dcim/interfaces/{match.veritas_id}"))}


def asked_by_id(sent: list[tuple[str, str, str]], side: str, endpoint: str) -> set[str]:
    """Every id the run asked one instance for by `id=` on this endpoint."""
    return {object_id for sent_side, method, path in sent
            if sent_side == side and method == "GET" and urlsplit(path).path == endpoint
            for object_id in parse_qs(urlsplit(path).query).get("id", ())}


def sources(result) -> set[str]:
    return {group_metadata(result, group)[Key.DATA_SOURCE] for group in GROUPS}


def synced_tenants(planned: Baseline) -> list[dict]:
    veritas = planned.stack.veritas
    tag = next(tag["id"] for tag in veritas.all("extras/tags") if tag["name"] == SYNC_TAG)
    production_ids = {row["id"] for row in planned.stack.production.all("tenancy/tenants")}
    return sorted((row for row in veritas.all("tenancy/tenants") if row["id"] in production_ids
                   and tag in [t["id"] if isinstance(t, dict) else t for t in row["tags"]]), key=lambda row: row["id"])


def test_a_full_sync_right_after_one_reads_only_the_feeds_and_writes_nothing(planned: Baseline):
    assert sources(planned.first) == {"read whole: no row snapshot yet"}
    result, sent = proxied_sync(planned)
    [source] = sources(result)
    assert source.startswith("row snapshot:") and "0 models read whole" in source, source
    assert whole_listings(sent) == []
    assert not [path for _side, method, path in sent
                if method not in ("GET", "HEAD") and not path.startswith("/api/graphql/")]
    assert total(result, Key.CREATED) == total(result, Key.UPDATED) == 0
    # The cables' discovered endpoints the first sync matched are not looked for again by natural key.
    matches = stored_matches(planned)
    assert matches, "the first sync keeps the interfaces it matched"
    assert searched_by_key(planned, sent, matches) == set()
    # Nor read by id on either side: their matches keep the natural key both have, which the cables' keys need.
    keyed = {production_id: match for production_id, match in matches.items() if match.key is not None}
    assert keyed, "the interfaces matched by natural key keep it"
    assert not asked_by_id(sent, PRODUCTION, "/api/dcim/interfaces/") & set(keyed)
    assert not asked_by_id(sent, VERITAS, "/api/dcim/interfaces/") & {match.veritas_id for match in keyed.values()}


def test_changes_on_both_sides_since_the_last_run_reach_the_plan(planned: Baseline):
    production, veritas = planned.stack.production, planned.stack.veritas
    renamed, drifted = synced_tenants(planned)[:2]
    new_name = f"renamed {uuid.uuid4().hex[:8]}"
    production.write("PATCH", f"tenancy/tenants/{renamed['id']}", {"name": new_name}).raise_for_status()
    veritas.write("PATCH", f"tenancy/tenants/{drifted['id']}", {"description": "changed in VeritasBot"}).raise_for_status()
    # Discovery renames an interface a synced cable ends on: its kept match no longer holds.
    production_cables = {row["id"] for row in production.all("dcim/cables")}
    ends = {row[f"termination_{end}_id"] for row in veritas.all("dcim/cables") if row["id"] in production_cables
            for end in "ab"}
    interface_id, match = next((production_id, match) for production_id, match in sorted(stored_matches(planned).items())
                               if match.veritas_id in ends)
    interface = veritas.get(f"dcim/interfaces/{match.veritas_id}")
    veritas.write("PATCH", f"dcim/interfaces/{match.veritas_id}", {"name": f"{interface['name']}-moved"}).raise_for_status()
    pending = group_metadata(planned.first, "cabling")[Key.PENDING]

    result, sent = proxied_sync(planned)
    [source] = sources(result)
    assert "production: 1 changes, 1 re-read" in source and "veritas: 2 changes, 1 re-read" in source, source
    assert looked_for(sent, interface), "its match was dropped: it was looked for again"
    assert interface_id not in stored_matches(planned), "not found by its natural key: kept no longer"
    assert searched_by_key(planned, sent, stored_matches(planned)) == set(), "the other matches were kept"
    assert group_metadata(result, "cabling")[Key.PENDING] == pending + 1, "its cable's endpoint is not in VeritasBot"
    assert whole_listings(sent) == []
    assert veritas.get(f"tenancy/tenants/{renamed['id']}")["name"] == new_name
    assert veritas.get(f"tenancy/tenants/{drifted['id']}")["description"] == \
        production.get(f"tenancy/tenants/{drifted['id']}")["description"]
    assert total(result, Key.UPDATED) == 2

    # The sync's own writes were caught up when it saved the snapshot: the next run reads nothing again.
    again, _sent = proxied_sync(planned)
    [source] = sources(again)
    assert "production: 0 changes" in source and "veritas: 0 changes" in source, source
    assert total(again, Key.UPDATED) == 0
    veritas.write("PATCH", f"dcim/interfaces/{match.veritas_id}", {"name": interface["name"]}).raise_for_status()


def test_a_change_past_the_change_log_is_seen_by_the_next_whole_read(planned: Baseline):
    veritas = planned.stack.veritas
    tenant = synced_tenants(planned)[2]
    veritas_sql(f"UPDATE tenancy_tenant SET description = 'written past the change log' WHERE id = '{tenant['id']}'")
    within, _sent = proxied_sync(planned)
    assert total(within, Key.UPDATED) == 0, "the snapshot cannot know of it"
    assert veritas.get(f"tenancy/tenants/{tenant['id']}")["description"] == "written past the change log"

    whole, sent = proxied_sync(planned, whole_read_interval_hours=0)
    assert sources(whole) == {"read whole: every full sync reads whole (whole_read_interval_hours is 0)"}
    assert len(whole_listings(sent)) >= len(SYNCED_ENDPOINTS)
    matches = stored_matches(planned)
    assert searched_by_key(planned, sent, matches) == matches.keys(), "a whole read matches them afresh"
    assert total(whole, Key.UPDATED) == 1
    assert veritas.get(f"tenancy/tenants/{tenant['id']}")["description"] == tenant["description"]


def test_after_veritasbot_was_restored_from_a_backup_the_next_run_reads_it_whole(planned: Baseline):
    """VeritasBot back to its backup from right after the first sync: the changes the later runs made to it
    are gone, and so are their entries in its feed, which the snapshot's cursor was read to."""
    stack_command("restore", planned.copies, "--only", "veritas")
    result, sent = proxied_sync(planned)
    [source] = sources(result)
    assert "restored or replaced" in source.split("; veritas:")[1], source
    assert "production: 0 changes" in source, source
    veritas_listings = [path for side, method, path in sent if side == VERITAS and method == "GET"
                        and urlsplit(path).path in SYNCED_ENDPOINTS and "id" not in parse_qs(urlsplit(path).query)]
    assert len(veritas_listings) >= len(SYNCED_ENDPOINTS)
    assert stored_matches(planned), "matched afresh and kept"
    # The production rename an earlier test synced is written again; nothing else was lost.
    production = {row["id"]: row["name"] for row in planned.stack.production.all("tenancy/tenants")}
    assert all(tenant["name"] == production[tenant["id"]] for tenant in synced_tenants(planned))
    assert total(result, Key.CREATED) == 0 and total(result, Key.UPDATED) == 1
