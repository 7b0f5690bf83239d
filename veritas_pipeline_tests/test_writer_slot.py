"""The writer slot, with real processes: one holder at a time, a waiting process says whom it waits for, and a
holder killed with kill -9 frees the slot. On a SQLite file and on the local stack's PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid

from sqlalchemy import select

from veritas_pipeline.engine.state import StateStore, writer_slots

TARGET = "http://veritas.invalid"

# One process: take the slot, report (JSON lines) when it waited and when it held it, hold it, let it go.
HOLDER = f"""
import json, sys, time
from veritas_pipeline.engine.state import StateStore
from veritas_pipeline.engine.writer_slot import WriterSlot
url, run_id, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
slot = WriterSlot(StateStore(url), {TARGET!r})
slot.acquire(run_id, lambda message: print(json.dumps({{"waiting": message}}), flush=True))
print(json.dumps({{"held_from": time.time()}}), flush=True)
time.sleep(seconds)
print(json.dumps({{"held_until": time.time()}}), flush=True)
slot.release()
"""


def start_holder(url: str, seconds: float) -> tuple[str, subprocess.Popen]:
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    return run_id, subprocess.Popen([sys.executable, "-c", HOLDER, url, run_id, str(seconds)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def reports(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    found: dict = {"waiting": []}
    for line in out.splitlines():
        [(key, value)] = json.loads(line).items()
        found["waiting"].append(value) if key == "waiting" else found.update({key: value})
    return found


def records(url: str) -> list:
    with StateStore(url).engine.connect() as connection:
        return list(connection.execute(select(writer_slots).order_by(writer_slots.c.id)))


def test_holders_started_together_take_turns_and_the_waiting_ones_say_for_whom(state_url: str):
    StateStore(state_url)  # migrated once, before the race
    holders = dict(start_holder(state_url, 1.5) for _ in range(3))
    seen = {run_id: reports(process) for run_id, process in holders.items()}

    turns = sorted((report["held_from"], report["held_until"], run_id) for run_id, report in seen.items())
    for (_, first_until, first), (second_from, _, second) in zip(turns, turns[1:]):
        assert second_from >= first_until, f"{first} and {second} held the slot at the same time"
    waiters = [run_id for run_id, report in seen.items() if report["waiting"]]
    assert len(waiters) >= 2, "the later holders did not wait"
    for run_id in waiters:
        message = seen[run_id]["waiting"][0]
        assert message.startswith(f"waiting for the writer slot of veritasbot {TARGET}")
        assert any(f"run {other} (pid " in message for other in holders if other != run_id) \
            or "another run holds it" in message, message
    assert [(row.run_id, row.released_at is not None) for row in records(state_url)] == \
        [(run_id, True) for _, _, run_id in turns]


def test_a_holder_killed_with_kill_9_frees_the_slot(state_url: str):
    StateStore(state_url)
    dead_run, dead = start_holder(state_url, 600)
    assert json.loads(dead.stdout.readline()).get("held_from"), dead.stderr.read()
    os.kill(dead.pid, signal.SIGKILL)
    dead.wait(timeout=30)

    next_run, process = start_holder(state_url, 0)
    report = reports(process)
    assert report["waiting"] == [], "the slot stayed taken after its holder died"
    rows = {row.run_id: row for row in records(state_url)}
    assert rows[dead_run].released_at is not None, "the dead holder's record was left open"
    assert rows[next_run].released_at is not None
