"""The simulator's live state: the city, issued tokens, status changes and outgoing pushes.

Everything runs on one asyncio event loop (the server's), so no locks are needed: handlers,
the background change task and the push workers never run at the same time. Prices, charging
sessions and orders live in ``business`` (:mod:`ingest.simulator.business`), fed by every
connector status change made here.

Why one file of about 530 lines: it is one object's state on one event loop (tokens, statuses,
push queue), whose invariants hold only because nothing else touches it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import secrets as _secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from ingest.crypto import Secrets
from ingest.envelope import build_request, parse_response
from ingest.errors import ProtocolError, Ret
from ingest.simulator.business import Business
from ingest.simulator.city import (
    _PARK_FEES,
    SimConnector,
    SimOperator,
    SimStation,
    _pile_kind,
    _sample_point,
    add_equipment,
    build_station,
    generate_city,
    lock_status_for,
    now_china,
    park_status_for,
)
from ingest.simulator.config import PushTarget, SimConfig, default_push_secrets
from ingest.simulator.deliveries import Counters
from ingest.times import format_query_time

__all__ = ["Simulator", "Token", "PushStats", "now_china"]

log = logging.getLogger("zhcharge.simulator")

# Next connector status given the current one: ((status, weight), ...).
_TRANSITIONS: dict[int, tuple[tuple[int, int], ...]] = {
    1: ((3, 62), (2, 18), (4, 6), (255, 7), (0, 7)),
    2: ((1, 60), (3, 40)),
    3: ((2, 40), (1, 60)),
    4: ((3, 70), (1, 30)),
    0: ((1, 100),),
    255: ((1, 85), (0, 15)),
}


@dataclass
class Token:
    operator_id: str
    """The simulated operator that issued it."""
    caller_id: str
    expires_at: datetime
    uses: int = 0


@dataclass
class PushStats(Counters):
    sent: int = 0
    """Notifications posted (each HTTP attempt counts)."""
    acknowledged: int = 0
    """Ret 0 with Status 0."""
    discarded: int = 0
    """Ret 0 with Status 1 (the platform will not take it; never resent)."""
    failed: int = 0
    """Gave up after all retries."""
    retries: int = 0
    token_requests: int = 0
    dropped: int = 0
    """Queue full or no target: never sent."""
    last_error: str | None = None


@dataclass
class _Pusher:
    queue: asyncio.Queue
    task: asyncio.Task | None = None
    token: str | None = None
    token_expires: datetime | None = None
    stats: PushStats = field(default_factory=PushStats)


class Simulator:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.faults = config.faults
        self.operators: dict[str, SimOperator] = {
            op.operator_id: op
            for op in generate_city(config.seed, config.stations, config.operators)
        }
        # Live randomness is seeded too, so ticks are reproducible from a fresh start.
        self.rng = random.Random(f"live:{config.seed}")
        self.fault_rng = random.Random(f"faults:{config.seed}")
        self.tokens: dict[str, Token] = {}
        self.push_targets: dict[str, PushTarget] = {}
        self._pushers: dict[str, _Pusher] = {}
        self._task: asyncio.Task | None = None
        self._client: httpx.AsyncClient | None = None
        self._push_seq: dict[str, tuple[object, int]] = {}
        # Bumped whenever piles or stations are added: invalidates the cached connector pools.
        self._topology = 0
        self._pools: dict[str | None, tuple[tuple, list]] = {}
        for op_id in self.operators:
            target = None
            if op_id in config.push_targets:
                target = PushTarget.from_dict(
                    op_id, config.push_targets[op_id], default_push_secrets(config.seed, op_id)
                )
            elif config.push_url:
                target = PushTarget(config.push_url.rstrip("/"), default_push_secrets(config.seed, op_id))
            if target is not None:
                self.push_targets[op_id] = target
        self.business = Business(self)

    # ------------------------------------------------------------------ secrets and tokens

    def served_secrets(self, op: SimOperator, caller_id: str | None = None) -> Secrets:
        """The secret set of ``op``'s served interfaces, as shared with the caller."""
        return Secrets(
            caller_id or self.config.platform_id_for(op.operator_id),
            op.operator_secret, op.data_secret, op.data_iv, op.sig_secret,
        )

    def issue_token(self, op: SimOperator, caller_id: str) -> str:
        """A new AccessToken of ``op`` for ``caller_id``, valid ``token_ttl`` seconds."""
        now = now_china()
        if len(self.tokens) > 10000:  # forget expired tokens now and then
            self.tokens = {k: v for k, v in self.tokens.items() if v.expires_at > now}
        value = _secrets.token_hex(16).upper()
        self.tokens[value] = Token(op.operator_id, caller_id, now + timedelta(seconds=self.config.token_ttl))
        return value

    def check_token(self, op: SimOperator, authorization: str | None) -> None:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise ProtocolError(Ret.TOKEN, "Authorization: Bearer <AccessToken> is missing")
        value = authorization[7:].strip()
        t = self.tokens.get(value)
        if t is None or t.operator_id != op.operator_id:
            raise ProtocolError(Ret.TOKEN, "AccessToken is unknown")
        if t.expires_at <= now_china():
            raise ProtocolError(Ret.TOKEN, "AccessToken has expired")
        if self.faults.expire_tokens and t.uses >= 1:
            raise ProtocolError(Ret.TOKEN, "AccessToken has expired")
        t.uses += 1

    # ------------------------------------------------------------------ queries

    def stations_page(
        self, op: SimOperator, last: datetime | None, page_no: int, page_size: int
    ) -> dict[str, Any]:
        """One page of StationInfos ordered by StationID; ``last`` filters by change time.

        A station is included when it changed at or after ``last`` (second resolution, so a
        change in the same second as the caller's previous query is never lost).
        """
        items = [s for s in op.stations if last is None or s.changed_at >= last]
        items.sort(key=lambda s: s.station_id)
        total = len(items)
        count = math.ceil(total / page_size) if total else 0
        start = (page_no - 1) * page_size
        return {
            "PageNo": page_no,
            "PageCount": count,
            "ItemSize": total,
            "StationInfos": [s.info() for s in items[start : start + page_size]],
        }

    def station_stats(self, op: SimOperator, station: SimStation, start: date, end: date) -> dict:
        """Deterministic daily energy per connector, summed over ``start``..``end`` inclusive."""
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        equipments = []
        total = 0.0
        for eq in station.equipments:
            eq_total = 0.0
            conns = []
            for c in eq.connectors:
                kwh = sum(self.daily_kwh(station, c, d) for d in days)
                kwh = round(kwh, 2)
                conns.append({"ConnectorID": c.connector_id, "ConnectorElectricity": kwh})
                eq_total += kwh
            equipments.append({
                "EquipmentID": eq.equipment_id,
                "EquipmentElectricity": round(eq_total, 2),
                "ConnectorStatsInfos": conns,
            })
            total += eq_total
        return {
            "StationID": station.station_id,
            "StartTime": start.isoformat(),
            "EndTime": end.isoformat(),
            "StationElectricity": round(total, 2),
            "EquipmentStatsInfos": equipments,
        }

    def daily_kwh(self, station: SimStation, c: SimConnector, day: date) -> float:
        """The energy of the day's orders where the station has any, else a synthetic figure."""
        from_orders = self.business.day_kwh(station, c, day)
        if from_orders is not None:
            return from_orders
        if station.fields["StationStatus"] in (1, 5):
            return 0.0
        r = random.Random(f"{self.config.seed}:{c.connector_id}:{day.isoformat()}")
        if r.random() < 0.08:  # idle day
            return 0.0
        hours = r.uniform(0.5, 6.0) if c.power > 10 else r.uniform(0.5, 9.0)
        return round(hours * c.power * r.uniform(0.55, 0.9), 2)

    # ------------------------------------------------------------------ mutations

    def _live_connectors(self, operator_id: str | None) -> list[tuple[SimOperator, SimStation, SimConnector]]:
        key = (operator_id, self._topology)
        cached = self._pools.get(operator_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        ops = [self.operators[operator_id]] if operator_id else list(self.operators.values())
        pool = [
            (op, s, c)
            for op in ops
            for s in op.stations
            if s.fields["StationStatus"] == 50
            for c in s.connectors()
        ]
        self._pools[operator_id] = (key, pool)
        return pool

    def apply_status_changes(self, n: int, operator_id: str | None = None) -> list[dict[str, Any]]:
        """Change ``n`` connector statuses now; push each change; return what changed."""
        pool = self._live_connectors(operator_id)
        changed = []
        if not pool:
            return changed
        when = now_china()
        for _ in range(n):
            op, station, c = pool[self.rng.randrange(len(pool))]
            choices, weights = zip(*_TRANSITIONS.get(c.status, ((1, 1),)))
            changed.append(self.set_status(op, station, c, self.rng.choices(choices, weights)[0], when))
        return changed

    def set_status(self, op: SimOperator, station: SimStation, c: SimConnector, status: int,
                   when: datetime) -> dict[str, Any]:
        """One connector status change: pushed, and a charging session starts or ends with it."""
        old = c.status
        c.status = status
        c.park_status = park_status_for(c.status)
        c.lock_status = lock_status_for(c.status)
        c.changed_at = when
        station.touch(when)
        seq = self.business.on_status(op, station, c, when)
        info = c.status_info()
        self.enqueue_push(op.operator_id, info)
        out = {"OperatorID": op.operator_id, "StationID": station.station_id, "OldStatus": old, **info}
        return {**out, "StartChargeSeq": seq} if seq else out

    def apply_info_change(self, operator_id: str | None = None) -> dict[str, Any] | None:
        """Change one station's parking fee or add a pile to it, so incremental sync has work
        (prices change only with the tariff: ``business.change_policies``)."""
        ops = [self.operators[operator_id]] if operator_id else list(self.operators.values())
        ops = [op for op in ops if op.stations]
        if not ops:
            return None
        op = self.rng.choice(ops)
        station = self.rng.choice(op.stations)
        when = now_china()
        if self.rng.random() < 0.6:
            station.fields["ParkFee"] = self.rng.choice([f for f in _PARK_FEES if f != station.fields["ParkFee"]])
            what = "ParkFee"
        else:
            eq_type, power, ctype, n_conn = _pile_kind(self.rng, station.fields["StationType"])
            eq = add_equipment(self.rng, station, eq_type, power, ctype, n_conn, None, when)
            for c in eq.connectors:
                c.status, c.park_status, c.lock_status = 1, 10, 10
            what = f"EquipmentInfos+{eq.equipment_id}"
            self._topology += 1
            self.business.refresh_texts(station)  # a new kind of pile may change the fee texts
        station.touch(when)
        return {"OperatorID": op.operator_id, "StationID": station.station_id, "Changed": what}

    def add_station(self, operator_id: str | None = None) -> dict[str, Any]:
        ops = [self.operators[operator_id]] if operator_id else list(self.operators.values())
        op = self.rng.choice(ops)
        lng, lat, adcode, district, centre = _sample_point(self.rng)
        when = now_china()
        station = build_station(
            self.rng, op, seq=op.next_station_seq, lng=lng, lat=lat, adcode=adcode,
            district=district, centre=centre, changed=when,
        )
        op.next_station_seq += 1
        op.stations.append(station)
        op.stations.sort(key=lambda s: s.station_id)
        self._topology += 1
        self.business.new_station(station)
        return {"OperatorID": op.operator_id, "StationID": station.station_id, "Changed": "added"}

    def mutate_for_sync(self, op: SimOperator) -> None:
        """``mutate_during_sync``: the data moves under a paging caller."""
        self.apply_info_change(op.operator_id)
        self.add_station(op.operator_id)

    # ------------------------------------------------------------------ background changes

    def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.config.push_timeout_seconds)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await self.business.deliveries.stop()
        tasks = [t for t in [self._task, *(p.task for p in self._pushers.values())] if t]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pushers.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        step = 0.1
        carry = 0.0
        while True:
            await asyncio.sleep(step)
            carry += max(0.0, self.config.changes_per_second) * step
            n = int(carry)
            if not n:
                continue
            carry -= n
            try:
                self.apply_status_changes(n)
                for _ in range(n):
                    if self.rng.random() < self.config.info_change_probability:
                        self.apply_info_change()
                self.business.live_policy_changes(n)
                self.business.on_clock(now_china())
            except Exception:  # never let the city die silently mid-demo
                log.exception("simulated change failed")

    # ------------------------------------------------------------------ pushes

    def set_push_target(self, operator_id: str, target: PushTarget | None) -> None:
        if target is None:
            self.push_targets.pop(operator_id, None)
        else:
            self.push_targets[operator_id] = target
        p = self._pushers.get(operator_id)
        if p is not None:
            p.token = None
            p.token_expires = None

    def _pusher(self, operator_id: str) -> _Pusher:
        p = self._pushers.get(operator_id)
        if p is None:
            p = _Pusher(asyncio.Queue(maxsize=self.config.push_queue_max))
            self._pushers[operator_id] = p
        if p.task is None or p.task.done():
            p.task = asyncio.get_running_loop().create_task(self._push_worker(operator_id, p))
        return p

    def enqueue_push(self, operator_id: str, data: dict[str, Any],
                     interface: str = "notification_stationStatus") -> None:
        """Queue a push of a connector status (or, with ``interface``, a StationInfo)."""
        if operator_id not in self.push_targets:
            return
        try:
            p = self._pusher(operator_id)
        except RuntimeError:  # no running loop (pure unit use): nothing to push with
            return
        try:
            p.queue.put_nowait((interface, dict(data)))
        except asyncio.QueueFull:
            p.stats.dropped += 1

    async def drain_pushes(self, timeout: float = 10.0) -> bool:
        """Wait until every queued push was delivered or given up; False on timeout."""
        joins = [p.queue.join() for p in self._pushers.values()]
        if not joins:
            return True
        try:
            await asyncio.wait_for(asyncio.gather(*joins), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    def push_stats(self) -> dict[str, Any]:
        per = {}
        total = PushStats().as_dict()
        total.pop("last_error")
        for op_id in self.operators:
            p = self._pushers.get(op_id)
            s = (p.stats if p else PushStats()).as_dict()
            s["queued"] = p.queue.qsize() if p else 0
            s["target"] = self.push_targets[op_id].base_url if op_id in self.push_targets else None
            s["orders"] = self.business.counters(op_id)
            per[op_id] = s
            for k in total:
                total[k] += s[k]
        total["queued"] = sum(s["queued"] for s in per.values())
        orders = [s["orders"] for s in per.values()]
        total["orders"] = {k: sum(o[k] for o in orders) for k in orders[0] if k != "last_error"} if orders else {}
        return {**total, "operators": per}

    async def _push_worker(self, operator_id: str, p: _Pusher) -> None:
        while True:
            item = await p.queue.get()
            try:
                await self._deliver(operator_id, p, item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # pragma: no cover - defensive
                p.stats.failed += 1
                p.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
            finally:
                p.queue.task_done()

    async def _deliver(self, operator_id: str, p: _Pusher, item: tuple[str, dict[str, Any]]) -> None:
        retries = max(0, self.config.push_retries)
        for attempt in range(retries + 1):
            if operator_id not in self.push_targets:
                p.stats.dropped += 1
                return
            try:
                if await self._notify(operator_id, p, *item):
                    return
            except (httpx.HTTPError, ProtocolError, ValueError, KeyError, TypeError) as exc:
                p.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
            if attempt < retries:
                p.stats.retries += 1
                await asyncio.sleep(self.config.push_backoff_seconds * (2**attempt))
        p.stats.failed += 1

    def _url(self, target: PushTarget, interface: str) -> str:
        return f"{target.base_url}/evcs/{self.config.push_version}/{interface}"

    async def _post(self, target: PushTarget, interface: str, data: dict, token: str | None):
        assert self._client is not None
        headers = {"Content-Type": "application/json;charset=utf-8"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # Seq counts up within each second per sender, as the protocol asks; receivers use
        # (operator, TimeStamp, Seq) to reject replays, so a constant Seq would collide.
        stamp = now_china().replace(microsecond=0)
        last_stamp, last_seq = self._push_seq.get(target.secrets.operator_id, (None, 0))
        seq = last_seq + 1 if last_stamp == stamp else 1
        self._push_seq[target.secrets.operator_id] = (stamp, seq)
        env = build_request(target.secrets.operator_id, data, target.secrets, timestamp=stamp, seq=seq % 10000)
        resp = await self._client.post(self._url(target, interface), json=env, headers=headers)
        try:
            return parse_response(resp.content, target.secrets)
        except ProtocolError:
            if resp.status_code != 200:
                raise ValueError(f"HTTP {resp.status_code} from {interface}") from None
            raise

    async def _token(self, target: PushTarget, p: _Pusher, *, renew: bool = False) -> str:
        if not renew and p.token and p.token_expires and p.token_expires > now_china():
            return p.token
        p.stats.token_requests += 1
        s = target.secrets
        r = await self._post(target, "query_token", {"OperatorID": s.operator_id, "OperatorSecret": s.operator_secret}, None)
        if r.ret != Ret.OK or not isinstance(r.data, dict) or int(r.data.get("SuccStat", 1)) != 0:
            reason = r.data.get("FailReason") if isinstance(r.data, dict) else None
            raise ValueError(f"query_token refused: Ret {int(r.ret)} {r.msg} FailReason {reason}")
        p.token = str(r.data["AccessToken"])
        ttl = int(r.data.get("TokenAvailableTime") or 0)
        # Renew a minute early so a token never expires in flight.
        p.token_expires = now_china() + timedelta(seconds=max(0, ttl - 60))
        return p.token

    async def call_platform(self, operator_id: str, interface: str, data: dict[str, Any], stats: Any):
        """One push of ``interface`` to the operator's target with its cached AccessToken
        (renewed once on Ret 4002); every HTTP post counts in ``stats.sent``."""
        target = self.push_targets.get(operator_id)
        if target is None:
            raise LookupError(f"no push target for {operator_id}")
        p = self._pusher(operator_id)
        token = await self._token(target, p)
        stats.sent += 1
        r = await self._post(target, interface, data, token)
        if r.ret == Ret.TOKEN:  # renew once, then resend
            token = await self._token(target, p, renew=True)
            stats.sent += 1
            r = await self._post(target, interface, data, token)
        return r

    async def _notify(self, operator_id: str, p: _Pusher, interface: str, data: dict[str, Any]) -> bool:
        if interface == "notification_stationStatus":
            data = {"ConnectorStatusInfo": data}
        r = await self.call_platform(operator_id, interface, data, p.stats)
        if r.ret != Ret.OK:
            p.stats.last_error = f"Ret {int(r.ret)}: {r.msg}"[:300]
            return False
        status = r.data.get("Status", 0) if isinstance(r.data, dict) else 0
        if int(status) == 1:
            p.stats.discarded += 1
        else:
            p.stats.acknowledged += 1
        return True

    # ------------------------------------------------------------------ admin views

    def operator_summary(self, op: SimOperator, base_url: str) -> dict[str, Any]:
        target = self.push_targets.get(op.operator_id)
        return {
            "operator_id": op.operator_id,
            "name": op.name,
            "base_url": f"{base_url}/{op.operator_id}",
            "platform_operator_id": self.config.platform_id_for(op.operator_id),
            "operator_secret": op.operator_secret,
            "data_secret": op.data_secret,
            "data_iv": op.data_iv,
            "sig_secret": op.sig_secret,
            "stations": len(op.stations),
            "equipments": op.equipment_count,
            "connectors": op.connector_count,
            "push": target.as_dict() if target else None,
        }

    def station_truth(self, op: SimOperator, station: SimStation) -> dict[str, Any]:
        return {
            "StationInfo": station.info(),
            "StationStatusInfo": station.status_info(),
            "ChangedAt": format_query_time(station.changed_at),
        }
