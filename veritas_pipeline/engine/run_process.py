"""Which process executes a run, written down so that a run left behind by a dead process can be told from
one still running.

A run records its own id, its host, its pid and that process's start time (pid numbers are reused; the
start time tells a new process under an old pid from the one that ran the run). The run id is there
because a retry or a re-execution starts with a copy of its parent's tags: until it records its own
process, the copy names the parent's, which is not the retry's. On the recording host, a process is
gone when no process has that pid, when it has a different start time, or when it is a zombie (killed,
not yet reaped by its parent). From another host nothing can be told: `gone` answers None.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

RUN_TAG = "veritas/process-of-run"
HOST_TAG = "veritas/host"
PID_TAG = "veritas/pid"
STARTED_TAG = "veritas/process-started"


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) from /proc, or None when no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after its closing one.
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], fields[19]


def _alive_without_proc(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def this_process(run_id: str) -> dict[str, str]:
    """The tags that name the calling process as the one executing run `run_id`."""
    pid = os.getpid()
    stat = _proc_stat(pid) if Path("/proc/self/stat").exists() else None
    return {RUN_TAG: run_id, HOST_TAG: socket.gethostname(), PID_TAG: str(pid),
            **({STARTED_TAG: stat[1]} if stat else {})}


def describe(tags: dict[str, str]) -> str:
    return f"pid {tags.get(PID_TAG, '?')} on {tags.get(HOST_TAG, '?')}"


def gone(tags: dict[str, str], run_id: str) -> str | None:
    """Why the process that run `run_id`'s tags name is known to be dead (one line), or None when it runs,
    or when that cannot be told here (no record of this run's own, or another host)."""
    if tags.get(RUN_TAG) != run_id or tags.get(HOST_TAG) != socket.gethostname() \
            or not tags.get(PID_TAG, "").isdigit():
        return None
    pid = int(tags[PID_TAG])
    if not Path("/proc/self/stat").exists():
        return None if _alive_without_proc(pid) else f"{describe(tags)} is no longer running"
    stat = _proc_stat(pid)
    if stat is None:
        return f"{describe(tags)} is no longer running"
    state, started = stat
    if STARTED_TAG in tags and started != tags[STARTED_TAG]:
        return f"{describe(tags)} is no longer running (pid {pid} now belongs to another process)"
    if state == "Z":
        return f"{describe(tags)} was killed (a zombie, not yet reaped)"
    return None
