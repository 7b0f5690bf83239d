"""Change-to-VeritasBot latency benchmark on the local stack: prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_changes.py [--seed S] [--scale N] [--samples K]

For the stack seeded at --scale N, after one full sync (the baseline), K times: rename a synced tenant in
production and time until VeritasBot shows the new name,
1. in process: the change sensor evaluated right after the change, then the run it requests executed in
   this process (the pipeline's own latency, split into sensor evaluation and run);
2. through Dagster: a temporary instance configured by the repository's dagster.yaml, the sensor started
   and `dagster-daemon run`; the clock runs from the production write to the new name read back from
   VeritasBot (sensor interval, run queue, run launch and the run itself).
Loopback only: the stack's servers are on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dagster import DagsterInstance, Definitions, build_sensor_context  # noqa: E402

from veritas_pipeline.assets import group_assets, orphans  # noqa: E402
from veritas_pipeline_tests.stack_helpers import stack_command, stop_daemon  # noqa: E402
from veritas_pipeline.engine.client import ClientSettings, NautobotClient  # noqa: E402
from veritas_pipeline.engine.registry import GROUPS  # noqa: E402
from veritas_pipeline.engine.state import StateStore  # noqa: E402
from veritas_pipeline.engine.sync import SyncEngine  # noqa: E402
from veritas_pipeline.jobs import incremental_sync_job  # noqa: E402
from veritas_pipeline.resources import NautobotResource, SyncResource  # noqa: E402
from veritas_pipeline.sensors import CHANGE_SENSOR_INTERVAL_SECONDS, production_changes  # noqa: E402

WORKSPACE = REPO / "workspace.yaml"
BIN = Path(sys.executable).parent


def stack(*args: str) -> dict:
    return stack_command(*args, quiet=True)


class Rest:
    def __init__(self, url: str, token: str):
        self.url = url.rstrip("/") + "/api"
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Token {token}", "Accept": "application/json"})

    def get(self, path: str, **params) -> dict:
        response = self.session.get(f"{self.url}/{path}/", params=params, timeout=60)
        response.raise_for_status()
        return response.json()

    def rename(self, path: str, name: str) -> None:
        self.session.patch(f"{self.url}/{path}/", json={"name": name}, timeout=60).raise_for_status()


def full_sync(env: dict, state_db: Path) -> float:
    production = NautobotClient(ClientSettings(env["PRODUCTION_NAUTOBOT_URL"], env["PRODUCTION_NAUTOBOT_TOKEN"]),
                                read_only=True, name="production")
    veritas = NautobotClient(ClientSettings(env["VERITASBOT_URL"], env["VERITASBOT_TOKEN"]), name="VeritasBot")
    sync = SyncEngine(production, veritas, state=StateStore(f"sqlite:///{state_db}"))
    started = time.monotonic()
    for group in GROUPS:
        sync.sync_group(group)
    return time.monotonic() - started


def sync_resource(env: dict, state_db: Path, settings: dict | None = None) -> SyncResource:
    """The in-process runs' resource; `settings` (e.g. read_concurrency, write_concurrency) go to the
    resources that have them, and are dropped where none does (a branch without them)."""
    settings = settings or {}
    instance = {name: value for name, value in settings.items() if name in NautobotResource.model_fields}
    sync = {name: value for name, value in settings.items() if name in SyncResource.model_fields}
    return SyncResource(
        production=NautobotResource(url=env["PRODUCTION_NAUTOBOT_URL"], token=env["PRODUCTION_NAUTOBOT_TOKEN"],
                                    **instance),
        veritas=NautobotResource(url=env["VERITASBOT_URL"], token=env["VERITASBOT_TOKEN"], **instance),
        state_db_url=f"sqlite:///{state_db}", **sync)


def synced_tenants(production: Rest, veritas: Rest, count: int) -> list[str]:
    """Tenants VeritasBot holds under their production id."""
    veritas_ids = {row["id"] for row in veritas.get("tenancy/tenants", limit=1000, depth=0)["results"]}
    ids = sorted(row["id"] for row in production.get("tenancy/tenants", limit=1000, depth=0)["results"]
                 if row["id"] in veritas_ids)
    return [ids[index % len(ids)] for index in range(count)]


def wait_for_name(veritas: Rest, tenant_id: str, name: str, timeout: float = 600.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if veritas.get(f"tenancy/tenants/{tenant_id}", depth=0)["name"] == name:
            return time.monotonic()
        time.sleep(0.2)
    raise TimeoutError(f"tenant {tenant_id} never showed {name!r} in VeritasBot")


def in_process(env: dict, state_db: Path, production: Rest, veritas: Rest, tenants: list[str],
               settings: dict | None = None) -> list[tuple]:
    resource = sync_resource(env, state_db, settings)
    defs = Definitions(assets=[*group_assets, orphans], jobs=[incremental_sync_job], resources={"sync": resource})
    job = defs.resolve_job_def(incremental_sync_job.name)
    with build_sensor_context(cursor=None, resources={"sync": resource}) as context:
        cursor = production_changes(context).cursor
    samples = []
    for tenant_id in tenants:
        name = f"bench {uuid.uuid4().hex[:8]}"
        started = time.monotonic()
        production.rename(f"tenancy/tenants/{tenant_id}", name)
        with build_sensor_context(cursor=cursor, resources={"sync": resource}) as context:
            result = production_changes(context)
        evaluated = time.monotonic()
        [request] = result.run_requests
        cursor = result.cursor
        run = job.execute_in_process(run_config=request.run_config, tags=request.tags,
                                     op_selection=[key.path[-1] for key in request.asset_selection],
                                     instance=DagsterInstance.ephemeral(), raise_on_error=False)
        ran = time.monotonic()
        assert run.success, "the incremental run failed"
        visible = wait_for_name(veritas, tenant_id, name)
        samples.append((evaluated - started, ran - evaluated, visible - started))
    return samples


def group_run(env: dict, state_db: Path, group: str) -> float:
    """The same kind of run without the sensor's scope: the whole group read and planned."""
    defs = Definitions(assets=[*group_assets, orphans], jobs=[incremental_sync_job],
                       resources={"sync": sync_resource(env, state_db)})
    started = time.monotonic()
    run = defs.resolve_job_def(incremental_sync_job.name).execute_in_process(
        op_selection=[group], instance=DagsterInstance.ephemeral(), raise_on_error=False)
    assert run.success, f"the {group} run failed"
    return time.monotonic() - started


def through_dagster(env: dict, state_db: Path, production: Rest, veritas: Rest,
                    tenants: list[str]) -> list[tuple[float, float, float, float]]:
    home = Path(tempfile.mkdtemp(prefix="bench-changes-"))
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    run_env = {**os.environ, **env, "DAGSTER_HOME": str(home), "VERITAS_STATE_DB_URL": f"sqlite:///{state_db}"}
    subprocess.run([str(BIN / "dagster"), "sensor", "start", production_changes.name, "-w", str(WORKSPACE)],
                   cwd=home, env=run_env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)], cwd=home, env=run_env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    instance = DagsterInstance.from_config(str(home))
    samples = []
    try:
        _wait_for_first_tick(instance)
        for tenant_id in tenants:
            name = f"bench {uuid.uuid4().hex[:8]}"
            started, started_at = time.monotonic(), time.time()
            production.rename(f"tenancy/tenants/{tenant_id}", name)
            visible = wait_for_name(veritas, tenant_id, name) - started
            _wait_for_idle(instance)
            [run] = [record for record in instance.get_run_records() if record.create_timestamp.timestamp() > started_at]
            # (change to run requested, requested to run started, run, change to visible)
            samples.append((run.create_timestamp.timestamp() - started_at, run.start_time - run.create_timestamp.timestamp(),
                            run.end_time - run.start_time, visible))
    finally:
        stop_daemon(daemon)
        shutil.rmtree(home, ignore_errors=True)
    return samples


def _wait_for_first_tick(instance: DagsterInstance, timeout: float = 300.0) -> None:
    """The sensor's first tick puts its cursor at the end of production's feed: changes count from there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = instance.all_instigator_state()
        if any(state.name == production_changes.name and state.instigator_data
               and getattr(state.instigator_data, "cursor", None) for state in states):
            return
        time.sleep(1)
    raise TimeoutError("the change sensor never ticked")


def _wait_for_idle(instance: DagsterInstance, timeout: float = 600.0) -> None:
    """Each sample starts with no run in flight, so samples do not queue behind each other."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(record.dagster_run.is_finished for record in instance.get_run_records()):
            return
        time.sleep(0.5)
    raise TimeoutError("a run never finished")


def spread(values: list[float]) -> str:
    return (f"median {statistics.median(values):6.2f} s  min {min(values):6.2f} s  max {max(values):6.2f} s  "
            f"({len(values)} samples)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", default=os.environ.get("VERITAS_STACK_SEED", "veritas"))
    parser.add_argument("--scale", type=int, default=0)
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    state = ["--seed", args.seed, "--scale", str(args.scale)]

    env = stack("reset", *state)
    production = Rest(env["PRODUCTION_NAUTOBOT_URL"], env["PRODUCTION_NAUTOBOT_ADMIN_TOKEN"])
    veritas = Rest(env["VERITASBOT_URL"], env["VERITASBOT_ADMIN_TOKEN"])
    counts = {path: production.get(path, limit=1)["count"] for path in ("tenancy/tenants", "dcim/locations", "dcim/racks")}
    with tempfile.TemporaryDirectory(prefix="bench-changes-state-") as scratch:
        state_db = Path(scratch) / "state.db"
        baseline = full_sync(env, state_db)
        tenants = synced_tenants(production, veritas, args.samples)
        local = in_process(env, state_db, production, veritas, tenants)
        whole_group = [group_run(env, state_db, "organization") for _sample in range(3)]
        daemon = through_dagster(env, state_db, production, veritas, tenants)

    print(f"\nveritas_pipeline change latency benchmark: seed {args.seed!r}, scale {args.scale}")
    print(f"  production holds {counts['tenancy/tenants']} tenants, {counts['dcim/locations']} locations, "
          f"{counts['dcim/racks']} racks; baseline full sync {baseline:.1f} s")
    print("  a tenant renamed in production, until VeritasBot shows the new name:")
    print(f"    in process, sensor evaluation      : {spread([s[0] for s in local])}")
    print(f"    in process, incremental run        : {spread([s[1] for s in local])}")
    print(f"    in process, change to visible      : {spread([s[2] for s in local])}")
    print(f"    for comparison, a whole-group run  : {spread(whole_group)}  (organization, in process)")
    print(f"    through dagster-daemon, with the sensor's minimum interval {CHANGE_SENSOR_INTERVAL_SECONDS} s:")
    print(f"      change to run requested          : {spread([s[0] for s in daemon])}")
    print(f"      requested to started (queue, launch): {spread([s[1] for s in daemon])}")
    print(f"      run (its own process)            : {spread([s[2] for s in daemon])}")
    print(f"      change to visible                : {spread([s[3] for s in daemon])}")
    stack("reset", *state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
