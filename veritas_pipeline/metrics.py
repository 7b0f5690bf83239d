"""The RFC's Prometheus metrics, pushed to a Pushgateway at the end of each step of a run.

A sync is a batch job: nothing is left running for Prometheus to scrape, so each run pushes what it did
and the Pushgateway keeps the last push until the next one replaces it. Every value is therefore the
*last run's* figure (gauge semantics), even for the names the RFC ends in `_total`; history is what
Prometheus stores over time. What must survive a failed run (the last success) is pushed so that a later
failure never erases it. Grouping keys (one Pushgateway group each):

- `{job="veritas_sync", mode}`: the run as a whole (duration, HTTP requests by endpoint and status, the
  run's outcome, the last successful whole run);
- `{job="veritas_sync", mode, group}`: one sync group (objects by model and operation, validation and
  relationship errors, conflicts, the group's outcome and last success per model);
- `{job="veritas_quality", group}`: the coverage check's share per model.

`mode` is `full` (a whole run: every group and the orphans step), `partial` (some groups: a UI
materialization, `veritas-sync --groups`) or `incremental` (the change sensor's runs), so a small run never
hides what the last full run did. Dry runs push nothing. Freshness is derived by Prometheus (a recording rule, see
monitoring/rules.yml) from the last-success timestamps, so it keeps growing between runs.
Plain Python: the Dagster layer calls it; the engine's clients report each attempt of a request to it, answered or not.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Iterable

from prometheus_client import CollectorRegistry, Gauge, Histogram, pushadd_to_gateway, push_to_gateway
from prometheus_client import disable_created_metrics

from .engine.client import NautobotClient
from .engine.planner import IDENTITY_ACTION, Conflict, Failure
from .engine.sync import GroupReport

disable_created_metrics()  # pushed per run: a `_created` series would only repeat the push time

log = logging.getLogger(__name__)

PREFIX = "nautobot_production"
SYNC_JOB = "veritas_sync"
QUALITY_JOB = "veritas_quality"
FULL, PARTIAL, INCREMENTAL = "full", "partial", "incremental"
# Model report counter -> `operation` label (the RFC's create, update, skip, delete; plus adopt and fail).
OPERATIONS = {"created": "create", "updated": "update", "unchanged": "skip", "adopted": "adopt", "failed": "fail"}
DELETE = "delete"
OUTCOMES = ("succeeded", "failed", "error")  # error: the step raised (no connection, bad settings)
# A conflict is always settled for VeritasBot's value: the sync never overwrites what discovery owns.
CONFLICT_RESOLUTION = "veritasbot_kept"
REQUEST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
NO_ANSWER_STATUS = "error"  # `status` of an attempt that got no HTTP answer (refused, reset, timed out, TLS)


# The planner's rule text (its start) -> `conflict_type`: why VeritasBot's value stands.
CONFLICT_TYPES = {"discovery tag": "discovery_tagged", "adopted": "adopted", "holds discovered": "holds_discovered"}
OTHER_CONFLICT = "other"


def conflict_type(conflict: Conflict) -> str:
    rule = conflict.rule.lower()
    return next((kind for start, kind in CONFLICT_TYPES.items() if rule.startswith(start)), OTHER_CONFLICT)


def error_types(failure: Failure) -> list[str]:
    """The kinds of one refused write: each field Nautobot names, or what stopped the write."""
    if failure.action == IDENTITY_ACTION:  # never written: its VeritasBot counterpart is not its own
        return ["identity"]
    error = failure.error
    if isinstance(error, dict) and error:
        return sorted(str(name) for name in error)
    text = str(error)
    if text.startswith("not written: its parent"):
        return ["parent_failed"]
    if "did not return the object" in text:
        return ["missing_in_veritasbot"]
    return ["refused"]


def _counts(items: Iterable[tuple]) -> dict[tuple, int]:
    counts: dict[tuple, int] = {}
    for key in items:
        counts[key] = counts.get(key, 0) + 1
    return counts


class Pusher:
    """Where metrics go; without a Pushgateway URL nothing is pushed (and nothing fails)."""

    def __init__(self, url: str | None, timeout: float = 10.0):
        self.url = url
        self.timeout = timeout

    def push(self, registry: CollectorRegistry, job: str, grouping: dict[str, str], *, replace: bool) -> None:
        """`replace`: the group's metrics become exactly these; else only the families pushed are replaced."""
        if not self.url:
            return
        send = push_to_gateway if replace else pushadd_to_gateway
        try:
            send(self.url, job=job, registry=registry, grouping_key=grouping, timeout=self.timeout)
        except OSError as error:  # the sync's outcome must not depend on its monitoring
            log.warning("metrics not pushed to the Pushgateway at %s (%s %s): %s", self.url, job, grouping, error)


class RunMetrics:
    """One run's metrics: HTTP requests as the clients answer, then each group's figures as it ends."""

    def __init__(self, pusher: Pusher, mode: str, whole_run: bool):
        self.pusher = pusher
        self.mode = mode
        self.whole_run = whole_run  # every group and the orphans step: only such a run is a full sync's outcome
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            f"{PREFIX}_api_request_duration_seconds", "Duration of the run's HTTP requests to Nautobot",
            ["nautobot", "endpoint", "status"], buckets=REQUEST_BUCKETS, registry=self.registry)
        self.requests = Gauge(f"{PREFIX}_api_requests_total", "HTTP requests of the last run to Nautobot",
                              ["nautobot", "endpoint", "status"], registry=self.registry)
        self.duration = Gauge(f"{PREFIX}_sync_duration_seconds", "Wall time of the last run so far, or in all",
                              registry=self.registry)
        self.observed: set[int] = set()

    def observe(self, *clients: NautobotClient) -> None:
        for client in clients:
            if id(client) not in self.observed:
                self.observed.add(id(client))
                client.observers.append(self.record_request)

    def record_request(self, client: str, endpoint: str, status: int | None, seconds: float) -> None:
        """One attempt of a request (each retry counts); `status` None: it got no answer."""
        labels = (client.lower(), endpoint, NO_ANSWER_STATUS if status is None else str(status))
        with self.lock:
            self.request_seconds.labels(*labels).observe(seconds)
            self.requests.labels(*labels).inc()

    @property
    def grouping(self) -> dict[str, str]:
        return {"mode": self.mode}

    # ---------------------------------------------------------------- pushes
    def group_done(self, report: GroupReport, last_success: datetime | None) -> None:
        """A group synced (with or without failed writes): its figures, and the run's so far."""
        outcome = "succeeded" if report.succeeded else "failed"
        self._push_group(report.group, outcome, report, last_success)
        self.push_run(succeeded=None if report.succeeded else False)

    def group_error(self, group: str, last_success: datetime | None) -> None:
        """A group's step raised: it has nothing to report, and the run has failed. Its outcome is added
        to what the Pushgateway holds for the group, so each model's last success (and with it the
        freshness alert) survives a group that raises every night; `last_success` is None when the state
        database could not be read."""
        self._push_group(group, "error", None, last_success)
        self.push_run(succeeded=False)

    def _push_group(self, group: str, outcome: str, report: GroupReport | None,
                    last_success: datetime | None) -> None:
        """A report replaces the group's last figures; an error (no report) only adds to them."""
        registry = CollectorRegistry()
        outcome_gauge = Gauge(f"{PREFIX}_sync_group_outcome", "The group's last run: 1 for its outcome",
                              ["outcome"], registry=registry)
        for name in OUTCOMES:
            outcome_gauge.labels(name).set(1 if name == outcome else 0)
        finished = Gauge(f"{PREFIX}_sync_group_last_run_timestamp_seconds", "When the group last ran",
                         registry=registry)
        finished.set(time.time())
        if last_success is not None:
            success = Gauge(f"{PREFIX}_sync_group_last_success_timestamp_seconds",
                            "When the group last synced with no failed write (state database)", registry=registry)
            success.set(last_success.timestamp())
        if report is not None:
            self._report_families(report, registry, last_success)
        self.pusher.push(registry, SYNC_JOB, {**self.grouping, "group": group}, replace=report is not None)

    @staticmethod
    def _report_families(report: GroupReport, registry: CollectorRegistry, last_success: datetime | None) -> None:
        objects = Gauge(f"{PREFIX}_objects_processed_total", "Objects of the last run by model and operation",
                        ["model_type", "operation"], registry=registry)
        for model in report.models:
            for counter, operation in OPERATIONS.items():
                objects.labels(model.label, operation).set(getattr(model, counter))
        validation = Gauge(f"{PREFIX}_validation_errors_total", "Writes of the last run Nautobot refused, by kind",
                           ["model_type", "error_type"], registry=registry)
        for (label, kind), count in _counts((f.label, kind) for f in report.failures for kind in error_types(f)).items():
            validation.labels(label, kind).set(count)
        relationships = Gauge(f"{PREFIX}_relationship_errors_total",
                              "References of the last run that do not resolve in VeritasBot (pending objects)",
                              ["model_type", "relationship"], registry=registry)
        for (label, field), count in _counts((p.label, p.field) for p in report.pending).items():
            relationships.labels(label, field).set(count)
        conflicts = Gauge(f"{PREFIX}_conflicts_total", "Fields where VeritasBot differs and keeps its value",
                          ["model_type", "conflict_type", "resolution"], registry=registry)
        for model in report.models:  # true zeros: "conflicts rising" compares with yesterday's series
            for kind in (*CONFLICT_TYPES.values(), OTHER_CONFLICT):
                conflicts.labels(model.label, kind, CONFLICT_RESOLUTION).set(0)
        for (label, kind), count in _counts((c.label, conflict_type(c)) for c in report.conflicts).items():
            conflicts.labels(label, kind, CONFLICT_RESOLUTION).set(count)
        if last_success is not None:
            model_success = Gauge(f"{PREFIX}_model_last_success_timestamp_seconds",
                                  "When the model's group last synced with no failed write",
                                  ["model_type"], registry=registry)
            for model in report.models:
                model_success.labels(model.label).set(last_success.timestamp())

    def deletes_done(self, deleted: dict[str, int]) -> None:
        """The orphans step: deletions per model."""
        registry = CollectorRegistry()
        objects = Gauge(f"{PREFIX}_objects_processed_total", "Objects of the last run by model and operation",
                        ["model_type", "operation"], registry=registry)
        for label, count in deleted.items():
            objects.labels(label, DELETE).set(count)
        self.pusher.push(registry, SYNC_JOB, {**self.grouping, "group": "orphans"}, replace=True)

    def push_run(self, succeeded: bool | None) -> None:
        """The run-wide figures; `succeeded` once known: False as soon as a step fails, True at the end
        of a whole run (which also stamps the last success, kept by later failed pushes)."""
        with self.lock:
            self.duration.set(time.monotonic() - self.started)
            self.pusher.push(self.registry, SYNC_JOB, self.grouping, replace=False)
        if succeeded is None or not self.whole_run:
            return
        registry = CollectorRegistry()
        Gauge(f"{PREFIX}_sync_last_run_succeeded", "1 if the last whole run succeeded, 0 if it failed",
              registry=registry).set(int(succeeded))
        if succeeded:
            Gauge(f"{PREFIX}_sync_last_success_timestamp_seconds", "When a whole run last succeeded",
                  registry=registry).set(time.time())
        self.pusher.push(registry, SYNC_JOB, self.grouping, replace=False)


def push_coverage(pusher: Pusher, group: str, per_model: Iterable[tuple[str, float]]) -> None:
    """The coverage check's share per model, in percent."""
    registry = CollectorRegistry()
    coverage = Gauge(f"{PREFIX}_coverage_percentage", "Share of in-scope production objects in VeritasBot",
                     ["model_type"], registry=registry)
    for label, share in per_model:
        coverage.labels(label).set(round(share * 100, 2))
    pusher.push(registry, QUALITY_JOB, {"group": group}, replace=True)
