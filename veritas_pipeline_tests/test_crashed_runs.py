"""Which STARTED runs count as left behind by a dead process, on an ephemeral Dagster instance with real
processes' pids; no Nautobot involved (the crashes themselves are in test_crashed_runs_live.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus, DefaultSensorStatus

from veritas_pipeline.crashed_runs import CRASHED_RUNS_INTERVAL_SECONDS, fail_runs_of_dead_processes
from veritas_pipeline.definitions import defs
from veritas_pipeline.engine.run_process import HOST_TAG, PID_TAG, STARTED_TAG, this_process


def started_run(instance: DagsterInstance, tags_for=None, **changes) -> str:
    """A STARTED run whose tags name this test's process (or, with `tags_for`, as recorded for that run),
    with `changes` applied to them."""
    run_id = str(uuid.uuid4())
    tags = {**this_process(tags_for or run_id), **changes}
    instance.add_run(DagsterRun(job_name="full_sync", run_id=run_id, status=DagsterRunStatus.STARTED, tags=tags))
    return run_id


def dead_pid() -> str:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: no process has this pid now
    return str(child.pid)


def status(instance: DagsterInstance, run_id: str) -> DagsterRunStatus:
    return instance.get_run_by_id(run_id).status


def test_a_run_whose_process_died_is_marked_failed_saying_why():
    instance = DagsterInstance.ephemeral()
    pid = dead_pid()
    run_id = started_run(instance, **{PID_TAG: pid})

    [(failed, reason)] = fail_runs_of_dead_processes(instance, closed_by="this test")
    assert failed == run_id and reason.endswith(f"pid {pid} on {this_process(run_id)[HOST_TAG]} is no longer running")
    assert status(instance, run_id) == DagsterRunStatus.FAILURE
    [event] = instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
    assert f"Run left STARTED: pid {pid} on " in event.message and "Marked failed by this test" in event.message


def test_a_pid_now_held_by_another_process_counts_as_dead():
    instance = DagsterInstance.ephemeral()
    run_id = started_run(instance, **{STARTED_TAG: "1"})  # this process's pid, but another start time
    [(failed, reason)] = fail_runs_of_dead_processes(instance)
    assert failed == run_id and "now belongs to another process" in reason


def test_a_killed_process_its_parent_has_not_reaped_yet_counts_as_dead():
    instance = DagsterInstance.ephemeral()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        child.kill()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, and left a zombie
        started = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        run_id = started_run(instance, **{PID_TAG: str(child.pid), STARTED_TAG: started})
        [(failed, reason)] = fail_runs_of_dead_processes(instance)
        assert failed == run_id and "zombie" in reason, reason
    finally:
        child.wait()


def test_runs_of_live_processes_of_other_hosts_and_of_copied_tags_are_left_alone():
    instance = DagsterInstance.ephemeral()
    alive = started_run(instance)
    elsewhere = started_run(instance, **{HOST_TAG: "another-host", PID_TAG: dead_pid()})
    # A retry starts with its parent's tags: they name the parent's dead process, not the retry's.
    retry = started_run(instance, tags_for=str(uuid.uuid4()), **{PID_TAG: dead_pid()})
    assert fail_runs_of_dead_processes(instance) == []
    assert {status(instance, run_id) for run_id in (alive, elsewhere, retry)} == {DagsterRunStatus.STARTED}


def test_only_runs_with_the_given_tags_are_considered():
    instance = DagsterInstance.ephemeral()
    pid = dead_pid()
    scheduled = started_run(instance, **{PID_TAG: pid})
    cli = started_run(instance, **{PID_TAG: pid, "veritas/trigger": "cli"})
    assert [run_id for run_id, _ in fail_runs_of_dead_processes(instance, tags={"veritas/trigger": "cli"})] == [cli]
    assert status(instance, scheduled) == DagsterRunStatus.STARTED


def test_the_crashed_runs_sensor_runs_by_default_and_often():
    sensor = defs.resolve_sensor_def("crashed_runs")
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == CRASHED_RUNS_INTERVAL_SECONDS <= 60
