"""Feedback (B9): the public form (also opened from the map popup: ``/feedback?station=<id>``),
the ticket lookup, the operator's list and processing, the regulators' list and assignment."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.response import Redirect, Template

from portal_site import auth
from portal_site.routes.messaging import Form, fmt_dt, form_error
from services.db import Database
from services.errors import AppError, BadRequest
from services.feedback import service as fb
from services.messaging.service import approved_operators
from services.settings import Settings
from services.params import int_param

STATES = fb.FEEDBACK.states
MAX_BODY = 16 * 1024 * 1024  # the whole multipart request; each photo is checked again


def _ctx(**kw: Any) -> dict[str, Any]:
    return {"fmt_dt": fmt_dt, "kinds": fb.KINDS, "states": STATES, "action_labels": fb.FEEDBACK.action_labels, **kw}


def _form_page(db: Database, settings: Settings, station: str | None, status: int = 200, **extra: Any) -> Template:
    st = None
    station_pk = int_param(station, "station")
    if station_pk is not None:
        with db.session() as s:
            st = fb.station_info(s, station_pk)
    cfg = settings.supervision
    return Template("feedback/form.html", status_code=status,
                    context=_ctx(**{"station": st, "form": {}, "errors": {}, "max_photos": cfg.feedback_max_photos,
                                    "max_mb": cfg.feedback_photo_max_bytes // (1024 * 1024),
                                    "max_chars": cfg.feedback_max_chars, **extra}))


@get("/feedback", sync_to_thread=True, include_in_schema=False)
def feedback_form(request: Request, db: Database, settings: Settings) -> Template:
    return _form_page(db, settings, request.query_params.get("station"))


@post("/feedback", request_max_body_size=MAX_BODY, include_in_schema=False)
async def feedback_submit(request: Request, db: Database, settings: Settings) -> Template | Redirect:
    form = await request.form()
    photos = []
    for f in form.getall("photos") if "photos" in form else []:
        if hasattr(f, "read"):
            data = await f.read()
            if data:
                photos.append((f.filename, data))
    station = str(form.get("station") or "")
    ip = request.client.host if request.client else None
    ip_hash = fb.ip_key(settings.app.secret_key, ip)

    def _submit() -> str:
        with db.session() as s:
            return fb.submit(s, settings.supervision, kind=str(form.get("kind") or ""), body=str(form.get("body") or ""),
                             contact=str(form.get("contact") or ""),
                             station_pk=int_param(station, "station"), photos=photos, ip_hash=ip_hash)

    try:
        ticket = await anyio.to_thread.run_sync(_submit)
    except AppError as exc:
        if exc.status_code == 429:
            raise
        values = {k: form.get(k) for k in ("kind", "body", "contact")}
        return await anyio.to_thread.run_sync(
            lambda: _form_page(db, settings, station, exc.status_code, **form_error(exc), form=values))
    return Redirect(f"/feedback/{ticket}?new=1")


@get("/feedback/lookup", sync_to_thread=True, include_in_schema=False)
def feedback_lookup(request: Request, db: Database) -> Template | Redirect:
    ticket = fb.normalize_ticket(request.query_params.get("ticket"))
    if not ticket:
        return Template("feedback/lookup.html", context=_ctx(ticket="", row=None))
    return Redirect(f"/feedback/{ticket}")


@get("/feedback/{ticket:str}", sync_to_thread=True, include_in_schema=False)
def feedback_status(request: Request, db: Database, ticket: str) -> Template:
    with db.session() as s:
        row = fb.lookup(s, ticket)
    return Template("feedback/lookup.html", status_code=200 if row else 404,
                    context=_ctx(ticket=fb.normalize_ticket(ticket), row=row, new=bool(request.query_params.get("new"))))


# --- operators -----------------------------------------------------------------------------------
def _state_param(request: Request) -> str | None:
    state = request.query_params.get("state")
    return state if state in STATES else None


@get("/backoffice/feedback", guards=[auth.require_operator], sync_to_thread=True, include_in_schema=False)
def op_list(request: Request, db: Database) -> Template:
    user = auth.current_user(request)
    state = _state_param(request)
    with db.session() as s:
        rows = fb.list_feedback(s, operator_pk=user.operator_pk, state=state)
        counts = fb.counts(s, user.operator_pk)
    return Template("feedback/list.html", context=_ctx(rows=rows, state=state or "", counts=counts, admin=False))


def _detail(db: Database, user: Any, feedback_id: int, *, admin: bool, status: int = 200, **extra: Any) -> Template:
    with db.session() as s:
        row = fb.get(s, feedback_id, operator_pk=None if admin else user.operator_pk)
        operators = approved_operators(s) if admin else []
    actions = fb.FEEDBACK.allowed(row["state"], user.role)
    return Template("feedback/detail.html", status_code=status,
                    context=_ctx(**{"f": row, "admin": admin, "actions": actions, "operators": operators,
                                    "errors": {}, **extra}))


@get("/backoffice/feedback/{feedback_id:int}", guards=[auth.require_operator], sync_to_thread=True,
     include_in_schema=False)
def op_detail(request: Request, db: Database, feedback_id: int) -> Template:
    return _detail(db, auth.current_user(request), feedback_id, admin=False,
                   flash=request.query_params.get("ok") and "已处理 / processed")


@post("/backoffice/feedback/{feedback_id:int}/process", guards=[auth.require_operator], sync_to_thread=True,
      include_in_schema=False)
def op_process(request: Request, db: Database, feedback_id: int, data: Form) -> Template | Redirect:
    user = auth.current_user(request)
    try:
        with db.session() as s:
            fb.process(s, user, feedback_id, data.get("reply", ""))
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return _detail(db, user, feedback_id, admin=False, status=exc.status_code, **form_error(exc))
    return Redirect(f"/backoffice/feedback/{feedback_id}?ok=1")


def _photo(db: Database, feedback_id: int, photo_id: int, operator_pk: int | None) -> Response:
    with db.session() as s:
        ctype, data = fb.photo(s, feedback_id, photo_id, operator_pk=operator_pk)
    return Response(content=data, media_type=ctype, headers={"Cache-Control": "private, max-age=3600",
                                                             "X-Content-Type-Options": "nosniff",
                                                             "Content-Security-Policy": "default-src 'none'"})


@get("/backoffice/feedback/{feedback_id:int}/photos/{photo_id:int}", guards=[auth.require_operator],
     sync_to_thread=True, include_in_schema=False)
def op_photo(request: Request, db: Database, feedback_id: int, photo_id: int) -> Response:
    return _photo(db, feedback_id, photo_id, auth.current_user(request).operator_pk)


# --- regulators ----------------------------------------------------------------------------------
@get("/admin/feedback", guards=[auth.require_regulator], sync_to_thread=True, include_in_schema=False)
def admin_list(request: Request, db: Database) -> Template:
    state = _state_param(request)
    unassigned = request.query_params.get("unassigned") == "1"
    with db.session() as s:
        rows = fb.list_feedback(s, operator_pk=None, state=state, unassigned=unassigned)
        counts = fb.counts(s)
    return Template("feedback/list.html", context=_ctx(rows=rows, state=state or "", counts=counts, admin=True,
                                                       unassigned=unassigned))


@get("/admin/feedback/{feedback_id:int}", guards=[auth.require_regulator], sync_to_thread=True,
     include_in_schema=False)
def admin_detail(request: Request, db: Database, feedback_id: int) -> Template:
    return _detail(db, auth.current_user(request), feedback_id, admin=True,
                   flash=request.query_params.get("ok") and "已分配 / assigned")


@post("/admin/feedback/{feedback_id:int}/assign", guards=[auth.require_regulator], sync_to_thread=True,
      include_in_schema=False)
def admin_assign(request: Request, db: Database, feedback_id: int, data: Form) -> Template | Redirect:
    user = auth.current_user(request)
    op = str(data.get("operator_pk") or "")
    try:
        with db.session() as s:
            operator_pk = int_param(op, "operator_pk")
            if operator_pk is None:
                raise BadRequest("请选择运营商 / choose an operator", param="operator_pk")
            fb.assign(s, user, feedback_id, operator_pk)
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return _detail(db, user, feedback_id, admin=True, status=exc.status_code, **form_error(exc))
    return Redirect(f"/admin/feedback/{feedback_id}?ok=1")


@get("/admin/feedback/{feedback_id:int}/photos/{photo_id:int}", guards=[auth.require_regulator],
     sync_to_thread=True, include_in_schema=False)
def admin_photo(request: Request, db: Database, feedback_id: int, photo_id: int) -> Response:
    return _photo(db, feedback_id, photo_id, None)


ROUTES: list[Any] = [feedback_form, feedback_submit, feedback_lookup, feedback_status, op_list, op_detail, op_process,
                     op_photo, admin_list, admin_detail, admin_assign, admin_photo]
__all__ = ["ROUTES"]
