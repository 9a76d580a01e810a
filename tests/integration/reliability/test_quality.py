"""Feed truth and the data-quality table (issue 16, item 5) on a month built by hand: history rows
written as the feed writes them (a row per change, carried month starts), orders stored through the
receiver's store, a pull log and station archives; every category is found exactly, the table's
numbers are those of their definitions, the pages and the workbook show them, an operator sees its
own rows only, and bad input is a 400 naming the parameter.

The month M is last China month (closed). Operator Q1:

* station S1, connectors c1 and c2: c1 charges 28 h from day 5 08:00 (stuck, charging > 24 h); the
  order O1 on c1 while it charges (no contradiction); O2 on c1 on day 10 while c1 says free (a
  contradiction, 3,600 s free); c2 free since day 20 of the month before, never changing, while S1
  has orders (stuck, unchanged 7 days);
* station S2, connector c3: charges on day 8 for an hour, no order (suspect: use without orders);
  silent now;
* station S3, connector c4: offline since day 20 of the month before, no change, the order O3 on
  day 12 (a contradiction, 3,600 s offline; stuck, unchanged 7 days; suspect: orders without status);
* a pull run of M with 3 rejected records; archives: S1's with another name, one StationID the feed
  lacks; S2 and S3 have none.

Operator Q2: station T1, connector d1 charging on day 2 with the order O4 inside: clean.
"""

from __future__ import annotations

import io
import re
import statistics
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from services.errors import BadRequest
from services.prices.tariff import CHINA_TZ
from services.reliability import quality as q
from services.reliability.hours import refresh_open_hours
from services.reliability.partitions import add_months, make_partition
from services.reliability.uptime import uptime_table
from tests.accounts_helpers import create_operator_user, create_regulator, insert_station
from tests.integration.messaging.conftest import make_client  # noqa: F401 - a fixture
from tests.orders_helpers import push, pushed_order
from tests.unit.test_prices_orders import GUANGDONG

HTML = {"accept": "text/html"}
NOW = datetime.now(UTC)
M = add_months(NOW.astimezone(CHINA_TZ).date().replace(day=1), -1)
PREV = add_months(M, -1)


def at(first: date, day: int, hour: float = 0) -> datetime:
    return datetime(first.year, first.month, day, tzinfo=CHINA_TZ) + timedelta(hours=hour)


def _connectors(conn: Any, station_pk: int) -> list[tuple[str, int]]:
    """(ConnectorID, key) of a station's connectors, each given a connector_status row (free)."""
    out = []
    for (cid,) in conn.execute(text("SELECT connector_id FROM connectors WHERE station_pk = :s ORDER BY connector_id"),
                               {"s": station_pk}):
        op = conn.execute(text("SELECT operator_id FROM stations WHERE id = :s"), {"s": station_pk}).scalar_one()
        key = conn.execute(text("INSERT INTO connector_status (operator_id, connector_id, status) VALUES (:o, :c, 1) "
                                "RETURNING id"), {"o": op, "c": cid}).scalar_one()
        out.append((cid, key))
    return out


def _history(conn: Any, key: int, rows: list[tuple[datetime, int | None, str]]) -> None:
    conn.execute(text("INSERT INTO connector_status_history (at, connector_key, status, source) VALUES (:at, :k, :s, :src)"),
                 [{"at": t, "k": key, "s": s, "src": src} for t, s, src in rows])


def _carried(first: date, prior: tuple[datetime, int]) -> list[tuple[datetime, int | None, str]]:
    """A connector's row before the month and the carried row at its start."""
    return [(prior[0], prior[1], "p"), (at(first, 1), prior[1], "c")]


@pytest.fixture(scope="module")
def w(engine) -> dict[str, Any]:  # noqa: ANN001
    q1 = create_operator_user(engine, name="数据质量甲")
    q2 = create_operator_user(engine, name="数据质量乙")
    s1 = insert_station(engine, q1["operator_id"], "质量一号站", piles=2)
    s2 = insert_station(engine, q1["operator_id"], "质量二号站", piles=1)
    s3 = insert_station(engine, q1["operator_id"], "质量三号站", piles=1)
    t1 = insert_station(engine, q2["operator_id"], "质量乙站", piles=1)
    with engine.begin() as conn:
        for month in (PREV, M, add_months(M, 1), add_months(M, 2)):
            make_partition(conn, month)
        pks = [s1, s2, s3, t1]
        conn.execute(text("UPDATE station_status_history SET at = :t WHERE station_pk = ANY(:p)"),
                     {"t": at(add_months(M, -2), 1), "p": pks})
        refresh_open_hours(conn)
        (c1, k1), (c2, k2) = _connectors(conn, s1)
        ((c3, k3),) = _connectors(conn, s2)
        ((c4, k4),) = _connectors(conn, s3)
        ((d1, kd1),) = _connectors(conn, t1)
        _history(conn, k1, _carried(M, (at(PREV, 25), 1)) + [
            (at(M, 3, 10), 3, "p"), (at(M, 3, 11), 1, "p"), (at(M, 5, 8), 3, "p"), (at(M, 6, 12), 1, "p"),
            *[x for d in (10, 15, 20, 25) for x in ((at(M, d, 16), 2, "l"), (at(M, d, 16.2), 1, "l"))]])
        _history(conn, k2, _carried(M, (at(PREV, 20), 1)))
        _history(conn, k3, _carried(M, (at(PREV, 20), 1)) + [(at(M, 8, 9), 3, "p"), (at(M, 8, 10), 1, "p")])
        _history(conn, k4, _carried(M, (at(PREV, 20), 0)))
        _history(conn, kd1, _carried(M, (at(PREV, 20), 1)) + [(at(M, 2, 10), 3, "p"), (at(M, 2, 11), 1, "p")])
        # c3 silent now; c1's last push received 7 s after its TimeStamp, within M
        conn.execute(text("UPDATE connector_status SET status = NULL, status_since = now() - interval '1 hour', "
                          "source = 'silence' WHERE id = :k"), {"k": k3})
        conn.execute(text("UPDATE connector_status SET source = 'push', reported_at = :r, updated_at = :u WHERE id = :k"),
                     {"k": k1, "r": at(M, 25, 16.2), "u": at(M, 25, 16.2) + timedelta(seconds=7)})
        orders = {"O1": (q1, pushed_order(GUANGDONG, c1, at(M, 3).date(), 10, 20, 60)),
                  "O2": (q1, pushed_order(GUANGDONG, c1, at(M, 10).date(), 14, 60, 60)),
                  "O3": (q1, pushed_order(GUANGDONG, c4, at(M, 12).date(), 10, 60, 60)),
                  "O4": (q2, pushed_order(GUANGDONG, d1, at(M, 2).date(), 10, 20, 60))}
        for who, data in orders.values():
            push(conn, who["operator_id"], data)
        conn.execute(text("INSERT INTO sync_runs (operator_id, mode, started_at, finished_at, rejected, ok) "
                          "VALUES (:o, 'full', :t, :t, 3, true)"), {"o": q1["operator_id"], "t": at(M, 4, 3)})
        sid1 = conn.execute(text("SELECT station_id FROM stations WHERE id = :s"), {"s": s1}).scalar_one()
        conn.execute(text("INSERT INTO station_archives (operator_pk, station_id, name, state) VALUES "
                          "(:p, :s, '另一个名字', 'approved'), (:p, 'GHOSTSTATION01', '幽灵站', 'approved')"),
                     {"p": q1["operator_pk"], "s": sid1})
        ids = {r.station_pk: r.station_id for r in conn.execute(text(
            "SELECT id AS station_pk, station_id FROM stations WHERE id = ANY(:p)"), {"p": pks})}
    return {"q1": q1, "q2": q2, "s1": s1, "s2": s2, "s3": s3, "t1": t1, "ids": ids, "orders": orders,
            "c": {"c1": c1, "c2": c2, "c3": c3, "c4": c4, "d1": d1}}


def month() -> q.Month:
    return q.Month(M, datetime.now(UTC))


def test_contradictions(engine, w) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        rows = q.contradictions(conn, month())
    mine = [r for r in rows if r["operator_id"] in (w["q1"]["operator_id"], w["q2"]["operator_id"])]
    got = {(r["start_charge_seq"], r["connector_id"], float(r["free_s"]), float(r["offline_s"])) for r in mine}
    o = w["orders"]
    assert got == {(o["O2"][1]["StartChargeSeq"], w["c"]["c1"], 3600.0, 0.0),
                   (o["O3"][1]["StartChargeSeq"], w["c"]["c4"], 0.0, 3600.0)}
    with engine.connect() as conn:  # a grace longer than the overlap finds none
        assert not [r for r in q.contradictions(conn, month(), w["q1"]["operator_id"], grace_s=3600)]


def test_stuck_connectors(engine, w) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        rows = q.stuck_connectors(conn, month(), w["q1"]["operator_id"])
        city = q.stuck_connectors(conn, month())
    got = {(r["connector_id"], r["status"], r["since"], r["until"], r["charging_24h"], r["unchanged_7d"]) for r in rows}
    c = w["c"]
    assert got == {(c["c1"], 3, at(M, 5, 8), at(M, 6, 12), True, False),
                   (c["c2"], 1, at(PREV, 20), None, False, True),
                   (c["c4"], 0, at(PREV, 20), None, False, True)}
    assert [r for r in city if r["operator_id"] == w["q1"]["operator_id"]] == rows
    assert not [r for r in city if r["operator_id"] == w["q2"]["operator_id"]]
    c1 = next(r for r in rows if r["connector_id"] == c["c1"])
    assert c1["seconds"] == 28 * 3600


def test_suspect_stations(engine, w) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        rows = q.suspect_stations(conn, month(), w["q1"]["operator_id"])
        q2 = q.suspect_stations(conn, month(), w["q2"]["operator_id"])
    assert {(r["station_pk"], r["reason"]) for r in rows} == {(w["s2"], "use_without_orders"),
                                                             (w["s3"], "orders_without_status")}
    assert q2 == []


def test_archive_differences(engine, w) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        rows = q.archive_differences(conn, w["q1"]["operator_id"])
    ids = w["ids"]
    assert {(r["station_id"], tuple(r["kinds"])) for r in rows} == {
        (ids[w["s1"]], ("name",)), ("GHOSTSTATION01", ("not_in_feed",)),
        (ids[w["s2"]], ("no_archive",)), (ids[w["s3"]], ("no_archive",))}


def test_the_table(engine, w) -> None:  # noqa: ANN001
    m = month()
    with engine.connect() as conn:
        table = q.month_table(conn, m, stations=True, details=True)
        up = {r["operator_id"]: r for r in uptime_table(conn, m.first, m.last_day, by="operator", per="window",
                                                          now=m.now)}
        delays = [float(r[0]) for r in conn.execute(text(
            "SELECT extract(epoch FROM received_at - end_time) FROM charge_orders WHERE operator_id = :o AND latest"),
            {"o": w["q1"]["operator_id"]})]
        disputed = conn.execute(text("SELECT count(*) FROM charge_orders WHERE operator_id = :o AND latest "
                                     "AND confirm_result = 1"), {"o": w["q1"]["operator_id"]}).scalar_one()
    rows = {r["operator_id"]: r for r in table["operators"]}
    r1, r2 = rows[w["q1"]["operator_id"]], rows[w["q2"]["operator_id"]]
    u1 = up[w["q1"]["operator_id"]]
    expected = {
        "stations": 3, "connectors": 4, "silent_now": 1, "silent_now_share": 0.25,
        "status_pushes": 1, "status_delay_p50_s": 7.0, "status_delay_p95_s": 7.0,
        "orders": 3, "disputed_orders": disputed, "pull_rejected": 3, "rejected_records": 3 + disputed,
        "contradictions": 2, "stuck": 3, "stuck_charging": 1, "stuck_unchanged": 2, "suspect_stations": 2,
        "no_archive": 2, "not_in_feed": 1, "archive_field_diffs": 1, "archive_differences": 4,
        "uptime": u1["uptime"], "below_threshold": True, "stations_below_threshold": 1,
        "silent_time_share": float(u1["unknown_s"]) / float(u1["up_s"] + u1["down_s"] + u1["unknown_s"]),
    }
    assert {k: r1[k] for k in expected} == expected
    assert r1["order_delay_p50_s"] == pytest.approx(statistics.median(delays))
    # c4 offline the whole month: Q1's uptime is three connectors' of four; c1..c3 were up whenever known
    assert r1["uptime"] == pytest.approx(float(u1["up_s"]) / float(u1["up_s"] + u1["down_s"]))
    assert float(u1["down_s"]) == pytest.approx((m.end - m.start).total_seconds())
    assert {k: r2[k] for k in ("contradictions", "stuck", "suspect_stations", "below_threshold", "uptime",
                               "archive_differences")} == {
        "contradictions": 0, "stuck": 0, "suspect_stations": 0, "below_threshold": False, "uptime": 1.0,
        "archive_differences": 1}
    st = {s["station_pk"]: s for s in table["stations"]}
    assert st[w["s3"]]["uptime"] == 0.0 and st[w["s3"]]["below_threshold"]
    assert st[w["s1"]]["uptime"] == 1.0 and not st[w["s1"]]["below_threshold"]
    assert (st[w["s1"]]["orders"], st[w["s1"]]["contradictions"], st[w["s1"]]["stuck"]) == (2, 1, 2)
    assert st[w["s2"]]["suspect"] == "use_without_orders" and st[w["s3"]]["suspect"] == "orders_without_status"


def test_stored_month_and_trend(engine, w) -> None:  # noqa: ANN001
    m = month()
    with engine.begin() as conn:
        q.store_month(conn, m)
    with engine.connect() as conn:
        stored = q.stored_month(conn, m, w["q1"]["operator_id"], stations=True, details=True)
        tr = q.trend(conn, q.Month(m.first, m.now), w["q1"]["operator_id"], months=3)
    assert [o["operator_id"] for o in stored["operators"]] == [w["q1"]["operator_id"]]
    assert stored["operators"][0]["contradictions"] == 2 and len(stored["stuck"]) == 3
    assert {s["station_pk"] for s in stored["stations"]} == {w["s1"], w["s2"], w["s3"]}
    assert isinstance(stored["stuck"][0]["since"], datetime)
    assert [x.first for x in tr["months"]] == [add_months(M, -2), add_months(M, -1), M]
    per = tr["operators"][w["q1"]["operator_id"]]
    assert per[-1]["contradictions"] == 2 and per[-1]["stuck"] == 3
    assert per[-2]["contradictions"] == 0  # the month before: no order
    assert q.is_fresh(m, stored["computed_at"], datetime.now(UTC))


def test_the_job_refreshes_missing_and_stale_months(engine, w) -> None:  # noqa: ANN001
    now = datetime.now(UTC)
    current = now.astimezone(CHINA_TZ).date().replace(day=1)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM data_quality_runs WHERE month >= :m"), {"m": M})
    assert q.refresh(engine, now=now, months=2) == [current, M]
    assert q.refresh(engine, now=now, months=2) == []  # both fresh
    with engine.begin() as conn:  # the current month's figures age; the closed month's were computed after it closed
        conn.execute(text("UPDATE data_quality_runs SET computed_at = computed_at - make_interval(secs => :s) "
                          "WHERE month = :m"), {"s": q.REFRESH_S + 1, "m": current})
    assert q.refresh(engine, now=now, months=2) == [current]
    with engine.connect() as conn:
        row = next(o for o in q.stored_month(conn, month(), w["q1"]["operator_id"])["operators"])
    assert (row["contradictions"], row["stuck"], row["suspect_stations"]) == (2, 3, 2)


def test_parse_month() -> None:
    now = datetime(2026, 12, 6, 8, tzinfo=UTC)
    assert q.parse_month("2026-01", now).first == date(2026, 1, 1)
    for bad in ("2026-1", "2026-13", "26-01", "2026-01-01", "x"):
        with pytest.raises(BadRequest, match="parameter 'month' must be a month"):
            q.parse_month(bad, now)
    for out in ("2019-12", "2027-01"):
        with pytest.raises(BadRequest, match="parameter 'month' is out of range"):
            q.parse_month(out, now)


# --- the pages ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def regulator(engine) -> dict[str, Any]:  # noqa: ANN001
    return create_regulator(engine)


def test_regulator_page_and_detail(engine, w, make_client, regulator) -> None:  # noqa: ANN001, F811
    with engine.begin() as conn:
        q.store_month(conn, month())
    c = make_client(regulator)
    r = c.get(f"/admin/data-quality?month={M:%Y-%m}", headers=HTML)
    assert r.status_code == 200, r.text
    row = re.search(rf'<tr data-operator="{w["q1"]["operator_id"]}">(.*?)</tr>', r.text, re.S).group(1)
    assert 'data-below="yes"' in row
    assert re.search(r'data-col="contradictions">2<', row) and re.search(r'data-col="stuck">3<', row)
    assert re.search(r'data-col="suspect">2<', row) and re.search(r'data-col="archives">4<', row)
    assert f"/admin/data-quality/operators/{w['q1']['operator_id']}?month={M:%Y-%m}" in r.text
    assert 'id="trend"' in r.text and f"{M:%Y-%m}" in r.text
    d = c.get(f"/admin/data-quality/operators/{w['q1']['operator_id']}?month={M:%Y-%m}", headers=HTML)
    assert d.status_code == 200
    assert all(w["c"][k] in d.text for k in ("c1", "c2", "c4"))
    assert w["orders"]["O2"][1]["StartChargeSeq"] in d.text and "GHOSTSTATION01" in d.text
    assert c.get("/admin/data-quality/operators/NOSUCHOP9", headers=HTML).status_code == 404


def test_workbook_marks_the_threshold(engine, w, make_client, regulator) -> None:  # noqa: ANN001, F811
    c = make_client(regulator)
    r = c.get(f"/admin/data-quality.xlsx?month={M:%Y-%m}&lang=en")
    assert r.status_code == 200 and r.headers["content-type"].startswith(q.XLSX_MEDIA_TYPE)
    wb = load_workbook(io.BytesIO(r.content))
    assert {"About", "Operators", "Stations", "Contradictions", "Stuck", "Suspect stations", "Trend"} <= set(wb.sheetnames)

    def rows(name: str) -> list[dict[str, Any]]:
        ws = wb[name]
        head = [c.value for c in ws[1]]
        return [{**dict(zip(head, (c.value for c in line))), "_cells": dict(zip(head, line))}
                for line in ws.iter_rows(min_row=2)]

    ops = {r["OperatorID"]: r for r in rows("Operators")}
    o1, o2 = ops[w["q1"]["operator_id"]], ops[w["q2"]["operator_id"]]
    assert o1["Below 97 %"] == "yes" and o1["_cells"]["Uptime"].fill.start_color.rgb.endswith(q.RED)
    assert o2["Below 97 %"] == "no" and not str(o2["_cells"]["Uptime"].fill.start_color.rgb).endswith(q.RED)
    assert (o1["Contradictions"], o1["Stuck connectors"], o1["Archive differences"]) == (2, 3, 4)
    assert o1["_cells"]["Uptime"].number_format == "0.0%"
    st = {r["StationID"]: r for r in rows("Stations")}
    s3 = st[w["ids"][w["s3"]]]
    assert s3["Uptime"] == 0 and s3["Below 97 %"] == "yes" and s3["_cells"]["Uptime"].fill.start_color.rgb.endswith(q.RED)
    assert st[w["ids"][w["s1"]]]["Below 97 %"] == "no"
    assert {r["ConnectorID"] for r in rows("Stuck") if r["OperatorID"] == w["q1"]["operator_id"]} == {
        w["c"]["c1"], w["c"]["c2"], w["c"]["c4"]}


@pytest.mark.parametrize("stored", [False, True])
def test_operator_sees_its_own_rows_only(engine, w, make_client, stored) -> None:  # noqa: ANN001, F811
    """Computed for the operator alone when the month was never stored (and nothing is written:
    an operator's request never writes other operators' rows), or read from the stored month."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM data_quality_runs"))
        conn.execute(text("DELETE FROM data_quality_months"))
        conn.execute(text("DELETE FROM data_quality_stations"))
        if stored:
            q.store_month(conn, month())
    a, b = make_client(w["q1"]), make_client(w["q2"])
    ra = a.get(f"/backoffice/data-quality?month={M:%Y-%m}", headers=HTML)
    rb = b.get(f"/backoffice/data-quality?month={M:%Y-%m}", headers=HTML)
    assert ra.status_code == rb.status_code == 200
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM data_quality_runs")).scalar_one() == (1 if stored else 0)
    assert re.search(r'id="n-stuck">3<', ra.text) and re.search(r'id="n-contradictions">2<', ra.text)
    assert all(w["c"][k] in ra.text for k in ("c1", "c2", "c3", "c4")) and "GHOSTSTATION01" in ra.text
    assert w["c"]["d1"] not in ra.text and "质量乙站" not in ra.text
    assert re.search(r'id="n-stuck">0<', rb.text) and 'id="contradictions-none"' in rb.text
    for k in ("c1", "c2", "c3", "c4"):
        assert w["c"][k] not in rb.text
    assert "GHOSTSTATION01" not in rb.text and "质量一号站" not in rb.text
    assert w["orders"]["O2"][1]["StartChargeSeq"] not in rb.text
    # no way to ask for another operator's table, nor the regulators' pages
    assert b.get(f"/backoffice/data-quality?operator={w['q1']['operator_id']}", headers=HTML).status_code == 400
    assert b.get("/admin/data-quality", headers=HTML).status_code in (403, 404)
    assert b.get("/admin/data-quality.xlsx").status_code in (403, 404)


@pytest.mark.parametrize("query,param", [("month=2026-13", "month"), ("month=yesterday", "month"),
                                         ("month=2019-12", "month"), ("month=2999-01", "month"),
                                         ("monht=2026-01", "monht")])
def test_bad_input_is_400(w, make_client, regulator, query, param) -> None:  # noqa: ANN001, F811
    c = make_client(regulator)
    for path in ("/admin/data-quality", "/admin/data-quality.xlsx", f"/admin/data-quality/operators/{w['q1']['operator_id']}"):
        r = c.get(f"{path}?{query}", headers=HTML)
        assert r.status_code == 400 and param in r.text, (path, query, r.status_code)
    r = make_client(w["q1"]).get(f"/backoffice/data-quality?{query}", headers=HTML)
    assert r.status_code == 400 and param in r.text
