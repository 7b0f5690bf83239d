"""`veritas-sync` against the live local stack, as an operator runs it: the progress it prints while it runs.

A dry run of one group: it writes nothing, so the stack needs no reset and the test stays cheap.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from .conftest import StackInfo
from .stack_helpers import REPO


def test_a_run_prints_its_progress_at_the_chosen_level_and_is_never_silent_for_long(stack: StackInfo,
                                                                                      tmp_path: Path):
    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    env = {**{key: value for key, value in os.environ.items() if not key.startswith("VERITAS_STATE_DB")},
           **stack.env, "DAGSTER_HOME": str(tmp_path)}
    ran = subprocess.run([sys.executable, "-m", "veritas_pipeline.cli", "--dry-run", "--groups", "organization",
                          "--log-level", "DEBUG"], env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = ran.stderr.splitlines()
    assert any(line.endswith("group organization: started (dry run)") for line in lines), ran.stderr
    assert any(" tenancy.tenant: " in line and " in production, " in line for line in lines), ran.stderr  # per model
    assert any(" read " in line and " tenancy.tenant from production in " in line for line in lines), \
        "no DEBUG line during the run: --log-level DEBUG was reset"
    assert any(" group organization: " in line and " s: " in line for line in lines), ran.stderr  # the group's end
    stamps = [datetime.strptime(line[:8], "%H:%M:%S") for line in lines if line[:8].count(":") == 2]
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(stamps, stamps[1:])]
    assert max(gaps, default=0) <= 11, f"silent for {max(gaps)} s"
    assert any(line.startswith("organization") for line in ran.stdout.splitlines()), ran.stdout
