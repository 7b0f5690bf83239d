"""HTTP access to one Nautobot instance, through pynautobot.

Reads page at the server's maximum page size with `depth=0` and every M2M included; writes are bulk
POST/PATCH/DELETE of JSON lists. One `requests` adapter adds what pynautobot lacks: a timeout, retries
with backoff on timeouts, 429 and 5xx, and a rate limit. The production client is read-only: its
session refuses anything but GET before a byte leaves the machine.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

import pynautobot
import requests
from pynautobot.core.query import Request, RequestError
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Called once per HTTP response: (client name, endpoint such as "dcim/devices", HTTP status, seconds).
RequestObserver = Callable[[str, str, int, float], None]
_OBJECT_ID = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?=/|$)")
# Nautobot 3.2's REST API version; pinned so a server upgrade cannot silently change payload shapes.
API_VERSION = "3.2"


class ReadOnlyViolation(RuntimeError):
    """A write was attempted through a client that may only read (a programming error)."""


class NautobotWriteError(RuntimeError):
    """Nautobot refused a write; `detail` is Nautobot's own error text (one entry per object for bulk)."""

    def __init__(self, status: int, detail: Any):
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class ClientSettings:
    url: str
    token: str
    verify_tls: bool = True
    page_size: int = 1000
    timeout: float = 120.0
    retries: int = 5
    backoff: float = 0.5
    rate_limit: float = 0.0  # requests per second; 0 means unlimited


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


class _ResilientAdapter(HTTPAdapter):
    """Timeout, retries and rate limit for every request of a session."""

    def __init__(self, settings: ClientSettings):
        self.timeout = settings.timeout
        self.limiter = _RateLimiter(settings.rate_limit)
        retry = Retry(
            total=settings.retries,
            connect=settings.retries,
            read=settings.retries,
            status=settings.retries,
            backoff_factor=settings.backoff,
            # Every method: a retried POST is harmless because creates carry their UUID (a repeat is refused
            # as "already exists" and the object is adopted on the next run, never duplicated).
            allowed_methods=None,
            status_forcelist=(429, 502, 503, 504),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        super().__init__(max_retries=retry)

    def send(self, request, **kwargs):  # noqa: ANN001 - requests' signature
        kwargs["timeout"] = kwargs.get("timeout") or self.timeout
        self.limiter.wait()
        return super().send(request, **kwargs)


class _ReadOnlySession(requests.Session):
    def request(self, method, url, *args, **kwargs):  # noqa: ANN001 - requests' signature
        if method.upper() not in READ_METHODS:
            raise ReadOnlyViolation(f"refused {method.upper()} {url}: this Nautobot client is read-only")
        return super().request(method, url, *args, **kwargs)


class NautobotClient:
    """Raw-dict reads and bulk writes against one Nautobot, with request counters for reports."""

    def __init__(self, settings: ClientSettings, *, read_only: bool = False, name: str = "nautobot"):
        self.settings = settings
        self.name = name
        self.read_only = read_only
        self.api = pynautobot.api(settings.url, token=settings.token, api_version=API_VERSION,
                                  verify=settings.verify_tls)
        session = _ReadOnlySession() if read_only else requests.Session()
        session.verify = settings.verify_tls
        session.headers.update(self.api.http_session.headers)
        adapter = _ResilientAdapter(settings)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self.api.http_session = session
        self.requests_made = 0
        self.observers: list[RequestObserver] = []
        session.hooks["response"].append(self._observe)

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if self.observers:
            endpoint = endpoint_of(response.request.url)
            for observer in self.observers:
                observer(self.name, endpoint, response.status_code, response.elapsed.total_seconds())

    def _request(self, endpoint: str, filters: dict | None = None) -> Request:
        self.requests_made += 1
        return Request(base=f"{self.api.base_url}/{endpoint}/", http_session=self.api.http_session,
                       filters=filters, token=self.settings.token, api_version=API_VERSION)

    # ---------------------------------------------------------------- reads
    def list(self, endpoint: str, **filters: Any) -> list[dict]:
        """Every object of an endpoint (or those matching `filters`) as raw JSON dicts."""
        params = {"depth": 0, "exclude_m2m": "false", "limit": self.settings.page_size, **filters}
        results: list[dict] = []
        page = self._get(endpoint, params)
        results.extend(page["results"])
        while page.get("next"):
            page = self._get_url(page["next"])
            results.extend(page["results"])
        # Offset paging over a changing table can repeat a row; the last copy wins.
        return list({row["id"]: row for row in results}.values()) if results and "id" in results[0] else results

    def list_by_ids(self, endpoint: str, ids: Iterable[str], chunk: int = 100) -> list[dict]:
        ids = sorted(set(ids))
        rows: list[dict] = []
        for start in range(0, len(ids), chunk):
            rows.extend(self.list(endpoint, id=ids[start:start + chunk]))
        return rows

    def get_json(self, path: str, **params: Any) -> Any:
        return self._get(path.strip("/"), params)

    def _get(self, endpoint: str, params: dict) -> dict:
        self.requests_made += 1
        response = self.api.http_session.get(f"{self.api.base_url}/{endpoint}/", params=params,
                                             headers=self._headers())
        return self._json(response)

    def _get_url(self, url: str) -> dict:
        self.requests_made += 1
        return self._json(self.api.http_session.get(url, headers=self._headers()))

    def _headers(self) -> dict:
        return {"Authorization": f"Token {self.settings.token}",
                "Accept": f"application/json; version={API_VERSION}"}

    @staticmethod
    def _json(response: requests.Response) -> Any:
        if not response.ok:
            raise RequestError(response)
        return response.json()

    # ---------------------------------------------------------------- writes
    def create(self, endpoint: str, items: list[dict]) -> list[dict]:
        return self._write("post", endpoint, items)

    def update(self, endpoint: str, items: list[dict]) -> list[dict]:
        return self._write("patch", endpoint, items)

    def delete(self, endpoint: str, ids: list[str]) -> None:
        self._write("delete", endpoint, [{"id": object_id} for object_id in ids])

    def _write(self, verb: str, endpoint: str, items: list[dict]) -> Any:
        if self.read_only:
            raise ReadOnlyViolation(f"refused {verb.upper()} {endpoint}: the {self.name} client is read-only")
        try:
            return getattr(self._request(endpoint), verb)(items)
        except RequestError as error:
            raise NautobotWriteError(error.req.status_code, _error_detail(error)) from None


def endpoint_of(url: str) -> str:
    """The REST endpoint of a request URL, object ids folded: ".../api/dcim/devices/<uuid>/" -> "dcim/devices/{id}"."""
    path = urlsplit(url).path
    path = path.split("/api/", 1)[1] if "/api/" in path else path
    return _OBJECT_ID.sub("/{id}", "/" + path.strip("/"))[1:] or "root"


def _error_detail(error: RequestError) -> Any:
    try:
        return error.req.json()
    except ValueError:
        return error.error[:2000]
