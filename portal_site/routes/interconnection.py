"""B5 interconnection set-up pages: the operator's three steps under /backoffice/interconnection
and the regulators' view of the applications under /admin/interconnection.

The forms and the application live in :mod:`services.archives.interconnection`; the live calls to
the operator's system (joint debugging) and the system check run on the feed's side,
:mod:`ingest.debugging`. Two ``app.state`` hooks exist for tests: ``ic_transport`` (an httpx
transport for the debugging calls) and ``ic_check_starter`` (runs the check instead of
:func:`ingest.debugging.start_check`). On startup, checks a restart interrupted are resumed where
background jobs run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Litestar, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template
from sqlalchemy import select

from ingest import debugging
from portal_site.routes.archives.common import (
    OP,
    REG,
    Form,
    actor_of,
    errors_for,
    form_ids,
    localized,
    page_context,
    pretty,
    redirect,
)
from portal_site.routes.archives.lists import facility_list_context
from services import workflow as wfmod
from services.archives import interconnection as ic
from services.archives.workflows import INTERCONNECTION
from services.db import Database
from services.errors import AppError
from services.models.archives import InterconnectionApplication
from services.models.core import Operator
from services.params import int_param
from services.settings import Settings

__all__ = ["ROUTES", "on_startup"]


def _ic_page(request: Request, s: Any, settings: Settings, *, shown: dict[str, str] | None = None,
             errors: dict[str, str] | None = None, flash: str | None = None, status: int = 200,
             step: int | None = None, form: dict[str, Any] | None = None, ok: str | None = None) -> Template:
    actor = actor_of(request)
    view = ic.docking_view(s, settings, actor.operator_pk)
    app = view["application"]
    if step is None:
        step = int_param(request.query_params.get("step"), "step", lo=0, hi=3, default=0)
        if step not in (1, 2, 3):
            step = 3 if app.state in ("checking", "passed", "failed") else (2 if view["endpoint"] else 1)
    return Template("archives/interconnection.html", status_code=status, context=page_context(
        request, s, settings, v=view, app=app, step=step, shown=shown, errors=errors or {}, form=form or {},
        flash=flash or ok or (request.query_params.get("ok") and localized(request, request.query_params["ok"])),
        flash_error=bool(flash), interfaces=ic.DEBUG_INTERFACES, push_check=ic.PUSH_CHECK,
        allowed=INTERCONNECTION.allowed(app.state, "operator")))


@get("/backoffice/interconnection", guards=OP, sync_to_thread=True, include_in_schema=False)
def interconnection_page(request: Request, db: Database, settings: Settings) -> Template:
    with db.session() as s:
        return _ic_page(request, s, settings)


@post("/backoffice/interconnection/docking", guards=OP, sync_to_thread=True, include_in_schema=False)
def interconnection_docking(request: Request, db: Database, settings: Settings, data: Form) -> Template:
    try:
        with db.session() as s:
            shown = ic.save_docking(s, actor_of(request), data)
    except AppError as exc:
        if exc.status_code == 404:
            raise
        with db.session() as s:
            return _ic_page(request, s, settings, errors=errors_for(request, exc), flash=localized(request, exc.message),
                            status=exc.status_code, step=1, form=data)
    with db.session() as s:
        return _ic_page(request, s, settings, shown=shown, step=1,
                        ok=localized(request, "对接信息已保存 / the docking data was saved"))


@post("/backoffice/interconnection/regenerate", guards=OP, sync_to_thread=True, include_in_schema=False)
def interconnection_regenerate(request: Request, db: Database, settings: Settings, data: Form) -> Template:
    with db.session() as s:
        shown = ic.regenerate_inbound(s, actor_of(request))
    with db.session() as s:
        return _ic_page(request, s, settings, shown=shown, step=1,
                        ok=localized(request, "已重新生成平台对接密钥 / new credentials were generated"))


@post("/backoffice/interconnection/stations", guards=OP, sync_to_thread=True, include_in_schema=False)
def interconnection_stations(request: Request, db: Database, settings: Settings, data: Form) -> Template | Redirect:
    try:
        with db.session() as s:
            n = ic.associate(s, actor_of(request), form_ids(data.get("stations")))
    except AppError as exc:
        if exc.status_code == 404:
            raise
        with db.session() as s:
            return _ic_page(request, s, settings, flash=localized(request, exc.message), status=exc.status_code, step=1)
    return redirect("/backoffice/interconnection", step=1, ok=f"已关联{n}个充电站 / {n} stations associated")


@post("/backoffice/interconnection/debug/{interface:str}", guards=OP, sync_to_thread=True, include_in_schema=False)
def interconnection_debug(request: Request, db: Database, settings: Settings, interface: str, data: Form) -> Template | Redirect:
    try:
        with db.session() as s:
            result = debugging.debug_call(s, settings, actor_of(request), interface,
                                          transport=request.app.state.get("ic_transport"))
    except AppError as exc:
        if exc.status_code == 404:
            raise
        with db.session() as s:
            return _ic_page(request, s, settings, flash=localized(request, exc.message), status=exc.status_code, step=2)
    if request.headers.get("hx-request"):
        with db.session() as s:
            view = ic.docking_view(s, settings, actor_of(request).operator_pk)
        return Template("archives/_debug_result.html", context={"r": result, "name": interface, "pretty": pretty,
                                                                 "all_pass": view["all_pass"]})
    return redirect("/backoffice/interconnection", step=2)


@post("/backoffice/interconnection/submit", guards=OP, sync_to_thread=True, include_in_schema=False)
def interconnection_submit(request: Request, db: Database, settings: Settings, data: Form) -> Template | Redirect:
    actor = actor_of(request)
    try:
        with db.session() as s:
            ic.submit_check(s, actor)
    except AppError as exc:
        if exc.status_code == 404:
            raise
        with db.session() as s:
            return _ic_page(request, s, settings, flash=localized(request, exc.message), status=exc.status_code, step=2)
    starter: Callable[..., Any] = request.app.state.get("ic_check_starter") or debugging.start_check
    starter(db, settings, actor.operator_pk)
    return redirect("/backoffice/interconnection", step=3,
                    ok="已提交系统核对申请，结果将在几分钟内给出 / the system check was submitted; the result follows within minutes")


@post("/backoffice/interconnection/reconfigure", guards=OP, sync_to_thread=True, include_in_schema=False)
def interconnection_reconfigure(request: Request, db: Database, settings: Settings, data: Form) -> Redirect:
    with db.session() as s:
        ic.reconfigure(s, actor_of(request))
    return redirect("/backoffice/interconnection", step=1)


@get("/admin/interconnection", guards=REG, sync_to_thread=True, include_in_schema=False)
def admin_interconnection(request: Request, db: Database, settings: Settings) -> Template:
    with db.session() as s:
        ctx = facility_list_context(request, s, settings, admin=True, ic_queue=True)
        apps = list(s.execute(select(InterconnectionApplication).order_by(
            InterconnectionApplication.updated_at.desc())).scalars())
        ctx.update(apps=apps)
        return Template("archives/admin_interconnection.html", context=ctx)


@get("/admin/interconnection/{operator_pk:int}", guards=REG, sync_to_thread=True, include_in_schema=False)
def admin_interconnection_detail(request: Request, db: Database, settings: Settings, operator_pk: int) -> Template:
    with db.session() as s:
        app = s.execute(select(InterconnectionApplication).where(
            InterconnectionApplication.operator_pk == operator_pk)).scalar_one_or_none()
        if app is None:
            raise NotFoundException("no such application")
        return Template("archives/admin_ic_detail.html", context=page_context(
            request, s, settings, app=app, operator=s.get(Operator, operator_pk),
            events=wfmod.events_for(s, INTERCONNECTION, [app.id])))


def on_startup(app: Litestar) -> None:
    """Resume the interconnection checks a restart interrupted (only where background jobs run)."""
    settings: Settings = app.state["settings"]
    if settings.app.run_scheduler:
        try:
            debugging.resume_checks(app.state["db"], settings)
        except Exception:  # noqa: BLE001 - never keep the app from starting
            import logging

            logging.getLogger("zhcharge").exception("could not resume interconnection checks")


ROUTES: list[Any] = [
    interconnection_page, interconnection_docking, interconnection_regenerate, interconnection_stations,
    interconnection_debug, interconnection_submit, interconnection_reconfigure, admin_interconnection,
    admin_interconnection_detail,
]
