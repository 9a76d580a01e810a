"""The regulators' review of station (B2) and facility (B4) archives under /admin: the queues
(under review by default) and the decisions, one by one or in a batch: approve or reject, and
for facilities approve or reject their interconnection. The detail pages are shared with the
operators (:mod:`.stations`, :mod:`.facilities`).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template

from portal_site.routes.archives.common import REG, Form, actor_of, back_to, form_ids, redirect, run_or_render
from portal_site.routes.archives.lists import facility_list_context, list_again, station_list_context
from services.archives import facilities as fac
from services.archives import stations as sta
from services.archives.workflows import ACTION_LABELS
from services.db import Database
from services.settings import Settings

__all__ = ["ROUTES", "REVIEW"]


@get("/admin/stations", guards=REG, sync_to_thread=True, include_in_schema=False)
def admin_stations(request: Request, db: Database, settings: Settings) -> Template:
    with db.session() as s:
        return Template("archives/admin_stations.html", context=station_list_context(request, s, settings, admin=True))


@get("/admin/facilities", guards=REG, sync_to_thread=True, include_in_schema=False)
def admin_facilities(request: Request, db: Database, settings: Settings) -> Template:
    with db.session() as s:
        return Template("archives/admin_facilities.html", context=facility_list_context(request, s, settings, admin=True))


#: kind (the second segment of the path) -> (its service, the regulators' actions on it)
REVIEW = {"stations": (sta, ("approve", "reject")), "facilities": (fac, ("approve", "reject", "approve_ic", "reject_ic"))}


def _review(request: Request, action: str, data: dict[str, Any]) -> tuple[str, Any, str | None]:
    """(kind, service, reason) of a decision; 404 for an action the kind has not."""
    kind = request.url.path.split("/")[2]
    if kind not in REVIEW or action not in REVIEW[kind][1]:
        raise NotFoundException("no such action")
    return kind, REVIEW[kind][0], (data.get("reason") or "").strip() or None


@post(["/admin/stations/{pk:int}/{action:str}", "/admin/facilities/{pk:int}/{action:str}"], guards=REG,
      sync_to_thread=True, include_in_schema=False)
def admin_decide(request: Request, db: Database, settings: Settings, pk: int, action: str,
                 data: Form) -> Template | Redirect:
    kind, svc, reason = _review(request, action, data)

    def work(s: Any) -> Redirect:
        svc.transition(s, actor_of(request), pk, action, reason)
        return redirect(back_to(request, f"/admin/{kind}"),
                        ok=f"已处理：{ACTION_LABELS[action][0]} / done: {ACTION_LABELS[action][1]}")

    return run_or_render(db, work, list_again(request, settings, kind, admin=True))


@post(["/admin/stations/batch/{action:str}", "/admin/facilities/batch/{action:str}"], guards=REG,
      sync_to_thread=True, include_in_schema=False)
def admin_batch(request: Request, db: Database, settings: Settings, action: str, data: Form) -> Template | Redirect:
    kind, svc, reason = _review(request, action, data)

    def work(s: Any) -> Redirect:
        n = svc.transition_many(s, actor_of(request), form_ids(data.get("ids")), action, reason)
        return redirect(back_to(request, f"/admin/{kind}"),
                        ok=f"{n}条已处理：{ACTION_LABELS[action][0]} / {n} done: {ACTION_LABELS[action][1]}")

    return run_or_render(db, work, list_again(request, settings, kind, admin=True))


ROUTES: list[Any] = [admin_stations, admin_facilities, admin_decide, admin_batch]
