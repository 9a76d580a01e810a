"""The pull client: the city platform calling one operator's T/CEC 102 interfaces.

One :class:`FeedClient` per operator endpoint. It owns an ``httpx.Client`` with timeouts,
caches the AccessToken until shortly before it expires (renewing it once on Ret 4002), retries
with exponential backoff on Ret -1/500, HTTP 5xx and network errors, numbers ``Seq`` within each
second as the protocol asks, and stops when the operator's time budget is spent.

Every failure that ends a call is a :class:`FeedError` with a message fit for the feed status
page (never a secret).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import httpx

from ingest.crypto import Secrets
from ingest.envelope import build_request, parse_response
from ingest.errors import ProtocolError, Ret
from ingest.objects import stations_from_page, status_infos_from
from ingest.times import format_timestamp

__all__ = ["Endpoint", "FeedClient", "FeedError", "TokenCache"]

log = logging.getLogger("zhcharge.feed.client")

_JSON = "application/json;charset=utf-8"
_RETRY_RETS = (int(Ret.BUSY), int(Ret.SYSTEM))


class FeedError(Exception):
    """A pull that failed for good (after retries); ``retryable`` tells the circuit why."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class Endpoint:
    """How to reach one operator: its base URL (before ``/evcs``), version and our secrets."""

    operator_id: str
    base_url: str
    api_version: str
    secrets: Secrets  # secrets.operator_id is the OperatorID the operator issued to us

    @property
    def key(self) -> tuple:
        return (self.operator_id, self.base_url.rstrip("/"), self.secrets)


class TokenCache:
    """AccessTokens by endpoint, shared by every client of this process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[tuple, tuple[str, float]] = {}

    def get(self, key: tuple) -> str | None:
        with self._lock:
            item = self._tokens.get(key)
        if item and item[1] > time.monotonic():
            return item[0]
        return None

    def put(self, key: tuple, token: str, valid_until: float) -> None:
        with self._lock:
            self._tokens[key] = (token, valid_until)

    def drop(self, key: tuple, token: str | None = None) -> None:
        with self._lock:
            if token is None or self._tokens.get(key, ("",))[0] == token:
                self._tokens.pop(key, None)


#: Process-wide cache, so the scheduler's pulls reuse tokens between runs.
TOKENS = TokenCache()


class _SeqCounter:
    """``Seq`` 0001 upward within one China-time second, restarting each second."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._second = ""
        self._count = itertools.count(1)

    def next(self) -> tuple[datetime, int]:
        with self._lock:
            now = datetime.now(UTC)
            ts = format_timestamp(now)
            if ts != self._second:
                self._second = ts
                self._count = itertools.count(1)
            return now, next(self._count) % 10000


class FeedClient:
    """Calls one operator's interfaces. Use as a context manager (closes the HTTP client)."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        token_margin_s: int = 60,
        deadline: float | None = None,
        tokens: TokenCache | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        self.token_margin_s = token_margin_s
        self.deadline = deadline
        self.tokens = tokens if tokens is not None else TOKENS
        self.requests = 0
        self._seq = _SeqCounter()
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            headers={"Content-Type": _JSON},
            transport=transport,
        )

    def __enter__(self) -> FeedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ plumbing

    def url(self, interface: str) -> str:
        return f"{self.endpoint.base_url.rstrip('/')}/evcs/{self.endpoint.api_version}/{interface}"

    def _check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise FeedError("the operator's time budget for this pull is spent")

    def _sleep(self, attempt: int) -> None:
        delay = self.backoff_s * (2**attempt)
        if self.deadline is not None:
            delay = min(delay, max(0.0, self.deadline - time.monotonic()))
        time.sleep(delay)

    def _post_once(self, interface: str, data: dict, token: str | None):  # noqa: ANN202
        s = self.endpoint.secrets
        now, seq = self._seq.next()
        env = build_request(s.operator_id, data, s, timestamp=now, seq=seq)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.requests += 1
        resp = self._http.post(self.url(interface), json=env, headers=headers)
        try:
            return resp.status_code, parse_response(resp.content, s)
        except ProtocolError as exc:
            if resp.status_code >= 500:
                return resp.status_code, None
            if resp.status_code != 200:
                hint = " (check the operator's base URL and version)" if resp.status_code in (404, 405) else ""
                raise FeedError(f"{interface}: HTTP {resp.status_code} without a valid envelope{hint}",
                                retryable=resp.status_code in (408, 429)) from None
            raise FeedError(f"{interface}: bad response from the operator: {exc.msg}",
                            retryable=exc.ret != Ret.SIGNATURE) from None

    def _call(self, interface: str, data: dict, token: str | None):  # noqa: ANN202
        """POST with retries on network errors, HTTP 5xx and Ret -1/500."""
        last = ""
        for attempt in range(self.retries + 1):
            self._check_deadline()
            try:
                status, parsed = self._post_once(interface, data, token)
            except httpx.TimeoutException:
                last = f"{interface}: timed out"
            except httpx.TransportError as exc:
                last = f"{interface}: network error ({type(exc).__name__})"
            else:
                if parsed is None:
                    last = f"{interface}: HTTP {status}"
                elif int(parsed.ret) in _RETRY_RETS:
                    http = f"HTTP {status}, " if status != 200 else ""
                    last = f"{interface}: {http}Ret {int(parsed.ret)} {parsed.msg}".strip()
                else:
                    return parsed
            if attempt < self.retries:
                log.info("%s %s; retry %d", self.endpoint.operator_id, last, attempt + 1)
                self._sleep(attempt)
        raise FeedError(f"{last} (after {self.retries + 1} attempts)")

    # ------------------------------------------------------------------ token

    def token(self, *, renew: bool = False) -> str:
        key = self.endpoint.key
        if not renew:
            cached = self.tokens.get(key)
            if cached:
                return cached
        s = self.endpoint.secrets
        r = self._call("query_token", {"OperatorID": s.operator_id, "OperatorSecret": s.operator_secret}, None)
        if int(r.ret) != 0:
            raise FeedError(f"query_token: Ret {int(r.ret)} {r.msg}".strip(), retryable=False)
        data = r.data if isinstance(r.data, dict) else {}
        if str(data.get("SuccStat", 1)) != "0" or not data.get("AccessToken"):
            reason = {"1": "unknown OperatorID (ours as the operator knows it)", "2": "wrong OperatorSecret"}.get(
                str(data.get("FailReason")), f"FailReason {data.get('FailReason')}")
            raise FeedError(f"query_token refused: {reason}", retryable=False)
        try:
            ttl = int(data.get("TokenAvailableTime") or 0)
        except (TypeError, ValueError):
            ttl = 0
        token = str(data["AccessToken"])
        margin = min(self.token_margin_s, ttl // 10)
        self.tokens.put(key, token, time.monotonic() + max(0, ttl - margin))
        return token

    def request(self, interface: str, data: dict) -> dict:
        """Call an interface with the cached token; on Ret 4002 renew it once and resend."""
        token = self.token()
        r = self._call(interface, data, token)
        if int(r.ret) == Ret.TOKEN:
            self.tokens.drop(self.endpoint.key, token)
            token = self.token(renew=True)
            r = self._call(interface, data, token)
        if int(r.ret) != 0:
            raise FeedError(f"{interface}: Ret {int(r.ret)} {r.msg}".strip(), retryable=int(r.ret) == Ret.TOKEN)
        if r.data is None:
            return {}
        if not isinstance(r.data, dict):
            raise FeedError(f"{interface}: Data is not a JSON object", retryable=False)
        return r.data

    # ------------------------------------------------------------------ interfaces

    def stations_page(self, page_no: int, page_size: int, last_query_time: str = "") -> dict:
        return self.request("query_stations_info", {
            "LastQueryTime": last_query_time, "PageNo": page_no, "PageSize": page_size})

    def iter_station_pages(self, page_size: int, last_query_time: str = "") -> Iterator[tuple[dict, list[dict]]]:
        """Yield (page, normalised StationInfos) for every page, PageNo 1..PageCount."""
        page_no = 1
        while True:
            page = self.stations_page(page_no, page_size, last_query_time)
            try:
                stations = stations_from_page(page)
            except ProtocolError as exc:
                raise FeedError(f"query_stations_info page {page_no}: {exc.msg}", retryable=False) from None
            yield page, stations
            try:
                count = int(page.get("PageCount") or 0)
            except (TypeError, ValueError):
                raise FeedError(f"query_stations_info page {page_no}: PageCount is not a number",
                                retryable=False) from None
            if page_no >= count or page_no >= 100_000:
                return
            page_no += 1

    def station_status(self, station_ids: list[str]) -> list[dict]:
        if len(station_ids) > 50:
            raise ValueError("at most 50 StationIDs per query_station_status")
        data = self.request("query_station_status", {"StationIDs": list(station_ids)})
        try:
            return status_infos_from(data)
        except ProtocolError as exc:
            raise FeedError(f"query_station_status: {exc.msg}", retryable=False) from None

    def station_stats(self, station_id: str, start: date, end: date) -> dict:
        data = self.request("query_station_stats", {
            "StationID": station_id, "StartTime": start.isoformat(), "EndTime": end.isoformat()})
        stats = data.get("StationStats", data)
        return stats if isinstance(stats, dict) else {}

