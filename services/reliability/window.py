"""Time windows of the reliability endpoints: ``from`` and ``to`` as ISO 8601, China days.

Times in: ISO 8601 with an offset (``Z``, ``+08:00``; a ``+`` that arrived as a space is read as
one), or without one, taken as UTC. Out: UTC with its offset.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.errors import BadRequest
from services.prices.tariff import CHINA_TZ
from services.stations.filters import _single

__all__ = ["Window", "china_date", "china_midnight", "iso", "parse_time", "parse_window"]

_SPACED_OFFSET = re.compile(r"^(.*\d)\s(\d{2}(?::?\d{2})?)$")


def parse_time(value: str, name: str) -> datetime:
    """An ISO 8601 time; 400 naming the parameter when it is not one.

    >>> parse_time("2026-12-06T08:00:00Z", "from").isoformat(), parse_time("2026-12-06T16:00:00 08:00", "to")
    ('2026-12-06T08:00:00+00:00', datetime.datetime(2026, 12, 6, 8, 0, tzinfo=datetime.timezone.utc))
    >>> parse_time("2026-12-06", "from").isoformat()
    '2026-12-06T00:00:00+00:00'
    >>> parse_time("yesterday", "from")
    Traceback (most recent call last):
    ...
    services.errors.BadRequest: parameter 'from' must be an ISO 8601 time such as 2026-12-06T08:00:00Z, not 'yesterday'
    """
    text = value.strip()
    spaced = _SPACED_OFFSET.match(text)
    if spaced and ("T" in text or text.count(":") >= 2):
        text = f"{spaced.group(1)}+{spaced.group(2)}"
    try:
        at = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise BadRequest(f"parameter '{name}' must be an ISO 8601 time such as 2026-12-06T08:00:00Z, "
                         f"not {value[:40]!r}", param=name) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    try:
        at = at.astimezone(UTC)
    except (ValueError, OverflowError):
        at = None  # type: ignore[assignment]
    if at is None or not 1970 <= at.year <= 9000:
        raise BadRequest(f"parameter '{name}' is out of range (years 1970 to 9000)", param=name)
    return at


def iso(at: datetime | None) -> str | None:
    """UTC with its offset, whole seconds unless the time has a fraction.

    >>> iso(datetime(2026, 12, 6, 16, 0, tzinfo=CHINA_TZ)), iso(None)
    ('2026-12-06T08:00:00+00:00', None)
    """
    return None if at is None else at.astimezone(UTC).isoformat()


def china_date(at: datetime) -> date:
    return at.astimezone(CHINA_TZ).date()


def china_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ)


def _one_year_after(at: datetime) -> datetime:
    try:
        return at.replace(year=at.year + 1)
    except ValueError:  # 29 February
        return at.replace(year=at.year + 1, month=3, day=1)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


def parse_window(params: Mapping[str, Any], now: datetime, default: timedelta) -> Window:
    """``from`` and ``to`` of a request (``to`` defaults to now, ``from`` to ``default`` before
    ``to``): ``from`` must be before ``to`` and the window at most a year long.

    >>> now = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
    >>> parse_window({"from": "2026-12-05T08:00:00Z"}, now, timedelta(days=30))
    Window(start=datetime.datetime(2026, 12, 5, 8, 0, tzinfo=datetime.timezone.utc), end=datetime.datetime(2026, 12, 6, 8, 0, tzinfo=datetime.timezone.utc))
    >>> parse_window({"from": "2026-12-06T08:00:00Z", "to": "2026-12-06T08:00:00Z"}, now, timedelta(days=1))
    Traceback (most recent call last):
    ...
    services.errors.BadRequest: parameter 'from' must be before 'to' (2026-12-06T08:00:00+00:00 is not before 2026-12-06T08:00:00+00:00)
    >>> parse_window({"from": "2025-12-06T07:59:59Z"}, now, timedelta(days=1))
    Traceback (most recent call last):
    ...
    services.errors.BadRequest: the window from 'from' to 'to' is longer than a year (at most 2025-12-06T07:59:59+00:00 to 2026-12-06T07:59:59+00:00)
    """
    from_text, to_text = _single(params, "from"), _single(params, "to")
    end = parse_time(to_text, "to") if to_text else now
    try:
        start = parse_time(from_text, "from") if from_text else end - default
    except OverflowError:
        raise BadRequest("parameter 'to' is out of range", param="to") from None
    if start >= end:
        raise BadRequest(f"parameter 'from' must be before 'to' ({iso(start)} is not before {iso(end)})",
                         param="from" if from_text else "to")
    if end > _one_year_after(start):
        raise BadRequest(f"the window from 'from' to 'to' is longer than a year (at most {iso(start)} to "
                         f"{iso(_one_year_after(start))})", param="from" if from_text else "to")
    return Window(start, end)
