"""Read benchmark on the local stack's production: prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_reads.py [--seed S] [--scale N] [--concurrency 1 2 4 8] [--rounds R]

For the stack seeded at --scale N, in one run, each figure the best of R rounds (the machine is shared):
1. the largest synced model, read with the engine's client: paged REST at the server's page size (1000)
   and at 100 rows a page, sequential (read_concurrency 1) and parallel (each --concurrency);
2. the same model through Nautobot's GraphQL endpoint, its synced fields, in one query and in pages of
   1000 (limit/offset), and how its rows differ in shape from the REST rows the engine compares;
3. every synced model read whole, as a full sync's production reads, sequential and parallel.
Loopback only: the stack's servers are on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from veritas_pipeline_tests.stack_helpers import stack_command  # noqa: E402
from veritas_pipeline.engine.client import ClientSettings, NautobotClient  # noqa: E402
from veritas_pipeline.engine.registry import SYNCED_MODELS, Kind, ModelSpec  # noqa: E402


def client(env: dict, read_concurrency: int, page_size: int = 1000) -> NautobotClient:
    return NautobotClient(ClientSettings(env["PRODUCTION_NAUTOBOT_URL"], env["PRODUCTION_NAUTOBOT_TOKEN"],
                                         page_size=page_size, read_concurrency=read_concurrency),
                          read_only=True, name="production")


def best(rounds: int, read: Callable[[], tuple[int, int]]) -> tuple[float, int, int]:
    """(seconds, rows, requests) of the fastest of `rounds` reads."""
    figures = []
    for _round in range(rounds):
        started = time.monotonic()
        rows, made = read()
        figures.append((time.monotonic() - started, rows, made))
    return min(figures)


def rest(env: dict, endpoints: list[str], read_concurrency: int, page_size: int) -> Callable[[], tuple[int, int]]:
    def read() -> tuple[int, int]:
        reader = client(env, read_concurrency, page_size)
        return sum(len(reader.list(endpoint)) for endpoint in endpoints), reader.requests_made
    return read


def graphql_query(spec: ModelSpec) -> str:
    """The synced fields of a model in GraphQL terms: references as their id, custom fields as their data."""
    selections = []
    for spec_field in spec.comparable():
        if spec_field.kind is Kind.CUSTOM_FIELDS:
            selections.append("_custom_field_data")
        elif spec_field.kind in (Kind.REFERENCE, Kind.MANY, Kind.TAGS):
            selections.append(f"{spec_field.name} {{ id }}")
        elif spec_field.kind in (Kind.UNION, Kind.CONTENT_TYPE):
            selections.append(f"{spec_field.name} {{ app_label model }}")
        else:
            selections.append(spec_field.name)
    root = spec.endpoint.split("/", 1)[1].replace("-", "_")
    return f"query ($limit: Int, $offset: Int) {{ {root}(limit: $limit, offset: $offset) {{ id {' '.join(selections)} }} }}"


def graphql(env: dict, spec: ModelSpec, page_size: int | None, total: int) -> Callable[[], tuple[int, int]]:
    """GraphQL reads of the model: one query (page_size None), or pages by limit/offset."""
    session = requests.Session()
    session.headers.update({"Authorization": f"Token {env['PRODUCTION_NAUTOBOT_TOKEN']}"})
    url, query, root = env["PRODUCTION_NAUTOBOT_URL"] + "/api/graphql/", graphql_query(spec), None

    def read() -> tuple[int, int]:
        nonlocal root
        rows, made = [], 0
        for offset in range(0, total, page_size) if page_size else [None]:
            variables = {"limit": page_size, "offset": offset} if page_size else {}
            answer = session.post(url, json={"query": query, "variables": variables}, timeout=600)
            answer.raise_for_status()
            made += 1
            body = answer.json()
            if body.get("errors"):
                raise RuntimeError(f"GraphQL refused the query for {spec.label}: {body['errors'][:2]}")
            [root] = body["data"]
            rows += body["data"][root]
        read.rows = rows
        return len(rows), made
    return read


def shape_differences(spec: ModelSpec, rest_rows: list[dict], graphql_rows: list[dict]) -> list[str]:
    """Where a GraphQL row differs from the REST row of the same object, for the fields the engine compares."""
    by_id = {row["id"]: row for row in graphql_rows}
    found: dict[str, str] = {}
    for rest_row in rest_rows:
        graphql_row = by_id.get(rest_row["id"], {})
        for name in spec.compared_fields:
            key = "_custom_field_data" if spec.field(name).kind is Kind.CUSTOM_FIELDS else name
            if name not in found and rest_row.get(name) != graphql_row.get(key):
                found[name] = f"{name}: REST {str(rest_row.get(name))[:70]} / GraphQL {str(graphql_row.get(key))[:70]}"
    return list(found.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", default=os.environ.get("VERITAS_STACK_SEED", "veritas"))
    parser.add_argument("--scale", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    env = stack_command("reset", "--seed", args.seed, "--scale", str(args.scale), quiet=True)

    counts = {spec.label: client(env, 1).get_json(spec.endpoint, limit=1)["count"] for spec in SYNCED_MODELS}
    spec = max(SYNCED_MODELS, key=lambda model: counts[model.label])
    print(f"\nveritas_pipeline read benchmark: seed {args.seed!r}, scale {args.scale}, best of {args.rounds}")
    print(f"{'read':58} {'seconds':>8} {'rows':>7} {'requests':>8} {'vs sequential':>13}")

    def line(what: str, figures: tuple[float, int, int], baseline: float) -> None:
        seconds, rows, made = figures
        print(f"{what:58} {seconds:8.2f} {rows:7d} {made:8d} {seconds / baseline:12.2f}x")

    for page_size in (1000, 100):
        baseline = best(args.rounds, rest(env, [spec.endpoint], 1, page_size))
        line(f"{spec.label}: REST, {page_size}/page, sequential", baseline, baseline[0])
        for concurrency in args.concurrency:
            line(f"{spec.label}: REST, {page_size}/page, {concurrency} in flight",
                 best(args.rounds, rest(env, [spec.endpoint], concurrency, page_size)), baseline[0])
        if page_size == 1000:
            rest_baseline = baseline[0]
    one_query = graphql(env, spec, None, counts[spec.label])
    line(f"{spec.label}: GraphQL, one query", best(args.rounds, one_query), rest_baseline)
    line(f"{spec.label}: GraphQL, 1000/query", best(args.rounds, graphql(env, spec, 1000, counts[spec.label])),
         rest_baseline)

    endpoints = [model.endpoint for model in SYNCED_MODELS]
    baseline = best(args.rounds, rest(env, endpoints, 1, 1000))
    line(f"every synced model ({len(endpoints)}): REST, sequential", baseline, baseline[0])
    for concurrency in args.concurrency:
        line(f"every synced model: REST, {concurrency} in flight", best(args.rounds, rest(env, endpoints, concurrency, 1000)),
             baseline[0])

    rest_rows = client(env, 4).list(spec.endpoint)
    differences = shape_differences(spec, rest_rows, one_query.rows)
    print(f"\nGraphQL rows of {spec.label} against REST rows (depth=0), fields the engine compares: "
          f"{len(differences)} of {len(spec.compared_fields)} differ in shape or value")
    for difference in differences:
        print(f"  {difference}")
    stack_command("reset", "--seed", args.seed, "--scale", str(args.scale), quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
