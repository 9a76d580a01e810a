"""Charge orders in the database: one row per version, idempotent on (operator, StartChargeSeq).

:func:`store_order` runs the checks of :mod:`services.orders.checks` against what we know (the
connector's power and references, the tariff version in force at each detail's start) and
stores the order with its verdict, in the caller's transaction:

* the same content again (however formatted: the digest is of the figures) is a duplicate: the
  first version's ConfirmResult is answered again and nothing is written;
* different figures for a known StartChargeSeq are a revision: a new version becomes ``latest``,
  the previous ones stay, and the revision is a finding on the new one;
* concurrent pushes of one order serialise on a transaction-scoped advisory lock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from services.orders.checks import ConnectorRef, Order, TariffInForce, Verdict, check_order
from services.prices.store import in_force, tariff_history

__all__ = ["StoredOrder", "details_json", "store_order"]


@dataclass(frozen=True, slots=True)
class StoredOrder:
    confirm_result: int
    version: int
    duplicate: bool
    revision: bool
    verdict: Verdict | None


_CONNECTOR = text("""
SELECT c.power_kw, c.station_pk, s.station_id, e.equipment_id
FROM connectors c JOIN stations s ON s.id = c.station_pk JOIN equipment e ON e.id = c.equipment_pk
WHERE c.operator_id = :op AND c.connector_id = :c
""")
_VERSIONS = text("""
SELECT id, version, digest, confirm_result, total_power, total_money FROM charge_orders
WHERE operator_id = :op AND start_charge_seq = :seq ORDER BY version
""")
_INSERT = text("""
INSERT INTO charge_orders (operator_id, start_charge_seq, version, latest, digest, connector_id, station_pk,
    start_time, end_time, day, total_power, total_elec_money, total_service_money, total_money, stop_reason,
    sum_period, details, confirm_result, findings, at_tariff, overcharge_yuan, tariff_versions, raw)
VALUES (:op, :seq, :version, true, :digest, :connector, :station, :start, :end, :day, :power, :elec, :service,
    :money, :stop, :sum_period, CAST(:details AS jsonb), :confirm, CAST(:findings AS jsonb), :at_tariff, :overcharge,
    :tariff_versions, CAST(:raw AS jsonb))
""")


def details_json(order: Order) -> str:
    return json.dumps([{"start": d.start.isoformat(), "end": d.end.isoformat(), "elec_price": str(d.elec_price),
                        "service_price": str(d.service_price), "power": str(d.power), "elec_money": str(d.elec_money),
                        "service_money": str(d.service_money)} for d in order.details])


def store_order(conn: Any, operator_id: str, order: Order, raw: Any, now: datetime) -> StoredOrder:
    """Check and store one order (see the module doc); returns what to answer."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('zhcharge.order'), hashtext(:k))"),
                 {"k": f"{operator_id}:{order.seq}"})
    versions = conn.execute(_VERSIONS, {"op": operator_id, "seq": order.seq}).all()
    digest = order.digest()
    for v in versions:
        if v.digest == digest:
            return StoredOrder(v.confirm_result, v.version, True, False, None)
    row = conn.execute(_CONNECTOR, {"op": operator_id, "c": order.connector_id}).first()
    connector = (ConnectorRef(Decimal(row.power_kw), row.station_id, row.equipment_id) if row is not None else None)
    history = tariff_history(conn, operator_id, order.connector_id)

    def tariff_at(moment: datetime) -> TariffInForce | None:
        version, assumed = in_force(history, moment)
        if version is None or version.tariff is None:
            return None
        return TariffInForce(version.tariff, version.id, assumed)

    verdict = check_order(order, connector, tariff_at, now)
    number = (versions[-1].version + 1) if versions else 1
    if versions:
        prev = versions[-1]
        verdict.add("revision", "revised", f"version {number} replaces version {prev.version} (TotalPower "
                    f"{prev.total_power} → {order.total_power}, TotalMoney {prev.total_money} → {order.total_money})",
                    "warning")
        conn.execute(text("UPDATE charge_orders SET latest = false WHERE operator_id = :op AND start_charge_seq = :seq "
                          "AND latest"), {"op": operator_id, "seq": order.seq})
    conn.execute(_INSERT, {
        "op": operator_id, "seq": order.seq, "version": number, "digest": digest, "connector": order.connector_id,
        "station": row.station_pk if row is not None else None, "start": order.start, "end": order.end,
        "day": order.day, "power": order.total_power, "elec": order.total_elec_money,
        "service": order.total_service_money, "money": order.total_money, "stop": order.stop_reason,
        "sum_period": order.sum_period, "details": details_json(order), "confirm": verdict.confirm_result,
        "findings": json.dumps([f.to_json() for f in verdict.findings], ensure_ascii=False),
        "at_tariff": verdict.at_tariff, "overcharge": verdict.overcharge, "tariff_versions": verdict.tariff_versions,
        "raw": json.dumps(raw, ensure_ascii=False, default=str)})
    return StoredOrder(verdict.confirm_result, number, False, number > 1, verdict)
