"""Messages (B8): the operator's inbox (list pane + content pane, unread marks, reply, confirm) and
the regulators' notices (send to one, several or all operators; who read, replied, confirmed).

Also holds small helpers the other back-office modules of this domain share (time formatting,
the flash-on-error pattern).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from portal_site import auth
from services.db import Database
from services.errors import AppError
from services.messaging import service as msgs
from services.params import id_list, int_param

__all__ = ["ROUTES", "Form", "fmt_dt", "form_error"]

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
CST = timezone(timedelta(hours=8))


def fmt_dt(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """China time for people (the database keeps UTC)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(CST).strftime(fmt)


def form_error(exc: AppError) -> dict[str, Any]:
    """Template context for a refused form: the message on top, field errors beside the fields."""
    errors = exc.details if isinstance(exc.details, dict) else ({exc.param: exc.message} if exc.param else {})
    return {"flash": exc.message, "flash_error": True, "errors": errors}


def _ctx(**kw: Any) -> dict[str, Any]:
    return {"fmt_dt": fmt_dt, "kind_labels": msgs.KIND_LABELS, "confirmations": msgs.CONFIRMATIONS, **kw}


# --- operators -----------------------------------------------------------------------------------
def _inbox_page(db: Database, user: Any, message_id: int | None, only: str | None, status: int = 200,
                **extra: Any) -> Template:
    with db.session() as s:
        current = None
        if message_id is not None:
            current = msgs.message_for_operator(s, user.operator_pk, message_id)
            if current["read_at"] is None:
                msgs.mark_read(s, user.operator_pk, message_id, user.id)
        rows = msgs.inbox(s, user.operator_pk, only=only)
        unread = msgs.unread_count(s, user.operator_pk)
    return Template("messages/inbox.html", status_code=status,
                    context=_ctx(**{"rows": rows, "current": current, "only": only or "", "unread": unread,
                                    "errors": {}, "form": {}, **extra}))


@get("/backoffice/messages", guards=[auth.require_operator], sync_to_thread=True, include_in_schema=False)
def inbox(request: Request, db: Database) -> Template:
    only = request.query_params.get("only")
    return _inbox_page(db, auth.current_user(request), None, only if only in ("unread", "confirm") else None)


@get("/backoffice/messages/unread", guards=[auth.require_operator], sync_to_thread=True, include_in_schema=False)
def unread(request: Request, db: Database) -> dict[str, int]:
    """``{"unread": n}`` for a badge in the menu."""
    with db.session() as s:
        return {"unread": msgs.unread_count(s, auth.current_user(request).operator_pk)}


@get("/backoffice/messages/{message_id:int}", guards=[auth.require_operator], sync_to_thread=True,
     include_in_schema=False)
def message(request: Request, db: Database, message_id: int) -> Template:
    only = request.query_params.get("only")
    return _inbox_page(db, auth.current_user(request), message_id, only if only in ("unread", "confirm") else None,
                       flash=request.query_params.get("ok") and "已提交 / sent")


@post("/backoffice/messages/{message_id:int}/respond", guards=[auth.require_operator], sync_to_thread=True,
      include_in_schema=False)
def respond(request: Request, db: Database, message_id: int, data: Form) -> Template | Redirect:
    """The reply window: a text reply and/or, where asked, agree / disagree (with a reason)."""
    user = auth.current_user(request)
    body = (data.get("body") or "").strip()
    choice = data.get("choice") or None
    try:
        with db.session() as s:
            if not body and not choice:
                from services.errors import BadRequest

                raise BadRequest("请填写回复内容或选择确认意见 / write a reply or choose agree / disagree", param="body")
            if choice:
                msgs.confirm(s, user, message_id, choice, data.get("reason"))
            if body:
                msgs.reply(s, user, message_id, body)
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return _inbox_page(db, user, message_id, None, status=exc.status_code, **{**form_error(exc), "form": data})
    return Redirect(f"/backoffice/messages/{message_id}?ok=1")


# --- regulators ----------------------------------------------------------------------------------
@get("/admin/messages", guards=[auth.require_regulator], sync_to_thread=True, include_in_schema=False)
def admin_list(request: Request, db: Database) -> Template:
    kind = request.query_params.get("kind", "notice")
    kind = kind if kind in ("notice", "workflow", "feedback", "task", "all") else "notice"
    with db.session() as s:
        rows = msgs.sent_notices(s, kind=None if kind == "all" else kind)
    return Template("messages/admin_list.html", context=_ctx(rows=rows, kind=kind,
                                                             flash=request.query_params.get("sent") and "已发送 / sent"))


def _new_page(db: Database, status: int = 200, **extra: Any) -> Template:
    with db.session() as s:
        operators = msgs.approved_operators(s)
    ctx = _ctx(operators=operators, form={}, errors={}, selected=set())
    ctx.update(extra)
    return Template("messages/admin_new.html", status_code=status, context=ctx)


@get("/admin/messages/new", guards=[auth.require_regulator], sync_to_thread=True, include_in_schema=False)
def admin_new(request: Request, db: Database) -> Template:
    pre = request.query_params.get("operator")
    return _new_page(db, selected=set(id_list([pre or ""])))


@post("/admin/messages", guards=[auth.require_regulator], include_in_schema=False)
async def admin_send(request: Request, db: Database) -> Template | Redirect:
    import anyio.to_thread

    form = await request.form()
    user = auth.current_user(request)
    audience = form.get("audience", "some")
    pks = id_list(form.getall("operators")) if "operators" in form else []

    def _send() -> int:
        with db.session() as s:
            return msgs.send_notice(s, user, form.get("title", ""), form.get("body", ""),
                                    "all" if audience == "all" else pks,
                                    requires_confirmation=form.get("requires_confirmation") in ("1", "on", "true"))

    try:
        mid = await anyio.to_thread.run_sync(_send)
    except AppError as exc:
        return await anyio.to_thread.run_sync(lambda: _new_page(db, exc.status_code, **form_error(exc),
                                                               form=dict(form), selected=set(pks)))
    return Redirect(f"/admin/messages/{mid}?sent=1")


@get("/admin/messages/{message_id:int}", guards=[auth.require_regulator], sync_to_thread=True, include_in_schema=False)
def admin_detail(request: Request, db: Database, message_id: int) -> Template:
    with db.session() as s:
        m = msgs.notice_detail(s, message_id)
    flash = (request.query_params.get("sent") and "已发送 / sent") or (request.query_params.get("ok") and "已回复 / replied")
    return Template("messages/admin_detail.html", context=_ctx(m=m, flash=flash))


@post("/admin/messages/{message_id:int}/reply", guards=[auth.require_regulator], sync_to_thread=True,
      include_in_schema=False)
def admin_reply(request: Request, db: Database, message_id: int, data: Form) -> Redirect:
    op = str(data.get("operator_pk") or "")
    with db.session() as s:
        msgs.reply(s, auth.current_user(request), message_id, data.get("body", ""),
                   operator_pk=int_param(op, "operator_pk"))
    return Redirect(f"/admin/messages/{message_id}?ok=1#op-{op}")


ROUTES: list[Any] = [inbox, unread, message, respond, admin_list, admin_new, admin_send, admin_detail, admin_reply]
