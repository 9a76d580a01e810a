"""A window of China dates chosen on a page (``?from=YYYY-MM-DD&to=YYYY-MM-DD``): the last 30
days by default, at most a year, every malformed value a 400 naming the parameter.

Orders belong to the China date they ended on (``charge_orders.day``), so a window is a range of
those dates; :attr:`Window.start` and :attr:`Window.end` are the aware instants that bound it
(China midnight of the first day, and of the day after the last), for tables keyed on times.

>>> w = Window.parse({}, today=date(2026, 12, 6))
>>> w.day_from.isoformat(), w.day_to.isoformat(), w.days, w.start.isoformat()
('2026-11-07', '2026-12-06', 30, '2026-11-07T00:00:00+08:00')
>>> Window.parse({"from": "2026-12-01", "to": ""}, today=date(2026, 12, 6)).as_params()
{'from': '2026-12-01', 'to': '2026-12-06'}
>>> Window.parse({"from": "2026-13-45"})
Traceback (most recent call last):
...
services.errors.BadRequest: 参数 from 应为日期 YYYY-MM-DD / parameter 'from' must be a date YYYY-MM-DD
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from services.errors import BadRequest
from services.prices.tariff import CHINA_TZ

__all__ = ["DEFAULT_DAYS", "MAX_DAYS", "Window", "china_today", "date_param"]

DEFAULT_DAYS = 30
MAX_DAYS = 366
_EARLIEST = date(2000, 1, 1)
_LATEST = date(2099, 12, 31)


def china_today() -> date:
    return datetime.now(CHINA_TZ).date()


def date_param(value: Any, name: str) -> date | None:
    """A ``YYYY-MM-DD`` date from 2000 to 2099; empty is None; anything else is a 400.

    >>> date_param("2026-12-06", "day"), date_param(" ", "day")
    (datetime.date(2026, 12, 6), None)
    """
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    try:
        if len(text) != 10 or not text.isascii():
            raise ValueError
        d = date.fromisoformat(text)
    except ValueError:
        d = None
    if d is None or not _EARLIEST <= d <= _LATEST:
        raise BadRequest(f"参数 {name} 应为日期 YYYY-MM-DD / parameter '{name}' must be a date YYYY-MM-DD", param=name)
    return d


@dataclass(frozen=True, slots=True)
class Window:
    day_from: date
    day_to: date

    @classmethod
    def parse(cls, params: Mapping[str, Any], *, today: date | None = None, default_days: int = DEFAULT_DAYS) -> Window:
        """``from``/``to`` of a query string; a missing end is today, a missing start ``default_days``
        before the end."""
        day_to = date_param(params.get("to"), "to") or today or china_today()
        day_from = date_param(params.get("from"), "from") or day_to - timedelta(days=default_days - 1)
        if day_from > day_to:
            raise BadRequest("开始日期晚于结束日期 / 'from' is after 'to'", param="from")
        if (day_to - day_from).days >= MAX_DAYS:
            raise BadRequest(f"时间范围最长 {MAX_DAYS} 天 / the window is at most {MAX_DAYS} days", param="from")
        return cls(day_from, day_to)

    @classmethod
    def last(cls, days: int = DEFAULT_DAYS, today: date | None = None) -> Window:
        end = today or china_today()
        return cls(end - timedelta(days=days - 1), end)

    @property
    def days(self) -> int:
        return (self.day_to - self.day_from).days + 1

    @property
    def start(self) -> datetime:
        return datetime.combine(self.day_from, time(), CHINA_TZ)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.day_to + timedelta(days=1), time(), CHINA_TZ)

    def as_params(self) -> dict[str, str]:
        return {"from": self.day_from.isoformat(), "to": self.day_to.isoformat()}

    def each_day(self) -> list[date]:
        return [self.day_from + timedelta(days=i) for i in range(self.days)]
