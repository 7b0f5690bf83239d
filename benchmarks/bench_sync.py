"""Full-sync benchmark on the local stack: prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_sync.py [--seed S] [--scale N] [--single-sample K]

For the stack seeded at --scale N (extra production objects), in one run:
1. full sync into a freshly seeded VeritasBot: time, objects written, objects per second;
2. no-op resync: time (and the number of writes, which must be 0);
3. the same create payloads the sync sent, replayed into a freshly reset VeritasBot with plain HTTP:
   bulk POST (same batch size), then one object per request. One-per-request is slow, so at scale only
   the first K payloads (in dependency order) are sent one by one and the rate is extrapolated; the
   output says so.
Loopback only: the stack's servers are on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from veritas_pipeline.engine.client import ClientSettings, NautobotClient  # noqa: E402
from veritas_pipeline.engine.registry import GROUPS, MODELS  # noqa: E402
from veritas_pipeline.engine.sync import SyncEngine  # noqa: E402


def stack(*args: str) -> dict:
    subprocess.run([sys.executable, str(REPO / "stack" / "stackctl.py"), *args], check=True,
                   stdout=subprocess.DEVNULL)
    env_file = Path(os.environ.get("VERITAS_STACK_DIR", REPO / ".stack")) / "stack.env"
    return dict(line[len("export "):].split("=", 1) for line in env_file.read_text().splitlines()
                if line.startswith("export "))


def engine(env: dict) -> SyncEngine:
    production = NautobotClient(ClientSettings(env["PRODUCTION_NAUTOBOT_URL"], env["PRODUCTION_NAUTOBOT_TOKEN"]),
                                read_only=True, name="production")
    veritas = NautobotClient(ClientSettings(env["VERITASBOT_URL"], env["VERITASBOT_TOKEN"]), name="VeritasBot")
    return SyncEngine(production, veritas)


def full_sync(env: dict) -> tuple[float, int, int, list]:
    sync = engine(env)
    started = time.monotonic()
    writes, failures, creates = 0, 0, []
    for group in GROUPS:
        report = sync.sync_group(group)
        writes += report.total("created") + report.total("updated")
        failures += len(report.failures)
        creates += [write for write in report.writes if write.action == "create"]
    return time.monotonic() - started, writes, failures, creates


def replay(env: dict, creates: list, batch_size: int, limit: int | None = None) -> tuple[float, int]:
    """POST the payloads with plain requests, in the order the sync sent them: per model, per level."""
    session = requests.Session()
    session.headers.update({"Authorization": f"Token {env['VERITASBOT_TOKEN']}",
                            "Accept": "application/json; version=3.2"})
    base = env["VERITASBOT_URL"] + "/api/"
    payloads = creates[:limit] if limit else creates
    ordered: dict[tuple[str, int], list] = {}
    for write in payloads:
        ordered.setdefault((write.label, write.level), []).append(write.body)
    started, refused = time.monotonic(), 0
    for (label, _level), bodies in ordered.items():
        url = base + MODELS[label].endpoint + "/"
        for start in range(0, len(bodies), batch_size):
            chunk = bodies[start:start + batch_size]
            response = session.post(url, json=chunk if batch_size > 1 else chunk[0], timeout=600)
            refused += 0 if response.ok else len(chunk)
    return time.monotonic() - started, refused


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", default=os.environ.get("VERITAS_STACK_SEED", "veritas"))
    parser.add_argument("--scale", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--single-sample", type=int, default=1500,
                        help="most payloads sent one per request (the rest is extrapolated)")
    args = parser.parse_args()
    state = ["--seed", args.seed, "--scale", str(args.scale)]

    env = stack("reset", *state)
    sync_seconds, written, failed, creates = full_sync(env)
    noop = engine(env)
    noop_started = time.monotonic()
    noop_written = 0
    for group in GROUPS:
        report = noop.sync_group(group)
        noop_written += report.total("created") + report.total("updated")
    noop_seconds = time.monotonic() - noop_started

    stack("reset", *state)
    bulk_seconds, bulk_refused = replay(env, creates, args.batch_size)
    stack("reset", *state)
    sample = min(len(creates), args.single_sample)
    single_seconds, single_refused = replay(env, creates, 1, limit=sample)
    single_rate = sample / single_seconds if single_seconds else 0.0

    print(f"\nveritas_pipeline sync benchmark: seed {args.seed!r}, scale {args.scale}")
    print(f"  objects in scope written by the full sync : {written} ({len(creates)} creates, {failed} failed)")
    print(f"  full sync                                 : {sync_seconds:8.1f} s  {written / sync_seconds:7.1f} objects/s")
    print(f"  no-op resync                              : {noop_seconds:8.1f} s  ({noop_written} writes)")
    print(f"  same creates, plain bulk POST ({args.batch_size}/request)  : {bulk_seconds:8.1f} s  "
          f"{len(creates) / bulk_seconds:7.1f} objects/s  ({bulk_refused} refused)")
    extrapolated = len(creates) / single_rate if single_rate else float("nan")
    label = "measured" if sample == len(creates) else f"first {sample} measured, rest extrapolated"
    print(f"  same creates, one POST per object         : {extrapolated:8.1f} s  {single_rate:7.1f} objects/s  "
          f"({label}; {single_refused} refused)")
    print(f"  full sync / plain bulk POST time          : {sync_seconds / bulk_seconds:8.2f}")
    print(f"  one-per-request / plain bulk POST time    : {extrapolated / bulk_seconds:8.2f}")
    stack("reset", *state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
