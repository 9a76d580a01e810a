"""Interconnection configuration (B5) of an operator's system, in three steps: the domain side.

1. Docking data: the operator's base URL, the OperatorID it issued to us and its secrets go to
   ``feed_endpoints`` (through :func:`services.feed.endpoints.register_operator`); our own docking
   data for the operator (inbound credentials, shown once and re-generatable, and push URLs);
   the station archives to associate.
2. Joint debugging: each interface of the operator's system called live, showing the decrypted
   request and response, Ret and pass/fail; the last push received. When all pass the operator
   submits the system check.
3. The check (in a background thread): a full pull compared with the archives (:func:`compare`).
   Pass → ``feed_endpoints.interconnected``, the operator's stations show on the map and its
   facilities may apply for interconnection; fail → the report lists what to fix.

The calls to the operator's system (step 2's live calls, step 3's pull and its background job)
speak T/CEC 102 and live on the feed's side, in :mod:`ingest.debugging`; this module holds the
application, the forms, the comparison and what a result means, and imports nothing from
``ingest``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from geo import gcj02
from geo.crs import geodesic_distance_m
from services.archives.common import SYSTEM_ACTOR, Actor, move, now
from services.archives.workflows import INTERCONNECTION
from services.errors import BadRequest, Conflict
from services.feed.endpoints import random_secret, register_operator
from services.messaging.notify import notify_operator
from services.models.archives import FacilityArchive, InterconnectionApplication, StationArchive
from services.models.core import Operator
from services.models.feed import FeedEndpoint
from services.settings import Settings
from services.stations.summary import bump_version

__all__ = ["CHECKED_FACILITY_STATES", "DEBUG_INTERFACES", "PUSH_CHECK", "DueCheck", "all_debug_pass", "application",
           "associate", "associated_station_ids", "checking_operators", "compare", "docking_view", "due_check",
           "ensure_editable", "operator_endpoint", "pull_failed_report", "push_urls", "reconfigure", "record_check",
           "record_debug", "regenerate_inbound", "save_docking", "submit_check"]

DEBUG_INTERFACES = ("query_token", "query_stations_info", "query_station_status", "query_station_stats")
PUSH_CHECK = "notification_stationStatus"
CHECKED_FACILITY_STATES = ("under_review", "approved", "ic_review", "interconnected")


def _operator(session: Session, operator_pk: int) -> Operator:
    return session.get(Operator, operator_pk)


def _endpoint(session: Session, operator_id: str) -> FeedEndpoint | None:
    return session.execute(select(FeedEndpoint).where(FeedEndpoint.operator_id == operator_id)).scalar_one_or_none()


def operator_endpoint(session: Session, operator_pk: int) -> tuple[Operator, FeedEndpoint | None]:
    """The operator and its feed endpoint (None before the docking data is saved)."""
    op = _operator(session, operator_pk)
    return op, _endpoint(session, op.operator_id)


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


def ensure_editable(app: InterconnectionApplication) -> None:
    """Refuse changes while the check runs (409)."""
    if app.state == "checking":
        raise Conflict(f"系统核对进行中（{INTERCONNECTION.label(app.state)}），请等待结果 / "
                       "the system check is running; wait for its result")


def save_docking(session: Session, actor: Actor, form: dict[str, Any]) -> dict[str, str] | None:
    """Store the operator's docking data. Returns our inbound credentials in full when they were
    just created (the only time they are shown), else None."""
    op = _operator(session, actor.operator_pk)
    app = application(session, actor.operator_pk, lock=True)
    ensure_editable(app)
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
    new = {k: random_secret() for k in (
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
    ensure_editable(app)
    wanted = set(station_pks)
    rows = list(session.execute(select(StationArchive).where(StationArchive.operator_pk == actor.operator_pk)).scalars())
    bad = [r.station_id for r in rows if r.id in wanted and r.state != "approved"]
    if bad:
        raise Conflict(f"只能关联审核通过的站点档案：{', '.join(bad[:10])} / only approved station archives can be associated")
    for r in rows:
        r.associated_for_interconnection = r.id in wanted
    return len([r for r in rows if r.id in wanted])


def associated_station_ids(session: Session, operator_pk: int) -> list[str]:
    """StationIDs of the operator's archives associated for interconnection, in order."""
    return list(session.execute(select(StationArchive.station_id).where(
        StationArchive.operator_pk == operator_pk, StationArchive.associated_for_interconnection)
        .order_by(StationArchive.station_id)).scalars())


def record_debug(app: InterconnectionApplication, interface: str, result: dict[str, Any]) -> None:
    """Keep the latest joint-debugging result of one interface (what step 2 shows)."""
    results = dict(app.debug_results or {})
    results[interface] = result
    app.debug_results = results


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


def pull_failed_report(message: str, stations: int, facilities: int, max_distance_m: float) -> dict[str, Any]:
    """The check report when the full pull itself failed (shaped like :func:`compare`'s)."""
    return {"passed": False, "differences": [{"kind": "pull_failed",
                                              "message": f"无法拉取运营商系统的全部数据：{message}",
                                              "message_en": f"the full pull failed: {message}"}],
            "warnings": [], "stations_checked": stations, "facilities_checked": facilities,
            "pulled_stations": 0, "max_distance_m": max_distance_m}


@dataclass
class DueCheck:
    """What a due check compares: the operator's endpoint and its associated archives."""

    operator_id: str
    endpoint: FeedEndpoint
    stations: list[StationArchive]
    facilities: list[FacilityArchive]


def due_check(session: Session, operator_pk: int) -> DueCheck | None:
    """The check to run now, or None when none is due (the application is not 'checking', or
    there is no endpoint to pull from)."""
    op = _operator(session, operator_pk)
    ep = _endpoint(session, op.operator_id)
    app = application(session, operator_pk)
    if app.state != "checking" or ep is None:
        return None
    stations = list(session.execute(select(StationArchive).where(StationArchive.operator_pk == operator_pk,
                                                                 StationArchive.associated_for_interconnection)
                                    .order_by(StationArchive.station_id)).scalars())
    facilities = list(session.execute(select(FacilityArchive).where(
        FacilityArchive.operator_pk == operator_pk,
        FacilityArchive.station_archive_pk.in_([st.id for st in stations] or [0]),
        FacilityArchive.state.in_(CHECKED_FACILITY_STATES)).order_by(FacilityArchive.equipment_id)).scalars())
    return DueCheck(op.operator_id, ep, stations, facilities)


def record_check(session: Session, operator_pk: int, operator_id: str, report: dict[str, Any]) -> bool:
    """Store the check report and move the application (pass → the operator is interconnected and
    its stations show; fail → it fixes and resubmits), notifying the operator. False, and nothing
    written, when the application is no longer 'checking'."""
    app = application(session, operator_pk, lock=True)
    if app.state != "checking":
        return False
    app.check_report = report
    app.checked_at = now()
    move(session, INTERCONNECTION, app, "pass" if report["passed"] else "fail", SYSTEM_ACTOR)
    if report["passed"]:
        session.execute(update(FeedEndpoint).where(FeedEndpoint.operator_id == operator_id)
                        .values(interconnected=True, enabled=True))
        session.execute(text("UPDATE stations SET interconnected = true, updated_at = now() "
                             "WHERE operator_id = :o AND NOT interconnected"), {"o": operator_id})
        bump_version(session)
        notify_operator(session, operator_pk, "系统互联互通核对通过",
                        "运营商系统与市平台的互联互通核对已通过，设施档案现在可以申请互联互通。",
                        link="/backoffice/interconnection")
    else:
        n = len(report["differences"])
        notify_operator(session, operator_pk, "系统互联互通核对未通过",
                        f"核对发现{n}处不一致，请查看核对报告并修正后重新提交。", link="/backoffice/interconnection")
    return True


def checking_operators(session: Session) -> list[int]:
    """Operators whose check is under way (left so by a restart when no job runs it)."""
    return list(session.execute(select(InterconnectionApplication.operator_pk).where(
        InterconnectionApplication.state == "checking")).scalars())


def reconfigure(session: Session, actor: Actor) -> InterconnectionApplication:
    app = application(session, actor.operator_pk, lock=True)
    move(session, INTERCONNECTION, app, "reconfigure", actor)
    app.step = 1
    return app

