"""The client's parallel page reads against the live stack's production (read only, no reset): the same rows
in the same order as a sequential read, every attempt counted, and a truncated listing still refused."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from veritas_pipeline.engine.client import ClientSettings, IncompleteRead, NautobotClient, NautobotUnavailable

from .conftest import StackInfo, production_sql
from .fault_proxy import FaultProxy, FaultRules

# Models of several sizes; at 7 rows a page the prefixes take some 35 pages.
ENDPOINTS = ("ipam/prefixes", "dcim/locations", "tenancy/tenants", "extras/tags")


def production_client(stack: StackInfo, read_concurrency: int, *, url: str | None = None,
                      page_size: int = 7, retries: int = 5, backoff: float = 0.05,
                      retry_budget: float = 300.0) -> tuple[NautobotClient, list[tuple]]:
    client = NautobotClient(ClientSettings(url or stack.env["PRODUCTION_NAUTOBOT_URL"],
                                           stack.env["PRODUCTION_NAUTOBOT_TOKEN"], page_size=page_size,
                                           read_concurrency=read_concurrency, backoff=backoff, retries=retries,
                                           retry_budget=retry_budget),
                            read_only=True, name="production")
    attempts: list[tuple] = []
    client.observers.append(lambda *attempt: attempts.append(attempt))
    return client, attempts


def test_a_parallel_read_returns_exactly_what_a_sequential_read_returns(stack: StackInfo):
    for endpoint in ENDPOINTS:
        sequential, _ = production_client(stack, 1)
        parallel, attempts = production_client(stack, 4)
        rows = sequential.list(endpoint)
        assert len(rows) > 7 and parallel.list(endpoint) == rows, endpoint
        assert parallel.requests_made == sequential.requests_made == len(attempts), endpoint
    ids = [row["id"] for row in rows]
    # By id, 3 ids a chunk (and 7 rows a page): many chunks read side by side, each possibly several pages.
    assert production_client(stack, 4)[0].list_by_ids("dcim/locations", ids[::-1], chunk=3) == \
        production_client(stack, 1)[0].list_by_ids("dcim/locations", ids, chunk=3)


def test_parallel_reads_retry_refused_and_reset_pages_and_count_every_attempt(stack: StackInfo):
    with FaultProxy(stack.env["PRODUCTION_NAUTOBOT_URL"], seed="parallel-reads") as proxy:
        expected = production_client(stack, 1, url=proxy.url)[0].list("ipam/prefixes")  # its urls name the proxy
        before = len(proxy.requests)
        proxy.rules = FaultRules(read_refused=0.15, read_reset=0.15, ensure_each=True)
        # At 30% faults a page fails 6 times running about once in 1,400; over 35 pages with the default
        # 5 retries that is one run in 40. 12 retries make it one in 180,000.
        client, attempts = production_client(stack, 4, url=proxy.url, retries=12)
        assert client.list("ipam/prefixes") == expected
        assert proxy.stats["read_refused"] and proxy.stats["read_reset"]
        assert client.requests_made == len(attempts) == len(proxy.requests) - before


def test_a_page_a_gateway_gives_up_on_is_read_again_in_smaller_pages(stack: StackInfo):
    # At 100k a page of 1,000 cables outlasted the stack's 60 s gateway timeout on every retry.
    expected = production_client(stack, 1)[0].list("ipam/prefixes")
    with FaultProxy(stack.env["PRODUCTION_NAUTOBOT_URL"], rules=FaultRules(page_limit=60)) as proxy:
        client, _attempts = production_client(stack, 4, url=proxy.url, page_size=200)
        client.retry_budget.start()
        assert [row["id"] for row in client.list("ipam/prefixes")] == [row["id"] for row in expected]
        limits = [(int(parse_qs(urlsplit(request.path).query)["limit"][0]), request.status) for request in proxy.requests]
    assert len(expected) > 60
    # Each size the gateway refuses is asked once (not retried), then halved down to pages it serves.
    assert [limit for limit, status in limits if status == 504] == [200, 100]
    assert {limit for limit, status in limits if status == 200} == {50}
    assert client.retry_budget.spent == 0, "a smaller page is progress, not a failure"


def test_a_group_running_longer_than_its_retry_budget_still_retries_a_late_fault(stack: StackInfo):
    # At 100k a group runs for many minutes; its budget counts seconds spent failing, not seconds since it began.
    with FaultProxy(stack.env["PRODUCTION_NAUTOBOT_URL"], seed="late-fault") as proxy:
        client, attempts = production_client(stack, 4, url=proxy.url, retry_budget=1.0, backoff=0.2)
        client.retry_budget.start()
        expected = client.list("dcim/locations")  # fault-free: the group's reads so far
        time.sleep(1.5)  # the group goes on past what would have been the budget's deadline
        proxy.rules = FaultRules(read_refused=1e-9, ensure_each=True)  # the next GET is refused, once
        assert client.list("dcim/locations") == expected
    assert proxy.stats["read_refused"] == 1
    assert [status for *_, status, _seconds in attempts].count(503) == 1


def test_a_fault_that_persists_stops_once_its_pauses_spend_the_retry_budget(stack: StackInfo):
    with FaultProxy(stack.env["PRODUCTION_NAUTOBOT_URL"],
                    rules=FaultRules(read_refused=1.0, path_pattern=r"^/api/tenancy/tenants/$")) as proxy:
        client, _ = production_client(stack, 1, url=proxy.url, retries=20, retry_budget=1.0, backoff=0.3)
        client.retry_budget.start()
        # Pauses of 0.3 s and 0.6 s fit in 1 s (with the milliseconds of the two refusals); 1.2 s more does not.
        with pytest.raises(NautobotUnavailable, match=r"GET tenancy/tenants: HTTP 503 \(3 attempts\)"):
            client.list("tenancy/tenants")
    assert proxy.stats["read_refused"] == 3


@pytest.mark.parametrize("truncation", ["trim_results", "drop_last_page"])
def test_a_parallel_read_refuses_a_truncated_listing(stack: StackInfo, truncation: str):
    # trim_results: every page is a row short; drop_last_page: every page says it is the last.
    with FaultProxy(stack.env["PRODUCTION_NAUTOBOT_URL"],
                    rules=FaultRules(truncate=truncation, truncate_pattern=r"^/api/ipam/prefixes/$")) as proxy:
        client, _ = production_client(stack, 4, url=proxy.url)
        with pytest.raises(IncompleteRead, match="the server counted"):
            client.list("ipam/prefixes")
        assert proxy.stats["truncated"] > 0


def test_a_listing_is_complete_while_its_rows_move_in_the_table(stack: StackInfo):
    # Contact associations have no default ordering: without an order of its own a page would be a slice of
    # the table's physical order. After every page, the rows stored first get a new row version (content
    # unchanged), which PostgreSQL stores after the others.
    endpoint, table = "extras/contact-associations", "extras_contactassociation"
    expected = {row["id"] for row in production_client(stack, 1)[0].list(endpoint)}
    client, _ = production_client(stack, 1)
    client.observers.append(lambda *_attempt: production_sql(
        f"UPDATE {table} SET last_updated = last_updated WHERE ctid IN (SELECT ctid FROM {table} LIMIT 7)"))
    rows = client.list(endpoint)
    assert len(expected) > 14 and len(rows) == len(expected) and {row["id"] for row in rows} == expected
