"""Facility archives (B4): statistics, add several piles of one station at once, edit, delete
(never-approved only), check application, interconnection application, withdraw, batches, and the
regulators' review of both applications."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from services.archives import validation as v
from services.archives.common import Actor, Page, batch_move, move, page_of, query_int, scoped_get
from services.archives.workflows import FACILITY
from services.errors import BadRequest, Conflict
from services.models.archives import FacilityArchive, ReportArchive, StationArchive
from services.models.core import Operator
from services.models.feed import FeedEndpoint

__all__ = ["FacilityFilter", "create_many", "delete", "describe", "get", "list_page", "operator_interconnected",
           "stats", "submit_errors", "transition", "transition_many", "update"]

COLUMNS = tuple(f.name for f in v.FACILITY_FIELDS if f.kind != "ref")
FORM_FIELDS = tuple(f for f in v.FACILITY_FIELDS if f.kind != "ref")


def describe(fa: FacilityArchive) -> str:
    return f"设施档案 {fa.equipment_id}"


@dataclass
class FacilityFilter:
    state: str | None = None
    q: str | None = None
    station_pk: int | None = None
    equipment_type: int | None = None
    district: int | None = None
    operator_pk: int | None = None
    page: int = 1
    per_page: int = 20

    @classmethod
    def from_query(cls, q: Any) -> FacilityFilter:
        state = q.get("state") or None
        return cls(state=state if state in FACILITY.states else None, q=(q.get("q") or "").strip() or None,
                   station_pk=query_int(q, "station"), equipment_type=query_int(q, "equipment_type"),
                   district=query_int(q, "district"), operator_pk=query_int(q, "operator"),
                   page=query_int(q, "page") or 1, per_page=min(query_int(q, "per_page") or 20, 200))


def _scope(stmt: Any, actor: Actor, f: FacilityFilter, *, with_state: bool = True) -> Any:
    stmt = stmt.select_from(FacilityArchive).join(StationArchive, StationArchive.id == FacilityArchive.station_archive_pk)
    if actor.is_operator:
        stmt = stmt.where(FacilityArchive.operator_pk == actor.operator_pk)
    elif f.operator_pk:
        stmt = stmt.where(FacilityArchive.operator_pk == f.operator_pk)
    if with_state and f.state:
        stmt = stmt.where(FacilityArchive.state == f.state)
    if f.q:
        like = f"%{f.q}%"
        stmt = stmt.where(or_(FacilityArchive.equipment_id.ilike(like), FacilityArchive.equipment_name.ilike(like),
                              StationArchive.name.ilike(like), StationArchive.station_id.ilike(like)))
    if f.station_pk:
        stmt = stmt.where(FacilityArchive.station_archive_pk == f.station_pk)
    if f.equipment_type is not None:
        stmt = stmt.where(FacilityArchive.equipment_type == f.equipment_type)
    if f.district:
        stmt = stmt.where(StationArchive.district_adcode == f.district)
    return stmt


def list_page(session: Session, actor: Actor, f: FacilityFilter) -> Page:
    stmt = _scope(select(FacilityArchive), actor, f).order_by(FacilityArchive.updated_at.desc(),
                                                              FacilityArchive.id.desc())
    return page_of(session, stmt, f.page, f.per_page)


def stats(session: Session, actor: Actor, f: FacilityFilter | None = None) -> dict[str, Any]:
    """Total, by state, by equipment type and by district (the other filters apply, not the state)."""
    f = f or FacilityFilter()
    by_state = {s: 0 for s in FACILITY.states if s != "deleted"}
    by_state.update(dict(session.execute(_scope(select(FacilityArchive.state, func.count()), actor, f,
                                                with_state=False).group_by(FacilityArchive.state)).all()))
    by_type = dict(session.execute(_scope(select(FacilityArchive.equipment_type, func.count()), actor, f)
                                   .group_by(FacilityArchive.equipment_type)).all())
    by_district = dict(session.execute(_scope(select(StationArchive.district_adcode, func.count()), actor, f)
                                       .group_by(StationArchive.district_adcode)).all())
    power = session.execute(_scope(select(func.coalesce(func.sum(FacilityArchive.power_kw), 0)), actor, f)).scalar()
    return {"total": sum(by_state.values()), "by_state": by_state, "by_type": by_type, "by_district": by_district,
            "power_kw": float(power or 0)}


def get(session: Session, actor: Actor, pk: int, *, lock: bool = False) -> FacilityArchive:
    return scoped_get(session, FacilityArchive, pk, actor, what="设施档案 / facility archive", lock=lock)


def operator_interconnected(session: Session, operator_pk: int) -> bool:
    return bool(session.execute(select(FeedEndpoint.interconnected).join(
        Operator, Operator.operator_id == FeedEndpoint.operator_id).where(Operator.id == operator_pk)).scalar())


def _station(session: Session, actor: Actor, station_pk: Any) -> StationArchive:
    try:
        pk = int(station_pk)
    except (TypeError, ValueError):
        raise BadRequest("请选择充电站 / choose the station",
                         details={"station": "请选择充电站 / choose the station"}) from None
    st = session.get(StationArchive, pk)
    if st is None or st.operator_pk != actor.operator_pk:
        raise BadRequest("请选择本运营商的站点档案 / choose one of your station archives",
                         details={"station": "请选择本运营商的站点档案 / choose one of your station archives"})
    return st


def _report_pk(session: Session, actor: Actor, value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        pk = int(value)
    except (TypeError, ValueError):
        raise ValueError("请选择报告档案 / choose a report archive") from None
    r = session.get(ReportArchive, pk)
    if r is None or r.operator_pk != actor.operator_pk:
        raise ValueError("请选择本运营商的报告档案 / choose one of your report archives")
    return pk


def _parse_row(session: Session, actor: Actor, raw: dict[str, Any], *, submit: bool) -> tuple[dict[str, Any], dict[str, str]]:
    clean, errors = v.parse_fields(FORM_FIELDS, raw, submit=submit, key="equipment_id")
    try:
        clean["report_archive_pk"] = _report_pk(session, actor, raw.get("report_archive_pk"))
        if submit and clean["report_archive_pk"] is None:
            errors["report_archive_pk"] = "提交审核须关联报告档案 / a report archive is required to submit"
    except ValueError as exc:
        errors["report_archive_pk"] = str(exc)
    if not errors and clean.get("lng_gcj02") is not None:
        errors.update(v.check_position(session, clean, district_field=None))
    if (clean.get("lng_gcj02") is None) != (clean.get("lat_gcj02") is None):
        errors["lat_gcj02"] = "经纬度须同时填写 / give both longitude and latitude"
    return clean, errors


def submit_errors(session: Session, fa: FacilityArchive) -> dict[str, str]:
    raw: dict[str, Any] = {name: getattr(fa, name) for name in COLUMNS}
    raw["report_archive_pk"] = fa.report_archive_pk
    actor = Actor(None, "", "operator", fa.operator_pk)
    _, errors = _parse_row(session, actor, raw, submit=True)
    return errors


def _apply(fa: FacilityArchive, st: StationArchive, clean: dict[str, Any]) -> None:
    for name in COLUMNS:
        if name in clean:
            setattr(fa, name, clean[name])
    fa.report_archive_pk = clean.get("report_archive_pk")
    fa.station_archive_pk = st.id
    lng, lat = fa.lng_gcj02, fa.lat_gcj02
    if lng is None or lat is None:
        lng, lat = st.lng_gcj02, st.lat_gcj02
    fa.geom = v.wgs84_point({"lng_gcj02": lng, "lat_gcj02": lat})


def create_many(session: Session, actor: Actor, station_pk: Any, rows: list[dict[str, Any]], *,
                submit: bool = False) -> list[FacilityArchive]:
    """Add several facilities of one station. All rows are checked first; errors are returned as
    ``{"<row index>.<field>": message}`` and nothing is stored unless every row is valid."""
    if not actor.is_operator:
        raise BadRequest("only operators keep facility archives")
    st = _station(session, actor, station_pk)
    rows = [r for r in rows if any(str(val or "").strip() for k, val in r.items() if k != "report_archive_pk")]
    if not rows:
        raise BadRequest("请至少填写一个设施 / fill in at least one facility", details={"rows": "empty"})
    errors: dict[str, str] = {}
    cleans = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(rows):
        clean, errs = _parse_row(session, actor, raw, submit=submit)
        eid = clean.get("equipment_id")
        if eid:
            if eid in seen:
                errs.setdefault("equipment_id", f"与第{seen[eid] + 1}行的设备编码重复 / duplicate of row {seen[eid] + 1}")
            seen[eid] = i
            if session.execute(select(FacilityArchive.id).where(FacilityArchive.operator_pk == actor.operator_pk,
                                                                FacilityArchive.equipment_id == eid)).first():
                errs.setdefault("equipment_id", f"设备编码{eid}已存在 / EquipmentID exists already")
        errors.update({f"{i}.{k}": m for k, m in errs.items()})
        cleans.append(clean)
    if errors:
        raise BadRequest("请修正标出的字段，未保存任何设施 / please correct the marked fields; nothing was saved",
                         details=errors)
    out = []
    for clean in cleans:
        fa = FacilityArchive(operator_pk=actor.operator_pk, equipment_id=clean["equipment_id"], state="pending",
                             station_archive_pk=st.id)
        _apply(fa, st, clean)
        session.add(fa)
        out.append(fa)
    session.flush()
    if submit:
        for fa in out:
            move(session, FACILITY, fa, "submit", actor)
    return out


def update(session: Session, actor: Actor, pk: int, station_pk: Any, raw: dict[str, Any], *,
           submit: bool = False) -> FacilityArchive:
    fa = get(session, actor, pk)
    FACILITY.next_state(fa.state, "edit", actor.role)
    st = _station(session, actor, station_pk)
    clean, errors = _parse_row(session, actor, raw, submit=submit)
    eid = clean.get("equipment_id")
    if eid and eid != fa.equipment_id and session.execute(select(FacilityArchive.id).where(
            FacilityArchive.operator_pk == fa.operator_pk, FacilityArchive.equipment_id == eid,
            FacilityArchive.id != fa.id)).first():
        errors.setdefault("equipment_id", f"设备编码{eid}已存在 / EquipmentID exists already")
    if errors:
        raise BadRequest("请修正标出的字段 / please correct the marked fields", details=errors)
    _apply(fa, st, clean)
    session.flush()
    if submit:
        move(session, FACILITY, fa, "submit", actor)
    return fa


def _precheck(session: Session, action: str) -> Any:
    def check(fa: FacilityArchive) -> str | None:
        if action == "submit" and submit_errors(session, fa):
            return "档案信息不完整 / incomplete"
        if action == "apply_ic" and not operator_interconnected(session, fa.operator_pk):
            return "运营商系统尚未完成互联互通 / the operator's system is not interconnected yet"
        return None

    return check


def transition(session: Session, actor: Actor, pk: int, action: str, reason: str | None = None) -> FacilityArchive:
    fa = get(session, actor, pk, lock=True)
    FACILITY.next_state(fa.state, action, actor.role)
    if actor.is_operator:
        problem = _precheck(session, action)(fa)
        if problem:
            details = submit_errors(session, fa) if action == "submit" else None
            cls = BadRequest if action == "submit" else Conflict
            raise cls(f"{fa.equipment_id}：{problem}", details=details)
    move(session, FACILITY, fa, action, actor, reason=reason, describe=describe, link="/backoffice/facilities")
    return fa


def transition_many(session: Session, actor: Actor, pks: list[int], action: str, reason: str | None = None) -> int:
    rows = [get(session, actor, pk, lock=True) for pk in sorted(dict.fromkeys(pks))]
    batch_move(session, FACILITY, rows, action, actor, name_of=lambda f: f.equipment_id, reason=reason,
               describe=describe, link="/backoffice/facilities",
               precheck=_precheck(session, action) if actor.is_operator else None)
    return len(rows)


def delete(session: Session, actor: Actor, pk: int) -> None:
    fa = get(session, actor, pk)
    FACILITY.next_state(fa.state, "delete", actor.role)
    if fa.ever_approved:
        raise Conflict(f"{fa.equipment_id}曾通过档案审核，不能删除 / an archive that was once approved cannot be deleted")
    move(session, FACILITY, fa, "delete", actor)
    session.delete(fa)
    session.flush()


def counts_for_overview(session: Session, operator_pk: int) -> dict[str, Any]:
    """B1: archive counts, interconnected facilities and their stations, check and IC states."""
    rows = dict(session.execute(select(FacilityArchive.state, func.count()).where(
        FacilityArchive.operator_pk == operator_pk).group_by(FacilityArchive.state)).all())
    ic_stations = session.execute(select(func.count(func.distinct(FacilityArchive.station_archive_pk))).where(
        FacilityArchive.operator_pk == operator_pk, FacilityArchive.state == "interconnected")).scalar_one()
    st_rows = dict(session.execute(select(StationArchive.state, func.count()).where(
        StationArchive.operator_pk == operator_pk).group_by(StationArchive.state)).all())
    return {
        "station_archives": sum(st_rows.values()), "station_states": st_rows,
        "facility_archives": sum(rows.values()), "facility_states": rows,
        "interconnected_facilities": rows.get("interconnected", 0), "interconnected_stations": ic_stations,
        # facility check = the archive application; interconnection check = the IC application
        "check": {"pending": rows.get("pending", 0), "under_review": rows.get("under_review", 0),
                  "rejected": rows.get("rejected", 0),
                  "approved": sum(rows.get(s, 0) for s in ("approved", "ic_review", "interconnected"))},
        "ic_check": {"approved": rows.get("approved", 0), "ic_review": rows.get("ic_review", 0),
                     "interconnected": rows.get("interconnected", 0)},
    }

