"""The row snapshot the checks start from between syncs: applying a change set, on fake instances and a
SQLite state database."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from veritas_pipeline.engine.catalog import Side
from veritas_pipeline.engine.changes import Change, FeedCursor, parse_time
from veritas_pipeline.engine.snapshot import RowSnapshot, apply_reread, ids_to_reread, referencing
from veritas_pipeline.engine.state import LookupMatch, StateStore

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
GROUP, TENANT = "tenancy.tenantgroup", "tenancy.tenant"
ENDPOINTS = {"tenancy/tenant-groups": GROUP, "tenancy/tenants": TENANT}
LABELS = (GROUP, TENANT)
FEED_FILTERS = {"id": lambda row: row["id"], "action": lambda row: row["action"]["value"],
                "user_name": lambda row: row["user_name"], "user_name__n": lambda row: row["user_name"],
                "changed_object_id": lambda row: row["changed_object_id"],
                "changed_object_type_id": lambda row: CONTENT_TYPE_IDS.get(row["changed_object_type"])}
CONTENT_TYPE_IDS = {GROUP: 7, TENANT: 8, "dcim.device": 9}


def uid() -> str:
    return str(uuid.uuid4())


class FakeNautobot:
    """Objects per model and an object-change feed as Nautobot serves them; counts reads by kind."""

    def __init__(self):
        self.objects: dict[str, dict[str, dict]] = {GROUP: {}, TENANT: {}}
        self.feed: list[dict] = []
        self.clock = T0
        self.settings = SimpleNamespace(page_size=1000)
        self.requests_made = 0
        self.whole_reads: list[str] = []
        self.id_reads: dict[str, set[str]] = {}
        self.feed_reads: list[dict] = []  # the filters of each feed request

    def _log(self, label: str, action: str, object_id: str, user: str) -> None:
        self.clock += timedelta(seconds=1)
        self.feed.append({"id": uid(), "time": self.clock.isoformat(), "action": {"value": action},
                          "changed_object_type": label, "changed_object_id": object_id, "user_name": user})

    def put(self, label: str, row: dict, logged: bool = True, user: str = "admin") -> dict:
        action = "update" if row["id"] in self.objects[label] else "create"
        self.objects[label][row["id"]] = row
        if logged:
            self._log(label, action, row["id"], user)
        return row

    def delete(self, label: str, object_id: str, user: str = "admin") -> None:
        del self.objects[label][object_id]
        self._log(label, "delete", object_id, user)
        if label == GROUP:  # Nautobot's SET_NULL: the tenants lose the reference, and no change is logged
            for tenant in self.objects[TENANT].values():
                if tenant["tenant_group"] == object_id:
                    tenant["tenant_group"] = None

    def get_json(self, endpoint: str, **params) -> dict:
        assert endpoint == "extras/object-changes"
        self.requests_made += 1
        self.feed_reads.append({name: value for name, value in params.items() if name in FEED_FILTERS})
        rows = self.feed
        if "time__gte" in params:
            rows = [row for row in rows if parse_time(row["time"]) >= parse_time(params["time__gte"])]
        for name, field in FEED_FILTERS.items():  # a list: any of its values (Nautobot's multi-value filters)
            if name in params:
                wanted = params[name] if isinstance(params[name], list) else [params[name]]
                excluded = name.endswith("__n")
                rows = [row for row in rows if (field(row) in wanted) != excluded]
        rows = sorted(rows, key=lambda row: (row["time"], row["id"]), reverse=params.get("sort", "").startswith("-"))
        offset = params.get("offset", 0)
        return {"count": len(rows), "results": rows[offset:offset + params["limit"]]}

    def list(self, endpoint: str) -> list[dict]:
        self.requests_made += 1
        if endpoint == "extras/content-types":
            return [{"id": number, "app_label": label.split(".")[0], "model": label.split(".")[1]}
                    for label, number in CONTENT_TYPE_IDS.items()]
        self.whole_reads.append(ENDPOINTS[endpoint])
        return [dict(row) for row in self.objects[ENDPOINTS[endpoint]].values()]

    def list_by_ids(self, endpoint: str, ids) -> list[dict]:
        self.requests_made += 1
        label = ENDPOINTS[endpoint]
        self.id_reads.setdefault(label, set()).update(ids)
        return [dict(self.objects[label][object_id]) for object_id in ids if object_id in self.objects[label]]


def tenant_group(name: str) -> dict:
    return {"id": uid(), "name": name, "parent": None}


def tenant(name: str, group: dict | None) -> dict:
    return {"id": uid(), "name": name, "tenant_group": group["id"] if group else None, "tags": []}


def seeded() -> dict[Side, FakeNautobot]:
    instances = {side: FakeNautobot() for side in Side}
    for instance in instances.values():
        groups = [instance.put(GROUP, tenant_group(f"group {number}"), logged=False) for number in range(3)]
        for number in range(6):
            instance.put(TENANT, tenant(f"tenant {number}", groups[number % 3]), logged=False)
    return instances


def saved(tmp_path, instances: dict[Side, FakeNautobot]) -> tuple[RowSnapshot, StateStore]:
    """A snapshot saved as a full sync saves it: the feeds' marks first, then the whole reads."""
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    snapshot = RowSnapshot(state, instances, LABELS)
    marks = snapshot.feed_marks()
    snapshot.save(marks, {(side, label): {object_id: dict(row) for object_id, row in instance.objects[label].items()}
                          for side, instance in instances.items() for label in LABELS})
    for instance in instances.values():
        instance.whole_reads.clear()
    return snapshot, state


def change(label: str, object_id: str, action: str = "update") -> Change:
    return Change(uid(), T0, action, label, object_id)


# ---------------------------------------------------------------------------------------------- pure

def test_changes_to_kept_models_are_read_again_by_id_and_a_crowded_model_whole():
    crowded = [change(TENANT, uid()) for _ in range(4)]
    ids, whole = ids_to_reread([change(GROUP, "g1"), change(GROUP, "g2", "delete"), change("dcim.device", "d1"),
                                *crowded], LABELS, max_ids=3)
    assert ids == {GROUP: {"g1", "g2"}} and whole == {TENANT}


def test_objects_pointing_at_a_deleted_object_are_found_through_their_references():
    group = tenant_group("gone")
    holder, other = tenant("holder", group), tenant("other", None)
    models = {GROUP: {}, TENANT: {holder["id"]: holder, other["id"]: other}}
    assert referencing(models, {GROUP: {group["id"]}}) == {TENANT: {holder["id"]}}
    assert referencing(models, {GROUP: set()}) == {}


def test_a_reread_replaces_what_was_found_and_drops_what_is_gone():
    rows = {"a": {"id": "a", "name": "old"}, "b": {"id": "b", "name": "kept"}, "c": {"id": "c"}}
    found, removed = apply_reread(rows, {"a", "c", "new"}, [{"id": "a", "name": "renamed"}, {"id": "new"}])
    assert rows == {"a": {"id": "a", "name": "renamed"}, "b": {"id": "b", "name": "kept"}, "new": {"id": "new"}}
    assert set(found) == {"a", "new"} and removed == {"c"}


# ---------------------------------------------------------------------------------------------- with storage

def test_a_refresh_reads_only_the_feeds_and_the_changed_ids(tmp_path):
    instances = seeded()
    snapshot, state = saved(tmp_path, instances)
    veritas = instances[Side.VERITAS]
    renamed = next(iter(veritas.objects[TENANT].values()))
    veritas.put(TENANT, {**renamed, "name": "renamed in VeritasBot"})
    created = veritas.put(TENANT, tenant("new", None))

    rows, report = snapshot.refresh()
    assert rows[(Side.VERITAS, TENANT)] == veritas.objects[TENANT]
    assert rows[(Side.PRODUCTION, TENANT)] == instances[Side.PRODUCTION].objects[TENANT]
    assert not veritas.whole_reads and not instances[Side.PRODUCTION].whole_reads
    assert veritas.id_reads == {TENANT: {renamed["id"], created["id"]}}
    assert report.sides[Side.VERITAS].changes == 2 and report.sides[Side.PRODUCTION].changes == 0
    assert report.stored and report.age_seconds is not None

    # Stored: the next refresh starts from it and has nothing to read again.
    veritas.id_reads.clear()
    rows, report = RowSnapshot(state, instances, LABELS).refresh()
    assert rows[(Side.VERITAS, TENANT)] == veritas.objects[TENANT]
    assert not veritas.id_reads and report.sides[Side.VERITAS].changes == 0


def test_a_deletion_removes_the_object_and_rereads_the_objects_whose_reference_nautobot_cleared(tmp_path):
    instances = seeded()
    snapshot, _state = saved(tmp_path, instances)
    veritas = instances[Side.VERITAS]
    group_id = next(iter(veritas.objects[GROUP]))
    holders = {tenant_id for tenant_id, row in veritas.objects[TENANT].items() if row["tenant_group"] == group_id}
    veritas.delete(GROUP, group_id)

    rows, report = snapshot.refresh()
    assert group_id not in rows[(Side.VERITAS, GROUP)]
    assert rows[(Side.VERITAS, TENANT)] == veritas.objects[TENANT]
    assert all(rows[(Side.VERITAS, TENANT)][holder]["tenant_group"] is None for holder in holders)
    assert veritas.id_reads[TENANT] == holders and report.sides[Side.VERITAS].removed == 1


def test_without_a_snapshot_every_model_is_read_whole_and_saved(tmp_path):
    instances = seeded()
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    rows, report = RowSnapshot(state, instances, LABELS).refresh()
    assert report.age_seconds is None
    assert all(refresh.reason == "no snapshot" and refresh.whole == list(LABELS) for refresh in report.sides.values())
    assert rows[(Side.PRODUCTION, GROUP)] == instances[Side.PRODUCTION].objects[GROUP]
    for instance in instances.values():
        instance.whole_reads.clear()
    _rows, report = RowSnapshot(state, instances, LABELS).refresh()
    assert not any(instance.whole_reads for instance in instances.values())
    assert report.age_seconds is not None


def test_a_cursor_the_feed_no_longer_reaches_reads_that_side_whole(tmp_path):
    instances = seeded()
    production = instances[Side.PRODUCTION]
    production.put(TENANT, tenant("before the snapshot", None))  # the feed is not empty: the cursor has a time
    snapshot, _state = saved(tmp_path, instances)
    production.put(TENANT, tenant("after the snapshot", None))
    production.feed = production.feed[-1:]  # retention pruned the changes up to the cursor
    rows, report = snapshot.refresh()
    assert "retention" in report.sides[Side.PRODUCTION].reason
    assert sorted(production.whole_reads) == sorted(LABELS) and not instances[Side.VERITAS].whole_reads
    assert rows[(Side.PRODUCTION, TENANT)] == production.objects[TENANT]


def test_a_snapshot_saved_during_a_refresh_is_left_as_it_is(tmp_path):
    instances = seeded()
    snapshot, state = saved(tmp_path, instances)
    stored = state.load_snapshot()[Side.VERITAS.value]
    instances[Side.VERITAS].put(TENANT, tenant("during the refresh", None))  # the next full sync's mark is newer
    snapshot.save(snapshot.feed_marks(), {(side, label): instance.objects[label]
                                          for side, instance in instances.items() for label in LABELS})
    assert not state.refresh_snapshot(Side.VERITAS.value, stored.cursor, stored.cursor, {}, {}, {})


def test_a_feed_that_lost_the_changes_its_cursor_was_read_to_reads_that_side_whole(tmp_path):
    instances = seeded()
    veritas = instances[Side.VERITAS]
    veritas.put(TENANT, tenant("before the snapshot", None))
    snapshot, _state = saved(tmp_path, instances)
    veritas.feed = []  # restored from a backup taken before those changes
    _rows, report = snapshot.refresh()
    assert "restored or replaced" in report.sides[Side.VERITAS].reason
    assert sorted(veritas.whole_reads) == sorted(LABELS)


def test_a_feed_restored_to_a_backup_within_the_cursor_s_overlap_window_reads_that_side_whole(tmp_path):
    """The cursor keeps the changes of its overlap window: a backup taken within that window still holds
    the older ones, and only the newest are gone."""
    instances = seeded()
    veritas = instances[Side.VERITAS]
    for number in range(60):
        veritas.put(TENANT, tenant(f"before the backup {number}", None))
    backup = list(veritas.feed)
    veritas.put(TENANT, tenant("after the backup", None))
    snapshot, _state = saved(tmp_path, instances)
    veritas.feed = backup  # restored from the backup: only the last change the cursor was read to is gone
    _rows, report = snapshot.refresh()
    assert "restored or replaced" in report.sides[Side.VERITAS].reason
    assert sorted(veritas.whole_reads) == sorted(LABELS)


def test_a_whole_read_is_due_without_a_snapshot_when_the_interval_is_0_and_when_it_is_older(tmp_path):
    instances = seeded()
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    assert "no row snapshot" in RowSnapshot(state, instances, LABELS).whole_read_due(3600)
    snapshot, state = saved(tmp_path, instances)
    assert snapshot.whole_read_due(3600) == ""
    assert "is 0" in snapshot.whole_read_due(0)
    assert "h old" in snapshot.whole_read_due(0.001)


def sync_writes(instances: dict[Side, FakeNautobot], user: str = "veritas-sync") -> tuple[dict, dict[str, set[str]], str]:
    """What a full sync does to VeritasBot: creates a tenant and renames another under its own user. Returns the
    rows it holds afterwards (as the engine's catalog does: what it read plus its writes' answers), the ids it
    wrote per model, and the id of the object it created."""
    veritas = instances[Side.VERITAS]
    created = veritas.put(TENANT, tenant("created by the sync", None), user=user)
    renamed = next(iter(veritas.objects[TENANT].values()))
    veritas.put(TENANT, {**renamed, "name": "renamed by the sync"}, user=user)
    rows = {(side, label): {object_id: dict(row) for object_id, row in instance.objects[label].items()}
            for side, instance in instances.items() for label in LABELS}
    return rows, {TENANT: {created["id"], renamed["id"]}}, created["id"]


@pytest.mark.parametrize("read_whole", [True, False], ids=["read whole", "planned from the snapshot"])
def test_after_a_sync_its_own_writes_are_not_read_again_but_others_changes_during_it_are(tmp_path, read_whole):
    instances = seeded()
    veritas = instances[Side.VERITAS]
    snapshot, state = saved(tmp_path, instances)
    marks = {side: FeedCursor.from_json(stored.cursor) for side, stored in
             ((side, state.load_snapshot()[side.value]) for side in Side)}
    rows, written, created = sync_writes(instances)
    # During the sync, discovery renames a tenant (after the sync read it) and the sync prunes a group.
    discovered = next(row for row in veritas.objects[TENANT].values() if row["id"] not in written[TENANT])
    veritas.put(TENANT, {**discovered, "name": "renamed by discovery"}, user="discovery")
    group_id, touched_id = list(veritas.objects[GROUP])[:2]
    veritas.delete(GROUP, group_id, user="veritas-sync")
    # A model the sync did not write, changed under its user (a side effect of one of its writes).
    veritas.put(GROUP, {**veritas.objects[GROUP][touched_id], "name": "touched"}, user="veritas-sync")
    veritas.id_reads.clear()

    holders = {tenant_id for tenant_id, row in rows[(Side.VERITAS, TENANT)].items() if row["tenant_group"] == group_id}

    refresh = snapshot.save_after_sync(marks, rows, read_whole=read_whole, written=written, created=created)
    # Read again: what discovery changed, and the tenants whose group Nautobot cleared; not the sync's writes.
    assert veritas.id_reads[TENANT] == {discovered["id"]} | holders
    assert veritas.id_reads[GROUP] == {group_id, touched_id} and refresh.removed == 1
    assert {"user_name__n": "veritas-sync"} in veritas.feed_reads, "the sync's own entries were read"

    veritas.id_reads.clear()
    rows, report = RowSnapshot(state, instances, LABELS).refresh()
    assert not veritas.id_reads and report.sides[Side.VERITAS].changes == 0
    assert rows[(Side.VERITAS, TENANT)] == veritas.objects[TENANT]
    assert rows[(Side.VERITAS, GROUP)] == veritas.objects[GROUP]


def test_after_a_sync_that_created_nothing_every_change_since_its_mark_is_read_again(tmp_path):
    instances = seeded()
    veritas = instances[Side.VERITAS]
    snapshot, state = saved(tmp_path, instances)
    marks = {side: FeedCursor.from_json(state.load_snapshot()[side.value].cursor) for side in Side}
    rows, written, _created = sync_writes(instances)
    snapshot.save_after_sync(marks, rows, read_whole=True, written=written, created=None)  # whose user is unknown
    assert veritas.id_reads[TENANT] == written[TENANT]
    rows, _report = RowSnapshot(state, instances, LABELS).refresh()
    assert rows[(Side.VERITAS, TENANT)] == veritas.objects[TENANT]


def lookup_match(production_ids: set[str], veritas_ids: set[str]) -> LookupMatch:
    """With a natural key shaped as an interface's (its device's key nested, empty parts None): it must come
    back from the state database as it was kept."""
    return LookupMatch(uid(), {Side.PRODUCTION.value: frozenset(production_ids), Side.VERITAS.value: frozenset(veritas_ids)},
                       key=((f"device {uid()[:4]}", None, ("Site", None)), "eth1/1"))


def test_lookup_matches_read_from_an_object_either_feed_logged_are_dropped_and_the_rest_kept(tmp_path):
    instances = seeded()
    production, veritas = instances[Side.PRODUCTION], instances[Side.VERITAS]
    snapshot, state = saved(tmp_path, instances)
    p_tenants, v_tenants = list(production.objects[TENANT]), list(veritas.objects[TENANT])
    matches = {"dcim.interface": {f"interface {number}": lookup_match({p_tenants[number], uid()}, {v_tenants[number]})
                                  for number in range(4)}}
    state.save_snapshots({side.value: (stored.cursor, stored.models) for side, stored in
                          ((side, state.load_snapshot()[side.value]) for side in Side)}, matches)
    production.put(TENANT, {**production.objects[TENANT][p_tenants[1]], "name": "renamed in production"})
    veritas.put(TENANT, {**veritas.objects[TENANT][v_tenants[2]], "name": "renamed by discovery"}, user="discovery")

    snapshot.refresh()
    assert state.load_lookup_matches() == {"dcim.interface": {"interface 0": matches["dcim.interface"]["interface 0"],
                                                              "interface 3": matches["dcim.interface"]["interface 3"]}}

    veritas.feed.clear()  # as after a restore: the changes its cursor was read to are gone, so it is read whole
    snapshot.refresh()
    assert state.load_lookup_matches() == {}


def test_a_sync_keeps_its_lookup_matches_but_those_read_from_what_others_changed_during_it(tmp_path):
    instances = seeded()
    veritas = instances[Side.VERITAS]
    snapshot, state = saved(tmp_path, instances)
    marks = {side: FeedCursor.from_json(state.load_snapshot()[side.value].cursor) for side in Side}
    rows, written, created = sync_writes(instances)
    untouched, touched = [tenant_id for tenant_id in veritas.objects[TENANT] if tenant_id not in written[TENANT]][:2]
    matches = {"dcim.device": {"kept": lookup_match(set(), {untouched}), "dropped": lookup_match(set(), {touched})}}
    veritas.put(TENANT, {**veritas.objects[TENANT][touched], "name": "renamed by discovery"}, user="discovery")

    snapshot.save_after_sync(marks, rows, read_whole=True, written=written, created=created, matches=matches)
    assert state.load_lookup_matches() == {"dcim.device": {"kept": matches["dcim.device"]["kept"]}}
