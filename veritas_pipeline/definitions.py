"""The Dagster code location of veritas_pipeline. Nothing here touches the network at import time.

Connection settings come from the environment: PRODUCTION_NAUTOBOT_URL/_TOKEN, VERITASBOT_URL/_TOKEN
and VERITAS_STATE_DB_URL (default: a SQLite file in DAGSTER_HOME), read when a run starts, through EnvVar;
VERITAS_VERIFY_TLS (default true), VERITAS_PUSHGATEWAY_URL (where runs push their metrics; unset: none),
VERITAS_READ_CONCURRENCY, VERITAS_WRITE_CONCURRENCY and VERITAS_WHOLE_READ_INTERVAL_HOURS (unset: the resources'
defaults); the schedules' crons, see `schedules.py`.
"""

from __future__ import annotations

import os
from typing import Callable

from dagster import Definitions, EnvVar, in_process_executor

from .assets import group_assets, orphans
from .checks import quality_checks
from .crashed_runs import crashed_runs
from .jobs import jobs
from .resources import NautobotResource, SyncResource
from .schedules import schedules
from .sensors import production_changes


def _flag(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() not in ("0", "false", "no", "off")


def _digits(text: str) -> int:
    if not text.isdigit():
        raise ValueError(text)
    return int(text)


def _setting(field: str, variable: str, parse: Callable[[str], float], minimum: float, kind: str) -> dict:
    """`field` from the environment variable when it is set, else the resource's default (which also checks
    its range). Not secret, so read at load time, as the pushgateway's URL is."""
    text = os.environ.get(variable, "").strip()
    if not text:
        return {}
    try:
        value = parse(text)
    except ValueError:
        value = None
    if value is None or not value >= minimum:
        raise ValueError(f"environment variable {variable}={text!r}: {field} must be {kind}")
    return {field: value}


def _int_setting(field: str, variable: str) -> dict:
    return _setting(field, variable, _digits, 1, "a whole number of at least 1")


def _hours_setting(field: str, variable: str) -> dict:
    return _setting(field, variable, float, 0, "a number of hours, 0 or more")


# Each instance's environment variables: <prefix>_URL and <prefix>_TOKEN.
INSTANCE_ENV_PREFIXES = {"production": "PRODUCTION_NAUTOBOT", "VeritasBot": "VERITASBOT"}


def _nautobot(prefix: str) -> NautobotResource:
    return NautobotResource(url=EnvVar(f"{prefix}_URL"), token=EnvVar(f"{prefix}_TOKEN"),
                            verify_tls=_flag("VERITAS_VERIFY_TLS", True),
                            **_int_setting("read_concurrency", "VERITAS_READ_CONCURRENCY"))


sync_resource = SyncResource(
    production=_nautobot(INSTANCE_ENV_PREFIXES["production"]),
    veritas=_nautobot(INSTANCE_ENV_PREFIXES["VeritasBot"]),
    # An EnvVar keeps the URL, and the password in it, out of the definitions the UI shows.
    state_db_url=EnvVar("VERITAS_STATE_DB_URL") if os.environ.get("VERITAS_STATE_DB_URL") else None,
    policy_file=os.environ.get("VERITAS_POLICY_FILE") or None,
    pushgateway_url=os.environ.get("VERITAS_PUSHGATEWAY_URL") or None,
    **_int_setting("write_concurrency", "VERITAS_WRITE_CONCURRENCY"),
    **_hours_setting("whole_read_interval_hours", "VERITAS_WHOLE_READ_INTERVAL_HOURS"),
)

defs = Definitions(
    assets=[*group_assets, orphans],
    asset_checks=quality_checks,
    jobs=jobs,
    schedules=schedules,
    sensors=[production_changes, crashed_runs],
    resources={"sync": sync_resource},
    # One process per run: the engine reads each model once and shares it across groups.
    executor=in_process_executor,
)
