"""The fault proxy against a tiny recording upstream on loopback: each fault does what it says, and only that.

The upstream records every request it received, so "committed upstream" and "never forwarded" are facts, not
guesses from the client's side. No Nautobot involved.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from .fault_proxy import FaultProxy, FaultRules, Hit, TokenTrap

ITEMS = [{"id": n, "name": f"item-{n}"} for n in range(5)]
PAGE_SIZE = 2
TOKEN = "Token 0123456789abcdef"


class RecordingUpstream(ThreadingHTTPServer):
    """Serves /api/items/ as a Nautobot-style paged list (links built from the Host header it received) and
    echoes everything else; records (method, path, headers, body) of each request."""

    daemon_threads = True
    block_on_close = False

    def __init__(self):
        self.received: list[tuple[str, str, dict, bytes]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), UpstreamHandler)

    def methods_seen(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(method, path) for method, path, _, _ in self.received]


class UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: RecordingUpstream

    def log_message(self, format, *args):
        pass

    def do_request(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.received.append((self.command, self.path, dict(self.headers), body))
        url = urlsplit(self.path)
        if url.path == "/api/hang-up/":  # took the request, never answers it (an HTTP router's timeout)
            self.close_connection = True
            return
        if self.command == "GET" and url.path == "/api/items/":
            status, document = 200, self.page(int(parse_qs(url.query).get("offset", ["0"])[0]))
        elif url.path == "/api/missing/":
            status, document = 404, {"detail": "Not found."}
        else:
            status, document = (201 if self.command == "POST" else 200), {"echo": body.decode(), "path": self.path}
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_request

    def page(self, offset: int) -> dict:
        def link(at: int) -> str:
            return f"http://{self.headers['Host']}/api/items/?limit={PAGE_SIZE}&offset={at}"

        return {
            "count": len(ITEMS),
            "next": link(offset + PAGE_SIZE) if offset + PAGE_SIZE < len(ITEMS) else None,
            "previous": link(max(offset - PAGE_SIZE, 0)) if offset else None,
            "results": ITEMS[offset:offset + PAGE_SIZE],
        }


@pytest.fixture
def upstream():
    server = RecordingUpstream()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def proxy(upstream):
    with FaultProxy(f"http://127.0.0.1:{upstream.server_address[1]}", seed=7) as running:
        yield running


@pytest.fixture
def session():
    with requests.Session() as client:
        client.headers["Authorization"] = TOKEN
        yield client


def test_clean_pass_through_keeps_status_body_headers_and_host(proxy, upstream, session):
    created = session.post(f"{proxy.url}/api/things/?x=1", json={"name": "a"}, headers={"X-Probe": "yes"}, timeout=5)
    missing = session.get(f"{proxy.url}/api/missing/", timeout=5)
    assert created.status_code == 201
    assert created.json() == {"echo": json.dumps({"name": "a"}), "path": "/api/things/?x=1"}
    assert missing.status_code == 404 and missing.json() == {"detail": "Not found."}
    assert "Transfer-Encoding" not in created.headers and created.headers["Content-Length"]

    method, path, headers, body = upstream.received[0]
    assert (method, path, body) == ("POST", "/api/things/?x=1", json.dumps({"name": "a"}).encode())
    assert headers["Host"] == proxy.url.removeprefix("http://")
    assert headers["Authorization"] == TOKEN and headers["X-Probe"] == "yes"
    assert proxy.stats == {"forwarded": 2}
    assert [(r.method, r.path, r.outcome, r.status) for r in proxy.requests] == [
        ("POST", "/api/things/?x=1", "forwarded", 201), ("GET", "/api/missing/", "forwarded", 404)]


def test_paged_list_links_point_back_at_the_proxy(proxy, session):
    page = session.get(f"{proxy.url}/api/items/", timeout=5).json()
    assert page["next"].startswith(f"{proxy.url}/api/items/")
    rows = list(page["results"])
    for _ in range(len(ITEMS)):
        if not page["next"]:
            break
        page = session.get(page["next"], timeout=5).json()
        rows.extend(page["results"])
    assert rows == ITEMS


def test_recording_keeps_write_bodies_and_counts_rows_read(upstream, session):
    with FaultProxy(f"http://127.0.0.1:{upstream.server_address[1]}", recording=True) as recorder:
        session.post(f"{recorder.url}/api/things/", json=[{"name": "a"}, {"name": "b"}], timeout=5)
        session.get(f"{recorder.url}/api/items/", timeout=5)
        session.get(f"{recorder.url}/api/missing/", timeout=5)
        session.patch(f"{recorder.url}/api/things/", json=[{"id": 1}], timeout=5)
    assert [(r.method, r.body, r.rows) for r in recorder.requests] == [
        ("POST", json.dumps([{"name": "a"}, {"name": "b"}]).encode(), 0), ("GET", b"", PAGE_SIZE),
        ("GET", b"", 0), ("PATCH", json.dumps([{"id": 1}]).encode(), 0)]


def test_recording_keeps_the_body_of_a_write_the_upstream_never_answered(upstream, session):
    with FaultProxy(f"http://127.0.0.1:{upstream.server_address[1]}", recording=True) as recorder:
        answer = session.post(f"{recorder.url}/api/hang-up/", json=[{"name": "a"}], timeout=5)
        session.get(f"{recorder.url}/api/hang-up/", timeout=5)
    assert answer.status_code == 502
    assert [(r.method, r.outcome, r.body) for r in recorder.requests] == [
        ("POST", "upstream_error", json.dumps([{"name": "a"}]).encode()), ("GET", "upstream_error", b"")]
    assert upstream.methods_seen() == [("POST", "/api/hang-up/"), ("GET", "/api/hang-up/")]


def test_lost_answer_commits_upstream_and_answers_504(proxy, upstream, session):
    proxy.rules = FaultRules(write_lost_answer=1.0)
    response = session.post(f"{proxy.url}/api/things/", json={"name": "a"}, timeout=5)
    assert response.status_code == 504
    assert upstream.methods_seen() == [("POST", "/api/things/")]
    assert proxy.stats == {"forwarded": 1, "write_lost_answer": 1}


def test_a_late_commit_reaches_upstream_just_before_its_resend(proxy, upstream, session):
    proxy.rules = FaultRules(commit_late=r"^POST /api/things/")
    first = session.post(f"{proxy.url}/api/things/", json={"name": "first"}, timeout=5)
    assert first.status_code == 504 and upstream.received == []  # answered, not yet sent
    session.get(f"{proxy.url}/api/things/", timeout=5)  # the read-back finds nothing of it
    session.post(f"{proxy.url}/api/other/", json={"name": "other"}, timeout=5)  # another endpoint: not its resend
    again = session.post(f"{proxy.url}/api/things/", json={"name": "again"}, timeout=5)
    assert again.status_code == 201
    assert [(method, path, body) for method, path, _headers, body in upstream.received] == [
        ("GET", "/api/things/", b""), ("POST", "/api/other/", b'{"name": "other"}'),
        ("POST", "/api/things/", b'{"name": "first"}'), ("POST", "/api/things/", b'{"name": "again"}')]
    assert proxy.stats["commit_late_held"] == 1 and proxy.stats["commit_late"] == 1
    session.post(f"{proxy.url}/api/things/", json={"name": "later"}, timeout=5)
    assert proxy.stats["commit_late_held"] == 1, "one late commit per arming"


def test_refused_write_never_reaches_upstream(proxy, upstream, session):
    proxy.rules = FaultRules(write_refused=1.0)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert session.request(method, f"{proxy.url}/api/things/", json={}, timeout=5).status_code == 503
    assert session.get(f"{proxy.url}/api/things/", timeout=5).status_code == 200
    assert upstream.methods_seen() == [("GET", "/api/things/")]
    assert proxy.stats == {"write_refused": 4, "forwarded": 1}


def test_reset_write_commits_upstream_and_breaks_the_connection(proxy, upstream, session):
    proxy.rules = FaultRules(write_reset=1.0)
    with pytest.raises(requests.ConnectionError):
        session.post(f"{proxy.url}/api/things/", json={"name": "a"}, timeout=5)
    assert upstream.methods_seen() == [("POST", "/api/things/")]
    assert proxy.requests[-1].outcome == "write_reset" and proxy.requests[-1].status is None
    assert session.get(f"{proxy.url}/api/things/", timeout=5).status_code == 200  # the session recovers


def test_read_faults(proxy, upstream, session):
    proxy.rules = FaultRules(read_refused=1.0)
    assert session.get(f"{proxy.url}/api/items/", timeout=5).status_code == 503
    assert upstream.methods_seen() == []
    proxy.rules = FaultRules(read_reset=1.0)
    with pytest.raises(requests.ConnectionError):
        session.get(f"{proxy.url}/api/items/", timeout=5)
    assert upstream.methods_seen() == [("GET", "/api/items/")]
    assert session.post(f"{proxy.url}/api/things/", json={}, timeout=5).status_code == 201  # writes untouched
    assert proxy.stats == {"read_refused": 1, "read_reset": 1, "forwarded": 2}


def test_path_pattern_restricts_faults(proxy, upstream, session):
    proxy.rules = FaultRules(write_refused=1.0, path_pattern=r"^/api/things/")
    assert session.post(f"{proxy.url}/api/things/", json={}, timeout=5).status_code == 503
    assert session.post(f"{proxy.url}/api/others/?q=/api/things/", json={}, timeout=5).status_code == 201
    assert upstream.methods_seen() == [("POST", "/api/others/?q=/api/things/")]


def test_drop_last_page_stops_the_client_early_but_keeps_count(proxy, session):
    proxy.rules = FaultRules(truncate="drop_last_page")
    page = session.get(f"{proxy.url}/api/items/", timeout=5).json()
    assert page["next"] is None and page["count"] == len(ITEMS) and page["results"] == ITEMS[:PAGE_SIZE]
    assert proxy.stats["truncated"] == 1


def test_trim_results_drops_one_row_but_keeps_count_and_next(proxy, session):
    proxy.rules = FaultRules(truncate="trim_results", truncate_pattern=r"^/api/items/$")
    page = session.get(f"{proxy.url}/api/items/", timeout=5).json()
    assert page["results"] == ITEMS[:PAGE_SIZE - 1] and page["count"] == len(ITEMS)
    assert page["next"].startswith(f"{proxy.url}/api/items/")
    assert session.get(f"{proxy.url}/api/other/", timeout=5).json()["path"] == "/api/other/"  # not a list
    assert proxy.requests[0].outcome == "truncated"
    assert proxy.requests[1].outcome == "forwarded"


def test_truncate_pattern_leaves_other_lists_alone(proxy, session):
    proxy.rules = FaultRules(truncate="drop_last_page", truncate_pattern=r"^/api/dcim/")
    page = session.get(f"{proxy.url}/api/items/", timeout=5).json()
    assert page["next"] is not None
    assert proxy.stats == {"forwarded": 1}


def test_rewritten_next_leads_to_the_trap(proxy, session):
    with TokenTrap() as trap:
        proxy.rules = FaultRules(rewrite_next_to=trap.origin)
        first = session.get(f"{proxy.url}/api/items/", timeout=5).json()
        second = session.get(f"{proxy.url}/api/items/?limit=2&offset=2", timeout=5).json()
        assert first["next"] == f"{trap.origin}/api/items/?limit=2&offset=2"
        assert second["previous"] == f"{trap.origin}/api/items/?limit=2&offset=0"
        assert second["next"].startswith(trap.origin)
        assert proxy.stats["next_rewritten"] == 2

        followed = session.get(first["next"], timeout=5)  # what a careless client would do
        assert followed.status_code == 404
        assert trap.hits == [Hit("GET", "/api/items/?limit=2&offset=2", TOKEN)]


def test_token_trap_binds_a_foreign_loopback_host():
    with TokenTrap() as trap:
        assert trap.host in ("127.0.0.2", "127.0.0.1")
        assert trap.origin == f"http://{trap.host}:{trap.port}"
        response = requests.post(f"{trap.origin}/x", json={"a": 1}, timeout=5)
        assert response.status_code == 404
        assert trap.hits == [Hit("POST", "/x", None)]


def test_stall_commits_the_first_match_and_never_answers_it(proxy, upstream, session):
    proxy.rules = FaultRules(stall_after_forward=r"^POST /api/things/")
    with pytest.raises(requests.Timeout):
        session.post(f"{proxy.url}/api/things/", json={"name": "a"}, timeout=0.5)
    assert proxy.stalled.is_set()
    assert proxy.stalled_request == ("POST", "/api/things/")
    assert upstream.methods_seen() == [("POST", "/api/things/")]
    assert session.post(f"{proxy.url}/api/things/", json={"name": "b"}, timeout=5).status_code == 201
    assert proxy.stats == {"stalled": 1, "forwarded": 2}

    started = time.monotonic()
    proxy.stop()
    assert time.monotonic() - started < 2


def test_stall_is_released_by_stop_while_the_client_waits(upstream):
    with FaultProxy(f"http://127.0.0.1:{upstream.server_address[1]}",
                    rules=FaultRules(stall_after_forward=r"^PATCH ")) as proxy:
        outcome = {}

        def client():
            try:
                requests.patch(f"{proxy.url}/api/things/1/", json={}, timeout=10)
            except requests.ConnectionError as error:
                outcome["error"] = error

        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        assert proxy.stalled.wait(5)
        proxy.stop()
        thread.join(5)
        assert "error" in outcome


def test_same_seed_replays_the_same_decisions(upstream):
    def decisions(seed) -> list[str]:
        with FaultProxy(f"http://127.0.0.1:{upstream.server_address[1]}", seed=seed,
                        rules=FaultRules(write_refused=0.3, write_lost_answer=0.3)) as proxy, \
                requests.Session() as client:
            for _ in range(20):
                client.post(f"{proxy.url}/api/things/", json={}, timeout=5)
            return [request.outcome for request in proxy.requests]

    first = decisions("chaos")
    assert first == decisions("chaos")
    assert {"forwarded", "write_refused", "write_lost_answer"} <= set(first)
    assert first != decisions("other")


def test_reset_stats(proxy, session):
    session.get(f"{proxy.url}/api/items/", timeout=5)
    proxy.reset_stats()
    assert proxy.stats == {} and proxy.requests == []


def test_stop_closes_idle_keep_alive_connections(proxy, session):
    assert session.get(f"{proxy.url}/api/items/", timeout=5).status_code == 200
    started = time.monotonic()
    proxy.stop()
    assert time.monotonic() - started < 2
    with pytest.raises(requests.ConnectionError):
        session.get(f"{proxy.url}/api/items/", timeout=5)


@pytest.mark.parametrize("rules", [
    {"write_refused": 1.5},
    {"write_refused": 0.6, "write_reset": 0.6},
    {"truncate": "everything"},
    {"path_pattern": "("},
    {"rewrite_next_to": "http://192.0.2.1:80"},
    {"rewrite_next_to": "http://127.0.0.2:80/api/"},
])
def test_rules_are_validated(rules):
    with pytest.raises(ValueError):
        FaultRules(**rules)


@pytest.mark.parametrize("upstream_url", ["http://192.0.2.1:18082", "https://127.0.0.1:18082", "http://127.0.0.1:1/api"])
def test_only_loopback_http_upstreams(upstream_url):
    with pytest.raises(ValueError):
        FaultProxy(upstream_url)


def test_ensure_each_deals_every_fault_kind_first_then_draws():
    rules = FaultRules(write_lost_answer=0.0001, write_refused=0.0001, write_reset=0.0001, ensure_each=True)
    proxy = FaultProxy("http://127.0.0.1:9", rules=rules)
    try:
        dealt = [proxy.draw_fault(rules, "POST", "/api/x/") for _ in range(50)]
    finally:
        proxy.stop()
    assert dealt[:3] == ["write_lost_answer", "write_refused", "write_reset"]
    assert set(dealt[3:]) == {None}
