"""Production's object-change feed: what changed since a cursor, and what an incremental run must sync.

The feed (`/api/extras/object-changes/`) records every create, update and delete, M2M changes included
(as an update of the parent). It is read in ascending time from a cursor. A change's time is stamped when
its transaction writes it but the change only becomes visible at commit, so a long write transaction can
surface changes older than ones already read, and several changes can share a time. The cursor therefore
keeps the newest time consumed plus the ids of the changes consumed within an overlap window before it:
each read starts at the window's beginning and skips what it has seen. Nothing is missed unless a
transaction outlasts the window, and nothing is consumed twice.

Changed models map to sync groups through the registry. A run syncs the changed objects by id; a model
with a deletion is planned whole, so the object gone from production is reported as an orphan, and so is
every model that can reference it (generic references included), because Nautobot clears such references
without logging a change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable

from .client import NautobotClient
from .registry import GROUPS, MODELS, models_referencing

FEED_ENDPOINT = "extras/object-changes"
DEFAULT_OVERLAP_SECONDS = 60.0
# Beyond this many changed objects of one model, reading the whole model (1,000-row pages) costs fewer
# requests than reading by id (100 ids a request), and keeps run configs small.
MAX_IDS_PER_MODEL = 1000


@dataclass(frozen=True)
class Change:
    id: str
    time: datetime
    action: str  # "create" | "update" | "delete"
    label: str  # "dcim.location"
    object_id: str
    user: str | None = None  # the user name the change was made under

    @classmethod
    def from_row(cls, row: dict) -> Change:
        action = row["action"]
        return cls(id=row["id"], time=parse_time(row["time"]),
                   action=action["value"] if isinstance(action, dict) else action,
                   label=row["changed_object_type"], object_id=row["changed_object_id"],
                   user=row.get("user_name"))


@dataclass(frozen=True)
class FeedCursor:
    """How far the feed was consumed: the newest change time read, and the ids of the changes read
    within the overlap window before it. None (an empty feed when the cursor was made) reads from the start."""

    time: datetime | None = None
    seen: frozenset[str] = frozenset()

    def to_json(self) -> str:
        return json.dumps({"time": self.time.isoformat() if self.time else None, "seen": sorted(self.seen)})

    @classmethod
    def from_json(cls, text: str) -> FeedCursor:
        data = json.loads(text)
        return cls(parse_time(data["time"]) if data.get("time") else None, frozenset(data.get("seen", ())))


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))  # Python 3.10 does not read "Z"


class ChangeFeed:
    """Reads production's object-change feed through the read-only production client."""

    def __init__(self, client: NautobotClient, overlap_seconds: float = DEFAULT_OVERLAP_SECONDS):
        self.client = client
        self.overlap = timedelta(seconds=overlap_seconds)

    def end(self) -> FeedCursor:
        """A cursor at the feed's current end: a new sensor starts here (earlier history is the full sync's)."""
        newest = self.client.get_json(FEED_ENDPOINT, limit=1, sort="-time", depth=0)["results"]
        if not newest:
            return FeedCursor()
        _changes, cursor = self.read(FeedCursor(parse_time(newest[0]["time"])))
        return cursor

    def read(self, cursor: FeedCursor, max_changes: int = 10_000, **filters: Any) -> tuple[list[Change], FeedCursor]:
        """Changes after `cursor` in time order (at most about `max_changes`; the rest on the next read),
        and the cursor after them; `filters` narrow the entries read (the cursor then counts only those)."""
        # id breaks ties in time, so that offset pages of equal times neither skip nor repeat rows.
        params = {"sort": "time,id", "depth": 0, "limit": self.client.settings.page_size, **filters}
        if cursor.time is not None:
            params["time__gte"] = (cursor.time - self.overlap).isoformat()
        read: dict[str, Change] = {}
        offset = 0
        while True:
            page = self.client.get_json(FEED_ENDPOINT, **params, offset=offset)
            for row in page["results"]:
                read[row["id"]] = Change.from_row(row)
            offset += len(page["results"])
            if not page["results"] or offset >= page["count"] or len(read.keys() - cursor.seen) >= max_changes:
                break
        new = sorted((change for change in read.values() if change.id not in cursor.seen),
                     key=lambda change: (change.time, change.id))
        if not new:
            return [], cursor
        newest = max(new[-1].time, cursor.time) if cursor.time else new[-1].time
        # Every change at or after the new window's start was in this read: the window starts later.
        seen = frozenset(change.id for change in read.values() if change.time >= newest - self.overlap)
        return new, FeedCursor(newest, seen)


@dataclass
class GroupScope:
    """What an incremental run syncs in one group: production ids per model, and models planned whole."""

    changed_ids: dict[str, set[str]] = field(default_factory=dict)
    whole_models: set[str] = field(default_factory=set)

    def production_ids(self) -> dict[str, set[str] | None]:
        """The engine's form: label -> ids, or None for a model planned whole."""
        scope: dict[str, set[str] | None] = {label: set(ids) for label, ids in self.changed_ids.items()
                                             if label not in self.whole_models}
        scope.update(dict.fromkeys(self.whole_models))
        return scope


def scopes_for(changes: Iterable[Change]) -> dict[str, GroupScope]:
    """The groups an incremental run must sync for these changes, in sync order, with what to sync in each.

    Changes to models the sync does not manage (devices, IPs, users, ...) are ignored.
    """
    scopes: dict[str, GroupScope] = {}

    def scope_of(label: str) -> GroupScope:
        return scopes.setdefault(MODELS[label].group, GroupScope())

    for change in changes:
        spec = MODELS.get(change.label)
        if spec is None or not spec.synced:
            continue
        if change.action == "delete":
            for label in (change.label, *models_referencing(change.label)):
                scope_of(label).whole_models.add(label)
        else:
            scope_of(change.label).changed_ids.setdefault(change.label, set()).add(change.object_id)
    for scope in scopes.values():
        scope.whole_models.update(label for label, ids in scope.changed_ids.items() if len(ids) > MAX_IDS_PER_MODEL)
    return {group: scopes[group] for group in GROUPS if group in scopes}


def deletes_synced_objects(changes: Iterable[Change]) -> bool:
    """Whether production deleted an object of a synced model: the orphans report has news."""
    return any(change.action == "delete" and change.label in MODELS and MODELS[change.label].synced
               for change in changes)


def changes_key(changes: Iterable[Change]) -> str:
    """A deterministic name for a set of changes (the sensor's run key): the same changes, the same key."""
    return hashlib.sha1("\n".join(sorted(change.id for change in changes)).encode()).hexdigest()[:16]
