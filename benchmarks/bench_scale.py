"""Scale benchmark on the local stack (issue 11): prints figures and goals, asserts nothing.

    .venv/bin/python benchmarks/bench_scale.py [--seed S] [--scale N] [--discovery-scale D] [--samples K]
                                               [--only full,replay,noop,incremental,daemon]

For one stack state (production seeded at --scale N, VeritasBot's discovery state at --discovery-scale D,
passed to `scripts/stack reset` only when given), measured side by side in one run, each part printed as
soon as it is measured and a summary of the goals at the end:
1. full: `veritas-sync` (the production CLI, a subprocess) into the freshly reset VeritasBot: time, objects
   written, objects per second, and the process's peak RSS (ru_maxrss of os.wait4 on the child).
   VeritasBot is reached through a recording loopback proxy (fault_proxy.FaultProxy, recording, no
   faults) that keeps every write body in the order it arrived: one full sync gives the time, the RSS and
   the writes for the replay. (Collecting GroupReport.writes in process, as bench_sync.py does, would
   need a second full sync for the RSS, too slow at 100k.)
2. replay: the writes VeritasBot accepted, sent again into a freshly reset VeritasBot as they were
   recorded (same method, endpoint, bulk body, order), one request at a time, through a proxy of the same
   kind, so both pay the same hop; the ratio full sync / replay.
3. noop: `veritas-sync` again right after the full sync: time, writes (must be 0), ratio to the full sync;
   it plans from the row snapshot the full sync saved. Then once more reading both instances whole
   (VERITAS_WHOLE_READ_INTERVAL_HOURS=0, as a full sync does once its last whole read is older than that
   interval): time and writes, for comparison.
4. incremental: a tenant renamed in production, then the change sensor and the run it requests, in
   process (bench_changes.in_process) with counting proxies in front of both instances: requests and rows
   read (objects in GET answers) from each instance, per endpoint. The counts include the sensor's two
   evaluations (its first tick and the one that sees the change).
5. daemon: bench_changes.through_dagster, K samples of change to visible: p50 and p95.
The full sync always runs: every other part starts from the state it leaves. The replay runs last, as it
resets VeritasBot. --read-concurrency and --write-concurrency go to every run: the in-process runs'
resources (bench_changes.sync_resource), and `veritas-sync` and the daemon's runs through
VERITAS_READ_CONCURRENCY and VERITAS_WRITE_CONCURRENCY.
Loopback only: the stack's servers and the proxies are on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import requests

import bench_changes
from bench_changes import Rest, synced_tenants
from bench_sync import stack

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from veritas_pipeline_tests.fault_proxy import WRITE_METHODS, FaultProxy  # noqa: E402

PARTS = ("full", "replay", "noop", "incremental", "daemon")
VERITAS_SYNC = Path(sys.executable).parent / "veritas-sync"
RSS_GOAL_MB = 1024
REPLAY_RATIO_GOAL = 0.8
NOOP_RATIO_GOAL = 0.05
INCREMENTAL_ROWS_GOAL = 300
DAEMON_P50_GOAL, DAEMON_P95_GOAL = 10.0, 20.0
UUID = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?=/)")


class Goals:
    """The summary table: each goal with its measured figure, MET or MISSED."""

    def __init__(self):
        self.rows: list[tuple[str, str, str, bool]] = []

    def check(self, what: str, figure: str, goal: str, met: bool) -> None:
        self.rows.append((what, figure, goal, met))

    def print(self) -> None:
        print(f"\n{'summary':<44}{'measured':>16}  {'goal':<16}")
        for what, figure, goal, met in self.rows:
            print(f"{what:<44}{figure:>16}  {goal:<16}{'MET' if met else 'MISSED'}")


def report(line: str) -> None:
    print(line, flush=True)


def objects_in(body: bytes) -> int:
    document = json.loads(body) if body else None
    return len(document) if isinstance(document, list) else 1


def endpoint(path: str) -> str:
    """The endpoint of a request path: no query, ids shown as {id}."""
    return UUID.sub("/{id}", path.split("?", 1)[0])


@contextmanager
def sync_home(env: dict):
    """A Dagster home with the repository's dagster.yaml and a state database, for veritas-sync."""
    home = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    try:
        yield home, home / "veritas_state.db"
    finally:
        shutil.rmtree(home, ignore_errors=True)


def veritas_sync(env: dict, home: Path, veritas_url: str, **settings: str) -> tuple[float, float]:
    """One `veritas-sync` of every group, VeritasBot at `veritas_url`, `settings` as environment variables:
    (seconds, peak RSS in MB)."""
    run_env = {**os.environ, **env, "VERITASBOT_URL": veritas_url, "DAGSTER_HOME": str(home),
               "VERITAS_STATE_DB_URL": f"sqlite:///{home / 'veritas_state.db'}", **settings}
    with open(home / "veritas-sync.out", "w") as out, open(home / "veritas-sync.err", "w") as err:
        started = time.monotonic()
        child = subprocess.Popen([str(VERITAS_SYNC), "--log-level", "WARNING"], env=run_env, cwd=home,
                                 stdout=out, stderr=err)
        _pid, status, usage = os.wait4(child.pid, 0)
        seconds = time.monotonic() - started
    # The per-group summary (counts and seconds by phase): where a run's time went.
    report("    " + (home / "veritas-sync.out").read_text().rstrip().replace("\n", "\n    "))
    if os.waitstatus_to_exitcode(status) != 0:
        report(f"  veritas-sync exited {os.waitstatus_to_exitcode(status)}: "
               f"{(home / 'veritas-sync.err').read_text()[-600:]}{(home / 'veritas-sync.out').read_text()[-1500:]}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def writes_of(proxy: FaultProxy) -> list:
    """The requests that change VeritasBot: a GraphQL query is a POST but only reads."""
    return [request for request in proxy.requests
            if request.method in WRITE_METHODS and not request.path.startswith("/api/graphql/")]


def replay(env: dict, writes: list) -> tuple[float, int]:
    """The recorded writes VeritasBot accepted, sent again in order, one request at a time, through a proxy
    of the same kind as the sync's: (seconds, requests refused). A write the server never answered counts as
    accepted: on the stack that is the HTTP router giving up after 60 s while the request goes on and commits."""
    accepted = [write for write in writes if write.outcome == "upstream_error"
                or (write.status is not None and 200 <= write.status < 300)]
    session = requests.Session()
    session.headers.update({"Authorization": f"Token {env['VERITASBOT_TOKEN']}",
                            "Accept": "application/json; version=3.2", "Content-Type": "application/json"})
    refused = 0
    with FaultProxy(env["VERITASBOT_URL"], recording=True) as proxy:
        started = time.monotonic()
        for write in accepted:
            refused += not session.request(write.method, proxy.url + write.path, data=write.body, timeout=600).ok
        return time.monotonic() - started, refused


def reads_by_endpoint(proxy: FaultProxy) -> dict[str, tuple[int, int]]:
    """endpoint -> (requests, rows returned), the busiest first."""
    requests_per, rows_per = Counter(), Counter()
    for request in proxy.requests:
        requests_per[endpoint(request.path)] += 1
        rows_per[endpoint(request.path)] += request.rows
    return {name: (count, rows_per[name]) for name, count in requests_per.most_common()}


def incremental(env: dict, state_db: Path, production: Rest, veritas: Rest, tenant: str,
                settings: dict) -> tuple[float, dict]:
    """bench_changes.in_process for one rename, both instances behind counting proxies."""
    with FaultProxy(env["PRODUCTION_NAUTOBOT_URL"], recording=True) as production_proxy, \
            FaultProxy(env["VERITASBOT_URL"], recording=True) as veritas_proxy:
        proxied = {**env, "PRODUCTION_NAUTOBOT_URL": production_proxy.url, "VERITASBOT_URL": veritas_proxy.url}
        [(_evaluation, _run, visible)] = bench_changes.in_process(proxied, state_db, production, veritas, [tenant],
                                                                  settings)
        return visible, {"production": reads_by_endpoint(production_proxy),
                         "VeritasBot": reads_by_endpoint(veritas_proxy)}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", default=os.environ.get("VERITAS_STACK_SEED", "veritas"))
    parser.add_argument("--scale", type=int, default=0)
    parser.add_argument("--discovery-scale", type=int, help="VeritasBot's discovered devices (default: as held)")
    parser.add_argument("--samples", type=int, default=5, help="daemon samples")
    parser.add_argument("--only", type=lambda text: text.split(","), default=list(PARTS),
                        help=f"comma-separated parts: {','.join(PARTS)} (the full sync always runs)")
    parser.add_argument("--read-concurrency", type=int, help="GETs in flight per instance")
    parser.add_argument("--write-concurrency", type=int, help="writes in flight to VeritasBot")
    args = parser.parse_args()
    unknown = set(args.only) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    state = ["--seed", args.seed, "--scale", str(args.scale)]
    if args.discovery_scale is not None:
        state += ["--discovery-scale", str(args.discovery_scale)]
    settings = {name: value for name, value in (("read_concurrency", args.read_concurrency),
                                                ("write_concurrency", args.write_concurrency)) if value is not None}
    for variable, value in (("VERITAS_READ_CONCURRENCY", args.read_concurrency),
                            ("VERITAS_WRITE_CONCURRENCY", args.write_concurrency)):
        if value is not None:
            os.environ[variable] = str(value)  # veritas-sync and the daemon inherit the environment
    goals = Goals()
    started = time.monotonic()

    env = stack("reset", *state)
    production = Rest(env["PRODUCTION_NAUTOBOT_URL"], env["PRODUCTION_NAUTOBOT_ADMIN_TOKEN"])
    veritas = Rest(env["VERITASBOT_URL"], env["VERITASBOT_ADMIN_TOKEN"])
    report(f"\nveritas_pipeline scale benchmark: seed {args.seed!r}, scale {args.scale}, discovery scale "
           f"{'as held' if args.discovery_scale is None else args.discovery_scale}; VeritasBot holds "
           f"{veritas.get('dcim/devices', limit=1)['count']} devices, "
           f"{veritas.get('dcim/interfaces', limit=1)['count']} interfaces")
    with sync_home(env) as (home, state_db):
        with FaultProxy(env["VERITASBOT_URL"], recording=True) as recorder:
            full_seconds, rss_mb = veritas_sync(env, home, recorder.url)
            sent = writes_of(recorder)
        written = sum(objects_in(write.body) for write in sent if write.status and 200 <= write.status < 300)
        report(f"  full sync (veritas-sync)       : {full_seconds:8.1f} s  {written} objects written in {len(sent)} "
               f"write requests, {written / full_seconds:7.1f} objects/s; peak RSS {rss_mb:.0f} MB")
        goals.check("full sync peak RSS", f"{rss_mb:.0f} MB", f"<= {RSS_GOAL_MB} MB", rss_mb <= RSS_GOAL_MB)

        if "noop" in args.only:
            with FaultProxy(env["VERITASBOT_URL"], recording=True) as recorder:
                noop_seconds, _rss = veritas_sync(env, home, recorder.url)
                noop_writes = len(writes_of(recorder))
            report(f"  no-op resync (veritas-sync)    : {noop_seconds:8.1f} s  {noop_writes} writes; "
                   f"{noop_seconds / full_seconds:.1%} of the full sync")
            goals.check("no-op resync writes", str(noop_writes), "0", noop_writes == 0)
            goals.check("no-op resync / full sync", f"{noop_seconds / full_seconds:.1%}",
                        f"<= {NOOP_RATIO_GOAL:.0%}", noop_seconds / full_seconds <= NOOP_RATIO_GOAL)
            # The same, reading both instances whole as the nightly full sync does once its snapshot is old.
            with FaultProxy(env["VERITASBOT_URL"], recording=True) as recorder:
                whole_seconds, _rss = veritas_sync(env, home, recorder.url, VERITAS_WHOLE_READ_INTERVAL_HOURS="0")
                whole_writes = len(writes_of(recorder))
            report(f"  no-op resync reading whole     : {whole_seconds:8.1f} s  {whole_writes} writes; "
                   f"{whole_seconds / full_seconds:.1%} of the full sync (whole_read_interval_hours 0)")
            goals.check("no-op resync reading whole: writes", str(whole_writes), "0", whole_writes == 0)

        tenants = synced_tenants(production, veritas, 1 + args.samples)
        if "incremental" in args.only:
            part_started = time.monotonic()
            visible, reads = incremental(env, state_db, production, veritas, tenants[0], settings)
            report(f"  one tenant renamed, incremental run in process: visible after {visible:.2f} s "
                   f"(part took {time.monotonic() - part_started:.0f} s)")
            for instance, per_endpoint in reads.items():
                total_requests = sum(count for count, _rows in per_endpoint.values())
                total_rows = sum(rows for _count, rows in per_endpoint.values())
                report(f"    {instance}: {total_requests} requests, {total_rows} rows read")
                for name, (count, rows) in per_endpoint.items():
                    report(f"      {name:<56}{count:>6} requests{rows:>9} rows")
                goals.check(f"incremental run: rows read from {instance}", str(total_rows),
                            f"<= {INCREMENTAL_ROWS_GOAL}", total_rows <= INCREMENTAL_ROWS_GOAL)

        if "daemon" in args.only:
            part_started = time.monotonic()
            samples = bench_changes.through_dagster(env, state_db, production, veritas, tenants[1:])
            latencies = [sample[3] for sample in samples]
            for index, phase in enumerate(("change to run requested", "run requested to started", "run")):
                report(f"    {phase:<26}: median {statistics.median(sample[index] for sample in samples):6.2f} s")
            p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
            report(f"  change to VeritasBot through dagster-daemon: p50 {p50:.2f} s, p95 {p95:.2f} s "
                   f"({len(latencies)} samples: {', '.join(f'{value:.1f}' for value in latencies)}; "
                   f"part took {time.monotonic() - part_started:.0f} s)")
            goals.check("change to visible through the daemon, p50", f"{p50:.1f} s", f"<= {DAEMON_P50_GOAL:.0f} s",
                        p50 <= DAEMON_P50_GOAL)
            goals.check("change to visible through the daemon, p95", f"{p95:.1f} s", f"<= {DAEMON_P95_GOAL:.0f} s",
                        p95 <= DAEMON_P95_GOAL)

    if "replay" in args.only:
        part_started = time.monotonic()
        stack("reset", *state)
        replay_seconds, refused = replay(env, sent)
        report(f"  same writes replayed, one stream: {replay_seconds:8.1f} s  ({refused} refused); "
               f"full sync / replay {full_seconds / replay_seconds:.2f} (part took "
               f"{time.monotonic() - part_started:.0f} s, reset included)")
        goals.check("full sync / single-stream replay", f"{full_seconds / replay_seconds:.2f}",
                    f"<= {REPLAY_RATIO_GOAL}", full_seconds / replay_seconds <= REPLAY_RATIO_GOAL)

    stack("reset", *state)
    goals.print()
    report(f"benchmark took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
