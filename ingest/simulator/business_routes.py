"""Admin API of the simulator's business side (prices, sessions, orders, reconciliation).

Mounted under ``/_admin`` by :func:`ingest.simulator.server.build_app`, behind its loopback
guard. Bodies are JSON objects; every field is optional unless said otherwise.

* ``GET  /_admin/policies?operator_id=&station_id=``: each station's tariff now (with
  ``station_id``: every version), its kinds of piles and fee texts.
* ``POST /_admin/policies {operator_id, stations: n}``: new prices at n stations.
* ``POST /_admin/sessions {operator_id, count, start, minutes: [min, max], wait, wait_seconds}``:
  complete backdated sessions now; answers the orders made (ground truth, faults included).
* ``GET  /_admin/sessions?operator_id=``: the live sessions running.
* ``POST /_admin/connector-status {operator_id, connector_id, status, wait}``: one status change,
  as the live loop makes them (3 starts a session, leaving 3 ends it and pushes its order).
* ``GET  /_admin/orders?operator_id=&day=YYYY-MM-DD``: the ground truth of every order.
* ``POST /_admin/reconcile {operator_id, day (required), wait, wait_seconds}`` and
  ``GET /_admin/reconciliations?operator_id=&day=``: ``check_charge_orders`` and the answers.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException, ValidationException

from ingest.protocol import CONNECTOR_STATUSES, ProtocolError, parse_query_time
from ingest.simulator.city import SimOperator, now_china
from ingest.simulator.state import Simulator

__all__ = ["BUSINESS_ROUTES", "json_body", "op_or_404"]

_MAX_WAIT = 120.0


def _sim(request: Request) -> Simulator:
    return request.app.state.sim


def op_or_404(sim: Simulator, operator_id: str) -> SimOperator:
    op = sim.operators.get(operator_id)
    if op is None:
        raise NotFoundException(f"no simulated operator {operator_id[:20]!r}")
    return op


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``)."""
    raw = await request.body()
    body = await request.json() if raw.strip() else {}
    if not isinstance(body, dict):
        raise ValidationException("expected a JSON object")
    return body


def _optional_op(sim: Simulator, value: Any) -> str | None:
    if value in (None, ""):
        return None
    return op_or_404(sim, str(value)).operator_id


async def _posted(request: Request) -> tuple[Simulator, dict[str, Any], str | None]:
    """The simulator, the JSON body and its ``operator_id`` (None: every operator)."""
    sim = _sim(request)
    body = await json_body(request)
    return sim, body, _optional_op(sim, body.get("operator_id"))


def _int(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(body.get(name, default))
    except (TypeError, ValueError):
        raise ValidationException(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ValidationException(f"{name} must be between {low} and {high}")
    return value


def _day(value: Any, required: bool = False) -> str | None:
    if value in (None, "") and not required:
        return None
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ValidationException("day must be YYYY-MM-DD") from None


def _wait_seconds(body: dict[str, Any]) -> float | None:
    if not body.get("wait"):
        return None
    try:
        return min(max(float(body.get("wait_seconds", 10)), 0.0), _MAX_WAIT)
    except (TypeError, ValueError):
        raise ValidationException("wait_seconds must be a number") from None


@get("/policies")
async def admin_policies(request: Request, operator_id: str | None = None,
                         station_id: str | None = None) -> list[dict[str, Any]]:
    sim = _sim(request)
    op_id = _optional_op(sim, operator_id)
    ops = [sim.operators[op_id]] if op_id else list(sim.operators.values())
    stations = [s for op in ops for s in op.stations if not station_id or s.station_id == station_id]
    if station_id and not stations:
        raise NotFoundException(f"no station {station_id[:20]!r}")
    return [sim.business.policy_view(s, history=bool(station_id)) for s in stations]


@post("/policies", status_code=200)
async def admin_change_policies(request: Request) -> dict[str, Any]:
    sim, body, op_id = await _posted(request)
    n = _int(body, "stations", 1, 1, 10000)
    return {"changed": sim.business.change_policies(n, op_id)}


@post("/sessions", status_code=200)
async def admin_run_sessions(request: Request) -> dict[str, Any]:
    sim, body, op_id = await _posted(request)
    count = _int(body, "count", 1, 1, 10000)
    start = None
    if body.get("start"):
        try:
            start = parse_query_time(str(body["start"]))
        except ProtocolError as exc:
            raise ValidationException(f"start: {exc.msg}") from None
        if start is not None and start >= now_china():
            raise ValidationException("start must be in the past (sessions never end in the future)")
    minutes = body.get("minutes", [20, 120])
    if (not isinstance(minutes, list) or len(minutes) != 2
            or not all(isinstance(m, (int, float)) and not isinstance(m, bool) for m in minutes)
            or not 0 < minutes[0] <= minutes[1] <= 1440):
        raise ValidationException("minutes must be [min, max] with 0 < min <= max <= 1440")
    wait = _wait_seconds(body)
    made = sim.business.run_sessions(count, op_id, start, (float(minutes[0]), float(minutes[1])))
    settled = None
    if wait is not None:
        settled = await sim.business.deliveries.wait([r.deliveries[0] for r in made], wait)
    return {"requested": count, "made": len(made), "pushes_settled": settled, "orders": [r.as_dict() for r in made]}


@get("/sessions")
async def admin_sessions(request: Request, operator_id: str | None = None) -> list[dict[str, Any]]:
    sim = _sim(request)
    op_id = _optional_op(sim, operator_id)
    return [s.as_dict() for (op, _), s in sim.business.sessions.items() if not op_id or op == op_id]


@post("/connector-status", status_code=200)
async def admin_connector_status(request: Request) -> dict[str, Any]:
    sim = _sim(request)
    body = await json_body(request)
    op = op_or_404(sim, str(body.get("operator_id") or ""))
    where = sim.business.connector(op.operator_id, str(body.get("connector_id") or ""))
    if where is None:
        raise NotFoundException(f"no connector {str(body.get('connector_id'))[:26]!r} at {op.operator_id}")
    status = _int(body, "status", 1, 0, 255)
    if status not in CONNECTOR_STATUSES:
        raise ValidationException(f"status must be one of {sorted(CONNECTOR_STATUSES)}")
    _, station, _, c = where
    change = sim.set_status(op, station, c, status, now_china())
    record = sim.business.orders.get((op.operator_id, change.get("StartChargeSeq", "")))
    session = sim.business.sessions.get((op.operator_id, c.connector_id))
    wait = _wait_seconds(body)
    settled = None
    if wait is not None:
        settled = await sim.drain_pushes(wait)
        if record is not None:
            settled = await sim.business.deliveries.wait([record.deliveries[0]], wait) and settled
    return {"change": change, "session": session.as_dict() if session else None,
            "order": record.as_dict() if record else None, "pushes_settled": settled}


@get("/orders")
async def admin_orders(request: Request, operator_id: str | None = None, day: str | None = None) -> list[dict[str, Any]]:
    sim = _sim(request)
    return sim.business.orders_view(_optional_op(sim, operator_id), _day(day))


@post("/reconcile", status_code=200)
async def admin_reconcile(request: Request) -> dict[str, Any]:
    sim, body, op_id = await _posted(request)
    day = _day(body.get("day"), required=True)
    assert day is not None
    wait = _wait_seconds(body)
    runs = [sim.business.reconcile(o, day) for o in ([op_id] if op_id else list(sim.operators))]
    settled = await sim.business.deliveries.wait([d for _, d in runs], wait) if wait is not None else None
    return {"pushes_settled": settled, "reconciliations": [sim.business.reconciliation_view(*r) for r in runs]}


@get("/reconciliations")
async def admin_reconciliations(request: Request, operator_id: str | None = None,
                                day: str | None = None) -> list[dict[str, Any]]:
    sim = _sim(request)
    op_id, day = _optional_op(sim, operator_id), _day(day)
    return [sim.business.reconciliation_view(*r) for (op, d), r in sim.business.reconciliations.items()
            if (not op_id or op == op_id) and (not day or d == day)]


BUSINESS_ROUTES = [
    admin_policies, admin_change_policies, admin_run_sessions, admin_sessions, admin_connector_status,
    admin_orders, admin_reconcile, admin_reconciliations,
]
