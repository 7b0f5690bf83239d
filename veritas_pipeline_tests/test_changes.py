"""The change feed's cursor, the change-to-group mapping and by-id production reads, on fake data."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from veritas_pipeline.engine.catalog import Catalog, Side
from veritas_pipeline.engine.changes import (
    MAX_IDS_PER_MODEL,
    Change,
    ChangeFeed,
    FeedCursor,
    GroupScope,
    changes_key,
    deletes_synced_objects,
    parse_time,
    scopes_for,
)
from veritas_pipeline.engine.registry import MODELS, SYNCED_MODELS, Kind, models_referencing

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def uid() -> str:
    return str(uuid.uuid4())


class FakeFeed:
    """Serves object changes as Nautobot does: `time__gte` filter, sorted by time, limit/offset pages."""

    def __init__(self, page_size: int = 3):
        self.rows: list[dict] = []
        self.settings = SimpleNamespace(page_size=page_size)

    def add(self, label: str = "tenancy.tenant", action: str = "update", at: datetime = T0,
            object_id: str | None = None) -> dict:
        row = {"id": uid(), "time": at.isoformat().replace("+00:00", "Z"), "action": {"value": action, "label": action},
               "changed_object_type": label, "changed_object_id": object_id or uid()}
        self.rows.append(row)
        return row

    def get_json(self, endpoint: str, **params) -> dict:
        assert endpoint == "extras/object-changes"
        rows = self.rows
        if "time__gte" in params:
            rows = [row for row in rows if parse_time(row["time"]) >= parse_time(params["time__gte"])]
        order = {"time,id": lambda row: (parse_time(row["time"]), row["id"]), "-time": lambda row: parse_time(row["time"])}
        rows = sorted(rows, key=order[params["sort"]], reverse=params["sort"].startswith("-"))
        offset = params.get("offset", 0)
        return {"count": len(rows), "results": rows[offset:offset + params["limit"]]}


def ids(changes: list[Change]) -> set[str]:
    return {change.id for change in changes}


def test_an_empty_feed_reads_nothing_and_a_later_change_is_read_once():
    feed = FakeFeed()
    reader = ChangeFeed(feed)
    cursor = reader.end()
    assert reader.read(cursor) == ([], cursor)
    row = feed.add()
    changes, cursor = reader.read(cursor)
    assert ids(changes) == {row["id"]}
    assert reader.read(cursor)[0] == []


def test_changes_in_the_same_instant_are_neither_missed_nor_repeated():
    feed = FakeFeed()
    reader = ChangeFeed(feed)
    first = [feed.add(at=T0), feed.add(at=T0)]
    changes, cursor = reader.read(FeedCursor())
    assert ids(changes) == {row["id"] for row in first}
    later = feed.add(at=T0)  # same timestamp, committed after the read
    changes, cursor = reader.read(cursor)
    assert ids(changes) == {later["id"]}
    assert reader.read(cursor)[0] == []


def test_a_change_committed_late_with_an_older_time_is_still_read():
    feed = FakeFeed()
    reader = ChangeFeed(feed, overlap_seconds=60)
    feed.add(at=T0)
    _changes, cursor = reader.read(FeedCursor())
    late = feed.add(at=T0 - timedelta(seconds=30))  # its transaction began before the change already read
    changes, cursor = reader.read(cursor)
    assert ids(changes) == {late["id"]}
    assert cursor.time == T0


def test_the_cursor_survives_a_restart_as_json():
    feed = FakeFeed()
    reader = ChangeFeed(feed)
    feed.add(at=T0)
    feed.add(at=T0)
    _changes, cursor = reader.read(FeedCursor())
    restored = FeedCursor.from_json(cursor.to_json())
    assert restored == cursor
    new = feed.add(at=T0 + timedelta(microseconds=1))
    assert ids(reader.read(restored)[0]) == {new["id"]}


def test_every_page_is_read_and_a_capped_read_resumes_where_it_stopped():
    feed = FakeFeed(page_size=2)
    reader = ChangeFeed(feed)
    rows = [feed.add(at=T0 + timedelta(seconds=index // 3)) for index in range(9)]
    assert ids(reader.read(FeedCursor())[0]) == {row["id"] for row in rows}

    seen: list[str] = []
    cursor = FeedCursor()
    for _tick in range(6):
        changes, cursor = reader.read(cursor, max_changes=3)
        seen += [change.id for change in changes]
    assert sorted(seen) == sorted(row["id"] for row in rows)  # each once


def test_a_new_reader_starts_at_the_end_of_a_feed_with_history():
    feed = FakeFeed()
    reader = ChangeFeed(feed)
    for second in range(5):
        feed.add(at=T0 + timedelta(seconds=second))
    cursor = reader.end()
    assert reader.read(cursor)[0] == []
    new = feed.add(at=T0 + timedelta(seconds=4))  # same time as the newest old change
    assert ids(reader.read(cursor)[0]) == {new["id"]}


def change(label: str, action: str = "update", object_id: str | None = None) -> Change:
    return Change(uid(), T0, action, label, object_id or uid())


def test_changes_map_to_the_groups_of_their_models_and_unsynced_models_are_ignored():
    tenant, location, other_location = uid(), uid(), uid()
    scopes = scopes_for([change("tenancy.tenant", object_id=tenant), change("dcim.location", "create", location),
                         change("dcim.location", object_id=other_location), change("dcim.device"),
                         change("ipam.ipaddress")])
    assert list(scopes) == ["organization", "locations"]
    assert scopes["organization"].production_ids() == {"tenancy.tenant": {tenant}}
    assert scopes["locations"].production_ids() == {"dcim.location": {location, other_location}}
    assert scopes_for([change("dcim.device"), change("users.user")]) == {}


def test_a_deletion_plans_its_model_and_the_models_referencing_it_whole():
    kept = uid()
    scopes = scopes_for([change("tenancy.tenant", "delete"), change("tenancy.tenant", object_id=kept),
                         change("dcim.rack")])
    referencing = models_referencing("tenancy.tenant")
    assert {"dcim.location", "dcim.rack", "circuits.circuit"} <= set(referencing)
    assert scopes["organization"].production_ids()["tenancy.tenant"] is None
    for label in referencing:
        assert scopes[MODELS[label].group].production_ids()[label] is None
    assert deletes_synced_objects([change("tenancy.tenant", "delete")])
    assert not deletes_synced_objects([change("tenancy.tenant"), change("dcim.device", "delete")])


def test_many_changes_to_one_model_plan_it_whole():
    changes = [change("dcim.rack") for _ in range(MAX_IDS_PER_MODEL + 1)]
    assert scopes_for(changes)["physical_infrastructure"].production_ids() == {"dcim.rack": None}
    assert not deletes_synced_objects(changes)


def test_the_run_key_depends_on_the_changes_only():
    changes = [change("dcim.rack"), change("tenancy.tenant")]
    assert changes_key(changes) == changes_key(list(reversed(changes)))
    assert changes_key(changes) != changes_key(changes[:1])


def test_a_group_scope_lists_ids_and_whole_models():
    scope = GroupScope({"dcim.rack": {"a"}, "dcim.powerpanel": {"b"}}, {"dcim.powerpanel"})
    assert scope.production_ids() == {"dcim.rack": {"a"}, "dcim.powerpanel": None}


class ByIdClient:
    """A production client that records what it was asked for."""

    def __init__(self, rows: dict[str, list[dict]]):
        self.rows = rows
        self.read_only = True
        self.requests: list[tuple[str, tuple[str, ...] | None]] = []

    def list(self, endpoint: str, **filters) -> list[dict]:
        self.requests.append((endpoint, None))
        return [dict(row) for row in self.rows.get(endpoint, [])]

    def list_by_ids(self, endpoint: str, wanted) -> list[dict]:
        wanted = set(wanted)
        self.requests.append((endpoint, tuple(sorted(wanted))))
        return [dict(row) for row in self.rows.get(endpoint, []) if row["id"] in wanted]


def test_reading_by_id_fetches_only_the_objects_asked_for_and_remembers_what_is_gone():
    parent, child, unrelated, gone = uid(), uid(), uid(), uid()
    production = ByIdClient({"dcim/locations": [
        {"id": parent, "name": "P", "parent": None}, {"id": child, "name": "C", "parent": {"id": parent}},
        {"id": unrelated, "name": "U", "parent": None}]})
    catalog = Catalog(production, ByIdClient({}), by_id=True)

    catalog.load_model("dcim.location", {child, gone})
    assert set(catalog.rows(Side.PRODUCTION, "dcim.location")) == {child, parent}
    assert production.requests == [("dcim/locations", tuple(sorted({child, gone}))), ("dcim/locations", (parent,))], \
        "the objects asked for, then in one batch the parents their natural keys need"
    assert catalog.natural_key(Side.PRODUCTION, "dcim.location", child) == ((None, "P"), "C")
    assert gone not in catalog.rows(Side.PRODUCTION, "dcim.location")
    assert unrelated not in set(catalog.rows(Side.PRODUCTION, "dcim.location"))
    assert all(request[1] is not None and unrelated not in request[1] for request in production.requests)
    asked = len(production.requests)
    assert gone not in catalog.rows(Side.PRODUCTION, "dcim.location")
    assert len(production.requests) == asked, "an absent id is asked for once"

    catalog.load_model("dcim.location", None)  # a model planned whole reads everything
    assert set(catalog.rows(Side.PRODUCTION, "dcim.location")) == {parent, child, unrelated}


def test_a_deletion_plans_whole_the_models_that_reference_it_through_a_generic_reference():
    """A contact association points at any object (a generic reference): deleting a circuit in production
    may clear one of them, so an incremental run plans contact associations whole too. The asset graph's
    dependencies (registry.group_dependencies) count generic references the same way."""
    scopes = scopes_for([change("circuits.circuit", "delete")])
    for spec in SYNCED_MODELS:
        if any(reference.kind is Kind.GENERIC for reference in spec.references()):
            assert spec.label in models_referencing("circuits.circuit")
            assert scopes[spec.group].production_ids()[spec.label] is None, spec.label
    assert scopes["metadata"].production_ids()["extras.contactassociation"] is None
