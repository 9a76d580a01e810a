"""HTTP face of the operator simulator: T/CEC 102 interfaces per operator plus an admin API.

Each simulated operator is served under ``/{OperatorID}``; its interfaces are
``POST /{OperatorID}/evcs/{version}/{interface}`` (any version string is accepted).
The admin API (``/_admin/...``) has no authentication and answers loopback clients only; its
business half (prices, sessions, orders) is in :mod:`ingest.simulator.business_routes`.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any

from litestar import Litestar, Request, Response, Router, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotFoundException, PermissionDeniedException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath

from ingest.crypto import Secrets, sign
from ingest.envelope import build_response, parse_request
from ingest.errors import ProtocolError, Ret
from ingest.simulator.business_routes import BUSINESS_ROUTES, json_body, op_or_404
from ingest.simulator.city import SimOperator
from ingest.simulator.config import PushTarget, SimConfig, default_push_secrets
from ingest.simulator.state import Simulator
from ingest.times import format_query_time, parse_query_time

__all__ = ["build_app"]

_JSON = "application/json;charset=utf-8"
_LOOPBACK = {"127.0.0.1", "::1", "localhost", "testclient"}
_MAX_STATUS_IDS = 50
_MAX_STATS_DAYS = 366


def _sim(request: Request) -> Simulator:
    return request.app.state.sim


def _envelope(
    sim: Simulator, secrets: Secrets, ret: int, msg: str, data: Any, status: int = 200
) -> Response:
    body = build_response(ret, msg, data, secrets)
    if sim.faults.bad_signature:
        body["Sig"] = sign("not-the-sig-key!", str(body["Ret"]), body["Msg"], body["Data"])
    return Response(body, status_code=status, media_type=_JSON)


def _int_param(data: dict, name: str, default: int, low: int = 1) -> int:
    value = data.get(name, default)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ProtocolError(Ret.BUSINESS, f"{name} must be an integer") from None
    if number < low:
        raise ProtocolError(Ret.BUSINESS, f"{name} must be at least {low}")
    return number


def _date_param(data: dict, name: str) -> date:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ProtocolError(Ret.BUSINESS, f"{name} is required (yyyy-MM-dd)")
    try:
        return datetime.strptime(value.strip()[:10], "%Y-%m-%d").date()
    except ValueError:
        raise ProtocolError(Ret.BUSINESS, f"{name} must be yyyy-MM-dd") from None


# ---------------------------------------------------------------------- interfaces


def _query_token(sim: Simulator, op: SimOperator, caller: str, data: dict) -> dict:
    expected_caller = sim.config.platform_id_for(op.operator_id)
    claimed = str(data.get("OperatorID") or "")
    out = {"OperatorID": claimed or caller, "SuccStat": 1, "AccessToken": "", "TokenAvailableTime": 0}
    if claimed != expected_caller or caller != expected_caller:
        return {**out, "FailReason": 1}
    if data.get("OperatorSecret") != op.operator_secret:
        return {**out, "FailReason": 2}
    token = sim.issue_token(op, caller)
    return {**out, "SuccStat": 0, "AccessToken": token,
            "TokenAvailableTime": sim.config.token_ttl, "FailReason": 0}


def _query_stations_info(sim: Simulator, op: SimOperator, data: dict) -> dict:
    last = parse_query_time(data.get("LastQueryTime"))
    page_no = _int_param(data, "PageNo", 1)
    page_size = min(_int_param(data, "PageSize", 10), sim.config.max_page_size)
    return sim.stations_page(op, last, page_no, page_size)


def _query_station_status(sim: Simulator, op: SimOperator, data: dict) -> dict:
    ids = data.get("StationIDs")
    if isinstance(ids, str):
        ids = [ids]
    if not isinstance(ids, list) or not ids:
        raise ProtocolError(Ret.BUSINESS, "StationIDs must be a non-empty array")
    if len(ids) > _MAX_STATUS_IDS:
        raise ProtocolError(Ret.BUSINESS, f"at most {_MAX_STATUS_IDS} StationIDs per request, got {len(ids)}")
    infos = []
    for sid in ids:
        station = op.station(str(sid))
        if station is not None:
            infos.append(station.status_info())
    return {"Total": len(infos), "StationStatusInfos": infos}


def _query_station_stats(sim: Simulator, op: SimOperator, data: dict) -> dict:
    sid = data.get("StationID")
    station = op.station(str(sid)) if sid not in (None, "") else None
    if station is None:
        raise ProtocolError(Ret.BUSINESS, f"unknown StationID {str(sid)[:20]!r}")
    start, end = _date_param(data, "StartTime"), _date_param(data, "EndTime")
    if end < start:
        raise ProtocolError(Ret.BUSINESS, "EndTime is before StartTime")
    if (end - start).days + 1 > _MAX_STATS_DAYS:
        raise ProtocolError(Ret.BUSINESS, f"at most {_MAX_STATS_DAYS} days per request")
    return {"StationStats": sim.station_stats(op, station, start, end)}


def _query_equip_business_policy(sim: Simulator, op: SimOperator, data: dict) -> dict:
    return sim.business.query_policy(op, data)


_INTERFACES = {
    "query_stations_info": _query_stations_info,
    "query_station_status": _query_station_status,
    "query_station_stats": _query_station_stats,
    "query_equip_business_policy": _query_equip_business_policy,
}


@post("/{operator_id:str}/evcs/{version:str}/{interface:str}", status_code=200)
async def serve_interface(
    request: Request, operator_id: FromPath[str], version: FromPath[str], interface: FromPath[str]
) -> Response:
    sim = _sim(request)
    op = sim.operators.get(operator_id)
    if op is None:
        raise NotFoundException(f"no simulated operator {operator_id[:20]!r}")
    secrets = sim.served_secrets(op)
    faults = sim.faults
    if faults.fail_next > 0:
        faults.fail_next -= 1
        return _envelope(sim, secrets, Ret.BUSY, "system busy, retry later", None)
    if faults.error_rate > 0 and sim.fault_rng.random() < faults.error_rate:
        return _envelope(sim, secrets, Ret.SYSTEM, "system error (simulated)", None, status=500)
    implemented = interface in _INTERFACES and (
        interface != "query_equip_business_policy" or sim.business.serves_policies(op.operator_id))
    if interface != "query_token" and not implemented:
        return _envelope(sim, secrets, Ret.BUSINESS, f"unknown interface {interface[:40]!r}", None, status=404)

    expected_caller = sim.config.platform_id_for(op.operator_id)

    def lookup(caller: str) -> Secrets | None:
        # query_token verifies any caller so that an unknown one gets FailReason 1 rather
        # than an envelope error; the other interfaces serve the platform only.
        if interface == "query_token" or caller == expected_caller:
            return sim.served_secrets(op, caller)
        return None

    try:
        parsed = parse_request(await request.body(), lookup, window_seconds=sim.config.clock_window_seconds)
        data = parsed.data if isinstance(parsed.data, dict) else {}
        if interface == "query_token":
            out = _query_token(sim, op, parsed.operator_id, data)
        else:
            sim.check_token(op, request.headers.get("authorization"))
            out = _INTERFACES[interface](sim, op, data)
    except ProtocolError as exc:
        return _envelope(sim, secrets, exc.ret, exc.msg, None)
    if interface == "query_stations_info":
        if faults.slow_seconds > 0:
            await asyncio.sleep(faults.slow_seconds)
        if faults.mutate_during_sync:
            sim.mutate_for_sync(op)
    return _envelope(sim, secrets, Ret.OK, "请求成功", out)


# ---------------------------------------------------------------------- admin


def _loopback_only(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    sim: Simulator = connection.app.state.sim
    host = connection.client.host if connection.client else ""
    if not sim.config.admin_remote and host not in _LOOPBACK:
        raise PermissionDeniedException("the simulator admin API answers loopback clients only")


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@get("/_admin/operators", guards=[_loopback_only])
async def admin_operators(request: Request) -> list[dict[str, Any]]:
    sim = _sim(request)
    base = _base_url(request)
    return [sim.operator_summary(op, base) for op in sim.operators.values()]


@post("/_admin/push-targets", guards=[_loopback_only], status_code=200)
async def admin_push_targets(request: Request) -> dict[str, Any]:
    """Body: one target or a list: {operator_id, base_url (null removes), operator_secret,
    data_secret, data_iv, sig_secret}; an ``operator_id`` of ``"*"`` means every operator.
    Omitted secrets default to the deterministic push secrets."""
    sim = _sim(request)
    body = await request.json()
    items = body if isinstance(body, list) else body.get("targets", [body]) if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise ValidationException("expected a push target object or a list of them")
    for item in items:
        if not isinstance(item, dict) or not item.get("operator_id"):
            raise ValidationException("each push target needs operator_id")
        ids = list(sim.operators) if item["operator_id"] == "*" else [item["operator_id"]]
        for op_id in ids:
            op_or_404(sim, op_id)
            base = item.get("base_url", item.get("push_base_url"))
            if base is None:
                sim.set_push_target(op_id, None)
                continue
            try:
                target = PushTarget.from_dict(
                    op_id, {**item, "operator_id": None}, default_push_secrets(sim.config.seed, op_id)
                )
            except ValueError as exc:
                raise ValidationException(str(exc)) from None
            sim.set_push_target(op_id, target)
    return {op_id: t.as_dict() for op_id, t in sim.push_targets.items()}


@get("/_admin/faults", guards=[_loopback_only])
async def admin_get_faults(request: Request) -> dict[str, Any]:
    return _sim(request).faults.as_dict()


@post("/_admin/faults", guards=[_loopback_only], status_code=200)
async def admin_set_faults(request: Request) -> dict[str, Any]:
    """Merge the given faults; ``{"reset": true}`` clears all first. The per-operator policy
    faults take effect at once (``policy_over_cap`` stations get or lose their absurd fee)."""
    sim = _sim(request)
    body = await request.json()
    if not isinstance(body, dict):
        raise ValidationException("expected a JSON object of faults")
    body = dict(body)
    for key in ("policy_over_cap", "policy_unsupported"):
        unknown = [str(op) for op in (body.get(key) or ()) if op not in sim.operators]
        if unknown:
            raise ValidationException(f"{key}: no simulated operator {', '.join(unknown)[:60]}")
    if body.pop("reset", False):
        sim.faults.update({k: type(v)() for k, v in sim.faults.as_dict().items()})
    try:
        sim.faults.update(body)
    except (ValueError, TypeError) as exc:
        raise ValidationException(str(exc)) from None
    sim.business.apply_policy_faults()
    return sim.faults.as_dict()


@post("/_admin/live", guards=[_loopback_only], status_code=200)
async def admin_live(request: Request) -> dict[str, Any]:
    """Change ``changes_per_second``, ``info_change_probability``,
    ``policy_change_probability`` or ``push_orders`` while running."""
    sim = _sim(request)
    body = await request.json()
    if isinstance(body, dict) and "push_orders" in body:
        sim.config.push_orders = bool(body["push_orders"])
    for key in ("changes_per_second", "info_change_probability", "policy_change_probability"):
        if isinstance(body, dict) and key in body:
            try:
                value = float(body[key])
            except (TypeError, ValueError):
                raise ValidationException(f"{key} must be a number") from None
            if value < 0:
                raise ValidationException(f"{key} must not be negative")
            setattr(sim.config, key, value)
    return {key: getattr(sim.config, key) for key in (
        "changes_per_second", "info_change_probability", "policy_change_probability", "push_orders")}


@post("/_admin/tick", guards=[_loopback_only], status_code=200)
async def admin_tick(request: Request) -> dict[str, Any]:
    """Body (all optional): {"changes": 1, "operator_id": null, "info_changes": 0,
    "new_stations": 0, "wait": false}. ``wait`` waits (≤10 s) for the resulting pushes."""
    sim = _sim(request)
    body = await json_body(request)
    op_id = body.get("operator_id")
    if op_id:
        op_or_404(sim, op_id)
    try:
        n = int(body.get("changes", body.get("n", 1)))
        n_info = int(body.get("info_changes", 0))
        n_new = int(body.get("new_stations", 0))
    except (TypeError, ValueError):
        raise ValidationException("changes, info_changes and new_stations must be integers") from None
    if min(n, n_info, n_new) < 0 or max(n, n_info, n_new) > 100000:
        raise ValidationException("counts must be between 0 and 100000")
    changed = sim.apply_status_changes(n, op_id)
    infos = [x for x in (sim.apply_info_change(op_id) for _ in range(n_info)) if x]
    infos += [sim.add_station(op_id) for _ in range(n_new)]
    drained = await sim.drain_pushes(float(body.get("wait_seconds", 10))) if body.get("wait") else None
    return {"changed": changed, "info_changed": infos, "pushes_drained": drained}


@get("/_admin/stations/{operator_id:str}", guards=[_loopback_only])
async def admin_station_list(request: Request, operator_id: FromPath[str]) -> list[dict[str, Any]]:
    op = op_or_404(_sim(request), operator_id)
    return [{"StationID": s.station_id, "ChangedAt": format_query_time(s.changed_at)} for s in op.stations]


@get("/_admin/stations/{operator_id:str}/{station_id:str}", guards=[_loopback_only])
async def admin_station(
    request: Request, operator_id: FromPath[str], station_id: FromPath[str]
) -> dict[str, Any]:
    sim = _sim(request)
    op = op_or_404(sim, operator_id)
    station = op.station(station_id)
    if station is None:
        raise NotFoundException(f"no station {station_id[:20]!r} at {operator_id}")
    return sim.station_truth(op, station)


@get("/_admin/pushes", guards=[_loopback_only])
async def admin_pushes(request: Request) -> dict[str, Any]:
    return _sim(request).push_stats()


@get("/_admin/health")
async def admin_health(request: Request) -> dict[str, Any]:
    sim = _sim(request)
    return {"ok": True, "operators": len(sim.operators),
            "stations": sum(len(op.stations) for op in sim.operators.values())}


def build_app(config: SimConfig | None = None) -> Litestar:
    """The simulator as a Litestar app; the city is generated here, changes start on startup."""
    config = config or SimConfig()
    sim = Simulator(config)

    async def on_startup(app: Litestar) -> None:
        sim.start()

    async def on_shutdown(app: Litestar) -> None:
        await sim.stop()

    app = Litestar(
        route_handlers=[
            serve_interface, admin_operators, admin_push_targets, admin_get_faults,
            admin_set_faults, admin_live, admin_tick, admin_station_list, admin_station,
            admin_pushes, admin_health,
            Router("/_admin", route_handlers=BUSINESS_ROUTES, guards=[_loopback_only]),
        ],
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        debug=False,
    )
    app.state.sim = sim
    return app
