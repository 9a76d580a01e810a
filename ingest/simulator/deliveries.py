"""Order and reconciliation pushes of the simulated operators, retried like a real platform's.

One queue and worker per operator, apart from the status pushes (a disputed order must not hold
up a connector status). The AccessToken is the operator's, shared with its status pushes. A
push is retried until the platform answers ``Ret`` 0, after ``order_retry_backoff_seconds`` and
then twice as long each time, at most ``order_retry_max_seconds`` apart (150 s, 300 s, … hourly
by default); a retry waits on a timer, so the next order goes out meanwhile. ``ConfirmResult``
1 (disputed) is an answer too: recorded, never resent. Follow-ups (a duplicate, a revised
version) are queued once their predecessor was acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from ingest.protocol import ProtocolError, Ret

if TYPE_CHECKING:
    from ingest.simulator.state import Simulator

__all__ = ["Counters", "Deliveries", "Delivery", "OrderPushStats"]

log = logging.getLogger("zhcharge.simulator")


@dataclass(eq=False)
class Delivery:
    operator_id: str
    interface: str
    data: dict[str, Any]
    kind: str
    """``order``, ``duplicate``, ``revision`` or ``reconcile``."""
    version: int = 1
    attempts: int = 0
    outcome: str = "pending"
    """``pending`` (being retried), ``acknowledged``, ``disputed`` (ConfirmResult ≠ 0),
    ``not_pushed`` (order pushes off or no push target), ``no_target`` (target removed) or
    ``expired`` (still unanswered when the order was forgotten)."""
    confirm_result: int | None = None
    answer: Any = None
    last_error: str | None = None
    then: list[Delivery] = field(default_factory=list)
    on_answer: Callable[[Delivery], None] | None = None

    @property
    def settled(self) -> bool:
        return self.outcome != "pending"

    @property
    def acknowledged(self) -> bool:
        return self.outcome in ("acknowledged", "disputed")

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "version": self.version, "outcome": self.outcome,
                "acknowledged": self.acknowledged, "confirm_result": self.confirm_result,
                "attempts": self.attempts, "last_error": self.last_error}


class Counters:
    """Push counters (dataclasses), shown by ``GET /_admin/pushes``."""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class OrderPushStats(Counters):
    sent: int = 0
    """HTTP attempts of order and reconciliation pushes."""
    acknowledged: int = 0
    """Order pushes answered Ret 0 with ConfirmResult 0."""
    disputed: int = 0
    """Order pushes answered Ret 0 with ConfirmResult ≠ 0 (not resent)."""
    retries: int = 0
    not_pushed: int = 0
    duplicates: int = 0
    revisions: int = 0
    reconciliations: int = 0
    """check_charge_orders answered Ret 0."""
    last_error: str | None = None


class Deliveries:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.config = sim.config
        self.stats: dict[str, OrderPushStats] = {op_id: OrderPushStats() for op_id in sim.operators}
        self._queues: dict[str, asyncio.Queue] = {}
        self._workers: dict[str, asyncio.Task] = {}
        self._timers: dict[Delivery, asyncio.TimerHandle] = {}
        self.pending: set[Delivery] = set()

    def _stats(self, operator_id: str) -> OrderPushStats:
        return self.stats.setdefault(operator_id, OrderPushStats())

    def submit(self, d: Delivery) -> Delivery:
        """Queue ``d`` (when order pushes are on and the operator has a push target)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pure unit use: nothing to push with
            loop = None
        if loop is None or not self.config.push_orders or d.operator_id not in self.sim.push_targets:
            self._settle(d, "not_pushed")
            self._stats(d.operator_id).not_pushed += 1
            return d
        q = self._queues.get(d.operator_id)
        if q is None:
            q = self._queues[d.operator_id] = asyncio.Queue()
        w = self._workers.get(d.operator_id)
        if w is None or w.done():
            self._workers[d.operator_id] = loop.create_task(self._worker(d.operator_id, q))
        self.pending.add(d)
        q.put_nowait(d)
        return d

    async def wait(self, deliveries: list[Delivery], timeout: float) -> bool:
        """Until every one of ``deliveries`` (and its follow-ups) settled; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        todo = list(deliveries)
        while todo:
            d = todo[-1]
            if d.settled:
                todo.pop()
                todo.extend(x for x in d.then if d.acknowledged)
                continue
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def counters(self, operator_id: str) -> dict[str, Any]:
        out = self._stats(operator_id).as_dict()
        out["pending"] = sum(1 for d in self.pending if d.operator_id == operator_id)
        return out

    def forget(self, d: Delivery) -> None:
        """Give up ``d`` (and its follow-ups) if it is still unanswered."""
        timer = self._timers.pop(d, None)
        if timer is not None:
            timer.cancel()
        if not d.settled:
            self._settle(d, "expired")

    async def stop(self) -> None:
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
        workers = list(self._workers.values())
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._workers.clear()
        self._queues.clear()

    # ------------------------------------------------------------------ the worker

    async def _worker(self, operator_id: str, q: asyncio.Queue) -> None:
        while True:
            d = await q.get()
            try:
                await self._attempt(d)
            except asyncio.CancelledError:
                raise
            except Exception:  # pragma: no cover - defensive: never lose the worker
                log.exception("order push failed")
            finally:
                q.task_done()

    async def _attempt(self, d: Delivery) -> None:
        stats = self._stats(d.operator_id)
        if d.settled:  # forgotten while queued
            return
        if d.operator_id not in self.sim.push_targets:
            self._settle(d, "no_target")
            return
        d.attempts += 1
        try:
            r = await self.sim.call_platform(d.operator_id, d.interface, d.data, stats)
        except (httpx.HTTPError, ProtocolError, ValueError, KeyError, TypeError, LookupError) as exc:
            d.last_error = stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
        else:
            if r.ret == Ret.OK:
                self._answered(d, r.data if isinstance(r.data, dict) else {})
                return
            d.last_error = stats.last_error = f"Ret {int(r.ret)}: {r.msg}"[:300]
        stats.retries += 1
        delay = min(self.config.order_retry_backoff_seconds * 2 ** (d.attempts - 1), self.config.order_retry_max_seconds)
        self._timers[d] = asyncio.get_running_loop().call_later(delay, self._requeue, d)

    def _requeue(self, d: Delivery) -> None:
        self._timers.pop(d, None)
        q = self._queues.get(d.operator_id)
        if q is not None:
            q.put_nowait(d)

    def _settle(self, d: Delivery, outcome: str) -> None:
        """``d`` ends unanswered, and so do its follow-ups (they are never sent)."""
        d.outcome = outcome
        self.pending.discard(d)
        for follow in d.then:
            self._settle(follow, outcome)

    def _answered(self, d: Delivery, answer: dict[str, Any]) -> None:
        stats = self._stats(d.operator_id)
        d.answer = answer
        if d.kind == "reconcile":
            d.outcome = "acknowledged"
            stats.reconciliations += 1
        else:
            try:
                d.confirm_result = int(answer.get("ConfirmResult", 0))
            except (TypeError, ValueError):
                d.confirm_result = None
            d.outcome = "acknowledged" if d.confirm_result in (0, None) else "disputed"
            if d.outcome == "acknowledged":
                stats.acknowledged += 1
            else:
                stats.disputed += 1
            if d.kind == "duplicate":
                stats.duplicates += 1
            elif d.kind == "revision":
                stats.revisions += 1
        self.pending.discard(d)
        if d.on_answer is not None:
            d.on_answer(d)
        for follow in d.then:
            self.submit(follow)
