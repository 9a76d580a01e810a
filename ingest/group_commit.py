"""Group commit of pushes: concurrent pushes stored in one statement and one commit.

Each app process has one :class:`GroupCommitter` for status pushes and one for charge orders (owned
by :class:`ingest.receiver.Receiver`; orders: ``zh_store_orders``, migration 1403). A
request thread hands its push to :meth:`GroupCommitter.store` and waits (a coroutine on the event
loop awaits :meth:`GroupCommitter.store_async` instead, holding no thread); the committer thread
takes every push waiting (up to ``max_batch``), stores them with ``feed_store_status_pushes``
(migration 1510) in one autocommit statement (one transaction, one commit, ``synchronous_commit``
as the server has it), and only after that statement has returned, i.e. after the COMMIT, wakes
each waiting request with its own outcome. While one batch is being stored the next one gathers,
so the batch size follows the load: one push alone is stored at once, without waiting for company.

Failures:

* The batch statement fails on one bad push (or on a deadlock with another writer): the batch was
  rolled back as a whole, so each of its pushes is stored again on its own (``single``), and each
  gets its own outcome or error. One bad push never fails the others.
* The history lacks a month's partition: ``on_missing_partition`` makes it and the batch is retried.
* The connection is lost, or the COMMIT's outcome is unknown: every push of the batch gets the
  error (the receiver answers Ret -1, HTTP 503) and the sender retries; a retried envelope that was
  in fact stored is recognised as the same envelope and acknowledged then. Nothing is acknowledged
  that was not committed.

No session state: each batch is one statement on whatever pooled connection (PgBouncer in
transaction mode included).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from services.db import is_disconnect

__all__ = ["BATCH_SQL", "GroupCommitter", "store_status_batch"]

log = logging.getLogger("zhcharge.feed.group_commit")

BATCH_SQL = ("SELECT feed_store_status_pushes(%s, %s::timestamptz[], %s, %s, %s, %s::smallint[], %s::smallint[], "
             "%s::smallint[])")

# A push: (operator, timestamp, seq, sig, connector, status, park, lock), as feed_store_status_push takes it.
Push = tuple


class _Waiter:
    """A push waiting for its batch's commit: a request thread's (``done``, an Event) or a coroutine's
    (``future`` on ``loop``)."""

    __slots__ = ("args", "done", "error", "future", "loop", "outcome", "woken")

    def __init__(self, args: Any, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.args = args
        self.loop = loop
        self.future: asyncio.Future | None = loop.create_future() if loop is not None else None
        self.done = threading.Event() if loop is None else None
        self.outcome: Any = None
        self.error: BaseException | None = None
        self.woken = False


def _settle(waiters: list[_Waiter]) -> None:
    """On the event loop: hand each coroutine its outcome (unless it stopped waiting)."""
    for w in waiters:
        if not w.future.done():
            if w.error is not None:
                w.future.set_exception(w.error)
            else:
                w.future.set_result(w.outcome)


def _wake(waiters: list[_Waiter]) -> None:
    """Wake every waiter whose outcome or error is set: threads at once, coroutines with one call
    into each event loop for all of its waiters."""
    loops: dict[asyncio.AbstractEventLoop, list[_Waiter]] = {}
    for w in waiters:
        w.woken = True
        if w.loop is None:
            w.done.set()
        else:
            loops.setdefault(w.loop, []).append(w)
    for loop, ws in loops.items():
        try:
            loop.call_soon_threadsafe(_settle, ws)
        except RuntimeError:  # the loop is closed (shutdown): nobody waits any more
            pass


def store_status_batch(conn: Any, batch: list[Push]) -> list[str]:
    """``feed_store_status_pushes`` over a batch of pushes: their outcomes, in order."""
    cols: list[list[Any]] = [[], [], [], [], [], [], [], []]
    for args in batch:
        for col, value in zip(cols, args, strict=True):
            col.append(value)
    return list(conn.exec_driver_sql(BATCH_SQL, tuple(cols)).scalar())


def _by_connector(args: Push) -> tuple:
    return args[0], args[4]


class GroupCommitter:
    """Stores concurrent pushes in batches (see the module doc); status pushes by default.

    ``single(args) -> result`` stores one push on its own (the receiver's one-statement path, with
    its own partition handling); ``batch(conn, [args]) -> [result]`` stores a batch in one statement on
    an autocommit connection, ``sort_key`` orders a batch (the locks' order);
    ``on_missing_partition()`` makes the missing history partitions.
    """

    def __init__(self, engine: Engine, single: Callable[[Any], Any], *,
                 batch: Callable[[Any, list[Any]], list[Any]] = store_status_batch,
                 sort_key: Callable[[Any], Any] = _by_connector, max_batch: int = 256,
                 on_missing_partition: Callable[[], None] | None = None,
                 is_missing_partition: Callable[[BaseException], bool] | None = None,
                 name: str = "zhcharge-status-commit") -> None:
        self.engine = engine
        self.single = single
        self.batch = batch
        self.sort_key = sort_key
        self.name = name
        self.max_batch = max_batch
        self.on_missing_partition = on_missing_partition
        self.is_missing_partition = is_missing_partition or (lambda _exc: False)
        self._queue: deque[_Waiter] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.pushes = 0
        self.fallbacks = 0
        self.largest = 0

    # ------------------------------------------------------------------ request side

    def _enqueue(self, waiter: _Waiter) -> None:
        with self._cond:
            if self._thread is None:  # the first push, or the first after close(): a committer thread
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._queue.append(waiter)
            self._cond.notify()

    async def store_async(self, args: Any, timeout: float = 30.0) -> Any:
        """:meth:`store` for a coroutine: awaits the batch's commit without holding a thread."""
        waiter = _Waiter(args, asyncio.get_running_loop())
        self._enqueue(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await waiter.future
        except TimeoutError:
            raise TimeoutError("the push was not stored in time") from None

    def store(self, args: Any, timeout: float = 30.0) -> Any:
        """Store one push with whatever else is waiting; its outcome once committed (or the error)."""
        waiter = _Waiter(args)
        self._enqueue(waiter)
        if not waiter.done.wait(timeout):
            # Still queued or being stored: we cannot say it was stored, so it is not acknowledged.
            raise TimeoutError("the status push was not stored in time")
        if waiter.error is not None:
            raise waiter.error
        return waiter.outcome

    def close(self) -> None:
        """Stop the committer thread once the pushes queued are stored (a later push starts another)."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._cond.notify_all()
        if thread is not None:
            thread.join(5)

    # ------------------------------------------------------------------ committer side

    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                while not self._queue and self._thread is me:
                    self._cond.wait()
                if not self._queue:  # closed (this thread is no longer the committer) and nothing left
                    return
                n = min(len(self._queue), self.max_batch)
                batch = [self._queue.popleft() for _ in range(n)]
                self.largest = max(self.largest, n)
            try:
                self._store(batch)
            except BaseException as exc:  # noqa: BLE001 - never leave a request waiting forever
                log.exception("status push batch failed")
                left = [w for w in batch if not w.woken]
                for w in left:
                    w.error = exc
                _wake(left)

    def _store(self, batch: list[_Waiter]) -> None:
        if len(batch) == 1:
            self._one(batch[0])
            return
        # One order for every batch (operator, connector; each connector's pushes keep their order),
        # so concurrent batches in other processes lock the same rows in the same order.
        batch.sort(key=lambda w: self.sort_key(w.args))
        try:
            try:
                outcomes = self._execute(batch)
            except DBAPIError as exc:
                if not self.is_missing_partition(exc) or self.on_missing_partition is None:
                    raise
                self.on_missing_partition()
                outcomes = self._execute(batch)
        except DBAPIError as exc:
            if is_disconnect(exc):  # the commit's outcome is unknown: none is acknowledged, all retry
                for w in batch:
                    w.error = exc
                _wake(batch)
                return
            # One push (or a deadlock) failed the whole batch, which was rolled back: each alone.
            self.fallbacks += 1
            log.warning("status push batch of %d failed (%s); storing each on its own", len(batch),
                        str(exc.orig).strip().splitlines()[0] if exc.orig else exc)
            for w in batch:
                self._one(w)
            return
        self.batches += 1
        self.pushes += len(batch)
        for w, outcome in zip(batch, outcomes, strict=True):
            w.outcome = outcome
        _wake(batch)

    def _one(self, w: _Waiter) -> None:
        try:
            w.outcome = self.single(w.args)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
            w.error = exc
        _wake([w])

    def _execute(self, batch: list[_Waiter]) -> list[Any]:
        with self.engine.connect() as conn:  # the receiver's autocommit engine: one statement, one commit
            return self.batch(conn, [w.args for w in batch])
