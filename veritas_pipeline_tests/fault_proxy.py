"""A fault-injecting HTTP reverse proxy for loopback tests, and a trap for leaked tokens.

The pipeline has to survive a network that loses answers, refuses or resets connections, shortens paged lists and
hands out foreign `next` links. `FaultProxy` sits between the pipeline's HTTP client and a real Nautobot and does
those things on purpose and reproducibly (decisions come from a seeded random generator), and it records what it
did, so a test can compare what the client believes with what the upstream committed. `TokenTrap` is a
foreign-looking server that records every request, so a test can prove that a token never went where a rewritten
link pointed.

Standard library only; it listens on and talks to loopback addresses only.
"""

from __future__ import annotations

import collections
import gzip
import http.client
import ipaddress
import json
import random
import re
import socket
import socketserver
import struct
import sys
import threading
import zlib
from dataclasses import dataclass, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

UPSTREAM_TIMEOUT = 300.0
STOP_GRACE_SECONDS = 5.0
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TRUNCATIONS = (None, "drop_last_page", "trim_results")
LIST_KEYS = frozenset({"count", "results", "next"})
ORIGIN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")
# Headers that belong to one connection (RFC 9110 7.6.1) are not passed on. Content-Length is recomputed, because
# the proxy may change the body; Expect is answered by BaseHTTPRequestHandler itself before the body is read.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "expect", "content-length",
})
DECODERS = {"": bytes, "identity": bytes, "gzip": gzip.decompress, "deflate": zlib.decompress}


def require_loopback(host: str) -> str:
    """Refuse anything that is not this machine, so a test can never aim faults or tokens at a real network."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(f"{host!r} is not a loopback address")
    return host


def loopback_origin(url: str) -> tuple[str, int]:
    """(host, port) of a bare http://HOST:PORT origin on loopback; the proxy forwards paths unchanged."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"expected a bare http://HOST:PORT origin, got {url!r}")
    return require_loopback(parts.hostname), parts.port or 80


@dataclass(frozen=True)
class FaultRules:
    """What to break. Everything is off by default.

    Probabilities apply per request: write_* to POST, PUT, PATCH and DELETE, read_* to GET; the kinds of one group
    are exclusive, so their sum must not exceed 1. `path_pattern`, `truncate_pattern`, `stall_after_forward` and
    `commit_late` are regular expressions searched in the request path without its query (`stall_after_forward` and
    `commit_late` in "METHOD path").
    """

    write_lost_answer: float = 0.0  # forward, let the upstream commit, answer 504
    write_refused: float = 0.0  # answer 503 without forwarding
    write_reset: float = 0.0  # forward, then reset the client connection instead of answering
    read_refused: float = 0.0  # answer 503 without forwarding
    read_reset: float = 0.0  # forward, then reset the client connection
    path_pattern: str | None = None  # the probabilistic faults only hit matching paths
    truncate: str | None = None  # "drop_last_page": next := null; "trim_results": drop the last result
    truncate_pattern: str | None = None  # truncate only matching paths; None: every list answer
    rewrite_next_to: str | None = None  # origin (http://HOST:PORT) for every next/previous link of list answers
    stall_after_forward: str | None = None  # forward the first match, then never answer it
    # A gateway that gives up on big pages: a GET asking more than this many rows (`limit`) is answered 504.
    page_limit: int | None = None
    # The first matching write is answered 504 at once and goes upstream only just before the next write with the
    # same method and path (its re-send): a request that commits upstream after its answer was lost.
    commit_late: str | None = None
    # Each fault kind with a probability hits at least once: the first eligible requests of each group get one
    # kind each, in order, before the draws begin. A test asserting that every fault happened stays true for any
    # sequence of requests, however short.
    ensure_each: bool = False

    def __post_init__(self):
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name.startswith(("write_", "read_")) and not 0.0 <= value <= 1.0:
                raise ValueError(f"{field.name}={value!r} is not a probability")
        for method in ("POST", "GET"):
            if sum(probability for _, probability in self.faults_for(method)) > 1.0:
                raise ValueError(f"the fault probabilities for {method} add up to more than 1")
        if self.truncate not in TRUNCATIONS:
            raise ValueError(f"truncate={self.truncate!r}; expected one of {TRUNCATIONS}")
        for pattern in (self.path_pattern, self.truncate_pattern, self.stall_after_forward, self.commit_late):
            try:
                re.compile(pattern or "")
            except re.error as error:
                raise ValueError(f"{pattern!r} is not a regular expression: {error}") from None
        if self.rewrite_next_to is not None:
            loopback_origin(self.rewrite_next_to)

    def faults_for(self, method: str) -> tuple[tuple[str, float], ...]:
        """The (outcome, probability) pairs that can hit a request with this method."""
        if method in WRITE_METHODS:
            return (("write_lost_answer", self.write_lost_answer), ("write_refused", self.write_refused),
                    ("write_reset", self.write_reset))
        if method == "GET":
            return ("read_refused", self.read_refused), ("read_reset", self.read_reset)
        return ()


class ProxiedRequest(NamedTuple):
    """One request as the proxy handled it. `status` is what the client received: None after a reset or a stall.
    A recording proxy also keeps the body of each forwarded write and the rows of each answered GET."""

    method: str
    path: str  # with the query
    outcome: str  # "forwarded" when nothing was done to it, else the outcome names joined by "+"
    status: int | None
    body: bytes = b""  # recording: the request body of a write that reached the upstream
    rows: int = 0  # recording: objects in a GET's 200 answer (a list page's results, else 1 for one object)


class Upstream(NamedTuple):
    """The upstream's whole answer, read before the proxy decides what the client gets."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class Hit(NamedTuple):
    """One request that reached the token trap."""

    method: str
    path: str
    authorization: str | None


class LoopbackServer(ThreadingHTTPServer):
    """A threaded HTTP server that knows its open client connections, so stopping it can close idle keep-alive
    connections instead of waiting for their clients to hang up."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, host: str, handler: type[BaseHTTPRequestHandler], owner):
        self.owner = owner
        self.open_connections: set[socket.socket] = set()
        self.connections_changed = threading.Condition()
        super().__init__((require_loopback(host), 0), handler)

    def server_bind(self):
        """Skip HTTPServer's reverse DNS lookup of the address: it is loopback, and the lookup can be slow."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request, client_address):
        with self.connections_changed:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        super().shutdown_request(request)
        with self.connections_changed:
            self.open_connections.discard(request)
            self.connections_changed.notify_all()

    def handle_error(self, request, client_address):
        """Clients that hang up or are reset are part of the game; only real errors get a traceback."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def close_connections(self):
        with self.connections_changed:
            for connection in self.open_connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.connections_changed.wait_for(lambda: not self.open_connections, timeout=STOP_GRACE_SECONDS)


class BackgroundServer:
    """start(), stop() and `with` for a LoopbackServer served from a daemon thread."""

    def __init__(self, host: str, handler: type[BaseHTTPRequestHandler]):
        self.server = LoopbackServer(host, handler, self)
        self.host, self.port = self.server.server_address[:2]
        self._thread: threading.Thread | None = None
        self._stopped = False

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"{type(self).__name__}:{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(STOP_GRACE_SECONDS)
        self.server.close_connections()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; don't wait for delayed ACKs between

    def log_message(self, format, *args):
        """The owners keep their own records; stderr noise from every request would hide test output."""

    def answer(self, status: int, headers: list[tuple[str, str]], body: bytes, reason: str | None = None) -> None:
        """A whole answer with Content-Length, so keep-alive clients know where it ends."""
        head = self.command == "HEAD"
        self.send_response_only(status, reason)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP or (head and name.lower() == "content-length"):
                self.send_header(name, value)
        if not head and status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def answer_json(self, status: int, document: dict) -> None:
        self.answer(status, [("Content-Type", "application/json")], json.dumps(document).encode())


class ProxyHandler(QuietHandler):
    server: LoopbackServer

    def do_request(self):
        proxy: FaultProxy = self.server.owner
        rules = proxy.rules
        method, target = self.command, self.path
        path = target.split("?", 1)[0]
        if "Transfer-Encoding" in self.headers:
            proxy.record(method, target, ["unsupported"], 501, forwarded=False)
            self.close_connection = True
            self.answer_json(501, {"detail": "fault proxy: request bodies need a Content-Length"})
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))

        if proxy.claim_stall(rules, method, path):
            upstream = self.forward(body)
            proxy.record(method, target, ["stalled"], None, forwarded=upstream is not None)
            proxy.stalled.set()
            proxy.stopping.wait()
            self.reset()
            return

        held, late = proxy.hold_late(rules, method, path, body)
        if held:
            proxy.record(method, target, ["commit_late_held"], 504, forwarded=False)
            self.answer_json(504, {"detail": "fault proxy: the answer was lost (the request commits later)"})
            return
        if late is not None:
            committed = self.forward(late)
            proxy.record(method, target, ["commit_late"], None, forwarded=committed is not None,
                         body=late if proxy.recording else b"")

        if method == "GET" and rules.page_limit is not None and \
                int(parse_qs(urlsplit(target).query).get("limit", ["0"])[0]) > rules.page_limit:
            proxy.record(method, target, ["page_too_big"], 504, forwarded=False)
            self.answer_json(504, {"detail": "fault proxy: the gateway gave up waiting for this page"})
            return
        fault = proxy.draw_fault(rules, method, path)
        if fault in ("write_refused", "read_refused"):
            proxy.record(method, target, [fault], 503, forwarded=False)
            self.answer_json(503, {"detail": f"fault proxy: {fault}"})
            return
        upstream = self.forward(body)
        if upstream is None:
            # The upstream took the request and never answered: a write may still commit, so a recording
            # keeps its body.
            kept = {"body": body} if proxy.recording and method in WRITE_METHODS else {}
            proxy.record(method, target, ["upstream_error"], 502, forwarded=False, **kept)
            self.answer_json(502, {"detail": "fault proxy: the upstream did not answer"})
        elif fault in ("write_reset", "read_reset"):
            proxy.record(method, target, [fault], None, forwarded=True)
            self.reset()
        elif fault == "write_lost_answer":
            proxy.record(method, target, [fault], 504, forwarded=True)
            self.answer_json(504, {"detail": "fault proxy: the answer was lost"})
        else:
            headers, content, outcomes = upstream.headers, upstream.body, []
            if method == "GET" and upstream.status == 200:
                headers, content, outcomes = doctor_list_page(rules, path, headers, content)
            recorded = {}
            if proxy.recording:
                recorded = {"body": body} if method in WRITE_METHODS else {
                    "rows": rows_answered(headers, content) if upstream.status == 200 else 0}
            proxy.record(method, target, outcomes, upstream.status, forwarded=True, **recorded)
            self.answer(upstream.status, headers, content, upstream.reason)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_request

    def forward(self, body: bytes) -> Upstream | None:
        """Send the request upstream as it came, Host and Authorization included, on a connection of its own (so a
        failure can never be retried into a duplicate write); None when the upstream fails."""
        proxy: FaultProxy = self.server.owner
        named_in_connection = {token.strip().lower() for token in self.headers.get("Connection", "").split(",")}
        connection = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=UPSTREAM_TIMEOUT)
        try:
            connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in HOP_BY_HOP and name.lower() not in named_in_connection:
                    connection.putheader(name, value)
            if body or "Content-Length" in self.headers:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            response = connection.getresponse()
            return Upstream(response.status, response.reason, response.getheaders(), response.read())
        except (OSError, http.client.HTTPException):
            return None
        finally:
            connection.close()

    def reset(self) -> None:
        """Abort the client connection with a TCP RST, as a crashing proxy or load balancer would."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass  # already shut down by stop()
        self.rfile.close()
        self.connection.close()


def doctor_list_page(rules: FaultRules, path: str, headers: list[tuple[str, str]],
                     content: bytes) -> tuple[list[tuple[str, str]], bytes, list[str]]:
    """Truncate a paged list answer and rewrite its links as the rules say; anything else passes unchanged."""
    truncating = rules.truncate is not None and (
        rules.truncate_pattern is None or re.search(rules.truncate_pattern, path) is not None)
    encoding = next((value.strip().lower() for name, value in headers if name.lower() == "content-encoding"), "")
    if not (truncating or rules.rewrite_next_to) or encoding not in DECODERS:
        return headers, content, []
    try:
        page = json.loads(DECODERS[encoding](content))
    except (ValueError, OSError, zlib.error):
        return headers, content, []
    if not isinstance(page, dict) or not LIST_KEYS <= page.keys():
        return headers, content, []

    outcomes = []
    if truncating and rules.truncate == "drop_last_page" and page["next"]:
        page["next"] = None
        outcomes.append("truncated")
    elif truncating and rules.truncate == "trim_results" and page["results"]:
        page["results"] = page["results"][:-1]
        outcomes.append("truncated")
    if rules.rewrite_next_to:
        links = {key: page[key] for key in ("next", "previous") if isinstance(page.get(key), str)}
        rewritten = {key: ORIGIN.sub(lambda _: rules.rewrite_next_to, link, count=1) for key, link in links.items()}
        if rewritten != links:
            page.update(rewritten)
            outcomes.append("next_rewritten")
    if not outcomes:
        return headers, content, []
    headers = [(name, value) for name, value in headers if name.lower() != "content-encoding"]
    return headers, json.dumps(page).encode(), outcomes


def rows_answered(headers: list[tuple[str, str]], content: bytes) -> int:
    """Objects in an answer: the results of a list page, 1 for one object, 0 for anything else."""
    encoding = next((value.strip().lower() for name, value in headers if name.lower() == "content-encoding"), "")
    try:
        document = json.loads(DECODERS[encoding](content))
    except (KeyError, ValueError, OSError, zlib.error):
        return 0
    if isinstance(document, dict):
        return len(document["results"]) if isinstance(document.get("results"), list) else 1
    return len(document) if isinstance(document, list) else 0


class FaultProxy(BackgroundServer):
    """A reverse proxy in front of one loopback upstream that breaks requests as `rules` say.

    `stats` counts outcomes ("forwarded" counts every request the upstream answered, whatever happened to the answer
    afterwards); `requests` lists every request in order. Replacing `rules` re-arms `stall_after_forward`.
    With `recording`, each forwarded write keeps its body and each answered GET the number of rows it returned
    (benchmarks: the writes a sync sent, replayable in order, and how much each run read).
    """

    def __init__(self, upstream: str, *, seed: int | str = 0, rules: FaultRules | None = None,
                 host: str = "127.0.0.1", recording: bool = False):
        self.upstream = upstream.rstrip("/")
        self.recording = recording
        self.upstream_host, self.upstream_port = loopback_origin(self.upstream)
        self.stalled = threading.Event()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._ensured: collections.Counter[str] = collections.Counter()  # kinds ensure_each has dealt
        self._rules = rules or FaultRules()
        self._stalled_request: tuple[str, str] | None = None
        self._late: tuple[str, str, bytes] | None = None  # commit_late's held (method, path, body)
        self._late_armed = True
        self._stats: collections.Counter[str] = collections.Counter()
        self._requests: list[ProxiedRequest] = []
        super().__init__(host, ProxyHandler)
        self.url = f"http://{self.host}:{self.port}"

    @property
    def rules(self) -> FaultRules:
        with self._lock:
            return self._rules

    @rules.setter
    def rules(self, rules: FaultRules) -> None:
        with self._lock:
            self._rules = rules
            self._stalled_request = None
            self.stalled.clear()
            self._late, self._late_armed = None, True

    @property
    def stats(self) -> collections.Counter[str]:
        with self._lock:
            return collections.Counter(self._stats)

    @property
    def requests(self) -> list[ProxiedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def stalled_request(self) -> tuple[str, str] | None:
        """(method, path) of the request held by `stall_after_forward`, once one matched."""
        with self._lock:
            return self._stalled_request

    def reset_stats(self) -> None:
        with self._lock:
            self._stats.clear()
            self._requests.clear()

    def stop(self) -> None:
        """Release stalled requests, close client connections and the listening socket."""
        self.stopping.set()
        super().stop()

    def claim_stall(self, rules: FaultRules, method: str, path: str) -> bool:
        if rules.stall_after_forward is None or not re.search(rules.stall_after_forward, f"{method} {path}"):
            return False
        with self._lock:
            # One stall per arming; a request that began under rules since replaced must not use up the new arming.
            if self._stalled_request is not None or rules is not self._rules:
                return False
            self._stalled_request = (method, path)
            return True

    def hold_late(self, rules: FaultRules, method: str, path: str, body: bytes) -> tuple[bool, bytes | None]:
        """(whether commit_late holds this request, the body of the held one to forward before this one)."""
        if rules.commit_late is None or method not in WRITE_METHODS:
            return False, None
        with self._lock:
            if rules is not self._rules:
                return False, None
            if self._late_armed and re.search(rules.commit_late, f"{method} {path}"):
                self._late_armed = False
                self._late = (method, path, body)
                return True, None
            if self._late is not None and self._late[:2] == (method, path):
                late, self._late = self._late[2], None
                return False, late
            return False, None

    def draw_fault(self, rules: FaultRules, method: str, path: str) -> str | None:
        """The fault for this request, if any. One draw per eligible request, so a seed replays a sequence."""
        faults = rules.faults_for(method)
        if not any(probability for _, probability in faults):
            return None
        if rules.path_pattern is not None and not re.search(rules.path_pattern, path):
            return None
        with self._lock:
            if rules.ensure_each:
                owed = [name for name, probability in faults if probability and not self._ensured[name]]
                if owed:
                    self._ensured[owed[0]] = True
                    return owed[0]
            draw = self._random.random()
        for name, probability in faults:
            if draw < probability:
                return name
            draw -= probability
        return None

    def record(self, method: str, target: str, outcomes: list[str], status: int | None, *, forwarded: bool,
               body: bytes = b"", rows: int = 0) -> None:
        """Called before the client can see the outcome, so a test that has its answer finds it recorded."""
        with self._lock:
            if forwarded:
                self._stats["forwarded"] += 1
            self._stats.update(outcomes)
            self._requests.append(ProxiedRequest(method, target, "+".join(outcomes) or "forwarded", status,
                                                 body, rows))


class TrapHandler(QuietHandler):
    server: LoopbackServer

    def do_request(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.owner.record(Hit(self.command, self.path, self.headers.get("Authorization")))
        self.answer_json(404, {"detail": "Not found."})

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_request


class TokenTrap(BackgroundServer):
    """A foreign origin on loopback that answers 404 to everything and records who came with which token.

    127.0.0.2 is a different host from the pipeline's 127.0.0.1 but still this machine (Linux routes all of
    127.0.0.0/8 to loopback); where it cannot be bound the trap falls back to 127.0.0.1 on another port.
    """

    def __init__(self, host: str = "127.0.0.2"):
        self._lock = threading.Lock()
        self._hits: list[Hit] = []
        try:
            super().__init__(host, TrapHandler)
        except OSError:
            if host == "127.0.0.1":
                raise
            super().__init__("127.0.0.1", TrapHandler)
        self.origin = f"http://{self.host}:{self.port}"

    @property
    def hits(self) -> list[Hit]:
        with self._lock:
            return list(self._hits)

    def record(self, hit: Hit) -> None:
        with self._lock:
            self._hits.append(hit)
