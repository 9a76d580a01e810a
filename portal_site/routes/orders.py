"""The operators' orders, reconciliations and tariffs (issue 15, item 8) under /backoffice/:

* ``/backoffice/orders``: their charge orders as we hold them (latest versions), filtered by
  station, day and status (accepted, disputed, overcharged, revised, unreconciled), paged;
  ``/backoffice/orders/{id}``: one order with its details, findings and every version;
* ``/backoffice/reconciliations``: each day's ``check_charge_orders`` with our disputes (reason 1
  unknown here, 2 money differs, 3 energy differs) and the orders we hold that their list lacked;
  ``/backoffice/reconciliations/{id}``: one list;
* ``/backoffice/tariffs``: their tariffs as the platform sees them, per station and connector,
  with every broken rule and the policy as answered, so they can fix their side.

Every query is scoped to the operator of the session: another operator's ids are 404. The
regulators' drill-down (:mod:`portal_site.routes.prices`) renders the same templates.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from litestar import Request, get
from litestar.response import Template
from sqlalchemy import text

from portal_site import auth
from portal_site.routes.messaging import fmt_dt
from services.db import Database
from services.orders import pages
from services.orders.execution import COLUMNS, REASONS
from services.orders.window import Window
from services.params import int_param, page_param
from services.prices import oversight
from services.prices.oversight import BASES, operator_tariffs, tariff_counts
from services.prices.store import cap_at
from services.settings import Settings

__all__ = ["ROUTES", "context", "price_bar"]

OP = [auth.require_operator]
SOURCES = {**oversight.SOURCES, None: ("无电价", "no tariff")}
SEVERITIES = {"error": ("错误", "error", "bad"), "warning": ("提醒", "warning", "warn"), "info": ("说明", "note", "")}


def num(value: Any, kind: str = "n") -> str:
    """A figure for people: counts with separators, yuan and kWh with 2 decimals, prices with 4,
    shares with one and a per cent sign; None is a dash.

    >>> num(Decimal("1234.5"), "yuan"), num(1234, "n"), num(Decimal("1.25"), "price"), num(98.46, "pct"), num(None)
    ('1,234.50', '1,234', '1.2500', '98.5%', '—')
    """
    if value is None:
        return "—"
    if kind in ("yuan", "kwh"):
        return f"{Decimal(value):,.2f}"
    if kind == "price":
        return f"{Decimal(value):.4f}"
    if kind == "pct":
        return f"{float(value):.1f}%"
    return f"{int(value):,}"


def price_bar(periods: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The day's periods as segments of a 24-hour bar: ``width`` (per cent of the day) and
    ``level`` 0 (the day's cheapest) to 4 (its dearest), for the colour.

    >>> [(s["start"], s["width"], s["level"]) for s in price_bar([
    ...     {"start": "00:00", "end": "08:00", "total": "0.9000"}, {"start": "08:00", "end": "24:00", "total": "1.2500"}])]
    [('00:00', 33.333, 0), ('08:00', 66.667, 4)]
    """
    def minutes(hhmm: str) -> int:
        h, m = hhmm.split(":")[:2]
        return int(h) * 60 + int(m)

    totals = [Decimal(p["total"]) for p in periods]
    low, high = (min(totals), max(totals)) if totals else (Decimal(0), Decimal(0))
    out = []
    for p, total in zip(periods, totals, strict=True):
        width = round(100 * (minutes(p["end"]) - minutes(p["start"])) / 1440, 3)
        level = 0 if high == low else int(round(4 * (total - low) / (high - low)))
        out.append({**p, "width": width, "level": level})
    return out


def context(request: Request, **kw: Any) -> dict[str, Any]:
    """What every orders/prices template gets: formatters and vocabularies."""
    return {"num": num, "local": fmt_dt, "price_bar": price_bar, "statuses": pages.STATUSES, "reasons": REASONS,
            "reconcile_states": pages.RECONCILE_STATES, "sources": SOURCES, "severities": SEVERITIES,
            "columns": COLUMNS, "bases": BASES, "query": dict(request.query_params), "urlencode": urlencode, **kw}


def stations_of(s: Any, operator_id: str) -> list[dict[str, Any]]:
    """The operator's stations for the filters (id, StationID, name)."""
    return [dict(r) for r in s.execute(text("SELECT id, station_id, name FROM stations WHERE operator_id = :op "
                                            "ORDER BY name, id"), {"op": operator_id}).mappings()]


def orders_page(request: Request, s: Any, operator_id: str, *, base: str, detail_base: str, **kw: Any) -> Template:
    """The orders list (both sides): ``base`` is the list's path, ``detail_base`` the order's."""
    q = pages.OrderQuery.parse(request.query_params)
    page = pages.list_orders(s, operator_id, q)
    return Template("orders/list.html", context=context(
        request, q=q, page=page, stations=stations_of(s, operator_id), base=base, detail_base=detail_base,
        params=q.as_params(), **kw))


def check_page(request: Request, s: Any, operator_id: str, check_id: int, **kw: Any) -> Template:
    return Template("orders/check.html", context=context(request, **pages.check_detail(s, operator_id, check_id), **kw))


# --- the operators' pages -----------------------------------------------------------------------
@get("/backoffice/orders", guards=OP, sync_to_thread=True, include_in_schema=False)
def op_orders(request: Request, db: Database) -> Template:
    user = auth.current_user(request)
    with db.session() as s:
        return orders_page(request, s, user.operator_id, base="/backoffice/orders", detail_base="/backoffice/orders/",
                           admin=False)


@get("/backoffice/orders/{order_id:int}", guards=OP, sync_to_thread=True, include_in_schema=False)
def op_order(request: Request, db: Database, order_id: int) -> Template:
    user = auth.current_user(request)
    with db.session() as s:
        detail = pages.order_detail(s, order_id, user.operator_id)
    return Template("orders/detail.html", context=context(request, **detail, admin=False, list_base="/backoffice/orders",
                                                          check_base="/backoffice/reconciliations/"))


@get("/backoffice/reconciliations", guards=OP, sync_to_thread=True, include_in_schema=False)
def op_reconciliations(request: Request, db: Database) -> Template:
    user = auth.current_user(request)
    window = Window.parse(request.query_params)
    with db.session() as s:
        days = pages.reconciliation_days(s, user.operator_id, window)
    return Template("orders/reconciliations.html", context=context(
        request, days=days, window=window, admin=False, check_base="/backoffice/reconciliations/",
        orders_base="/backoffice/orders"))


@get("/backoffice/reconciliations/{check_id:int}", guards=OP, sync_to_thread=True, include_in_schema=False)
def op_check(request: Request, db: Database, check_id: int) -> Template:
    user = auth.current_user(request)
    with db.session() as s:
        return check_page(request, s, user.operator_id, check_id, admin=False, detail_base="/backoffice/orders/",
                          back="/backoffice/reconciliations")


@get("/backoffice/tariffs", guards=OP, sync_to_thread=True, include_in_schema=False)
def op_tariffs(request: Request, db: Database, settings: Settings) -> Template:
    user = auth.current_user(request)
    station = int_param(request.query_params.get("station"), "station")
    problems = request.query_params.get("problems") == "1"
    pg = page_param(request.query_params.get("page"))
    with db.session() as s:
        cap = cap_at(s, default=settings.supervision)
        tariffs = operator_tariffs(s, user.operator_id, cap, station_pk=station, problems_only=problems, page=pg)
        counts = tariff_counts(s, cap, user.operator_id).get(user.operator_id, {})
        stations = stations_of(s, user.operator_id)
    params = {k: v for k, v in (("station", station), ("problems", "1" if problems else None)) if v is not None}
    return Template("orders/tariffs.html", context=context(
        request, tariffs=tariffs, counts=counts, cap=cap, stations=stations, station=station, problems=problems,
        params=params))


ROUTES: list[Any] = [op_orders, op_order, op_reconciliations, op_check, op_tariffs]
