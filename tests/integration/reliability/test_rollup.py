"""The aggregates equal the history they come from: each day's connector rows, a month's sums, a
window read from aggregates and history, the city tables; a late report marks its days stale."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text

from services.reliability.profile import occupancy_profile
from services.reliability.rollup import pending_days, rollup_day
from services.reliability.uptime import connector_uptime, read_coverage, uptime_table

from .conftest import DAY, at

DAYS = [DAY - timedelta(days=1), DAY, DAY + timedelta(days=1)]
LATER = at(date(2026, 2, 10))
FIELDS = ("up_s", "down_s", "unknown_s", "excluded_s", "faults")


@pytest.fixture(scope="module")
def rolled(engine, hand_built):  # noqa: ANN001, ANN201
    with engine.begin() as conn:
        for day in DAYS:
            rollup_day(conn, day)
    return hand_built


def _daily(engine, key: int, day: date) -> dict:  # noqa: ANN001
    with engine.connect() as conn:
        return dict(conn.execute(text(f"SELECT {', '.join(FIELDS)}, last_fault_at FROM connector_daily "
                                      "WHERE connector_key = :k AND day = :d"), {"k": key, "d": day}).mappings().one())


def test_each_day_equals_the_history(engine, rolled) -> None:  # noqa: ANN001
    for key in (rolled.a1, rolled.a2):
        for day in DAYS[1:]:
            with engine.connect() as conn:
                raw = connector_uptime(conn, [key], at(day), at(day + timedelta(days=1)), LATER,
                                       aggregates=False)[key]
            daily = _daily(engine, key, day)
            assert daily == {"up_s": raw.up_s, "down_s": raw.down_s, "unknown_s": raw.unknown_s,
                             "excluded_s": raw.excluded_s, "faults": raw.faults, "last_fault_at": raw.last_fault_at}
    assert _daily(engine, rolled.a1, DAY)["up_s"] == 32400


def test_a_window_from_aggregates_and_history_equals_the_history(engine, rolled) -> None:  # noqa: ANN001
    start, end = at(DAYS[0], 12), at(DAYS[2], 12)  # half a day, a whole aggregated day, half a day
    with engine.connect() as conn:
        cov = read_coverage(conn, DAYS[0], DAYS[2])
        both = connector_uptime(conn, [rolled.a1, rolled.a2], start, end, LATER)
        raw = connector_uptime(conn, [rolled.a1, rolled.a2], start, end, LATER, aggregates=False)
    assert set(DAYS) <= cov.complete
    for key in raw:
        for f in FIELDS:
            assert getattr(both[key], f) == pytest.approx(getattr(raw[key], f), abs=1), (key, f)


def test_month_sums_and_tables(engine, rolled) -> None:  # noqa: ANN001
    month = date(2026, 1, 1)
    with engine.connect() as conn:
        cov = read_coverage(conn, month, date(2026, 1, 31))
        raw = connector_uptime(conn, [rolled.a1, rolled.a2], at(month), at(date(2026, 2, 1)), LATER,
                               aggregates=False)
        by_station = {r["station_pk"]: r for r in uptime_table(conn, month, date(2026, 1, 31), by="station",
                                                               per="month", now=LATER)}
        by_day = [r for r in uptime_table(conn, month, date(2026, 1, 31), by="connector", per="day", now=LATER)
                  if r["connector_key"] == rolled.a1]
        monthly = conn.execute(text("SELECT up_s FROM connector_monthly WHERE connector_key = :k AND month = :m"),
                               {"k": rolled.a1, "m": month}).scalar()
    assert month in cov.months  # its three aggregated days are summed
    assert monthly == sum(_daily(engine, rolled.a1, d)["up_s"] for d in DAYS)
    row = by_station[rolled.a]
    assert row["connectors"] == 2 and row["period"] == month
    for f in ("up_s", "down_s", "excluded_s", "faults"):
        assert float(row[f]) == pytest.approx(sum(getattr(u, f) for u in raw.values()), abs=3), f
    assert row["uptime"] == pytest.approx(float(row["up_s"]) / float(row["up_s"] + row["down_s"]))
    assert rolled.b in by_station  # the table is for regulators: stations that are not public count too
    assert len(by_day) == 18 and {r["period"] for r in by_day} >= set(DAYS)  # Jan 14 .. Jan 31
    assert sum(float(r["up_s"]) for r in by_day) == pytest.approx(raw[rolled.a1].up_s, abs=3)


def test_the_week_profile(engine, rolled) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        occupied, observed = conn.execute(text("SELECT occupied_s, observed_s FROM station_daily "
                                               "WHERE station_pk = :s AND day = :d"), {"s": rolled.a, "d": DAY}).one()
        profile = occupancy_profile(conn, rolled.a, DAY + timedelta(days=7))
    assert occupied[9] == 3600 and observed[9] == 3600  # a1 charging 09:00-10:00, a2 not reporting yet
    assert occupied[13] == 0 and observed[13] == 7200 and observed[11] == 1800  # a1 silent 11:30-12:00
    assert profile[DAY.weekday()][9] == 1.0 and profile[DAY.weekday()][13] == 0.0
    assert profile[DAY.weekday()][3] is None or profile[DAY.weekday()][3] == 0.0


def test_a_late_report_marks_its_days_stale_and_the_next_run_redoes_them(engine, rolled) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        assert conn.execute(text("SELECT zh_status_history_late(:k, :t, CAST(0 AS smallint), 'p')"),
                            {"k": rolled.a1, "t": at(DAY, 13)}).scalar()
        stale = dict(conn.execute(text("SELECT day, stale FROM reliability_days WHERE day = ANY(:d)"),
                                  {"d": DAYS}).all())
    assert stale == {DAYS[0]: False, DAY: True, DAYS[2]: True}  # the change may last into the next day
    with engine.connect() as conn:
        assert [d for d, _ in pending_days(conn, LATER, 900) if d in DAYS] == DAYS[1:]
        raw = connector_uptime(conn, [rolled.a1], at(DAY), at(DAYS[2]), LATER, aggregates=False)[rolled.a1]
        read = connector_uptime(conn, [rolled.a1], at(DAY), at(DAYS[2]), LATER)[rolled.a1]
    # offline from 13:00 to the 16:00 fault now, less the maintenance hour
    assert (raw.up_s, raw.down_s) == (32400 - 7200, 12600 + 7200)
    assert (read.up_s, read.down_s) == (raw.up_s, raw.down_s)  # stale days are read from the history
    with engine.begin() as conn:
        for day in DAYS[1:]:
            rollup_day(conn, day)
    assert _daily(engine, rolled.a1, DAY)["down_s"] == 12600 + 7200
