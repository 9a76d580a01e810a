"""Back-office archives (B2–B4) and the regulators' review queues under /admin/. Server-rendered
pages; every POST is a form with the CSRF field. (B5, interconnection set-up, is
:mod:`portal_site.routes.interconnection`.)

Operators only ever reach their own rows (the services scope every query and answer 404 for
other operators' ids); regulators see all. Buttons come from the workflow tables
(``Workflow.allowed``); an illegal move is a 409 whose message names the current state.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Body
from litestar.response import File, Redirect, Template
from sqlalchemy import select

from portal_site import auth
from services import workflow as wfmod
from services.archives import documents, excel, facilities as fac, reports as rep
from services.archives import stations as sta
from services.archives import validation as v
from services.archives.common import Actor
from services.archives.workflows import ACTION_LABELS, FACILITY, INTERCONNECTION, STATION
from services.db import Database
from services.errors import AppError, BadRequest, NotFound
from services.models.archives import FacilityArchive, ReportArchive, StationArchive
from services.models.core import Operator
from services.settings import Settings
from services.stations.enums import CONNECTOR_TYPES, CONSTRUCTIONS, EQUIPMENT_TYPES, NATIONAL_STANDARDS, STATION_STATUSES, STATION_TYPES
from services.params import id_list, int_param, page_param

__all__ = ["ROUTES"]

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
Multipart = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
UPLOAD_LIMIT = 24 * 1024 * 1024  # above our own limits, so our messages win

OP = [auth.require_operator]
REG = [auth.require_regulator]


def require_owner_or_regulator(connection: ASGIConnection, _: BaseRouteHandler | None = None) -> None:
    user = auth.current_user(connection)
    if user is None:
        raise NotAuthorizedException("请先登录 / please log in")
    if user.is_regulator:
        return
    auth.require_operator(connection, _)


def _actor(request: Request) -> Actor:
    return Actor.of(auth.current_user(request))


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(x) for x in value]
    return [str(value)]


def _ids(value: Any) -> list[int]:
    return id_list(_list(value))


def _lang(request: Request) -> str:
    from portal_site.i18n import lang_of

    return lang_of(request)


def _msg(request: Request, text: str) -> str:
    """A bilingual 'zh / en' message in the page language."""
    if " / " not in text:
        return text
    zh, _, en = text.partition(" / ")
    return en if _lang(request) == "en" else zh


def _errors_for(request: Request, exc: AppError) -> dict[str, str]:
    details = exc.details if isinstance(exc.details, dict) else {}
    return {k: _msg(request, str(val)) for k, val in details.items() if isinstance(val, str)}


def _redirect(path: str, **params: Any) -> Redirect:
    q = {k: val for k, val in params.items() if val not in (None, "")}
    return Redirect(path + ("?" + urlencode(q) if q else ""), status_code=303)


def _back(request: Request, default: str) -> str:
    """The list page to return to (same site only)."""
    back = request.query_params.get("back") or ""
    return back if back.startswith("/") and not back.startswith("//") else default


LABELS = {
    "station_types": STATION_TYPES, "station_statuses": STATION_STATUSES, "constructions": CONSTRUCTIONS,
    "equipment_types": EQUIPMENT_TYPES, "connector_types": CONNECTOR_TYPES, "national_standards": NATIONAL_STANDARDS,
    "yes_no": v.YES_NO,
}


def pretty(obj: Any) -> str:
    """JSON for people: indented, Chinese kept as is (the debugging views)."""
    return json.dumps(obj, ensure_ascii=False, indent=2, default=str)


def _ctx(request: Request, s: Any, settings: Settings, **kw: Any) -> dict[str, Any]:
    """Context every archives page gets: workflows, vocabularies, districts, the actor."""
    kw.setdefault("flash", request.query_params.get("ok") and _msg(request, request.query_params["ok"]))
    base = {"STATION": STATION, "FACILITY": FACILITY, "INTERCONNECTION": INTERCONNECTION,
            "ACTIONS": ACTION_LABELS, "L": LABELS, "actor": _actor(request),
            "districts": v.district_choices(s, settings.app.city_adcode),
            "STATION_FIELDS": v.STATION_FIELDS, "FACILITY_FIELDS": v.FACILITY_FIELDS,
            "query": dict(request.query_params), "pretty": pretty}
    base.update(kw)
    return base


def _operators(s: Any) -> dict[int, Operator]:
    return {o.id: o for o in s.execute(select(Operator).order_by(Operator.name)).scalars()}


# ============================================================================ B2 station archives


def _station_list_ctx(request: Request, s: Any, settings: Settings, *, admin: bool = False) -> dict[str, Any]:
    actor = _actor(request)
    f = sta.StationFilter.from_query(request.query_params)
    if admin and "state" not in request.query_params:
        f.state = "under_review"
    page = sta.list_page(s, actor, f)
    return _ctx(request, s, settings, page=page, stats=sta.stats(s, actor, f), f=f, admin=admin,
                operators=_operators(s) if admin else {})


@get("/backoffice/stations", guards=OP, sync_to_thread=True, include_in_schema=False)
def station_list(request: Request, db: Database, settings: Settings) -> Template:
    with db.session() as s:
        return Template("archives/stations_list.html", context=_station_list_ctx(request, s, settings))


def _station_form(request: Request, s: Any, settings: Settings, st: StationArchive | None, form: dict[str, Any],
                  errors: dict[str, str], status: int = 200, flash: str | None = None) -> Template:
    return Template("archives/station_form.html", status_code=status, context=_ctx(
        request, s, settings, st=st, form=form, errors=errors, flash=flash, flash_error=bool(flash)))


@get("/backoffice/stations/new", guards=OP, sync_to_thread=True, include_in_schema=False)
def station_new(request: Request, db: Database, settings: Settings) -> Template:
    with db.session() as s:
        return _station_form(request, s, settings, None, {}, {})


def _station_save(request: Request, db: Database, settings: Settings, data: dict[str, Any],
                  pk: int | None) -> Template | Redirect:
    op = data.get("op", "save")
    if op == "cancel":
        return _redirect("/backoffice/stations")
    actor = _actor(request)
    try:
        with db.session() as s:
            st = sta.create_or_update(s, actor, data, pk=pk, submit=op == "submit", city_adcode=settings.app.city_adcode)
            sid = st.station_id
    except BadRequest as exc:
        with db.session() as s:
            st = sta.get(s, actor, pk) if pk else None
            return _station_form(request, s, settings, st, data, _errors_for(request, exc), exc.status_code,
                                 _msg(request, exc.message))
    done = "已提交审核 / submitted for review" if op == "submit" else "已保存 / saved"
    return _redirect("/backoffice/stations", ok=f"{sid}：{done}")


@post("/backoffice/stations", guards=OP, sync_to_thread=True, include_in_schema=False)
def station_create(request: Request, db: Database, settings: Settings, data: Form) -> Template | Redirect:
    return _station_save(request, db, settings, data, None)


@get("/backoffice/stations/{pk:int}/edit", guards=OP, sync_to_thread=True, include_in_schema=False)
def station_edit(request: Request, db: Database, settings: Settings, pk: int) -> Template:
    with db.session() as s:
        st = sta.get(s, _actor(request), pk)
        STATION.next_state(st.state, "edit", "operator")
        form = {f.name: getattr(st, f.name) for f in v.STATION_FIELDS}
        return _station_form(request, s, settings, st, form, {})


@post("/backoffice/stations/{pk:int}", guards=OP, sync_to_thread=True, include_in_schema=False)
def station_update(request: Request, db: Database, settings: Settings, pk: int, data: Form) -> Template | Redirect:
    return _station_save(request, db, settings, data, pk)


def _detail_events(s: Any, wf: Any, pk: int) -> list[Any]:
    return wfmod.events_for(s, wf, [pk])


@get(["/backoffice/stations/{pk:int}", "/admin/stations/{pk:int}"], guards=[require_owner_or_regulator],
     sync_to_thread=True, include_in_schema=False)
def station_detail(request: Request, db: Database, settings: Settings, pk: int) -> Template:
    actor = _actor(request)
    with db.session() as s:
        st = sta.get(s, actor, pk)
        facs = list(s.execute(select(FacilityArchive).where(FacilityArchive.station_archive_pk == st.id)
                              .order_by(FacilityArchive.equipment_id)).scalars())
        op = s.get(Operator, st.operator_pk)
        return Template("archives/station_detail.html", context=_ctx(
            request, s, settings, st=st, facilities=facs, operator=op, events=_detail_events(s, STATION, st.id),
            allowed=STATION.allowed(st.state, actor.role), problems=sta.submit_errors(s, st) if st.state in (
                "pending", "rejected") and actor.is_operator else {}))


def _list_with_error(request: Request, db: Database, settings: Settings, exc: AppError, kind: str,
                     admin: bool = False) -> Template:
    with db.session() as s:
        if kind == "stations":
            ctx = _station_list_ctx(request, s, settings, admin=admin)
            name = "archives/admin_stations.html" if admin else "archives/stations_list.html"
        else:
            ctx = _facility_list_ctx(request, s, settings, admin=admin)
            name = "archives/admin_facilities.html" if admin else "archives/facilities_list.html"
    msg = _msg(request, exc.message)
    details = exc.details if isinstance(exc.details, dict) else {}
    if details and not details.get("offenders"):
        msg += "：" + "；".join(_msg(request, str(m)) for m in details.values() if isinstance(m, str))
    ctx.update(flash=msg, flash_error=True, offenders=details.get("offenders") or [])
    return Template(name, status_code=exc.status_code, context=ctx)


@post("/backoffice/stations/{pk:int}/{action:str}", guards=OP, sync_to_thread=True, include_in_schema=False)
def station_action(request: Request, db: Database, settings: Settings, pk: int, action: str, data: Form) -> Template | Redirect:
    if action not in ("submit", "withdraw"):
        raise NotFoundException("no such action")
    try:
        with db.session() as s:
            st = sta.transition(s, _actor(request), pk, action)
            label = f"{st.station_id}：{ACTION_LABELS[action][0]} / {st.station_id}: {ACTION_LABELS[action][1]}"
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return _list_with_error(request, db, settings, exc, "stations")
    return _redirect(_back(request, "/backoffice/stations"), ok=label)


@post("/backoffice/stations/batch/{action:str}", guards=OP, sync_to_thread=True, include_in_schema=False)
def station_batch(request: Request, db: Database, settings: Settings, action: str, data: Form) -> Template | Redirect:
    if action not in ("submit", "withdraw"):
        raise NotFoundException("no such action")
    try:
        with db.session() as s:
            n = sta.transition_many(s, _actor(request), _ids(data.get("ids")), action)
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return _list_with_error(request, db, settings, exc, "stations")
    return _redirect("/backoffice/stations", ok=f"{n}条已{ACTION_LABELS[action][0]} / {n} done")


def _confirm(request: Request, s: Any, settings: Settings, what: str, action_url: str, back: str,
             blockers: list[str] | None = None) -> Template:
    return Template("archives/confirm_delete.html", context=_ctx(request, s, settings, what=what,
                                                                action_url=action_url, back=back,
                                                                blockers=blockers or []))


@get("/backoffice/stations/{pk:int}/delete", guards=OP, sync_to_thread=True, include_in_schema=False)
def station_delete_confirm(request: Request, db: Database, settings: Settings, pk: int) -> Template:
    with db.session() as s:
        st = sta.get(s, _actor(request), pk)
        STATION.next_state(st.state, "delete", "operator")
        return _confirm(request, s, settings, f"{st.station_id} {st.name or ''}", f"/backoffice/stations/{pk}/delete",
                        "/backoffice/stations")


@post("/backoffice/stations/{pk:int}/delete", guards=OP, sync_to_thread=True, include_in_schema=False)
def station_delete(request: Request, db: Database, settings: Settings, pk: int, data: Form) -> Template | Redirect:
    try:
        with db.session() as s:
            st = sta.get(s, _actor(request), pk)
            sid = st.station_id
            sta.delete(s, _actor(request), pk)
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return _list_with_error(request, db, settings, exc, "stations")
    return _redirect("/backoffice/stations", ok=f"{sid}：已删除 / deleted")


def _xlsx(content: bytes, name: str) -> Response:
    return Response(content, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f"attachment; filename=\"{name}\"; "
                                                    f"filename*=UTF-8''{name}"})


@get(["/backoffice/stations/template.xlsx", "/backoffice/documents/station-template.xlsx"],
     guards=[auth.require_operator_any], opt={"open_before_approval": True},  # B1 downloads, shown before approval
     sync_to_thread=True, include_in_schema=False)
def station_template(db: Database, settings: Settings) -> Response:
    with db.session() as s:
        districts = v.district_choices(s, settings.app.city_adcode)
    return _xlsx(excel.template("stations", districts), "station-archives-template.xlsx")


@get(["/backoffice/facilities/template.xlsx", "/backoffice/documents/facility-template.xlsx"],
     guards=[auth.require_operator_any], opt={"open_before_approval": True},  # B1 downloads, shown before approval
     sync_to_thread=True, include_in_schema=False)
def facility_template(db: Database, settings: Settings) -> Response:
    with db.session() as s:
        districts = v.district_choices(s, settings.app.city_adcode)
    return _xlsx(excel.template("facilities", districts), "facility-archives-template.xlsx")


def _import_page(request: Request, s: Any, settings: Settings, kind: str, *, result: Any = None,
                 error: str | None = None, status: int = 200) -> Template:
    return Template("archives/import.html", status_code=status, context=_ctx(
        request, s, settings, kind=kind, result=result, flash=error, flash_error=bool(error)))


@get(["/backoffice/stations/import", "/backoffice/facilities/import"], guards=OP, sync_to_thread=True,
     include_in_schema=False)
def import_form(request: Request, db: Database, settings: Settings) -> Template:
    kind = "stations" if request.url.path.startswith("/backoffice/stations") else "facilities"
    with db.session() as s:
        return _import_page(request, s, settings, kind)


def _upload_bytes(data: dict[str, Any], name: str = "file") -> tuple[str, bytes] | None:
    up = data.get(name)
    if isinstance(up, list):
        up = up[0] if up else None
    if not isinstance(up, UploadFile):
        return None
    up.file.seek(0)
    return up.filename or "", up.file.read()


@post(["/backoffice/stations/import", "/backoffice/facilities/import"], guards=OP, sync_to_thread=True,
      include_in_schema=False, request_max_body_size=UPLOAD_LIMIT)
def import_upload(request: Request, db: Database, settings: Settings, data: Multipart) -> Template | Redirect:
    kind = "stations" if request.url.path.startswith("/backoffice/stations") else "facilities"
    up = _upload_bytes(data)
    actor = _actor(request)
    try:
        if up is None or not up[1]:
            raise BadRequest("请选择要导入的文件 / choose the file to import", param="file")
        with db.session() as s:
            if kind == "stations":
                result = excel.import_stations(s, actor, up[1], settings.app.city_adcode)
            else:
                result = excel.import_facilities(s, actor, up[1])
            if not result.ok:
                s.rollback()
    except AppError as exc:
        with db.session() as s:
            return _import_page(request, s, settings, kind, error=_msg(request, exc.message), status=exc.status_code)
    with db.session() as s:
        if not result.ok:
            return _import_page(request, s, settings, kind, result=result, status=400,
                                error=_msg(request, f"导入失败：{len(result.errors)}处错误，未导入任何记录 / "
                                                    f"import refused: {len(result.errors)} error(s), nothing imported"))
    return _redirect(f"/backoffice/{kind}", ok=f"导入完成：新增{result.created}条，更新{result.updated}条 / "
                                               f"imported: {result.created} new, {result.updated} updated")


# ============================================================================ B3 report archives


@get("/backoffice/reports", guards=OP, sync_to_thread=True, include_in_schema=False)
def report_list(request: Request, db: Database, settings: Settings) -> Template:
    actor = _actor(request)
    q = (request.query_params.get("q") or "").strip() or None
    pg = page_param(request.query_params.get("page"))
    with db.session() as s:
        page = rep.list_page(s, actor, q=q, page=pg)
        files = rep.current_files(s, [r.id for r in page.items])
        used = {r.id: len(rep.usage(s, r.id)) for r in page.items}
        return Template("archives/reports_list.html", context=_ctx(request, s, settings, page=page, files=files,
                                                                   used=used, total=rep.counts(s, actor.operator_pk)))


def _report_form(request: Request, s: Any, settings: Settings, r: ReportArchive | None, form: dict[str, Any],
                 errors: dict[str, str], status: int = 200, flash: str | None = None) -> Template:
    return Template("archives/report_form.html", status_code=status, context=_ctx(
        request, s, settings, r=r, form=form, errors=errors, fields=rep.REPORT_FIELDS, flash=flash,
        flash_error=bool(flash), max_mb=rep.MAX_FILE_BYTES // (1024 * 1024)))


@get("/backoffice/reports/new", guards=OP, sync_to_thread=True, include_in_schema=False)
def report_new(request: Request, db: Database, settings: Settings) -> Template:
    with db.session() as s:
        return _report_form(request, s, settings, None, {}, {})


@post("/backoffice/reports", guards=OP, sync_to_thread=True, include_in_schema=False, request_max_body_size=UPLOAD_LIMIT)
def report_create(request: Request, db: Database, settings: Settings, data: Multipart) -> Template | Redirect:
    if data.get("op") == "cancel":
        return _redirect("/backoffice/reports")
    up = _upload_bytes(data)
    form = {k: val for k, val in data.items() if not isinstance(val, UploadFile)}
    try:
        with db.session() as s:
            r = rep.create(s, _actor(request), form, rep.StoredFile(*up) if up else None, settings.app.upload_dir)
            no = r.report_no
    except AppError as exc:
        if exc.status_code == 404:
            raise
        errors = _errors_for(request, exc)
        if exc.param == "file":
            errors["file"] = _msg(request, exc.message)
        with db.session() as s:
            return _report_form(request, s, settings, None, form, errors, exc.status_code, _msg(request, exc.message))
    return _redirect("/backoffice/reports", ok=f"{no}：已保存 / saved")


@get("/backoffice/reports/{pk:int}/edit", guards=OP, sync_to_thread=True, include_in_schema=False)
def report_edit(request: Request, db: Database, settings: Settings, pk: int) -> Template:
    with db.session() as s:
        r = rep.get(s, _actor(request), pk)
        form = {f.name: getattr(r, f.name) for f in rep.REPORT_FIELDS}
        return _report_form(request, s, settings, r, form, {})


@post("/backoffice/reports/{pk:int}", guards=OP, sync_to_thread=True, include_in_schema=False)
def report_update(request: Request, db: Database, settings: Settings, pk: int, data: Form) -> Template | Redirect:
    if data.get("op") == "cancel":
        return _redirect("/backoffice/reports")
    try:
        with db.session() as s:
            r = rep.update(s, _actor(request), pk, data)
            no = r.report_no
    except BadRequest as exc:
        with db.session() as s:
            r = rep.get(s, _actor(request), pk)
            return _report_form(request, s, settings, r, data, _errors_for(request, exc), 400, _msg(request, exc.message))
    return _redirect("/backoffice/reports", ok=f"{no}：已保存 / saved")


@get(["/backoffice/reports/{pk:int}", "/admin/reports/{pk:int}"], guards=[require_owner_or_regulator],
     sync_to_thread=True, include_in_schema=False)
def report_detail(request: Request, db: Database, settings: Settings, pk: int) -> Template:
    with db.session() as s:
        r = rep.get(s, _actor(request), pk)
        files = rep.files_of(s, pk)
        users = list(s.execute(select(FacilityArchive).where(FacilityArchive.report_archive_pk == pk)
                               .order_by(FacilityArchive.equipment_id)).scalars())
        return Template("archives/report_detail.html", context=_ctx(
            request, s, settings, r=r, files=files, facilities=users, operator=s.get(Operator, r.operator_pk),
            fields=rep.REPORT_FIELDS, max_mb=rep.MAX_FILE_BYTES // (1024 * 1024)))


@post("/backoffice/reports/{pk:int}/file", guards=OP, sync_to_thread=True, include_in_schema=False,
      request_max_body_size=UPLOAD_LIMIT)
def report_replace_file(request: Request, db: Database, settings: Settings, pk: int, data: Multipart) -> Template | Redirect:
    up = _upload_bytes(data)
    try:
        with db.session() as s:
            rep.get(s, _actor(request), pk)
            rep.replace_file(s, _actor(request), pk, rep.StoredFile(*(up or ("", b""))), settings.app.upload_dir)
    except AppError as exc:
        if exc.status_code == 404:
            raise
        with db.session() as s:
            r = rep.get(s, _actor(request), pk)
            return Template("archives/report_detail.html", status_code=exc.status_code, context=_ctx(
                request, s, settings, r=r, files=rep.files_of(s, pk), facilities=[], operator=s.get(Operator, r.operator_pk),
                fields=rep.REPORT_FIELDS, max_mb=rep.MAX_FILE_BYTES // (1024 * 1024),
                flash=_msg(request, exc.message), flash_error=True))
    return _redirect(f"/backoffice/reports/{pk}", ok="形式试验报告已更换 / the type-test report was replaced")


@get("/backoffice/reports/{pk:int}/delete", guards=OP, sync_to_thread=True, include_in_schema=False)
def report_delete_confirm(request: Request, db: Database, settings: Settings, pk: int) -> Template:
    with db.session() as s:
        r = rep.get(s, _actor(request), pk)
        return _confirm(request, s, settings, f"{r.report_no}（{r.lab}）", f"/backoffice/reports/{pk}/delete",
                        "/backoffice/reports", rep.usage(s, pk))


@post("/backoffice/reports/{pk:int}/delete", guards=OP, sync_to_thread=True, include_in_schema=False)
def report_delete(request: Request, db: Database, settings: Settings, pk: int, data: Form) -> Redirect:
    with db.session() as s:
        r = rep.get(s, _actor(request), pk)
        no = r.report_no
        stale = rep.delete(s, _actor(request), pk, settings.app.upload_dir)
    rep.remove_files(stale)
    return _redirect("/backoffice/reports", ok=f"{no}：已删除 / deleted")


@get("/backoffice/reports/files/{file_pk:int}", guards=[require_owner_or_regulator], sync_to_thread=True,
     include_in_schema=False)
def report_file(request: Request, db: Database, settings: Settings, file_pk: int) -> File:
    with db.session() as s:
        rf = rep.get_file(s, _actor(request), file_pk)
        path = rep.file_path(settings.app.upload_dir, rf)
        name, ctype = rf.original_name, rf.content_type
    if not path.is_file():
        raise NotFound("文件已不存在 / the file is gone")
    return File(path=path, filename=name, media_type=ctype, content_disposition_type="attachment",
                headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})


# ============================================================================ B4 facility archives


def _facility_list_ctx(request: Request, s: Any, settings: Settings, *, admin: bool = False,
                       ic_queue: bool = False) -> dict[str, Any]:
    actor = _actor(request)
    f = fac.FacilityFilter.from_query(request.query_params)
    if admin and "state" not in request.query_params:
        f.state = "ic_review" if ic_queue else "under_review"
    page = fac.list_page(s, actor, f)
    st_pks = {x.station_archive_pk for x in page.items}
    stations = {x.id: x for x in s.execute(select(StationArchive).where(StationArchive.id.in_(st_pks or {0}))).scalars()}
    rp_pks = {x.report_archive_pk for x in page.items if x.report_archive_pk}
    reports = {x.id: x for x in s.execute(select(ReportArchive).where(ReportArchive.id.in_(rp_pks or {0}))).scalars()}
    my_stations = [] if admin else list(s.execute(select(StationArchive).where(
        StationArchive.operator_pk == actor.operator_pk).order_by(StationArchive.station_id)).scalars())
    return _ctx(request, s, settings, page=page, stats=fac.stats(s, actor, f), f=f, stations=stations,
                reports=reports, my_stations=my_stations, admin=admin, ic_queue=ic_queue,
                operators=_operators(s) if admin else {},
                interconnected=(fac.operator_interconnected(s, actor.operator_pk) if actor.is_operator else None))


@get("/backoffice/facilities", guards=OP, sync_to_thread=True, include_in_schema=False)
def facility_list(request: Request, db: Database, settings: Settings) -> Template:
    with db.session() as s:
        return Template("archives/facilities_list.html", context=_facility_list_ctx(request, s, settings))


def _facility_form(request: Request, s: Any, settings: Settings, *, fa: FacilityArchive | None, station_pk: Any,
                   rows: list[dict[str, Any]], errors: dict[str, str], status: int = 200,
                   flash: str | None = None) -> Template:
    actor = _actor(request)
    my_stations = list(s.execute(select(StationArchive).where(StationArchive.operator_pk == actor.operator_pk)
                                 .order_by(StationArchive.station_id)).scalars())
    my_reports = rep.for_operator(s, actor.operator_pk)
    return Template("archives/facility_form.html", status_code=status, context=_ctx(
        request, s, settings, fa=fa, station_pk=str(station_pk or ""), rows=rows, errors=errors,
        my_stations=my_stations, my_reports=my_reports, fields=fac.FORM_FIELDS, flash=flash, flash_error=bool(flash)))


@get("/backoffice/facilities/new", guards=OP, sync_to_thread=True, include_in_schema=False)
def facility_new(request: Request, db: Database, settings: Settings) -> Template:
    try:
        n = max(1, min(int_param(request.query_params.get("rows"), "rows", default=3, hi=30), 30))
    except ValueError:
        n = 3
    with db.session() as s:
        return _facility_form(request, s, settings, fa=None, station_pk=request.query_params.get("station"),
                              rows=[{} for _ in range(n)], errors={})


def _rows_from_form(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Fields named ``rows-<i>-<field>`` → one dict per row, in index order."""
    rows: dict[int, dict[str, Any]] = {}
    for key, val in data.items():
        if key.startswith("rows-"):
            _, idx, name = key.split("-", 2)
            if idx.isdigit() and len(idx) < 6:
                rows.setdefault(int(idx), {})[name] = val if not isinstance(val, list) else val[0]
    return [rows[i] for i in sorted(rows)]


@post("/backoffice/facilities", guards=OP, sync_to_thread=True, include_in_schema=False)
def facility_create(request: Request, db: Database, settings: Settings, data: Form) -> Template | Redirect:
    op = data.get("op", "save")
    if op == "cancel":
        return _redirect("/backoffice/facilities")
    rows = _rows_from_form(data)
    try:
        with db.session() as s:
            created = fac.create_many(s, _actor(request), data.get("station"), rows, submit=op == "submit")
            n = len(created)
    except BadRequest as exc:
        with db.session() as s:
            return _facility_form(request, s, settings, fa=None, station_pk=data.get("station"), rows=rows,
                                  errors=_errors_for(request, exc), status=400, flash=_msg(request, exc.message))
    done = "已提交审核 / submitted for review" if op == "submit" else "已保存 / saved"
    return _redirect("/backoffice/facilities", ok=f"{n}个设施{done.split(' / ')[0]} / {n} facilities {done.split(' / ')[1]}")


@get("/backoffice/facilities/{pk:int}/edit", guards=OP, sync_to_thread=True, include_in_schema=False)
def facility_edit(request: Request, db: Database, settings: Settings, pk: int) -> Template:
    with db.session() as s:
        fa = fac.get(s, _actor(request), pk)
        FACILITY.next_state(fa.state, "edit", "operator")
        row = {f.name: getattr(fa, f.name) for f in fac.FORM_FIELDS}
        row["report_archive_pk"] = fa.report_archive_pk
        return _facility_form(request, s, settings, fa=fa, station_pk=fa.station_archive_pk, rows=[row], errors={})


@post("/backoffice/facilities/{pk:int}", guards=OP, sync_to_thread=True, include_in_schema=False)
def facility_update(request: Request, db: Database, settings: Settings, pk: int, data: Form) -> Template | Redirect:
    op = data.get("op", "save")
    if op == "cancel":
        return _redirect("/backoffice/facilities")
    rows = _rows_from_form(data) or [{}]
    try:
        with db.session() as s:
            fa = fac.update(s, _actor(request), pk, data.get("station"), rows[0], submit=op == "submit")
            eid = fa.equipment_id
    except BadRequest as exc:
        with db.session() as s:
            fa = fac.get(s, _actor(request), pk)
            errors = {f"0.{k}" if "." not in k else k: m for k, m in _errors_for(request, exc).items()}
            return _facility_form(request, s, settings, fa=fa, station_pk=data.get("station"), rows=rows,
                                  errors=errors, status=400, flash=_msg(request, exc.message))
    done = "已提交审核 / submitted for review" if op == "submit" else "已保存 / saved"
    return _redirect("/backoffice/facilities", ok=f"{eid}：{done}")


@get(["/backoffice/facilities/{pk:int}", "/admin/facilities/{pk:int}"], guards=[require_owner_or_regulator],
     sync_to_thread=True, include_in_schema=False)
def facility_detail(request: Request, db: Database, settings: Settings, pk: int) -> Template:
    actor = _actor(request)
    with db.session() as s:
        fa = fac.get(s, actor, pk)
        st = s.get(StationArchive, fa.station_archive_pk)
        r = s.get(ReportArchive, fa.report_archive_pk) if fa.report_archive_pk else None
        rfile = rep.current_files(s, [r.id]).get(r.id) if r else None
        allowed = FACILITY.allowed(fa.state, actor.role)
        if "delete" in allowed and fa.ever_approved:
            allowed.remove("delete")
        return Template("archives/facility_detail.html", context=_ctx(
            request, s, settings, fa=fa, st=st, r=r, rfile=rfile, operator=s.get(Operator, fa.operator_pk),
            events=_detail_events(s, FACILITY, fa.id), allowed=allowed,
            interconnected=fac.operator_interconnected(s, fa.operator_pk)))


FACILITY_OPERATOR_ACTIONS = ("submit", "withdraw", "apply_ic")


@post("/backoffice/facilities/{pk:int}/{action:str}", guards=OP, sync_to_thread=True, include_in_schema=False)
def facility_action(request: Request, db: Database, settings: Settings, pk: int, action: str, data: Form) -> Template | Redirect:
    if action not in FACILITY_OPERATOR_ACTIONS:
        raise NotFoundException("no such action")
    try:
        with db.session() as s:
            fa = fac.transition(s, _actor(request), pk, action)
            label = f"{fa.equipment_id}：{ACTION_LABELS[action][0]} / {fa.equipment_id}: {ACTION_LABELS[action][1]}"
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return _list_with_error(request, db, settings, exc, "facilities")
    return _redirect(_back(request, "/backoffice/facilities"), ok=label)


@post("/backoffice/facilities/batch/{action:str}", guards=OP, sync_to_thread=True, include_in_schema=False)
def facility_batch(request: Request, db: Database, settings: Settings, action: str, data: Form) -> Template | Redirect:
    if action not in ("submit", "apply_ic", "withdraw"):
        raise NotFoundException("no such action")
    try:
        with db.session() as s:
            n = fac.transition_many(s, _actor(request), _ids(data.get("ids")), action)
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return _list_with_error(request, db, settings, exc, "facilities")
    return _redirect("/backoffice/facilities",
                     ok=f"{n}个设施已{ACTION_LABELS[action][0]} / {ACTION_LABELS[action][1]}: {n} facilities")


@get("/backoffice/facilities/{pk:int}/delete", guards=OP, sync_to_thread=True, include_in_schema=False)
def facility_delete_confirm(request: Request, db: Database, settings: Settings, pk: int) -> Template:
    with db.session() as s:
        fa = fac.get(s, _actor(request), pk)
        FACILITY.next_state(fa.state, "delete", "operator")
        blockers = [_msg(request, "曾通过档案审核的设施不能删除 / once approved, a facility cannot be deleted")] \
            if fa.ever_approved else []
        return _confirm(request, s, settings, fa.equipment_id, f"/backoffice/facilities/{pk}/delete",
                        "/backoffice/facilities", blockers)


@post("/backoffice/facilities/{pk:int}/delete", guards=OP, sync_to_thread=True, include_in_schema=False)
def facility_delete(request: Request, db: Database, settings: Settings, pk: int, data: Form) -> Template | Redirect:
    try:
        with db.session() as s:
            fa = fac.get(s, _actor(request), pk)
            eid = fa.equipment_id
            fac.delete(s, _actor(request), pk)
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return _list_with_error(request, db, settings, exc, "facilities")
    return _redirect("/backoffice/facilities", ok=f"{eid}：已删除 / deleted")


@get("/backoffice/documents/{name:str}", guards=[auth.require_operator_any], sync_to_thread=True,
     include_in_schema=False, opt={"open_before_approval": True})  # B1's guide documents, shown before approval
def document(name: str, settings: Settings) -> Response:
    doc = documents.get(name, settings)
    if doc is None:
        raise NotFoundException("no such document")
    content, media_type, filename = doc
    return Response(content, media_type=media_type,
                    headers={"Content-Disposition": f"attachment; filename=\"{filename}\""})


# ============================================================================ regulators


@get("/admin/stations", guards=REG, sync_to_thread=True, include_in_schema=False)
def admin_stations(request: Request, db: Database, settings: Settings) -> Template:
    with db.session() as s:
        return Template("archives/admin_stations.html", context=_station_list_ctx(request, s, settings, admin=True))


@get("/admin/facilities", guards=REG, sync_to_thread=True, include_in_schema=False)
def admin_facilities(request: Request, db: Database, settings: Settings) -> Template:
    with db.session() as s:
        return Template("archives/admin_facilities.html", context=_facility_list_ctx(request, s, settings, admin=True))


REVIEW = {"stations": (sta, ("approve", "reject")), "facilities": (fac, ("approve", "reject", "approve_ic", "reject_ic"))}


@post(["/admin/stations/{pk:int}/{action:str}", "/admin/facilities/{pk:int}/{action:str}"], guards=REG,
      sync_to_thread=True, include_in_schema=False)
def admin_decide(request: Request, db: Database, settings: Settings, pk: int, action: str,
                 data: Form) -> Template | Redirect:
    kind = request.url.path.split("/")[2]
    if kind not in REVIEW or action not in REVIEW[kind][1]:
        raise NotFoundException("no such action")
    svc = REVIEW[kind][0]
    reason = (data.get("reason") or "").strip() or None
    try:
        with db.session() as s:
            svc.transition(s, _actor(request), pk, action, reason)
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return _list_with_error(request, db, settings, exc, kind, admin=True)
    back = _back(request, f"/admin/{kind}")
    return _redirect(back, ok=f"已处理：{ACTION_LABELS[action][0]} / done: {ACTION_LABELS[action][1]}")


@post(["/admin/stations/batch/{action:str}", "/admin/facilities/batch/{action:str}"], guards=REG,
      sync_to_thread=True, include_in_schema=False)
def admin_batch(request: Request, db: Database, settings: Settings, action: str, data: Form) -> Template | Redirect:
    kind = request.url.path.split("/")[2]
    if kind not in REVIEW or action not in REVIEW[kind][1]:
        raise NotFoundException("no such action")
    svc = REVIEW[kind][0]
    reason = (data.get("reason") or "").strip() or None
    try:
        with db.session() as s:
            n = svc.transition_many(s, _actor(request), _ids(data.get("ids")), action, reason)
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return _list_with_error(request, db, settings, exc, kind, admin=True)
    back = _back(request, f"/admin/{kind}")
    return _redirect(back, ok=f"{n}条已处理：{ACTION_LABELS[action][0]} / {n} done: {ACTION_LABELS[action][1]}")


ROUTES: list[Any] = [
    station_list, station_new, station_create, station_edit, station_update, station_detail, station_action,
    station_batch, station_delete_confirm, station_delete, station_template, facility_template, import_form,
    import_upload, report_list, report_new, report_create, report_edit, report_update, report_detail,
    report_replace_file, report_delete_confirm, report_delete, report_file, facility_list, facility_new,
    facility_create, facility_edit, facility_update, facility_detail, facility_action, facility_batch,
    facility_delete_confirm, facility_delete, document, admin_stations, admin_facilities, admin_decide,
    admin_batch,
]

