"""Prices, charging sessions, orders and reconciliation of the simulated operators (T/CEC 102 part 3).

* **Tariffs** (:mod:`~ingest.simulator.tariffs`): every station has a versioned tariff (an AC and
  a DC policy); its ``ElectricityFee``/``ServiceFee`` texts always say what the current version
  says. A policy change makes a new version, touches the station (``LastQueryTime``) and, with
  a push target, queues a ``notification_stationInfo`` of it, as a real platform announces it.
* **Sessions**: a connector whose status becomes 3 starts one; leaving 3 ends it and makes the
  order (:mod:`~ingest.simulator.orders`), pushed with ``notification_charge_order_info``
  (:mod:`~ingest.simulator.deliveries`). ``run_sessions`` adds complete backdated sessions on
  free connectors without touching live status.
* **Faults** are drawn from the seed's fault RNG when an order is made and kept with it, so
  ``orders_view`` is the ground truth a platform's checks are measured against.
* **Reconciliation**: ``check_charge_orders`` per operator and China day over the orders that
  ended that day (latest versions), less those the ``reconcile_omit_rate`` fault leaves out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ingest.protocol import CHINA_TZ, ProtocolError, Ret, format_query_time
from ingest.simulator.city import SimConnector, SimEquipment, SimOperator, SimStation, now_china
from ingest.simulator.deliveries import Deliveries, Delivery
from ingest.simulator.orders import break_arithmetic, build_order, check_data, overcharge, revise, with_totals
from ingest.simulator.tariffs import (
    StationTariffs,
    TariffVersion,
    draw_policies,
    fee_texts,
    kind_of,
    operator_profile,
    over_cap,
)

if TYPE_CHECKING:
    from ingest.simulator.state import Simulator

__all__ = ["Business", "OrderRecord", "Session", "days_due"]

#: StopReason by the status a charging connector moves to: ((reason, weight), ...).
_STOP_REASONS = {2: ((2, 60), (0, 40)), 1: ((0, 70), (4, 20), (1, 10))}
_ADMIN_STOP_REASONS = (0, 0, 2, 2, 2, 4)
#: The first tariff version of the generated city is in force since long before any session.
_TARIFF_EPOCH = datetime(2000, 1, 1, tzinfo=CHINA_TZ)
_NO_POLICY = {"SumPeriod": 0, "PolicyInfos": []}


def days_due(now: datetime, through: date, delay_seconds: float) -> list[date]:
    """The days to reconcile at ``now``: each day after ``through`` whose China midnight is at
    least ``delay_seconds`` past.

    >>> t = datetime(2024, 5, 3, 0, 5, tzinfo=CHINA_TZ)
    >>> days_due(t, date(2024, 5, 1), 600), days_due(t, date(2024, 5, 1), 60)
    ([], [datetime.date(2024, 5, 2)])
    >>> days_due(t, date(2024, 4, 29), 0)
    [datetime.date(2024, 4, 30), datetime.date(2024, 5, 1), datetime.date(2024, 5, 2)]
    """
    last = (now.astimezone(CHINA_TZ) - timedelta(seconds=delay_seconds)).date() - timedelta(days=1)
    return [through + timedelta(days=k) for k in range(1, (last - through).days + 1)]


@dataclass
class Session:
    seq: str
    """StartChargeSeq: OperatorID + yyMMddHHmmss of the start + 6 digits of a counter."""
    operator_id: str
    station_id: str
    equipment_id: str
    connector_id: str
    power: float
    kind: str
    start: datetime
    load_factor: float
    source: str
    """``live`` (connector status 3) or ``admin`` (``POST /_admin/sessions``)."""

    def as_dict(self) -> dict[str, Any]:
        return {"start_charge_seq": self.seq, "operator_id": self.operator_id, "station_id": self.station_id,
                "equipment_id": self.equipment_id, "connector_id": self.connector_id,
                "connector_power": self.power, "kind": self.kind, "start": format_query_time(self.start),
                "load_factor": self.load_factor, "source": self.source}


@dataclass(eq=False)
class OrderRecord:
    """One order as the simulator knows it: every version pushed, the tariff it should have
    billed, its injected faults and how each push went."""

    session: Session
    end: datetime
    versions: list[dict[str, Any]]
    expected: list[tuple[float, float, int]]
    """Per detail: (ElecPrice, SevicePrice, tariff version) of the tariff in force."""
    history: StationTariffs
    faults: dict[str, Any]
    deliveries: list[Delivery]

    @property
    def day(self) -> str:
        return self.end.astimezone(CHINA_TZ).date().isoformat()

    @property
    def latest(self) -> dict[str, Any]:
        return self.versions[-1]["order"]

    @property
    def energy(self) -> float:
        """Metered kWh of the latest version (its details; a broken TotalPower does not count)."""
        return with_totals(self.latest)["TotalPower"]

    def as_dict(self) -> dict[str, Any]:
        first = self.versions[0]["order"]["ChargeDetails"]
        expected = [{"DetailStartTime": d["DetailStartTime"], "DetailEndTime": d["DetailEndTime"], "ElecPrice": e,
                     "SevicePrice": v, "tariff_version": n} for d, (e, v, n) in zip(first, self.expected)]
        used = {n for _, _, n in self.expected}
        tariff = [{"version": v.version, "since": format_query_time(v.since), "reason": v.reason,
                   "PolicyInfos": v.policy(self.session.kind).policy_infos()}
                  for v in self.history.versions if v.version in used]
        return {**self.session.as_dict(), "end": format_query_time(self.end), "day": self.day,
                "energy_kwh": self.energy, "order": self.latest, "versions": self.versions,
                "expected": expected, "tariff": tariff, "faults": self.faults,
                "deliveries": [d.as_dict() for d in self.deliveries]}


class Business:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.config = sim.config
        self.faults = sim.faults
        self.rng = random.Random(f"business:{sim.config.seed}")
        self.deliveries = Deliveries(sim)
        self.profiles = {op_id: operator_profile(sim.config.seed, op_id, i) for i, op_id in enumerate(sim.operators)}
        self.tariffs: dict[tuple[str, str], StationTariffs] = {}
        self.sessions: dict[tuple[str, str], Session] = {}
        self.orders: dict[tuple[str, str], OrderRecord] = {}
        self._by_day: dict[tuple[str, str], list[OrderRecord]] = {}
        self._day_energy: dict[tuple[str, str, str], dict[str, float]] = {}
        self._busy: dict[tuple[str, str], list[tuple[datetime, datetime]]] = {}
        self._counters: dict[str, int] = {}
        self.reconciliations: dict[tuple[str, str], tuple[dict[str, Any], Delivery]] = {}
        self._index: tuple[int, dict[tuple[str, str], tuple]] = (-1, {})
        now = now_china()
        # Days before the start are not reconciled by the clock (POST /_admin/reconcile can).
        self.reconciled_through = (now - timedelta(seconds=self.config.reconcile_delay_seconds)).date() - timedelta(1)
        self.today = now.date()
        for op in sim.operators.values():
            for station in op.stations:
                self._install(station, self._drawn(station, 1, _TARIFF_EPOCH, "initial"))
        for op, station, eq, c in self._index_now().values():
            if c.status == 3:  # charging in the generated city: a session that began a while ago
                self._start(op, station, eq, c, now - timedelta(seconds=self.rng.randint(600, 9000)), "live")
        self.apply_policy_faults()

    # ------------------------------------------------------------------ lookups

    def _index_now(self) -> dict[tuple[str, str], tuple[SimOperator, SimStation, SimEquipment, SimConnector]]:
        """(OperatorID, ConnectorID) -> where it is; rebuilt when piles or stations were added."""
        if self._index[0] != self.sim._topology:
            self._index = (self.sim._topology, {
                (op.operator_id, c.connector_id): (op, s, e, c)
                for op in self.sim.operators.values() for s in op.stations for e in s.equipments for c in e.connectors
            })
        return self._index[1]

    def _history(self, station: SimStation) -> StationTariffs:
        return self.tariffs[(station.operator_id, station.station_id)]

    # ------------------------------------------------------------------ tariffs

    def _drawn(self, station: SimStation, version: int, since: datetime, reason: str) -> TariffVersion:
        op_id = station.operator_id
        ac, dc = draw_policies(self.config.seed, self.profiles[op_id], op_id, station.station_id, version)
        return TariffVersion(version, since, ac, dc, reason)

    def _install(self, station: SimStation, version: TariffVersion, announce: bool = False) -> None:
        key = (station.operator_id, station.station_id)
        if key in self.tariffs:
            self.tariffs[key].versions.append(version)
        else:
            self.tariffs[key] = StationTariffs([version])
        self.refresh_texts(station)
        if announce:
            station.touch(version.since)
            self.sim.enqueue_push(station.operator_id, station.info(), "notification_stationInfo")

    def refresh_texts(self, station: SimStation) -> None:
        """Fee texts from the current tariff and the station's kinds of piles."""
        kinds = {kind_of(c.connector_type) for c in station.connectors()}
        station.fields["ElectricityFee"], station.fields["ServiceFee"] = fee_texts(self._history(station).current, kinds)

    def new_station(self, station: SimStation) -> None:
        self._install(station, self._drawn(station, 1, station.changed_at, "initial"))

    def change_policies(self, n: int, operator_id: str | None = None) -> list[dict[str, Any]]:
        """New prices at ``n`` stations (not those the ``policy_over_cap`` fault holds)."""
        when = now_china()
        ops = [self.sim.operators[operator_id]] if operator_id else list(self.sim.operators.values())
        pool = [s for op in ops for s in op.stations if self._history(s).current.reason != "over_cap"]
        picked = self.rng.sample(pool, min(n, len(pool)))
        for s in picked:
            self._install(s, self._drawn(s, self._history(s).current.version + 1, when, "change"), announce=True)
        return [self.policy_view(s) for s in picked]

    def live_policy_changes(self, changes: int) -> None:
        """The rare policy change of live mode: ``policy_change_probability`` per status change."""
        for _ in range(changes):
            if self.rng.random() < self.config.policy_change_probability:
                self.change_policies(1)

    def apply_policy_faults(self) -> list[dict[str, Any]]:
        """Make ``policy_over_cap`` true: that many stations of each operator with an absurd
        service fee; stations beyond it get their last normal prices back."""
        when = now_china()
        changed = []
        for op in self.sim.operators.values():
            want = int(self.faults.policy_over_cap.get(op.operator_id, 0))
            over = [s for s in op.stations if self._history(s).current.reason == "over_cap"]
            if len(over) < want:
                rest = [s for s in op.stations if self._history(s).current.reason != "over_cap"]
                for s in self.sim.fault_rng.sample(rest, min(want - len(over), len(rest))):
                    cur = self._history(s).current
                    self._install(s, TariffVersion(cur.version + 1, when, over_cap(cur.ac), over_cap(cur.dc),
                                                   "over_cap"), announce=True)
                    changed.append(s)
            for s in over[want:]:
                hist = self._history(s)
                normal = next(v for v in reversed(hist.versions) if v.reason != "over_cap")
                self._install(s, TariffVersion(hist.current.version + 1, when, normal.ac, normal.dc, "restore"),
                              announce=True)
                changed.append(s)
        return [self.policy_view(s) for s in changed]

    def serves_policies(self, operator_id: str) -> bool:
        """False when the ``policy_unsupported`` fault says the interface is not implemented."""
        return self.faults.policy_unsupported.get(operator_id) != "missing"

    def query_policy(self, op: SimOperator, data: dict[str, Any]) -> dict[str, Any]:
        """``query_equip_business_policy``: the connector's policy in force now.

        FailReason 1 = unknown connector, 2 = policy not available (the ``fail`` fault)."""
        seq = data.get("EquipBizSeq")
        if not isinstance(seq, str) or len(seq) != 27:
            raise ProtocolError(Ret.BUSINESS, "EquipBizSeq must be 27 characters (OperatorID + a unique number)")
        cid = data.get("ConnectorID")
        if not isinstance(cid, str) or not cid.strip() or len(cid) > 26:
            raise ProtocolError(Ret.BUSINESS, "ConnectorID is required (at most 26 characters)")
        out = {"EquipBizSeq": seq, "ConnectorID": cid}
        if self.faults.policy_unsupported.get(op.operator_id) == "fail":
            return {**out, "SuccStat": 1, "FailReason": 2, **_NO_POLICY}
        where = self._index_now().get((op.operator_id, cid))
        if where is None:
            return {**out, "SuccStat": 1, "FailReason": 1, **_NO_POLICY}
        _, station, _, c = where
        infos = self._history(station).current.policy(kind_of(c.connector_type)).policy_infos()
        return {**out, "SuccStat": 0, "FailReason": 0, "SumPeriod": len(infos), "PolicyInfos": infos}

    # ------------------------------------------------------------------ sessions and orders

    def connector(self, operator_id: str, connector_id: str) -> tuple | None:
        """``(operator, station, equipment, connector)`` of a ConnectorID, or None."""
        return self._index_now().get((operator_id, connector_id))

    def on_status(self, op: SimOperator, station: SimStation, c: SimConnector, when: datetime) -> str | None:
        """A connector's status changed: entering 3 starts a session, leaving 3 ends it (and
        makes its order). Returns the StartChargeSeq of a session started or ended."""
        key = (op.operator_id, c.connector_id)
        if c.status == 3 and key not in self.sessions:
            return self._start(op, station, self._index_now()[key][2], c, when, "live").seq
        if c.status != 3 and key in self.sessions:
            reasons, weights = zip(*_STOP_REASONS.get(c.status, ((3, 1),)))
            return self._finish(self.sessions.pop(key), when, self.rng.choices(reasons, weights)[0]).session.seq
        return None

    def _start(self, op: SimOperator, station: SimStation, eq: SimEquipment, c: SimConnector, start: datetime,
               source: str) -> Session:
        n = self._counters[op.operator_id] = self._counters.get(op.operator_id, 0) + 1
        s = Session(f"{op.operator_id}{start.astimezone(CHINA_TZ):%y%m%d%H%M%S}{n % 10**6:06d}", op.operator_id,
                    station.station_id, eq.equipment_id, c.connector_id, c.power, kind_of(c.connector_type), start,
                    round(self.rng.uniform(0.55, 0.95), 3), source)
        if source == "live":
            self.sessions[(op.operator_id, c.connector_id)] = s
        return s

    def _finish(self, s: Session, end: datetime, stop_reason: int) -> OrderRecord:
        if end <= s.start:  # a session lasts at least a second
            s.start = end - timedelta(seconds=1)
        hist = self.tariffs[(s.operator_id, s.station_id)]

        def tariff_at(moment: datetime) -> tuple[int, Any]:
            v = hist.at(moment)
            return v.version, v.policy(s.kind)

        order, expected = build_order(seq=s.seq, connector_id=s.connector_id, power=s.power, start=s.start, end=end,
                                      load_factor=s.load_factor, stop_reason=stop_reason, tariff_at=tariff_at)
        rec = self._with_faults(s, end, order, expected, hist)
        self.orders[(s.operator_id, s.seq)] = rec
        self._by_day.setdefault((s.operator_id, rec.day), []).append(rec)
        per = self._day_energy.setdefault((s.operator_id, s.station_id, rec.day), {})
        per[s.connector_id] = round(per.get(s.connector_id, 0.0) + rec.energy, 2)
        self._busy.setdefault((s.operator_id, s.connector_id), []).append((s.start, end))
        self.deliveries.submit(rec.deliveries[0])
        return rec

    def _with_faults(self, s: Session, end: datetime, order: dict, expected: list, hist: StationTariffs) -> OrderRecord:
        """Draw this order's faults (always five draws, so one rate does not shift the others)."""
        f, r = self.faults, self.sim.fault_rng
        draws = [r.random() for _ in range(5)]
        faults: dict[str, Any] = {}
        if draws[0] < f.order_overcharge_rate:
            order, faults["overcharge"] = overcharge(order)
        if draws[1] < f.order_arithmetic_rate:
            order, faults["arithmetic"] = break_arithmetic(order, r)
        versions = [{"version": 1, "order": order, "faults": sorted(faults)}]
        chain = [Delivery(s.operator_id, "notification_charge_order_info", order, "order")]
        if draws[2] < f.order_duplicate_rate:
            faults["duplicate"] = True
            chain.append(Delivery(s.operator_id, "notification_charge_order_info", order, "duplicate"))
        if draws[3] < f.order_revise_rate:
            factor = round(r.uniform(0.90, 0.98), 3)
            revised = revise(order, factor)
            if revised is not None:
                faults["revised"] = {"factor": factor}
                versions.append({"version": 2, "order": revised, "faults": ["overcharge"] if "overcharge" in faults else []})
                chain.append(Delivery(s.operator_id, "notification_charge_order_info", revised, "revision", version=2))
        if draws[4] < f.reconcile_omit_rate:
            faults["reconcile_omit"] = True
        for before, after in zip(chain, chain[1:]):
            before.then.append(after)
        return OrderRecord(s, end, versions, expected, hist, faults, chain)

    def run_sessions(self, count: int, operator_id: str | None = None, start: datetime | None = None,
                     minutes: tuple[float, float] = (20, 120)) -> list[OrderRecord]:
        """``count`` complete sessions on free connectors (status 1, which stays), backdated:
        from ``start`` or within the last 24 h, lasting ``minutes``, never ending after now.
        A connector never holds two sessions at once; fewer orders when no connector is free."""
        now = now_china()
        if start is not None and start >= now:
            raise ValueError("start must be in the past")
        pool = [x for x in self.sim._live_connectors(operator_id) if x[2].status == 1]
        made: list[OrderRecord] = []
        for _ in range(count if pool else 0):
            for _try in range(50):
                op, station, c = pool[self.rng.randrange(len(pool))]
                length = self.rng.randint(int(minutes[0] * 60), int(minutes[1] * 60))
                a = start or now - timedelta(seconds=length + self.rng.randint(0, max(0, 86400 - length)))
                b = min(a + timedelta(seconds=length), now)
                busy = self._busy.get((op.operator_id, c.connector_id), [])
                if not any(x < b and a < y for x, y in busy):
                    break
            else:
                continue
            eq = self._index_now()[(op.operator_id, c.connector_id)][2]
            s = self._start(op, station, eq, c, a, "admin")
            made.append(self._finish(s, b, self.rng.choice(_ADMIN_STOP_REASONS)))
        return made

    def day_kwh(self, station: SimStation, c: SimConnector, day: date) -> float | None:
        """The connector's energy in the orders that ended that day, when the station has any."""
        per = self._day_energy.get((station.operator_id, station.station_id, day.isoformat()))
        return None if per is None else per.get(c.connector_id, 0.0)

    # ------------------------------------------------------------------ reconciliation

    def reconcile(self, operator_id: str, day: str) -> tuple[dict[str, Any], Delivery]:
        """Queue ``check_charge_orders`` of one operator's China day."""
        n = self._counters[f"check:{operator_id}"] = self._counters.get(f"check:{operator_id}", 0) + 1
        seq = f"{operator_id}{day.replace('-', '')}{n:010d}"
        records = self._by_day.get((operator_id, day), [])
        listed = [r.latest for r in records if "reconcile_omit" not in r.faults]
        data = check_data(seq, day, listed)
        entry = {"operator_id": operator_id, "day": day, "CheckOrderSeq": seq, "orders": len(records),
                 "omitted": [r.session.seq for r in records if "reconcile_omit" in r.faults], "request": data}
        d = self.deliveries.submit(Delivery(operator_id, "check_charge_orders", data, "reconcile"))
        self.reconciliations[(operator_id, day)] = (entry, d)
        return entry, d

    def on_clock(self, now: datetime) -> None:
        """Live mode: forget old orders on a new China day; shortly after midnight, reconcile
        the previous day."""
        today = now.astimezone(CHINA_TZ).date()
        if today != self.today:
            self.today = today
            self.forget_before(today - timedelta(days=max(1, self.config.orders_keep_days) - 1))
        due = days_due(now, self.reconciled_through, self.config.reconcile_delay_seconds)
        for day in due:
            for op_id in self.sim.operators:
                if op_id in self.sim.push_targets and self.config.push_orders:
                    self.reconcile(op_id, day.isoformat())
        if due:
            self.reconciled_through = due[-1]

    def forget_before(self, first_kept: date) -> int:
        """Drop the orders (and reconciliations) of days before ``first_kept``; their pushes
        still unanswered are given up. Returns how many orders were dropped."""
        keep = first_kept.isoformat()
        dropped = 0
        for key in [k for k in self._by_day if k[1] < keep]:
            for rec in self._by_day.pop(key):
                self.orders.pop((rec.session.operator_id, rec.session.seq), None)
                for d in rec.deliveries:
                    self.deliveries.forget(d)
                dropped += 1
        self._day_energy = {k: v for k, v in self._day_energy.items() if k[2] >= keep}
        self.reconciliations = {k: v for k, v in self.reconciliations.items() if k[1] >= keep}
        horizon = datetime.combine(first_kept, datetime.min.time(), CHINA_TZ)
        for key, spans in list(self._busy.items()):
            spans[:] = [x for x in spans if x[1] >= horizon]
            if not spans:
                del self._busy[key]
        return dropped

    # ------------------------------------------------------------------ admin views

    def policy_view(self, station: SimStation, history: bool = False) -> dict[str, Any]:
        hist = self._history(station)
        out = {"operator_id": station.operator_id, "station_id": station.station_id,
               "kinds": sorted({kind_of(c.connector_type) for c in station.connectors()}),
               "ElectricityFee": station.fields["ElectricityFee"], "ServiceFee": station.fields["ServiceFee"],
               "current": hist.current.as_dict()}
        if history:
            out["versions"] = [v.as_dict() for v in hist.versions]
        return out

    def orders_view(self, operator_id: str | None = None, day: str | None = None) -> list[dict[str, Any]]:
        if operator_id and day:
            records = self._by_day.get((operator_id, day), [])
        else:
            records = [r for r in self.orders.values()
                       if (not operator_id or r.session.operator_id == operator_id) and (not day or r.day == day)]
        return [r.as_dict() for r in records]

    def reconciliation_view(self, entry: dict[str, Any], d: Delivery) -> dict[str, Any]:
        return {**entry, "delivery": d.as_dict(), "answer": d.answer}

    def counters(self, operator_id: str) -> dict[str, Any]:
        out = self.deliveries.counters(operator_id)
        out["orders"] = sum(len(v) for (op, _), v in self._by_day.items() if op == operator_id)
        out["sessions_running"] = sum(1 for op, _ in self.sessions if op == operator_id)
        return out
