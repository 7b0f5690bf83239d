"""One writer at a time, from every pair of entry points, deployed as in production: a Dagster instance
configured by deploy/dagster.yaml (PostgreSQL storage, the DefaultRunLauncher), its dagster-daemon, and the
state database on PostgreSQL, against the live stack (any seed).

The writers: a materialization as the UI launches it (a run of `__ASSET_JOB`, through the run queue, with
no writer tag), `veritas-sync` (its own process, past the queue), the change sensor's `incremental_sync`
run and the full-sync schedule's `full_sync` run (both queued with the writer tag, which veritas-sync's run
carries too). Each syncs the small `foundation` group, once synced by the fixture, so that a writer takes
seconds.

Both writers of a pair start together. So that the first one keeps the slot until the second one is seen
waiting, the test holds a lock on the state database's write journal, which a writing run reads only once it
holds the slot (to settle dead runs' writes) and which a waiting run, a dry run and the checks never touch.
The proof is read afterwards from the `writer_slots` table: the two hold intervals do not overlap, and the
second writer waited for the first, at the slot (saying so, naming the first run) or, when both carry the
writer tag and the second is one the queue starts, in the run queue (submitted before the first let go of
the slot, started after).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
from dagster import DagsterRunStatus, build_sensor_context
from dagster._core.launcher import DefaultRunLauncher
from dagster_postgres import PostgresRunStorage
from sqlalchemy import create_engine, select

from veritas_pipeline.engine.state import writer_slots
from veritas_pipeline.jobs import WRITER_TAG, dry_run_config
from veritas_pipeline.schedules import data_quality_schedule, full_sync_schedule
from veritas_pipeline.sensors import production_changes

from .conftest import Deployment, StackInfo, postgres_deployment, run_sync, sync_resource
from .stack_helpers import REPO, read_stack_env, stop_daemon, wait_for

GROUP = "foundation"
UI, CLI, SENSOR, SCHEDULE = "UI materialize", "veritas-sync", "change sensor", "full-sync schedule"
ENTRY_POINTS = (UI, CLI, SENSOR, SCHEDULE)
# The queue may hold back the runs it starts (the sensor's, the schedule's), tagged veritas/writer, while
# another tagged run is in progress: theirs, or veritas-sync's (a full_sync run in its own process).
QUEUED_WRITERS, TAGGED_WRITERS = {SENSOR, SCHEDULE}, {CLI, SENSOR, SCHEDULE}
QUEUE_TURNS_SECONDS = 10  # a few turns of the daemon's queue loop
WAIT_MESSAGE = "waiting for the writer slot of veritasbot "
BIN = REPO / ".venv" / "bin"
TIMEOUT = 240  # seconds, for any one step: the machine is shared


@dataclass
class Live:
    stack: StackInfo
    deployment: Deployment
    env: dict
    home: Path

    def run_record(self, run_id: str):
        return self.deployment.instance.get_run_record_by_id(run_id)

    def logged(self, run_id: str, text: str) -> list[str]:
        return [entry.user_message for entry in self.deployment.instance.all_logs(run_id)
                if text in (entry.user_message or "")]

    def slot_records(self) -> list:
        engine = create_engine(self.deployment.state_url)
        try:
            with engine.connect() as connection:
                return list(connection.execute(select(writer_slots).order_by(writer_slots.c.id)))
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def live(fresh_stack: StackInfo, tmp_path_factory) -> Iterator[Live]:
    """The deployment with its daemon running, after one sync of the group."""
    home = tmp_path_factory.mktemp("dagster_home")
    with postgres_deployment(home, "writers_live") as deployment:
        assert isinstance(deployment.instance.run_storage, PostgresRunStorage)
        assert isinstance(deployment.instance.run_launcher, DefaultRunLauncher), "each run in a process of its own"
        assert run_sync(deployment.state_url, [GROUP], instance=deployment.instance).success
        # The checks schedule runs by default: keep its hourly tick out of the test's runs.
        env = {**os.environ, **read_stack_env(), **deployment.env, "VERITAS_CHECKS_CRON": "0 0 1 1 *"}
        daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
                                  cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        try:
            yield Live(fresh_stack, deployment, env, home)
        finally:
            stop_daemon(daemon)


# ---------------------------------------------------------------- writers and readers

@dataclass
class Launched:
    """A writer, or a reader (dry run, checks) started beside one."""

    entry_point: str
    process: subprocess.Popen  # veritas-sync itself, or `dagster job launch` submitting the run
    run_id: str | None = None  # known at once for submitted runs, from veritas-sync's summary at its end
    stderr: Path | None = None
    outcome: str = ""

    def finished(self, live: Live) -> bool:
        if self.outcome:
            return True
        if self.entry_point == CLI:
            if self.process.poll() is None:
                return False
            summary = re.search(r"veritas-sync run (\S+)", self.process.stdout.read())
            self.run_id = summary.group(1) if summary else None
            self.outcome = f"exit {self.process.returncode}"
            return True
        record = live.run_record(self.run_id)
        if record is None or not record.dagster_run.is_finished:
            return False
        self.outcome = record.dagster_run.status.value
        return True

    def said_it_waits(self, live: Live) -> list[str]:
        if self.entry_point == CLI:
            return [line for line in self.stderr.read_text().splitlines() if WAIT_MESSAGE in line]
        return live.logged(self.run_id, WAIT_MESSAGE) if self.run_id else []


def submit(live: Live, entry_point: str, job: str, *, config: dict | None = None, tags: dict | None = None,
           ops: list[str] = (GROUP,)) -> Launched:
    """Submit a run through the instance's run coordinator, as the UI, the sensor and schedule loops do."""
    run_id = str(uuid.uuid4())
    process = subprocess.Popen(
        [str(BIN / "dagster"), "job", "launch", "-w", str(REPO / "workspace.yaml"), "-j", job, "--run-id", run_id,
         *(["-o", ",".join(ops)] if ops else []), "--tags", json.dumps(tags or {}),
         *(["--config-json", json.dumps(config)] if config else [])],
        cwd=live.home, env=live.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return Launched(entry_point, process, run_id)


def sensor_request(live: Live):
    """What the change sensor asks for after a change to one of the group's production objects."""
    def evaluate(cursor):
        with build_sensor_context(cursor=cursor, resources={"sync": sync_resource(live.deployment.state_url)}) \
                as context:
            return production_changes(context)

    cursor = evaluate(None).cursor
    [group] = live.stack.production.get("tenancy/tenant-groups", limit=1)["results"]
    response = live.stack.production.write("PATCH", f"tenancy/tenant-groups/{group['id']}",
                                           {"description": f"changed {uuid.uuid4().hex[:8]}"})
    assert response.ok, response.text
    [request] = evaluate(cursor).run_requests
    assert [key.path[-1] for key in request.asset_selection] == [GROUP]
    return request


def start(live: Live, entry_point: str, tmp_path: Path) -> Launched:
    if entry_point == UI:
        return submit(live, UI, "__ASSET_JOB")
    if entry_point == SENSOR:
        request = sensor_request(live)
        return submit(live, SENSOR, "incremental_sync", config=request.run_config, tags=request.tags)
    if entry_point == SCHEDULE:
        return submit(live, SCHEDULE, full_sync_schedule.job_name, tags=full_sync_schedule.tags)
    stderr = tmp_path / "veritas-sync.stderr"
    process = subprocess.Popen([str(BIN / "veritas-sync"), "--groups", GROUP], cwd=live.home, env=live.env,
                               stdout=subprocess.PIPE, stderr=stderr.open("w"), text=True)
    return Launched(CLI, process, stderr=stderr)


def submitted(writer: Launched) -> None:
    if writer.entry_point != CLI:
        assert writer.process.wait(timeout=TIMEOUT) == 0, writer.process.stderr.read()


class JournalLock:
    """An exclusive lock on the state database's write journal, held by the test: a writing run that holds
    the slot stops at its first read of the journal until the lock goes."""

    def __init__(self, state_url: str):
        self.engine = create_engine(state_url)
        self.connection = self.engine.connect()
        self.transaction = self.connection.begin()
        self.connection.exec_driver_sql("LOCK TABLE write_journal IN ACCESS EXCLUSIVE MODE")

    def release(self) -> None:
        if self.transaction.is_active:
            self.transaction.rollback()
            self.connection.close()
            self.engine.dispose()


def launch_readers(live: Live) -> list[Launched]:
    """A dry run of the group, and the data-quality schedule's job for its checks: neither takes the slot.
    (A launch names its config: the dry-run job's own applies only where a launchpad fills it in.)"""
    return [submit(live, "dry run", "full_sync_dry_run", config=dry_run_config([GROUP])),
            submit(live, "data quality", data_quality_schedule.job_name, tags=data_quality_schedule.tags,
                   ops=[f"{GROUP}_data_quality"])]


def held_in_queue(live: Live, first: Launched, second: Launched) -> bool:
    """The second writer's run is still queued, well after its submission, behind the first's writer tag."""
    if second.entry_point not in QUEUED_WRITERS or first.entry_point not in TAGGED_WRITERS:
        return False
    record = live.run_record(second.run_id)
    return record is not None and record.dagster_run.status == DagsterRunStatus.QUEUED and \
        time.time() - epoch(record.create_timestamp) >= QUEUE_TURNS_SECONDS


def epoch(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


# ---------------------------------------------------------------- the pairs

PAIRS = list(itertools.combinations(ENTRY_POINTS, 2))


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{a} + {b}" for a, b in PAIRS])
def test_two_writers_from_a_pair_of_entry_points_take_turns(live: Live, pair: tuple[str, str], tmp_path: Path):
    seen_before = {row.id for row in live.slot_records()}
    lock, writers = JournalLock(live.deployment.state_url), []
    try:
        writers += [start(live, entry_point, tmp_path) for entry_point in pair]
        for writer in writers:
            submitted(writer)
        if UI in pair:
            ui = next(writer for writer in writers if writer.entry_point == UI)
            assert WRITER_TAG.keys().isdisjoint(live.run_record(ui.run_id).dagster_run.tags), \
                "a UI materialization is not held back by the queue's writer limit: only the slot guards it"

        def holder():
            return [row for row in live.slot_records() if row.id not in seen_before and row.released_at is None]
        [first_record] = wait_for(holder, TIMEOUT, f"one of {pair} holding the writer slot")
        known = {writer.run_id: writer for writer in writers if writer.run_id}
        first = known.get(first_record.run_id) or next(writer for writer in writers if writer.entry_point == CLI)
        [second] = [writer for writer in writers if writer is not first]
        wait_for(lambda: second.said_it_waits(live) or held_in_queue(live, first, second), TIMEOUT,
                 f"{second.entry_point} waiting for {first.entry_point}")

        if pair == PAIRS[0]:
            readers = launch_readers(live)
            for reader in readers:
                submitted(reader)
            wait_for(lambda: all(reader.finished(live) for reader in readers), TIMEOUT, "the dry run and the checks")
            assert [reader.outcome for reader in readers] == ["SUCCESS", "SUCCESS"]
            assert not [row for row in live.slot_records() if row.run_id in {r.run_id for r in readers}]
            assert [row.released_at for row in live.slot_records() if row.id == first_record.id] == [None], \
                "the first writer let go of the slot before the dry run and the checks were done"
    finally:
        lock.release()
        # Also after a failure: the next pair starts on a free slot.
        wait_for(lambda: all(writer.finished(live) for writer in writers), TIMEOUT, f"{pair} finishing")
    assert {writer.entry_point: writer.outcome for writer in writers} == \
        {writer.entry_point: "exit 0" if writer.entry_point == CLI else "SUCCESS" for writer in writers}

    records = {row.run_id: row for row in live.slot_records() if row.id not in seen_before}
    assert set(records) == {first.run_id, second.run_id}, "each writer held the slot once"
    held_first, held_second = records[first.run_id], records[second.run_id]
    assert held_first.released_at <= held_second.acquired_at, \
        f"{first.entry_point} and {second.entry_point} held the writer slot at the same time"
    told = second.said_it_waits(live)
    if told:
        assert f"{WAIT_MESSAGE}{live.env['VERITASBOT_URL'].rstrip('/')}: run {first.run_id} (pid " in told[0], told
    else:
        queued = live.run_record(second.run_id)
        assert second.entry_point in QUEUED_WRITERS and \
            epoch(queued.create_timestamp) < epoch(held_first.released_at) <= queued.start_time, \
            f"{second.entry_point} neither waited at the slot nor in the queue for {first.entry_point}"
