"""B4 facility archives (charging equipment) in the operators' back office (/backoffice/facilities):
the list, the form of several rows at once (or one, to edit), the detail page (also the
regulators' at /admin/facilities/{pk}), the workflow actions one by one or in a batch (including
applying for interconnection), and deletion. The regulators' queue is :mod:`.review`.
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
from portal_site.routes.archives.lists import facility_list_context, list_again
from services import workflow as wfmod
from services.archives import facilities as fac
from services.archives import reports as rep
from services.archives.workflows import ACTION_LABELS, FACILITY
from services.db import Database
from services.errors import AppError, BadRequest
from services.models.archives import FacilityArchive, ReportArchive, StationArchive
from services.models.core import Operator
from services.params import int_param
from services.settings import Settings

__all__ = ["ROUTES", "FACILITY_OPERATOR_ACTIONS"]

FACILITY_OPERATOR_ACTIONS = ("submit", "withdraw", "apply_ic")
BATCH_ACTIONS = ("submit", "apply_ic", "withdraw")


@get("/backoffice/facilities", guards=OP, sync_to_thread=True, include_in_schema=False)
def facility_list(request: Request, db: Database, settings: Settings) -> Template:
    with db.session() as s:
        return Template("archives/facilities_list.html", context=facility_list_context(request, s, settings))


def _facility_form(request: Request, s: Any, settings: Settings, *, fa: FacilityArchive | None, station_pk: Any,
                   rows: list[dict[str, Any]], errors: dict[str, str], status: int = 200,
                   flash: str | None = None) -> Template:
    actor = actor_of(request)
    my_stations = list(s.execute(select(StationArchive).where(StationArchive.operator_pk == actor.operator_pk)
                                 .order_by(StationArchive.station_id)).scalars())
    my_reports = rep.for_operator(s, actor.operator_pk)
    return Template("archives/facility_form.html", status_code=status, context=page_context(
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
        return redirect("/backoffice/facilities")
    rows = _rows_from_form(data)

    def work(s: Any) -> Redirect:
        n = len(fac.create_many(s, actor_of(request), data.get("station"), rows, submit=op == "submit"))
        zh, en = saved_or_submitted(op).split(" / ")
        return redirect("/backoffice/facilities", ok=f"{n}个设施{zh} / {n} facilities {en}")

    def form_again(s: Any, exc: AppError) -> Template:
        return _facility_form(request, s, settings, fa=None, station_pk=data.get("station"), rows=rows,
                              errors=errors_for(request, exc), status=400, flash=localized(request, exc.message))

    return run_or_render(db, work, form_again, catch=BadRequest)


@get("/backoffice/facilities/{pk:int}/edit", guards=OP, sync_to_thread=True, include_in_schema=False)
def facility_edit(request: Request, db: Database, settings: Settings, pk: int) -> Template:
    with db.session() as s:
        fa = fac.get(s, actor_of(request), pk)
        FACILITY.next_state(fa.state, "edit", "operator")
        row = {f.name: getattr(fa, f.name) for f in fac.FORM_FIELDS}
        row["report_archive_pk"] = fa.report_archive_pk
        return _facility_form(request, s, settings, fa=fa, station_pk=fa.station_archive_pk, rows=[row], errors={})


@post("/backoffice/facilities/{pk:int}", guards=OP, sync_to_thread=True, include_in_schema=False)
def facility_update(request: Request, db: Database, settings: Settings, pk: int, data: Form) -> Template | Redirect:
    op = data.get("op", "save")
    if op == "cancel":
        return redirect("/backoffice/facilities")
    rows = _rows_from_form(data) or [{}]

    def work(s: Any) -> Redirect:
        fa = fac.update(s, actor_of(request), pk, data.get("station"), rows[0], submit=op == "submit")
        return redirect("/backoffice/facilities", ok=f"{fa.equipment_id}：{saved_or_submitted(op)}")

    def form_again(s: Any, exc: AppError) -> Template:
        fa = fac.get(s, actor_of(request), pk)
        errors = {f"0.{k}" if "." not in k else k: m for k, m in errors_for(request, exc).items()}
        return _facility_form(request, s, settings, fa=fa, station_pk=data.get("station"), rows=rows,
                              errors=errors, status=400, flash=localized(request, exc.message))

    return run_or_render(db, work, form_again, catch=BadRequest)


@get(["/backoffice/facilities/{pk:int}", "/admin/facilities/{pk:int}"], guards=[require_owner_or_regulator],
     sync_to_thread=True, include_in_schema=False)
def facility_detail(request: Request, db: Database, settings: Settings, pk: int) -> Template:
    actor = actor_of(request)
    with db.session() as s:
        fa = fac.get(s, actor, pk)
        st = s.get(StationArchive, fa.station_archive_pk)
        r = s.get(ReportArchive, fa.report_archive_pk) if fa.report_archive_pk else None
        rfile = rep.current_files(s, [r.id]).get(r.id) if r else None
        allowed = FACILITY.allowed(fa.state, actor.role)
        if "delete" in allowed and fa.ever_approved:
            allowed.remove("delete")
        return Template("archives/facility_detail.html", context=page_context(
            request, s, settings, fa=fa, st=st, r=r, rfile=rfile, operator=s.get(Operator, fa.operator_pk),
            events=wfmod.events_for(s, FACILITY, [fa.id]), allowed=allowed,
            interconnected=fac.operator_interconnected(s, fa.operator_pk)))


@post("/backoffice/facilities/{pk:int}/{action:str}", guards=OP, sync_to_thread=True, include_in_schema=False)
def facility_action(request: Request, db: Database, settings: Settings, pk: int, action: str, data: Form) -> Template | Redirect:
    if action not in FACILITY_OPERATOR_ACTIONS:
        raise NotFoundException("no such action")

    def work(s: Any) -> Redirect:
        fa = fac.transition(s, actor_of(request), pk, action)
        label = f"{fa.equipment_id}：{ACTION_LABELS[action][0]} / {fa.equipment_id}: {ACTION_LABELS[action][1]}"
        return redirect(back_to(request, "/backoffice/facilities"), ok=label)

    return run_or_render(db, work, list_again(request, settings, "facilities"))


@post("/backoffice/facilities/batch/{action:str}", guards=OP, sync_to_thread=True, include_in_schema=False)
def facility_batch(request: Request, db: Database, settings: Settings, action: str, data: Form) -> Template | Redirect:
    if action not in BATCH_ACTIONS:
        raise NotFoundException("no such action")

    def work(s: Any) -> Redirect:
        n = fac.transition_many(s, actor_of(request), form_ids(data.get("ids")), action)
        return redirect("/backoffice/facilities",
                        ok=f"{n}个设施已{ACTION_LABELS[action][0]} / {ACTION_LABELS[action][1]}: {n} facilities")

    return run_or_render(db, work, list_again(request, settings, "facilities"))


@get("/backoffice/facilities/{pk:int}/delete", guards=OP, sync_to_thread=True, include_in_schema=False)
def facility_delete_confirm(request: Request, db: Database, settings: Settings, pk: int) -> Template:
    with db.session() as s:
        fa = fac.get(s, actor_of(request), pk)
        FACILITY.next_state(fa.state, "delete", "operator")
        blockers = [localized(request, "曾通过档案审核的设施不能删除 / once approved, a facility cannot be deleted")] \
            if fa.ever_approved else []
        return confirm_page(request, s, settings, fa.equipment_id, f"/backoffice/facilities/{pk}/delete",
                            "/backoffice/facilities", blockers)


@post("/backoffice/facilities/{pk:int}/delete", guards=OP, sync_to_thread=True, include_in_schema=False)
def facility_delete(request: Request, db: Database, settings: Settings, pk: int, data: Form) -> Template | Redirect:
    def work(s: Any) -> Redirect:
        eid = fac.get(s, actor_of(request), pk).equipment_id
        fac.delete(s, actor_of(request), pk)
        return redirect("/backoffice/facilities", ok=f"{eid}：已删除 / deleted")

    return run_or_render(db, work, list_again(request, settings, "facilities"))


ROUTES: list[Any] = [
    facility_list, facility_new, facility_create, facility_edit, facility_update, facility_detail, facility_action,
    facility_batch, facility_delete_confirm, facility_delete,
]
