"""Interconnection configuration (B5) of an operator's system, in three steps.

1. Docking data: the operator's base URL, the OperatorID it issued to us and its secrets go to
   ``feed_endpoints`` (through the feed's ``ingest.endpoints.register_operator``); our own docking
   data for the operator (inbound credentials, shown once and re-generatable, and push URLs);
   the station archives to associate.
2. Joint debugging: each interface of the operator's system called live, showing the decrypted
   request and response, Ret and pass/fail; the last push received. When all pass the operator
   submits the system check.
3. The check (:func:`run_check`, in a background thread): a full pull compared with the
   archives. Pass → ``feed_endpoints.interconnected``, the operator's stations show on the map and
   its facilities may apply for interconnection; fail → the report lists what to fix.
"""

from __future__ import annotations

import json
import logging
import secrets as _secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from geo import gcj02
from geo.crs import geodesic_distance_m
from ingest.client import Endpoint, FeedClient, FeedError
from ingest.endpoints import register_operator
from ingest.protocol import (
    ProtocolError,
    Secrets,
    build_request,
    decrypt,
    parse_response,
    stations_from_page,
    status_infos_from,
)
from services.archives.common import SYSTEM_ACTOR, Actor, move, now
from services.archives.workflows import INTERCONNECTION
from services.errors import BadRequest, Conflict
from services.messaging.notify import notify_operator
from services.models.archives import FacilityArchive, InterconnectionApplication, StationArchive
from services.models.core import Operator
from services.models.feed import FeedEndpoint
from services.settings import Settings
from services.stations.summary import bump_version

__all__ = ["DEBUG_INTERFACES", "application", "associate", "compare", "debug_call", "docking_view",
           "push_urls", "regenerate_inbound", "run_check", "save_docking", "start_check", "submit_check"]

log = logging.getLogger("zhcharge.archives.interconnection")

DEBUG_INTERFACES = ("query_token", "query_stations_info", "query_station_status", "query_station_stats")
PUSH_CHECK = "notification_stationStatus"
CHECKED_FACILITY_STATES = ("under_review", "approved", "ic_review", "interconnected")
_ALPHABET = string.ascii_letters + string.digits


def _operator(session: Session, operator_pk: int) -> Operator:
    return session.get(Operator, operator_pk)


def _endpoint(session: Session, operator_id: str) -> FeedEndpoint | None:
    return session.execute(select(FeedEndpoint).where(FeedEndpoint.operator_id == operator_id)).scalar_one_or_none()


def application(session: Session, operator_pk: int, *, lock: bool = False) -> InterconnectionApplication:
    """The operator's application row (created at step 1 on first use)."""
    stmt = select(InterconnectionApplication).where(InterconnectionApplication.operator_pk == operator_pk)
    if lock:
        stmt = stmt.with_for_update()
    app = session.execute(stmt).scalar_one_or_none()
    if app is None:
        session.execute(text("INSERT INTO interconnection_applications (operator_pk) VALUES (:pk) "
                             "ON CONFLICT (operator_pk) DO NOTHING"), {"pk": operator_pk})
        app = session.execute(stmt).scalar_one()
    return app


def push_urls(settings: Settings) -> dict[str, str]:
    base = f"{str(settings.app.public_url).rstrip('/')}/evcs/{settings.feed.api_version}"
    return {"base": str(settings.app.public_url).rstrip("/"),
            "query_token": f"{base}/query_token",
            "notification_stationStatus": f"{base}/notification_stationStatus",
            "notification_stationInfo": f"{base}/notification_stationInfo"}


def _mask(value: str | None) -> str:
    return "" if not value else value[:2] + "•" * max(0, len(value) - 4) + value[-2:]


def docking_view(session: Session, settings: Settings, operator_pk: int) -> dict[str, Any]:
    """Everything the B5 page shows; secrets masked (they are shown in full only once)."""
    op = _operator(session, operator_pk)
    ep = _endpoint(session, op.operator_id)
    app = application(session, operator_pk)
    stations = list(session.execute(select(StationArchive).where(StationArchive.operator_pk == operator_pk)
                                    .order_by(StationArchive.station_id)).scalars())
    return {
        "operator": op, "endpoint": ep, "application": app,
        "theirs": None if ep is None else {
            "base_url": ep.base_url, "api_version": ep.api_version, "platform_operator_id": ep.platform_operator_id,
            "operator_secret": _mask(ep.operator_secret), "data_secret": _mask(ep.data_secret),
            "data_iv": _mask(ep.data_iv), "sig_secret": _mask(ep.sig_secret)},
        "ours": None if ep is None else {
            "operator_id": op.operator_id, "operator_secret": _mask(ep.inbound_operator_secret),
            "data_secret": _mask(ep.inbound_data_secret), "data_iv": _mask(ep.inbound_data_iv),
            "sig_secret": _mask(ep.inbound_sig_secret)},
        "urls": push_urls(settings),
        "stations": stations,
        "associated": [s for s in stations if s.associated_for_interconnection],
        "debug": app.debug_results or {},
        "all_pass": all_debug_pass(app, ep),
        "last_push_at": ep.last_push_at if ep else None,
        "interconnected": bool(ep and ep.interconnected),
    }


def _editable(app: InterconnectionApplication) -> None:
    if app.state == "checking":
        raise Conflict(f"系统核对进行中（{INTERCONNECTION.label(app.state)}），请等待结果 / "
                       "the system check is running; wait for its result")


def save_docking(session: Session, actor: Actor, form: dict[str, Any]) -> dict[str, str] | None:
    """Store the operator's docking data. Returns our inbound credentials in full when they were
    just created (the only time they are shown), else None."""
    op = _operator(session, actor.operator_pk)
    app = application(session, actor.operator_pk, lock=True)
    _editable(app)
    ep = _endpoint(session, op.operator_id)
    fields = {k: str(form.get(k) or "").strip() for k in ("base_url", "platform_operator_id", "operator_secret",
                                                            "data_secret", "data_iv", "sig_secret", "api_version")}
    if ep is not None:  # blank secrets keep the stored ones (they are never shown again)
        for k in ("operator_secret", "data_secret", "data_iv", "sig_secret"):
            if not fields[k]:
                fields[k] = getattr(ep, k) or ""
    missing = {k: "必填 / required" for k in ("base_url", "platform_operator_id", "operator_secret", "data_secret",
                                             "data_iv", "sig_secret") if not fields[k]}
    if missing:
        raise BadRequest("请填写全部对接信息 / fill in every docking field", details=missing)
    try:
        creds, created = register_operator(
            session.connection(), operator_id=op.operator_id, name=op.name, base_url=fields["base_url"],
            platform_operator_id=fields["platform_operator_id"], operator_secret=fields["operator_secret"],
            data_secret=fields["data_secret"], data_iv=fields["data_iv"], sig_secret=fields["sig_secret"],
            api_version=fields["api_version"] or "v20160701", interconnected=bool(ep and ep.interconnected))
    except BadRequest as exc:
        raise BadRequest(exc.message, details={exc.param or "base_url": exc.message}) from None
    session.expire_all()
    app = application(session, actor.operator_pk)
    app.docking_saved_at = now()
    app.debug_results = {}  # new docking data: debug again
    if app.step < 2:
        app.step = 2 if app.state == "configuring" else app.step
    return creds.as_dict() if created else None


def regenerate_inbound(session: Session, actor: Actor) -> dict[str, str]:
    """New inbound credentials for the operator's pushes; returned in full this once."""
    op = _operator(session, actor.operator_pk)
    ep = _endpoint(session, op.operator_id)
    if ep is None:
        raise Conflict("请先保存对接信息 / save the docking data first")
    new = {k: "".join(_secrets.choice(_ALPHABET) for _ in range(16)) for k in (
        "inbound_operator_secret", "inbound_data_secret", "inbound_data_iv", "inbound_sig_secret")}
    for k, val in new.items():
        setattr(ep, k, val)
    session.flush()
    return {"operator_id": op.operator_id, "operator_secret": new["inbound_operator_secret"],
            "data_secret": new["inbound_data_secret"], "data_iv": new["inbound_data_iv"],
            "sig_secret": new["inbound_sig_secret"]}


def associate(session: Session, actor: Actor, station_pks: list[int]) -> int:
    """Mark exactly these station archives (approved ones of the operator) as associated."""
    app = application(session, actor.operator_pk)
    _editable(app)
    wanted = set(station_pks)
    rows = list(session.execute(select(StationArchive).where(StationArchive.operator_pk == actor.operator_pk)).scalars())
    bad = [r.station_id for r in rows if r.id in wanted and r.state != "approved"]
    if bad:
        raise Conflict(f"只能关联审核通过的站点档案：{', '.join(bad[:10])} / only approved station archives can be associated")
    for r in rows:
        r.associated_for_interconnection = r.id in wanted
    return len([r for r in rows if r.id in wanted])


# ------------------------------------------------------------------------------------ step 2


@dataclass
class DebugResult:
    interface: str
    ok: bool
    ret: int | None
    msg: str
    request: Any
    response: Any
    url: str
    elapsed_ms: int
    at: str
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _secrets_of(ep: FeedEndpoint) -> Secrets:
    return Secrets(ep.platform_operator_id or "", ep.operator_secret or "", ep.data_secret or "", ep.data_iv or "",
                   ep.sig_secret or "")


def _trim(obj: Any, limit: int = 6000) -> Any:
    """Keep stored debug output small: long lists are cut, the text is capped."""
    if isinstance(obj, dict):
        out = {}
        for k, val in obj.items():
            if isinstance(val, list) and len(val) > 3:
                out[k] = [_trim(x) for x in val[:3]] + [f"… {len(val) - 3} more"]
            else:
                out[k] = _trim(val)
        obj = out
    if len(json.dumps(obj, ensure_ascii=False, default=str)) > limit and isinstance(obj, dict):
        return {"_truncated": json.dumps(obj, ensure_ascii=False, default=str)[:limit] + " …"}
    return obj


def _raw_call(ep: FeedEndpoint, interface: str, data: dict, token: str | None,
              transport: httpx.BaseTransport | None, timeout_s: float) -> tuple[dict, Any, str]:
    """One POST with the decrypted view: (request view, response view, url)."""
    s = _secrets_of(ep)
    env = build_request(s.operator_id, data, s, seq=1)
    url = f"{(ep.base_url or '').rstrip('/')}/evcs/{ep.api_version}/{interface}"
    req_view = {"url": url, "headers": {"Authorization": "Bearer …"} if token else {}, "envelope": env, "Data": data}
    with httpx.Client(timeout=timeout_s, transport=transport) as http:
        resp = http.post(url, json=env, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        body = resp.json()
    except ValueError:
        return req_view, {"http_status": resp.status_code, "body": resp.text[:500]}, url
    view: dict[str, Any] = {"http_status": resp.status_code, "envelope": {k: body.get(k) for k in ("Ret", "Msg", "Sig")}}
    try:
        parsed = parse_response(body, s)
        view.update({"Ret": int(parsed.ret), "Msg": parsed.msg, "Data": parsed.data, "verified": True})
    except ProtocolError as exc:
        view.update({"Ret": body.get("Ret"), "Msg": body.get("Msg"), "verified": False, "error": exc.msg})
        try:
            if body.get("Data"):
                view["Data (unverified)"] = decrypt(body["Data"], s.data_secret, s.data_iv)
        except Exception:  # noqa: BLE001 - a debugging view, any failure is shown as such
            pass
    return req_view, view, url


def _token(ep: FeedEndpoint, transport: httpx.BaseTransport | None, timeout_s: float) -> tuple[str | None, Any]:
    req, resp, _ = _raw_call(ep, "query_token", {"OperatorID": ep.platform_operator_id,
                                                 "OperatorSecret": ep.operator_secret}, None, transport, timeout_s)
    data = resp.get("Data") if isinstance(resp, dict) else None
    if resp.get("Ret") == 0 and isinstance(data, dict) and str(data.get("SuccStat")) == "0" and data.get("AccessToken"):
        return str(data["AccessToken"]), (req, resp)
    return None, (req, resp)


def debug_call(session: Session, settings: Settings, actor: Actor, interface: str, *,
               transport: httpx.BaseTransport | None = None) -> dict[str, Any]:
    """Call one interface of the operator's system now; store and return the result."""
    if interface not in DEBUG_INTERFACES and interface != PUSH_CHECK:
        raise BadRequest("unknown interface", param="interface")
    op = _operator(session, actor.operator_pk)
    ep = _endpoint(session, op.operator_id)
    app = application(session, actor.operator_pk, lock=True)
    _editable(app)
    if ep is None or not ep.base_url:
        raise Conflict("请先在第一步保存对接信息 / save the docking data in step 1 first")
    at = now().isoformat()
    if interface == PUSH_CHECK:
        ok = ep.last_push_at is not None
        res = DebugResult(interface, ok, None, "", None, {"last_push_at": ep.last_push_at.isoformat() if ok else None},
                          push_urls(settings)["notification_stationStatus"], 0, at,
                          note="已收到推送 / a push was received" if ok else
                          "尚未收到推送：请用平台提供的凭证推送一次充电接口状态 / no push received yet")
        return _save_debug(app, res)
    t0 = time.monotonic()
    timeout = settings.feed.timeout_s
    associated = list(session.execute(select(StationArchive.station_id).where(
        StationArchive.operator_pk == actor.operator_pk, StationArchive.associated_for_interconnection)
        .order_by(StationArchive.station_id)).scalars())
    try:
        if interface == "query_token":
            token, (req, resp) = _token(ep, transport, timeout)
            ok, note = token is not None, ""
            if not ok and isinstance(resp.get("Data"), dict):
                note = {"1": "FailReason 1：OperatorID（平台）不被认可 / unknown OperatorID",
                        "2": "FailReason 2：OperatorSecret错误 / wrong OperatorSecret"}.get(
                    str(resp["Data"].get("FailReason")), "")
        else:
            token, (treq, tresp) = _token(ep, transport, timeout)
            if token is None:
                res = DebugResult(interface, False, tresp.get("Ret"), str(tresp.get("Msg") or ""), treq, tresp, treq["url"],
                                  int((time.monotonic() - t0) * 1000), at,
                                  note="获取token失败，请先调通query_token / query_token failed")
                return _save_debug(app, res)
            if interface == "query_stations_info":
                data = {"LastQueryTime": "", "PageNo": 1, "PageSize": 10}
            elif interface == "query_station_status":
                data = {"StationIDs": associated[:50] or ["0"]}
            else:
                end = date.today() - timedelta(days=1)
                data = {"StationID": associated[0] if associated else "0",
                        "StartTime": (end - timedelta(days=6)).isoformat(), "EndTime": end.isoformat()}
            req, resp, _ = _raw_call(ep, interface, data, token, transport, timeout)
            ok = resp.get("Ret") == 0 and resp.get("verified") is True
            note = ""
            if ok:
                try:
                    if interface == "query_stations_info":
                        infos = stations_from_page(resp.get("Data") or {})
                        note = f"本页{len(infos)}个充电站 / {len(infos)} stations on page 1"
                    elif interface == "query_station_status":
                        infos = status_infos_from(resp.get("Data") or {})
                        note = f"{len(infos)}个充电站的状态 / status of {len(infos)} stations"
                        if not associated:
                            ok, note = False, "请先在第一步关联充电站 / associate stations in step 1 first"
                    elif not associated:
                        ok, note = False, "请先在第一步关联充电站 / associate stations in step 1 first"
                except ProtocolError as exc:
                    ok, note = False, f"Data格式不符合协议：{exc.msg} / Data does not follow the protocol"
    except (httpx.HTTPError, OSError) as exc:
        res = DebugResult(interface, False, None, "", None, {"error": f"{type(exc).__name__}: {exc}"[:300]},
                          f"{(ep.base_url or '').rstrip('/')}/evcs/{ep.api_version}/{interface}",
                          int((time.monotonic() - t0) * 1000), at,
                          note="无法连接运营商系统 / the operator's system cannot be reached")
        return _save_debug(app, res)
    res = DebugResult(interface, bool(ok), resp.get("Ret"), str(resp.get("Msg") or ""), _trim(req), _trim(resp),
                      req["url"], int((time.monotonic() - t0) * 1000), at, note)
    return _save_debug(app, res)


def _save_debug(app: InterconnectionApplication, res: DebugResult) -> dict[str, Any]:
    results = dict(app.debug_results or {})
    results[res.interface] = res.as_dict()
    app.debug_results = results
    return res.as_dict()


def all_debug_pass(app: InterconnectionApplication, ep: FeedEndpoint | None) -> bool:
    r = app.debug_results or {}
    return bool(ep is not None and all(r.get(i, {}).get("ok") for i in DEBUG_INTERFACES) and ep.last_push_at)


def submit_check(session: Session, actor: Actor) -> InterconnectionApplication:
    """Step 2 → 3: every interface passed and a push arrived; start the check."""
    op = _operator(session, actor.operator_pk)
    ep = _endpoint(session, op.operator_id)
    app = application(session, actor.operator_pk, lock=True)
    INTERCONNECTION.next_state(app.state, "submit_check", actor.role)
    if ep is None:
        raise Conflict("请先保存对接信息 / save the docking data first")
    failing = [i for i in DEBUG_INTERFACES if not (app.debug_results or {}).get(i, {}).get("ok")]
    if not ep.last_push_at:
        failing.append(PUSH_CHECK)
    if failing:
        raise Conflict(f"以下接口尚未联调通过：{', '.join(failing)} / these interfaces have not passed: {', '.join(failing)}",
                       details={"failing": failing})
    n = session.execute(select(StationArchive.id).where(StationArchive.operator_pk == actor.operator_pk,
                                                        StationArchive.associated_for_interconnection)).first()
    if not n:
        raise Conflict("请先关联至少一个充电站 / associate at least one station first")
    move(session, INTERCONNECTION, app, "submit_check", actor)
    app.step = 3
    app.submitted_at = now()
    app.check_report = None
    app.attempts = (app.attempts or 0) + 1
    return app


# ------------------------------------------------------------------------------------ step 3


def _dist(a: tuple[float, float], b: tuple[float, float]) -> float:
    wa = gcj02.gcj02_to_wgs84(*a)
    wb = gcj02.gcj02_to_wgs84(*b)
    return geodesic_distance_m(wa[0], wa[1], wb[0], wb[1])


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def compare(stations: list[StationArchive], facilities: list[FacilityArchive], pulled: list[dict],
            max_distance_m: float) -> dict[str, Any]:
    """The check report: the associated archives against the operator's pulled StationInfos."""
    by_station = {str(s.get("StationID")): s for s in pulled if isinstance(s, dict)}
    equipment_at: dict[str, tuple[str, dict]] = {}
    for sid, s in by_station.items():
        for e in s.get("EquipmentInfos") or []:
            if isinstance(e, dict) and e.get("EquipmentID") is not None:
                equipment_at[str(e["EquipmentID"])] = (sid, e)
    diffs: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []

    def diff(kind: str, zh: str, en: str, **kw: Any) -> None:
        diffs.append({"kind": kind, "message": zh, "message_en": en, **kw})

    archived_eids = {f.equipment_id for f in facilities}
    for st in stations:
        feed = by_station.get(st.station_id)
        if feed is None:
            diff("missing_station", f"充电站 {st.station_id}（{st.name or ''}）在运营商系统数据中不存在",
                 f"station {st.station_id} is missing from the operator's data", station_id=st.station_id)
            continue
        lng, lat = _num(feed.get("StationLng")), _num(feed.get("StationLat"))
        if st.lng_gcj02 is not None and lng is not None and lat is not None:
            d = _dist((st.lng_gcj02, st.lat_gcj02), (lng, lat))
            if d > max_distance_m:
                diff("station_position", f"充电站 {st.station_id} 的坐标相差 {d:.0f} 米（允许 {max_distance_m:.0f} 米）",
                     f"station {st.station_id} is {d:.0f} m from its archived position (max {max_distance_m:.0f} m)",
                     station_id=st.station_id, distance_m=round(d, 1),
                     archive=[st.lng_gcj02, st.lat_gcj02], feed=[lng, lat])
        elif lng is None or lat is None:
            diff("station_position", f"充电站 {st.station_id} 未上报有效坐标", f"station {st.station_id} reports no position",
                 station_id=st.station_id)
        for e in feed.get("EquipmentInfos") or []:
            eid = str(e.get("EquipmentID")) if isinstance(e, dict) else None
            if eid and eid not in archived_eids:
                warnings.append({"kind": "unarchived_equipment",
                                 "message": f"充电站 {st.station_id} 上报的设备 {eid} 没有设施档案",
                                 "message_en": f"equipment {eid} of station {st.station_id} has no facility archive",
                                 "station_id": st.station_id, "equipment_id": eid})
    station_ids = {s.id: s.station_id for s in stations}
    for fa in facilities:
        sid = station_ids.get(fa.station_archive_pk)
        if sid not in by_station:
            continue  # the station itself is reported missing
        found = equipment_at.get(fa.equipment_id)
        if found is None:
            diff("missing_equipment", f"设施 {fa.equipment_id}（充电站 {sid}）在运营商系统数据中不存在",
                 f"equipment {fa.equipment_id} (station {sid}) is missing from the operator's data",
                 station_id=sid, equipment_id=fa.equipment_id)
            continue
        feed_sid, e = found
        if feed_sid != sid:
            diff("equipment_station", f"设施 {fa.equipment_id} 在档案中属于充电站 {sid}，运营商系统中属于 {feed_sid}",
                 f"equipment {fa.equipment_id} belongs to station {feed_sid} in the feed, {sid} in the archive",
                 station_id=sid, equipment_id=fa.equipment_id)
        power = _num(e.get("Power"))
        if fa.power_kw is not None and (power is None or abs(float(fa.power_kw) - power) > 0.05):
            diff("power", f"设施 {fa.equipment_id} 的额定功率不一致：档案 {fa.power_kw} kW，系统 {power} kW",
                 f"equipment {fa.equipment_id}: power {fa.power_kw} kW archived, {power} kW reported",
                 station_id=sid, equipment_id=fa.equipment_id, archive=float(fa.power_kw), feed=power)
        n_conn = len(e.get("ConnectorInfos") or [])
        if fa.connector_count is not None and fa.connector_count != n_conn:
            diff("connectors", f"设施 {fa.equipment_id} 的充电接口数量不一致：档案 {fa.connector_count}，系统 {n_conn}",
                 f"equipment {fa.equipment_id}: {fa.connector_count} connectors archived, {n_conn} reported",
                 station_id=sid, equipment_id=fa.equipment_id, archive=fa.connector_count, feed=n_conn)
        elng, elat = _num(e.get("EquipmentLng")), _num(e.get("EquipmentLat"))
        if fa.lng_gcj02 is not None and fa.lat_gcj02 is not None and elng is not None and elat is not None:
            d = _dist((fa.lng_gcj02, fa.lat_gcj02), (elng, elat))
            if d > max_distance_m:
                diff("equipment_position", f"设施 {fa.equipment_id} 的坐标相差 {d:.0f} 米（允许 {max_distance_m:.0f} 米）",
                     f"equipment {fa.equipment_id} is {d:.0f} m from its archived position",
                     station_id=sid, equipment_id=fa.equipment_id, distance_m=round(d, 1))
    return {"passed": not diffs, "differences": diffs, "warnings": warnings[:200],
            "stations_checked": len(stations), "facilities_checked": len(facilities),
            "pulled_stations": len(by_station), "max_distance_m": max_distance_m}


def _pull_all(ep: FeedEndpoint, settings: Settings, transport: httpx.BaseTransport | None) -> list[dict]:
    endpoint = Endpoint(ep.operator_id, ep.base_url or "", ep.api_version, _secrets_of(ep))
    out: list[dict] = []
    with FeedClient(endpoint, timeout_s=settings.feed.timeout_s, retries=settings.feed.retries,
                    backoff_s=settings.feed.backoff_s, deadline=time.monotonic() + settings.feed.operator_budget_s,
                    transport=transport) as client:
        for _page, infos in client.iter_station_pages(settings.feed.page_size):
            out.extend(infos)
    return out


def run_check(db: Any, settings: Settings, operator_pk: int, *, transport: httpx.BaseTransport | None = None,
              after_pass: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Step 3: pull everything, compare with the archives, record the report, move the state."""
    with db.session() as s:
        op = _operator(s, operator_pk)
        ep = _endpoint(s, op.operator_id)
        app = application(s, operator_pk)
        if app.state != "checking" or ep is None:
            return app.check_report or {}
        stations = list(s.execute(select(StationArchive).where(StationArchive.operator_pk == operator_pk,
                                                               StationArchive.associated_for_interconnection)
                                  .order_by(StationArchive.station_id)).scalars())
        facilities = list(s.execute(select(FacilityArchive).where(
            FacilityArchive.operator_pk == operator_pk,
            FacilityArchive.station_archive_pk.in_([st.id for st in stations] or [0]),
            FacilityArchive.state.in_(CHECKED_FACILITY_STATES)).order_by(FacilityArchive.equipment_id)).scalars())
        s.expunge_all()
    started = now()
    try:
        pulled = _pull_all(ep, settings, transport)
        report = compare(stations, facilities, pulled, settings.supervision.archive_max_distance_m)
    except (FeedError, httpx.HTTPError, OSError) as exc:
        msg = exc.message if isinstance(exc, FeedError) else f"{type(exc).__name__}"
        report = {"passed": False, "differences": [{"kind": "pull_failed",
                                                    "message": f"无法拉取运营商系统的全部数据：{msg}",
                                                    "message_en": f"the full pull failed: {msg}"}],
                  "warnings": [], "stations_checked": len(stations), "facilities_checked": len(facilities),
                  "pulled_stations": 0, "max_distance_m": settings.supervision.archive_max_distance_m}
    report["started_at"] = started.isoformat()
    report["finished_at"] = now().isoformat()
    with db.session() as s:
        app = application(s, operator_pk, lock=True)
        if app.state != "checking":
            return app.check_report or {}
        app.check_report = report
        app.checked_at = now()
        move(s, INTERCONNECTION, app, "pass" if report["passed"] else "fail", SYSTEM_ACTOR)
        if report["passed"]:
            s.execute(update(FeedEndpoint).where(FeedEndpoint.operator_id == op.operator_id)
                      .values(interconnected=True, enabled=True))
            s.execute(text("UPDATE stations SET interconnected = true, updated_at = now() "
                           "WHERE operator_id = :o AND NOT interconnected"), {"o": op.operator_id})
            bump_version(s)
            notify_operator(s, operator_pk, "系统互联互通核对通过",
                            "运营商系统与市平台的互联互通核对已通过，设施档案现在可以申请互联互通。",
                            link="/backoffice/interconnection")
        else:
            n = len(report["differences"])
            notify_operator(s, operator_pk, "系统互联互通核对未通过",
                            f"核对发现{n}处不一致，请查看核对报告并修正后重新提交。", link="/backoffice/interconnection")
    if report["passed"] and after_pass is not None:
        try:
            after_pass(op.operator_id)
        except Exception:  # noqa: BLE001 - the scheduled sync will pick the operator up anyway
            log.exception("sync after a passed check failed for %s", op.operator_id)
    return report


_RUNNING: dict[int, threading.Thread] = {}
_RUNNING_LOCK = threading.Lock()


def _sync_now(db: Any, settings: Settings) -> Callable[[str], None]:
    def run(operator_id: str) -> None:
        from ingest.sync import load_endpoints, sync_operator

        with db.engine.connect() as conn:
            eps = load_endpoints(conn, operator_id)
        for ep in eps:
            sync_operator(db.engine, settings, ep, full=True)

    return run


def start_check(db: Any, settings: Settings, operator_pk: int, *, sync_after: bool = True) -> threading.Thread:
    """Run :func:`run_check` in a background thread (one per operator at a time)."""
    with _RUNNING_LOCK:
        running = _RUNNING.get(operator_pk)
        if running is not None and running.is_alive():
            return running

        def target() -> None:
            try:
                run_check(db, settings, operator_pk, after_pass=_sync_now(db, settings) if sync_after else None)
            except Exception:  # noqa: BLE001 - a failed job leaves the state 'checking' for the next start
                log.exception("interconnection check of operator %s failed", operator_pk)

        t = threading.Thread(target=target, name=f"ic-check-{operator_pk}", daemon=True)
        _RUNNING[operator_pk] = t
        t.start()
        return t


def resume_checks(db: Any, settings: Settings) -> list[int]:
    """Start the checks left in 'checking' (e.g. by a restart)."""
    with db.session() as s:
        pks = list(s.execute(select(InterconnectionApplication.operator_pk).where(
            InterconnectionApplication.state == "checking")).scalars())
    for pk in pks:
        start_check(db, settings, pk)
    return pks


def reconfigure(session: Session, actor: Actor) -> InterconnectionApplication:
    app = application(session, actor.operator_pk, lock=True)
    move(session, INTERCONNECTION, app, "reconfigure", actor)
    app.step = 1
    return app

