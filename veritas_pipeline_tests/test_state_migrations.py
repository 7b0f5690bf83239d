"""The state database's schema is versioned: a new database, one made before migrations existed and one at
an older revision all end at the newest revision, with exactly the tables `state.py` declares and every row
kept. On a SQLite file and
on the local stack's PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, MetaData, String, Table, Text, create_engine, insert, select

from veritas_pipeline.engine.state import MIGRATIONS, StateStore, metadata, writer_slots

# The schema as `StateStore` created it (metadata.create_all) before migrations existed: main at 0e56009..c57456a.
previous = MetaData()
Table("sync_runs", previous,
      Column("run_id", String(64), primary_key=True), Column("group_name", String(64), primary_key=True),
      Column("started_at", DateTime(timezone=True), nullable=False), Column("finished_at", DateTime(timezone=True)),
      Column("dry_run", Boolean, nullable=False), Column("succeeded", Boolean), Column("summary", JSON))
Table("sync_writes", previous,
      Column("id", Integer, primary_key=True, autoincrement=True),
      Column("run_id", String(64), nullable=False, index=True), Column("group_name", String(64), nullable=False),
      Column("model", String(100), nullable=False, index=True),
      Column("object_id", String(36), nullable=False, index=True), Column("object_name", Text),
      Column("action", String(16), nullable=False), Column("changes", JSON),
      Column("succeeded", Boolean, nullable=False), Column("error", Text),
      Column("written_at", DateTime(timezone=True), nullable=False))
Table("sync_conflicts", previous,
      Column("id", Integer, primary_key=True, autoincrement=True),
      Column("run_id", String(64), nullable=False, index=True), Column("group_name", String(64), nullable=False),
      Column("model", String(100), nullable=False), Column("object_id", String(36), nullable=False),
      Column("object_name", Text), Column("field", String(100), nullable=False),
      Column("production_value", Text), Column("veritas_value", Text), Column("rule", Text, nullable=False))
Table("sync_adoptions", previous,
      Column("model", String(100), primary_key=True), Column("production_id", String(36), primary_key=True),
      Column("veritas_id", String(36), nullable=False))

HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()


def schema_state(url: str) -> tuple[str | None, list]:
    """(the database's revision, its differences from the tables state.py declares)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            return context.get_current_revision(), compare_metadata(context, metadata)
    finally:
        engine.dispose()


def test_a_new_database_is_created_at_the_newest_revision(state_url: str):
    StateStore(state_url)
    assert schema_state(state_url) == (HEAD, [])
    StateStore(state_url)  # opening it again changes nothing
    assert schema_state(state_url) == (HEAD, [])


def test_a_database_of_the_previous_schema_is_upgraded_and_keeps_its_rows(state_url: str):
    engine = create_engine(state_url)
    previous.create_all(engine)
    finished = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
    with engine.begin() as connection:
        connection.execute(insert(previous.tables["sync_runs"]), [
            {"run_id": "old-run", "group_name": "organization", "started_at": finished - timedelta(minutes=1),
             "finished_at": finished, "dry_run": False, "succeeded": True, "summary": {"created": 1}}])
        connection.execute(insert(previous.tables["sync_writes"]), [
            {"run_id": "old-run", "group_name": "organization", "model": "tenancy.tenant",
             "object_id": "11111111-1111-1111-1111-111111111111", "object_name": "Tenant A", "action": "create",
             "changes": {"name": [None, "Tenant A"]}, "succeeded": True, "written_at": finished}])
        connection.execute(insert(previous.tables["sync_conflicts"]), [
            {"run_id": "old-run", "group_name": "organization", "model": "tenancy.tenant",
             "object_id": "22222222-2222-2222-2222-222222222222", "object_name": "Tenant B", "field": "name",
             "production_value": '"B"', "veritas_value": '"b"', "rule": "discovery owns name"}])
        connection.execute(insert(previous.tables["sync_adoptions"]), [
            {"model": "tenancy.tenant", "production_id": "33333333-3333-3333-3333-333333333333",
             "veritas_id": "44444444-4444-4444-4444-444444444444"}])
    engine.dispose()
    assert schema_state(state_url)[0] is None, "the previous schema has no version"

    state = StateStore(state_url)

    assert schema_state(state_url) == (HEAD, [])
    [write] = state.writes_of_run("old-run")
    assert (write["object_name"], write["changes"]) == ("Tenant A", {"name": [None, "Tenant A"]})
    assert [c["field"] for c in state.conflicts_of_run("old-run")] == ["name"]
    assert state.adoptions("tenancy.tenant") == {"33333333-3333-3333-3333-333333333333":
                                                 "44444444-4444-4444-4444-444444444444"}
    assert state.last_successful_run("organization") == finished


def test_a_database_at_an_older_revision_is_upgraded_and_keeps_its_rows(state_url: str):
    """A database last opened by the pipeline at revision 0002 (writer slots, before the write journal)."""
    engine = create_engine(state_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
    at_0002 = MetaData()
    at_0002.reflect(engine)
    assert "write_journal" not in at_0002.tables
    held = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
    with engine.begin() as connection:
        connection.execute(insert(at_0002.tables["sync_runs"]), [
            {"run_id": "run-0002", "group_name": "foundation", "started_at": held, "finished_at": held,
             "dry_run": False, "succeeded": True, "summary": {"created": 2}}])
        connection.execute(insert(at_0002.tables["writer_slots"]), [
            {"slot": "veritasbot http://veritas.invalid", "run_id": "run-0002", "holder": "pid 1 on host",
             "acquired_at": held, "released_at": held + timedelta(minutes=5)}])
    engine.dispose()
    assert schema_state(state_url)[0] == "0002"

    state = StateStore(state_url)

    assert schema_state(state_url) == (HEAD, [])
    assert state.last_successful_run("foundation") == held
    with state.engine.connect() as connection:
        [slot] = connection.execute(select(writer_slots)).all()
    released = slot.released_at if slot.released_at.tzinfo else slot.released_at.replace(tzinfo=timezone.utc)
    assert (slot.run_id, released) == ("run-0002", held + timedelta(minutes=5))  # SQLite drops the zone
    assert state.open_journal_entries() == []


def test_processes_opening_a_new_database_together_migrate_it_once(state_url: str):
    opener = f"from veritas_pipeline.engine.state import StateStore; StateStore({state_url!r})"
    processes = [subprocess.Popen([sys.executable, "-c", opener], stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
    errors = [process.communicate(timeout=120)[1] for process in processes]
    assert [process.returncode for process in processes] == [0] * 4, "\n".join(errors)
    assert schema_state(state_url) == (HEAD, [])


# Dies by kill -9 right after the migration's first table of its own (alembic_version excepted) is created.
DIES_WHILE_MIGRATING = """
import os, signal, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
from veritas_pipeline.engine.state import StateStore

@event.listens_for(Engine, "after_cursor_execute")
def die_after_the_first_table(connection, cursor, statement, *args):
    if statement.lstrip().upper().startswith("CREATE TABLE") and "alembic_version" not in statement:
        os.kill(os.getpid(), signal.SIGKILL)

StateStore(sys.argv[1])
"""


def test_a_process_killed_while_migrating_leaves_nothing_half_done(state_url: str):
    killed = subprocess.run([sys.executable, "-c", DIES_WHILE_MIGRATING, state_url], capture_output=True, text=True,
                            timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    StateStore(state_url)
    assert schema_state(state_url) == (HEAD, [])
