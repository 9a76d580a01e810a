"""Opening hours from the free-text ``BusineHours``, as far as uptime needs them.

Uptime leaves out the time a station is closed by its opening hours. ``BusineHours`` is free text
(at most 100 characters in the protocol); the common forms are read and everything else counts as
open all day, so an unreadable text never hides downtime:

* open all the time: ``00:00-24:00``, ``0:00-23:59``, ``24小时``, ``全天``, ``7*24小时``, ``7×24``;
* daily ranges ``08:00-22:00`` (also ``8:00~22:00``, ``08：00至22：00``, several separated by ``,`` ``;``
  ``、`` or spaces; past midnight, ``22:00-06:00``, means two spans), optionally after
  ``营业时间``, ``每天``, ``周一至周日`` and the like (every day);
* anything naming some days only (``周一至周五``), holidays or words not listed: not readable, open
  all day (``readable`` false, for the data-quality pages).

Times are China time (minutes of the day, 0–1440).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

__all__ = ["OpenHours", "parse_busine_hours", "refresh_open_hours"]

DAY_MINUTES = 1440

_WIDE = str.maketrans({"：": ":", "～": "~", "－": "-", "—": "-", "–": "-", "−": "-", "，": ",", "；": ";",
                       "（": "(", "）": ")", "　": " ", "．": "."})
# Phrases that mean "every day" or only label the text; removed before reading.
_EVERY_DAY = re.compile(r"(周|星期)一\s*(至|到|~|-)\s*(周|星期)?(日|天|七)|每天|每日|天天|全年无休|全年|全周|"
                        r"营业时间|开放时间|服务时间|运营时间|充电时间|营业|开放")
_ALWAYS = re.compile(r"7\s*[*×xX]\s*24(\s*小时|\s*[hH])?|24\s*小时|24\s*[hH]|全天候?")
_RANGE = re.compile(r"(\d{1,2})\s*[:.]\s*(\d{2})\s*(?:-|~|至|到)\s*(\d{1,2})\s*[:.]\s*(\d{2})")
_LEFTOVER = re.compile(r"[\s,;、/|():.。]+")


@dataclass(frozen=True)
class OpenHours:
    """Minutes of the day a station is open (``None``: all day), and whether the text was read."""

    spans: tuple[tuple[int, int], ...] | None
    readable: bool

    def multirange(self) -> str | None:
        """The spans as a PostgreSQL ``int4multirange`` literal (``None`` when open all day).

        >>> parse_busine_hours("22:00-06:00").multirange()
        '{[0,360),[1320,1440)}'
        """
        if self.spans is None:
            return None
        return "{" + ",".join(f"[{a},{b})" for a, b in self.spans) + "}"


_ALL_DAY = OpenHours(None, True)
_UNREADABLE = OpenHours(None, False)


def parse_busine_hours(value: str | None) -> OpenHours:
    """Read a ``BusineHours`` text.

    >>> parse_busine_hours("00:00-24:00"), parse_busine_hours("24小时营业"), parse_busine_hours("7×24")
    (OpenHours(spans=None, readable=True), OpenHours(spans=None, readable=True), OpenHours(spans=None, readable=True))
    >>> parse_busine_hours("08:00-22:00").spans, parse_busine_hours("营业时间：8:00～12:00，14：00至20:30").spans
    (((480, 1320),), ((480, 720), (840, 1230)))
    >>> parse_busine_hours("周一至周日 06:30-23:30").spans, parse_busine_hours("0:00-23:59").spans
    (((390, 1410),), None)
    >>> parse_busine_hours("22:00-06:00").spans
    ((0, 360), (1320, 1440))
    >>> parse_busine_hours("周一至周五 08:00-18:00"), parse_busine_hours(None), parse_busine_hours("25:00-26:00")
    (OpenHours(spans=None, readable=False), OpenHours(spans=None, readable=False), OpenHours(spans=None, readable=False))
    """
    if not value or not value.strip():
        return _UNREADABLE
    s = value.translate(_WIDE)
    s = _EVERY_DAY.sub(" ", s)
    always = bool(_ALWAYS.search(s))
    s = _ALWAYS.sub(" ", s)
    spans: list[tuple[int, int]] = []
    for m in _RANGE.finditer(s):
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        begin, end = h1 * 60 + m1, h2 * 60 + m2
        if m1 > 59 or m2 > 59 or begin >= DAY_MINUTES or end > DAY_MINUTES:
            return _UNREADABLE
        if end == DAY_MINUTES - 1:  # 23:59 means the end of the day
            end = DAY_MINUTES
        if end == begin:
            if begin:
                return _UNREADABLE
            end = DAY_MINUTES  # 00:00-00:00: the whole day
        spans += [(begin, end)] if begin < end else [(begin, DAY_MINUTES), (0, end)]
    if _LEFTOVER.sub("", _RANGE.sub("", s)) or not (spans or always):
        return _UNREADABLE
    if always:
        return _ALL_DAY
    merged: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    if merged == [(0, DAY_MINUTES)]:
        return _ALL_DAY
    return OpenHours(tuple(merged), True)


def refresh_open_hours(conn: Connection) -> int:
    """Read the hours of every station whose ``busine_hours`` is new or changed; returns how many."""
    rows = conn.execute(text(
        "SELECT s.id, s.busine_hours FROM stations s LEFT JOIN station_open_hours h ON h.station_pk = s.id "
        "WHERE h.station_pk IS NULL OR h.busine_hours IS DISTINCT FROM s.busine_hours")).all()
    if not rows:
        return 0
    values = []
    for pk, hours in rows:
        parsed = parse_busine_hours(hours)
        values.append({"pk": pk, "text": hours, "open": parsed.multirange(), "readable": parsed.readable})
    conn.execute(text(
        "INSERT INTO station_open_hours (station_pk, busine_hours, open_minutes, readable, updated_at) "
        "VALUES (:pk, :text, CAST(:open AS int4multirange), :readable, now()) "
        "ON CONFLICT (station_pk) DO UPDATE SET busine_hours = EXCLUDED.busine_hours, "
        "open_minutes = EXCLUDED.open_minutes, readable = EXCLUDED.readable, updated_at = now()"), values)
    return len(values)
