"""The pipeline's state database: the audit trail of every write, conflicts per run, remembered adoptions.

Any SQLAlchemy URL works: a SQLite file by default, PostgreSQL in production. Nothing here is needed to
compute a plan except remembered adoptions, which are a cache (a production rename of an adopted object
would otherwise hide the adoption); deleting the database loses history, never correctness.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterable

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
    insert,
    select,
)
from sqlalchemy.engine import Engine

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
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, sort_keys=True)


class StateStore:
    def __init__(self, url: str):
        self.url = url
        connect_args = {"timeout": 30} if url.startswith("sqlite") else {}
        self.engine: Engine = create_engine(url, connect_args=connect_args, future=True)
        metadata.create_all(self.engine)

    def start_run(self, run_id: str, group: str, dry_run: bool) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(runs).where(runs.c.run_id == run_id, runs.c.group_name == group))
            connection.execute(insert(runs).values(run_id=run_id, group_name=group, started_at=_now(),
                                                   dry_run=dry_run))

    def finish_run(self, run_id: str, group: str, succeeded: bool, summary: dict) -> None:
        with self.engine.begin() as connection:
            connection.execute(runs.update().where(runs.c.run_id == run_id, runs.c.group_name == group)
                               .values(finished_at=_now(), succeeded=succeeded, summary=summary))

    def record_writes(self, run_id: str, group: str, entries: Iterable[dict]) -> None:
        rows = [{"run_id": run_id, "group_name": group, "written_at": _now(), **entry} for entry in entries]
        if rows:
            with self.engine.begin() as connection:
                connection.execute(insert(writes), rows)

    def record_conflicts(self, run_id: str, group: str, found: Iterable[Any]) -> None:
        rows = [{"run_id": run_id, "group_name": group, "model": c.label, "object_id": c.veritas_id,
                 "object_name": c.name, "field": c.field, "production_value": _text(c.production_value),
                 "veritas_value": _text(c.veritas_value), "rule": c.rule} for c in found]
        with self.engine.begin() as connection:
            connection.execute(delete(conflicts).where(conflicts.c.run_id == run_id,
                                                       conflicts.c.group_name == group))
            if rows:
                connection.execute(insert(conflicts), rows)

    def remember_adoptions(self, label: str, pairs: dict[str, str]) -> None:
        if not pairs:
            return
        with self.engine.begin() as connection:
            connection.execute(delete(adoptions).where(adoptions.c.model == label,
                                                       adoptions.c.production_id.in_(list(pairs))))
            connection.execute(insert(adoptions), [{"model": label, "production_id": production_id,
                                                    "veritas_id": veritas_id}
                                                   for production_id, veritas_id in pairs.items()])

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

    def conflict_changes(self, run_id: str, group: str) -> tuple[list[dict], list[dict]]:
        """(new, resolved): this run's conflicts absent from the group's previous real run, and that run's
        conflicts absent from this one. A conflict is its model, object and field."""
        with self.engine.connect() as connection:
            started = connection.execute(select(runs.c.started_at).where(
                runs.c.run_id == run_id, runs.c.group_name == group)).scalar()
            previous = connection.execute(
                select(runs.c.run_id).where(runs.c.group_name == group, runs.c.run_id != run_id,
                                            runs.c.dry_run.is_(False), runs.c.finished_at.is_not(None),
                                            runs.c.started_at <= started)
                .order_by(runs.c.started_at.desc()).limit(1)).scalar()
        current = self.conflicts_of_run(run_id, group)
        before = self.conflicts_of_run(previous, group) if previous else []

        def key(conflict: dict) -> tuple:
            return conflict["model"], conflict["object_id"], conflict["field"]

        current_keys, before_keys = {key(c) for c in current}, {key(c) for c in before}
        return ([c for c in current if key(c) not in before_keys], [c for c in before if key(c) not in current_keys])

    def last_successful_run(self, group: str) -> datetime | None:
        with self.engine.connect() as connection:
            value = connection.execute(
                select(runs.c.finished_at).where(runs.c.group_name == group, runs.c.succeeded.is_(True),
                                                 runs.c.dry_run.is_(False))
                .order_by(runs.c.finished_at.desc()).limit(1)).scalar()
        if value is not None and value.tzinfo is None:  # SQLite drops the zone; it was written as UTC
            value = value.replace(tzinfo=timezone.utc)
        return value
