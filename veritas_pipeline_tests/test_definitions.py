"""The Dagster code location: it loads without a network, and its asset graph matches the snapshot.

When the graph changes on purpose, regenerate the snapshot with
`VERITAS_UPDATE_SNAPSHOT=1 scripts/test veritas_pipeline_tests/test_definitions.py` and review the diff.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from veritas_pipeline.assets import ORPHANS_ASSET
from veritas_pipeline.definitions import defs
from veritas_pipeline.engine.registry import GROUPS, group_dependencies

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def asset_graph() -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "checks": sorted(check.name for check in node.check_keys),
        }
    jobs = sorted(job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__"))
    return {"assets": assets, "jobs": jobs}


def test_asset_graph_matches_the_snapshot():
    current = asset_graph()
    if os.environ.get("VERITAS_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text())


def test_every_group_is_an_asset_depending_only_on_earlier_groups():
    assets = asset_graph()["assets"]
    assert sorted(assets) == sorted([*GROUPS, ORPHANS_ASSET])
    # Orphans are judged only once every group has synced.
    assert assets[ORPHANS_ASSET]["deps"] == sorted(GROUPS)
    for group in GROUPS:
        deps = assets[group]["deps"]
        assert deps == sorted(group_dependencies(group))
        assert all(GROUPS.index(dep) < GROUPS.index(group) for dep in deps)
        assert group == "foundation" or "foundation" in deps


def _load_settings(env: dict) -> subprocess.CompletedProcess:
    """The code location loaded in a fresh interpreter with `env` added: prints its concurrency settings."""
    code = ("from veritas_pipeline.definitions import sync_resource as r; "
            "print(r.production.read_concurrency, r.veritas.read_concurrency, r.write_concurrency)")
    clean = {name: value for name, value in os.environ.items() if not name.endswith("_CONCURRENCY")}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True)


def test_concurrency_settings_come_from_the_environment():
    read, write = random.randint(1, 16), random.randint(1, 16)
    loaded = _load_settings({"VERITAS_READ_CONCURRENCY": str(read), "VERITAS_WRITE_CONCURRENCY": str(write)})
    assert loaded.stdout.split() == [str(read), str(read), str(write)], loaded.stderr
    defaults = _load_settings({})
    assert defaults.stdout.split() == ["4", "4", "4"], defaults.stderr


@pytest.mark.parametrize("variable", ["VERITAS_READ_CONCURRENCY", "VERITAS_WRITE_CONCURRENCY"])
def test_a_bad_concurrency_setting_names_the_variable(variable):
    value = random.choice(["0", "-2", "four", "2.5"])
    loaded = _load_settings({variable: value})
    assert loaded.returncode != 0
    assert f"environment variable {variable}={value!r}" in loaded.stderr
    assert "must be a whole number of at least 1" in loaded.stderr
