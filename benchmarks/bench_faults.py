"""Faulted versus fault-free full sync on the local stack: prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_faults.py [--seed S] [--scale N] [--batch-size B]

In one run, each from the freshly seeded stack, through loopback proxies on both instances (so both runs pay
the same proxy hop): a full sync with no faults, then one with the live tests' faults (production GETs: 5%
answered 503, 5% reset; VeritasBot writes: 10% answered 504 after committing, 5% 503 before forwarding, 5%
reset after committing). For each: time, requests that reached each instance, faults injected, objects
written, objects failed, and the writes settled by reading them back.
Loopback only: the stack's servers and the proxies are on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from veritas_pipeline.engine.client import ClientSettings, NautobotClient  # noqa: E402
from veritas_pipeline.engine.registry import GROUPS  # noqa: E402
from veritas_pipeline.engine.state import StateStore  # noqa: E402
from veritas_pipeline.engine.sync import SyncEngine  # noqa: E402
from veritas_pipeline_tests.fault_proxy import FaultProxy, FaultRules  # noqa: E402
from veritas_pipeline_tests.stack_helpers import stack_command  # noqa: E402

READ_FAULTS = FaultRules(read_refused=0.05, read_reset=0.05, ensure_each=True)
WRITE_FAULTS = FaultRules(write_lost_answer=0.10, write_refused=0.05, write_reset=0.05, ensure_each=True)


def full_sync(env: dict, faulted: bool, seed: str, batch_size: int, state_dir: Path) -> dict:
    with FaultProxy(env["PRODUCTION_NAUTOBOT_URL"], seed=f"{seed}-reads",
                    rules=READ_FAULTS if faulted else FaultRules()) as reads, \
            FaultProxy(env["VERITASBOT_URL"], seed=f"{seed}-writes",
                       rules=WRITE_FAULTS if faulted else FaultRules()) as writes:
        production = NautobotClient(ClientSettings(reads.url, env["PRODUCTION_NAUTOBOT_TOKEN"]), read_only=True,
                                    name="production")
        veritas = NautobotClient(ClientSettings(writes.url, env["VERITASBOT_TOKEN"]), name="VeritasBot")
        state = StateStore(f"sqlite:///{state_dir / ('faulted.db' if faulted else 'clean.db')}")
        engine = SyncEngine(production, veritas, state=state, batch_size=batch_size)
        started = time.monotonic()
        written = failed = settled = 0
        for group in GROUPS:
            report = engine.sync_group(group)
            written += report.total("created") + report.total("updated")
            failed += len(report.failures)
            settled += report.settled
        seconds = time.monotonic() - started
        faults = {name: count for stats in (reads.stats, writes.stats) for name, count in stats.items()
                  if name not in ("forwarded", "truncated", "next_rewritten")}
        return {"seconds": seconds, "production requests": len(reads.requests),
                "VeritasBot requests": len(writes.requests),
                "VeritasBot writes sent": sum(1 for r in writes.requests if r.method != "GET"),
                "faults injected": sum(faults.values()), "objects written": written, "objects failed": failed,
                "writes settled by reading back": settled, "fault kinds": faults}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", default="veritas")
    parser.add_argument("--scale", default="0")
    parser.add_argument("--batch-size", type=int, default=25,
                        help="objects per bulk write (small: more requests, so more faults)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state_dir:
        figures = {}
        for faulted in (False, True):
            env = stack_command("reset", "--seed", args.seed, "--scale", args.scale, quiet=True)
            figures[faulted] = full_sync(env, faulted, args.seed, args.batch_size, Path(state_dir))
    print(f"\nfull sync, seed {args.seed!r}, scale {args.scale}, batch size {args.batch_size}")
    print(f"{'':32}{'fault-free':>14}{'faulted':>14}")
    for key in figures[False]:
        if key == "fault kinds":
            continue
        clean, faulted = figures[False][key], figures[True][key]
        render = (lambda value: f"{value:.1f}") if key == "seconds" else str
        print(f"{key:32}{render(clean):>14}{render(faulted):>14}")
    print(f"{'faulted / fault-free time':32}{figures[True]['seconds'] / figures[False]['seconds']:>28.2f}")
    print("faults injected by kind:", dict(sorted(figures[True]["fault kinds"].items())))


if __name__ == "__main__":
    main()
