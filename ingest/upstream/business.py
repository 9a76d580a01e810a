"""What a higher platform reads of the business: a station's charged energy over days
(``query_station_stats``) and a connector's business policy (``query_equip_business_policy``).

Energy comes from the operators' charge orders (``charge_orders``): each order once, in its
latest version, when it was accepted on receipt (ConfirmResult 0), on the China day it ended. An
order belongs to the station it was received for, or, received before its connector was known, to
the station its connector belongs to now (as ``services.orders.energy`` reads them). The policy is
the connector's tariff version in force (``connector_tariffs``, ``tariffs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from services.prices.tariff import Tariff
from services.stations.filters import VISIBLE_SQL

__all__ = ["FAIL_AMBIGUOUS", "FAIL_NO_POLICY", "FAIL_UNKNOWN", "connector_policy", "station_stats"]

#: FailReason of query_equip_business_policy: 1 is the standard's, 2-99 a provider's own
FAIL_UNKNOWN, FAIL_NO_POLICY, FAIL_AMBIGUOUS = 1, 2, 3

_STATS = text(f"""
WITH st AS (
    SELECT s.id FROM stations s WHERE {VISIBLE_SQL} AND s.station_id = :sid
), con AS (
    SELECT c.operator_id, c.connector_id, c.station_pk, c.equipment_pk, c.id, e.equipment_id
    FROM connectors c JOIN equipment e ON e.id = c.equipment_pk
    WHERE c.station_pk IN (SELECT id FROM st)
), o AS (
    SELECT o.operator_id, o.connector_id, o.total_power
    FROM charge_orders o
    WHERE o.latest AND o.confirm_result = 0 AND o.day BETWEEN :a AND :b AND o.station_pk IN (SELECT id FROM st)
    UNION ALL
    SELECT o.operator_id, o.connector_id, o.total_power
    FROM charge_orders o JOIN con ON con.operator_id = o.operator_id AND con.connector_id = o.connector_id
    WHERE o.latest AND o.station_pk IS NULL AND o.confirm_result = 0 AND o.day BETWEEN :a AND :b
), kwh AS (
    SELECT operator_id, connector_id, sum(total_power) AS kwh FROM o GROUP BY 1, 2
)
SELECT con.equipment_pk, con.equipment_id, con.connector_id, coalesce(kwh.kwh, 0) AS kwh, true AS known
FROM con LEFT JOIN kwh ON kwh.operator_id = con.operator_id AND kwh.connector_id = con.connector_id
UNION ALL
SELECT NULL, NULL, kwh.connector_id, kwh.kwh, false
FROM kwh WHERE NOT EXISTS (SELECT 1 FROM con WHERE con.operator_id = kwh.operator_id
                                               AND con.connector_id = kwh.connector_id)
ORDER BY 1, 3""")

_KWH = Decimal("0.01")


def _kwh(value: Decimal) -> float:
    return float(value.quantize(_KWH, ROUND_HALF_UP))


def station_stats(conn: Connection, station_id: str, start: date, end: date) -> dict[str, Any] | None:
    """The StationStatsInfo of a public StationID from ``start`` to ``end`` (China days, both
    included), or None when no public station has that StationID. Every pile and connector of the
    station is listed (0 without orders); a StationID several operators use covers all their
    stations. Energy of orders on connectors the station no longer reports counts in
    ``StationElectricity`` only."""
    if not conn.execute(text(f"SELECT 1 FROM stations s WHERE {VISIBLE_SQL} AND s.station_id = :sid LIMIT 1"),
                        {"sid": station_id}).first():
        return None
    piles: dict[int, dict[str, Any]] = {}
    sums: dict[int, Decimal] = {}
    total = Decimal(0)
    for r in conn.execute(_STATS, {"sid": station_id, "a": start, "b": end}):
        total += r.kwh
        if not r.known:
            continue
        pile = piles.setdefault(r.equipment_pk, {"EquipmentID": r.equipment_id, "EquipmentElectricity": 0.0,
                                                 "ConnectorStatsInfos": []})
        sums[r.equipment_pk] = sums.get(r.equipment_pk, Decimal(0)) + r.kwh
        pile["ConnectorStatsInfos"].append({"ConnectorID": r.connector_id, "ConnectorElectricity": _kwh(r.kwh)})
    for pk, pile in piles.items():
        pile["EquipmentElectricity"] = _kwh(sums[pk])
    return {"StationID": station_id, "StartTime": start.isoformat(), "EndTime": end.isoformat(),
            "StationElectricity": _kwh(total), "EquipmentStatsInfos": list(piles.values())}


_POLICY = text(f"""
SELECT c.operator_id, t.periods
FROM connectors c
JOIN stations s ON s.id = c.station_pk
LEFT JOIN connector_tariffs v ON v.operator_id = c.operator_id AND v.connector_id = c.connector_id
                             AND v.valid_to IS NULL
LEFT JOIN tariffs t ON t.id = v.tariff_id
WHERE {VISIBLE_SQL} AND c.connector_id = :cid
ORDER BY c.operator_id""")


def _policy_infos(periods: Any) -> list[dict[str, Any]]:
    tariff = Tariff.from_json(periods)
    return [{"StartTime": f"{p.start // 3600:02d}{p.start // 60 % 60:02d}{p.start % 60:02d}",
             "ElecPrice": float(p.electricity), "SevicePrice": float(p.service)} for p in tariff.periods]


def connector_policy(conn: Connection, connector_id: str) -> tuple[int, list[dict[str, Any]]]:
    """(FailReason, PolicyInfos) of a public connector's tariff in force: 0 and its periods, or
    :data:`FAIL_UNKNOWN` (no public connector has that ConnectorID), :data:`FAIL_NO_POLICY` (no
    valid policy or fee text known for it) or :data:`FAIL_AMBIGUOUS` (connectors of several
    operators have that ConnectorID and their prices differ) with no periods."""
    rows: Sequence[Any] = conn.execute(_POLICY, {"cid": connector_id}).all()
    if not rows:
        return FAIL_UNKNOWN, []
    priced = [_policy_infos(r.periods) for r in rows if r.periods is not None]
    if len(priced) < len(rows):
        return (FAIL_NO_POLICY if len(rows) == 1 else FAIL_AMBIGUOUS), []
    if any(p != priced[0] for p in priced[1:]):
        return FAIL_AMBIGUOUS, []
    return 0, priced[0]
