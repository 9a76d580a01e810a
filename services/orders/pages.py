"""Orders and reconciliations for people: the lists, one order with its versions, the daily
reconciliations with their disputes (the operators' back office, and the regulators' drill-down).

Every function takes the ``operator_id`` the rows must belong to (the operator of the session in
the back office): another operator's ids are simply not found, so the pages answer 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from services.archives.common import Page
from services.errors import NotFound
from services.orders.execution import REASONS
from services.orders.window import Window, date_param
from services.params import int_param, page_param
from services.prices.tariff import CHINA_TZ, Tariff

__all__ = ["OrderPage", "OrderQuery", "RECONCILE_STATES", "STATUSES", "check_detail", "list_orders", "order_detail",
           "reconciliation_days"]

#: the list's status filter: (zh, en) and the condition on charge_orders (alias o)
STATUSES: dict[str, tuple[str, str, str]] = {
    "accepted": ("已接受", "accepted", "o.confirm_result = 0"),
    "disputed": ("存疑", "disputed", "o.confirm_result = 1"),
    "overcharged": ("超收", "overcharged", "o.overcharge_yuan > 0"),
    "revised": ("已修订", "revised", "o.version > 1"),
    "unreconciled": ("未对账", "unreconciled", "(o.reconcile_state IS NULL OR o.reconcile_state = 'unlisted')"),
}
RECONCILE_STATES = {None: ("未对账", "not reconciled"), "agreed": ("对账一致", "agreed"),
                    "disputed": ("对账争议", "disputed"), "unlisted": ("对账清单遗漏", "missing from their list")}
PER_PAGE = 50


@dataclass(frozen=True, slots=True)
class OrderQuery:
    """The list's filters from a query string: ``station`` (a station's id), ``day`` (one China
    date; otherwise the window ``from``/``to``), ``status`` (a key of :data:`STATUSES`), ``page``."""

    window: Window
    station_pk: int | None = None
    day: date | None = None
    status: str | None = None
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> OrderQuery:
        status = str(params.get("status") or "").strip()
        return cls(Window.parse(params), int_param(params.get("station"), "station"),
                   date_param(params.get("day"), "day"), status if status in STATUSES else None,
                   page_param(params.get("page")))

    def as_params(self) -> dict[str, Any]:
        """The filters as a query string (without the page), for links and the pager."""
        out: dict[str, Any] = dict(self.window.as_params())
        for k, v in (("station", self.station_pk), ("day", self.day), ("status", self.status)):
            if v is not None:
                out[k] = v.isoformat() if isinstance(v, date) else v
        return out


@dataclass
class OrderPage(Page):
    """A page of orders and the ``sums`` (energy, money, overcharge) of every order that matches."""

    sums: dict[str, Any] = field(default_factory=dict)


_LIST = """
SELECT o.id, o.operator_id, o.start_charge_seq, o.version, o.connector_id, o.station_pk, s.station_id,
       s.name AS station_name, o.start_time, o.end_time, o.day, o.total_power, o.total_money, o.confirm_result,
       o.at_tariff, o.overcharge_yuan, o.reconcile_state, o.received_at,
       jsonb_array_length(o.findings) AS findings,
       (SELECT count(*) FROM jsonb_array_elements(o.findings) f WHERE f->>'severity' = 'error') AS errors,
       count(*) OVER () AS total, sum(o.total_power) OVER () AS sum_power, sum(o.total_money) OVER () AS sum_money,
       sum(o.overcharge_yuan) OVER () AS sum_overcharge
FROM charge_orders o LEFT JOIN stations s ON s.id = o.station_pk
WHERE o.latest AND o.operator_id = :op
  AND (CAST(:station AS bigint) IS NULL OR o.station_pk = CAST(:station AS bigint))
  AND o.day BETWEEN :a AND :b
  AND {status}
ORDER BY o.end_time DESC, o.id DESC
LIMIT :n OFFSET :o
"""
_LISTS = {k: text(_LIST.format(status=cond)) for k, (_, _, cond) in STATUSES.items()} | {None: text(_LIST.format(status="true"))}


def list_orders(conn: Any, operator_id: str, q: OrderQuery, per_page: int = PER_PAGE) -> OrderPage:
    """One page of the operator's orders (latest versions), newest first, with the sums of all
    that match."""
    rows = conn.execute(_LISTS[q.status], {
        "op": operator_id, "station": q.station_pk, "a": q.day or q.window.day_from, "b": q.day or q.window.day_to,
        "n": per_page, "o": (q.page - 1) * per_page}).mappings().all()
    total = int(rows[0]["total"]) if rows else 0
    sums = {"energy_kwh": Decimal(rows[0]["sum_power"]) if rows else Decimal(0),
            "money_yuan": Decimal(rows[0]["sum_money"]) if rows else Decimal(0),
            "overcharge_yuan": Decimal(rows[0]["sum_overcharge"]).quantize(Decimal("0.01")) if rows else Decimal(0)}
    return OrderPage([dict(r) for r in rows], total, q.page, per_page, sums)


_ORDER = text("SELECT operator_id, start_charge_seq FROM charge_orders WHERE id = :id "
              "AND (CAST(:op AS varchar) IS NULL OR operator_id = CAST(:op AS varchar))")
_VERSIONS = text("""
SELECT o.*, s.station_id, s.name AS station_name, op.name AS operator_name,
       c.check_order_seq, c.start_time AS check_start, c.end_time AS check_end
FROM charge_orders o
LEFT JOIN stations s ON s.id = o.station_pk
LEFT JOIN operators op ON op.operator_id = o.operator_id
LEFT JOIN order_checks c ON c.id = o.reconciled_by
WHERE o.operator_id = :op AND o.start_charge_seq = :seq
ORDER BY o.version DESC
""")
_TARIFF_VERSIONS = text("""
SELECT v.id, v.source, v.first_seen_at, v.valid_to, t.periods
FROM connector_tariffs v LEFT JOIN tariffs t ON t.id = v.tariff_id
WHERE v.id = ANY(:ids) AND v.operator_id = :op
ORDER BY v.first_seen_at
""")


def order_detail(conn: Any, order_id: int, operator_id: str | None = None) -> dict[str, Any]:
    """Every version of the order one of whose versions is ``order_id`` (latest first), each with
    its details and findings, and the tariff versions its prices were checked against; NotFound
    when it is not an order of ``operator_id`` (any operator's when None: the regulators)."""
    row = conn.execute(_ORDER, {"id": order_id, "op": operator_id}).first()
    if row is None:
        raise NotFound(f"没有编号为 {order_id} 的订单 / no order {order_id}")
    versions = [dict(r) for r in conn.execute(_VERSIONS, {"op": row.operator_id, "seq": row.start_charge_seq}).mappings()]
    ids = sorted({i for v in versions for i in (v["tariff_versions"] or ())})
    tariffs = []
    for t in conn.execute(_TARIFF_VERSIONS, {"ids": ids, "op": row.operator_id}).mappings():
        tariffs.append({**dict(t), "periods": Tariff.from_json(t["periods"]).api_periods() if t["periods"] else []})
    for v in versions:
        v["details"] = [{**d, "total_price": str(Decimal(d["elec_price"]) + Decimal(d["service_price"]))}
                        for d in v["details"] or ()]
    return {"order": versions[0], "versions": versions, "tariffs": tariffs, "asked": order_id}


# --- daily reconciliations ---------------------------------------------------------------------
_DAYS = text("""
SELECT o.day, count(*) AS orders, coalesce(sum(o.total_power), 0) AS energy_kwh,
       coalesce(sum(o.total_money), 0) AS money_yuan,
       count(*) FILTER (WHERE o.reconcile_state = 'agreed') AS agreed,
       count(*) FILTER (WHERE o.reconcile_state = 'disputed') AS disputed,
       count(*) FILTER (WHERE o.reconcile_state = 'unlisted') AS unlisted,
       count(*) FILTER (WHERE o.reconcile_state IS NULL) AS not_reconciled,
       count(*) FILTER (WHERE o.confirm_result = 1) AS check_failed
FROM charge_orders o
WHERE o.latest AND o.operator_id = :op AND o.day BETWEEN :a AND :b
GROUP BY o.day
""")
_CHECKS = text("""
SELECT c.id, c.check_order_seq, c.start_time, c.end_time, c.order_count, c.total_power, c.total_money,
       c.dispute_count, c.dispute_power, c.dispute_money, c.disputes, jsonb_array_length(c.unlisted) AS unlisted,
       c.problems, c.received_at, c.answered_at
FROM order_checks c
WHERE c.operator_id = :op AND c.start_time < :end AND c.end_time >= :start
ORDER BY c.start_time DESC, c.id DESC
""")


def _reasons(disputes: list[dict[str, Any]]) -> dict[int, int]:
    out = {n: 0 for n in REASONS}
    for d in disputes or ():
        try:
            n = int(d.get("DisputeReason"))
        except (TypeError, ValueError):
            continue
        out[n] = out.get(n, 0) + 1
    return out


def reconciliation_days(conn: Any, operator_id: str, window: Window) -> list[dict[str, Any]]:
    """Each day of the window with orders or a list, newest first: our orders that day (agreed,
    disputed by the list, missing from it, not reconciled yet) and the lists covering the day with
    their disputes by reason (``reasons``)."""
    days: dict[date, dict[str, Any]] = {}

    def blank(d: date) -> dict[str, Any]:
        return {"day": d, "orders": 0, "energy_kwh": Decimal(0), "money_yuan": Decimal(0), "agreed": 0, "disputed": 0,
                "unlisted": 0, "not_reconciled": 0, "check_failed": 0, "checks": []}

    for r in conn.execute(_DAYS, {"op": operator_id, "a": window.day_from, "b": window.day_to}).mappings():
        days[r["day"]] = {**blank(r["day"]), **dict(r)}
    for c in conn.execute(_CHECKS, {"op": operator_id, "start": window.start, "end": window.end}).mappings():
        check = {**dict(c), "reasons": _reasons(c["disputes"])}
        first = c["start_time"].astimezone(CHINA_TZ).date()
        last = (c["end_time"] - timedelta(microseconds=1)).astimezone(CHINA_TZ).date() if c["end_time"] > c["start_time"] \
            else first
        d = max(first, window.day_from)
        while d <= min(last, window.day_to):
            days.setdefault(d, blank(d))["checks"].append(check)
            d += timedelta(days=1)
    for d in days.values():
        d["reconciled"] = bool(d["checks"]) and not d["not_reconciled"] and not d["unlisted"]
    return sorted(days.values(), key=lambda r: r["day"], reverse=True)


_CHECK = text("""
SELECT c.* FROM order_checks c WHERE c.id = :id AND c.operator_id = :op
""")
_HELD = text("""
SELECT id, start_charge_seq, total_power, total_money, station_pk, end_time FROM charge_orders
WHERE operator_id = :op AND latest AND start_charge_seq = ANY(:s)
""")


def check_detail(conn: Any, operator_id: str, check_id: int) -> dict[str, Any]:
    """One ``check_charge_orders`` of the operator: its totals, our answer's disputes (with the
    reason and, for 2 and 3, our order and figures beside theirs) and the orders we hold that its
    list lacked; NotFound for another operator's."""
    c = conn.execute(_CHECK, {"id": check_id, "op": operator_id}).mappings().first()
    if c is None:
        raise NotFound(f"没有编号为 {check_id} 的对账 / no reconciliation {check_id}")
    listed = c["listed"] or {}
    seqs = [d["StartChargeSeq"] for d in c["disputes"] or ()] + [u["StartChargeSeq"] for u in c["unlisted"] or ()]
    held = {r.start_charge_seq: r for r in conn.execute(_HELD, {"op": operator_id, "s": seqs})} if seqs else {}
    disputes = []
    for d in c["disputes"] or ():
        seq = d["StartChargeSeq"]
        theirs = listed.get(seq) or [None, None]
        ours = held.get(seq)
        disputes.append({"seq": seq, "reason": d.get("DisputeReason"), "their_power": theirs[0],
                         "their_money": theirs[1], "our_power": ours.total_power if ours else None,
                         "our_money": ours.total_money if ours else None, "order_id": ours.id if ours else None})
    unlisted = [{**u, "order_id": held[u["StartChargeSeq"]].id if u["StartChargeSeq"] in held else None,
                 "end_time": datetime.fromisoformat(u["EndTime"]) if u.get("EndTime") else None}
                for u in c["unlisted"] or ()]
    return {"check": dict(c), "disputes": disputes, "unlisted": unlisted, "reason_counts": _reasons(c["disputes"]),
            "listed_count": len(listed)}
