"""A small world of tariffs, orders and reconciliations built through the domain functions, for
the price-execution, back-office order and statistics tests (issue 15).

    world = build_world(engine)     # two operators, their stations, tariffs, orders, one reconciliation

Operator A (``world.a``) has station 1 (two 60 kW DC connectors on a Guangdong time-of-use
policy read 40 days ago) and station 2 (one 7 kW AC connector whose policy peaks at 2.30 yuan/kWh,
over a 2.00 cap, and breaks the rules). Its orders, all in the last week:

========  =====  ===============================================================  ============
key       day    what                                                             ConfirmResult
========  =====  ===============================================================  ============
clean     D-2    billed at the tariff                                             0
over      D-2    service fee billed 0.20 above the tariff (overcharged)           1
omitted   D-2    billed at the tariff, left out of the operator's daily list      0
arith     D-1    TotalMoney 1 yuan off electricity + service                      1
revised   D-1    pushed twice with different figures (version 2 counts)           0
unknown   D-1    on a connector we do not know                                    1
ac        D-3    station 2, billed at its (over-cap) tariff                       0
========  =====  ===============================================================  ============

Day D-2 is reconciled with a list that holds ``clean`` (agreed), ``over`` with other money
(dispute reason 2) and an order we never received (reason 1), and lacks ``omitted`` (unlisted).
Days D-1 and D-3 are not reconciled. Operator B has one clean order (for isolation checks).
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.orders.checks import read_order
from services.orders.reconcile import read_check, reconcile
from services.orders.sample import billed_order
from services.orders.store import StoredOrder, store_order
from services.orders.window import china_today
from services.prices.store import TariffWrite, store_tariffs
from services.prices.tariff import CHINA_TZ, Cap, money, read_policy
from tests.accounts_helpers import create_operator_user, insert_station
from tests.unit.test_prices_orders import GUANGDONG, policy

__all__ = ["World", "build_world", "china_at", "push", "pushed_order"]

CAP = Cap(Decimal("2.0000"))
PEAKY = [("000000", "0.5", "0.8"), ("100000", "1.5", "0.8"), ("120000", "0.5", "0.8")]  # peak 2.30 > 2.00


def china_at(day: date, h: int, m: int = 0) -> datetime:
    return datetime.combine(day, time(h, m), CHINA_TZ)


@dataclass
class World:
    tag: str
    a: dict[str, Any]
    b: dict[str, Any]
    station1: int
    station2: int
    station_b: int
    connectors: dict[str, str]
    days: dict[str, date]
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    check_id: int | None = None
    expected: dict[str, Any] = field(default_factory=dict)


def _connectors(engine: Engine, station_pk: int) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT connector_id FROM connectors WHERE station_pk = :s "
                                                "ORDER BY connector_id"), {"s": station_pk})]


def pushed_order(tariff_rows: list, connector: str, day: date, start_h: int, minutes: int, power_kw: int, *,
           bump: str = "0") -> dict[str, Any]:
    """The Data of an order pushed for ``connector``, billed by the policy ``tariff_rows`` (``bump``
    yuan/kWh added to the service price), starting at ``start_h``:30 China time on ``day``."""
    tariff = read_policy(policy(tariff_rows)).tariff
    start = china_at(day, start_h, 30)
    return billed_order(tariff, start, start + timedelta(minutes=minutes), Decimal(power_kw), bump=Decimal(bump),
                        connector_id=connector, seq=f"{secrets.token_hex(4).upper()}{secrets.randbelow(10**18):019d}")


_PUSHES = itertools.count(1)


def push(conn: Any, operator_id: str, data: dict[str, Any]) -> StoredOrder:
    """Store ``data`` as the receiver does: read, checked and stored under a fresh envelope (the
    push's TimeStamp second, Seq and Sig, for the replay claim)."""
    envelope = SimpleNamespace(timestamp=datetime.now(UTC).replace(microsecond=0), seq=f"{next(_PUSHES):04d}",
                               raw={"Sig": secrets.token_hex(16)})
    return store_order(conn, operator_id, read_order(data), data, datetime.now(CHINA_TZ), envelope=envelope)


def build_world(engine: Engine, *, tag: str | None = None) -> World:
    tag = tag or secrets.token_hex(2)
    a = create_operator_user(engine, name=f"价格运营商甲{tag}")
    b = create_operator_user(engine, name=f"价格运营商乙{tag}")
    s1 = insert_station(engine, a["operator_id"], f"甲一号站{tag}", piles=2, power_kw=60.0)
    s2 = insert_station(engine, a["operator_id"], f"甲二号站{tag}", piles=1, power_kw=7.0, district_adcode=440403)
    sb = insert_station(engine, b["operator_id"], f"乙一号站{tag}", piles=1, power_kw=60.0)
    with engine.begin() as conn:
        conn.execute(text("UPDATE equipment SET equipment_type = 2 WHERE station_pk = :s"), {"s": s2})
    c1, c2 = _connectors(engine, s1)
    (c3,) = _connectors(engine, s2)
    (cb,) = _connectors(engine, sb)
    today = china_today()
    days = {"D-1": today - timedelta(days=1), "D-2": today - timedelta(days=2), "D-3": today - timedelta(days=3)}
    a["name"], b["name"] = f"价格运营商甲{tag}", f"价格运营商乙{tag}"
    w = World(tag, a, b, s1, s2, sb, {"c1": c1, "c2": c2, "c3": c3, "cb": cb}, days)

    seen = datetime.now(CHINA_TZ) - timedelta(days=40)
    with engine.begin() as conn:
        gd = policy()
        store_tariffs(conn, a["operator_id"], [TariffWrite(c, read_policy(gd, CAP), "policy", gd) for c in (c1, c2)],
                      now=seen)
        peaky = policy(PEAKY, SumPeriod=4)  # SumPeriod 4 for 3 periods: a broken rule, and over the cap
        store_tariffs(conn, a["operator_id"], [TariffWrite(c3, read_policy(peaky, CAP), "policy", peaky)], now=seen)
        store_tariffs(conn, b["operator_id"], [TariffWrite(cb, read_policy(gd, CAP), "policy", gd)], now=seen)

    o = w.orders
    o["clean"] = pushed_order(GUANGDONG, c1, days["D-2"], 9, 75, 60)
    o["over"] = pushed_order(GUANGDONG, c2, days["D-2"], 14, 60, 60, bump="0.2")
    o["omitted"] = pushed_order(GUANGDONG, c1, days["D-2"], 20, 30, 60)
    o["arith"] = pushed_order(GUANGDONG, c1, days["D-1"], 8, 40, 60)
    o["arith"]["TotalMoney"] = str(Decimal(o["arith"]["TotalMoney"]) + 1)
    o["revised"] = pushed_order(GUANGDONG, c2, days["D-1"], 11, 30, 60)
    revised2 = dict(o["revised"], TotalPower=str(Decimal(o["revised"]["TotalPower"]) - Decimal("0.5")))
    revised2["ChargeDetails"] = [dict(d) for d in o["revised"]["ChargeDetails"]]
    d0 = revised2["ChargeDetails"][0]
    d0["DetailPower"] = str(Decimal(d0["DetailPower"]) - Decimal("0.5"))
    d0["DetailElecMoney"] = str(money(Decimal(d0["ElecPrice"]) * Decimal(d0["DetailPower"])))
    d0["DetailSeviceMoney"] = str(money(Decimal(d0["SevicePrice"]) * Decimal(d0["DetailPower"])))
    te = sum(Decimal(d["DetailElecMoney"]) for d in revised2["ChargeDetails"])
    ts = sum(Decimal(d["DetailSeviceMoney"]) for d in revised2["ChargeDetails"])
    revised2.update(TotalElecMoney=str(te), TotalSeviceMoney=str(ts), TotalMoney=str(te + ts))
    o["unknown"] = pushed_order(GUANGDONG, "NOSUCHCONNECTOR01", days["D-1"], 15, 30, 60)
    o["ac"] = pushed_order(PEAKY, c3, days["D-3"], 10, 60, 7)
    o["b"] = pushed_order(GUANGDONG, cb, days["D-2"], 9, 60, 60)

    results = {}
    with engine.begin() as conn:
        for key, data in o.items():
            results[key] = push(conn, b["operator_id"] if key == "b" else a["operator_id"], data)
        results["revised2"] = push(conn, a["operator_id"], revised2)
        push(conn, a["operator_id"], o["clean"])  # an exact resend: nothing new
        for key in o:
            op = b["operator_id"] if key == "b" else a["operator_id"]
            w.ids[key] = conn.execute(text("SELECT id FROM charge_orders WHERE operator_id = :op AND "
                                           "start_charge_seq = :s AND latest"),
                                      {"op": op, "s": o[key]["StartChargeSeq"]}).scalar_one()
        o["revised2"] = revised2
        # the operator's list of D-2: clean agreed, over with other money, one order we never got; omitted missing
        ghost = f"GHOST{secrets.token_hex(8).upper()}"
        listed = [{"StartChargeSeq": o["clean"]["StartChargeSeq"], "TotalPower": o["clean"]["TotalPower"],
                   "TotalMoney": o["clean"]["TotalMoney"]},
                  {"StartChargeSeq": o["over"]["StartChargeSeq"], "TotalPower": o["over"]["TotalPower"],
                   "TotalMoney": str(Decimal(o["over"]["TotalMoney"]) + 5)},
                  {"StartChargeSeq": ghost, "TotalPower": "12.00", "TotalMoney": "15.00"}]
        check = read_check({"CheckOrderSeq": f"CK{secrets.token_hex(12).upper()}",
                            "StartTime": f"{days['D-2']} 00:00:00", "EndTime": f"{days['D-2']} 23:59:59",
                            "OrderCount": 3, "TotalOrderPower": sum(Decimal(x["TotalPower"]) for x in listed),
                            "TotalOrderMoney": sum(Decimal(x["TotalMoney"]) for x in listed), "ChargeOrders": listed})
        reconcile(conn, a["operator_id"], check)
        w.check_id = conn.execute(text("SELECT id FROM order_checks WHERE operator_id = :op"),
                                  {"op": a["operator_id"]}).scalar_one()
    w.expected = {"results": results, "ghost": ghost}
    return w
