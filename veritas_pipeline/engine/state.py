"""The pipeline's state database: the audit trail of every write, conflicts per run, remembered adoptions
(with the precedence rule each adopted object got), and the row snapshot the data-quality checks and full
syncs start from between whole reads, with the lookup matches kept alongside it (snapshot.py).

A SQLite file by default, PostgreSQL in production (any deployment beyond one machine). Nothing here is
needed to compute a plan except remembered adoptions, which are a cache (a production rename of an adopted
object would otherwise hide the adoption); deleting the database loses history, never correctness.

The schema is versioned with Alembic (`migrations/versions/`): opening a StateStore upgrades its database
to the newest revision, under a lock, so that processes starting together migrate once. A database made
before migrations existed (tables, no version) is taken to be at the first revision. A schema change is a
new file in `migrations/versions/` whose `down_revision` is the newest one, plus the matching change to the
tables below; `test_state_migrations.py` checks that the two agree.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Engine

from .bounded import in_chunks

metadata = MetaData()

runs = Table(
    "sync_runs", metadata,
    Column("run_id", String(64), primary_key=True),
    Column("group_name", String(64), primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("dry_run", Boolean, nullable=False),
    Column("succeeded", Boolean),
    Column("summary", JSON),
)

writes = Table(
    "sync_writes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("group_name", String(64), nullable=False),
    Column("model", String(100), nullable=False, index=True),
    Column("object_id", String(36), nullable=False, index=True),
    Column("object_name", Text),
    Column("action", String(16), nullable=False),  # create | update | delete
    Column("changes", JSON),  # field -> [before, after]
    Column("succeeded", Boolean, nullable=False),
    Column("error", Text),
    Column("written_at", DateTime(timezone=True), nullable=False),
)

conflicts = Table(
    "sync_conflicts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("group_name", String(64), nullable=False),
    Column("model", String(100), nullable=False),
    Column("object_id", String(36), nullable=False),
    Column("object_name", Text),
    Column("field", String(100), nullable=False),
    Column("production_value", Text),
    Column("veritas_value", Text),
    Column("rule", Text, nullable=False),
)

adoptions = Table(
    "sync_adoptions", metadata,
    Column("model", String(100), primary_key=True),
    Column("production_id", String(36), primary_key=True),
    Column("veritas_id", String(36), nullable=False),
    Column("rule", Text),  # the precedence rule the last run applied: discovery-owned, or follows production
)


writer_slots = Table(
    "writer_slots", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("slot", String(200), nullable=False, index=True),
    Column("run_id", String(64), nullable=False),
    Column("holder", Text, nullable=False),  # host and process id
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("released_at", DateTime(timezone=True)),  # stays empty when the holder died: the next holder fills it
)

# One row per write batch, written before the batch is sent and closed with its outcome. An entry still
# open when a run starts belongs to a run that died with the batch in flight: the new run settles it by
# reading VeritasBot. `objects`: [{id, production_id, name, changes}] with changes as in sync_writes.
journal = Table(
    "write_journal", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("group_name", String(64), nullable=False),
    Column("model", String(100), nullable=False),
    Column("action", String(16), nullable=False),  # create | update | delete
    Column("objects", JSON, nullable=False),
    Column("body_digest", String(64), nullable=False),  # sha256 of the request body as sent
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True), index=True),
    Column("outcome", String(32)),  # answered | refused | settled | unavailable
)

# The row snapshot (snapshot.py): the rows of the synced models on both instances as a full sync read them,
# kept current by each instance's object-change feed. `snapshot_models` lists the models held (an empty
# model is held too); `snapshot_feeds` holds each side's feed cursor (changes.FeedCursor as JSON).
row_snapshots = Table(
    "row_snapshots", metadata,
    Column("side", String(16), primary_key=True),  # catalog.Side value
    Column("model", String(100), primary_key=True),
    Column("object_id", String(36), primary_key=True),
    Column("row", JSON, nullable=False),
)

snapshot_models = Table(
    "snapshot_models", metadata,
    Column("side", String(16), primary_key=True),
    Column("model", String(100), primary_key=True),
    Column("read_at", DateTime(timezone=True), nullable=False),  # when it was last read whole
)

snapshot_feeds = Table(
    "snapshot_feeds", metadata,
    Column("side", String(16), primary_key=True),
    Column("cursor", Text, nullable=False),
    Column("taken_at", DateTime(timezone=True), nullable=False),  # when a full sync last saved this side
    Column("refreshed_at", DateTime(timezone=True), nullable=False),
)

# Lookup matches (snapshot.py): the VeritasBot object a production object of a lookup model (a discovered
# device, interface...) resolved to, valid as of the snapshot's cursors. `depends_on`: side -> ids of the
# objects its natural key was read from on that side; a change to any of them drops the match.
# `natural_key`: the key both objects share, when they were matched by it (else null).
lookup_matches = Table(
    "lookup_matches", metadata,
    Column("model", String(100), primary_key=True),
    Column("production_id", String(36), primary_key=True),
    Column("veritas_id", String(36), nullable=False),
    Column("depends_on", JSON, nullable=False),
    Column("natural_key", JSON, nullable=True),
)

MIGRATIONS = Path(__file__).with_name("migrations")
# The revision that creates the tables as they were before migrations existed.
BASELINE_REVISION = "0001"
# Key of the PostgreSQL advisory lock held while migrating (any constant unlikely to collide).
MIGRATION_LOCK_KEY = 0x7665726974617301


def sqlite_file(engine: Engine) -> Path | None:
    """The database file of a SQLite engine; None for other databases and in-memory SQLite."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    return Path(engine.url.database).resolve()


@contextlib.contextmanager
def file_lock(path: Path, *, blocking: bool = True) -> Iterator[bool]:
    """An exclusive lock on `path` (created if missing), released when the block ends or the process dies.
    Yields whether it was obtained (always True when blocking)."""
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def transactional_sqlite(engine: Engine) -> None:
    """Make SQLite's DDL transactional, as PostgreSQL's is: Python's sqlite3 begins a transaction only before
    INSERT, UPDATE and DELETE, so a migration's CREATE TABLE committed at once, and a process killed in the
    middle of one left a schema half made that no later run could upgrade. SQLAlchemy begins instead."""
    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN")


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema revision; a no-op when it is there already."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    database_file = sqlite_file(engine)
    lock = file_lock(database_file.with_name(database_file.name + ".migrate.lock")) if database_file \
        else contextlib.nullcontext()
    with lock, engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        config.attributes["connection"] = connection
        tables = set(inspect(connection).get_table_names())
        if "alembic_version" not in tables and "sync_runs" in tables:
            command.stamp(config, BASELINE_REVISION)
        command.upgrade(config, "head")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime | None) -> datetime | None:
    """A stored time with its zone: SQLite drops it, and every time here was written as UTC."""
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


# Rows per INSERT of a snapshot: bounds the statement's size on a large model.
_SNAPSHOT_CHUNK = 1000


@dataclass
class StoredSnapshot:
    """One side's row snapshot as stored: its feed cursor (changes.FeedCursor JSON), when a full sync saved
    it and when it was last refreshed, and label -> object id -> row of every model it holds."""

    cursor: str
    taken_at: datetime
    refreshed_at: datetime
    models: dict[str, dict[str, dict]] = field(default_factory=dict)


@dataclass(frozen=True)
class LookupMatch:
    """A production object of a lookup model resolved to `veritas_id`; `depends_on`: side -> the ids of the
    objects (itself and what its natural key references) the match was read from on that side. `key`: the
    natural key both objects have, kept when they were matched by it (else None): while the match holds,
    neither side need be read to know it."""

    veritas_id: str
    depends_on: Mapping[str, frozenset[str]]
    key: tuple | None = None

    def stale(self, side: str, changed: set[str]) -> bool:
        return not changed.isdisjoint(self.depends_on.get(side, ()))


LookupMatches = Mapping[str, Mapping[str, LookupMatch]]  # label -> production id -> match


def _stored_match(veritas_id: str, depends_on: Mapping[str, list[str]], key: list | None) -> LookupMatch:
    return LookupMatch(veritas_id, {side: frozenset(ids) for side, ids in depends_on.items()}, stored_key(key))


def stored_key(value: Any) -> Any:
    """A natural key as it comes back from JSON: its tuples were stored as lists."""
    return tuple(stored_key(part) for part in value) if isinstance(value, list) else value


def storable_key(key: Any) -> tuple | None:
    """The natural key if it comes back from the state database equal to itself (strings, numbers, None and
    tuples of them), else None: a key kept must compare as the one computed from the rows would."""
    try:
        return key if isinstance(key, tuple) and stored_key(json.loads(json.dumps(key))) == key else None
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, sort_keys=True)


class StateStore:
    def __repr__(self) -> str:
        return f"StateStore({self.url!r})"

    def __init__(self, url: str):
        connect_args = {"timeout": 30} if url.startswith("sqlite") else {}
        self.engine: Engine = create_engine(url, connect_args=connect_args, future=True)
        self.url = self.engine.url.render_as_string(hide_password=True)  # for messages: never the password
        if self.engine.dialect.name == "sqlite":
            transactional_sqlite(self.engine)
        upgrade(self.engine)

    def start_run(self, run_id: str, group: str, dry_run: bool) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(runs).where(runs.c.run_id == run_id, runs.c.group_name == group))
            connection.execute(insert(runs).values(run_id=run_id, group_name=group, started_at=_now(),
                                                   dry_run=dry_run))

    def finish_run(self, run_id: str, group: str, succeeded: bool, summary: dict) -> None:
        with self.engine.begin() as connection:
            connection.execute(runs.update().where(runs.c.run_id == run_id, runs.c.group_name == group)
                               .values(finished_at=_now(), succeeded=succeeded, summary=summary))

    def record_conflicts(self, run_id: str, group: str, found: Iterable[Any]) -> None:
        rows = [{"run_id": run_id, "group_name": group, "model": c.label, "object_id": c.veritas_id,
                 "object_name": c.name, "field": c.field, "production_value": _text(c.production_value),
                 "veritas_value": _text(c.veritas_value), "rule": c.rule} for c in found]
        with self.engine.begin() as connection:
            connection.execute(delete(conflicts).where(conflicts.c.run_id == run_id,
                                                       conflicts.c.group_name == group))
            if rows:
                connection.execute(insert(conflicts), rows)

    # ---------------------------------------------------------------- write-ahead journal
    def open_journal(self, run_id: str, group: str, label: str, action: str, objects: list[dict],
                     body_digest: str) -> int:
        with self.engine.begin() as connection:
            return connection.execute(insert(journal).values(
                run_id=run_id, group_name=group, model=label, action=action, objects=objects,
                body_digest=body_digest, opened_at=_now())).inserted_primary_key[0]

    def close_journal(self, entry_id: int, outcome: str, audit: Iterable[dict], run_id: str, group: str) -> None:
        """Close an entry and record what its request did, in one transaction: a crash between the two
        would either settle the entry again or record nothing twice."""
        rows = [{"run_id": run_id, "group_name": group, "written_at": _now(), **entry} for entry in audit]
        with self.engine.begin() as connection:
            if rows:
                connection.execute(insert(writes), rows)
            connection.execute(journal.update().where(journal.c.id == entry_id)
                               .values(closed_at=_now(), outcome=outcome))

    def open_journal_entries(self) -> list[dict]:
        """Entries no run closed: their requests were in flight when the run that sent them died."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(journal).where(journal.c.closed_at.is_(None)).order_by(journal.c.id))
            return [dict(row._mapping) for row in rows]

    def remember_adoptions(self, label: str, pairs: dict[str, str], rules: dict[str, str] | None = None) -> None:
        """Production id -> VeritasBot id of adopted objects, with the precedence rule each one got."""
        if not pairs:
            return
        rules = rules or {}
        with self.engine.begin() as connection:
            connection.execute(delete(adoptions).where(adoptions.c.model == label,
                                                       adoptions.c.production_id.in_(list(pairs))))
            connection.execute(insert(adoptions), [{"model": label, "production_id": production_id,
                                                    "veritas_id": veritas_id, "rule": rules.get(production_id)}
                                                   for production_id, veritas_id in pairs.items()])

    def forget_adoptions(self, label: str, production_ids: Iterable[str]) -> None:
        """Drop remembered adoptions whose VeritasBot object is gone: those objects are matched afresh."""
        production_ids = list(production_ids)
        if production_ids:
            with self.engine.begin() as connection:
                connection.execute(delete(adoptions).where(adoptions.c.model == label,
                                                           adoptions.c.production_id.in_(production_ids)))

    def adoption_rules(self, label: str) -> dict[str, str | None]:
        """Production id -> the precedence rule the last run applied to that adopted object."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(adoptions.c.production_id, adoptions.c.rule)
                                      .where(adoptions.c.model == label))
            return {production_id: rule for production_id, rule in rows}

    def adoptions(self, label: str) -> dict[str, str]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(adoptions.c.production_id, adoptions.c.veritas_id)
                                      .where(adoptions.c.model == label))
            return {production_id: veritas_id for production_id, veritas_id in rows}

    def written_object_ids(self, labels: Iterable[str]) -> set[str]:
        """Objects of these models the sync ever created or updated, from the audit trail."""
        query = (select(writes.c.object_id).distinct()
                 .where(writes.c.model.in_(list(labels)), writes.c.succeeded.is_(True),
                        writes.c.action.in_(("create", "update"))))
        with self.engine.connect() as connection:
            return set(connection.execute(query).scalars())

    def writes_of_run(self, run_id: str) -> list[dict]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(writes).where(writes.c.run_id == run_id).order_by(writes.c.id))
            return [dict(row._mapping) for row in rows]

    def conflicts_of_run(self, run_id: str, group: str | None = None) -> list[dict]:
        query = select(conflicts).where(conflicts.c.run_id == run_id)
        if group:
            query = query.where(conflicts.c.group_name == group)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query.order_by(conflicts.c.id))]

    def conflict_changes(self, run_id: str, group: str,
                         covered: dict[str, list[str] | None]) -> tuple[list[dict], list[dict]]:
        """(new, resolved) conflicts of a run that planned `covered` (model label -> the VeritasBot ids it
        planned, None for the whole model). Each object covered is compared with the newest earlier real run
        that covered it too, so that an incremental run neither resolves nor renews a full run's conflicts
        on objects it did not look at. A conflict is its model, object and field."""
        with self.engine.connect() as connection:
            started = connection.execute(select(runs.c.started_at).where(
                runs.c.run_id == run_id, runs.c.group_name == group)).scalar()
            earlier = connection.execute(
                select(runs.c.run_id, runs.c.summary).where(
                    runs.c.group_name == group, runs.c.run_id != run_id, runs.c.dry_run.is_(False),
                    runs.c.finished_at.is_not(None), runs.c.started_at <= started)
                .order_by(runs.c.started_at.desc())).all()
        covered_ids = {label: None if ids is None else set(ids) for label, ids in covered.items()}
        current = [c for c in self.conflicts_of_run(run_id, group) if c["model"] in covered]
        before: list[dict] = []
        decided: dict[str, set[str]] = {label: set() for label in covered}  # compared with a newer run already
        whole = set()  # models an earlier run covered whole: nothing older counts

        def settled(label: str) -> bool:
            ids = covered_ids[label]
            return label in whole or (ids is not None and ids <= decided[label])

        for earlier_run, summary in earlier:
            # Runs recorded before coverage was kept covered their whole group.
            earlier_covered = (summary or {}).get("covered")
            conflicts_then = self.conflicts_of_run(earlier_run, group)
            for label, ids in covered_ids.items():
                if settled(label) or (earlier_covered is not None and label not in earlier_covered):
                    continue
                then = None if earlier_covered is None else earlier_covered[label]
                before += [c for c in conflicts_then if c["model"] == label and c["object_id"] not in decided[label]
                           and (ids is None or c["object_id"] in ids) and (then is None or c["object_id"] in then)]
                if then is None:
                    whole.add(label)
                else:
                    decided[label] |= set(then)
            if all(map(settled, covered_ids)):
                break

        def key(conflict: dict) -> tuple:
            return conflict["model"], conflict["object_id"], conflict["field"]

        current_keys, before_keys = {key(c) for c in current}, {key(c) for c in before}
        return ([c for c in current if key(c) not in before_keys], [c for c in before if key(c) not in current_keys])

    # ---------------------------------------------------------------- row snapshot (snapshot.py)
    def load_snapshot(self) -> dict[str, StoredSnapshot]:
        """side -> its stored snapshot; a side never saved is absent."""
        with self.engine.connect() as connection:
            sides = {side: StoredSnapshot(cursor, _utc(taken_at), _utc(refreshed_at))
                     for side, cursor, taken_at, refreshed_at in connection.execute(select(snapshot_feeds))}
            for side, label in connection.execute(select(snapshot_models.c.side, snapshot_models.c.model)):
                if side in sides:
                    sides[side].models[label] = {}
            for side, label, object_id, row in connection.execute(select(row_snapshots)):
                models = sides[side].models if side in sides else {}
                if label in models:
                    models[label][object_id] = row
        return sides

    def snapshot_taken_at(self) -> dict[str, datetime]:
        """side -> when its row snapshot was last read whole (saved by a full sync that read whole, or by a
        refresh that had to); a side never saved is absent."""
        with self.engine.connect() as connection:
            return {side: _utc(taken_at) for side, taken_at in
                    connection.execute(select(snapshot_feeds.c.side, snapshot_feeds.c.taken_at))}

    def save_snapshot(self, side: str, cursor: str, models: Mapping[str, Mapping[str, dict]]) -> None:
        """Replace one side's snapshot with these models' rows and this feed cursor (a full read)."""
        self.save_snapshots({side: (cursor, models)})

    def save_snapshots(self, sides: Mapping[str, tuple[str, Mapping[str, Mapping[str, dict]]]],
                       matches: LookupMatches | None = None) -> None:
        """Replace the snapshot of each side given (cursor, label -> id -> row), all in one transaction, and
        the lookup matches with `matches` (None: none are kept, as nothing says which still hold)."""
        now = _now()
        with self.engine.begin() as connection:
            for side, (cursor, models) in sides.items():
                for table in (row_snapshots, snapshot_models, snapshot_feeds):
                    connection.execute(delete(table).where(table.c.side == side))
                self._insert_rows(connection, side, models)
                connection.execute(insert(snapshot_feeds).values(side=side, cursor=cursor, taken_at=now,
                                                                 refreshed_at=now))
            self._replace_matches(connection, matches or {})

    def refresh_snapshot(self, side: str, loaded_cursor: str, cursor: str,
                         whole: Mapping[str, Mapping[str, dict]], changed: Mapping[str, Mapping[str, dict]],
                         removed: Mapping[str, Iterable[str]], *, changed_ids: Iterable[str] = (),
                         matches: LookupMatches | None = None) -> bool:
        """Apply one side's refresh: models read `whole` replace theirs, `changed` rows replace theirs,
        `removed` ids go, and the cursor moves on; the lookup matches (replaced by `matches` when given) that
        depend on `changed_ids` (every object the side's feed logged up to the new cursor) are dropped. Only
        if the stored cursor is still `loaded_cursor` (a full sync or another refresh may have stored a newer
        snapshot meanwhile); returns whether it was applied."""
        with self.engine.begin() as connection:
            stored = connection.execute(select(snapshot_feeds.c.cursor).where(snapshot_feeds.c.side == side)
                                        .with_for_update()).scalar()
            if stored != loaded_cursor:
                return False
            if matches is not None:
                self._replace_matches(connection, matches)
            self._drop_stale_matches(connection, side, set(changed_ids))
            for label in whole:
                connection.execute(delete(row_snapshots).where(row_snapshots.c.side == side,
                                                               row_snapshots.c.model == label))
                connection.execute(delete(snapshot_models).where(snapshot_models.c.side == side,
                                                                 snapshot_models.c.model == label))
            self._insert_rows(connection, side, whole)
            for label in {*changed, *removed}:
                ids = [*changed.get(label, {}), *removed.get(label, ())]
                for some in in_chunks(ids, _SNAPSHOT_CHUNK):
                    connection.execute(delete(row_snapshots).where(
                        row_snapshots.c.side == side, row_snapshots.c.model == label,
                        row_snapshots.c.object_id.in_(some)))
            self._insert_rows(connection, side, changed, models_too=False)
            connection.execute(snapshot_feeds.update().where(snapshot_feeds.c.side == side)
                               .values(cursor=cursor, refreshed_at=_now()))
        return True

    @staticmethod
    def _insert_rows(connection, side: str, models: Mapping[str, Mapping[str, dict]], models_too: bool = True) -> None:
        rows = [{"side": side, "model": label, "object_id": object_id, "row": row}
                for label, table in models.items() for object_id, row in table.items()]
        for some in in_chunks(rows, _SNAPSHOT_CHUNK):
            connection.execute(insert(row_snapshots), some)
        if models_too and models:
            connection.execute(insert(snapshot_models), [{"side": side, "model": label, "read_at": _now()}
                                                         for label in models])

    def forget_snapshot(self) -> None:
        """Drop the row snapshot and its lookup matches: the next checks run alone reads both instances
        whole, and saves a new one."""
        with self.engine.begin() as connection:
            for table in (row_snapshots, snapshot_models, snapshot_feeds, lookup_matches):
                connection.execute(delete(table))

    def load_lookup_matches(self) -> dict[str, dict[str, LookupMatch]]:
        """label -> production id -> the lookup match kept with the snapshot."""
        found: dict[str, dict[str, LookupMatch]] = {}
        with self.engine.connect() as connection:
            for label, production_id, veritas_id, depends_on, key in connection.execute(select(lookup_matches)):
                found.setdefault(label, {})[production_id] = _stored_match(veritas_id, depends_on, key)
        return found

    @staticmethod
    def _replace_matches(connection, matches: LookupMatches) -> None:
        connection.execute(delete(lookup_matches))
        rows = [{"model": label, "production_id": production_id, "veritas_id": match.veritas_id,
                 "depends_on": {side: sorted(ids) for side, ids in match.depends_on.items()},
                 "natural_key": match.key}
                for label, by_id in matches.items() for production_id, match in by_id.items()]
        for some in in_chunks(rows, _SNAPSHOT_CHUNK):
            connection.execute(insert(lookup_matches), some)

    @staticmethod
    def _drop_stale_matches(connection, side: str, changed_ids: set[str]) -> None:
        """Drop the lookup matches read from an object of `side` that changed."""
        if not changed_ids:
            return
        stale: dict[str, list[str]] = {}
        for label, production_id, veritas_id, depends_on, key in connection.execute(select(lookup_matches)):
            if _stored_match(veritas_id, depends_on, key).stale(side, changed_ids):
                stale.setdefault(label, []).append(production_id)
        for label, ids in stale.items():
            for some in in_chunks(ids, _SNAPSHOT_CHUNK):
                connection.execute(delete(lookup_matches).where(
                    lookup_matches.c.model == label, lookup_matches.c.production_id.in_(some)))

    def last_successful_run(self, group: str) -> datetime | None:
        with self.engine.connect() as connection:
            value = connection.execute(
                select(runs.c.finished_at).where(runs.c.group_name == group, runs.c.succeeded.is_(True),
                                                 runs.c.dry_run.is_(False))
                .order_by(runs.c.finished_at.desc()).limit(1)).scalar()
        if value is not None and value.tzinfo is None:  # SQLite drops the zone; it was written as UTC
            value = value.replace(tzinfo=timezone.utc)
        return value
