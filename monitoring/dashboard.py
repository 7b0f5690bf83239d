"""The Grafana dashboard of veritas_pipeline, as code: `python monitoring/dashboard.py` writes
monitoring/grafana-dashboard.json (import it in Grafana and pick the Prometheus data source).

The test suite checks that the JSON file is what this script writes, and runs every panel's query on the
local stack's Prometheus after a sync. Values are the last run's (see veritas_pipeline/metrics.py), so
the panels read them as they are: no rate() over a batch job's constant series.
"""

from __future__ import annotations

import json
from pathlib import Path

OUTPUT = Path(__file__).with_name("grafana-dashboard.json")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
FULL = 'mode="full"'
WIDTH, HEIGHT = 12, 8

# (title, panel type, unit, [(query, legend)]). Queries that may legitimately have no series (no error
# of that kind in the last run) fall back to 0, so "none" reads as 0 rather than "No data".
PANELS: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    ("Full sync duration", "timeseries", "s", [
        (f"nautobot_production_sync_duration_seconds{{{FULL}}}", "duration"),
    ]),
    ("Last full sync", "stat", "none", [
        (f"nautobot_production_sync_last_run_succeeded{{{FULL}}}", "succeeded (1) / failed (0)"),
        (f"time() - nautobot_production_sync_last_success_timestamp_seconds{{{FULL}}}", "seconds since the last success"),
    ]),
    ("Group outcome", "table", "none", [
        (f"nautobot_production_sync_group_outcome{{{FULL}}} == 1", "{{group}}: {{outcome}}"),
    ]),
    ("Throughput per model (objects in the last full sync)", "bargauge", "none", [
        (f"sum by (model_type, operation) (nautobot_production_objects_processed_total{{{FULL},operation!=\"skip\"}})",
         "{{model_type}} {{operation}}"),
        (f"sum(nautobot_production_objects_processed_total{{{FULL}}}) / "
         f"scalar(nautobot_production_sync_duration_seconds{{{FULL}}})", "objects per second"),
    ]),
    ("Errors", "timeseries", "none", [
        (f"sum by (model_type) (nautobot_production_objects_processed_total{{{FULL},operation=\"fail\"}})",
         "write failures {{model_type}}"),
        (f"sum by (model_type, error_type) (nautobot_production_validation_errors_total{{{FULL}}}) or vector(0)",
         "validation {{model_type}} {{error_type}}"),
        (f"sum by (model_type, relationship) (nautobot_production_relationship_errors_total{{{FULL}}}) or vector(0)",
         "unresolved {{model_type}}.{{relationship}}"),
    ]),
    ("Conflicts", "timeseries", "none", [
        (f"sum by (model_type, conflict_type) (nautobot_production_conflicts_total{{{FULL}}})",
         "{{model_type}} {{conflict_type}}"),
    ]),
    ("Freshness", "bargauge", "s", [
        ("max by (model_type) (nautobot_production_data_freshness_seconds)", "{{model_type}}"),
    ]),
    ("Coverage", "bargauge", "percent", [
        ("nautobot_production_coverage_percentage", "{{model_type}}"),
    ]),
    ("API latency", "timeseries", "s", [
        (f"histogram_quantile(0.95, sum by (nautobot, le) "
         f"(nautobot_production_api_request_duration_seconds_bucket{{{FULL}}}))", "p95 {{nautobot}}"),
        (f"histogram_quantile(0.50, sum by (nautobot, le) "
         f"(nautobot_production_api_request_duration_seconds_bucket{{{FULL}}}))", "p50 {{nautobot}}"),
        (f"sum by (nautobot, endpoint) (nautobot_production_api_request_duration_seconds_sum{{{FULL}}}) / "
         f"sum by (nautobot, endpoint) (nautobot_production_api_request_duration_seconds_count{{{FULL}}})",
         "mean {{nautobot}} {{endpoint}}"),
    ]),
    ("API requests by status", "timeseries", "none", [
        (f"sum by (nautobot, status) (nautobot_production_api_requests_total{{{FULL}}})", "{{nautobot}} {{status}}"),
    ]),
]


def panel(index: int, title: str, kind: str, unit: str, queries: list[tuple[str, str]]) -> dict:
    return {
        "id": index + 1,
        "title": title,
        "type": kind,
        "datasource": DATASOURCE,
        "gridPos": {"x": (index % 2) * WIDTH, "y": (index // 2) * HEIGHT, "w": WIDTH, "h": HEIGHT},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(ord("A") + number), "datasource": DATASOURCE, "expr": expr,
                     "legendFormat": legend, **({"format": "table", "instant": True} if kind == "table" else {})}
                    for number, (expr, legend) in enumerate(queries)],
    }


def dashboard() -> dict:
    return {
        "uid": "veritas-pipeline-sync",
        "title": "Nautobot Production Sync Monitoring",
        "tags": ["nautobot", "ssot", "production", "veritas_pipeline"],
        "timezone": "utc",
        "schemaVersion": 39,
        "editable": True,
        "time": {"from": "now-7d", "to": "now"},
        "refresh": "1m",
        "templating": {"list": [{"name": "datasource", "label": "Prometheus", "type": "datasource",
                                 "query": "prometheus"}]},
        "panels": [panel(index, *spec) for index, spec in enumerate(PANELS)],
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT}")
