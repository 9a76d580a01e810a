"""Data quality (issue 16, item 5): how truthful each operator's feed is, per China month.

* ``/admin/data-quality?month=YYYY-MM``: the regulators' table per operator (freshness, push
  delay, stuck connectors, contradictions, suspect stations, rejected records, archive
  differences, uptime against the 97 % threshold) and its trend over the last six months;
* ``/admin/data-quality.xlsx?month=YYYY-MM``: the month as a workbook (operators, stations, the
  rows behind the counts, the trend; uptime below 97 % filled red and in a column of its own);
* ``/admin/data-quality/operators/{OperatorID}?month=YYYY-MM``: one operator's stations and rows;
* ``/backoffice/data-quality?month=YYYY-MM``: an operator's own table and the rows to fix
  (stuck connectors, contradictions, suspect stations, silent connectors, archive differences).

The figures are the stored month (``services.reliability.quality``: refreshed by the data-quality
job; a missing month is computed for the city and stored on a regulator's request, computed for the
operator alone and not stored on an operator's); silent connectors and archive differences are read
live. Unknown parameters and a bad month are 400s naming the parameter.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.response import Template
from sqlalchemy import text

from portal_site import auth
from portal_site.i18n import lang_of
from portal_site.routes.orders import context
from services.db import Database
from services.reliability import quality as q
from services.search.query import check_known
from services.settings import Settings

__all__ = ["ROUTES", "on_shutdown", "on_startup"]

REG = [auth.require_regulator]
OP = [auth.require_operator]
KNOWN = ("month",)
STATUS_NAMES = {0: ("离线", "offline"), 1: ("空闲", "free"), 2: ("占用（未充电）", "occupied"), 3: ("充电中", "charging"),
                4: ("预约", "reserved"), 255: ("故障", "fault")}
REASONS = {"use_without_orders": ("有使用状态但无订单", "in use, no orders"),
           "orders_without_status": ("有订单但状态无变化", "orders, no status change"),
           "no_archive": ("无备案档案", "no approved archive"), "not_in_feed": ("档案站点未上报", "archived, not in the feed"),
           "name": ("名称不一致", "name differs"), "station_type": ("类型不一致", "type differs"),
           "position": ("位置相差过远", "position too far")}


def _month(request: Request) -> q.Month:
    check_known(request.query_params, KNOWN)
    return q.parse_month(request.query_params.get("month"), datetime.now(UTC))


def _ctx(request: Request, **kw: Any) -> dict[str, Any]:
    return context(request, threshold=q.THRESHOLD, status_names=STATUS_NAMES, reason_names=REASONS,
                   pct=lambda v: "—" if v is None else f"{float(v) * 100:.1f}%",
                   sec=lambda v: "—" if v is None else f"{float(v):,.0f} s", **kw)


def _operator(conn: Any, operator_id: str) -> dict[str, Any]:
    row = conn.execute(text("SELECT id, operator_id, name FROM operators WHERE operator_id = :o"),
                       {"o": operator_id[:64]}).mappings().first()
    if row is None:
        raise NotFoundException(f"没有运营商 {operator_id[:64]} / no operator {operator_id[:64]}")
    return dict(row)


def _detail(conn: Any, month: q.Month, operator_id: str, settings: Settings, *, store: bool) -> dict[str, Any]:
    """One operator's month with the rows behind it; ``store``: a missing month is computed for the
    city and stored (regulators), else for this operator only and not stored (operators)."""
    max_m = settings.supervision.archive_max_distance_m
    view = q.month_view(conn, month, operator_id, stations=True, details=True, max_distance_m=max_m, store=store)
    view["silent"] = q.silent_connectors(conn, operator_id)
    view["archives"] = q.archive_differences(conn, operator_id, max_distance_m=max_m)
    view["row"] = next(iter(view["operators"]), None)
    view["trend"] = q.trend(conn, month, operator_id, store=store)
    return view


@get("/admin/data-quality", guards=REG, sync_to_thread=True, include_in_schema=False)
def overview(request: Request, db: Database) -> Template:
    month = _month(request)
    with db.session() as s:
        conn = s.connection()
        view = q.month_view(conn, month)
        trend = q.trend(conn, month)
        s.commit()
    return Template("quality/overview.html", context=_ctx(request, v=view, trend=trend, month=month,
                                                          params={"month": month.label}))


@get("/admin/data-quality.xlsx", guards=REG, sync_to_thread=True, include_in_schema=False)
def export(request: Request, db: Database) -> Response:
    month = _month(request)
    with db.session() as s:
        conn = s.connection()
        view = q.month_view(conn, month, stations=True, details=True)
        trend = q.trend(conn, month)
        s.commit()
    data = q.quality_xlsx(view, trend, lang_of(request))
    return Response(content=data, media_type=q.XLSX_MEDIA_TYPE, headers={
        "Content-Disposition": f'attachment; filename="data-quality-{month.label}.xlsx"', "Cache-Control": "no-store"})


@get("/admin/data-quality/operators/{operator_id:str}", guards=REG, sync_to_thread=True, include_in_schema=False)
def operator(request: Request, db: Database, settings: Settings, operator_id: str) -> Template:
    month = _month(request)
    with db.session() as s:
        conn = s.connection()
        op = _operator(conn, operator_id)
        view = _detail(conn, month, op["operator_id"], settings, store=True)
        s.commit()
    return Template("quality/operator.html", context=_ctx(request, op=op, v=view, month=month, admin=True,
                                                          base=f"/admin/data-quality/operators/{op['operator_id']}",
                                                          params={"month": month.label}))


@get("/backoffice/data-quality", guards=OP, sync_to_thread=True, include_in_schema=False)
def own(request: Request, db: Database, settings: Settings) -> Template:
    month = _month(request)
    user = auth.current_user(request)
    with db.session() as s:
        conn = s.connection()
        op = _operator(conn, user.operator_id)
        view = _detail(conn, month, op["operator_id"], settings, store=False)
    return Template("quality/operator.html", context=_ctx(request, op=op, v=view, month=month, admin=False,
                                                          base="/backoffice/data-quality",
                                                          params={"month": month.label}))


def on_startup(app: Litestar) -> None:
    settings: Settings = app.state["settings"]
    if settings.app.run_scheduler:
        job = q.quality_job(app.state["db"].engine)
        job.start()
        app.state["quality_job"] = job


def on_shutdown(app: Litestar) -> None:
    job = app.state.get("quality_job") if hasattr(app.state, "get") else None
    if job is not None:
        job.stop()


ROUTES: list[Any] = [overview, export, operator, own]
