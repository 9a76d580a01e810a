"""B2 station archives in the operators' back office (/backoffice/stations): the list, the form
(save or submit for review), the detail page (also the regulators' at /admin/stations/{pk}), the
workflow actions one by one or in a batch, and deletion. The regulators' queue is :mod:`.review`.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template
from sqlalchemy import select

from portal_site.routes.archives.common import (
    OP,
    Form,
    actor_of,
    back_to,
    confirm_page,
    errors_for,
    form_ids,
    localized,
    page_context,
    redirect,
    require_owner_or_regulator,
    run_or_render,
    saved_or_submitted,
)
from portal_site.routes.archives.lists import list_again, station_list_context
from services import workflow as wfmod
from services.archives import stations as sta
from services.archives import validation as v
from services.archives.workflows import ACTION_LABELS, STATION
from services.db import Database
from services.errors import AppError, BadRequest
from services.models.archives import FacilityArchive, StationArchive
from services.models.core import Operator
from services.settings import Settings

__all__ = ["ROUTES"]

OPERATOR_ACTIONS = ("submit", "withdraw")


@get("/backoffice/stations", guards=OP, sync_to_thread=True, include_in_schema=False)
def station_list(request: Request, db: Database, settings: Settings) -> Template:
    with db.session() as s:
        return Template("archives/stations_list.html", context=station_list_context(request, s, settings))


def _station_form(request: Request, s: Any, settings: Settings, st: StationArchive | None, form: dict[str, Any],
                  errors: dict[str, str], status: int = 200, flash: str | None = None) -> Template:
    return Template("archives/station_form.html", status_code=status, context=page_context(
        request, s, settings, st=st, form=form, errors=errors, flash=flash, flash_error=bool(flash)))


@get("/backoffice/stations/new", guards=OP, sync_to_thread=True, include_in_schema=False)
def station_new(request: Request, db: Database, settings: Settings) -> Template:
    with db.session() as s:
        return _station_form(request, s, settings, None, {}, {})


def _station_save(request: Request, db: Database, settings: Settings, data: dict[str, Any],
                  pk: int | None) -> Template | Redirect:
    op = data.get("op", "save")
    if op == "cancel":
        return redirect("/backoffice/stations")
    actor = actor_of(request)

    def work(s: Any) -> Redirect:
        st = sta.create_or_update(s, actor, data, pk=pk, submit=op == "submit", city_adcode=settings.app.city_adcode)
        return redirect("/backoffice/stations", ok=f"{st.station_id}：{saved_or_submitted(op)}")

    def form_again(s: Any, exc: AppError) -> Template:
        st = sta.get(s, actor, pk) if pk else None
        return _station_form(request, s, settings, st, data, errors_for(request, exc), exc.status_code,
                             localized(request, exc.message))

    return run_or_render(db, work, form_again, catch=BadRequest)


@post("/backoffice/stations", guards=OP, sync_to_thread=True, include_in_schema=False)
def station_create(request: Request, db: Database, settings: Settings, data: Form) -> Template | Redirect:
    return _station_save(request, db, settings, data, None)


@get("/backoffice/stations/{pk:int}/edit", guards=OP, sync_to_thread=True, include_in_schema=False)
def station_edit(request: Request, db: Database, settings: Settings, pk: int) -> Template:
    with db.session() as s:
        st = sta.get(s, actor_of(request), pk)
        STATION.next_state(st.state, "edit", "operator")
        form = {f.name: getattr(st, f.name) for f in v.STATION_FIELDS}
        return _station_form(request, s, settings, st, form, {})


@post("/backoffice/stations/{pk:int}", guards=OP, sync_to_thread=True, include_in_schema=False)
def station_update(request: Request, db: Database, settings: Settings, pk: int, data: Form) -> Template | Redirect:
    return _station_save(request, db, settings, data, pk)


@get(["/backoffice/stations/{pk:int}", "/admin/stations/{pk:int}"], guards=[require_owner_or_regulator],
     sync_to_thread=True, include_in_schema=False)
def station_detail(request: Request, db: Database, settings: Settings, pk: int) -> Template:
    actor = actor_of(request)
    with db.session() as s:
        st = sta.get(s, actor, pk)
        facs = list(s.execute(select(FacilityArchive).where(FacilityArchive.station_archive_pk == st.id)
                              .order_by(FacilityArchive.equipment_id)).scalars())
        op = s.get(Operator, st.operator_pk)
        return Template("archives/station_detail.html", context=page_context(
            request, s, settings, st=st, facilities=facs, operator=op, events=wfmod.events_for(s, STATION, [st.id]),
            allowed=STATION.allowed(st.state, actor.role), problems=sta.submit_errors(s, st) if st.state in (
                "pending", "rejected") and actor.is_operator else {}))


@post("/backoffice/stations/{pk:int}/{action:str}", guards=OP, sync_to_thread=True, include_in_schema=False)
def station_action(request: Request, db: Database, settings: Settings, pk: int, action: str, data: Form) -> Template | Redirect:
    if action not in OPERATOR_ACTIONS:
        raise NotFoundException("no such action")

    def work(s: Any) -> Redirect:
        st = sta.transition(s, actor_of(request), pk, action)
        label = f"{st.station_id}：{ACTION_LABELS[action][0]} / {st.station_id}: {ACTION_LABELS[action][1]}"
        return redirect(back_to(request, "/backoffice/stations"), ok=label)

    return run_or_render(db, work, list_again(request, settings, "stations"))


@post("/backoffice/stations/batch/{action:str}", guards=OP, sync_to_thread=True, include_in_schema=False)
def station_batch(request: Request, db: Database, settings: Settings, action: str, data: Form) -> Template | Redirect:
    if action not in OPERATOR_ACTIONS:
        raise NotFoundException("no such action")

    def work(s: Any) -> Redirect:
        n = sta.transition_many(s, actor_of(request), form_ids(data.get("ids")), action)
        return redirect("/backoffice/stations", ok=f"{n}条已{ACTION_LABELS[action][0]} / {n} done")

    return run_or_render(db, work, list_again(request, settings, "stations"))


@get("/backoffice/stations/{pk:int}/delete", guards=OP, sync_to_thread=True, include_in_schema=False)
def station_delete_confirm(request: Request, db: Database, settings: Settings, pk: int) -> Template:
    with db.session() as s:
        st = sta.get(s, actor_of(request), pk)
        STATION.next_state(st.state, "delete", "operator")
        return confirm_page(request, s, settings, f"{st.station_id} {st.name or ''}",
                            f"/backoffice/stations/{pk}/delete", "/backoffice/stations")


@post("/backoffice/stations/{pk:int}/delete", guards=OP, sync_to_thread=True, include_in_schema=False)
def station_delete(request: Request, db: Database, settings: Settings, pk: int, data: Form) -> Template | Redirect:
    def work(s: Any) -> Redirect:
        sid = sta.get(s, actor_of(request), pk).station_id
        sta.delete(s, actor_of(request), pk)
        return redirect("/backoffice/stations", ok=f"{sid}：已删除 / deleted")

    return run_or_render(db, work, list_again(request, settings, "stations"))


ROUTES: list[Any] = [
    station_list, station_new, station_create, station_edit, station_update, station_detail, station_action,
    station_batch, station_delete_confirm, station_delete,
]
