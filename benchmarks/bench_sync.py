"""Full-sync benchmark on the local stack: prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_sync.py [--seed S] [--scale N] [--single-sample K]

For the stack seeded at --scale N (extra production objects), in one run:
1. full sync into a freshly seeded VeritasBot: time, objects written, objects per second;
2. no-op resync: time (and the number of writes, which must be 0);
3. the same request bodies the sync sent (creates and updates, in its order), replayed into a freshly
   reset VeritasBot with plain HTTP: bulk POST/PATCH (same batch size), then one request per object.
   One-per-request is slow, so at scale only the first K bodies (in dependency order) are sent one by
   one and the rate is extrapolated; the output says so.
Loopback only: the stack's servers are on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
from itertools import groupby
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from veritas_pipeline_tests.stack_helpers import stack_command  # noqa: E402
from veritas_pipeline.engine.client import ClientSettings, NautobotClient  # noqa: E402
from veritas_pipeline.engine.policy import DEFAULT_SYNC_TAG  # noqa: E402
from veritas_pipeline.engine.registry import GROUPS, MODELS, SYNCED_MODELS  # noqa: E402
from veritas_pipeline.engine.sync import SyncEngine  # noqa: E402


def stack(*args: str) -> dict:
    return stack_command(*args, quiet=True)


def engine(env: dict) -> SyncEngine:
    production = NautobotClient(ClientSettings(env["PRODUCTION_NAUTOBOT_URL"], env["PRODUCTION_NAUTOBOT_TOKEN"]),
                                read_only=True, name="production")
    veritas = NautobotClient(ClientSettings(env["VERITASBOT_URL"], env["VERITASBOT_TOKEN"]), name="VeritasBot")
    return SyncEngine(production, veritas)


def full_sync(env: dict) -> tuple[float, int, int, list]:
    """The sync of every group; returns its time, writes, failures and the writes it sent, in order."""
    sync = engine(env)
    started = time.monotonic()
    written, failures, sent = 0, 0, []
    for group in GROUPS:
        report = sync.sync_group(group)
        written += report.total("created") + report.total("updated")
        failures += len(report.failures)
        sent += in_sending_order(report.writes)
    return time.monotonic() - started, written, failures, sent


def in_sending_order(writes: list) -> list:
    """The order the applier sends a group's writes in: model by model, creates parents first, then updates."""
    ordered = []
    for _label, same_model in groupby(writes, key=lambda write: write.label):
        same_model = list(same_model)
        ordered += sorted((w for w in same_model if w.action == "create"), key=lambda w: w.level)
        ordered += [w for w in same_model if w.action != "create"]
    return ordered


def replay(env: dict, writes: list, batch_size: int, limit: int | None = None) -> tuple[float, int, str]:
    """Send the same bodies with plain requests, in the order the sync sent them: consecutive writes of one
    model, action and tree level go together, `batch_size` per request (1: one request per object)."""
    session = requests.Session()
    session.headers.update({"Authorization": f"Token {env['VERITASBOT_TOKEN']}",
                            "Accept": "application/json; version=3.2"})
    base = env["VERITASBOT_URL"] + "/api/"
    # The sync creates its tag before any group (outside the plan); so does the replay, untimed.
    session.post(base + "extras/tags/", json={"name": DEFAULT_SYNC_TAG, "content_types": sorted(
        spec.label for spec in SYNCED_MODELS if spec.tags)}, timeout=60).raise_for_status()
    started, refused, first_error = time.monotonic(), 0, ""
    for (label, action, _level), same in groupby(writes[:limit] if limit else writes,
                                                  key=lambda w: (w.label, w.action, w.level)):
        bodies = [write.body for write in same]
        url = base + MODELS[label].endpoint + "/"
        for start in range(0, len(bodies), batch_size):
            chunk = bodies[start:start + batch_size]
            if batch_size > 1:
                response = session.request("POST" if action == "create" else "PATCH", url, json=chunk, timeout=600)
            elif action == "create":
                response = session.post(url, json=chunk[0], timeout=600)
            else:
                response = session.patch(f"{url}{chunk[0]['id']}/", json=chunk[0], timeout=600)
            if not response.ok:
                refused += len(chunk)
                first_error = first_error or f"{label} {action}: HTTP {response.status_code} {response.text[:200]}"
    return time.monotonic() - started, refused, first_error


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
    sync_seconds, written, failed, sent = full_sync(env)
    noop = engine(env)
    noop_started = time.monotonic()
    noop_written = 0
    for group in GROUPS:
        report = noop.sync_group(group)
        noop_written += report.total("created") + report.total("updated")
    noop_seconds = time.monotonic() - noop_started

    stack("reset", *state)
    bulk_seconds, bulk_refused, bulk_error = replay(env, sent, args.batch_size)
    stack("reset", *state)
    sample = min(len(sent), args.single_sample)
    single_seconds, single_refused, single_error = replay(env, sent, 1, limit=sample)
    single_rate = sample / single_seconds if single_seconds else 0.0

    print(f"\nveritas_pipeline sync benchmark: seed {args.seed!r}, scale {args.scale}")
    creates = sum(1 for write in sent if write.action == "create")
    print(f"  objects written by the full sync          : {written} ({creates} creates, {failed} failed)")
    print(f"  full sync                                 : {sync_seconds:8.1f} s  {written / sync_seconds:7.1f} objects/s")
    print(f"  no-op resync                              : {noop_seconds:8.1f} s  ({noop_written} writes)")
    print(f"  same writes, plain bulk requests ({args.batch_size}/req) : {bulk_seconds:8.1f} s  "
          f"{len(sent) / bulk_seconds:7.1f} objects/s  ({bulk_refused} refused)")
    extrapolated = len(sent) / single_rate if single_rate else float("nan")
    label = "measured" if sample == len(sent) else f"first {sample} measured, rest extrapolated"
    print(f"  same writes, one request per object       : {extrapolated:8.1f} s  {single_rate:7.1f} objects/s  "
          f"({label}; {single_refused} refused)")
    for error in {bulk_error, single_error} - {""}:
        print(f"  first refusal: {error}")
    print(f"  full sync / plain bulk POST time          : {sync_seconds / bulk_seconds:8.2f}")
    print(f"  one-per-request / plain bulk POST time    : {extrapolated / bulk_seconds:8.2f}")
    stack("reset", *state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
