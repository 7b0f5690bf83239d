"""The Dagster code location of veritas_pipeline. Nothing here touches the network at import time.

Connection settings come from the environment: PRODUCTION_NAUTOBOT_URL/_TOKEN, VERITASBOT_URL/_TOKEN
and VERITAS_STATE_DB_URL (default: a SQLite file in DAGSTER_HOME), read when a run starts, through EnvVar;
VERITAS_VERIFY_TLS (default true), VERITAS_PUSHGATEWAY_URL (where runs push their metrics; unset: none); the
schedules' crons, see `schedules.py`.
"""

from __future__ import annotations

import os

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


# Each instance's environment variables: <prefix>_URL and <prefix>_TOKEN.
INSTANCE_ENV_PREFIXES = {"production": "PRODUCTION_NAUTOBOT", "VeritasBot": "VERITASBOT"}


def _nautobot(prefix: str) -> NautobotResource:
    return NautobotResource(url=EnvVar(f"{prefix}_URL"), token=EnvVar(f"{prefix}_TOKEN"),
                            verify_tls=_flag("VERITAS_VERIFY_TLS", True))


sync_resource = SyncResource(
    production=_nautobot(INSTANCE_ENV_PREFIXES["production"]),
    veritas=_nautobot(INSTANCE_ENV_PREFIXES["VeritasBot"]),
    # An EnvVar keeps the URL, and the password in it, out of the definitions the UI shows.
    state_db_url=EnvVar("VERITAS_STATE_DB_URL") if os.environ.get("VERITAS_STATE_DB_URL") else None,
    policy_file=os.environ.get("VERITAS_POLICY_FILE") or None,
    pushgateway_url=os.environ.get("VERITAS_PUSHGATEWAY_URL") or None,
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
