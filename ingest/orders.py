"""The receiver's side of T/CEC 102 part 3: ``notification_charge_order_info`` and
``check_charge_orders`` pushed by an operator.

An order is read here, then checked and stored by :mod:`services.orders.store` with the orders
pushed at the same time (the envelope's replay claim in ``feed_push_seen`` and the insert in one
atomic statement); a reconciliation is one transaction
(:mod:`services.orders.reconcile`). Only after the commit is the answer sent, so an order that could
not be stored is never acknowledged. Data that cannot be read is Ret 4004 with a Msg
naming the field, and nothing is stored. A resend of the same envelope, or of the same order in a
new envelope, gets the same answer again and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from ingest.errors import ProtocolError, Ret
from ingest.replay import claim_envelope
from services.orders.checks import OrderInvalid, read_order
from services.orders.reconcile import read_check, reconcile
from services.orders.store import PendingOrder, SeqReused, stored_order

__all__ = ["ORDER_INTERFACES", "charge_order_answer", "check_orders", "read_charge_order"]

ORDER_INTERFACES = ("notification_charge_order_info", "check_charge_orders")


def _business(exc: OrderInvalid) -> ProtocolError:
    return ProtocolError(Ret.BUSINESS, exc.message[:500])


def read_charge_order(operator_id: str, parsed: Any) -> PendingOrder:
    """A pushed order, read (Ret 4004 naming the field when it cannot be), to be checked and stored."""
    try:
        order = read_order(parsed.data)
    except OrderInvalid as exc:
        raise _business(exc) from None
    return PendingOrder(operator_id, order, parsed.data, parsed, datetime.now(UTC))


def charge_order_answer(pending: PendingOrder, result: Any, parsed: Any) -> dict[str, Any]:
    """The answer's Data (StartChargeSeq, ConnectorID, ConfirmResult) for what
    :func:`services.orders.store.check_and_store` made of ``pending``."""
    if isinstance(result, Exception):
        raise result
    out, verdict = result
    try:
        stored = stored_order(out, verdict)
    except SeqReused:
        raise ProtocolError(Ret.ENVELOPE, f"Seq {parsed.seq} was already used in second {parsed.raw['TimeStamp']}; "
                            "resend with a new Seq") from None
    return {"StartChargeSeq": pending.order.seq, "ConnectorID": pending.order.connector_id,
            "ConfirmResult": stored.confirm_result}


def check_orders(engine: Engine, operator_id: str, parsed: Any) -> dict[str, Any]:
    """Reconcile one day's list; the answer's Data lists the disputes."""
    try:
        check = read_check(parsed.data)
    except OrderInvalid as exc:
        raise _business(exc) from None
    with engine.begin() as conn:
        claim_envelope(conn, operator_id, parsed)
        return reconcile(conn, operator_id, check)
