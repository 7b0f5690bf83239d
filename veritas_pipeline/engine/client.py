"""HTTP access to one Nautobot instance, through pynautobot.

Reads page at the server's maximum page size with `depth=0` and every M2M included, and are complete or
fail: a listing whose rows do not add up to the count the server reported is read again, then refused.
Writes are bulk POST/PATCH/DELETE of JSON lists, each sent once: a write whose answer is lost raises
`OutcomeUnknown`, and the applier settles it by reading VeritasBot rather than sending it blindly again.

Every request goes through one loop that knows what a failure means: nothing was sent (connection
refused, 429) is retried for any method; no answer after sending (timeout, reset, 502-504) is retried for
reads only; an error that names no object (401, 403, a missing endpoint, TLS, retries used up) raises
`NautobotUnavailable` at once, so the group stops with one message. Retries back off, pass through the
rate limiter, and end when the group's retry budget is spent: seconds of failed attempts and pauses, not
of running, so a long group still retries late in its run.

The production client is read-only: its session refuses anything but GET before a byte leaves the machine.
A listing reads its first page (which gives the count), then the remaining pages by offset, at most
`read_concurrency` GETs in flight, each built from the configured URL: a `next` link only says whether
there is more, so the token never goes where a rewritten link points. The client is safe to share between
threads (the applier's writers): one session with a connection per request in flight, counters under a
lock, observers called one at a time.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

import pynautobot
import requests
import urllib3.exceptions
from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter

from .bounded import in_chunks, run_bounded

log = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Called once per attempt of a request: (client name, endpoint such as "dcim/devices", HTTP status or None
# when the attempt got no answer (refused, reset, timed out, TLS failure), seconds).
RequestObserver = Callable[[str, str, int | None, float], None]
_OBJECT_ID = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?=/|$)")
# Nautobot 3.2's REST API version; pinned so a server upgrade cannot silently change payload shapes.
API_VERSION = "3.2"
# Answers after which a write may or may not have been committed: a gateway or the server gave up on it.
_LOST_ANSWER = frozenset({502, 503, 504})
# A gateway in front of Nautobot gives up on a request that runs past its timeout (502 or 504; the stack's
# uWSGI router and nginx after 60 s). A listing page that big is asked again at half the size, down to
# _SMALLEST_PAGE rows, instead of being retried as it was: a page of 1,000 cables takes Nautobot minutes.
_GATEWAY_GAVE_UP = frozenset({502, 504})
_SMALLEST_PAGE = 50
_LONGEST_BACKOFF = 30.0
# A listing whose rows never add up to the server's count is read this many times before it is refused
# (a table changing during the read can skip or repeat a row once; a proxy trimming pages does so always).
_LISTING_ATTEMPTS = 3


class ReadOnlyViolation(RuntimeError):
    """A write was attempted through a client that may only read (a programming error)."""


class NautobotWriteError(RuntimeError):
    """Nautobot refused a write; `detail` is Nautobot's own error text (one entry per object for bulk)."""

    def __init__(self, status: int, detail: Any):
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class NautobotUnavailable(RuntimeError):
    """An error that names no object: the instance cannot be used for this request at all."""

    def __init__(self, instance: str, origin: str, method: str, endpoint: str, problem: str):
        super().__init__(f"{instance} Nautobot at {origin}: {method} {endpoint}: {problem}")


class QueryRefused(NautobotUnavailable):
    """A read refused as malformed (HTTP 400: a filter the endpoint does not know, a value it cannot parse)."""


class OutcomeUnknown(Exception):
    """A write was sent and its answer lost (timeout, reset connection, 502-504): it may have been committed."""

    def __init__(self, method: str, endpoint: str, reason: str):
        super().__init__(f"{method} {endpoint}: {reason}; the outcome is unknown")
        self.reason = reason


class IncompleteRead(RuntimeError):
    """A listing did not add up to the count the server reported, on every attempt."""


@dataclass(frozen=True)
class ClientSettings:
    url: str
    token: str = field(repr=False)
    verify_tls: bool = True
    page_size: int = 1000
    timeout: float = 120.0
    retries: int = 5
    backoff: float = 0.5
    rate_limit: float = 0.0  # requests per second; 0 means unlimited
    retry_budget: float = 300.0  # seconds of retrying one group may spend on this instance
    read_concurrency: int = 4  # GETs of one client in flight at once (pages of a listing, chunks by id)


class _RateLimiter:
    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.next_slot = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            delay = self.next_slot - now
            self.next_slot = max(now, self.next_slot) + self.interval
        if delay > 0:
            time.sleep(delay)


class _PacedAdapter(HTTPAdapter):
    """Timeout and rate limit for every request of a session, retries included (they come back through
    `send`: the client retries, not urllib3)."""

    def __init__(self, settings: ClientSettings, connections: int):
        self.timeout = settings.timeout
        self.limiter = _RateLimiter(settings.rate_limit)
        super().__init__(max_retries=0, pool_maxsize=connections)

    def send(self, request, **kwargs):  # noqa: ANN001 - requests' signature
        kwargs["timeout"] = kwargs.get("timeout") or self.timeout
        self.limiter.wait()
        return super().send(request, **kwargs)


class _ReadOnlySession(requests.Session):
    def request(self, method, url, *args, **kwargs):  # noqa: ANN001 - requests' signature
        if method.upper() not in READ_METHODS:
            raise ReadOnlyViolation(f"refused {method.upper()} {url}: this Nautobot client is read-only")
        return super().request(method, url, *args, **kwargs)


class RetryBudget:
    """Seconds one group may spend retrying on an instance: the pauses between attempts and the attempts that
    failed, added up over every thread of the group. Not a deadline: a group may run for hours and still
    retry, as long as its failures have not cost this much. `start` opens a new allowance."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.spent = 0.0
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            self.spent = 0.0

    def charge(self, seconds: float) -> None:
        """Count the time a failed attempt took."""
        with self._lock:
            self.spent += seconds

    def take(self, delay: float) -> bool:
        """Whether a pause of `delay` seconds fits in what is left; if it does, it is counted as spent."""
        with self._lock:
            if self.spent + delay > self.seconds:
                return False
            self.spent += delay
            return True


class _PageTooBig(Exception):
    """A gateway gave up on a listing page: the listing is read again in smaller pages."""


class NautobotClient:
    """Raw-dict reads and bulk writes against one Nautobot, with request counters for reports."""

    def __init__(self, settings: ClientSettings, *, read_only: bool = False, name: str = "nautobot",
                 writers: int = 1):
        """`writers`: threads that may send writes (and their read-backs) through this client at once."""
        if settings.read_concurrency < 1:
            raise ValueError(f"read_concurrency must be 1 or more, got {settings.read_concurrency}")
        self.settings = settings
        self.name = name
        self.read_only = read_only
        self.api = pynautobot.api(settings.url, token=settings.token, api_version=API_VERSION,
                                  verify=settings.verify_tls)
        session = _ReadOnlySession() if read_only else requests.Session()
        session.verify = settings.verify_tls
        session.headers.update(self.api.http_session.headers)
        # A kept-alive connection for every request that can be in flight: the reads, and each writer's.
        adapter = _PacedAdapter(settings, max(DEFAULT_POOLSIZE, settings.read_concurrency + writers))
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self.api.http_session = session
        self.origin = _origin(self.api.base_url)
        self.retry_budget = RetryBudget(settings.retry_budget)
        self.requests_made = 0
        self.observers: list[RequestObserver] = []
        self._lock = threading.Lock()  # requests_made and the observers, shared by the reading and writing threads
        self._reads_in_flight = threading.BoundedSemaphore(settings.read_concurrency)
        session.hooks["response"].append(self._observe)

    def __repr__(self) -> str:
        return f"NautobotClient({self.name!r}, {self.settings.url!r}, read_only={self.read_only})"

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._notify(endpoint_of(response.request.url), response.status_code, response.elapsed.total_seconds())

    def _notify(self, endpoint: str, status: int | None, seconds: float) -> None:
        with self._lock:
            for observer in self.observers:
                observer(self.name, endpoint, status, seconds)

    # ---------------------------------------------------------------- reads
    def list(self, endpoint: str, **filters: Any) -> list[dict]:
        """Every object of an endpoint (or those matching `filters`) as raw JSON dicts; all of them, as many
        as the server counted, or IncompleteRead."""
        # Offset pages are slices of one total order only if the query has one, and some models have none
        # (ContactAssociation): `sort` is Nautobot's ordering parameter, and the id is unique.
        params = {"depth": 0, "exclude_m2m": "false", "limit": self.settings.page_size, "sort": "id", **filters}
        attempt = 1
        while attempt <= _LISTING_ATTEMPTS:
            try:
                rows, count = self._list_once(endpoint, params)
            except _PageTooBig as error:
                params["limit"] = max(params["limit"] // 2, _SMALLEST_PAGE)
                log.warning("%s %s: %s; reading it in pages of %d", self.name, endpoint, error, params["limit"])
                continue
            if count is None or len(rows) == count:
                return rows
            log.warning("%s %s: read %d rows of the %d the server counted (attempt %d of %d)", self.name,
                        endpoint, len(rows), count, attempt, _LISTING_ATTEMPTS)
            attempt += 1
        raise IncompleteRead(f"{self.name} Nautobot at {self.origin}: GET {endpoint}: the listing returned "
                             f"{len(rows)} rows but the server counted {count}, on each of {_LISTING_ATTEMPTS} reads")

    def _list_once(self, endpoint: str, params: dict) -> tuple[list[dict], int | None]:
        """One read of a listing: the first page, then the pages after it by offset, in offset order, up to
        the first page that says it is the last (no `next`, or no rows), as a sequential read would stop."""
        first = self._get_page(endpoint, params)
        count, pages = first.get("count"), [first]
        stride = len(first["results"])  # the server's page size: it caps `limit`
        if first.get("next") and stride:
            offsets = range(stride, max(count or 0, stride + 1), stride)
            pages += self._each(lambda offset: self._get_page(endpoint, {**params, "limit": stride, "offset": offset}),
                                list(offsets))
        received: list[dict] = []
        for page in pages:
            received.extend(page["results"])
            if not (page.get("next") and page["results"]):
                break
        else:  # the table grew after the count: go on page by page, as far as the server says there is more
            while pages[-1].get("next") and pages[-1]["results"]:
                pages.append(self._get_page(endpoint, {**params, "limit": stride, "offset": len(received)}))
                received.extend(pages[-1]["results"])
        if received and "id" in received[0]:
            # Offset paging over a changing table can repeat a row; the last copy wins.
            received = list({row["id"]: row for row in received}.values())
        return received, count

    def list_by_ids(self, endpoint: str, ids: Iterable[str], chunk: int = 100) -> list[dict]:
        chunks = in_chunks(sorted(set(ids)), chunk)
        return [row for rows in self._each(lambda some: self.list(endpoint, id=some), chunks) for row in rows]

    def _each(self, read: Callable[[Any], Any], items: list) -> list:
        """`read` of every item, in the items' order, several at once; the GETs in flight stay within
        `read_concurrency` however these calls nest (a semaphore around each attempt)."""
        return run_bounded(read, items, self.settings.read_concurrency, f"{self.name}-read")

    def get_json(self, path: str, **params: Any) -> Any:
        return self._get(path.strip("/"), params)

    def graphql(self, query: str) -> dict:
        """The `data` of a GraphQL query: a read, retried as reads are."""
        answer = self._call("POST", f"{self.api.base_url}/graphql/", body={"query": query}, read=True).json()
        if answer.get("errors"):
            raise self.unavailable("POST", "graphql", "; ".join(str(error.get("message")) for error in answer["errors"]),
                                   QueryRefused)
        return answer["data"]

    def _get(self, endpoint: str, params: dict, *, page_rows: int = 0) -> dict:
        return self._call("GET", f"{self.api.base_url}/{endpoint}/", params=params, page_rows=page_rows).json()

    def _get_page(self, endpoint: str, params: dict) -> dict:
        """One page of a listing; a page a gateway gave up on raises _PageTooBig while it can be smaller."""
        return self._get(endpoint, params, page_rows=int(params["limit"]))

    def _headers(self) -> dict:
        return {"Authorization": f"Token {self.settings.token}",
                "Accept": f"application/json; version={API_VERSION}"}

    # ---------------------------------------------------------------- writes
    def create(self, endpoint: str, items: list[dict]) -> list[dict]:
        return self._write("POST", endpoint, items)

    def update(self, endpoint: str, items: list[dict]) -> list[dict]:
        return self._write("PATCH", endpoint, items)

    def delete(self, endpoint: str, ids: list[str]) -> None:
        self._write("DELETE", endpoint, [{"id": object_id} for object_id in ids])

    def _write(self, method: str, endpoint: str, items: list[dict]) -> Any:
        if self.read_only:
            raise ReadOnlyViolation(f"refused {method} {endpoint}: the {self.name} client is read-only")
        # Answers carry the M2M fields too (as reads do): the run's rows of what it wrote are those answers,
        # and the row snapshot keeps them for the next run to plan from.
        params = {"exclude_m2m": "false"} if method != "DELETE" else None
        response = self._call(method, f"{self.api.base_url}/{endpoint}/", params=params, body=items)
        return response.json() if response.content else None

    # ---------------------------------------------------------------- one request, retried as it deserves
    def _call(self, method: str, url: str, *, params: dict | None = None, body: Any = None,
              read: bool = False, page_rows: int = 0) -> requests.Response:
        """`page_rows`: the rows a listing page asks for; above _SMALLEST_PAGE, a gateway's giving up on it
        raises _PageTooBig at once (neither retried nor charged to the budget: asked smaller, it is progress)."""
        endpoint, writing = endpoint_of(url), method not in READ_METHODS and not read
        attempt = 0
        while True:
            attempt += 1
            with self._lock:
                self.requests_made += 1
            retry_after = None
            try:
                with contextlib.nullcontext() if writing else self._reads_in_flight:
                    started = time.monotonic()
                    response = self.api.http_session.request(method, url, params=params, json=body,
                                                             headers=self._headers())
            except requests.exceptions.SSLError as error:
                self._notify(endpoint, None, time.monotonic() - started)  # no response for the hook to see
                raise self.unavailable(method, endpoint, f"TLS failure ({_reason(error)})") from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
                self._notify(endpoint, None, time.monotonic() - started)
                sent = not _never_sent(error)
                if sent and writing:
                    raise OutcomeUnknown(method, endpoint, f"no answer ({_reason(error)})") from None
                refused = not sent and "refused" in str(error)
                problem = "connection refused" if refused else f"no answer ({_reason(error)})"
            else:
                status = response.status_code
                if response.ok:
                    return response
                problem = f"HTTP {status}"
                if status in _GATEWAY_GAVE_UP and page_rows > _SMALLEST_PAGE:
                    raise _PageTooBig(f"HTTP {status} for a page of {page_rows} rows")
                if status in (401, 403):
                    raise self.unavailable(method, endpoint, f"HTTP {status}: the token was refused")
                if status == 404 and method != "DELETE":  # a bulk DELETE of ids already gone is settled, not fatal
                    raise self.unavailable(method, endpoint, "HTTP 404: no such endpoint")
                if status == 429:
                    retry_after = _seconds(response.headers.get("Retry-After"))
                elif status in _LOST_ANSWER and writing:
                    raise OutcomeUnknown(method, endpoint, f"HTTP {status}")
                elif writing:
                    raise NautobotWriteError(status, _error_detail(response))
                elif status < 500:
                    raise self.unavailable(method, endpoint, f"HTTP {status}: {response.text[:300]}",
                                           QueryRefused if status == 400 else NautobotUnavailable)
            self.retry_budget.charge(time.monotonic() - started)
            delay = retry_after if retry_after is not None else \
                min(self.settings.backoff * 2 ** (attempt - 1), _LONGEST_BACKOFF)
            if attempt > self.settings.retries or not self.retry_budget.take(delay):
                attempts = f"{attempt} attempt{'s' if attempt > 1 else ''}"
                raise self.unavailable(method, endpoint, f"{problem} ({attempts})")
            log.debug("%s %s %s: %s; retrying in %.1f s", self.name, method, endpoint, problem, delay)
            time.sleep(delay)

    def unavailable(self, method: str, endpoint: str, problem: str,
                    error: type[NautobotUnavailable] = NautobotUnavailable) -> NautobotUnavailable:
        return error(self.name, self.origin.split("://", 1)[1], method, endpoint, problem)


def endpoint_of(url: str) -> str:
    """The REST endpoint of a request URL, object ids folded: ".../api/dcim/devices/<uuid>/" -> "dcim/devices/{id}"."""
    path = urlsplit(url).path
    path = path.split("/api/", 1)[1] if "/api/" in path else path
    return _OBJECT_ID.sub("/{id}", "/" + path.strip("/"))[1:] or "root"


def _origin(url: str) -> str:
    """scheme://host:port of a URL, the port spelled out, so that equal origins compare equal."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def _never_sent(error: Exception) -> bool:
    """Whether a connection error happened before the request left (refused, unreachable, connect timeout)."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    reason = error.args[0] if error.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    return isinstance(reason, urllib3.exceptions.ConnectTimeoutError)  # NewConnectionError included


def _reason(error: Exception) -> str:
    text = str(error)
    for needle, meaning in (("Connection refused", "connection refused"), ("reset by peer", "connection reset"),
                            ("Read timed out", "read timed out"), ("RemoteDisconnected", "connection closed"),
                            ("CERTIFICATE_VERIFY_FAILED", "certificate not trusted")):
        if needle in text:
            return meaning
    return type(error).__name__


def _seconds(header: str | None) -> float | None:
    try:
        return min(float(header), _LONGEST_BACKOFF) if header else None
    except ValueError:
        return None


def _error_detail(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:2000]
