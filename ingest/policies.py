"""Pulling business policies (T/CEC 102 part 3, ``query_equip_business_policy``).

One request per connector, so a pull runs ``FeedSettings.policy_concurrency`` requests at once
per operator (one HTTP client, its connection pool and token shared by the threads). What each
answer says is read by :func:`services.prices.tariff.read_policy` (rules broken are kept as
problems, with the city's cap in force) and stored in versions by
:func:`services.prices.store.store_tariffs`, in batches, as the answers come in.

Where the operator answers ``SuccStat`` 1, or does not implement the interface at all (HTTP
404, or Ret 4004 naming an unknown interface: then it is not asked again in this run), or a
policy cannot be read, the connector's station fee texts are parsed instead and the version says
so (``source`` ``fee_text``, with the reason among its problems).

When: after each full sync, daily (``FeedSettings.policy_interval_s``, by the scheduler), when an
operator pushes a changed StationInfo (for that station's connectors), and on demand
(``zhcharge feed policies``). A pull takes its own advisory lock per operator, so it never waits
for (or blocks) a station or status pull.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text

from ingest.client import FeedClient, FeedError
from ingest.endpoints import EndpointInfo, load_endpoints
from ingest.runs import RUN_END, RUN_START, OperatorLock, not_pullable_now
from services.prices.store import TariffWrite, cap_at, store_tariffs
from services.prices.tariff import PolicyReading, from_fee_texts, read_policy
from services.settings import Settings

__all__ = ["PolicyResult", "pull_policies", "pull_policies_all", "pull_station_policies"]

log = logging.getLogger("zhcharge.feed.policies")

INTERFACE = "query_equip_business_policy"
_BATCH = 500
_SEQ = itertools.count(1)
_SEQ_LOCK = threading.Lock()


@dataclass
class PolicyResult:
    operator_id: str
    ok: bool = True
    connectors: int = 0
    policies: int = 0
    """Connectors whose policy was read from ``query_equip_business_policy``."""
    fallback: int = 0
    """Connectors priced from the fee texts instead (or left without a price)."""
    counts: dict[str, int] = field(default_factory=lambda: {"unchanged": 0, "changed": 0, "new": 0, "problems": 0})
    unsupported: str | None = None
    error: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"operator_id": self.operator_id, "ok": self.ok, "connectors": self.connectors,
                "policies": self.policies, "fallback": self.fallback, **self.counts, "unsupported": self.unsupported,
                "error": self.error, "seconds": round(self.seconds, 2)}


def equip_biz_seq(operator_id: str) -> str:
    """27 characters: the caller's OperatorID (9) and 18 digits unique to this process and second.

    >>> s = equip_biz_seq("MA5ZHCITY"); len(s), s[:9], s[9:].isdigit()
    (27, 'MA5ZHCITY', True)
    """
    with _SEQ_LOCK:
        n = next(_SEQ) % 1_000_000
    return f"{operator_id[:9]:0<9}{datetime.now(UTC):%y%m%d%H%M%S}{n:06d}"


_CONNECTORS = text("""
SELECT c.connector_id, s.electricity_fee, s.service_fee
FROM connectors c JOIN stations s ON s.id = c.station_pk
WHERE c.operator_id = :op AND s.feed_state = 'active'
  AND (CAST(:stations AS bigint[]) IS NULL OR s.id = ANY(:stations))
ORDER BY c.connector_id
""")


def _unsupported(exc: FeedError) -> bool:
    msg = str(exc).lower()
    return "http 404" in msg or "http 405" in msg or ("4004" in msg and ("interface" in msg or "接口" in msg))


def _fallback(row: Any, why: str) -> TariffWrite:
    tariff = from_fee_texts(row.electricity_fee, row.service_fee)
    problems = (why,) if tariff is not None else (why, "the station's fee texts cannot be read as a tariff / 收费说明无法解析")
    return TariffWrite(row.connector_id, PolicyReading(tariff, problems), "fee_text")


def pull_policies(engine: Engine, settings: Settings, ep: EndpointInfo, *, station_pks: Sequence[int] | None = None,
                  transport: Any = None, wait_lock_s: float = 0.0) -> PolicyResult:
    """Pull the business policy of every active connector of ``ep`` (or of ``station_pks``)."""
    result = PolicyResult(ep.operator_id)
    started = time.monotonic()
    why_not = not_pullable_now(ep, settings, respect_circuit=True)
    if why_not:
        result.ok, result.error = False, why_not
        return result
    lock = OperatorLock(engine, f"policy:{ep.operator_id}")
    if not lock.acquire(wait_lock_s):
        result.ok, result.error = False, "another policy pull of this operator is running"
        return result
    f = settings.feed
    try:
        with engine.begin() as conn:
            run_id = conn.execute(RUN_START, {"op": ep.operator_id, "mode": "policy", "started": datetime.now(UTC),
                                              "budget": f.policy_budget_s}).scalar_one()
            rows = conn.execute(_CONNECTORS, {"op": ep.operator_id,
                                              "stations": list(station_pks) if station_pks is not None else None}).all()
            cap = cap_at(conn, default=settings.supervision)
        result.connectors = len(rows)
        pending: list[TariffWrite] = []
        stop = threading.Event()
        unsupported: list[str] = []

        def flush(force: bool = False) -> None:
            if pending and (force or len(pending) >= _BATCH):
                batch = pending[:]
                pending.clear()
                with engine.begin() as conn:
                    for k, v in store_tariffs(conn, ep.operator_id, batch).items():
                        result.counts[k] += v

        def ask(client: FeedClient, row: Any) -> TariffWrite:
            if stop.is_set():
                return _fallback(row, unsupported[0] if unsupported else "not asked")
            data = client.request(INTERFACE, {"EquipBizSeq": equip_biz_seq(client.endpoint.secrets.operator_id),
                                              "ConnectorID": row.connector_id})
            if str(data.get("SuccStat", "1")).strip() != "0":
                reason = {"1": "unknown connector"}.get(str(data.get("FailReason")), f"FailReason {data.get('FailReason')}")
                return _fallback(row, f"the operator answered SuccStat 1 ({reason}) / 运营商未返回业务策略")
            reading = read_policy(data, cap)
            answered = str(data.get("ConnectorID") or row.connector_id)
            if answered != row.connector_id:
                reading = PolicyReading(reading.tariff, (*reading.problems,
                                                         f"answered for ConnectorID {answered[:26]}, asked for {row.connector_id}"))
            if reading.tariff is None:
                fb = _fallback(row, "the policy cannot be read / 业务策略无法读取")
                return TariffWrite(row.connector_id, PolicyReading(fb.reading.tariff, (*reading.problems, *fb.reading.problems)),
                                   "fee_text", data)
            return TariffWrite(row.connector_id, reading, "policy", data)

        deadline = time.monotonic() + f.policy_budget_s
        with FeedClient(ep.endpoint(), timeout_s=f.timeout_s, retries=f.retries, backoff_s=f.backoff_s,
                        token_margin_s=f.token_margin_s, deadline=deadline, transport=transport) as client, \
                ThreadPoolExecutor(max_workers=max(1, f.policy_concurrency), thread_name_prefix="policy") as pool:
            futures = {pool.submit(ask, client, row): row for row in rows}
            for fut in as_completed(futures):
                row = futures[fut]
                try:
                    w = fut.result()
                except FeedError as exc:
                    if _unsupported(exc):
                        if not unsupported:
                            unsupported.append(f"the operator does not serve {INTERFACE} ({str(exc)[:120]}) / 未实现业务策略接口")
                        stop.set()
                        w = _fallback(row, unsupported[0])
                    else:
                        result.error = result.error or str(exc)[:300]
                        stop.set()
                        continue
                if w.source == "policy":
                    result.policies += 1
                else:
                    result.fallback += 1
                pending.append(w)
                flush()
            flush(force=True)
        result.unsupported = unsupported[0] if unsupported else None
        result.ok = result.error is None
        with engine.begin() as conn:
            conn.execute(RUN_END, {"id": run_id, "duration_ms": int((time.monotonic() - started) * 1000), "pages": 0,
                                   "inserted": result.counts["new"], "updated": result.counts["changed"],
                                   "unchanged": result.counts["unchanged"], "rejected": result.counts["problems"],
                                   "withdrawn": 0, "statuses": result.policies, "ok": result.ok,
                                   "error": result.error or result.unsupported})
    finally:
        lock.release()
        result.seconds = time.monotonic() - started
    log.info("%s policies: %s", ep.operator_id, result.as_dict())
    return result


def pull_policies_all(engine: Engine, settings: Settings, *, operator_id: str | None = None) -> list[PolicyResult]:
    """Every pullable operator (or the one named), ``FeedSettings.max_workers`` operators at once."""
    with engine.connect() as conn:
        eps = [ep for ep in load_endpoints(conn, operator_id) if ep.enabled and (operator_id is not None or ep.pullable)]
    if not eps:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(settings.feed.max_workers, len(eps))),
                            thread_name_prefix="policy-op") as pool:
        return list(pool.map(lambda ep: pull_policies(engine, settings, ep, wait_lock_s=5.0), eps))


def pull_station_policies(engine: Engine, settings: Settings, operator_id: str, station_pks: Sequence[int]) -> None:
    """A pushed StationInfo changed these stations: pull their connectors' policies in the background."""
    def run() -> None:
        try:
            with engine.connect() as conn:
                eps = load_endpoints(conn, operator_id)
            if eps and eps[0].pullable:
                pull_policies(engine, settings, eps[0], station_pks=station_pks, wait_lock_s=30.0)
        except Exception:  # noqa: BLE001 - a background refresh must never take the receiver down
            log.exception("policy pull after a station push failed")

    threading.Thread(target=run, name=f"policy-{operator_id}", daemon=True).start()
