"""The regulators' price execution (issue 15, item 6) under /admin/:

* ``/admin/prices``: per operator over a window of China dates (the last 30 days by default):
  orders, energy, money, the share billed at the announced tariff, overcharged orders and the
  overcharge, disputed orders, reconciliation disputes and unreconciled days, and the current
  tariffs over the city's cap; ``/admin/prices/export.xlsx`` the same as a workbook (with the
  stations, the disputed orders and their findings);
* the drill-down: operator (``/admin/prices/operators/{OperatorID}``: its stations, tariffs over
  the cap, reconciliations, unreconciled days) → its orders (``…/orders``, the operators' list
  with the same filters) → one order (``/admin/prices/orders/{id}``) or one reconciliation;
* ``/admin/price-cap``: the city's cap, a regulator setting with its history (audited).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template
from sqlalchemy import text

from portal_site import auth
from portal_site.i18n import lang_of
from portal_site.routes.messaging import Form, form_error
from portal_site.routes.orders import check_page, context, orders_page
from services.db import Database
from services.errors import AppError
from services.orders import pages
from services.orders.execution import disputed_orders, execution_report, unreconciled_days
from services.orders.export import XLSX_MEDIA_TYPE, execution_xlsx
from services.orders.window import Window
from services.prices.oversight import NOTE_MAX, read_cap_form, set_city_cap
from services.prices.store import cap_at, cap_history
from services.settings import Settings

__all__ = ["ROUTES"]

REG = [auth.require_regulator]
PREVIEW_ROWS = 30


def _operator(s: Any, operator_id: str) -> dict[str, Any]:
    row = s.execute(text("SELECT id, operator_id, name FROM operators WHERE operator_id = :o"),
                    {"o": operator_id[:64]}).mappings().first()
    if row is None:
        raise NotFoundException(f"没有运营商 {operator_id[:64]} / no operator {operator_id[:64]}")
    return dict(row)


@get("/admin/prices", guards=REG, sync_to_thread=True, include_in_schema=False)
def overview(request: Request, db: Database, settings: Settings) -> Template:
    window = Window.parse(request.query_params)
    with db.session() as s:
        cap = cap_at(s, default=settings.supervision)
        report = execution_report(s, window, cap)
        days = unreconciled_days(s, window)
    return Template("prices/overview.html", context=context(
        request, r=report, window=window, cap=cap, days=days, preview=PREVIEW_ROWS, params=window.as_params()))


@get("/admin/prices/export.xlsx", guards=REG, sync_to_thread=True, include_in_schema=False)
def export(request: Request, db: Database, settings: Settings) -> Response:
    window = Window.parse(request.query_params)
    operator_id = (request.query_params.get("operator") or "").strip() or None
    with db.session() as s:
        if operator_id is not None:
            operator_id = _operator(s, operator_id)["operator_id"]
        cap = cap_at(s, default=settings.supervision)
        data = execution_xlsx(execution_report(s, window, cap, operator_id), unreconciled_days(s, window, operator_id),
                              disputed_orders(s, window, operator_id), lang_of(request))
    name = f"price-execution-{operator_id + '-' if operator_id else ''}{window.day_from}-{window.day_to}.xlsx"
    return Response(content=data, media_type=XLSX_MEDIA_TYPE, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@get("/admin/prices/operators/{operator_id:str}", guards=REG, sync_to_thread=True, include_in_schema=False)
def operator(request: Request, db: Database, settings: Settings, operator_id: str) -> Template:
    window = Window.parse(request.query_params)
    with db.session() as s:
        op = _operator(s, operator_id)
        cap = cap_at(s, default=settings.supervision)
        report = execution_report(s, window, cap, op["operator_id"])
        days = unreconciled_days(s, window, op["operator_id"])
        checks = pages.reconciliation_days(s, op["operator_id"], window)
        disputed = disputed_orders(s, window, op["operator_id"], limit=PREVIEW_ROWS + 1)
    row = next((r for r in report["operators"] if r["operator_id"] == op["operator_id"]), None)
    return Template("prices/operator.html", context=context(
        request, op=op, r=report, row=row, window=window, cap=cap, days=days, checks=checks, disputed=disputed,
        preview=PREVIEW_ROWS, params=window.as_params()))


@get("/admin/prices/operators/{operator_id:str}/orders", guards=REG, sync_to_thread=True, include_in_schema=False)
def orders(request: Request, db: Database, operator_id: str) -> Template:
    with db.session() as s:
        op = _operator(s, operator_id)
        base = f"/admin/prices/operators/{op['operator_id']}"
        return orders_page(request, s, op["operator_id"], base=base + "/orders", detail_base="/admin/prices/orders/",
                           admin=True, op=op)


@get("/admin/prices/operators/{operator_id:str}/checks/{check_id:int}", guards=REG, sync_to_thread=True,
     include_in_schema=False)
def check(request: Request, db: Database, operator_id: str, check_id: int) -> Template:
    with db.session() as s:
        op = _operator(s, operator_id)
        return check_page(request, s, op["operator_id"], check_id, admin=True, op=op,
                          detail_base="/admin/prices/orders/", back=f"/admin/prices/operators/{op['operator_id']}")


@get("/admin/prices/orders/{order_id:int}", guards=REG, sync_to_thread=True, include_in_schema=False)
def order(request: Request, db: Database, order_id: int) -> Template:
    with db.session() as s:
        detail = pages.order_detail(s, order_id)
    base = f"/admin/prices/operators/{detail['order']['operator_id']}"
    return Template("orders/detail.html", context=context(request, **detail, admin=True, list_base=base + "/orders",
                                                          check_base=base + "/checks/"))


# --- the city's cap -----------------------------------------------------------------------------
def _cap_page(request: Request, db: Database, settings: Settings, *, form: dict[str, Any] | None = None,
              status: int = 200, **kw: Any) -> Template:
    with db.session() as s:
        cap = cap_at(s, default=settings.supervision)
        history = cap_history(s)
        now = s.execute(text("SELECT now()")).scalar_one()
    in_force = next((h["id"] for h in history if h["valid_from"] <= now), None)
    for h in history:
        h["state"] = "scheduled" if h["valid_from"] > now else "in_force" if h["id"] == in_force else "replaced"
    return Template("prices/cap.html", status_code=status, context=context(
        request, cap=cap, history=history, form=form or {"basis": cap.basis}, note_max=NOTE_MAX,
        default=settings.supervision, configured=in_force is not None, **{"errors": {}, **kw}))


@get("/admin/price-cap", guards=REG, sync_to_thread=True, include_in_schema=False)
def cap_page(request: Request, db: Database, settings: Settings) -> Template:
    flash = "已保存 / saved" if request.query_params.get("ok") else None
    return _cap_page(request, db, settings, flash=flash)


@post("/admin/price-cap", guards=REG, sync_to_thread=True, include_in_schema=False)
def cap_set(request: Request, db: Database, settings: Settings, data: Form) -> Template | Redirect:
    try:
        form = read_cap_form(data)
        with db.session() as s:
            set_city_cap(s, auth.current_user(request), form)
    except AppError as exc:
        return _cap_page(request, db, settings, form=dict(data), status=exc.status_code, **form_error(exc))
    return Redirect("/admin/price-cap?ok=1", status_code=303)


ROUTES: list[Any] = [overview, export, operator, orders, check, order, cap_page, cap_set]
