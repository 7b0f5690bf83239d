"""Monitoring and operator output without the Nautobot stack: the alert rules (promtool), the dashboard
file, the metrics' label logic, and what `veritas-sync` prints when it cannot start or a group fails.

Connection failures are real: the instances' URLs point at a loopback port nothing listens on.
(The metrics of a real sync, queried from the stack's Prometheus, are tested in test_quality_live.py.)
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from veritas_pipeline import cli
from veritas_pipeline.assets import group_assets, orphans
from veritas_pipeline.engine.client import endpoint_of
from veritas_pipeline.engine.planner import Conflict, Failure
from veritas_pipeline.metrics import conflict_type, error_types
from veritas_pipeline.resources import NautobotResource, SyncResource

from .stack_helpers import REPO

MONITORING = REPO / "monitoring"


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: `scripts/stack up` installs Debian's prometheus package"
    return found


def test_alert_rules_pass_promtool_check():
    checked = subprocess.run([promtool(), "check", "rules", str(MONITORING / "rules.yml")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_alert_rules_pass_their_promtool_unit_tests():
    tested = subprocess.run([promtool(), "test", "rules", "rules_test.yml"], cwd=MONITORING,
                            capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_rule_has_a_unit_test():
    import yaml

    rules = yaml.safe_load((MONITORING / "rules.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    tests = yaml.safe_load((MONITORING / "rules_test.yml").read_text())
    tested = {case["alertname"] for test in tests["tests"] for case in test.get("alert_rule_test", [])}
    assert alerts == tested
    assert {"LastFullSyncFailed", "NoSuccessfulFullSync", "WriteFailures", "ConflictsRising"} <= alerts


def test_the_dashboard_file_is_what_its_generator_writes():
    sys.path.insert(0, str(MONITORING))
    try:
        import dashboard
    finally:
        sys.path.remove(str(MONITORING))
    assert (MONITORING / "grafana-dashboard.json").read_text() == dashboard.render(), \
        "regenerate it: python monitoring/dashboard.py"
    titles = [panel["title"] for panel in dashboard.dashboard()["panels"]]
    for wanted in ("duration", "Throughput per model", "Errors", "Conflicts", "Freshness", "Coverage",
                   "API latency"):
        assert any(wanted.lower() in title.lower() for title in titles), wanted


# ---------------------------------------------------------------- label logic

def test_endpoints_fold_object_ids_and_drop_the_query():
    assert endpoint_of("http://127.0.0.1:1/api/dcim/devices/?limit=1000&offset=2000") == "dcim/devices"
    assert endpoint_of("http://127.0.0.1:1/api/ipam/prefixes/0b4e1c36-6d0f-4f1e-9a52-6a9c3e1b2f11/") == \
        "ipam/prefixes/{id}"
    assert endpoint_of("http://127.0.0.1:1/api/") == "root"


def test_error_and_conflict_types():
    def failure(error):
        return Failure("dcim.location", "id", "name", "create", error)

    assert error_types(failure({"name": ["exists"], "parent": ["bad"]})) == ["name", "parent"]
    assert error_types(failure("not written: its parent x failed")) == ["parent_failed"]
    assert error_types(failure("VeritasBot did not return the object: it no longer exists there")) == \
        ["missing_in_veritasbot"]
    assert error_types(failure("HTTP 500")) == ["refused"]

    def conflict(rule):
        return Conflict("dcim.location", "id", "name", "asn", 1, 2, rule)

    assert conflict_type(conflict("discovery tag: discovery owns this object")) == "discovery_tagged"
    assert conflict_type(conflict("adopted: VeritasBot had this object before the sync")) == "adopted"
    assert conflict_type(conflict("holds discovered devices or virtual machines")) == "holds_discovered"


# ---------------------------------------------------------------- veritas-sync when it cannot start

def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def veritas_sync(env: dict, *args: str) -> subprocess.CompletedProcess:
    base = {key: value for key, value in os.environ.items()
            if not key.startswith(("PRODUCTION_NAUTOBOT_", "VERITASBOT_"))}
    return subprocess.run([sys.executable, "-m", "veritas_pipeline.cli", *args], env={**base, **env},
                          capture_output=True, text=True, timeout=120, cwd=REPO)


def test_a_missing_variable_is_one_line_naming_it():
    ran = veritas_sync({"PRODUCTION_NAUTOBOT_URL": "http://127.0.0.1:1"})
    assert ran.returncode == cli.EXIT_CONFIGURATION
    assert ran.stderr.strip().splitlines()[-1] == \
        "veritas-sync: production Nautobot: environment variable PRODUCTION_NAUTOBOT_TOKEN not set"
    assert "Traceback" not in ran.stderr and ran.stdout == ""


def test_a_refused_connection_is_one_line_naming_the_url():
    url = f"http://127.0.0.1:{closed_port()}"
    ran = veritas_sync({"PRODUCTION_NAUTOBOT_URL": url, "PRODUCTION_NAUTOBOT_TOKEN": "x",
                        "VERITASBOT_URL": url, "VERITASBOT_TOKEN": "x"})
    assert ran.returncode == cli.EXIT_CONFIGURATION
    assert ran.stderr.strip().splitlines()[-1] == \
        f"veritas-sync: production Nautobot at {url} (PRODUCTION_NAUTOBOT_URL): connection refused"
    assert "Traceback" not in ran.stderr


def test_a_group_that_cannot_connect_fails_and_its_downstream_is_skipped(tmp_path: Path):
    url = f"http://127.0.0.1:{closed_port()}"
    instance = NautobotResource(url=url, token="x", retries=0)
    result = materialize([*group_assets, orphans], selection=["foundation", "organization"],
                         resources={"sync": SyncResource(production=instance, veritas=instance,
                                                         state_db_url=f"sqlite:///{tmp_path / 'state.db'}")},
                         instance=DagsterInstance.ephemeral(), raise_on_error=False)
    outcomes = cli.group_outcomes(result, ["foundation", "organization"])
    status, detail = outcomes["foundation"]
    assert status == "FAILED"
    assert detail == f"reading extras.tag failed: VeritasBot Nautobot at {url.removeprefix('http://')}: " \
                     "GET extras/tags: connection refused (1 attempt)", detail
    assert outcomes["organization"] == ("skipped", "upstream foundation failed")
    summary = io.StringIO()
    sys.stdout, saved = summary, sys.stdout
    try:
        cli.print_summary(result, ["foundation", "organization"], dry_run=False, with_orphans=False)
    finally:
        sys.stdout = saved
    lines = summary.getvalue().splitlines()
    assert any(line.startswith("foundation") and line.endswith("FAILED: " + detail) for line in lines)
    assert any(line.startswith("organization") and "skipped: upstream foundation failed" in line for line in lines)


# ---------------------------------------------------------------- progress

def test_progress_prints_engine_lines_and_is_never_silent_for_long(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cli, "HEARTBEAT_SECONDS", 0.5)
    stream = io.StringIO()
    with cli.Progress(stream, logging.INFO):
        logging.getLogger("veritas_pipeline.engine.sync").info("group foundation: started")
        logging.getLogger("veritas_pipeline.engine.sync").debug("not shown at INFO")
        time.sleep(2.5)
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("group foundation: started")
    assert not any("not shown" in line for line in lines)
    beats = [line for line in lines if "still running" in line]
    assert len(beats) >= 2 and all(line.endswith("last: group foundation: started") for line in beats)
