"""Helpers shared by the tests and the benchmarks: the local stack's settings and commands, and stopping
a dagster-daemon with everything it started. Plain Python, no pytest: benchmarks import it too."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]
STACK_DIR = Path(os.environ.get("VERITAS_STACK_DIR", REPO / ".stack"))


def read_stack_env() -> dict[str, str]:
    """The stack's URLs, tokens and database URL, as `scripts/stack up` wrote them to stack.env."""
    env_file = STACK_DIR / "stack.env"
    if not env_file.exists():
        raise RuntimeError(f"{env_file} is missing: start the local stack with `scripts/stack up` "
                           "(scripts/test does it for you)")
    values = {}
    for line in env_file.read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export "):].split("=", 1)
            values[key] = value
    return values


def stack_command(*args: str, quiet: bool = False) -> dict[str, str]:
    """Run the stack manager (`up`, `reset`, ...) and return the stack's settings afterwards."""
    subprocess.run([sys.executable, str(REPO / "stack" / "stackctl.py"), *args], check=True,
                   stdout=subprocess.DEVNULL if quiet else None)
    return read_stack_env()


def stop_daemon(daemon: subprocess.Popen) -> None:
    """Stop the daemon and what it started (its code server, which may linger draining calls): they
    share the daemon's own process group."""
    os.killpg(daemon.pid, signal.SIGTERM)
    daemon.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(daemon.pid, signal.SIGKILL)


def wait_for(condition: Callable[[], T], seconds: float, what: str, poll: float = 0.2) -> T:
    """The first truthy value of `condition`, polled until `seconds` have passed; then fail, saying `what`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"{what}: not within {seconds:.0f} s")
