"""Reading by need, on fake instances that apply Nautobot's list filters: discovered models are read only for
the objects production references, by id and by natural key in batched filters, never whole."""

from __future__ import annotations

import random
import uuid

import pytest

from veritas_pipeline.engine.catalog import Catalog, Match, Side, _batched_filters
from veritas_pipeline.engine.client import QueryRefused
from veritas_pipeline.engine.registry import MODELS

LOOKUP_PARAMETERS = {"depth", "exclude_m2m", "limit"}


class FilteringClient:
    """Rows per endpoint, filtered as Nautobot's list filters would (several values of one filter ORed,
    references matched by id); every listing recorded. `refused`: filters the endpoint does not know."""

    def __init__(self, rows: dict[str, list[dict]], read_only: bool = False, refused: set[str] = frozenset()):
        self.rows, self.read_only, self.refused = rows, read_only, refused
        self.listings: list[tuple[str, dict]] = []

    def list(self, endpoint: str, **filters) -> list[dict]:
        self.listings.append((endpoint, filters))
        if set(filters) & self.refused:
            raise QueryRefused("VeritasBot", "127.0.0.1", "GET", endpoint, "HTTP 400: unknown filter field")
        wanted = {name: {str(value) for value in values} for name, values in filters.items()}
        return [dict(row) for row in self.rows.get(endpoint, [])
                if all(_value(row.get(name)) in values for name, values in wanted.items())]

    def list_by_ids(self, endpoint: str, ids) -> list[dict]:
        return self.list(endpoint, id=sorted(ids))

    def whole_reads(self, endpoint: str) -> int:
        return sum(1 for asked, filters in self.listings if asked == endpoint and not filters)


def _value(value) -> str:
    return str(value["id"] if isinstance(value, dict) else value)


def uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def estate(seed: int, devices: int = 30, interfaces: int = 20):
    """One location in both instances; devices with interfaces in both, under other UUIDs in VeritasBot (as
    discovery made them), plus devices only VeritasBot has. Production's cable endpoints: some interfaces."""
    rng = random.Random(seed)
    location_p, location_v = uid(rng), uid(rng)
    production = {"dcim/locations": [{"id": location_p, "name": "Site", "parent": None}], "dcim/devices": [],
                  "dcim/interfaces": []}
    veritas = {"dcim/locations": [{"id": location_v, "name": "Site", "parent": None}], "dcim/devices": [],
               "dcim/interfaces": []}
    referenced = []
    for number in range(devices):
        name = f"device-{number:03d}"
        mirrored = number < devices // 2
        veritas_device = uid(rng)
        veritas["dcim/devices"].append({"id": veritas_device, "name": name, "location": {"id": location_v}, "rack": None})
        if mirrored:
            production_device = uid(rng)
            production["dcim/devices"].append({"id": production_device, "name": name,
                                               "location": {"id": location_p}, "rack": None})
        for port in range(interfaces):
            veritas["dcim/interfaces"].append({"id": uid(rng), "name": f"eth{port}", "device": {"id": veritas_device}})
            if mirrored:
                production_interface = uid(rng)
                production["dcim/interfaces"].append({"id": production_interface, "name": f"eth{port}",
                                                      "device": {"id": production_device}})
                if rng.random() < 0.3:
                    referenced.append(production_interface)
    return production, veritas, referenced


def resolved(production_rows: dict, veritas_rows: dict, label: str, ids: list, matches: dict | None = None) -> Catalog:
    """A catalog over fresh clients, handed `matches` if given, that has resolved every id of `ids`, as a
    sync's planning does: its lookup matches are what the next run is handed."""
    catalog = Catalog(FilteringClient(production_rows, read_only=True), FilteringClient(veritas_rows))
    if matches is not None:
        catalog.use_lookup_matches(matches)
    catalog.prepare(label, ids)
    for object_id in ids:
        catalog.identity(label, object_id)
    return catalog


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_referenced_interfaces_are_found_by_natural_key_in_few_listings(seed: int):
    production_rows, veritas_rows, referenced = estate(seed)
    production, veritas = FilteringClient(production_rows, read_only=True), FilteringClient(veritas_rows)
    catalog = Catalog(production, veritas)

    catalog.prepare("dcim.interface", referenced)
    identities = {pid: catalog.identity("dcim.interface", pid) for pid in referenced}
    by_id = {row["id"]: row for row in production_rows["dcim/interfaces"]}
    devices = {row["id"]: row["name"] for row in production_rows["dcim/devices"]}
    veritas_devices = {row["id"]: row["name"] for row in veritas_rows["dcim/devices"]}
    for pid, identity in identities.items():
        assert identity.match is Match.ADOPTED, pid
        found = next(row for row in veritas_rows["dcim/interfaces"] if row["id"] == identity.veritas_id)
        assert (veritas_devices[found["device"]["id"]], found["name"]) == \
            (devices[by_id[pid]["device"]["id"]], by_id[pid]["name"])

    for client in (production, veritas):
        assert client.whole_reads("dcim/interfaces") == client.whole_reads("dcim/devices") == 0
    interface_listings = [filters for endpoint, filters in veritas.listings if endpoint == "dcim/interfaces"]
    # One by id (the production UUIDs: none there), then by (device, name), several keys a listing.
    assert 2 <= len(interface_listings) <= 1 + len(referenced) / 3
    read = sum(len(veritas.list("dcim/interfaces", **filters)) for filters in interface_listings)
    assert read <= 4 * len(referenced), "a listing returns at most a few times the keys it asks for"


def test_an_interface_of_a_device_veritasbot_lacks_is_absent_without_a_listing_of_interfaces():
    production_rows, veritas_rows, _referenced = estate(4, devices=4, interfaces=3)
    gone = {row["id"] for row in veritas_rows["dcim/devices"] if row["name"] == "device-000"}
    veritas_rows["dcim/devices"] = [row for row in veritas_rows["dcim/devices"] if row["id"] not in gone]
    veritas_rows["dcim/interfaces"] = [row for row in veritas_rows["dcim/interfaces"] if row["device"]["id"] not in gone]
    device_000 = next(row["id"] for row in production_rows["dcim/devices"] if row["name"] == "device-000")
    orphaned = [row["id"] for row in production_rows["dcim/interfaces"] if row["device"]["id"] == device_000]
    veritas = FilteringClient(veritas_rows)
    catalog = Catalog(FilteringClient(production_rows, read_only=True), veritas)

    catalog.prepare("dcim.interface", orphaned)
    assert all(catalog.identity("dcim.interface", pid).match is Match.ABSENT for pid in orphaned)
    assert [filters for endpoint, filters in veritas.listings if endpoint == "dcim/interfaces" and "device" in filters] == []


def test_a_filter_the_endpoint_refuses_falls_back_to_reading_the_model_whole():
    production_rows, veritas_rows, referenced = estate(5, devices=4, interfaces=3)
    veritas = FilteringClient(veritas_rows, refused={"device"})
    catalog = Catalog(FilteringClient(production_rows, read_only=True), veritas)

    catalog.prepare("dcim.interface", referenced)
    assert all(catalog.identity("dcim.interface", pid).match is Match.ADOPTED for pid in referenced)
    assert veritas.whole_reads("dcim/interfaces") == 1


def test_batches_stay_within_their_bounds_and_cover_every_key():
    rng = random.Random(7)
    keys = [{"device": {f"d{rng.randrange(60)}"}, "name": {f"eth{rng.randrange(48)}"}} for _ in range(500)]
    keys += [{"name": {f"solo{number}"}} for number in range(90)]  # another parameter set: never merged
    batches = list(_batched_filters(keys))
    for batch in batches:
        assert all(len(values) <= 40 for values in batch.values())
        product = 1
        for values in batch.values():
            product *= len(values)
        asked = sum(1 for key in keys if set(batch) == set(key) and all(key[name] <= set(batch[name]) for name in key))
        assert product <= min(1000, 4 * asked)
    for key in keys:
        assert any(set(batch) == set(key) and all(key[name] <= set(batch[name]) for name in key) for batch in batches)
    assert len(batches) < len(keys) / 2


def test_rows_keep_only_what_the_sync_uses():
    row = {"id": "x", "display": "X", "name": "X", "url": "http://127.0.0.1/x", "natural_slug": "x_1",
           "notes_url": "http://127.0.0.1/x/notes", "device": {"id": "d"}, "mac_address": "00:00:00:00:00:01"}
    assert MODELS["dcim.interface"].kept(row) == {"id": "x", "display": "X", "name": "X", "device": {"id": "d"}}


def test_asking_for_no_id_lists_nothing():
    """An empty `id=` filter is dropped by the HTTP layer and would list the whole model."""
    production_rows, veritas_rows, _referenced = estate(6, devices=2, interfaces=1)
    veritas = FilteringClient(veritas_rows)
    catalog = Catalog(FilteringClient(production_rows, read_only=True), veritas)
    assert None not in catalog.rows(Side.VERITAS, "dcim.device")
    catalog.fetch(Side.VERITAS, "dcim.device", [None])
    assert veritas.listings == []


@pytest.mark.parametrize("seed", [8, 9])
def test_lookup_matches_handed_to_the_next_run_are_used_without_reading_either_side(seed: int):
    production_rows, veritas_rows, referenced = estate(seed)
    first = resolved(production_rows, veritas_rows, "dcim.interface", referenced)
    veritas_ids = {pid: first.identity("dcim.interface", pid).veritas_id for pid in referenced}
    matches = first.lookup_matches()
    assert {pid: match.veritas_id for pid, match in matches["dcim.interface"].items()} == veritas_ids
    # An adopted interface's match was read from itself, its device and the device's location, on each side.
    by_id = {side: {row["id"]: row for rows in side_rows.values() for row in rows}
             for side, side_rows in (("production", production_rows), ("veritas", veritas_rows))}
    for pid, match in matches["dcim.interface"].items():
        for side, object_id in (("production", pid), ("veritas", match.veritas_id)):
            device = by_id[side][object_id]["device"]["id"]
            assert match.depends_on[side] == {object_id, device, by_id[side][device]["location"]["id"]}

        # Adopted by natural key: the key both have is kept with the match.
        assert match.key == first.natural_key(Side.PRODUCTION, "dcim.interface", pid) \
            == first.natural_key(Side.VERITAS, "dcim.interface", match.veritas_id) is not None

    production, veritas = FilteringClient(production_rows, read_only=True), FilteringClient(veritas_rows)
    second = Catalog(production, veritas)
    second.use_lookup_matches(matches)
    second.prepare("dcim.interface", referenced)
    assert {pid: second.identity("dcim.interface", pid).veritas_id for pid in referenced} == veritas_ids
    for pid, match in matches["dcim.interface"].items():
        assert second.natural_key(Side.PRODUCTION, "dcim.interface", pid) == match.key
        assert second.natural_key(Side.VERITAS, "dcim.interface", match.veritas_id) == match.key
    assert production.listings == veritas.listings == []
    assert second.lookup_matches() == matches, "kept for the run after"


def test_a_lookup_match_read_from_an_object_the_run_writes_is_resolved_again():
    production_rows, veritas_rows, _referenced = estate(10, devices=4, interfaces=5)
    referenced = [row["id"] for row in production_rows["dcim/interfaces"]]
    first = resolved(production_rows, veritas_rows, "dcim.interface", referenced)
    matches = first.lookup_matches()
    assert len(matches["dcim.interface"]) == len(referenced)

    production, veritas = FilteringClient(production_rows, read_only=True), FilteringClient(veritas_rows)
    second = Catalog(production, veritas)
    second.use_lookup_matches(matches)
    location = dict(veritas_rows["dcim/locations"][0])
    second.record_written("dcim.location", [location])  # e.g. the sync renamed the location the devices sit in
    assert second.known_veritas_ids("dcim.interface") == set()
    some = next(iter(matches["dcim.interface"].values()))
    second.natural_key(Side.VERITAS, "dcim.interface", some.veritas_id)
    assert [filters for endpoint, filters in veritas.listings if endpoint == "dcim/interfaces"], "its key read again"
    second.prepare("dcim.interface", referenced)
    assert all(second.identity("dcim.interface", pid).veritas_id == match.veritas_id
               for pid, match in matches["dcim.interface"].items())
    assert [filters for endpoint, filters in veritas.listings if endpoint == "dcim/interfaces" and "device" in filters], \
        "resolved again by natural key"


def cabled_estate(seed: int):
    """estate() with a cable between each pair of production's interfaces, and its copy in VeritasBot (same
    id, ends at VeritasBot's interfaces of the same device and name)."""
    production_rows, veritas_rows, _referenced = estate(seed, devices=10, interfaces=4)
    device_names = {row["id"]: row["name"] for rows in (production_rows, veritas_rows) for row in rows["dcim/devices"]}
    veritas_interface = {(device_names[row["device"]["id"]], row["name"]): row["id"]
                         for row in veritas_rows["dcim/interfaces"]}
    ends = production_rows["dcim/interfaces"]
    production_rows["dcim/cables"], veritas_rows["dcim/cables"] = [], []
    for a, b in zip(ends[::2], ends[1::2]):
        cable = {"id": str(uuid.uuid4()), "termination_a_type": "dcim.interface", "termination_a_id": a["id"],
                 "termination_b_type": "dcim.interface", "termination_b_id": b["id"]}
        production_rows["dcim/cables"].append(cable)
        veritas_rows["dcim/cables"].append({**cable, **{
            f"termination_{end}_id": veritas_interface[(device_names[row["device"]["id"]], row["name"])]
            for end, row in (("a", a), ("b", b))}})
    return production_rows, veritas_rows


def test_the_natural_keys_of_many_cables_read_their_ends_in_batches_not_one_by_one():
    """Indexing a model by natural key (a cable's: its two ends, each an interface and its device) reads the
    by-need rows the keys need once per model, as the identities of a run planned from kept matches ask."""
    production_rows, veritas_rows = cabled_estate(11)
    production, veritas = FilteringClient(production_rows, read_only=True), FilteringClient(veritas_rows)
    catalog = Catalog(production, veritas)

    cable = production_rows["dcim/cables"][0]["id"]
    assert catalog.veritas_ids_with_key("dcim.cable", catalog.natural_key(Side.PRODUCTION, "dcim.cable", cable)) == [cable]
    assert len(production_rows["dcim/cables"]) >= 10
    for endpoint in ("dcim/interfaces", "dcim/devices"):
        assert len([listed for listed, _filters in veritas.listings if listed == endpoint]) == 1, endpoint


@pytest.mark.parametrize("seed", [12, 13])
def test_with_kept_matches_the_natural_keys_of_cables_read_neither_side_s_ends(seed: int):
    """The keys kept with the matches of a cable's ends give its key on both sides: a run planned from the
    snapshot builds the cables' key indexes, and the checks their key columns, without reading an interface."""
    production_rows, veritas_rows = cabled_estate(seed)
    cables = [row["id"] for row in production_rows["dcim/cables"]]
    ends = [row[f"termination_{end}_id"] for row in production_rows["dcim/cables"] for end in "ab"]
    first = resolved(production_rows, veritas_rows, "dcim.interface", ends)
    expected = {side: {cable: first.natural_key(side, "dcim.cable", cable) for cable in cables} for side in Side}
    assert expected[Side.PRODUCTION] == expected[Side.VERITAS]

    production, veritas = FilteringClient(production_rows, read_only=True), FilteringClient(veritas_rows)
    second = Catalog(production, veritas)
    second.use_lookup_matches(first.lookup_matches())
    for side in Side:
        second.prepare_keys(side, "dcim.cable", cables)
        assert {cable: second.natural_key(side, "dcim.cable", cable) for cable in cables} == expected[side]
    assert second.known_veritas_ids("dcim.interface") == {first.identity("dcim.interface", end).veritas_id
                                                          for end in ends}
    read = {endpoint for client in (production, veritas) for endpoint, _filters in client.listings}
    assert read <= {"dcim/cables"}, read


def test_resolving_many_interfaces_computes_each_production_key_a_bounded_number_of_times(monkeypatch):
    """Each adoption asks whether another production object holds the VeritasBot object, through the index
    of production's keys: that index grows with the rows read, it is not built again for every question
    (at 100k, 5,000 cable ends made that 25 million key lookups)."""
    production_rows, veritas_rows, referenced = estate(14, devices=40, interfaces=20)
    catalog = Catalog(FilteringClient(production_rows, read_only=True), FilteringClient(veritas_rows))
    asked = []
    natural_key = Catalog.natural_key

    def counting(self, side, label, object_id):
        if side is Side.PRODUCTION and label == "dcim.interface":
            asked.append(object_id)
        return natural_key(self, side, label, object_id)

    monkeypatch.setattr(Catalog, "natural_key", counting)
    catalog.prepare("dcim.interface", referenced)
    assert all(catalog.identity("dcim.interface", pid).match is Match.ADOPTED for pid in referenced)
    assert len(referenced) > 50
    assert len(asked) <= 3 * len(referenced), (len(asked), len(referenced))


def test_the_checks_frames_with_kept_matches_read_no_cable_end_and_find_every_reference():
    """The data-quality frames of the cabling group, from a catalog handed the matches of the cables' ends:
    the ends count as present in VeritasBot without being read (one by one, to name them, or in batches),
    and referential integrity finds nothing lost."""
    from veritas_pipeline.engine import quality
    from veritas_pipeline.engine.frames import GroupData
    from veritas_pipeline.engine.policy import PrecedencePolicy

    production_rows, veritas_rows = cabled_estate(15)
    ends = [row[f"termination_{end}_id"] for row in production_rows["dcim/cables"] for end in "ab"]
    first = resolved(production_rows, veritas_rows, "dcim.interface", ends)

    production, veritas = FilteringClient(production_rows, read_only=True), FilteringClient(veritas_rows)
    catalog = Catalog(production, veritas)
    catalog.use_lookup_matches(first.lookup_matches())
    data = GroupData(catalog, PrecedencePolicy(), None, "cabling")
    outcome = quality.referential_integrity("cabling", data.production, data.veritas, data.references)
    assert outcome.passed, outcome
    read = {endpoint for client in (production, veritas) for endpoint, _filters in client.listings}
    assert not read & {"dcim/interfaces", "dcim/devices", "dcim/locations"}, read


def test_a_match_resolved_through_a_kept_key_depends_on_what_that_key_was_read_from():
    """An interface resolved in a run whose device's key came from a kept match (its row unread) must still
    be dropped when the device's location changes: it inherits the objects the device's match was read from."""
    production_rows, veritas_rows, referenced = estate(16, devices=4, interfaces=3)
    devices = [row["id"] for row in production_rows["dcim/devices"]]
    first = resolved(production_rows, veritas_rows, "dcim.device", devices)
    device_matches = first.lookup_matches()["dcim.device"]
    assert all(match.key is not None for match in device_matches.values())

    interfaces = [row["id"] for row in production_rows["dcim/interfaces"]]
    second = resolved(production_rows, veritas_rows, "dcim.interface", interfaces, {"dcim.device": device_matches})
    by_id = {row["id"]: row for row in production_rows["dcim/interfaces"]}
    for pid, match in second.lookup_matches()["dcim.interface"].items():
        device_match = device_matches[by_id[pid]["device"]["id"]]
        for side in ("production", "veritas"):
            assert device_match.depends_on[side] <= match.depends_on[side], (pid, side)
