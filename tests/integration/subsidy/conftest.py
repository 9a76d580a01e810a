"""Factories for subsidy tests: operators with station and facility archives, feed stations with
the piles and connectors of those facilities, charge orders and reconciliations through the real
store (:class:`OrderBook`), rules. Every test makes its own operators and rules, so no table
needs emptying."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from services.models.subsidy import SubsidyRule
from services.orders.reconcile import read_check, reconcile
from services.orders.store import StoredOrder
from services.prices.store import TariffWrite, store_tariffs
from services.prices.tariff import Cap, money, read_policy
from services.subsidy.energy import StationEnergy
from services.subsidy.shared import CHINA_TZ, Actor, china_today
from tests.accounts_helpers import create_operator_user, create_regulator
from tests.orders_helpers import push, pushed_order
from tests.unit.test_prices_orders import GUANGDONG, policy

TODAY = china_today()


@pytest.fixture(autouse=True)
def _today(request: pytest.FixtureRequest) -> None:
    """``TODAY`` is the China date when each test starts (before its other fixtures), here and in the
    test's module: a session may run across China midnight (16:00 UTC), and the code reads the date
    when it runs."""
    global TODAY
    TODAY = china_today()
    if hasattr(request.module, "TODAY"):
        request.module.TODAY = TODAY


@dataclass
class Op:
    user: dict[str, Any]

    @property
    def pk(self) -> int:
        return self.user["operator_pk"]

    @property
    def operator_id(self) -> str:
        return self.user["operator_id"]

    @property
    def actor(self) -> Actor:
        return Actor(self.user["user_id"], self.user["account_name"], "operator", self.pk)


class Factory:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def operator(self) -> Op:
        return Op(create_operator_user(self.engine))

    def regulator(self) -> Actor:
        r = create_regulator(self.engine)
        return Actor(r["user_id"], r["account_name"], "regulator")

    def regulator_user(self) -> dict[str, Any]:
        return create_regulator(self.engine)

    def station(self, op: Op, *, status: int | None = 50, state: str = "approved", feed_interconnected: bool | None = None,
                name: str | None = None) -> int:
        sid = "ST" + secrets.token_hex(5).upper()
        with self.engine.begin() as conn:
            pk = conn.execute(text(
                "INSERT INTO station_archives (operator_pk, station_id, name, station_status, state) "
                "VALUES (:op, :sid, :n, :st, :state) RETURNING id"),
                {"op": op.pk, "sid": sid, "n": name or f"充电站{sid[-4:]}", "st": status, "state": state}).scalar_one()
            if feed_interconnected is not None:
                conn.execute(text(
                    "INSERT INTO stations (operator_id, station_id, name, station_type, station_status, lng_gcj02, "
                    "lat_gcj02, geom, geom_3857, interconnected) VALUES (:o, :sid, :n, 1, 50, 113.55, 22.27, "
                    "ST_SetSRID(ST_MakePoint(113.55, 22.27), 4326), "
                    "ST_Transform(ST_SetSRID(ST_MakePoint(113.55, 22.27), 4326), 3857), :ic)"),
                    {"o": op.operator_id, "sid": sid, "n": name or sid, "ic": feed_interconnected})
        return pk

    def station_id_of(self, station_pk: int) -> str:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT station_id FROM station_archives WHERE id = :s"), {"s": station_pk}).scalar_one()

    def facility(self, op: Op, station_pk: int, *, power: str = "60", equipment_type: int = 1,
                 state: str = "interconnected", in_service: date | None = None) -> int:
        """A facility archive; when interconnected, the approval event is dated ``in_service``."""
        eid = "EQ" + secrets.token_hex(6).upper()
        in_service = in_service or TODAY - timedelta(days=10)
        with self.engine.begin() as conn:
            pk = conn.execute(text(
                "INSERT INTO facility_archives (operator_pk, station_archive_pk, equipment_id, equipment_type, power_kw, "
                "state, ever_approved) VALUES (:op, :s, :e, :t, :p, :state, :ever) RETURNING id"),
                {"op": op.pk, "s": station_pk, "e": eid, "t": equipment_type, "p": Decimal(power), "state": state,
                 "ever": state in ("approved", "ic_review", "interconnected")}).scalar_one()
            if state == "interconnected":
                at = datetime.combine(in_service, time(12), CHINA_TZ).astimezone(UTC)
                conn.execute(text(
                    "INSERT INTO workflow_events (workflow, entity_id, action, from_state, to_state, actor_role, at) "
                    "VALUES ('facility_archive', :id, 'approve_ic', 'ic_review', 'interconnected', 'regulator', :at)"),
                    {"id": str(pk), "at": at})
        return pk

    def equipment_id_of(self, facility_pk: int) -> str:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT equipment_id FROM facility_archives WHERE id = :f"),
                                {"f": facility_pk}).scalar_one()

    def feed_pile(self, op: Op, station_pk: int, facility_pk: int, *, power: str = "60", connectors: int = 1,
                  tariff: bool = True) -> list[str]:
        """The feed's pile of a facility archive (the same EquipmentID) with its connectors, under
        the feed station of the archive's StationID (made on first use), priced by the Guangdong
        policy read 40 days ago; returns the ConnectorIDs."""
        sid, eid = self.station_id_of(station_pk), self.equipment_id_of(facility_pk)
        with self.engine.begin() as conn:
            feed_pk = conn.execute(text("SELECT id FROM stations WHERE operator_id = :o AND station_id = :s"),
                                   {"o": op.operator_id, "s": sid}).scalar()
            if feed_pk is None:
                feed_pk = conn.execute(text(
                    "INSERT INTO stations (operator_id, station_id, name, station_type, station_status, lng_gcj02, "
                    "lat_gcj02, geom, geom_3857, interconnected) VALUES (:o, :sid, :sid, 1, 50, 113.55, 22.27, "
                    "ST_SetSRID(ST_MakePoint(113.55, 22.27), 4326), "
                    "ST_Transform(ST_SetSRID(ST_MakePoint(113.55, 22.27), 4326), 3857), true) RETURNING id"),
                    {"o": op.operator_id, "sid": sid}).scalar_one()
            epk = conn.execute(text(
                "INSERT INTO equipment (station_pk, operator_id, equipment_id, equipment_type, power_kw) "
                "VALUES (:s, :o, :e, 1, :p) RETURNING id"), {"s": feed_pk, "o": op.operator_id, "e": eid,
                                                           "p": Decimal(power)}).scalar_one()
            ids = [f"{eid}{i}" for i in range(1, connectors + 1)]
            for c in ids:
                conn.execute(text(
                    "INSERT INTO connectors (equipment_pk, station_pk, operator_id, connector_id, connector_type, "
                    "power_kw) VALUES (:e, :s, :o, :c, 4, :p)"), {"e": epk, "s": feed_pk, "o": op.operator_id, "c": c,
                                                                 "p": Decimal(power)})
            if tariff:
                gd = policy()
                store_tariffs(conn, op.operator_id, [TariffWrite(c, read_policy(gd, Cap(Decimal(2))), "policy", gd)
                                                     for c in ids], now=datetime.now(CHINA_TZ) - timedelta(days=400))
        return ids

    def rule(self, session: Session | None = None, **kw: Any) -> int:
        values: dict[str, Any] = dict(
            name=f"测试规则{secrets.token_hex(3)}", description="测试", basis="per_kw",
            subsidy_start=TODAY - timedelta(days=365), subsidy_end=TODAY + timedelta(days=30),
            apply_start=TODAY - timedelta(days=5), apply_end=TODAY + timedelta(days=5),
            rate_dc=Decimal("200"), rate_ac=Decimal("100"), rate_acdc=Decimal("150"), rate_wireless=Decimal("80"),
            rate_other=None, rate_kwh=None, cap_station=None, cap_operator=None, budget=Decimal("10000000"),
            required_station_status=None, required_interconnection="none", min_operator_power_kw=Decimal("0"),
            published_at=datetime.now(UTC))
        values.update(kw)
        from sqlalchemy.orm import sessionmaker

        with sessionmaker(self.engine).begin() as s:
            rule = SubsidyRule(**values)
            s.add(rule)
            s.flush()
            return rule.id


@pytest.fixture()
def factory(engine: Engine) -> Factory:
    return Factory(engine)


@pytest.fixture()
def session(engine: Engine) -> Iterator[Session]:
    from sqlalchemy.orm import sessionmaker

    with sessionmaker(engine, expire_on_commit=False).begin() as s:
        yield s


class FakeEnergy:
    """An EnergySource answering fixed kWh per EquipmentID and recording its calls."""

    def __init__(self, per_equipment: dict[str, str] | None = None) -> None:
        self.per_equipment = {k: Decimal(v) for k, v in (per_equipment or {}).items()}
        self.calls: list[tuple[str, str, date, date]] = []

    def __call__(self, operator_id: str, station_id: str, start: date, end: date) -> StationEnergy:
        self.calls.append((operator_id, station_id, start, end))
        return StationEnergy(sum(self.per_equipment.values(), Decimal(0)), dict(self.per_equipment))


class OrderBook:
    """One operator's charge orders and daily reconciliations, through ``store_order`` (orders read
    with ``read_order``, each under a fresh envelope: ``tests.orders_helpers.push``) and
    ``reconcile``, exactly as the receiver runs them."""

    def __init__(self, engine: Engine, op: Op) -> None:
        self.engine = engine
        self.op = op

    def store(self, data: dict[str, Any]) -> StoredOrder:
        """``store_order`` under a fresh envelope, as the receiver stores a push."""
        with self.engine.begin() as conn:
            return push(conn, self.op.operator_id, data)

    def push(self, connector: str, day: date, *, hour: int = 9, minutes: int = 60, power_kw: int = 60,
             bump: str = "0") -> dict[str, Any]:
        """An order billed by the Guangdong policy (``bump`` yuan/kWh over it: disputed on receipt),
        starting at ``hour``:30 China time on ``day``; returns its Data."""
        data = pushed_order(GUANGDONG, connector, day, hour, minutes, power_kw, bump=bump)
        self.store(data)
        return data

    def revise(self, data: dict[str, Any], less_kwh: str = "0.50") -> dict[str, Any]:
        """A revision of ``data``: its first detail ``less_kwh`` lighter, money recomputed."""
        new = dict(data, ChargeDetails=[dict(d) for d in data["ChargeDetails"]])
        d0 = new["ChargeDetails"][0]
        d0["DetailPower"] = str(Decimal(d0["DetailPower"]) - Decimal(less_kwh))
        d0["DetailElecMoney"] = str(money(Decimal(d0["ElecPrice"]) * Decimal(d0["DetailPower"])))
        d0["DetailSeviceMoney"] = str(money(Decimal(d0["SevicePrice"]) * Decimal(d0["DetailPower"])))
        te = sum(Decimal(d["DetailElecMoney"]) for d in new["ChargeDetails"])
        ts = sum(Decimal(d["DetailSeviceMoney"]) for d in new["ChargeDetails"])
        tp = sum(Decimal(d["DetailPower"]) for d in new["ChargeDetails"])
        new.update(TotalPower=str(tp), TotalElecMoney=str(te), TotalSeviceMoney=str(ts), TotalMoney=str(te + ts))
        stored = self.store(new)
        assert stored.revision, stored
        return new

    @staticmethod
    def listed(data: dict[str, Any], *, money_delta: str = "0", power_delta: str = "0") -> dict[str, Any]:
        """How the operator's daily list states an order (``*_delta`` make it disagree)."""
        return {"StartChargeSeq": data["StartChargeSeq"],
                "TotalPower": str(Decimal(data["TotalPower"]) + Decimal(power_delta)),
                "TotalMoney": str(Decimal(data["TotalMoney"]) + Decimal(money_delta))}

    def reconcile(self, day: date, listed: list[dict[str, Any]]) -> dict[str, Any]:
        """The operator's ``check_charge_orders`` for ``day`` with these entries; returns our answer."""
        check = read_check({"CheckOrderSeq": f"CK{secrets.token_hex(12).upper()}", "StartTime": f"{day} 00:00:00",
                            "EndTime": f"{day} 23:59:59", "OrderCount": len(listed),
                            "TotalOrderPower": sum((Decimal(x["TotalPower"]) for x in listed), Decimal(0)),
                            "TotalOrderMoney": sum((Decimal(x["TotalMoney"]) for x in listed), Decimal(0)),
                            "ChargeOrders": listed})
        with self.engine.begin() as conn:
            return reconcile(conn, self.op.operator_id, check)


def kwh(*orders: dict[str, Any]) -> Decimal:
    """The energy of orders as pushed (their TotalPower), exact."""
    return sum((Decimal(o["TotalPower"]) for o in orders), Decimal(0))


class Scene:
    """Station ``st`` with claimed facilities ``f1``, ``f2`` and an unclaimed ``f3``, each with one
    connector on the feed, and orders in every state (days D-3 reconciled, D-1 not):

    ========  =====  ====  ==================================================  ==========================
    key       pile   day   what                                                counts?
    ========  =====  ====  ==================================================  ==========================
    a1, a2    f1,f2  D-3   accepted, listed as received                        counted
    over      f1     D-3   billed 0.20 over the tariff, listed as received     disputed on receipt
    money     f2     D-3   listed with 5 yuan more                             reconciliation: money
    energy    f1     D-3   listed with 1 kWh more                              reconciliation: energy
    omitted   f1     D-3   left out of the list                                unlisted
    revised   f2     D-3   listed and agreed, then revised                     revised, not reconciled
    late      f1     D-1   no list yet                                         not reconciled
    other     f3     D-3   unclaimed pile, listed                              not part of the claim
    early     f1     D-25  before the subsidy period (D-20)                    not looked at
    ========  =====  ====  ==================================================  ==========================
    """

    def __init__(self, factory: Factory, engine) -> None:  # noqa: ANN001
        self.factory = factory
        self.op = op = factory.operator()
        self.st = factory.station(op, feed_interconnected=True, name="订单补贴站")
        self.f1, self.f2, self.f3 = (factory.facility(op, self.st) for _ in range(3))
        (self.c1,), (self.c2,), (self.c3,) = (factory.feed_pile(op, self.st, f) for f in (self.f1, self.f2, self.f3))
        self.eq1, self.eq2 = factory.equipment_id_of(self.f1), factory.equipment_id_of(self.f2)
        self.book = book = OrderBook(engine, op)
        d3, d1 = TODAY - timedelta(days=3), TODAY - timedelta(days=1)
        o = self.orders = {
            "a1": book.push(self.c1, d3, hour=8, minutes=75), "a2": book.push(self.c2, d3, hour=9, minutes=50),
            "over": book.push(self.c1, d3, hour=11, minutes=40, bump="0.2"),
            "money": book.push(self.c2, d3, hour=12, minutes=30), "energy": book.push(self.c1, d3, hour=14, minutes=20),
            "omitted": book.push(self.c1, d3, hour=16, minutes=30), "revised": book.push(self.c2, d3, hour=18),
            "late": book.push(self.c1, d1, hour=7, minutes=45), "other": book.push(self.c3, d3, hour=9),
            "early": book.push(self.c1, TODAY - timedelta(days=25), hour=9),
        }
        book.reconcile(d3, [book.listed(o["a1"]), book.listed(o["a2"]), book.listed(o["over"]),
                            book.listed(o["money"], money_delta="5"), book.listed(o["energy"], power_delta="1"),
                            book.listed(o["revised"]), book.listed(o["other"])])
        o["revised2"] = book.revise(o["revised"])

    @property
    def agreed(self) -> Decimal:
        return kwh(self.orders["a1"], self.orders["a2"])


@pytest.fixture()
def scene(factory: Factory, engine) -> Scene:  # noqa: ANN001
    return Scene(factory, engine)
