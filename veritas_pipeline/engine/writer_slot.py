"""The writer slot: one run at a time writes to a VeritasBot, whatever started it.

Every run that may write takes the slot before its first read and keeps it until it ends: a run started
from the UI, `veritas-sync`, the change sensor, a schedule, or a retry; in its own process, container or a
test's `execute_in_process`. The slot is a lock of the state database's server, so it holds across
machines: a PostgreSQL advisory lock on a connection the run keeps open (or, for a SQLite state database,
which one machine shares, a lock on a file beside it). A run that dies, even by kill -9, loses its
connection or file and with it the slot; nothing needs cleaning up. The `writer_slots` table records who
held the slot when, so that a waiting run can say whom it waits for.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import time
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from .state import StateStore, file_lock, sqlite_file, writer_slots

# Captured into the run's event log (dagster.yaml's python_logs) and printed by veritas-sync's progress.
log = logging.getLogger(__name__)

# How often a waiting run tries again, and how often it repeats whom it waits for.
POLL_SECONDS = 1.0
REPEAT_WAIT_MESSAGE_SECONDS = 60.0


class WriterSlot:
    """The slot of one VeritasBot (named by its URL) in one state database."""

    def __init__(self, state: StateStore, target: str):
        self.state = state
        self.name = f"veritasbot {target.rstrip('/')}"
        digest = hashlib.sha256(self.name.encode()).digest()
        self._lock_key = int.from_bytes(digest[:8], "big", signed=True)
        self._file_name = f"writer-{digest.hex()[:16]}.lock"
        self._held: contextlib.ExitStack | None = None
        self._record_id: int | None = None

    @property
    def held(self) -> bool:
        return self._held is not None

    def acquire(self, run_id: str, on_wait: Callable[[str], None] = log.warning) -> None:
        """Take the slot for `run_id`, waiting as long as another run holds it; `on_wait` hears whom it
        waits for (at once, then every minute). Taking a slot already held by this object does nothing."""
        if self._held is not None:
            return
        told_at = None
        while not self._try_lock():
            if told_at is None or time.monotonic() - told_at >= REPEAT_WAIT_MESSAGE_SECONDS:
                on_wait(f"waiting for the writer slot of {self.name}: {self.holder() or 'another run holds it'}")
                told_at = time.monotonic()
            time.sleep(POLL_SECONDS)
        now = datetime.now(timezone.utc)
        with self.state.engine.begin() as connection:
            # Any record still open belongs to a holder that died: the lock is ours now.
            connection.execute(update(writer_slots).where(writer_slots.c.slot == self.name,
                                                          writer_slots.c.released_at.is_(None))
                               .values(released_at=now))
            self._record_id = connection.execute(insert(writer_slots).values(
                slot=self.name, run_id=run_id, holder=f"pid {os.getpid()} on {socket.gethostname()}",
                acquired_at=now)).inserted_primary_key[0]

    def release(self) -> None:
        if self._held is None:
            return
        with self.state.engine.begin() as connection:
            connection.execute(update(writer_slots).where(writer_slots.c.id == self._record_id)
                               .values(released_at=datetime.now(timezone.utc)))
        self._held.close()
        self._held, self._record_id = None, None

    def holder(self) -> str | None:
        """Who holds the slot, as its latest record says: run, process and since when."""
        with self.state.engine.connect() as connection:
            row = connection.execute(
                select(writer_slots).where(writer_slots.c.slot == self.name, writer_slots.c.released_at.is_(None))
                .order_by(writer_slots.c.id.desc()).limit(1)).first()
        if row is None:
            return None
        return f"run {row.run_id} ({row.holder}) holds it since {row.acquired_at:%Y-%m-%d %H:%M:%S}"

    def _try_lock(self) -> bool:
        held = contextlib.ExitStack()
        database_file = sqlite_file(self.state.engine)
        if self.state.engine.dialect.name == "sqlite" and database_file is None:
            raise ValueError(f"state database {self.state.url}: an in-memory SQLite database cannot hold a writer "
                             "slot that other processes see; use a SQLite file or PostgreSQL")
        if database_file is not None:
            obtained = held.enter_context(file_lock(database_file.with_name(self._file_name), blocking=False))
        else:
            # Session-level: held until unlocked or the connection closes, whatever the transactions do.
            connection: Connection = held.enter_context(
                self.state.engine.connect().execution_options(isolation_level="AUTOCOMMIT"))
            obtained = connection.exec_driver_sql(f"SELECT pg_try_advisory_lock({self._lock_key})").scalar()
            if obtained:  # the connection goes back to the pool, not away: unlock before it does
                held.callback(connection.exec_driver_sql, f"SELECT pg_advisory_unlock({self._lock_key})")
        if not obtained:
            held.close()
            return False
        self._held = held
        return True
