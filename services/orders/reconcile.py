"""Daily reconciliation (``check_charge_orders``): the operator's list against what we received.

:func:`read_check` reads the Data (or raises :class:`~services.orders.checks.OrderInvalid`
naming the field). :func:`reconcile` compares each listed order with the latest version we hold
and answers the disputes: ``DisputeReason`` 1 the order is unknown here, 2 the money differs, 3
the energy differs (our figures are given for 2 and 3, theirs for 1). Orders we hold that
ended inside the list's window but are missing from it are kept on the check as ``unlisted``
for the back office. Each order gets the latest list's word in ``reconcile_state`` (``agreed``,
``disputed``, ``unlisted``): an agreed, undisputed order is the basis of money. A repeated
``CheckOrderSeq`` is compared again (orders may have arrived since) and answered anew.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg2.extras import execute_values
from sqlalchemy import text

from services.orders.checks import OrderInvalid, number_field, parse_china_time, text_field

__all__ = ["CheckList", "reconcile", "read_check"]

MAX_LISTED = 200_000
_TOL = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class CheckList:
    seq: str
    start_text: str
    end_text: str
    start: datetime
    end: datetime
    order_count: int
    total_power: Decimal
    total_money: Decimal
    orders: dict[str, tuple[Decimal, Decimal]]
    problems: tuple[str, ...]


def read_check(data: Any) -> CheckList:
    """The Data of ``check_charge_orders``.

    >>> c = read_check({"CheckOrderSeq": "X" * 27, "StartTime": "2026-12-05 00:00:00",
    ...                 "EndTime": "2026-12-05 23:59:59", "OrderCount": 1, "TotalOrderPower": 10.5,
    ...                 "TotalOrderMoney": 12, "ChargeOrders": [{"StartChargeSeq": "A", "TotalPower": 10.5,
    ...                 "TotalMoney": 12}]})
    >>> c.orders, c.problems
    ({'A': (Decimal('10.5'), Decimal('12'))}, ())
    """
    if not isinstance(data, dict):
        raise OrderInvalid("Data must be a check_charge_orders object", param="Data")
    seq = text_field(data, "CheckOrderSeq", 64)
    start = parse_china_time(data.get("StartTime"), "StartTime")
    end = parse_china_time(data.get("EndTime"), "EndTime")
    count = number_field(data, "OrderCount")
    power = number_field(data, "TotalOrderPower")
    money = number_field(data, "TotalOrderMoney")
    listed = data.get("ChargeOrders")
    if listed is None:
        listed = []
    if not isinstance(listed, list):
        raise OrderInvalid("ChargeOrders must be a list", param="ChargeOrders")
    if len(listed) > MAX_LISTED:
        raise OrderInvalid(f"ChargeOrders lists {len(listed)} orders; at most {MAX_LISTED}", param="ChargeOrders")
    orders: dict[str, tuple[Decimal, Decimal]] = {}
    problems: list[str] = []
    for i, item in enumerate(listed):
        where = f"ChargeOrders[{i}]"
        if not isinstance(item, dict):
            raise OrderInvalid(f"{where} must be an object", param=where)
        s = text_field(item, "StartChargeSeq", 64)
        if s in orders:
            problems.append(f"StartChargeSeq {s} is listed twice")
        orders[s] = (number_field(item, "TotalPower", label=f"{where}.TotalPower"),  # type: ignore[assignment]
                     number_field(item, "TotalMoney", label=f"{where}.TotalMoney"))
    if count is not None and count != len(listed):
        problems.append(f"OrderCount {count} but {len(listed)} ChargeOrders")
    for name, stated, got in (("TotalOrderPower", power, sum((p for p, _ in orders.values()), Decimal(0))),
                              ("TotalOrderMoney", money, sum((m for _, m in orders.values()), Decimal(0)))):
        if stated is not None and abs(stated - got) > _TOL:
            problems.append(f"{name} {stated} but the listed orders add up to {got}")
    return CheckList(seq, str(data["StartTime"]).strip(), str(data["EndTime"]).strip(), start, end,
                     int(count or 0), power or Decimal(0), money or Decimal(0), orders, tuple(problems))


def _num(d: Decimal) -> float:
    return float(d.quantize(Decimal("0.01")))


def reconcile(conn: Any, operator_id: str, check: CheckList) -> dict[str, Any]:
    """Compare, record and build the answer's Data (see the module doc)."""
    seqs = list(check.orders)
    ours = {r.start_charge_seq: r for r in conn.execute(text(
        "SELECT id, start_charge_seq, total_power, total_money FROM charge_orders "
        "WHERE operator_id = :op AND latest AND start_charge_seq = ANY(:s)"), {"op": operator_id, "s": seqs})}
    disputes: list[dict[str, Any]] = []
    states: list[tuple[int, str]] = []
    for seq, (power, money) in check.orders.items():
        o = ours.get(seq)
        if o is None:
            disputes.append({"StartChargeSeq": seq, "TotalPower": _num(power), "TotalMoney": _num(money),
                             "DisputeReason": 1})
            continue
        reason = 2 if abs(Decimal(o.total_money) - money) > _TOL else 3 if abs(Decimal(o.total_power) - power) > _TOL else 0
        if reason:
            disputes.append({"StartChargeSeq": seq, "TotalPower": _num(Decimal(o.total_power)),
                             "TotalMoney": _num(Decimal(o.total_money)), "DisputeReason": reason})
        states.append((o.id, "disputed" if reason else "agreed"))
    unlisted = conn.execute(text(
        "SELECT id, start_charge_seq, total_power, total_money, end_time FROM charge_orders "
        "WHERE operator_id = :op AND latest AND end_time BETWEEN :a AND :b AND NOT (start_charge_seq = ANY(:s)) "
        "ORDER BY end_time"), {"op": operator_id, "a": check.start, "b": check.end, "s": seqs}).all()
    states += [(r.id, "unlisted") for r in unlisted]
    answer = {"CheckOrderSeq": check.seq, "StartTime": check.start_text, "EndTime": check.end_text,
              "TotalDisputeOrder": len(disputes),
              "TotalDisputePower": _num(sum((Decimal(str(d["TotalPower"])) for d in disputes), Decimal(0))),
              "TotalDisputeMoney": _num(sum((Decimal(str(d["TotalMoney"])) for d in disputes), Decimal(0))),
              "DisputeOrders": disputes}
    check_id = conn.execute(text("""
        INSERT INTO order_checks (operator_id, check_order_seq, start_time, end_time, order_count, total_power,
            total_money, listed, dispute_count, dispute_power, dispute_money, disputes, unlisted, problems)
        VALUES (:op, :seq, :a, :b, :n, :p, :m, CAST(:listed AS jsonb), :dn, :dp, :dm, CAST(:disputes AS jsonb),
            CAST(:unlisted AS jsonb), :problems)
        ON CONFLICT (operator_id, check_order_seq) DO UPDATE SET start_time = EXCLUDED.start_time,
            end_time = EXCLUDED.end_time, order_count = EXCLUDED.order_count, total_power = EXCLUDED.total_power,
            total_money = EXCLUDED.total_money, listed = EXCLUDED.listed, dispute_count = EXCLUDED.dispute_count,
            dispute_power = EXCLUDED.dispute_power, dispute_money = EXCLUDED.dispute_money,
            disputes = EXCLUDED.disputes, unlisted = EXCLUDED.unlisted, problems = EXCLUDED.problems,
            answered_at = now()
        RETURNING id"""), {
        "op": operator_id, "seq": check.seq, "a": check.start, "b": check.end, "n": check.order_count,
        "p": check.total_power, "m": check.total_money,
        "listed": json.dumps({s: [str(p), str(m)] for s, (p, m) in check.orders.items()}),
        "dn": len(disputes), "dp": answer["TotalDisputePower"], "dm": answer["TotalDisputeMoney"],
        "disputes": json.dumps(disputes), "problems": list(check.problems),
        "unlisted": json.dumps([{"StartChargeSeq": r.start_charge_seq, "TotalPower": _num(Decimal(r.total_power)),
                                 "TotalMoney": _num(Decimal(r.total_money)), "EndTime": r.end_time.isoformat()}
                                for r in unlisted])}).scalar_one()
    if states:
        with conn.connection.dbapi_connection.cursor() as cur:
            execute_values(cur, "UPDATE charge_orders o SET reconcile_state = v.state, reconciled_by = v.check_id "
                                "FROM (VALUES %s) AS v(id, state, check_id) WHERE o.id = v.id",
                           [(i, s, check_id) for i, s in states], template="(%s::bigint, %s::varchar, %s::bigint)")
    return answer
