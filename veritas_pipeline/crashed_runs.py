"""Runs whose process died are marked failed, so that none stays STARTED and holds the writer queue.

Every run records the process that executes it in its tags (`record_run_process`, from the sync resource
when the run starts; `veritas-sync` from the moment it creates its run). `fail_runs_of_dead_processes`
marks failed each STARTED run whose recorded process is known to be dead (`engine/run_process.py`): the
`crashed_runs` sensor does it every CRASHED_RUNS_INTERVAL_SECONDS for every run, and `veritas-sync` for its
own runs before it starts. The sensor is evaluated in the code location's server, the process that starts
each run's process with the DefaultRunLauncher, so it is on the host where the runs' processes are.
"""

from __future__ import annotations

from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from .engine.run_process import gone, this_process

CRASHED_RUNS_INTERVAL_SECONDS = 15


def record_run_process(instance: DagsterInstance, run: DagsterRun) -> None:
    recorded = this_process(run.run_id)
    if any(run.tags.get(key) != value for key, value in recorded.items()):
        instance.add_run_tags(run.run_id, recorded)


def fail_runs_of_dead_processes(instance: DagsterInstance, tags: dict[str, str] | None = None,
                                closed_by: str = "the crashed_runs sensor") -> list[tuple[str, str]]:
    """Mark failed every STARTED run (with `tags`, when given) whose recorded process is dead here;
    returns (run id, why) for each."""
    failed = []
    for run in instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED], tags=tags or {})):
        reason = gone(run.tags, run.run_id)
        if reason is None:
            continue
        current = instance.get_run_by_id(run.run_id)  # it may have ended since it was listed
        if current is None or current.status != DagsterRunStatus.STARTED:
            continue
        instance.report_run_failed(current, f"Run left STARTED: {reason}. Marked failed by {closed_by}, so that "
                                            "it holds no place in the run queue.")
        failed.append((run.run_id, reason))
    return failed


@sensor(
    name="crashed_runs",
    minimum_interval_seconds=CRASHED_RUNS_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Marks failed the STARTED runs whose process died (kill -9, out of memory, a crashed daemon or "
                "code server), so that no dead run holds the writing runs' place in the queue.",
)
def crashed_runs(context: SensorEvaluationContext) -> SkipReason:
    failed = fail_runs_of_dead_processes(context.instance)
    for run_id, reason in failed:
        context.log.warning(f"run {run_id} marked failed: {reason}")
    return SkipReason(f"{len(failed)} runs of dead processes marked failed" if failed else "no run of a dead process")
