"""The schedules and the change sensor load with the expected crons, targets, selections and default
statuses, and every job that can write carries the writer tag that dagster.yaml queues one run at a time
(test_deployment.py checks dagster.yaml). No Nautobot involved."""

from __future__ import annotations

import importlib
from datetime import datetime, timezone

from dagster import AssetKey, DefaultScheduleStatus, DefaultSensorStatus, build_schedule_context

from veritas_pipeline import schedules
from veritas_pipeline.checks import QUALITY_CHECK_KEYS
from veritas_pipeline.definitions import defs
from veritas_pipeline.engine.registry import GROUPS
from veritas_pipeline.jobs import WRITER_TAG, all_groups


def test_the_full_sync_runs_nightly_every_group_and_starts_stopped():
    schedule = defs.resolve_schedule_def("full_sync_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 2 * * *", "UTC")
    assert schedule.default_status == DefaultScheduleStatus.STOPPED
    job = defs.resolve_job_def(schedule.job_name)
    assert job.name == "full_sync" and WRITER_TAG.items() <= job.tags.items()
    assert {AssetKey(group) for group in GROUPS} <= all_groups.resolve(defs.resolve_asset_graph())

    tick = build_schedule_context(scheduled_execution_time=datetime(2026, 1, 2, 2, 0, tzinfo=timezone.utc))
    [request] = schedule.evaluate_tick(tick).run_requests
    assert request.tags["veritas/trigger"] == "schedule"


def test_the_data_quality_checks_run_alone_hourly_and_start_running():
    schedule = defs.resolve_schedule_def("data_quality_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("30 * * * *", "UTC")
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    job = defs.resolve_job_def(schedule.job_name)
    assert job.asset_layer.selected_asset_keys == set(), "a checks run must not materialize (write) anything"
    assert {node.name for node in job.nodes} == {f"{group}_data_quality" for group in GROUPS}
    assert set(job.asset_layer.asset_graph.asset_check_keys) == set(QUALITY_CHECK_KEYS)
    assert "veritas/writer" not in job.tags


def test_the_crons_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("VERITAS_FULL_SYNC_CRON", "15 3 * * 0")
    monkeypatch.setenv("VERITAS_CHECKS_CRON", "*/10 * * * *")
    monkeypatch.setenv("VERITAS_SCHEDULE_TIMEZONE", "Europe/Paris")
    try:
        reloaded = importlib.reload(schedules)
        assert reloaded.full_sync_schedule.cron_schedule == "15 3 * * 0"
        assert reloaded.data_quality_schedule.cron_schedule == "*/10 * * * *"
        assert reloaded.full_sync_schedule.execution_timezone == "Europe/Paris"
    finally:
        monkeypatch.undo()
        importlib.reload(schedules)


def test_the_change_sensor_starts_stopped_and_targets_the_writing_incremental_job():
    sensor = defs.resolve_sensor_def("production_changes")
    assert sensor.default_status == DefaultSensorStatus.STOPPED
    assert sensor.minimum_interval_seconds <= 30, "a production change should reach VeritasBot in seconds"
    job = defs.resolve_job_def(sensor.job_name)
    assert job.name == "incremental_sync" and WRITER_TAG.items() <= job.tags.items()


def test_the_change_sensor_ticks_on_every_loop_of_the_sensor_daemon():
    from dagster._daemon.sensor import MIN_INTERVAL_LOOP_TIME

    # Its last tick started after the loop did: an interval as long as the loop would skip every other one.
    assert defs.resolve_sensor_def("production_changes").minimum_interval_seconds <= MIN_INTERVAL_LOOP_TIME - 2


def test_every_job_that_materializes_a_sync_group_carries_the_writer_tag_unless_it_is_a_dry_run():
    groups = {AssetKey(group) for group in GROUPS}
    for job in defs.resolve_all_job_defs():
        if job.name.startswith("__") or not job.asset_layer.selected_asset_keys & groups:
            continue
        ops = (job.run_config or {}).get("ops", {})
        dry_run = bool(ops) and all(op["config"].get("dry_run") for op in ops.values())
        assert dry_run or WRITER_TAG.items() <= job.tags.items(), job.name
