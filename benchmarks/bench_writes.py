"""Full sync time by write concurrency on the local stack: prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_writes.py [--seed S] [--scale N] [--write-concurrency 1 2 4 8]
                                                [--read-concurrency R] [--batch-size B]

For each write concurrency, from the freshly seeded stack (reset before each): a full sync of every group
with a write-ahead journal in a SQLite state database, as a run has: time, objects written and failed,
requests to each instance, and the time against the first concurrency's. Loopback only.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from veritas_pipeline_tests.stack_helpers import stack_command  # noqa: E402
from veritas_pipeline.engine.client import ClientSettings, NautobotClient  # noqa: E402
from veritas_pipeline.engine.registry import GROUPS  # noqa: E402
from veritas_pipeline.engine.state import StateStore  # noqa: E402
from veritas_pipeline.engine.sync import SyncEngine  # noqa: E402


def full_sync(env: dict, state_db: Path, write_concurrency: int, read_concurrency: int,
              batch_size: int) -> tuple[float, int, int, int, int]:
    """(seconds, objects written, failed, production requests, VeritasBot requests) of one full sync."""
    production = NautobotClient(ClientSettings(env["PRODUCTION_NAUTOBOT_URL"], env["PRODUCTION_NAUTOBOT_TOKEN"],
                                               read_concurrency=read_concurrency), read_only=True, name="production")
    veritas = NautobotClient(ClientSettings(env["VERITASBOT_URL"], env["VERITASBOT_TOKEN"],
                                            read_concurrency=read_concurrency), name="VeritasBot",
                             writers=write_concurrency)
    engine = SyncEngine(production, veritas, state=StateStore(f"sqlite:///{state_db}"), batch_size=batch_size,
                        write_concurrency=write_concurrency)
    started = time.monotonic()
    written = failed = 0
    for group in GROUPS:
        report = engine.sync_group(group)
        written += report.total("created") + report.total("updated")
        failed += len(report.write_failures)
    return time.monotonic() - started, written, failed, production.requests_made, veritas.requests_made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", default=os.environ.get("VERITAS_STACK_SEED", "veritas"))
    parser.add_argument("--scale", type=int, default=20000)
    parser.add_argument("--write-concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--read-concurrency", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=250)
    args = parser.parse_args()
    state = ["--seed", args.seed, "--scale", str(args.scale)]
    figures = []
    with tempfile.TemporaryDirectory() as scratch:
        for concurrency in args.write_concurrency:
            env = stack_command("reset", *state, quiet=True)
            figures.append((concurrency, *full_sync(env, Path(scratch) / f"state-{concurrency}.db", concurrency,
                                                    args.read_concurrency, args.batch_size)))
            print(f"  write_concurrency {concurrency}: {figures[-1][1]:.1f} s", file=sys.stderr)
    stack_command("reset", *state, quiet=True)

    print(f"\nveritas_pipeline full sync by write concurrency: seed {args.seed!r}, scale {args.scale}, "
          f"batch size {args.batch_size}, read_concurrency {args.read_concurrency}")
    print(f"{'write_concurrency':>17} {'seconds':>8} {'written':>8} {'failed':>6} {'objects/s':>9} "
          f"{'prod req':>8} {'veritas req':>11} {'vs first':>8}")
    for concurrency, seconds, written, failed, production, veritas in figures:
        print(f"{concurrency:17d} {seconds:8.1f} {written:8d} {failed:6d} {written / seconds:9.1f} {production:8d} "
              f"{veritas:11d} {seconds / figures[0][1]:7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
