"""Operator configuration (B6) and address book (B7); the regulators' review of key-field changes
(/admin/profile-changes) and searchable address book of every operator (/admin/contacts)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.response import Redirect, Template

from portal_site import auth
from portal_site.routes.messaging import Form, fmt_dt, form_error
from services.db import Database
from services.errors import AppError
from services.profile import service as prof
from services.params import int_param


def _ctx(**kw: Any) -> dict[str, Any]:
    return {"fmt_dt": fmt_dt, "key_fields": prof.KEY_FIELDS, "direct_fields": prof.DIRECT_FIELDS,
            "contact_fields": prof.CONTACT_FIELDS, "change_states": prof.PROFILE_CHANGE.states, **kw}


def _profile_page(db: Database, user: Any, *, edit: bool, status: int = 200, **extra: Any) -> Template:
    with db.session() as s:
        p = prof.get_profile(s, user.operator_pk)
        pending = prof.pending_change(s, user.operator_pk)
        trail = prof.audit_trail(s, user.operator_pk, 20)
    return Template("profile/profile.html", status_code=status,
                    context=_ctx(**{"p": p, "pending": pending, "trail": trail, "edit": edit, "form": p, "errors": {},
                                    **extra}))


@get("/backoffice/profile", guards=[auth.require_operator], sync_to_thread=True, include_in_schema=False)
def profile(request: Request, db: Database) -> Template:
    ok = request.query_params.get("ok")
    flash = {"1": "已保存 / saved", "p": "已保存；企业名称、统一社会信用代码的变更已提交监管审核 / saved; the change of the "
             "key fields awaits the regulators' review", "w": "已撤回 / withdrawn"}.get(ok or "")
    return _profile_page(db, auth.current_user(request), edit=request.query_params.get("edit") == "1", flash=flash)


@post("/backoffice/profile", guards=[auth.require_operator], sync_to_thread=True, include_in_schema=False)
def profile_save(request: Request, db: Database, data: Form) -> Template | Redirect:
    user = auth.current_user(request)
    try:
        with db.session() as s:
            result = prof.update_profile(s, user, data)
    except AppError as exc:
        return _profile_page(db, user, edit=True, status=exc.status_code, **{**form_error(exc), "form": data})
    return Redirect("/backoffice/profile?ok=" + ("p" if result["pending"] else "1"))


@post("/backoffice/profile/changes/{change_id:int}/withdraw", guards=[auth.require_operator], sync_to_thread=True,
      include_in_schema=False)
def change_withdraw(request: Request, db: Database, change_id: int) -> Redirect:
    with db.session() as s:
        prof.withdraw_change(s, auth.current_user(request), change_id)
    return Redirect("/backoffice/profile?ok=w")


# --- address book --------------------------------------------------------------------------------
def _contacts_page(db: Database, user: Any, status: int = 200, **extra: Any) -> Template:
    with db.session() as s:
        rows = prof.contacts(s, user.operator_pk)
    return Template("contacts/list.html", status_code=status,
                    context=_ctx(**{"rows": rows, "form": {}, "errors": {}, "editing": None, **extra}))


@get("/backoffice/contacts", guards=[auth.require_operator], sync_to_thread=True, include_in_schema=False)
def contacts(request: Request, db: Database) -> Template:
    user = auth.current_user(request)
    edit = request.query_params.get("edit")
    editing = None
    edit_id = int_param(edit, "edit")
    if edit_id is not None:
        with db.session() as s:
            editing = prof.get_contact(s, user.operator_pk, edit_id)
    return _contacts_page(db, user, editing=editing, form=editing or {},
                          flash=request.query_params.get("ok") and "已保存 / saved")


@post("/backoffice/contacts", guards=[auth.require_operator], sync_to_thread=True, include_in_schema=False)
def contact_add(request: Request, db: Database, data: Form) -> Template | Redirect:
    user = auth.current_user(request)
    try:
        with db.session() as s:
            prof.add_contact(s, user, data)
    except AppError as exc:
        return _contacts_page(db, user, exc.status_code, **{**form_error(exc), "form": data})
    return Redirect("/backoffice/contacts?ok=1")


@post("/backoffice/contacts/{contact_id:int}", guards=[auth.require_operator], sync_to_thread=True,
      include_in_schema=False)
def contact_update(request: Request, db: Database, contact_id: int, data: Form) -> Template | Redirect:
    user = auth.current_user(request)
    try:
        with db.session() as s:
            prof.update_contact(s, user, contact_id, data)
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return _contacts_page(db, user, exc.status_code, **{**form_error(exc), "form": data,
                                                            "editing": {"id": contact_id}})
    return Redirect("/backoffice/contacts?ok=1")


@post("/backoffice/contacts/{contact_id:int}/delete", guards=[auth.require_operator], sync_to_thread=True,
      include_in_schema=False)
def contact_delete(request: Request, db: Database, contact_id: int) -> Redirect:
    with db.session() as s:
        prof.delete_contact(s, auth.current_user(request), contact_id)
    return Redirect("/backoffice/contacts?ok=1")


# --- regulators ----------------------------------------------------------------------------------
@get("/admin/contacts", guards=[auth.require_regulator], sync_to_thread=True, include_in_schema=False)
def admin_contacts(request: Request, db: Database) -> Template:
    q = (request.query_params.get("q") or "").strip()[:100]
    with db.session() as s:
        rows = prof.all_contacts(s, q)
    return Template("contacts/admin_list.html", context=_ctx(rows=rows, q=q))


@get("/admin/profile-changes", guards=[auth.require_regulator], sync_to_thread=True, include_in_schema=False)
def admin_changes(request: Request, db: Database) -> Template:
    state = request.query_params.get("state", "pending")
    state = state if state in prof.PROFILE_CHANGE.states or state == "all" else "pending"
    with db.session() as s:
        rows = prof.list_changes(s, None if state == "all" else state)
    return Template("profile/admin_changes.html", context=_ctx(rows=rows, state=state,
                                                               flash=request.query_params.get("ok") and "已处理 / done"))


@post("/admin/profile-changes/{change_id:int}/{action:str}", guards=[auth.require_regulator], sync_to_thread=True,
      include_in_schema=False)
def admin_review(request: Request, db: Database, change_id: int, action: str, data: Form) -> Redirect:
    with db.session() as s:
        prof.review_change(s, auth.current_user(request), change_id, action, data.get("reason"))
    return Redirect("/admin/profile-changes?ok=1")


ROUTES: list[Any] = [profile, profile_save, change_withdraw, contacts, contact_add, contact_update, contact_delete,
                     admin_contacts, admin_changes, admin_review]
__all__ = ["ROUTES"]
