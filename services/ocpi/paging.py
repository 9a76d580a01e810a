"""The parameters of OCPI list requests and the ``Link`` to the next page.

OCPI paginates with ``offset``/``limit`` and filters on ``last_updated`` with ``date_from``
(inclusive) and ``date_to`` (exclusive). An offset alone is not stable while data changes: a station
withdrawn from an earlier page shifts every later one back, and the client skips one. So lists are
ordered by an immutable key (the station's id; for tariffs the tariff's id and its operator) and
the ``Link`` of the next page carries, besides ``offset`` and ``limit`` and the client's filters,
``after``: the key of the last object sent. A client that follows ``Link`` gets every object that
matched throughout the walk exactly once, whatever changes meanwhile; one that builds its own
``offset`` without ``after`` gets plain offset paging.

Every problem is OCPI 2001 naming the parameter; unknown parameters too (a typo such as
``date_form`` must not silently widen an answer).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from services.ocpi.errors import bad_parameter

__all__ = ["ListQuery", "MAX_OFFSET", "next_link", "parse_list"]

MAX_OFFSET = 2**31 - 1
_KNOWN = ("date_from", "date_to", "offset", "limit", "after")
_MAX_TEXT = 64


def _single(params: Any, name: str) -> str | None:
    values = params.getall(name, []) if hasattr(params, "getall") else (
        [params[name]] if name in params else [])
    if len(values) > 1:
        raise bad_parameter(name, f"parameter '{name}' is given {len(values)} times; give it once")
    return values[0] if values else None


def _datetime(params: Any, name: str) -> tuple[datetime | None, str | None]:
    """OCPI DateTime (RFC 3339; no zone means UTC; fractional seconds allowed)."""
    raw = _single(params, name)
    if raw is None:
        return None, None
    value = raw.strip().replace(" ", "+")  # a '+' of an unencoded offset arrives as a space
    moment = None
    if "T" in value.upper() and len(value) <= _MAX_TEXT:
        try:
            moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        except ValueError:
            moment = None
    if moment is None:
        raise bad_parameter(name, f"parameter '{name}' must be an OCPI DateTime such as 2026-12-06T08:00:00Z, "
                                  f"got {raw[:40]!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not 1970 <= moment.year <= 9000:
        raise bad_parameter(name, f"parameter '{name}' is out of range (years 1970 to 9000)")
    return moment, raw


def _int(params: Any, name: str, low: int, high: int) -> int | None:
    raw = _single(params, name)
    if raw is None:
        return None
    text = raw.strip()
    if not text.isdigit() or len(text) > 12 or not low <= int(text) <= high:
        raise bad_parameter(name, f"parameter '{name}' must be a whole number from {low} to {high}, got {raw[:40]!r}")
    return int(text)


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A parsed list request. ``after`` is the keyset position (a tuple of the sort key), ``None`` on
    the first page or for plain offset paging; ``raw`` keeps the client's date texts for the Link."""

    date_from: datetime | None
    date_to: datetime | None
    offset: int
    limit: int
    after: tuple[Any, ...] | None
    raw: tuple[tuple[str, str], ...]


def parse_list(params: Mapping[str, Any], *, default_limit: int, max_limit: int, key: Any) -> ListQuery:
    """Read ``date_from``, ``date_to``, ``offset``, ``limit`` and ``after`` (decoded by ``key``, which
    raises ValueError for a bad one). A ``limit`` above ``max_limit`` is lowered to it (OCPI: the
    server may return fewer; ``X-Limit`` says how many).

    >>> q = parse_list({"limit": "5000", "date_from": "2026-12-06T08:00:00Z"}, default_limit=100, max_limit=500,
    ...                key=int)
    >>> q.limit, q.offset, q.date_from.isoformat(), q.raw
    (500, 0, '2026-12-06T08:00:00+00:00', (('date_from', '2026-12-06T08:00:00Z'),))
    >>> parse_list({"limit": "0"}, default_limit=100, max_limit=500, key=int)
    Traceback (most recent call last):
    ...
    services.ocpi.errors.OcpiError: parameter 'limit' must be a whole number from 1 to 2147483647, got '0'
    """
    for name in params.keys():
        if name not in _KNOWN:
            raise bad_parameter(str(name)[:60], f"unknown parameter '{str(name)[:60]}'; known parameters: "
                                                + ", ".join(_KNOWN))
    date_from, raw_from = _datetime(params, "date_from")
    date_to, raw_to = _datetime(params, "date_to")
    if date_from is not None and date_to is not None and date_from > date_to:
        raise bad_parameter("date_to", "parameter 'date_to' is before 'date_from'")
    offset = _int(params, "offset", 0, MAX_OFFSET) or 0
    limit = _int(params, "limit", 1, MAX_OFFSET)
    limit = default_limit if limit is None else min(limit, max_limit)
    after_text = _single(params, "after")
    after = None
    if after_text is not None:
        try:
            after = key(after_text) if len(after_text) <= _MAX_TEXT else None
        except (ValueError, TypeError):
            after = None
        if after is None:
            raise bad_parameter("after", "parameter 'after' is not a position this server gave in a Link header")
    raw = tuple((n, v) for n, v in (("date_from", raw_from), ("date_to", raw_to)) if v is not None)
    return ListQuery(date_from, date_to, offset, limit, after, raw)


def next_link(base_url: str, q: ListQuery, returned: int, after: str) -> str:
    """The ``Link`` header of the next page: the client's filters, the next offset, the limit and the
    keyset position after the last object sent.

    >>> q = parse_list({"date_from": "2026-12-06T08:00:00Z"}, default_limit=2, max_limit=500, key=int)
    >>> next_link("https://x.cn/ocpi/2.2.1/locations", q, 2, "17")
    '<https://x.cn/ocpi/2.2.1/locations?date_from=2026-12-06T08%3A00%3A00Z&offset=2&limit=2&after=17>; rel="next"'
    """
    query = urlencode([*q.raw, ("offset", str(q.offset + returned)), ("limit", str(q.limit)), ("after", after)])
    return f'<{base_url}?{query}>; rel="next"'
