"""Charge orders in the database: one row per version, idempotent on (operator, StartChargeSeq).

:func:`store_order` runs the checks of :mod:`services.orders.checks` against what we know (the
connector's power and references, the tariff version in force at each detail's start) and
stores the order with its verdict:

* the same content again (however formatted: the digest is of the figures) is a duplicate: the
  first version's ConfirmResult is answered again and nothing is written;
* different figures for a known StartChargeSeq are a revision: a new version becomes ``latest``,
  the previous ones stay, and the revision is a finding on the new one;
* concurrent pushes of one order serialise on a transaction-scoped advisory lock.

Two round trips for any number of orders (:func:`check_and_store`; the receiver passes the orders
pushed at the same time): one query reads their connectors and tariff histories (or none, when
cached), then ``zh_store_order`` (``sql/functions/order_store.sql``) does the replay claim, lock,
duplicate check, versioning and insert of one order in one statement, ``zh_store_orders`` those of
a batch in one statement and one commit.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy.exc import DBAPIError

from services.orders.checks import ConnectorRef, Order, TariffInForce, Verdict, check_order
from services.prices.store import WRITES as tariff_writes
from services.prices.store import TariffVersion, in_force, stored_tariff

__all__ = ["PendingOrder", "SeqReused", "StoredOrder", "check_and_store", "check_for_store", "details_json",
           "store_checked", "store_checked_batch", "store_order", "stored_order"]


@dataclass(frozen=True, slots=True)
class StoredOrder:
    confirm_result: int
    version: int
    duplicate: bool
    revision: bool
    verdict: Verdict | None


# Driver SQL (exec_driver_sql, psycopg2 parameters): no compile step on the hot path.
_CONTEXTS_SQL = """
SELECT k.i, c.power_kw, c.station_pk, s.station_id, e.equipment_id,
       v.id AS version_id, v.tariff_id, t.periods, v.source, v.problems, v.first_seen_at, v.last_seen_at, v.valid_to
FROM unnest(%(ops)s::text[], %(cs)s::text[]) WITH ORDINALITY AS k(op, c, i)
LEFT JOIN connectors c ON c.operator_id = k.op AND c.connector_id = k.c
LEFT JOIN stations s ON s.id = c.station_pk
LEFT JOIN equipment e ON e.id = c.equipment_pk
LEFT JOIN connector_tariffs v ON v.operator_id = k.op AND v.connector_id = k.c
LEFT JOIN tariffs t ON t.id = v.tariff_id
ORDER BY k.i, v.first_seen_at, v.id
"""
_STORE = """
SELECT outcome, confirm_result, version FROM zh_store_order(
    %(op)s, %(ts)s, %(envelope_seq)s, %(sig)s, %(seq)s, %(digest)s, %(connector)s, %(station)s, %(start)s,
    %(end)s, %(day)s, %(power)s, %(elec)s, %(service)s, %(money)s, CAST(%(stop)s AS smallint),
    CAST(%(sum_period)s AS smallint), CAST(%(details)s AS jsonb), CAST(%(confirm)s AS smallint),
    CAST(%(findings)s AS jsonb), %(at_tariff)s, %(overcharge)s, CAST(%(tariff_versions)s AS bigint[]),
    CAST(%(raw)s AS jsonb))
"""

_STORE_BATCH = "SELECT outcome, confirm_result, version FROM zh_store_orders(CAST(%s AS jsonb))"


class _Context(NamedTuple):
    """A row of ``_CONTEXTS_SQL`` (after its first column, the connector's place in the list)."""

    power_kw: Any
    station_pk: Any
    station_id: Any
    equipment_id: Any
    version_id: Any
    tariff_id: Any
    periods: Any
    source: Any
    problems: Any
    first_seen_at: Any
    last_seen_at: Any
    valid_to: Any


def _rows(conn: Any, statement: str, params: Any) -> list[tuple]:
    """``statement``'s rows from the DB-API cursor of the SQLAlchemy connection ``conn``: no result
    processing (psycopg2's own types), which was a third of an order's Python time. Errors are raised
    as SQLAlchemy's (a lost connection invalidated), as ``exec_driver_sql`` raises them."""
    if not conn.in_transaction():  # as exec_driver_sql would: the caller's commit() commits this work
        conn.begin()
    dbapi = conn.connection.dbapi_connection
    cur = dbapi.cursor()
    try:
        cur.execute(statement, params)
        return cur.fetchall()
    except conn.dialect.loaded_dbapi.Error as exc:
        lost = conn.dialect.is_disconnect(exc, dbapi, cur)
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(statement, params, exc, conn.dialect.loaded_dbapi.Error,
                                  connection_invalidated=lost, dialect=conn.dialect) from exc
    finally:
        if not cur.closed:
            cur.close()


def details_json(order: Order) -> str:
    return json.dumps([{"start": d.start.isoformat(), "end": d.end.isoformat(), "elec_price": str(d.elec_price),
                        "service_price": str(d.service_price), "power": str(d.power), "elec_money": str(d.elec_money),
                        "service_money": str(d.service_money)} for d in order.details])


#: What an order is checked against (the connector and its tariff history) is read once per
#: connector every few seconds: a burst of orders from one busy station costs one query. A tariff
#: version stored less than this long ago may be missed by an order checked meanwhile; its first
#: version is only ever "seen since" our pull anyway.
CONTEXT_TTL_S = 5.0
_CONTEXTS: dict[tuple[str, str], tuple[float, int, list[Any]]] = {}


def _cached_context(operator_id: str, connector_id: str) -> list[Any] | None:
    """This connector's context from the cache, if it is there and current."""
    hit = _CONTEXTS.get((operator_id, connector_id))
    return hit[2] if hit is not None and hit[0] > time.monotonic() and hit[1] == tariff_writes[0] else None


def _remember(key: tuple[str, str], rows: list[_Context], now: float, writes: int) -> None:
    if rows[0].power_kw is not None:  # never an unknown connector: it may be synced any moment
        if len(_CONTEXTS) > 100_000:
            _CONTEXTS.clear()
        _CONTEXTS[key] = (now + CONTEXT_TTL_S, writes, rows)


def _contexts(conn: Any, keys: set[tuple[str, str]]) -> dict[tuple[str, str], list[Any]]:
    """What orders are checked against, for each connector (operator, connector): the connector and
    its tariff history, from the cache when current (never cached for an unknown connector, and
    dropped when this process stored tariffs since), the others in one query."""
    found: dict[tuple[str, str], list[Any]] = {}
    missing = []
    for key in keys:
        rows = _cached_context(*key)
        if rows is None:
            missing.append(key)
        else:
            found[key] = rows
    if missing:
        writes = tariff_writes[0]
        read: list[list[_Context]] = [[] for _ in missing]
        for r in _rows(conn, _CONTEXTS_SQL, {"ops": [k[0] for k in missing], "cs": [k[1] for k in missing]}):
            read[r[0] - 1].append(_Context(*r[1:]))
        now = time.monotonic()
        for key, rows in zip(missing, read, strict=True):
            found[key] = rows
            _remember(key, rows, now, writes)
    return found


@dataclass(frozen=True, slots=True)
class PendingOrder:
    """An order read from a push, to be checked and stored (by :func:`check_and_store`)."""

    operator_id: str
    order: Order
    raw: Any
    envelope: Any
    now: datetime

    @property
    def lock_order(self) -> tuple[str, str]:
        """The order of a batch: concurrent batches lock the same orders in the same order."""
        return self.operator_id, self.order.seq


def check_and_store(conn: Any, pending: list[PendingOrder]) -> list[tuple[tuple, Verdict] | Exception]:
    """Check and store orders pushed at the same time: their contexts in one query (or none, cached),
    the checks, and one statement storing them all (``zh_store_orders``: one transaction on an
    autocommit ``conn``). For each order ``(zh_store_order's result, verdict)``, or the exception its
    check raised (that order is not stored; the others are)."""
    known = _contexts(conn, {(p.operator_id, p.order.connector_id) for p in pending})
    results: list[Any] = [None] * len(pending)
    checked: list[tuple[int, dict[str, Any], Verdict]] = []
    for i, p in enumerate(pending):
        try:
            params, verdict = check_for_store(p.operator_id, p.order, p.raw, p.now, envelope=p.envelope,
                                              context=known[(p.operator_id, p.order.connector_id)])
        except Exception as exc:  # noqa: BLE001 - that order's own error, handed back to its request
            results[i] = exc
            continue
        checked.append((i, params, verdict))
    if len(checked) == 1:
        outs = [store_checked(conn, checked[0][1])]
    else:
        outs = store_checked_batch(conn, [c[1] for c in checked]) if checked else []
    for (i, _params, verdict), out in zip(checked, outs, strict=True):
        results[i] = (out, verdict)
    return results


class SeqReused(Exception):
    """Another envelope already used this (OperatorID, TimeStamp second, Seq)."""


def store_order(conn: Any, operator_id: str, order: Order, raw: Any, now: datetime, *, envelope: Any) -> StoredOrder:
    """Check and store one order (see the module doc); returns what to answer.

    ``conn`` may be an autocommit connection: ``zh_store_order`` (migration 1401) is atomic on its
    own. ``envelope`` carries the push's ``timestamp``, ``seq`` and ``raw["Sig"]`` for the replay
    claim (:class:`SeqReused` when another envelope used them)."""
    (result,) = check_and_store(conn, [PendingOrder(operator_id, order, raw, envelope, now)])
    if isinstance(result, Exception):
        raise result
    return stored_order(*result)


def check_for_store(operator_id: str, order: Order, raw: Any, now: datetime, *, envelope: Any,
                    context: list[Any]) -> tuple[dict[str, Any], Verdict]:
    """The checks of one order against its connector's ``context`` (:func:`_contexts`), and
    ``zh_store_order``'s arguments by name."""
    first = context[0]
    connector = (ConnectorRef(Decimal(first.power_kw), first.station_id, first.equipment_id)
                 if first.power_kw is not None else None)
    history = [TariffVersion(r.version_id, stored_tariff(r.tariff_id, r.periods) if r.tariff_id is not None else None,
                             r.source, tuple(r.problems or ()), r.first_seen_at, r.last_seen_at, r.valid_to)
               for r in context if r.version_id is not None]

    def tariff_at(moment: datetime) -> TariffInForce | None:
        version, assumed = in_force(history, moment)
        if version is None or version.tariff is None:
            return None
        return TariffInForce(version.tariff, version.id, assumed)

    verdict = check_order(order, connector, tariff_at, now)
    return {
        "op": operator_id, "ts": envelope.timestamp, "envelope_seq": envelope.seq, "sig": envelope.raw["Sig"],
        "seq": order.seq, "digest": order.digest(), "connector": order.connector_id, "station": first.station_pk,
        "start": order.start, "end": order.end, "day": order.day, "power": order.total_power,
        "elec": order.total_elec_money, "service": order.total_service_money, "money": order.total_money,
        "stop": order.stop_reason, "sum_period": order.sum_period, "details": details_json(order),
        "confirm": verdict.confirm_result, "findings": json.dumps([f.to_json() for f in verdict.findings],
                                                                  ensure_ascii=False),
        "at_tariff": verdict.at_tariff, "overcharge": verdict.overcharge, "tariff_versions": verdict.tariff_versions,
        "raw": json.dumps(raw, ensure_ascii=False, default=str)}, verdict


def store_checked(conn: Any, params: dict[str, Any]) -> tuple:
    """The second half of :func:`store_order` for one order: ``zh_store_order``'s (outcome,
    confirm_result, version)."""
    (row,) = _rows(conn, _STORE, params)
    return row


def store_checked_batch(conn: Any, batch: list[dict[str, Any]]) -> list[tuple]:
    """:func:`store_checked` for a batch in one statement (``zh_store_orders``, migration 1403): one
    (outcome, confirm_result, version) per order, in order."""
    return _rows(conn, _STORE_BATCH, (json.dumps(batch, ensure_ascii=False, default=str),))


def stored_order(out: Any, verdict: Verdict) -> StoredOrder:
    """What to answer for ``zh_store_order``'s result; :class:`SeqReused` when the envelope's
    second and Seq were another envelope's."""
    outcome, confirm_result, version = out
    if outcome == "seq_reused":
        raise SeqReused()
    duplicate = outcome == "duplicate"
    return StoredOrder(confirm_result, version, duplicate, not duplicate and version > 1,
                       None if duplicate else verdict)
