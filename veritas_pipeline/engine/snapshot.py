"""The row snapshot: what full syncs within `whole_read_interval_hours` of a whole read, and the data-quality
checks run alone, plan and check from instead of reading both instances whole.

A full sync that reads every synced model whole saves those rows in the state database, with each
instance's object-change feed cursor as it was *before* the sync's first read, so that whatever changed
during the sync is read again, never missed. Later runs (`refresh`) read only the feeds since those cursors
and, for the synced models that changed, the changed objects by id (100 per request):

- a changed object is read again by id; one no longer there was deleted and leaves the snapshot;
- Nautobot clears references to a deleted object without logging a change on the objects that held them,
  so the snapshot's objects pointing at a deleted object are read again too;
- a model with more than `MAX_IDS_PER_MODEL` changed objects is read whole, which is then cheaper;
- a side with no snapshot, whose cursor the feed no longer reaches (retention pruned changes that may
  matter), or whose feed lost the changes the cursor was read to (a restore), is read whole and saved afresh.

When a sync stores the snapshot (`save_after_sync`), VeritasBot's side is caught up past the sync's own
writes, whose answers it already holds, so that the next run does not read them again.

Lookup models (devices, interfaces, ...) are not kept: the catalog reads them by need. What is kept of them
are the lookup matches of the last full sync (which VeritasBot object stands for a production one, the
objects on each side its natural key was read from, and that key when it made the match): a refresh drops
every match read from an object its feed logged a change of, a side read whole drops them all, and a full
sync planned from the snapshot reuses the rest instead of resolving those objects again. Changes that
bypass Nautobot's change log (direct SQL) are not seen until the next whole read, which resolves every
match afresh.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from .bounded import in_chunks
from .catalog import ReadFailed, Side
from .changes import FEED_ENDPOINT, MAX_IDS_PER_MODEL, Change, ChangeFeed, FeedCursor, parse_time
from .client import IncompleteRead, NautobotClient, NautobotUnavailable
from .registry import MODELS, SYNCED_MODELS
from .state import LookupMatches, StateStore, StoredSnapshot

log = logging.getLogger(__name__)

CONTENT_TYPES = "extras/content-types"
_SEEN_PER_REQUEST = 50  # change ids per feed request when checking the cursor's changes are still there
# Every synced model: together, each group's models, the synced models they reference and the tree types.
SNAPSHOT_LABELS: tuple[str, ...] = tuple(spec.label for spec in SYNCED_MODELS)

Rows = dict[str, dict]  # object id -> row


@dataclass
class SideRefresh:
    """What one side's refresh did."""

    changes: int = 0  # feed entries read (every model)
    reread: int = 0  # objects read again by id
    removed: int = 0  # objects gone from the snapshot (deleted)
    whole: list[str] = field(default_factory=list)  # models read whole
    reason: str = ""  # why every model of the side was read whole, if it was
    cursor: FeedCursor | None = None  # how far the feed was read: the rows hold every change up to it


@dataclass
class RefreshReport:
    """How the checks' data was obtained: from a snapshot saved `age_seconds` ago, kept current by the feeds."""

    age_seconds: float | None  # None: there was no snapshot
    sides: dict[Side, SideRefresh]
    requests: dict[Side, int]
    seconds: float
    stored: bool  # False when a newer snapshot was saved meanwhile (the next run refreshes that one)

    @property
    def cursors(self) -> dict[Side, FeedCursor]:
        return {side: refresh.cursor for side, refresh in self.sides.items()}

    def summary(self) -> str:
        age = "no snapshot" if self.age_seconds is None else f"snapshot {self.age_seconds / 3600:.1f} h old"
        parts = [f"{side.value}: {refresh.changes} changes, {refresh.reread} re-read, {refresh.removed} removed, "
                 f"{len(refresh.whole)} models read whole{f' ({refresh.reason})' if refresh.reason else ''}"
                 for side, refresh in self.sides.items()]
        return f"{age}; {'; '.join(parts)}; {sum(self.requests.values())} requests in {self.seconds:.1f} s"


# ---------------------------------------------------------------------------------------------- pure

def ids_to_reread(changes: Iterable[Change], labels: Iterable[str],
                  max_ids: int = MAX_IDS_PER_MODEL) -> tuple[dict[str, set[str]], set[str]]:
    """(label -> ids to read again, labels to read whole) for the changes to the snapshot's models. A
    deletion is read again like any change: the object's absence is what removes it."""
    kept = set(labels)
    ids: dict[str, set[str]] = {}
    for change in changes:
        if change.label in kept:
            ids.setdefault(change.label, set()).add(change.object_id)
    whole = {label for label, changed in ids.items() if len(changed) > max_ids}
    return {label: changed for label, changed in ids.items() if label not in whole}, whole


def referencing(models: Mapping[str, Mapping[str, dict]], deleted: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """label -> ids of the snapshot's objects whose references point at a deleted object: Nautobot clears
    such references without logging a change on the objects that held them."""
    found: dict[str, set[str]] = {}
    if not any(deleted.values()):
        return found
    for label, rows in models.items():
        references = list(MODELS[label].references())
        for object_id, row in rows.items():
            if any(target_id in deleted.get(reference.target_of(row) or "", ())
                   for reference in references for target_id in reference.target_ids(row)):
                found.setdefault(label, set()).add(object_id)
    return found


def apply_reread(rows: Rows, ids: Iterable[str], fetched: Iterable[dict]) -> tuple[Rows, set[str]]:
    """Put the rows read again by id into `rows`; the ids asked but not found were deleted and leave it.
    Returns (the rows found, the ids removed)."""
    found = {row["id"]: row for row in fetched}
    removed = {object_id for object_id in ids if object_id not in found and object_id in rows}
    for object_id in set(ids) - found.keys():
        rows.pop(object_id, None)
    rows.update(found)
    return found, removed


@dataclass
class _Delta:
    """What catching one side up with its feed did to its rows: models read whole, rows changed, ids removed."""

    refresh: SideRefresh
    whole: dict[str, Rows]
    changed: dict[str, Rows]
    removed: dict[str, set[str]]
    logged: set[str]  # ids of every object (any model) the feed logged a change of


# ---------------------------------------------------------------------------------------------- I/O

class RowSnapshot:
    """The snapshot in the state database, read and kept current through both instances' clients."""

    def __init__(self, state: StateStore, clients: Mapping[Side, NautobotClient], labels: Iterable[str] = SNAPSHOT_LABELS):
        self.state = state
        self.clients = dict(clients)
        self.labels = tuple(labels)

    def feed_marks(self) -> dict[Side, FeedCursor]:
        """Each side's feed cursor now: taken before a full sync's first read, saved with its rows."""
        return {side: ChangeFeed(client).end() for side, client in self.clients.items()}

    def save(self, marks: Mapping[Side, FeedCursor], rows: Mapping[tuple[Side, str], Mapping[str, dict]]) -> None:
        """Replace the snapshot, both sides in one transaction, with the rows of its models read whole."""
        self.state.save_snapshots({side.value: (mark.to_json(), {label: rows[(side, label)] for label in self.labels
                                                                 if (side, label) in rows})
                                   for side, mark in marks.items()})
        log.info("row snapshot saved: %d models on %s", len(self.labels), ", ".join(side.value for side in marks))

    def refresh(self) -> tuple[dict[tuple[Side, str], Rows], RefreshReport]:
        """Every snapshot model's rows on both sides as they are now, and how they were obtained; the
        refreshed snapshot is stored."""
        started = time.monotonic()
        requests_before = {side: client.requests_made for side, client in self.clients.items()}
        stored = self.state.load_snapshot()
        taken = [snapshot.taken_at for snapshot in stored.values()]
        result: dict[tuple[Side, str], Rows] = {}
        sides: dict[Side, SideRefresh] = {}
        kept = True
        for side in self.clients:
            rows, sides[side], applied = self._refresh_side(side, stored.get(side.value))
            result.update({(side, label): table for label, table in rows.items()})
            kept = kept and applied
        age = (datetime.now(timezone.utc) - min(taken)).total_seconds() if len(taken) == len(self.clients) else None
        report = RefreshReport(age, sides, {side: client.requests_made - requests_before[side]
                                            for side, client in self.clients.items()},
                               time.monotonic() - started, kept)
        log.info("data-quality checks read from the row snapshot: %s", report.summary())
        return result, report

    def _refresh_side(self, side: Side, stored: StoredSnapshot | None) -> tuple[dict[str, Rows], SideRefresh, bool]:
        client = self.clients[side]
        reason = self._unusable(client, stored)
        if reason:
            mark = ChangeFeed(client).end()  # before the reads: what changes while they run is read next time
            models = {label: self._read_whole(side, label) for label in self.labels}
            refresh = SideRefresh(whole=list(self.labels), reason=reason, cursor=mark)
            self.state.save_snapshot(side.value, mark.to_json(), models)
            return models, refresh, True

        models = stored.models
        delta = self._catch_up(side, models, self._changes_since(side, FeedCursor.from_json(stored.cursor)))
        applied = self.state.refresh_snapshot(side.value, stored.cursor, delta.refresh.cursor.to_json(), delta.whole,
                                              delta.changed, delta.removed, changed_ids=delta.logged)
        if not applied:
            log.info("%s: a newer row snapshot was saved during this refresh; it is left as it is", side.value)
        return {label: models[label] for label in self.labels}, delta.refresh, applied

    def _changes_since(self, side: Side, cursor: FeedCursor, **filters: Any) -> tuple[list[Change], FeedCursor]:
        """Every change of the side's feed after `cursor` (narrowed by `filters`), and the cursor after them."""
        feed, changes = ChangeFeed(self.clients[side]), []
        while True:
            new, cursor = feed.read(cursor, **filters)
            if not new:
                return changes, cursor
            changes += new

    def _catch_up(self, side: Side, models: dict[str, Rows], feed: tuple[list[Change], FeedCursor]) -> _Delta:
        """Bring `models` (label -> rows, changed in place) up to date with these changes of the side's feed:
        changed objects read again by id, crowded or missing models whole, holders of deleted objects again."""
        changes, cursor = feed
        refresh = SideRefresh(changes=len(changes), cursor=cursor)
        missing = [label for label in self.labels if label not in models]
        reread, whole = ids_to_reread(changes, self.labels)
        whole |= set(missing)
        reread = {label: ids for label, ids in reread.items() if label not in whole}
        whole_rows = {label: self._read_whole(side, label) for label in self.labels if label in whole}
        models.update(whole_rows)
        refresh.whole = sorted(whole)

        changed: dict[str, Rows] = {}
        removed: dict[str, set[str]] = {}
        deleted = {label: set() for label in MODELS}
        for change in changes:
            if change.action == "delete" and change.label in deleted:
                deleted[change.label].add(change.object_id)
        self._reread(side, models, reread, changed, removed)
        for label, ids in removed.items():
            deleted[label] |= ids
        # Second round: objects whose reference to a deleted object Nautobot cleared without a change entry.
        holders = {label: ids - changed.get(label, {}).keys() - removed.get(label, set())
                   for label, ids in referencing({label: models[label] for label in self.labels if label not in whole},
                                                 deleted).items()}
        self._reread(side, models, holders, changed, removed)
        refresh.reread = sum(len(ids) for ids in reread.values()) + sum(len(ids) for ids in holders.values())
        refresh.removed = sum(len(ids) for ids in removed.values())
        return _Delta(refresh, whole_rows, changed, removed, {change.object_id for change in changes})

    def _reread(self, side: Side, models: dict[str, Rows], ids_by_label: Mapping[str, set[str]],
                changed: dict[str, Rows], removed: dict[str, set[str]]) -> None:
        for label, ids in ids_by_label.items():
            if not ids:
                continue
            found, gone = apply_reread(models[label], ids, self._read(side, label, ids))
            changed.setdefault(label, {}).update(found)
            removed.setdefault(label, set()).update(gone)

    @staticmethod
    def _unusable(client: NautobotClient, stored: StoredSnapshot | None) -> str:
        """Why this side's snapshot cannot be brought up to date from its feed ('' when it can)."""
        if stored is None:
            return "no snapshot"
        cursor = FeedCursor.from_json(stored.cursor)
        if cursor.time is None:
            return ""  # the feed was empty when the snapshot was saved: all of it is news
        oldest = client.get_json(FEED_ENDPOINT, limit=1, sort="time", depth=0)["results"]
        if oldest and parse_time(oldest[0]["time"]) > cursor.time:
            return f"the change feed no longer reaches back to {cursor.time.isoformat()} (retention)"
        # The changes the cursor was read to must all still be there: an instance restored from a backup, or
        # replaced, has a feed that never held them (and may hold nothing newer to say what changed). All:
        # those of the overlap window before the cursor may predate the backup, and be held still.
        for asked in in_chunks(sorted(cursor.seen), _SEEN_PER_REQUEST):
            if client.get_json(FEED_ENDPOINT, id=asked, limit=1, depth=0)["count"] < len(asked):
                return "the change feed no longer holds the changes it was read to (the instance was restored or replaced)"
        return ""

    def whole_read_due(self, interval_seconds: float) -> str:
        """Why a full sync must read both instances whole rather than plan from this snapshot ('' when it need
        not): there is none, or its last whole read is older than the interval. Only a whole read sees changes
        that bypass the change log (direct SQL, scripts without a change context)."""
        if interval_seconds <= 0:
            return "every full sync reads whole (whole_read_interval_hours is 0)"
        taken = self.state.snapshot_taken_at()
        if set(taken) != {side.value for side in self.clients}:
            return "no row snapshot yet"
        age = (datetime.now(timezone.utc) - min(taken.values())).total_seconds()
        if age > interval_seconds:
            return f"the last whole read is {age / 3600:.1f} h old (whole_read_interval_hours {interval_seconds / 3600:g})"
        return ""

    def save_after_sync(self, marks: Mapping[Side, FeedCursor], rows: Mapping[tuple[Side, str], Mapping[str, dict]], *,
                        read_whole: bool, written: Mapping[str, set[str]], created: str | None,
                        matches: LookupMatches | None = None) -> SideRefresh:
        """At the end of a full sync, store what it planned from and wrote; returns how VeritasBot's side was
        caught up with its feed.

        `rows` are current as of `marks` plus the run's own writes. VeritasBot's side is first caught up with
        everything its feed logged since its mark except those writes (the creates and updates, under the
        sync's user, of the models it wrote, whose answers `rows` already hold): so the next run reads the
        feed from the end, not every object this run wrote. `read_whole`: the rows were read whole and
        replace the snapshot; else they came from the snapshot refreshed at the run's start, and only what
        changed since is stored. `created`: the id of an object the run created, whose create entry names the
        sync's user; without one nothing is skipped. `matches`: the run's lookup matches, kept but for those
        read from an object VeritasBot's feed logged a change of meanwhile (production's changes since its
        mark are read, and drop theirs, next time)."""
        veritas = Side.VERITAS
        models = {label: dict(rows[(veritas, label)]) for label in self.labels if (veritas, label) in rows}
        delta = self._catch_up(veritas, models, self._changes_but_own_writes(marks[veritas], written, created))
        cursor = delta.refresh.cursor.to_json()
        kept = {label: {production_id: match for production_id, match in by_id.items()
                        if not match.stale(veritas.value, delta.logged)}
                for label, by_id in (matches or {}).items()}
        if read_whole:
            production = {label: rows[(Side.PRODUCTION, label)] for label in self.labels
                          if (Side.PRODUCTION, label) in rows}
            self.state.save_snapshots({Side.PRODUCTION.value: (marks[Side.PRODUCTION].to_json(), production),
                                       veritas.value: (cursor, models)}, kept)
        else:
            changed = {label: {object_id: models[label][object_id] for object_id in ids if object_id in models[label]}
                       for label, ids in written.items() if label in models and label not in delta.whole}
            for label, table in delta.changed.items():
                changed.setdefault(label, {}).update(table)
            if not self.state.refresh_snapshot(veritas.value, marks[veritas].to_json(), cursor, delta.whole, changed,
                                               delta.removed, matches=kept):
                log.info("a newer row snapshot was saved during this sync; it is left as it is")
        log.info("row snapshot %s: VeritasBot caught up past the sync's own writes (%d changes of others, %d re-read); "
                 "%d lookup matches kept", "saved" if read_whole else "updated", delta.refresh.changes,
                 delta.refresh.reread, sum(len(by_id) for by_id in kept.values()))
        return delta.refresh

    def _changes_but_own_writes(self, mark: FeedCursor, written: Mapping[str, set[str]],
                                created: str | None) -> tuple[list[Change], FeedCursor]:
        """VeritasBot's changes since `mark` but the sync's own creates and updates of the models it wrote, and
        the feed's end. Narrowed reads, so that the run's own entries (a full sync's many thousands) never
        cross the wire: other users' changes; the sync user's deletes (the prune's); its changes to the
        snapshot's models it did not write (side effects), by content type id (the filter by model name takes
        one value)."""
        own = self._own_user(created) if written else None
        if own is None:
            return self._changes_since(Side.VERITAS, mark)
        client = self.clients[Side.VERITAS]
        end = ChangeFeed(client).end()  # before the reads: later changes are read next time
        narrowed = [{"user_name__n": own}, {"user_name": own, "action": "delete"}]
        content_types = {f"{row['app_label']}.{row['model']}": row["id"] for row in client.list(CONTENT_TYPES)}
        unwritten = sorted(content_types[label] for label in self.labels if label not in written and label in content_types)
        if unwritten:
            narrowed.append({"user_name": own, "changed_object_type_id": unwritten})
        changes: dict[str, Change] = {}
        for filters in narrowed:
            changes.update((change.id, change) for change in self._changes_since(Side.VERITAS, mark, **filters)[0])
        return sorted(changes.values(), key=lambda change: (change.time, change.id)), end

    def _own_user(self, created: str | None) -> str | None:
        """The user the sync writes VeritasBot as: the one its create of `created` was logged under."""
        if created is None:
            return None
        entries = self.clients[Side.VERITAS].get_json(FEED_ENDPOINT, changed_object_id=created, action="create",
                                                      limit=1, depth=0)["results"]
        return entries[0]["user_name"] if entries else None

    def _read_whole(self, side: Side, label: str) -> Rows:
        return {row["id"]: row for row in self._read(side, label, None)}

    def _read(self, side: Side, label: str, ids: set[str] | None) -> list[dict]:
        client, spec = self.clients[side], MODELS[label]
        try:
            rows = client.list(spec.endpoint) if ids is None else client.list_by_ids(spec.endpoint, ids)
            return [spec.kept(row) for row in rows]  # the fields the catalog keeps of what it reads
        except (NautobotUnavailable, IncompleteRead) as error:
            raise ReadFailed(f"reading {label} failed: {error}") from None
