"""Reliability fixtures: a hand-built station whose connectors have a history written row by row in
January 2026 (its own partition), so every expected second can be counted by hand."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from services.prices.tariff import CHINA_TZ
from services.reliability.hours import refresh_open_hours
from services.reliability.partitions import make_partition

OP = "RLB000001"
DAY = date(2026, 1, 15)


def at(day: date, hour: float = 0) -> datetime:
    """China time on ``day`` (hours may have a fraction)."""
    return datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ) + timedelta(hours=hour)


def build_station(conn: Connection, station_id: str, connectors: int, *, hours: str = "00:00-24:00",
                  interconnected: bool = True) -> tuple[int, list[int]]:
    """A visible station of operator RLB000001 (one pile per connector) with a connector_status row
    per connector; returns (station pk, connector keys)."""
    conn.execute(text("INSERT INTO operators (operator_id, name) VALUES (:o, '可靠性测试') ON CONFLICT DO NOTHING"),
                 {"o": OP})
    pk = conn.execute(text("""
        INSERT INTO stations (operator_id, station_id, name, station_type, station_status, lng_gcj02, lat_gcj02,
                              geom, geom_3857, district_adcode, feed_state, interconnected, busine_hours)
        VALUES (:op, :sid, :name, 1, 50, 113.58, 22.27, ST_SetSRID(ST_MakePoint(113.575, 22.273), 4326),
                ST_Transform(ST_SetSRID(ST_MakePoint(113.575, 22.273), 4326), 3857), 440402, 'active', :ic, :hours)
        RETURNING id"""), {"op": OP, "sid": station_id, "name": f"可靠性站{station_id}", "ic": interconnected,
                           "hours": hours}).scalar_one()
    keys = []
    for i in range(connectors):
        eq = conn.execute(text("INSERT INTO equipment (station_pk, operator_id, equipment_id, equipment_type, power_kw) "
                               "VALUES (:s, :op, :e, 1, 60) RETURNING id"),
                          {"s": pk, "op": OP, "e": f"{station_id}E{i}"}).scalar_one()
        cid = f"{station_id}E{i}C1"
        conn.execute(text("INSERT INTO connectors (equipment_pk, station_pk, operator_id, connector_id, connector_type, "
                          "power_kw) VALUES (:e, :s, :op, :c, 4, 60)"), {"e": eq, "s": pk, "op": OP, "c": cid})
        keys.append(conn.execute(text("INSERT INTO connector_status (operator_id, connector_id, status) "
                                      "VALUES (:op, :c, 1) RETURNING id"), {"op": OP, "c": cid}).scalar_one())
    # its StationStatus history starts long before the days the tests look at
    conn.execute(text("UPDATE station_status_history SET at = :t WHERE station_pk = :s"),
                 {"t": at(date(2025, 12, 1)), "s": pk})
    refresh_open_hours(conn)
    return pk, keys


def history(conn: Connection, key: int, rows: list[tuple[datetime, int | None]], source: str = "p") -> None:
    conn.execute(text("INSERT INTO connector_status_history (at, connector_key, status, source) "
                      "VALUES (:at, :k, :s, :src)"), [{"at": t, "k": key, "s": s, "src": source} for t, s in rows])


def maintenance(conn: Connection, station_pk: int, start: datetime, end: datetime) -> None:
    conn.execute(text("INSERT INTO station_status_history (station_pk, at, station_status) VALUES (:s, :a, 6), "
                      "(:s, :b, 50)"), {"s": station_pk, "a": start, "b": end})


@dataclass
class HandBuilt:
    """Station A (08:00-22:00, maintenance 14:00-15:00 on DAY) with connectors a1, a2, and station B
    (open all day, not interconnected: not public)."""

    a: int
    a1: int
    a2: int
    b: int


@pytest.fixture(scope="module")
def hand_built(engine: Engine) -> Iterator[HandBuilt]:
    d, prev, nxt = DAY, DAY - timedelta(days=1), DAY + timedelta(days=1)
    with engine.begin() as conn:
        for month in (date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)):
            make_partition(conn, month)
        conn.execute(text("DELETE FROM stations WHERE operator_id = :op"), {"op": OP})
        a, (a1, a2) = build_station(conn, "RLBA", 2, hours="08:00-22:00")
        b, (b1,) = build_station(conn, "RLBB", 1, interconnected=False)
        history(conn, a1, [(at(prev, 20), 1), (at(d, 6), 255), (at(d, 9), 3), (at(d, 10), 0), (at(d, 11.5), None),
                           (at(d, 12), 1), (at(d, 16), 255), (at(d, 17), 1), (at(nxt, 9), 2)])
        history(conn, a2, [(at(d, 12), 1)], source="l")
        history(conn, b1, [(at(d, 0), 1)])
        maintenance(conn, a, at(d, 14), at(d, 15))
    yield HandBuilt(a, a1, a2, b)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM stations WHERE operator_id = :op"), {"op": OP})
        conn.execute(text("DELETE FROM connector_status WHERE operator_id = :op"), {"op": OP})
        conn.execute(text("DELETE FROM reliability_days WHERE day BETWEEN '2025-12-01' AND '2026-02-28'"))
