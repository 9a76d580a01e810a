"""A station's status history and reliability over a window, as the open API gives them.

``station_connectors`` is the entry point for anything per station: the connectors of a visible
station (the same visibility as ``/api/v1/stations/{id}``) with their history key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from services.reliability.uptime import Coverage, connector_uptime, keyed, query
from services.reliability.window import china_date, iso
from services.search.prepared import prepared_rows, to_pyformat
from services.stations.filters import VISIBLE_SQL

__all__ = ["OPEN_TOLERANCE", "StationConnector", "merge_intervals", "station_connectors", "station_reliability",
           "status_history"]

#: a window that ends this close to now (clocks differ a little) reaches the present: its last
#: interval is still open (``to`` null)
OPEN_TOLERANCE = timedelta(seconds=5)

_INTERVALS_SQL = to_pyformat(keyed(query("status_intervals.sql"))
                             + "SELECT iv.key, iv.a, iv.b, iv.status FROM iv ORDER BY iv.key, iv.a")

# The connectors of a visible station, with what the aggregates hold of a range of days (one round trip).
_CONNECTORS_SQL = to_pyformat(
    "SELECT c.connector_id, cs.id AS key, "
    "ARRAY(SELECT day FROM reliability_days WHERE day BETWEEN :d0 AND :d1 ORDER BY day) AS days, "
    "ARRAY(SELECT aggregated_until FROM reliability_days WHERE day BETWEEN :d0 AND :d1 ORDER BY day) AS untils, "
    "ARRAY(SELECT stale FROM reliability_days WHERE day BETWEEN :d0 AND :d1 ORDER BY day) AS stales, "
    "ARRAY(SELECT month FROM uptime_months WHERE month BETWEEN :d0 AND :d1 ORDER BY month) AS months, "
    "ARRAY(SELECT days FROM uptime_months WHERE month BETWEEN :d0 AND :d1 ORDER BY month) AS month_days "
    "FROM stations s JOIN connectors c ON c.station_pk = s.id "
    "LEFT JOIN connector_status cs ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id "
    f"WHERE s.id = :id AND {VISIBLE_SQL} ORDER BY c.connector_id")
_VISIBLE = text(f"SELECT 1 FROM stations s WHERE s.id = :id AND {VISIBLE_SQL}")


@dataclass(frozen=True)
class StationConnector:
    connector_id: str
    key: int | None
    """``connector_status.id`` (``None``: never reported)."""


def station_connectors(conn: Connection, station_pk: int, *,
                       days: tuple[date, date] | None = None) -> tuple[list[StationConnector], Coverage] | None:
    """The connectors of a visible station in ConnectorID order, and what the aggregates hold of the
    China ``days`` (first, last); ``None`` when there is no such station."""
    d0, d1 = (days[0].replace(day=1), days[1]) if days else (None, None)
    rows = prepared_rows(conn, _CONNECTORS_SQL, {"id": station_pk, "d0": d0, "d1": d1})
    if not rows:
        return ([], Coverage()) if conn.execute(_VISIBLE, {"id": station_pk}).first() else None
    r = rows[0]
    coverage = Coverage.of(list(zip(r["days"], r["untils"], r["stales"], strict=True)),
                           list(zip(r["months"], r["month_days"], strict=True)))
    return [StationConnector(x["connector_id"], x["key"]) for x in rows], coverage


def merge_intervals(rows: list[tuple[datetime, datetime, int | None]]) -> list[list[Any]]:
    """Consecutive intervals of one status become one (a carried month start, a late report), and an
    interval shorter than a millisecond before another goes (two reports in one second, the later
    one kept a microsecond after the first: the later one wins).

    >>> t = lambda m, us=0: datetime(2026, 12, 6, 8, m, 0, us)
    >>> [(a.minute, b.minute, s) for a, b, s in merge_intervals([(t(0), t(5), 1), (t(5), t(9), 1), (t(9), t(12), 3)])]
    [(0, 9, 1), (9, 12, 3)]
    >>> [(a.minute, a.microsecond, s) for a, b, s in merge_intervals([(t(3), t(3, 1), 1), (t(3, 1), t(7), 3)])]
    [(3, 0, 3)]
    """
    out: list[list[Any]] = []
    carry: datetime | None = None
    for i, (a, b, status) in enumerate(rows):
        a = carry or a
        if b - a < timedelta(milliseconds=1) and i + 1 < len(rows):
            carry = a
            continue
        carry = None
        if out and out[-1][2] == status and out[-1][1] == a:
            out[-1][1] = b
        else:
            out.append([a, b, status])
    return out


def status_history(conn: Connection, station_pk: int, start: datetime, end: datetime,
                   now: datetime) -> dict[str, Any] | None:
    """``{station_id, connectors: [{connector_id, intervals: [{status, from, to}]}]}``: each connector's
    statuses in time order, clipped to [start, end); ``to`` is null for the interval still open when the
    window reaches the present; ``status`` null while the connector was silent. ``None``: no such
    visible station."""
    found = station_connectors(conn, station_pk)
    if found is None:
        return None
    connectors, _ = found
    keys = [c.key for c in connectors if c.key is not None]
    by_key: dict[int, list[tuple[datetime, datetime, int | None]]] = {}
    if keys and start < min(end, now):
        for r in prepared_rows(conn, _INTERVALS_SQL, {"keys": keys, "starts": [start], "ends": [end], "now": now}):
            by_key.setdefault(r["key"], []).append((r["a"], r["b"], r["status"]))
    still_open = end >= now - OPEN_TOLERANCE
    out = []
    for c in connectors:
        merged = merge_intervals(by_key.get(c.key, [])) if c.key is not None else []
        intervals = [{"status": status, "from": iso(a), "to": iso(b)} for a, b, status in merged]
        if intervals and still_open:
            intervals[-1]["to"] = None
        out.append({"connector_id": c.connector_id, "intervals": intervals})
    return {"station_id": station_pk, "connectors": out}


def station_reliability(conn: Connection, station_pk: int, start: datetime, end: datetime,
                        now: datetime) -> dict[str, Any] | None:
    """``{station_id, from, to, uptime, connectors: [{connector_id, uptime, down_seconds, faults}]}`` over
    [start, end) (see :mod:`services.reliability.uptime`); ``None``: no such visible station."""
    found = station_connectors(conn, station_pk, days=(china_date(start), china_date(end)))
    if found is None:
        return None
    connectors, coverage = found
    per_key = connector_uptime(conn, [c.key for c in connectors if c.key is not None], start, end, now,
                               coverage=coverage)
    up = down = 0.0
    items = []
    for c in connectors:
        u = per_key.get(c.key) if c.key is not None else None
        if u is not None:
            up, down = up + u.up_s, down + u.down_s
        items.append({"connector_id": c.connector_id, "uptime": _ratio(u.uptime) if u else None,
                      "down_seconds": round(u.down_s) if u else 0, "faults": u.faults if u else 0})
    return {"station_id": station_pk, "from": iso(start), "to": iso(end),
            "uptime": _ratio(up / (up + down)) if up + down > 0 else None, "connectors": items}


def _ratio(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
