"""Fixtures for tests against the live local stack (scripts/stack up), and small independent helpers.

The helpers here talk to Nautobot with plain `requests`, not through the engine under test, so that a
test's view of both instances does not share the engine's bugs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import requests
from dagster import DagsterInstance, materialize

from .stack_helpers import REPO, read_stack_env, stack_command

SEED = os.environ.get("VERITAS_STACK_SEED", "veritas")
SCALE = os.environ.get("VERITAS_STACK_SCALE", "0")


class Api:
    """A minimal REST client for assertions and for changing production behind the sync's back."""

    def __init__(self, url: str, token: str):
        self.url = url.rstrip("/") + "/api"
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Token {token}", "Accept": "application/json"})

    def get(self, path: str, **params) -> dict:
        response = self.session.get(f"{self.url}/{path.strip('/')}/", params=params, timeout=60)
        response.raise_for_status()
        return response.json()

    def all(self, path: str, **params) -> list[dict]:
        params = {"limit": 1000, "depth": 0, "exclude_m2m": "false", **params}
        page = self.get(path, **params)
        rows = list(page["results"])
        while page.get("next"):
            response = self.session.get(page["next"], timeout=60)
            response.raise_for_status()
            page = response.json()
            rows.extend(page["results"])
        return rows

    def count(self, path: str, **params) -> int:
        return self.get(path, limit=1, **params)["count"]

    def write(self, method: str, path: str, body) -> requests.Response:
        return self.session.request(method, f"{self.url}/{path.strip('/')}/", json=body, timeout=120)


@dataclass(frozen=True)
class StackInfo:
    env: dict

    @property
    def production(self) -> Api:
        """Production with the admin token: tests change production through it."""
        return Api(self.env["PRODUCTION_NAUTOBOT_URL"], self.env["PRODUCTION_NAUTOBOT_ADMIN_TOKEN"])

    @property
    def veritas(self) -> Api:
        return Api(self.env["VERITASBOT_URL"], self.env["VERITASBOT_ADMIN_TOKEN"])


@pytest.fixture(scope="session")
def stack() -> StackInfo:
    stack_command("up", "--seed", SEED, "--scale", SCALE)
    return StackInfo(read_stack_env())


def reset_stack() -> StackInfo:
    """Both instances back in their freshly seeded state (a database clone: seconds)."""
    return StackInfo(stack_command("reset", "--seed", SEED, "--scale", SCALE, quiet=True))


@pytest.fixture(scope="module")
def fresh_stack(stack: StackInfo) -> StackInfo:
    return reset_stack()


BASELINE = "baseline"  # the database copies of the baseline sync: baseline_production, baseline_veritas


@dataclass
class Baseline:
    """The stack as one full sync of a freshly seeded stack left it."""

    stack: StackInfo
    state_db: Path  # the module's own copy of the sync's state database
    first: object  # the sync's run result
    seeded_devices: list[dict]  # VeritasBot's devices (discovered data the sync never writes) before the sync
    copies: str = BASELINE  # `stack restore` puts both instances back to right after the sync


@dataclass
class _BaselineSync:
    state_db: Path
    first: object
    seeded_devices: list[dict]
    on_stack: bool  # nothing has changed the stack since the sync


@pytest.fixture(scope="session")
def _baseline_sync(stack: StackInfo, tmp_path_factory) -> _BaselineSync:
    """One full sync (every group, then the orphans step) of a freshly seeded stack, once per session; both
    databases are copied right after it."""
    from veritas_pipeline.engine.registry import GROUPS

    seeded_devices = reset_stack().veritas.all("dcim/devices")
    state_db = tmp_path_factory.mktemp("baseline") / "state.db"
    first = run_sync(state_db, groups=[*GROUPS, "orphans"])
    assert first.success
    stack_command("backup", BASELINE)
    return _BaselineSync(state_db, first, seeded_devices, on_stack=True)


@pytest.fixture(scope="module")
def synced_baseline(_baseline_sync: _BaselineSync, tmp_path_factory) -> Baseline:
    """Both instances as the baseline sync left them (restored from their copies: seconds, where syncing
    again takes minutes), with a copy of its state database for this module alone."""
    if _baseline_sync.on_stack:
        _baseline_sync.on_stack = False  # this module is the first to use, and change, the stack since
    else:
        stack_command("restore", BASELINE)
    state_db = tmp_path_factory.mktemp("synced") / "state.db"
    shutil.copy(_baseline_sync.state_db, state_db)
    return Baseline(StackInfo(read_stack_env()), state_db, _baseline_sync.first, _baseline_sync.seeded_devices)


def production_sql(sql: str) -> str:
    """Read or change production's database directly, past the API's validation (as old data would be)."""
    url = read_stack_env()["VERITAS_STACK_PG_URL"] + "/production"
    return subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qtAc", sql], check=True,
                          capture_output=True, text=True).stdout.strip()


def veritas_sql(sql: str) -> None:
    """Change VeritasBot's database directly, past the API's validation (breakage the API would refuse)."""
    url = read_stack_env()["VERITAS_STACK_PG_URL"] + "/veritas"
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True)


def create_postgres_database(name: str) -> str:
    """A new, empty database on the stack's PostgreSQL, replacing any of that name; returns its URL."""
    admin = read_stack_env()["VERITAS_STACK_PG_URL"] + "/postgres"
    for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
        subprocess.run(["psql", admin, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True)
    return f"{read_stack_env()['VERITAS_STACK_PG_URL']}/{name}"


def drop_postgres_database(name: str) -> None:
    admin = read_stack_env()["VERITAS_STACK_PG_URL"] + "/postgres"
    subprocess.run(["psql", admin, "-v", "ON_ERROR_STOP=1", "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
                   check=True)


def postgres_dagster_home(home: Path, database: str) -> dict[str, str]:
    """Make `home` a DAGSTER_HOME configured by deploy/dagster.yaml, on a new database of the stack's
    PostgreSQL; returns the environment its processes need."""
    from sqlalchemy.engine import make_url

    url = make_url(create_postgres_database(database))
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text((REPO / "deploy" / "dagster.yaml").read_text())
    return {"DAGSTER_HOME": str(home), "DAGSTER_PG_HOST": url.host, "DAGSTER_PG_PORT": str(url.port),
            "DAGSTER_PG_DB": database, "DAGSTER_PG_USERNAME": url.username, "DAGSTER_PG_PASSWORD": url.password}


@dataclass(frozen=True)
class Deployment:
    """The production deployment's storage on the stack: a Dagster instance configured by deploy/dagster.yaml
    and a state database, both on PostgreSQL. `env` is what the deployment's processes need."""
    instance: DagsterInstance
    state_url: str
    env: dict


@contextlib.contextmanager
def postgres_deployment(home: Path, suffix: str) -> Iterator[Deployment]:
    storage, state = f"dagster_storage_{suffix}", f"veritas_state_{suffix}"
    env = {**postgres_dagster_home(home, storage), "VERITAS_STATE_DB_URL": create_postgres_database(state)}
    # deploy/dagster.yaml reads its connection from the environment when the instance loads.
    connection = {key: value for key, value in env.items() if key.startswith("DAGSTER_PG_")}
    saved = {key: os.environ.get(key) for key in connection}
    os.environ.update(connection)
    try:
        with DagsterInstance.from_config(str(home)) as instance:
            yield Deployment(instance, env["VERITAS_STATE_DB_URL"], env)
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
        drop_postgres_database(storage)
        drop_postgres_database(state)


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request, tmp_path: Path):
    """An empty state database: a SQLite file, or a new database on the local stack's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    request.getfixturevalue("stack")
    name = f"veritas_state_{uuid.uuid4().hex[:8]}"
    yield create_postgres_database(name)
    drop_postgres_database(name)


def sync_resource(state_db: Path | str, *, production: dict | None = None, veritas: dict | None = None,
                  **overrides):
    """A SyncResource on the live stack, with the pipeline's read-only production token. The state database
    is a SQLite file (a path) or any SQLAlchemy URL (a string). `production` and `veritas` override settings of
    either instance (a proxy's url, a page size, a retry budget)."""
    from veritas_pipeline.resources import NautobotResource, SyncResource

    env = read_stack_env()
    return SyncResource(
        production=NautobotResource(**{"url": env["PRODUCTION_NAUTOBOT_URL"], "token": env["PRODUCTION_NAUTOBOT_TOKEN"],
                                       **(production or {})}),
        veritas=NautobotResource(**{"url": env["VERITASBOT_URL"], "token": env["VERITASBOT_TOKEN"], **(veritas or {})}),
        state_db_url=state_db if isinstance(state_db, str) else f"sqlite:///{state_db}",
        **overrides,
    )


def run_sync(state_db: Path | str, groups: list[str] | None = None, dry_run: bool = False,
             instance: DagsterInstance | None = None, **overrides):
    """Materialize sync groups (and, when named, the `orphans` asset) through Dagster, as an operator
    would, recorded in `instance` (default: an ephemeral one); returns the run result."""
    from veritas_pipeline.assets import group_assets, orphans
    from veritas_pipeline.engine.registry import GROUPS
    from veritas_pipeline.jobs import dry_run_config

    groups = groups or list(GROUPS)
    return materialize(
        [*group_assets, orphans],
        selection=groups,
        resources={"sync": sync_resource(state_db, **overrides)},
        run_config=dry_run_config(groups) if dry_run else None,
        instance=instance or DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def pipeline_job(state_db: Path | str, name: str, **overrides):
    """One of the code location's jobs, bound to the live stack and a test state database."""
    from dagster import Definitions

    from veritas_pipeline.definitions import defs

    return Definitions(assets=defs.assets, asset_checks=defs.asset_checks, jobs=defs.jobs,
                       resources={"sync": sync_resource(state_db, **overrides)}).resolve_job_def(name)


def run_full_sync(state_db: Path | str, groups: list[str] | None = None, **overrides):
    """The full_sync job (sync groups and their data-quality checks in one run), optionally some groups."""
    from dagster import AssetKey

    return pipeline_job(state_db, "full_sync", **overrides).execute_in_process(
        instance=DagsterInstance.ephemeral(), raise_on_error=False,
        asset_selection=[AssetKey(group) for group in groups] if groups else None)


def run_checks(state_db: Path | str, groups: list[str] | None = None, **overrides):
    """The data_quality job (the checks on their own, a fresh read, no sync), optionally some groups'."""
    from veritas_pipeline.checks import QUALITY_CHECK_KEYS

    job = pipeline_job(state_db, "data_quality", **overrides)
    if groups:
        job = job.get_subset(asset_check_selection={key for key in QUALITY_CHECK_KEYS
                                                    if key.asset_key.path[0] in groups})
    return job.execute_in_process(instance=DagsterInstance.ephemeral(), raise_on_error=False)


def check_results(result) -> dict[tuple[str, str], object]:
    """(group, check name) -> the run's evaluation of that check."""
    return {(evaluation.asset_key.path[0], evaluation.check_name): evaluation
            for evaluation in result.get_asset_check_evaluations()}


def group_metadata(result, group: str) -> dict:
    materializations = result.asset_materializations_for_node(group)
    assert materializations, f"group {group} did not materialize"
    return {key: value.value for key, value in materializations[-1].metadata.items()}


def table_rows(metadata: dict, key: str) -> list[dict]:
    """The rows of a table in a materialization's metadata (group_metadata's values); none if absent."""
    value = metadata.get(key)
    value = getattr(value, "value", value)  # an event's MetadataValue, or its value already
    return [dict(record.data) for record in value.records] if value is not None else []


def total(result, counter: str) -> int:
    from veritas_pipeline.engine.registry import GROUPS

    return sum(group_metadata(result, group)[counter] for group in GROUPS
               if result.asset_materializations_for_node(group))
