"""Price execution for the regulators (issue 15, item 6): per operator and per station over a
window of China dates, what drivers were billed against what was announced.

Each row holds ``orders``, ``energy_kwh``, ``money_yuan``; ``at_tariff_share`` (per cent of the
orders whose prices could be checked, ``priced``, that were billed exactly at the tariff in
force); ``overcharged`` orders and ``overcharge_yuan``; ``disputed`` orders (answered
ConfirmResult 1); ``revised`` orders; the reconciliations (``reconcile_disputes`` by reason 1
unknown here, 2 money differs, 3 energy differs, on the operator rows; orders the lists
disputed on the station rows); ``unreconciled`` orders and ``unreconciled_days`` (days whose
orders no daily list has covered yet, or the list lacked); and the current tariffs over the
city's cap (``over_cap_connectors``, ``over_cap_stations``).

Queries are in ``sql/queries/price_execution.sql`` (orders) and :mod:`services.prices.oversight`
(tariffs); only latest versions count, so nothing is counted twice.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from services.db import read_sql
from services.orders.window import Window
from services.prices.oversight import over_cap, tariff_counts
from services.prices.tariff import Cap

__all__ = ["COLUMNS", "REASONS", "ExecutionReport", "disputed_orders", "execution_report", "share",
           "unreconciled_days"]

REASONS = {1: ("本平台无此订单", "unknown here"), 2: ("金额不符", "money differs"), 3: ("电量不符", "energy differs")}

#: (key, zh, en, kind) of the figures of a row, in the order pages and the export show them;
#: kind: n (count), kwh, yuan, pct
COLUMNS: list[tuple[str, str, str, str]] = [
    ("orders", "订单数", "orders", "n"),
    ("energy_kwh", "充电量（度）", "energy (kWh)", "kwh"),
    ("money_yuan", "金额（元）", "money (yuan)", "yuan"),
    ("avg_price", "平均单价（元/度）", "average price (yuan/kWh)", "price"),
    ("at_tariff_share", "按公示电价结算 %", "billed at the tariff %", "pct"),
    ("overcharged", "超收订单", "overcharged orders", "n"),
    ("overcharge_yuan", "超收金额（元）", "overcharge (yuan)", "yuan"),
    ("disputed", "存疑订单", "disputed orders", "n"),
    ("revised", "修订订单", "revised orders", "n"),
    ("reconcile_disputes", "对账争议", "reconciliation disputes", "n"),
    ("unreconciled", "未对账订单", "unreconciled orders", "n"),
    ("unreconciled_days", "未对账天数", "unreconciled days", "n"),
    ("over_cap_connectors", "超限价接口", "connectors over the cap", "n"),
]

_CHECKS = text("""
SELECT c.operator_id, count(*) AS checks, coalesce(sum(c.dispute_count), 0) AS disputes,
       coalesce(sum(jsonb_array_length(c.unlisted)), 0) AS unlisted_listed,
       coalesce(sum((SELECT count(*) FROM jsonb_array_elements(c.disputes) d WHERE d->>'DisputeReason' = '1')), 0)
         AS reason_1,
       coalesce(sum((SELECT count(*) FROM jsonb_array_elements(c.disputes) d WHERE d->>'DisputeReason' = '2')), 0)
         AS reason_2,
       coalesce(sum((SELECT count(*) FROM jsonb_array_elements(c.disputes) d WHERE d->>'DisputeReason' = '3')), 0)
         AS reason_3
FROM order_checks c
WHERE c.start_time < :end AND c.end_time >= :start
  AND (CAST(:op AS varchar) IS NULL OR c.operator_id = CAST(:op AS varchar))
GROUP BY c.operator_id
""")
_OPERATORS = text("SELECT operator_id, name FROM operators WHERE operator_id = ANY(:ops)")
_STATIONS = text("SELECT id, station_id, name, district_adcode FROM stations WHERE id = ANY(:ids)")


def share(part: int, whole: int) -> float | None:
    """Per cent with one decimal, None when there is nothing to divide.

    >>> share(1, 3), share(0, 0)
    (33.3, None)
    """
    return round(100.0 * part / whole, 1) if whole else None


def _figures(r: Any) -> dict[str, Any]:
    energy = Decimal(r["energy_kwh"])
    money = Decimal(r["money_yuan"])
    return {"orders": int(r["orders"]), "stations": int(r["stations"]), "energy_kwh": energy, "money_yuan": money,
            "avg_price": (money / energy).quantize(Decimal("0.0001")) if energy else None,
            "priced": int(r["priced"]), "at_tariff": int(r["at_tariff"]),
            "at_tariff_share": share(int(r["at_tariff"]), int(r["priced"])),
            "overcharged": int(r["overcharged"]),
            "overcharge_yuan": Decimal(r["overcharge_yuan"]).quantize(Decimal("0.01")),
            "disputed": int(r["disputed"]), "revised": int(r["revised"]),
            "reconcile_disputed": int(r["reconcile_disputed"]), "unreconciled": int(r["unreconciled"]),
            "unlisted": int(r["unlisted"]), "unreconciled_days": int(r["unreconciled_days"]),
            "order_days": int(r["order_days"])}


def _blank() -> dict[str, Any]:
    return {"orders": 0, "stations": 0, "energy_kwh": Decimal(0), "money_yuan": Decimal(0), "avg_price": None,
            "priced": 0, "at_tariff": 0, "at_tariff_share": None, "overcharged": 0, "overcharge_yuan": Decimal("0.00"),
            "disputed": 0, "revised": 0, "reconcile_disputed": 0, "unreconciled": 0, "unlisted": 0,
            "unreconciled_days": 0, "order_days": 0}


class ExecutionReport(dict):
    """``{"window", "cap", "total", "operators": [...], "stations": [...], "over_cap": [...]}``;
    station rows carry ``operator_id`` and ``station_pk`` (None: orders on unknown connectors)."""


def execution_report(conn: Any, window: Window, cap: Cap, operator_id: str | None = None) -> ExecutionReport:
    """Every figure of the module doc, per operator and per station (of ``operator_id`` only when
    given), with the city (or that operator) in ``total``."""
    rows = conn.execute(text(read_sql("queries/price_execution.sql")),
                        {"a": window.day_from, "b": window.day_to, "op": operator_id}).mappings().all()
    checks = {r["operator_id"]: dict(r) for r in conn.execute(
        _CHECKS, {"start": window.start, "end": window.end, "op": operator_id}).mappings()}
    tariffs = tariff_counts(conn, cap, operator_id)
    violations = over_cap(conn, cap, operator_id)
    over_stations: dict[tuple[str, Any], int] = defaultdict(int)
    for v in violations:
        over_stations[(v["operator_id"], v["station_pk"])] += int(v["connectors"])

    total = _blank()
    operators: dict[str, dict[str, Any]] = {}
    stations: dict[tuple[str, Any], dict[str, Any]] = {}
    for r in rows:
        if r["all_operators"]:
            total = _figures(r)
        elif r["all_stations"]:
            operators[r["operator_id"]] = {"operator_id": r["operator_id"], **_figures(r)}
        else:
            stations[(r["operator_id"], r["station_pk"])] = {"operator_id": r["operator_id"],
                                                             "station_pk": r["station_pk"], **_figures(r)}
    for key in over_stations:
        stations.setdefault(key, {"operator_id": key[0], "station_pk": key[1], **_blank()})
    for op in {*checks, *(k for k, t in tariffs.items() if t["over_cap"] or t["problems"]), *(k[0] for k in stations)}:
        operators.setdefault(op, {"operator_id": op, **_blank()})

    names = dict(conn.execute(_OPERATORS, {"ops": list(operators)}).all()) if operators else {}
    station_pks = [k[1] for k in stations if k[1] is not None]
    info = {r["id"]: r for r in conn.execute(_STATIONS, {"ids": station_pks}).mappings()} if station_pks else {}
    for (op, pk), row in stations.items():
        st = info.get(pk)
        row.update(operator_name=names.get(op, op), station_id=st["station_id"] if st else None,
                   station_name=st["name"] if st else None, reconcile_disputes=row["reconcile_disputed"],
                   over_cap_connectors=over_stations.get((op, pk), 0))
    total.update(reconcile_disputes=0, over_cap_connectors=0, over_cap_stations=0, tariff_problems=0, checks=0,
                 reasons={n: 0 for n in REASONS})
    for op, row in operators.items():
        c = checks.get(op, {})
        t = tariffs.get(op, {})
        row.update(operator_name=names.get(op, op), checks=int(c.get("checks", 0)),
                   reconcile_disputes=int(c.get("disputes", 0)),
                   reasons={n: int(c.get(f"reason_{n}", 0)) for n in REASONS},
                   over_cap_connectors=int(t.get("over_cap", 0)), tariff_problems=int(t.get("problems", 0)),
                   connectors=int(t.get("connectors", 0)), priced_connectors=int(t.get("priced", 0)),
                   over_cap_stations=sum(1 for (o, _pk) in over_stations if o == op))
        for k in ("reconcile_disputes", "over_cap_connectors", "over_cap_stations", "tariff_problems", "checks"):
            total[k] += row[k]
        for n in REASONS:
            total["reasons"][n] += row["reasons"][n]
    return ExecutionReport(
        window=window, cap=cap, total=total,
        operators=sorted(operators.values(), key=lambda r: (-r["orders"], r["operator_name"] or "")),
        stations=sorted(stations.values(), key=lambda r: (r["operator_name"] or "", -r["orders"],
                                                          r["station_name"] or "")),
        over_cap=violations)


_UNRECONCILED = text("""
SELECT o.operator_id, op.name AS operator_name, o.day, count(*) AS orders,
       count(*) FILTER (WHERE o.reconcile_state IS NULL) AS not_listed_yet,
       count(*) FILTER (WHERE o.reconcile_state = 'unlisted') AS unlisted,
       coalesce(sum(o.total_power), 0) AS energy_kwh, coalesce(sum(o.total_money), 0) AS money_yuan,
       EXISTS (SELECT 1 FROM order_checks c WHERE c.operator_id = o.operator_id
               AND c.start_time < CAST(o.day + 1 AS timestamp) AT TIME ZONE 'Asia/Shanghai'
               AND c.end_time >= CAST(o.day AS timestamp) AT TIME ZONE 'Asia/Shanghai') AS checked
FROM charge_orders o LEFT JOIN operators op ON op.operator_id = o.operator_id
WHERE o.latest AND o.day BETWEEN :a AND :b
  AND (CAST(:op AS varchar) IS NULL OR o.operator_id = CAST(:op AS varchar))
  AND (o.reconcile_state IS NULL OR o.reconcile_state = 'unlisted')
GROUP BY o.operator_id, op.name, o.day
ORDER BY o.day DESC, op.name
""")


def unreconciled_days(conn: Any, window: Window, operator_id: str | None = None) -> list[dict[str, Any]]:
    """The (operator, day) pairs of the window with orders no list has covered (``not_listed_yet``;
    ``checked`` says whether any list covered the day at all) or that a list lacked (``unlisted``)."""
    return [dict(r) for r in conn.execute(_UNRECONCILED, {"a": window.day_from, "b": window.day_to,
                                                          "op": operator_id}).mappings()]


_DISPUTED = text("""
SELECT o.id, o.operator_id, op.name AS operator_name, o.start_charge_seq, o.version, o.connector_id,
       s.station_id, s.name AS station_name, o.start_time, o.end_time, o.day, o.total_power, o.total_money,
       o.overcharge_yuan, o.reconcile_state, o.findings
FROM charge_orders o
LEFT JOIN stations s ON s.id = o.station_pk
LEFT JOIN operators op ON op.operator_id = o.operator_id
WHERE o.latest AND o.confirm_result = 1 AND o.day BETWEEN :a AND :b
  AND (CAST(:op AS varchar) IS NULL OR o.operator_id = CAST(:op AS varchar))
ORDER BY o.day DESC, o.end_time DESC, o.id DESC
LIMIT :limit
""")


def disputed_orders(conn: Any, window: Window, operator_id: str | None = None, limit: int = 50_000) -> list[dict[str, Any]]:
    """Orders answered ConfirmResult 1 in the window, newest first, with their ``findings``."""
    return [dict(r) for r in conn.execute(_DISPUTED, {"a": window.day_from, "b": window.day_to, "op": operator_id,
                                                      "limit": limit}).mappings()]
