"""The operators' orders, reconciliations and tariffs (issue 15, item 8) on the real pages: each
operator sees its own only (another's ids are 404), filters by station, day and status, paging,
one order's details, findings and versions, the daily reconciliations with their disputes, and
the tariffs as the platform sees them with every broken rule and the policy as answered."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import text

from services.orders.reconcile import read_check, reconcile
from services.prices.tariff import CHINA_TZ
from tests.accounts_helpers import create_operator_user, insert_station
from tests.orders_helpers import push, pushed_order
from tests.unit.test_prices_orders import GUANGDONG

HTML = {"accept": "text/html"}


def seqs(page: str) -> list[str]:
    return re.findall(r'<tr data-seq="([^"]+)">', page)


def keys_of(world, page: str) -> set[str]:  # noqa: ANN001
    by_seq = {o["StartChargeSeq"]: k for k, o in world.orders.items() if k != "revised2"}
    return {by_seq.get(s, s) for s in seqs(page)}


def test_orders_list_filters_and_isolation(world, make_client) -> None:  # noqa: ANN001
    a = make_client(world.a)
    r = a.get("/backoffice/orders", headers=HTML)
    assert r.status_code == 200
    assert keys_of(world, r.text) == {"clean", "over", "omitted", "arith", "revised", "unknown", "ac"}
    assert world.orders["b"]["StartChargeSeq"] not in r.text and world.b["name"] not in r.text
    assert re.search(r'id="orders-total">7<', r.text)
    cases = {
        (("status", "disputed"),): {"over", "arith", "unknown"},
        (("status", "accepted"),): {"clean", "omitted", "revised", "ac"},
        (("status", "overcharged"),): {"over"},
        (("status", "revised"),): {"revised"},
        (("status", "unreconciled"),): {"omitted", "arith", "revised", "unknown", "ac"},
        (("station", world.station1),): {"clean", "over", "omitted", "arith", "revised"},
        (("station", world.station2),): {"ac"},
        (("day", world.days["D-1"]),): {"arith", "revised", "unknown"},
        (("day", world.days["D-2"]), ("status", "disputed")): {"over"},
        (("from", world.days["D-3"]), ("to", world.days["D-3"])): {"ac"},
        (("status", "nonsense"),): {"clean", "over", "omitted", "arith", "revised", "unknown", "ac"},
        (("station", world.station_b),): set(),  # another operator's station: nothing of it
    }
    for params, expected in cases.items():
        r = a.get("/backoffice/orders", params=dict(params), headers=HTML)
        assert r.status_code == 200, params
        assert keys_of(world, r.text) == expected, params
    for bad in ({"station": "abc"}, {"station": "99999999999999999999"}, {"page": "0"}, {"day": "2026-02-30"},
                {"from": "x"}):
        assert a.get("/backoffice/orders", params=bad, headers=HTML).status_code == 400, bad
    b = make_client(world.b)
    r = b.get("/backoffice/orders", headers=HTML)
    assert keys_of(world, r.text) == {"b"} and world.a["name"] not in r.text


def test_one_order_with_details_findings_and_versions(world, make_client) -> None:  # noqa: ANN001
    a = make_client(world.a)
    r = a.get(f"/backoffice/orders/{world.ids['over']}", headers=HTML)
    assert r.status_code == 200
    findings = re.search(r'id="findings">(.*?)</div>', r.text, re.S).group(1)
    assert "price/over_tariff" in findings and "1.7000" in findings
    details = re.search(r'id="details">(.*?)</table>', r.text, re.S).group(1)
    assert "0.8000" in details and "1.9000" in details  # service 0.60 + 0.20 billed; 1.10 + 0.80 in all
    assert "对账争议" in r.text and f"/backoffice/reconciliations/{world.check_id}" in r.text
    r = a.get(f"/backoffice/orders/{world.ids['revised']}", headers=HTML)
    assert "revision/revised" in r.text and ">v1" in r.text and ">v2" in r.text
    assert world.orders["revised"]["TotalMoney"] in r.text and world.orders["revised2"]["TotalMoney"] in r.text
    r = a.get(f"/backoffice/orders/{world.ids['unknown']}", headers=HTML)
    assert "reference/connector" in r.text and "price/no_tariff" in r.text
    # another operator's order, and no order at all: the same 404
    for oid in (world.ids["b"], 999999999):
        r = a.get(f"/backoffice/orders/{oid}", headers=HTML)
        assert r.status_code == 404 and world.b["name"] not in r.text
    assert make_client(world.b).get(f"/backoffice/orders/{world.ids['over']}", headers=HTML).status_code == 404


def test_orders_paging(engine, make_client) -> None:  # noqa: ANN001
    op = create_operator_user(engine, name="分页运营商")
    station = insert_station(engine, op["operator_id"], "分页站", piles=1, power_kw=120.0)
    with engine.connect() as conn:
        connector = conn.execute(text("SELECT connector_id FROM connectors WHERE station_pk = :s"),
                                 {"s": station}).scalar_one()
    day = datetime.now(CHINA_TZ).date() - timedelta(days=1)
    with engine.begin() as conn:
        for i in range(55):
            push(conn, op["operator_id"], pushed_order(GUANGDONG, connector, day, i % 20, 10, 120))
    c = make_client(op)
    first = c.get("/backoffice/orders", headers=HTML).text
    second = c.get("/backoffice/orders", params={"page": 2}, headers=HTML).text
    assert len(seqs(first)) == 50 and len(seqs(second)) == 5 and not set(seqs(first)) & set(seqs(second))
    assert re.search(r'id="orders-total">55<', second) and 'href="?page=2"' in first
    assert seqs(c.get("/backoffice/orders", params={"page": 3}, headers=HTML).text) == []


def test_reconciliations_per_day(world, engine, make_client) -> None:  # noqa: ANN001
    a = make_client(world.a)
    r = a.get("/backoffice/reconciliations", headers=HTML)
    assert r.status_code == 200

    def row(day) -> str:  # noqa: ANN001
        return re.search(rf'<tr data-day="{day}">(.*?)</tr>', r.text, re.S).group(1)

    d2 = row(world.days["D-2"])
    nums = re.findall(r'<td class="num[^"]*">(?:<a [^>]*>)?([^<]*)', d2)
    assert nums[0] == "3" and nums[3:7] == ["1", "1", "1", "0"]  # orders; agreed, disputed, missing, not reconciled
    assert f"/backoffice/reconciliations/{world.check_id}" in d2 and "1: 1" in d2 and "2: 1" in d2
    d1 = row(world.days["D-1"])
    assert "未收到" in d1 and re.findall(r'<td class="num[^"]*">(?:<a [^>]*>)?([^<]*)', d1)[6] == "3"

    r = a.get(f"/backoffice/reconciliations/{world.check_id}", headers=HTML)
    disputes = re.search(r'id="disputes">(.*?)</table>', r.text, re.S).group(1)
    assert re.search(rf'data-reason="2">.*?/backoffice/orders/{world.ids["over"]}', disputes, re.S)
    over_money = Decimal(world.orders["over"]["TotalMoney"])
    assert f"{over_money + 5:.2f}" in disputes and f"{over_money:,.2f}" in disputes  # theirs beside ours
    assert world.expected["ghost"] in disputes
    unlisted = re.search(r'id="unlisted">(.*?)</table>', r.text, re.S).group(1)
    assert world.orders["omitted"]["StartChargeSeq"] in unlisted and f"/backoffice/orders/{world.ids['omitted']}" in unlisted

    # B's own list: B sees it, A gets the same 404 as for no list at all
    with engine.begin() as conn:
        o = world.orders["b"]
        day = world.days["D-2"]
        reconcile(conn, world.b["operator_id"], read_check({
            "CheckOrderSeq": "B" + world.tag * 6, "StartTime": f"{day} 00:00:00", "EndTime": f"{day} 23:59:59",
            "OrderCount": 1, "TotalOrderPower": o["TotalPower"], "TotalOrderMoney": o["TotalMoney"],
            "ChargeOrders": [{"StartChargeSeq": o["StartChargeSeq"], "TotalPower": o["TotalPower"],
                              "TotalMoney": o["TotalMoney"]}]}))
        b_check = conn.execute(text("SELECT id FROM order_checks WHERE operator_id = :o"),
                               {"o": world.b["operator_id"]}).scalar_one()
    assert make_client(world.b).get(f"/backoffice/reconciliations/{b_check}", headers=HTML).status_code == 200
    for cid in (b_check, 999999999):
        assert a.get(f"/backoffice/reconciliations/{cid}", headers=HTML).status_code == 404
    assert a.get("/backoffice/reconciliations", params={"from": "2026-13-01"}, headers=HTML).status_code == 400


def test_tariffs_as_the_platform_sees_them(world, make_client) -> None:  # noqa: ANN001
    a = make_client(world.a)
    r = a.get("/backoffice/tariffs", headers=HTML)
    assert r.status_code == 200
    counts = re.search(r'id="tariff-counts">(.*?)</div>\s*<form', r.text, re.S).group(1)
    assert re.findall(r'<span class="num">(\d+)</span>', counts) == ["3", "3", "0", "0", "1", "1"]
    blocks = re.findall(r'<section class="card station-block" data-station="([^"]+)">(.*?)</section>', r.text, re.S)
    assert len(blocks) == 2
    by_name = {("甲一号站" if "甲一号站" in body else "甲二号站"): body for _, body in blocks}
    peaky = by_name["甲二号站"]
    assert "SumPeriod 4 but 3 PolicyInfos" in peaky and "over the city&#39;s cap" in peaky and "超过城市限价" in peaky
    assert "&#34;SumPeriod&#34;: 4" in peaky or '"SumPeriod": 4' in peaky  # the policy as answered
    assert "10:00–12:00 <strong>2.3000</strong>" in peaky
    gd = by_name["甲一号站"]
    assert "符合规则" in gd and gd.count('<code class="seq">') == 2 and "00:00–08:00 <strong>0.9000</strong>" in gd
    only = a.get("/backoffice/tariffs", params={"problems": "1"}, headers=HTML).text
    assert len(re.findall(r'class="card station-block"', only)) == 1 and "甲二号站" in only
    one = a.get("/backoffice/tariffs", params={"station": world.station1}, headers=HTML).text
    assert len(re.findall(r'class="card station-block"', one)) == 1 and "甲一号站" in one
    other = a.get("/backoffice/tariffs", params={"station": world.station_b}, headers=HTML).text
    assert "station-block" not in other and "乙一号站" not in other
    assert a.get("/backoffice/tariffs", params={"station": "-1"}, headers=HTML).status_code == 400


def test_menu_entries(world, make_client) -> None:  # noqa: ANN001
    page = make_client(world.a).get("/backoffice/", headers=HTML).text
    for path in ("/backoffice/orders", "/backoffice/reconciliations", "/backoffice/tariffs"):
        assert f'href="{path}"' in page
