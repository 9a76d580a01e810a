"""T/CEC 102 times: the envelope ``TimeStamp`` and the ``LastQueryTime`` style, in China time.

Naive datetimes are taken as China time (UTC+8), which is what operators' clocks mean.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from ingest.errors import ProtocolError, Ret

__all__ = ["CHINA_TZ", "format_query_time", "format_timestamp", "parse_query_time", "parse_timestamp"]

#: China Standard Time. A fixed offset rather than ``zoneinfo("Asia/Shanghai")``: China has
#: had no daylight saving since 1991, and a fixed offset needs no tz database on the host.
CHINA_TZ = timezone(timedelta(hours=8), "CST")


def _to_china(dt: datetime) -> datetime:
    # Naive datetimes are taken as China time: that is what operators' clocks mean.
    return dt.replace(tzinfo=CHINA_TZ) if dt.tzinfo is None else dt.astimezone(CHINA_TZ)


def format_timestamp(dt: datetime) -> str:
    """Envelope ``TimeStamp``: ``yyyyMMddHHmmss`` in China time (naive = China time).

    >>> format_timestamp(datetime(2024, 1, 31, 16, 0, 5, tzinfo=UTC))
    '20240201000005'
    """
    return _to_china(dt).strftime("%Y%m%d%H%M%S")


_TS_RE = re.compile(r"\d{14}")


def parse_timestamp(s: str) -> datetime:
    """Parse an envelope ``TimeStamp`` into an aware China-time datetime.

    Anything but 14 digits forming a real date raises ``ProtocolError(4003)``; the message
    recognises millisecond epochs, a common non-conforming client.

    >>> parse_timestamp("20240201000005").isoformat()
    '2024-02-01T00:00:05+08:00'
    >>> try:
    ...     parse_timestamp("1706716805000")
    ... except ProtocolError as e:
    ...     print(e.ret, e.msg.split("; ")[1])
    4003 got 13 digits, which looks like a millisecond epoch
    """
    if not isinstance(s, str) or not _TS_RE.fullmatch(s):
        text = str(s)
        if re.fullmatch(r"\d{13}", text):
            hint = "; got 13 digits, which looks like a millisecond epoch"
        elif re.fullmatch(r"\d{10}", text):
            hint = "; got 10 digits, which looks like a seconds epoch"
        else:
            hint = f"; got {text[:40]!r}"
        raise ProtocolError(
            Ret.ENVELOPE, "TimeStamp must be 14 digits yyyyMMddHHmmss in China time" + hint
        )
    try:
        return datetime.strptime(s, "%Y%m%d%H%M%S").replace(tzinfo=CHINA_TZ)
    except ValueError:
        raise ProtocolError(Ret.ENVELOPE, f"TimeStamp {s!r} is not a valid date and time") from None


def format_query_time(dt: datetime) -> str:
    """``LastQueryTime`` style ``yyyy-MM-dd HH:mm:ss`` in China time (naive = China time).

    >>> format_query_time(datetime(2024, 5, 1, 8, 30, tzinfo=CHINA_TZ))
    '2024-05-01 08:30:00'
    """
    return _to_china(dt).strftime("%Y-%m-%d %H:%M:%S")


def parse_query_time(s: str | None) -> datetime | None:
    """Parse ``yyyy-MM-dd HH:mm:ss`` (or a bare ``yyyy-MM-dd``) as aware China time.

    Empty or ``None`` means "no bound" (``LastQueryTime`` empty = all stations) and returns
    ``None``. Bad values are business parameters, hence ``ProtocolError(4004)``.

    >>> parse_query_time("2024-05-01 08:30:00").isoformat()
    '2024-05-01T08:30:00+08:00'
    >>> parse_query_time("2024-05-01").isoformat()
    '2024-05-01T00:00:00+08:00'
    >>> parse_query_time("") is None
    True
    """
    if s is None or (isinstance(s, str) and not s.strip()):
        return None
    if isinstance(s, str):
        for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
            try:
                return datetime.strptime(s.strip(), fmt).replace(tzinfo=CHINA_TZ)
            except ValueError:
                continue
    raise ProtocolError(
        Ret.BUSINESS, f"time {str(s)[:40]!r} is not in the form yyyy-MM-dd HH:mm:ss"
    )
