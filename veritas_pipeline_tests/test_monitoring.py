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
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
from dagster import DagsterInstance, materialize

from veritas_pipeline import cli
from veritas_pipeline.assets import group_assets, orphans
from veritas_pipeline.engine.client import ClientSettings, NautobotClient, NautobotUnavailable, endpoint_of
from veritas_pipeline.engine.planner import Conflict, Failure, Pending
from veritas_pipeline.engine.sync import GroupReport, ModelReport
from veritas_pipeline.metrics import FULL, PARTIAL, Pusher, RunMetrics, conflict_type, error_types
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


# ---------------------------------------------------------------- pushes

class Pushgateway(Pusher):
    """Captures each push, and keeps what a Pushgateway would serve: a replacing push (PUT) makes a
    group's metrics exactly the pushed ones, an adding push (POST) replaces only the families it pushes."""

    def __init__(self):
        super().__init__(url=None)
        self.pushes: list[tuple[dict, bool, dict]] = []
        self.groups: dict[tuple, dict[str, dict]] = {}

    def push(self, registry, job, grouping, *, replace):
        families = {family.name: {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                                  for sample in family.samples} for family in registry.collect()}
        self.pushes.append((dict(grouping), replace, families))
        key = (job, *sorted(grouping.items()))
        self.groups[key] = {**({} if replace else self.groups.get(key, {})), **families}

    def served(self, grouping: dict, metric: str) -> dict[tuple, float]:
        """metric's samples the gateway serves for `grouping`: labels -> value."""
        family = self.groups.get(("veritas_sync", *sorted(grouping.items())), {})
        return {labels: value for samples in family.values() for (name, labels), value in samples.items()
                if name == metric}


METRIC = "nautobot_production_"
LOCATION = "dcim.location"


def location_report(failures=(), pending=()) -> GroupReport:
    return GroupReport("locations", "run", dry_run=False,
                       models=[ModelReport(LOCATION, 3, 3, created=2 - len(failures), failed=len(failures),
                                           unchanged=1)],
                       failures=list(failures), pending=list(pending))


def test_a_group_push_replaces_its_figures_and_the_run_push_adds():
    gateway = Pushgateway()
    metrics = RunMetrics(gateway, FULL, whole_run=True)
    metrics.record_request("production", "dcim/locations", 200, 0.2)
    metrics.record_request("production", "dcim/locations", None, 1.5)  # an attempt with no answer
    metrics.group_done(location_report(), last_success=datetime(2026, 1, 1, tzinfo=timezone.utc))
    (group, group_replace, _), (run, run_replace, _) = gateway.pushes
    assert (group, group_replace) == ({"mode": FULL, "group": "locations"}, True)
    assert (run, run_replace) == ({"mode": FULL}, False)
    requests_by_status = gateway.served(run, METRIC + "api_requests_total")
    assert {dict(labels)["status"]: value for labels, value in requests_by_status.items()} == {"200": 1, "error": 1}
    timed = gateway.served(run, METRIC + "api_request_duration_seconds_count")
    assert {dict(labels)["status"] for labels in timed} == {"200", "error"}
    objects = gateway.served(group, METRIC + "objects_processed_total")
    assert objects[(("model_type", LOCATION), ("operation", "create"))] == 2
    # a group that synced is not yet the run's outcome: that comes with the orphans step
    assert gateway.served(run, METRIC + "sync_last_run_succeeded") == {}


def test_a_group_that_raises_keeps_each_models_last_success_and_the_run_fails():
    gateway = Pushgateway()
    last_success = datetime(2026, 1, 1, tzinfo=timezone.utc)
    RunMetrics(gateway, FULL, whole_run=True).group_done(location_report(), last_success)
    metrics = RunMetrics(gateway, FULL, whole_run=True)  # the next night's run
    metrics.group_error("locations", last_success=None)  # e.g. the state database could not be read
    group = {"mode": FULL, "group": "locations"}
    assert [replace for grouping, replace, _ in gateway.pushes if grouping == group] == [True, False]
    outcome = gateway.served(group, METRIC + "sync_group_outcome")
    assert {dict(labels)["outcome"]: value for labels, value in outcome.items()} == \
        {"succeeded": 0, "failed": 0, "error": 1}
    assert gateway.served(group, METRIC + "model_last_success_timestamp_seconds") == \
        {(("model_type", LOCATION),): last_success.timestamp()}
    assert gateway.served({"mode": FULL}, METRIC + "sync_last_run_succeeded") == {(): 0}


def test_failed_writes_push_the_failed_outcome_and_their_errors_and_keep_the_last_success():
    gateway = Pushgateway()
    RunMetrics(gateway, FULL, whole_run=True).push_run(succeeded=True)
    [(_, stamped)] = gateway.served({"mode": FULL}, METRIC + "sync_last_success_timestamp_seconds").items()
    failures = [Failure(LOCATION, "id1", "a", "create", {"name": ["exists"], "parent": ["bad"]}),
                Failure(LOCATION, "id2", "b", "create", "not written: its parent a failed")]
    pending = [Pending(LOCATION, "id3", "c", "tenant", "not in VeritasBot", True)]
    RunMetrics(gateway, FULL, whole_run=True).group_done(location_report(failures, pending), last_success=None)
    group = {"mode": FULL, "group": "locations"}
    outcome = gateway.served(group, METRIC + "sync_group_outcome")
    assert outcome[(("outcome", "failed"),)] == 1
    validation = gateway.served(group, METRIC + "validation_errors_total")
    assert {dict(labels)["error_type"]: value for labels, value in validation.items()} == \
        {"name": 1, "parent": 1, "parent_failed": 1}
    assert gateway.served(group, METRIC + "relationship_errors_total") == \
        {(("model_type", LOCATION), ("relationship", "tenant")): 1}
    run = {"mode": FULL}
    assert gateway.served(run, METRIC + "sync_last_run_succeeded") == {(): 0}
    assert gateway.served(run, METRIC + "sync_last_success_timestamp_seconds") == {(): stamped}


def test_a_partial_run_pushes_apart_and_never_a_full_syncs_outcome():
    gateway = Pushgateway()
    metrics = RunMetrics(gateway, PARTIAL, whole_run=False)
    metrics.group_done(location_report(), last_success=None)
    metrics.push_run(succeeded=True)
    assert {tuple(sorted(grouping.items())) for grouping, _, _ in gateway.pushes} == \
        {(("group", "locations"), ("mode", PARTIAL)), (("mode", PARTIAL),)}
    assert not any(METRIC + "sync_last_run_succeeded" in families for _, _, families in gateway.pushes)


def test_every_attempt_that_gets_no_answer_is_recorded_as_an_error():
    client = NautobotClient(ClientSettings(url=f"http://127.0.0.1:{closed_port()}", token="x", retries=1,
                                           backoff=0.01), read_only=True, name="production")
    gateway = Pushgateway()
    metrics = RunMetrics(gateway, FULL, whole_run=True)
    metrics.observe(client)
    with pytest.raises(NautobotUnavailable, match="connection refused"):
        client.list("dcim/locations")
    metrics.push_run(succeeded=None)
    assert gateway.served({"mode": FULL}, METRIC + "api_requests_total") == \
        {(("endpoint", "dcim/locations"), ("nautobot", "production"), ("status", "error")): 2}  # both attempts


def test_a_step_that_fails_before_syncing_pushes_its_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A bad policy file fails the engine before any request: the run still says it failed."""
    gateway = Pushgateway()
    monkeypatch.setattr(Pusher, "push", lambda self, *args, **kwargs: gateway.push(*args, **kwargs))
    instance = NautobotResource(url=f"http://127.0.0.1:{closed_port()}", token="x", retries=0)
    resources = {"sync": SyncResource(production=instance, veritas=instance,
                                      state_db_url=f"sqlite:///{tmp_path / 'state.db'}",
                                      policy_file=str(tmp_path / "missing.yaml"))}
    result = materialize([*group_assets, orphans], resources=resources, instance=DagsterInstance.ephemeral(),
                         raise_on_error=False)
    assert not result.success
    outcome = gateway.served({"mode": FULL, "group": "foundation"}, METRIC + "sync_group_outcome")
    assert outcome[(("outcome", "error"),)] == 1
    assert gateway.served({"mode": FULL}, METRIC + "sync_last_run_succeeded") == {(): 0}

    # The same step materialized on its own (as from the UI), or the orphans step alone: partial runs.
    for selection, group in ((["foundation"], "foundation"), (["orphans"], "orphans")):
        gateway.pushes.clear()
        materialize([*group_assets, orphans], selection=selection, resources=resources,
                    instance=DagsterInstance.ephemeral(), raise_on_error=False)
        assert {grouping["mode"] for grouping, _, _ in gateway.pushes} == {PARTIAL}, selection
        assert not any(METRIC + "sync_last_run_succeeded" in families for _, _, families in gateway.pushes)


# ---------------------------------------------------------------- veritas-sync when it cannot start

def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def veritas_sync(env: dict, *args: str) -> subprocess.CompletedProcess:
    base = {key: value for key, value in os.environ.items()
            if not key.startswith(("PRODUCTION_NAUTOBOT_", "VERITASBOT_", "VERITAS_STATE_DB_URL",
                                   "VERITAS_POLICY_FILE"))}
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


def test_debug_adds_the_traceback_of_a_configuration_error():
    url = f"http://127.0.0.1:{closed_port()}"
    ran = veritas_sync({"PRODUCTION_NAUTOBOT_URL": url, "PRODUCTION_NAUTOBOT_TOKEN": "x",
                        "VERITASBOT_URL": url, "VERITASBOT_TOKEN": "x"}, "--debug")
    assert ran.returncode == cli.EXIT_CONFIGURATION
    assert "Traceback" in ran.stderr and "ConnectionError" in ran.stderr, ran.stderr
    assert ran.stderr.strip().splitlines()[-1] == \
        f"veritas-sync: production Nautobot at {url} (PRODUCTION_NAUTOBOT_URL): connection refused"


class RefusingNautobot(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(403 if "Token wrong" in self.headers.get("Authorization", "") else 401)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def refusing_nautobot() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), RefusingNautobot)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_refused_token_is_one_line_naming_its_variable(refusing_nautobot: str):
    ran = veritas_sync({"PRODUCTION_NAUTOBOT_URL": refusing_nautobot, "PRODUCTION_NAUTOBOT_TOKEN": "x",
                        "VERITASBOT_URL": refusing_nautobot, "VERITASBOT_TOKEN": "x"})
    assert ran.returncode == cli.EXIT_CONFIGURATION
    assert ran.stderr.strip().splitlines()[-1] == f"veritas-sync: production Nautobot at {refusing_nautobot}: " \
                                                  "HTTP 401, the token in PRODUCTION_NAUTOBOT_TOKEN was refused"
    assert "Traceback" not in ran.stderr


@pytest.mark.parametrize("content, problem", [
    (None, "cannot read it: [Errno 2] No such file or directory"),
    ("discovery_tags: [", "cannot read it: while parsing"),
    ("prune_limit: many\n", "prune_limit"),
])
def test_an_unusable_policy_file_is_one_line_naming_its_variable(tmp_path: Path, content, problem):
    policy = tmp_path / "policy.yaml"
    if content is not None:
        policy.write_text(content)
    ran = veritas_sync({"VERITAS_POLICY_FILE": str(policy)})
    assert ran.returncode == cli.EXIT_CONFIGURATION
    [line] = ran.stderr.strip().splitlines()
    assert line.startswith(f"veritas-sync: VERITAS_POLICY_FILE: policy file {policy}: ") and problem in line, line


def test_an_unusable_state_database_is_one_line_naming_its_variable_not_its_password():
    port = closed_port()
    ran = veritas_sync({"VERITAS_STATE_DB_URL": f"postgresql://veritas:secret@127.0.0.1:{port}/veritas_state"})
    assert ran.returncode == cli.EXIT_CONFIGURATION
    [line] = ran.stderr.strip().splitlines()
    assert line.startswith(f"veritas-sync: state database postgresql://veritas:***@127.0.0.1:{port}/veritas_state "
                           "(VERITAS_STATE_DB_URL): cannot use it: ") and "Connection refused" in line, line
    assert "secret" not in ran.stderr
    ran = veritas_sync({"VERITAS_STATE_DB_URL": "not a url"})
    assert (ran.returncode, ran.stderr.strip().splitlines()[-1].split(" (")[0]) == \
        (cli.EXIT_CONFIGURATION, "veritas-sync: VERITAS_STATE_DB_URL is not a database URL")


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
    # A run of some groups takes no feed cursors (it never saves the row snapshot): its first read is the tags.
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


def test_the_log_level_chosen_holds_inside_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Dagster sets the managed loggers to dagster.yaml's python_log_level (INFO) when a run starts; the
    CLI's instance carries --log-level instead, so DEBUG lines still print during the run."""
    from dagster import asset

    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))

    @asset
    def probe() -> None:
        logging.getLogger("veritas_pipeline.engine.probe").debug("a read, at DEBUG")

    def printed(instance) -> str:
        stream = io.StringIO()
        with cli.Progress(stream, logging.DEBUG):
            assert materialize([probe], instance=instance).success
        return stream.getvalue()

    assert "a read, at DEBUG" not in printed(DagsterInstance.get())  # what the CLI did before
    assert "a read, at DEBUG" in printed(cli.run_instance("DEBUG"))
    assert cli.run_instance("DEBUG").managed_python_loggers == ["veritas_pipeline"]
