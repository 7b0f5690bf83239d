"""Schedules: the full sync on a cron (nightly by default) and the data-quality checks alone, more often.

The crons are read from the environment when the code location loads: VERITAS_FULL_SYNC_CRON (default
"0 2 * * *", 02:00 daily), VERITAS_CHECKS_CRON (default "30 * * * *", hourly) and VERITAS_SCHEDULE_TIMEZONE
(default UTC). The full sync writes, so it starts stopped; the checks only read, so they start running.
"""

from __future__ import annotations

import os

from dagster import DefaultScheduleStatus, ScheduleDefinition

from .jobs import data_quality_job, full_sync_job

DEFAULT_FULL_SYNC_CRON = "0 2 * * *"
DEFAULT_CHECKS_CRON = "30 * * * *"
TIMEZONE = os.environ.get("VERITAS_SCHEDULE_TIMEZONE", "UTC")

full_sync_schedule = ScheduleDefinition(
    name="full_sync_schedule",
    job=full_sync_job,
    cron_schedule=os.environ.get("VERITAS_FULL_SYNC_CRON", DEFAULT_FULL_SYNC_CRON),
    execution_timezone=TIMEZONE,
    default_status=DefaultScheduleStatus.STOPPED,
    tags={"veritas/trigger": "schedule"},
    description="Full sync of every group: the baseline that incremental runs build on.",
)

data_quality_schedule = ScheduleDefinition(
    name="data_quality_schedule",
    job=data_quality_job,
    cron_schedule=os.environ.get("VERITAS_CHECKS_CRON", DEFAULT_CHECKS_CRON),
    execution_timezone=TIMEZONE,
    default_status=DefaultScheduleStatus.RUNNING,
    tags={"veritas/trigger": "schedule"},
    description="The data-quality asset checks on their own, between full syncs (which run them too).",
)

schedules = [full_sync_schedule, data_quality_schedule]
