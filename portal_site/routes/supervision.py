"""Supervision tasks (B13): regulators publish and review at /admin/tasks; operators upload proof
and submit at /backoffice/tasks."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.response import Redirect, Template

from portal_site import auth
from portal_site.routes.messaging import Form, fmt_dt, form_error
from services.db import Database
from services.errors import AppError
from services.messaging.service import approved_operators
from services.settings import Settings
from services.supervision import tasks
from services.params import id_list

MAX_BODY = 12 * 1024 * 1024


def _ctx(**kw: Any) -> dict[str, Any]:
    return {"fmt_dt": fmt_dt, "states": tasks.TASK.states, "action_labels": tasks.TASK.action_labels, **kw}


# --- operators -----------------------------------------------------------------------------------
@get("/backoffice/tasks", guards=[auth.require_operator], sync_to_thread=True, include_in_schema=False)
def op_list(request: Request, db: Database) -> Template:
    with db.session() as s:
        rows = tasks.list_for_operator(s, auth.current_user(request).operator_pk)
    return Template("tasks/list.html", context=_ctx(rows=rows))


def _op_detail(db: Database, settings: Settings, user: Any, assignment_id: int, status: int = 200,
               **extra: Any) -> Template:
    with db.session() as s:
        a = tasks.assignment_for_operator(s, user.operator_pk, assignment_id)
    return Template("tasks/detail.html", status_code=status,
                    context=_ctx(**{"a": a, "admin": False, "actions": tasks.TASK.allowed(a["state"], user.role),
                                    "editable": a["state"] in tasks.EDITABLE, "errors": {},
                                    "max_mb": settings.supervision.proof_max_bytes // (1024 * 1024), **extra}))


@get("/backoffice/tasks/{assignment_id:int}", guards=[auth.require_operator], sync_to_thread=True,
     include_in_schema=False)
def op_detail(request: Request, db: Database, settings: Settings, assignment_id: int) -> Template:
    flash = {"up": "已上传 / uploaded", "sub": "已提交 / submitted", "del": "已删除 / removed"}.get(
        request.query_params.get("ok", ""))
    return _op_detail(db, settings, auth.current_user(request), assignment_id, flash=flash)


@post("/backoffice/tasks/{assignment_id:int}/proofs", guards=[auth.require_operator], request_max_body_size=MAX_BODY,
      include_in_schema=False)
async def op_upload(request: Request, db: Database, settings: Settings, assignment_id: int) -> Template | Redirect:
    user = auth.current_user(request)
    form = await request.form()
    files = []
    for f in form.getall("file") if "file" in form else []:
        if hasattr(f, "read"):
            files.append((f.filename, await f.read()))

    def _save() -> None:
        with db.session() as s:
            if not files:
                from services.errors import BadRequest

                raise BadRequest("请选择文件 / choose a file", param="file")
            for name, data in files:
                tasks.add_proof(s, settings.supervision, user, assignment_id, name, data)

    try:
        await anyio.to_thread.run_sync(_save)
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return await anyio.to_thread.run_sync(
            lambda: _op_detail(db, settings, user, assignment_id, exc.status_code, **form_error(exc)))
    return Redirect(f"/backoffice/tasks/{assignment_id}?ok=up")


@post("/backoffice/tasks/{assignment_id:int}/proofs/{proof_id:int}/delete", guards=[auth.require_operator],
      sync_to_thread=True, include_in_schema=False)
def op_delete_proof(request: Request, db: Database, assignment_id: int, proof_id: int) -> Redirect:
    with db.session() as s:
        tasks.delete_proof(s, auth.current_user(request), assignment_id, proof_id)
    return Redirect(f"/backoffice/tasks/{assignment_id}?ok=del")


@post("/backoffice/tasks/{assignment_id:int}/submit", guards=[auth.require_operator], sync_to_thread=True,
      include_in_schema=False)
def op_submit(request: Request, db: Database, settings: Settings, assignment_id: int, data: Form) -> Template | Redirect:
    user = auth.current_user(request)
    try:
        with db.session() as s:
            tasks.submit(s, user, assignment_id, data.get("note"))
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return _op_detail(db, settings, user, assignment_id, exc.status_code, **form_error(exc))
    return Redirect(f"/backoffice/tasks/{assignment_id}?ok=sub")


def _file(db: Database, proof_id: int, operator_pk: int | None) -> Response:
    from urllib.parse import quote

    with db.session() as s:
        name, ctype, data = tasks.proof_file(s, proof_id, operator_pk=operator_pk)
    return Response(content=data, media_type=ctype, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}", "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store"})


@get("/backoffice/tasks/proofs/{proof_id:int}", guards=[auth.require_operator], sync_to_thread=True,
     include_in_schema=False)
def op_file(request: Request, db: Database, proof_id: int) -> Response:
    return _file(db, proof_id, auth.current_user(request).operator_pk)


# --- regulators ----------------------------------------------------------------------------------
@get("/admin/tasks", guards=[auth.require_regulator], sync_to_thread=True, include_in_schema=False)
def admin_list(request: Request, db: Database) -> Template:
    with db.session() as s:
        rows = tasks.list_tasks(s)
        operators = approved_operators(s)
    return Template("tasks/admin_list.html", context=_ctx(rows=rows, operators=operators, form={}, errors={}))


@post("/admin/tasks", guards=[auth.require_regulator], include_in_schema=False)
async def admin_publish(request: Request, db: Database) -> Template | Redirect:
    form = await request.form()
    user = auth.current_user(request)
    pks = id_list(form.getall("operators")) if "operators" in form else []

    def _publish() -> int:
        with db.session() as s:
            return tasks.publish(s, user, title=str(form.get("title") or ""),
                                 description=str(form.get("description") or ""),
                                 deadline=tasks.parse_deadline(str(form.get("deadline") or "")),
                                 operator_pks="all" if form.get("audience") == "all" else pks)

    try:
        tid = await anyio.to_thread.run_sync(_publish)
    except AppError as exc:
        def _page() -> Template:
            with db.session() as s:
                rows, operators = tasks.list_tasks(s), approved_operators(s)
            return Template("tasks/admin_list.html", status_code=exc.status_code,
                            context=_ctx(rows=rows, operators=operators, form=dict(form), selected=set(pks),
                                         **form_error(exc)))
        return await anyio.to_thread.run_sync(_page)
    return Redirect(f"/admin/tasks/{tid}?ok=1")


@get("/admin/tasks/{task_id:int}", guards=[auth.require_regulator], sync_to_thread=True, include_in_schema=False)
def admin_detail(request: Request, db: Database, task_id: int) -> Template:
    with db.session() as s:
        task = tasks.task_detail(s, task_id)
    role = auth.current_user(request).role
    for a in task["assignments"]:
        a["actions"] = tasks.TASK.allowed(a["state"], role)
    return Template("tasks/admin_detail.html", context=_ctx(task=task, flash=request.query_params.get("ok") and "已完成 / done"))


@post("/admin/tasks/assignments/{assignment_id:int}/{action:str}", guards=[auth.require_regulator],
      sync_to_thread=True, include_in_schema=False)
def admin_review(request: Request, db: Database, assignment_id: int, action: str, data: Form) -> Redirect:
    with db.session() as s:
        tasks.review(s, auth.current_user(request), assignment_id, action, data.get("reason"))
        task_id = s.execute(tasks.select(tasks.A.c.task_id).where(tasks.A.c.id == assignment_id)).scalar_one()
    return Redirect(f"/admin/tasks/{task_id}?ok=1")


@get("/admin/tasks/proofs/{proof_id:int}", guards=[auth.require_regulator], sync_to_thread=True,
     include_in_schema=False)
def admin_file(request: Request, db: Database, proof_id: int) -> Response:
    return _file(db, proof_id, None)


ROUTES: list[Any] = [op_list, op_detail, op_upload, op_delete_proof, op_submit, op_file, admin_list, admin_publish,
                     admin_detail, admin_review, admin_file]
__all__ = ["ROUTES"]
