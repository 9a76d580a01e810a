"""Uptime on a history written by hand, with every second counted by hand: up, down, unknown
(silence, nothing reported yet), and what is excluded (opening hours, announced maintenance)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text

from services.reliability.history import station_reliability, status_history
from services.reliability.hours import refresh_open_hours
from services.reliability.uptime import connector_uptime

from .conftest import DAY, at

NEXT = DAY + timedelta(days=1)
LATER = at(DAY + timedelta(days=5))

# Station A is open 08:00-22:00 and announced maintenance 14:00-15:00 on DAY: 8 + 2 + 1 hours excluded.
# a1: 1 (since the day before) | 06:00 fault | 09:00 charging | 10:00 offline | 11:30 silent | 12:00 free
#     | 16:00 fault | 17:00 free
A1 = {"up_s": 1 * 3600 + 3 * 3600 + 5 * 3600,            # 09-10, 12-16 less 14-15, 17-22
      "down_s": 1 * 3600 + 1.5 * 3600 + 1 * 3600,       # 08-09 (fault before opening: excluded), 10-11:30, 16-17
      "unknown_s": 0.5 * 3600,                          # 11:30-12:00
      "excluded_s": 11 * 3600, "faults": 1}             # the 06:00 fault fell while closed: not counted
# a2: first report 12:00 free; nothing is counted before it (14-15 and 22-24 are excluded after it)
A2 = {"up_s": 9 * 3600, "down_s": 0, "unknown_s": 0, "excluded_s": 3 * 3600, "faults": 0}


def _seconds(u) -> dict:  # noqa: ANN001
    return {"up_s": u.up_s, "down_s": u.down_s, "unknown_s": u.unknown_s, "excluded_s": u.excluded_s,
            "faults": u.faults}


def test_a_day_counted_by_hand(engine, hand_built) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        got = connector_uptime(conn, [hand_built.a1, hand_built.a2], at(DAY), at(NEXT), LATER, aggregates=False)
    assert _seconds(got[hand_built.a1]) == A1 and _seconds(got[hand_built.a2]) == A2
    assert got[hand_built.a1].last_fault_at == at(DAY, 16)
    assert got[hand_built.a1].uptime == pytest.approx(32400 / 45000)  # 0.72
    assert sum(A1[k] for k in ("up_s", "down_s", "unknown_s", "excluded_s")) == 86400


def test_part_of_a_day_and_now(engine, hand_built) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        part = connector_uptime(conn, [hand_built.a1], at(DAY, 9.5), at(DAY, 12.5), LATER, aggregates=False)
        # "now" cuts the window: nothing after it is observed
        upto = connector_uptime(conn, [hand_built.a1], at(DAY), at(NEXT), at(DAY, 13), aggregates=False)
    assert _seconds(part[hand_built.a1]) == {"up_s": 3600, "down_s": 5400, "unknown_s": 1800, "excluded_s": 0,
                                             "faults": 0}
    assert _seconds(upto[hand_built.a1]) == {"up_s": 7200, "down_s": 9000, "unknown_s": 1800, "excluded_s": 28800,
                                             "faults": 0}


def test_the_station_adds_its_connectors(engine, hand_built) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        body = station_reliability(conn, hand_built.a, at(DAY), at(NEXT), LATER)
    assert body["station_id"] == hand_built.a and body["from"] == "2026-01-14T16:00:00+00:00"
    assert body["uptime"] == pytest.approx((A1["up_s"] + A2["up_s"]) / (A1["up_s"] + A1["down_s"] + A2["up_s"]),
                                           abs=1e-6)
    assert body["connectors"] == [
        {"connector_id": "RLBAE0C1", "uptime": 0.72, "down_seconds": 12600, "faults": 1},
        {"connector_id": "RLBAE1C1", "uptime": 1.0, "down_seconds": 0, "faults": 0}]
    with engine.connect() as conn:  # a window before anything was reported: nothing observed
        early = station_reliability(conn, hand_built.a, at(DAY - timedelta(days=3)), at(DAY - timedelta(days=2)),
                                    LATER)
        assert station_reliability(conn, hand_built.b, at(DAY), at(NEXT), LATER) is None  # not public
    assert early["uptime"] is None and all(c["uptime"] is None for c in early["connectors"])


def test_unreadable_hours_exclude_nothing(engine, hand_built) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        conn.execute(text("UPDATE stations SET busine_hours = '周一至周五 08:00-22:00' WHERE id = :id"),
                     {"id": hand_built.a})
        refresh_open_hours(conn)
        got = connector_uptime(conn, [hand_built.a1], at(DAY), at(NEXT), LATER, aggregates=False)[hand_built.a1]
        readable = conn.execute(text("SELECT readable FROM station_open_hours WHERE station_pk = :id"),
                                {"id": hand_built.a}).scalar()
        conn.rollback()
    assert readable is False
    # only the maintenance hour is excluded now; the 06:00 fault counts
    assert (got.excluded_s, got.faults, got.up_s) == (3600, 2, 6 * 3600 + 3600 + 3 * 3600 + 7 * 3600)


def test_status_history_intervals(engine, hand_built) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        body = status_history(conn, hand_built.a, at(DAY, 10.5), at(DAY, 17.5), LATER)
        still = status_history(conn, hand_built.a, at(NEXT, 8), at(NEXT, 10), at(NEXT, 9.5))
    a1 = body["connectors"][0]["intervals"]
    assert [(i["status"], i["from"], i["to"]) for i in a1] == [
        (0, "2026-01-15T02:30:00+00:00", "2026-01-15T03:30:00+00:00"),
        (None, "2026-01-15T03:30:00+00:00", "2026-01-15T04:00:00+00:00"),
        (1, "2026-01-15T04:00:00+00:00", "2026-01-15T08:00:00+00:00"),
        (255, "2026-01-15T08:00:00+00:00", "2026-01-15T09:00:00+00:00"),
        (1, "2026-01-15T09:00:00+00:00", "2026-01-15T09:30:00+00:00")]  # clipped to the window, which is over
    assert body["connectors"][1]["intervals"] == [
        {"status": 1, "from": "2026-01-15T04:00:00+00:00", "to": "2026-01-15T09:30:00+00:00"}]
    # a window reaching the present: the last interval is open
    assert [(i["status"], i["to"]) for i in still["connectors"][0]["intervals"]] == [
        (1, "2026-01-16T01:00:00+00:00"), (2, None)]
