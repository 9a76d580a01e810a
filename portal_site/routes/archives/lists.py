"""The list pages of the station and facility archives: what the operator's lists and the
regulators' queues show (filters, counts, the related rows), and the list shown again when an
action on it failed (:func:`list_again`).

Used by :mod:`.stations`, :mod:`.facilities`, :mod:`.review` and
:mod:`portal_site.routes.interconnection` (the regulators' interconnection queue).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request
from litestar.response import Template
from sqlalchemy import select

from portal_site.routes.archives.common import actor_of, localized, page_context
from services.archives import facilities as fac
from services.archives import stations as sta
from services.errors import AppError
from services.models.archives import ReportArchive, StationArchive
from services.models.core import Operator
from services.settings import Settings

__all__ = ["station_list_context", "facility_list_context", "list_again"]


def _operators(s: Any) -> dict[int, Operator]:
    return {o.id: o for o in s.execute(select(Operator).order_by(Operator.name)).scalars()}


def station_list_context(request: Request, s: Any, settings: Settings, *, admin: bool = False) -> dict[str, Any]:
    actor = actor_of(request)
    f = sta.StationFilter.from_query(request.query_params)
    if admin and "state" not in request.query_params:
        f.state = "under_review"
    page = sta.list_page(s, actor, f)
    return page_context(request, s, settings, page=page, stats=sta.stats(s, actor, f), f=f, admin=admin,
                        operators=_operators(s) if admin else {})


def facility_list_context(request: Request, s: Any, settings: Settings, *, admin: bool = False,
                          ic_queue: bool = False) -> dict[str, Any]:
    actor = actor_of(request)
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
    return page_context(request, s, settings, page=page, stats=fac.stats(s, actor, f), f=f, stations=stations,
                        reports=reports, my_stations=my_stations, admin=admin, ic_queue=ic_queue,
                        operators=_operators(s) if admin else {},
                        interconnected=(fac.operator_interconnected(s, actor.operator_pk) if actor.is_operator else None))


def list_again(request: Request, settings: Settings, kind: str, *,
               admin: bool = False) -> Callable[[Any, AppError], Template]:
    """The ``on_error`` of an action on a list (``kind`` is "stations" or "facilities"): the list
    again (the regulators' queue if ``admin``) with the error, its details and the offending rows."""

    def render(s: Any, exc: AppError) -> Template:
        if kind == "stations":
            ctx = station_list_context(request, s, settings, admin=admin)
            name = "archives/admin_stations.html" if admin else "archives/stations_list.html"
        else:
            ctx = facility_list_context(request, s, settings, admin=admin)
            name = "archives/admin_facilities.html" if admin else "archives/facilities_list.html"
        msg = localized(request, exc.message)
        details = exc.details if isinstance(exc.details, dict) else {}
        if details and not details.get("offenders"):
            msg += "：" + "；".join(localized(request, str(m)) for m in details.values() if isinstance(m, str))
        ctx.update(flash=msg, flash_error=True, offenders=details.get("offenders") or [])
        return Template(name, status_code=exc.status_code, context=ctx)

    return render
