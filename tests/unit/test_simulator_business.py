"""The simulator's prices and orders without a server: tariffs and texts, orders, faults, retention."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from ingest.protocol import CHINA_TZ, normalize_station_info, parse_query_time, validate_station_info
from ingest.simulator.config import Faults, SimConfig
from ingest.simulator.orders import break_arithmetic, build_order, overcharge, revise
from ingest.simulator.state import Simulator
from ingest.simulator.tariffs import MAX_TOTAL, PERIOD_STARTS, Policy, StationTariffs, TariffVersion, kind_of
from services.supervision.fees import parse_fee


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return Simulator(SimConfig(seed=2, stations=400, operators=6))


def _at(h: int, m: int = 0, day: int = 1) -> datetime:
    return datetime(2024, 5, day, h, m, tzinfo=CHINA_TZ)


def _assert_texts_say_the_policy(sim: Simulator, station) -> None:
    current = sim.business.tariffs[(station.operator_id, station.station_id)].current
    elec, service = parse_fee(station.fields["ElectricityFee"]), parse_fee(station.fields["ServiceFee"])
    assert elec.complete and service.complete, station.station_id
    text = station.fields["ServiceFee"]
    less = Decimal(text.split("每度低")[1].rstrip("元")) if "每度低" in text else Decimal(0)
    for c in station.connectors():
        kind = kind_of(c.connector_type)
        for start, e, v in current.policy(kind).periods:
            assert elec.price_at(start // 60) == e
            assert Decimal(str(service.price_at(start // 60))) - (less if kind == "AC" else 0) == Decimal(str(v))


def test_every_station_says_in_its_fee_texts_what_its_policies_say(sim):
    flat_ops = set()
    for index, op in enumerate(sim.operators.values()):
        for station in op.stations:
            _assert_texts_say_the_policy(sim, station)
            assert validate_station_info(normalize_station_info(station.info())) == []
            current = sim.business.tariffs[(op.operator_id, station.station_id)].current
            for policy in (current.ac, current.dc):
                assert len(policy.periods) in (1, 6) and policy.periods[0][0] == 0
                assert policy.max_total <= MAX_TOTAL
                if len(policy.periods) == 1:
                    flat_ops.add(index)
                else:
                    assert policy.starts == PERIOD_STARTS
    assert flat_ops == {2, 5}


def test_texts_follow_piles_added_and_stations_added(sim):
    for _ in range(30):
        sim.apply_info_change()
    added = [sim.add_station() for _ in range(3)]
    for op in sim.operators.values():
        for station in op.stations:
            _assert_texts_say_the_policy(sim, station)
    for a in added:
        station = sim.operators[a["OperatorID"]].station(a["StationID"])
        assert sim.business.tariffs[(station.operator_id, station.station_id)].current.reason == "initial"


def test_a_tariff_change_bills_from_the_next_period_boundary():
    old = Policy(tuple((s, 1.0, 0.5) for s in PERIOD_STARTS))
    new = Policy(tuple((s, 2.0, 0.8) for s in PERIOD_STARTS))
    hist = StationTariffs([TariffVersion(1, _at(0), old, old, "initial"),
                           TariffVersion(2, _at(10, 30), new, new, "change")])

    def tariff_at(moment):
        v = hist.at(moment)
        return v.version, v.dc

    for start in (_at(10, 0), _at(10, 45)):  # before and after the change, inside the 10:00 period
        order, expected = build_order(seq="X" * 27, connector_id="C", power=60.0, start=start, end=_at(12, 30),
                                      load_factor=0.8, stop_reason=0, tariff_at=tariff_at)
        assert [(d["ElecPrice"], d["SevicePrice"]) for d in order["ChargeDetails"]] == [(1.0, 0.5), (2.0, 0.8)]
        assert [v for _, _, v in expected] == [1, 2]


def test_orders_over_midnight_and_the_physics():
    flat = Policy(((0, 0.7, 0.6),))
    order, _ = build_order(seq="X" * 27, connector_id="C", power=7.0, start=_at(22, 0), end=_at(3, 0, day=2),
                           load_factor=0.95, stop_reason=2, tariff_at=lambda t: (1, flat))
    assert [d["DetailStartTime"] for d in order["ChargeDetails"]] == ["2024-05-01 22:00:00", "2024-05-02 00:00:00"]
    assert order["TotalPower"] == 33.25 <= 7.0 * 5  # 7 kW × 5 h × 0.95
    short, _ = build_order(seq="X" * 27, connector_id="C", power=240.0, start=_at(9, 0), end=_at(9, 0) +
                           timedelta(seconds=1), load_factor=0.55, stop_reason=0, tariff_at=lambda t: (1, flat))
    assert short["TotalPower"] == 0.03 <= 240 / 3600  # rounded down, never above power × duration


def _problems(o: dict) -> list[str]:
    D = lambda x: Decimal(str(x))  # noqa: E731
    out = [f"{i}.{m}" for i, d in enumerate(o["ChargeDetails"])
           for p, m in (("ElecPrice", "DetailElecMoney"), ("SevicePrice", "DetailSeviceMoney"))
           if abs(D(d[p]) * D(d["DetailPower"]) - D(d[m])) > Decimal("0.01")]
    out += [t for t, k in (("TotalPower", "DetailPower"), ("TotalElecMoney", "DetailElecMoney"),
                           ("TotalSeviceMoney", "DetailSeviceMoney"))
            if abs(sum(D(d[k]) for d in o["ChargeDetails"]) - D(o[t])) > Decimal("0.01")]
    if abs(D(o["TotalElecMoney"]) + D(o["TotalSeviceMoney"]) - D(o["TotalMoney"])) > Decimal("0.01"):
        out.append("TotalMoney")
    return out


def test_order_faults_break_what_they_say_and_nothing_else():
    tou = Policy(tuple((s, 0.3 + i / 10, 0.6) for i, s in enumerate(PERIOD_STARTS)))
    clean, _ = build_order(seq="X" * 27, connector_id="C", power=120.0, start=_at(7, 10), end=_at(10, 40),
                           load_factor=0.7, stop_reason=0, tariff_at=lambda t: (1, tou))
    assert _problems(clean) == [] and clean["SumPeriod"] == 3
    over, info = overcharge(clean)
    assert _problems(over) == []  # consistent money: a price violation, not arithmetic
    assert over["ChargeDetails"][info["detail"]]["SevicePrice"] == 0.8 and info["overcharge_yuan"] > 0
    assert over["TotalMoney"] > clean["TotalMoney"]
    rng = random.Random(1)
    kinds = set()
    for _ in range(30):
        broken, how = break_arithmetic(clean, rng)
        kinds.add(how["kind"])
        assert _problems(broken) and how["delta"] >= 0.3
    assert kinds == {"detail_money", "total_money", "total_power"}
    revised = revise(over, 0.95)
    assert _problems(revised) == [] and revised["TotalPower"] < over["TotalPower"]
    assert [d["SevicePrice"] for d in revised["ChargeDetails"]] == [d["SevicePrice"] for d in over["ChargeDetails"]]
    assert revise(clean, 1.0) is None


def test_backdated_sessions_never_overlap_nor_end_in_the_future():
    sim = Simulator(SimConfig(seed=4, stations=20, operators=2))
    start = datetime.now(CHINA_TZ).replace(microsecond=0) - timedelta(hours=1)
    made = sim.business.run_sessions(500, start=start, minutes=(90, 90))
    connectors = [r.session.connector_id for r in made]
    assert len(connectors) == len(set(connectors))  # all at once: one per free connector at most
    free = sum(1 for _, s, c in sim._live_connectors(None) if c.status == 1)
    assert 0 < len(made) <= free
    now = datetime.now(CHINA_TZ)
    assert all(r.end <= now and r.end == start + timedelta(hours=1) for r in made)  # clipped at now
    assert all(r.deliveries[0].outcome == "not_pushed" for r in made)
    with pytest.raises(ValueError):
        sim.business.run_sessions(1, start=now + timedelta(minutes=1))


def test_old_orders_are_forgotten_and_their_stats_turn_synthetic():
    sim = Simulator(SimConfig(seed=4, stations=20, operators=2))
    made = sim.business.run_sessions(6, start=parse_query_time("2024-03-05 10:00:00"), minutes=(60, 60))
    rec = made[0]
    op = sim.operators[rec.session.operator_id]
    station = op.station(rec.session.station_id)
    stats = sim.station_stats(op, station, date(2024, 3, 5), date(2024, 3, 5))
    assert stats["StationElectricity"] == pytest.approx(sum(r.energy for r in made if r.session.station_id ==
                                                            station.station_id))
    assert sim.business.forget_before(date(2024, 3, 6)) == 6
    assert sim.business.orders_view() == []
    fresh = Simulator(SimConfig(seed=4, stations=20, operators=2))
    fresh_op = fresh.operators[op.operator_id]
    assert sim.station_stats(op, station, date(2024, 3, 5), date(2024, 3, 5)) == fresh.station_stats(
        fresh_op, fresh_op.station(station.station_id), date(2024, 3, 5), date(2024, 3, 5))


def test_policy_faults_validated_and_applied():
    f = Faults()
    f.update({"policy_over_cap": ["MA0000001"], "policy_unsupported": {"MA0000002": "missing"},
              "order_overcharge_rate": "0.5"})
    assert f.policy_over_cap == {"MA0000001": 1} and f.order_overcharge_rate == 0.5
    for bad in ({"policy_unsupported": {"X": "maybe"}}, {"policy_over_cap": {"X": -1}}, {"order_revise_rate": 2},
                {"policy_over_cap": "X"}):
        with pytest.raises(ValueError):
            f.update(bad)
    sim = Simulator(SimConfig(seed=4, stations=20, operators=2))
    op_id = next(iter(sim.operators))
    sim.faults.update({"policy_over_cap": {op_id: 2}})
    assert len(sim.business.apply_policy_faults()) == 2
    over = [s for s in sim.operators[op_id].stations
            if sim.business.tariffs[(op_id, s.station_id)].current.over_cap]
    assert len(over) == 2 and all(s.fields["ServiceFee"] == "00:00-24:00 3.50元/度" for s in over)
    assert sim.business.apply_policy_faults() == []  # already so
    sim.faults.update({"policy_over_cap": {op_id: 1}})
    assert len(sim.business.apply_policy_faults()) == 1
