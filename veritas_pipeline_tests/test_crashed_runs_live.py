"""Crashed runs never hold the writer slot, with real processes on the live stack: a daemon-launched writing run
whose process is killed with kill -9 (alone, or with the daemon and its code server) is marked failed and
the next queued writing run starts and succeeds; `veritas-sync` stopped with SIGTERM marks its run FAILURE;
one killed with kill -9 has its run closed by the next `veritas-sync`. Each sync is two small groups."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus

from veritas_pipeline.engine.run_process import PID_TAG, RUN_TAG, describe
from veritas_pipeline.engine.state import StateStore, writer_slots
from veritas_pipeline.engine.writer_slot import WriterSlot
from veritas_pipeline.jobs import WRITER_TAG

from .conftest import StackInfo
from .stack_helpers import REPO, read_stack_env, stop_daemon, wait_for

GROUPS = ("foundation", "organization")
SYNC_STARTED = "group foundation: started"  # veritas-sync's progress once its run writes
# How soon a dead run must be failed and the next writer started: the crashed_runs sensor's interval plus a
# daemon's start, with room for a busy machine. The code server's own check takes about a second.
MONITORING_WINDOW_SECONDS = 60


@pytest.fixture
def dagster_env(fresh_stack: StackInfo, tmp_path: Path) -> dict:
    """A Dagster instance configured by the repository's dagster.yaml, and a state database, both new."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    return {**os.environ, **read_stack_env(), "DAGSTER_HOME": str(home),
            "VERITAS_STATE_DB_URL": f"sqlite:///{tmp_path / 'state.db'}"}


def instance_of(env: dict) -> DagsterInstance:
    return DagsterInstance.from_config(env["DAGSTER_HOME"])


def run_of(instance: DagsterInstance, run_id: str) -> DagsterRun:
    return instance.get_run_by_id(run_id)


def failure_message(instance: DagsterInstance, run_id: str) -> str:
    [event] = instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
    return event.message


def process_is_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


# ---------------------------------------------------------------- daemon-launched runs

def launch(env: dict) -> str:
    """Queue a full_sync run of GROUPS (tagged veritas/writer by its job), as the schedule would."""
    run_id = str(uuid.uuid4())
    subprocess.run([str(REPO / ".venv" / "bin" / "dagster"), "job", "launch", "-w", str(REPO / "workspace.yaml"),
                    "-j", "full_sync", "--run-id", run_id, "-o", ",".join(GROUPS), "--config-json", json.dumps({})],
                   cwd=env["DAGSTER_HOME"], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return run_id


def start_daemon(env: dict) -> subprocess.Popen:
    return subprocess.Popen([str(REPO / ".venv" / "bin" / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
                            cwd=env["DAGSTER_HOME"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def running_worker(instance: DagsterInstance, run_ids: list[str]) -> tuple[str, int]:
    """The first of the runs to execute, and its run worker's pid, once the run has recorded it."""
    def recorded():
        for run_id in run_ids:
            run = run_of(instance, run_id)
            if run.status == DagsterRunStatus.STARTED and run.tags.get(RUN_TAG) == run_id:
                return run_id, int(run.tags[PID_TAG])
        return None
    run_id, pid = wait_for(recorded, 120, "no writing run started")
    assert {run_of(instance, other).tags.get("veritas/writer") for other in run_ids} == {WRITER_TAG["veritas/writer"]}
    others = [run_of(instance, other).status for other in run_ids if other != run_id]
    assert others == [DagsterRunStatus.QUEUED] * len(others), "a second writing run started beside the first"
    # The recorded process is the one Dagster started for the run.
    started = [event.message for event in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)]
    assert f"Started process for run (pid: {pid})." in started, started
    return run_id, pid


def assert_started_soon_after(instance: DagsterInstance, queued: str, failed: str) -> None:
    started, ended = instance.get_run_record_by_id(queued).start_time, instance.get_run_record_by_id(failed).end_time
    assert ended <= started < ended + MONITORING_WINDOW_SECONDS, (ended, started)


def marked_failed_then_queued_ends(instance, dead: str, pair: list[str], when: str) -> tuple[float, str]:
    """(seconds until the dead run was marked failed, the other run of the pair), once that one has ended."""
    since = time.monotonic()
    wait_for(lambda: run_of(instance, dead).status == DagsterRunStatus.FAILURE, MONITORING_WINDOW_SECONDS,
             f"run {dead} was not marked failed {when}")
    seconds = time.monotonic() - since
    [queued] = [run_id for run_id in pair if run_id != dead]
    wait_for(lambda: run_of(instance, queued).is_finished, 180, f"the queued writing run {queued} did not end")
    return seconds, queued


def test_a_daemon_launched_writing_run_killed_with_kill_9_is_failed_and_the_queued_writer_runs(dagster_env: dict):
    instance = instance_of(dagster_env)

    # The run worker alone dies: the code server that started it notices.
    first_pair = [launch(dagster_env), launch(dagster_env)]
    daemon = start_daemon(dagster_env)
    try:
        killed, pid = running_worker(instance, first_pair)
        os.kill(pid, signal.SIGKILL)
        seconds, queued = marked_failed_then_queued_ends(instance, killed, first_pair, "after its process died")
        print(f"run worker killed: run marked failed in {seconds:.1f} s")
        assert run_of(instance, queued).status == DagsterRunStatus.SUCCESS
        assert_started_soon_after(instance, queued, killed)

        # The run worker, the daemon and its code server die together (a crash, a reboot): the next daemon's
        # crashed_runs sensor notices, from the pid the run recorded.
        # Both queued before a daemon dequeues either: with one running, the first could end before the
        # second is even launched.
        stop_daemon(daemon)
        second_pair = [launch(dagster_env), launch(dagster_env)]
        daemon = start_daemon(dagster_env)
        stranded, pid = running_worker(instance, second_pair)
        # The group first: the code server, which shares it, must not live to see its run worker die.
        os.killpg(daemon.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        daemon.wait(timeout=30)
        wait_for(lambda: process_is_gone(pid), 30, f"run worker {pid} still runs")
    finally:
        with contextlib.suppress(ProcessLookupError):  # after the crash, nothing of the daemon's is left
            stop_daemon(daemon)
    assert run_of(instance, stranded).status == DagsterRunStatus.STARTED, "nothing should have closed it yet"

    daemon = start_daemon(dagster_env)
    try:
        seconds, queued = marked_failed_then_queued_ends(instance, stranded, second_pair, "after the crash")
        print(f"daemon crashed: stranded run marked failed {seconds:.1f} s after the restart")
    finally:
        stop_daemon(daemon)
    assert run_of(instance, queued).status == DagsterRunStatus.SUCCESS
    assert_started_soon_after(instance, queued, stranded)
    message = failure_message(instance, stranded)
    assert f"Run left STARTED: pid {pid} on " in message and "crashed_runs sensor" in message, message


# ---------------------------------------------------------------- veritas-sync

class VeritasSync:
    """`veritas-sync --groups GROUPS` in a subprocess, its stderr read line by line as it comes."""

    def __init__(self, env: dict):
        # The summary (stdout) goes to a file: a pipe nobody reads while waiting for stderr could fill up.
        self.process = subprocess.Popen([sys.executable, "-m", "veritas_pipeline.cli", "--groups", *GROUPS],
                                        env=env, cwd=REPO, stdout=tempfile.TemporaryFile("w+"), stderr=subprocess.PIPE,
                                        text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.put(line.rstrip("\n"))

    def wait_for_line(self, text: str, seconds: float = 120) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.stderr.append(line)
            if text in line:
                return line
        pytest.fail(f"veritas-sync did not print {text!r} within {seconds:.0f} s; stderr so far: {self.stderr}")

    def finish(self, seconds: float = 120) -> int:
        """Wait for the process to end; returns its exit status, with every stderr line in self.stderr."""
        self.process.wait(timeout=seconds)
        self.reader.join(timeout=10)
        while not self.lines.empty():
            self.stderr.append(self.lines.get())
        return self.process.returncode


def cli_run_id(line: str) -> str:
    """The run id from veritas-sync's first progress line: "... veritas-sync run <id>: groups"."""
    return line.split("veritas-sync run ", 1)[1].split(":", 1)[0]


def slot_record(env: dict, run_id: str):
    with StateStore(env["VERITAS_STATE_DB_URL"]).engine.connect() as connection:
        [row] = connection.execute(writer_slots.select().where(writer_slots.c.run_id == run_id))
    return row


def slot_is_free(env: dict) -> bool:
    """The VeritasBot's writer slot is taken at once, without waiting: nobody holds it."""
    slot = WriterSlot(StateStore(env["VERITAS_STATE_DB_URL"]), env["VERITASBOT_URL"])
    waited: list[str] = []
    taker = threading.Thread(target=slot.acquire, args=("probe", waited.append), daemon=True)
    taker.start()
    taker.join(timeout=10)
    if taker.is_alive() or waited:
        return False
    slot.release()
    return True


def test_veritas_sync_stopped_with_sigterm_marks_its_run_failed_and_frees_the_slot(dagster_env: dict):
    sync = VeritasSync(dagster_env)
    run_id = cli_run_id(sync.wait_for_line("veritas-sync run "))
    sync.wait_for_line(SYNC_STARTED)
    sync.process.send_signal(signal.SIGTERM)
    returncode = sync.finish()

    assert returncode == 128 + signal.SIGTERM
    assert sync.stderr[-1] == \
        f"veritas-sync: interrupted by SIGTERM: run {run_id} marked FAILURE, the writer slot released"
    instance = instance_of(dagster_env)
    assert run_of(instance, run_id).status == DagsterRunStatus.FAILURE
    assert slot_record(dagster_env, run_id).released_at is not None, "the run did not release its writer slot"
    assert slot_is_free(dagster_env)
    logged = [event.message for event in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)]
    assert "veritas-sync was interrupted by SIGTERM" in logged


def test_a_veritas_sync_killed_with_kill_9_has_its_run_closed_by_the_next_one(dagster_env: dict):
    killed = VeritasSync(dagster_env)
    dead_run = cli_run_id(killed.wait_for_line("veritas-sync run "))
    killed.wait_for_line(SYNC_STARTED)
    killed.process.kill()
    assert killed.finish() == -signal.SIGKILL
    instance = instance_of(dagster_env)
    dead = run_of(instance, dead_run)
    assert dead.status == DagsterRunStatus.STARTED, "kill -9 leaves the run as it was"

    next_sync = VeritasSync(dagster_env)
    returncode = next_sync.finish(180)
    assert returncode == 0, next_sync.stderr
    closed = [line for line in next_sync.stderr if dead_run in line]
    assert len(closed) == 1 and closed[0].endswith(
        f"veritas-sync: run {dead_run} of an earlier veritas-sync was left STARTED ({describe(dead.tags)} is no "
        "longer running): marked it failed"), next_sync.stderr
    assert run_of(instance, dead_run).status == DagsterRunStatus.FAILURE
    assert "Marked failed by veritas-sync" in failure_message(instance, dead_run)
    new_run = cli_run_id(next(line for line in next_sync.stderr if "veritas-sync run " in line))
    assert run_of(instance, new_run).status == DagsterRunStatus.SUCCESS
    assert not any("waiting for the writer slot" in line for line in next_sync.stderr)
