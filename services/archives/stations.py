"""Station archives (B2): list with statistics, add/edit (save or submit), submit, withdraw,
delete, and the regulators' review."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from services.archives import validation as v
from services.archives.common import Actor, Page, batch_move, move, page_of, query_int, scoped_get
from services.archives.workflows import STATION
from services.errors import BadRequest, Conflict
from services.models.archives import FacilityArchive, StationArchive
from services.models.core import Operator

__all__ = ["StationFilter", "create_or_update", "delete", "describe", "get", "list_page", "stats",
           "submit_errors", "transition", "transition_many"]

EDITABLE_COLUMNS = tuple(f.name for f in v.STATION_FIELDS)


def describe(st: StationArchive) -> str:
    return f"站点档案 {st.station_id} {st.name or ''}".strip()


@dataclass
class StationFilter:
    state: str | None = None
    q: str | None = None
    district: int | None = None
    station_type: int | None = None
    operator_pk: int | None = None  # regulators only
    page: int = 1
    per_page: int = 20

    @classmethod
    def from_query(cls, q: Any) -> StationFilter:
        state = q.get("state") or None
        return cls(state=state if state in STATION.states else None, q=(q.get("q") or "").strip() or None,
                   district=query_int(q, "district"), station_type=query_int(q, "station_type"),
                   operator_pk=query_int(q, "operator"), page=query_int(q, "page") or 1,
                   per_page=min(query_int(q, "per_page") or 20, 200))


def _scope(stmt: Any, actor: Actor, f: StationFilter, *, with_state: bool = True) -> Any:
    if actor.is_operator:
        stmt = stmt.where(StationArchive.operator_pk == actor.operator_pk)
    elif f.operator_pk:
        stmt = stmt.where(StationArchive.operator_pk == f.operator_pk)
    if with_state and f.state:
        stmt = stmt.where(StationArchive.state == f.state)
    if f.q:
        like = f"%{f.q}%"
        stmt = stmt.where(or_(StationArchive.name.ilike(like), StationArchive.station_id.ilike(like),
                              StationArchive.address.ilike(like)))
    if f.district:
        stmt = stmt.where(StationArchive.district_adcode == f.district)
    if f.station_type is not None:
        stmt = stmt.where(StationArchive.station_type == f.station_type)
    return stmt


def list_page(session: Session, actor: Actor, f: StationFilter) -> Page:
    stmt = _scope(select(StationArchive), actor, f).order_by(StationArchive.updated_at.desc(), StationArchive.id.desc())
    return page_of(session, stmt, f.page, f.per_page)


def stats(session: Session, actor: Actor, f: StationFilter | None = None) -> dict[str, Any]:
    """Counts by state (over the other filters), the total, and facilities per state."""
    f = f or StationFilter()
    stmt = _scope(select(StationArchive.state, func.count()), actor, f, with_state=False).group_by(StationArchive.state)
    by_state = {s: 0 for s in STATION.states if s != "deleted"}
    by_state.update({s: n for s, n in session.execute(stmt)})
    return {"total": sum(by_state.values()), "by_state": by_state}


def get(session: Session, actor: Actor, pk: int, *, lock: bool = False) -> StationArchive:
    return scoped_get(session, StationArchive, pk, actor, what="站点档案 / station archive", lock=lock)


def _raw_of(st: StationArchive) -> dict[str, Any]:
    return {name: getattr(st, name) for name in EDITABLE_COLUMNS}


def submit_errors(session: Session, st: StationArchive, city_adcode: int = 440400) -> dict[str, str]:
    """Every problem that keeps ``st`` from being submitted (empty when it may go)."""
    districts = v.district_choices(session, city_adcode)
    clean, errors = v.parse_fields(v.STATION_FIELDS, _raw_of(st), submit=True, districts=districts,
                                   key="station_id")
    if not errors:
        errors.update(v.check_position(session, clean, city_adcode=city_adcode))
    return errors


def _operator_id(session: Session, operator_pk: int) -> str:
    return session.execute(select(Operator.operator_id).where(Operator.id == operator_pk)).scalar_one()


def create_or_update(session: Session, actor: Actor, raw: dict[str, Any], *, pk: int | None = None,
                     submit: bool = False, city_adcode: int = 440400) -> StationArchive:
    """Save (or save and submit) a station archive from form/Excel values.

    Raises ``BadRequest`` with ``details`` = {field: message} when a value does not parse, or on
    submit when anything required is missing or the position is wrong; nothing is stored then.
    """
    if not actor.is_operator:
        raise BadRequest("only operators keep station archives")
    districts = v.district_choices(session, city_adcode)
    clean, errors = v.parse_fields(v.STATION_FIELDS, raw, submit=submit, districts=districts, key="station_id")
    if not errors:
        errors.update(v.check_position(session, clean, city_adcode=city_adcode))
    if pk is None:
        st = None
        if clean.get("station_id"):
            st = session.execute(select(StationArchive).where(
                StationArchive.operator_pk == actor.operator_pk,
                StationArchive.station_id == clean["station_id"])).scalar_one_or_none()
            if st is not None:
                errors.setdefault("station_id", f"充电站编码{clean['station_id']}已存在 / StationID already exists")
    else:
        st = get(session, actor, pk)
        STATION.next_state(st.state, "edit", actor.role)
        if clean.get("station_id") and clean["station_id"] != st.station_id:
            dup = session.execute(select(StationArchive.id).where(
                StationArchive.operator_pk == actor.operator_pk, StationArchive.station_id == clean["station_id"],
                StationArchive.id != st.id)).first()
            if dup:
                errors.setdefault("station_id", f"充电站编码{clean['station_id']}已存在 / StationID already exists")
    if errors:
        raise BadRequest("请修正标出的字段 / please correct the marked fields", details=errors)
    if st is None:
        st = StationArchive(operator_pk=actor.operator_pk, station_id=clean["station_id"], state="pending")
        session.add(st)
    apply_clean(session, st, clean)
    session.flush()
    if submit:
        move(session, STATION, st, "submit", actor)
    return st


def apply_clean(session: Session, st: StationArchive, clean: dict[str, Any]) -> None:
    for name in EDITABLE_COLUMNS:
        if name in clean:
            setattr(st, name, clean[name])
    if not st.equipment_owner_id:
        st.equipment_owner_id = _operator_id(session, st.operator_pk)
    st.geom = v.wgs84_point({"lng_gcj02": st.lng_gcj02, "lat_gcj02": st.lat_gcj02})


def transition(session: Session, actor: Actor, pk: int, action: str, reason: str | None = None) -> StationArchive:
    st = get(session, actor, pk, lock=True)
    if action == "submit":
        STATION.next_state(st.state, action, actor.role)
        errors = submit_errors(session, st)
        if errors:
            raise BadRequest("档案信息不完整或有误，不能提交审核 / the archive cannot be submitted yet", details=errors)
    move(session, STATION, st, action, actor, reason=reason, describe=describe, link="/backoffice/stations")
    return st


def transition_many(session: Session, actor: Actor, pks: list[int], action: str, reason: str | None = None) -> int:
    rows = [get(session, actor, pk, lock=True) for pk in sorted(dict.fromkeys(pks))]

    def precheck(st: StationArchive) -> str | None:
        if action == "submit" and submit_errors(session, st):
            return "档案信息不完整 / incomplete"
        return None

    batch_move(session, STATION, rows, action, actor, name_of=lambda s: s.station_id, reason=reason,
               describe=describe, link="/backoffice/stations", precheck=precheck)
    return len(rows)


def delete(session: Session, actor: Actor, pk: int) -> None:
    st = get(session, actor, pk)
    STATION.next_state(st.state, "delete", actor.role)
    used = session.execute(select(FacilityArchive.equipment_id).where(FacilityArchive.station_archive_pk == st.id)
                           .limit(6)).scalars().all()
    if used:
        raise Conflict(f"该站点档案下还有设施档案（{', '.join(used[:5])}{'…' if len(used) > 5 else ''}），请先删除设施档案 / "
                       "facility archives still belong to this station")
    move(session, STATION, st, "delete", actor)
    session.delete(st)
    session.flush()
