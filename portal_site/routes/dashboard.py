"""The regulator dashboard (/admin/dashboard) with its CSV exports, and the status-snapshot job
behind the online-rate chart (started with the app when ``settings.app.run_scheduler``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.response import Template
from markupsafe import Markup

from portal_site import auth
from portal_site.i18n import lang_of
from portal_site.routes.messaging import fmt_dt
from services.db import Database
from services.settings import Settings
from services.supervision import dashboard as dash
from services.supervision.fees import PERIODS


def _json(value: Any) -> Markup:
    """JSON safe inside a <script type="application/json"> element."""
    text = json.dumps(value, ensure_ascii=False, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _hours(request: Request) -> int:
    """The dashboard's window: 1 hour to 31 days (24 hours when missing or out of range)."""
    text = request.query_params.get("hours", "24")
    return int(text) if text.isdigit() and text.isascii() and 1 <= int(text) <= 24 * 31 else 24


@get("/admin/dashboard", guards=[auth.require_regulator], sync_to_thread=True, include_in_schema=False)
def dashboard(request: Request, db: Database, settings: Settings) -> Template:
    hours_i = _hours(request)
    lang = lang_of(request)
    with db.session() as s:
        d = dash.dashboard(s, settings.supervision, hours=hours_i, lang=lang)
    t = d["tables"]
    charts = {
        "districts": {"labels": [r["label"] for r in t["connectors_by_district"].rows],
                      **{k: [r[k] for r in t["connectors_by_district"].rows] for k in dash.STATES}},
        "operators": {"labels": [r["label"] for r in t["connectors_by_operator"].rows[:15]],
                      **{k: [r[k] for r in t["connectors_by_operator"].rows[:15]] for k in dash.STATES}},
        "series": {"labels": [fmt_dt(r["taken_at"], "%m-%d %H:%M") for r in d["series"]],
                   "rate": [r["online_rate"] for r in d["series"]]},
        "prices": {"labels": [r["label"] for r in t["prices_by_operator"].rows[:12]],
                   **{f"{x}_{p}": [r[f"{x}_{p}"] for r in t["prices_by_operator"].rows[:12]] for x in "es" for p in PERIODS}},
        "charging": {"labels": [r["day"][5:] for r in d["orders"]["daily"]],
                     "energy": [float(r["energy_kwh"]) for r in d["orders"]["daily"]],
                     "avg": [float(r["avg_price"]) if r["avg_price"] is not None else None for r in d["orders"]["daily"]],
                     "energy_label": "energy (kWh)" if lang == "en" else "充电量（度）",
                     "avg_label": "average price (yuan/kWh)" if lang == "en" else "平均单价（元/度）"},
        "state_labels": {k: (v[1] if lang == "en" else v[0]) for k, v in dash.STATE_LABELS.items()},
        "period_labels": {p: (v[0][1] if lang == "en" else v[0][0]) for p, v in PERIODS.items()},
        "fee_labels": {"e": "electricity" if lang == "en" else "电费", "s": "service" if lang == "en" else "服务费"},
    }
    return Template("dashboard/dashboard.html", context={
        "d": d, "tables": t, "charts": _json(charts), "fmt_dt": fmt_dt, "hours": hours_i, "lang": lang,
        "cfg": settings.supervision, "states": dash.STATES, "state_labels": dash.STATE_LABELS})


@get("/admin/dashboard/csv/{name:str}", guards=[auth.require_regulator], sync_to_thread=True, include_in_schema=False)
def dashboard_csv(request: Request, db: Database, settings: Settings, name: str) -> Response:
    lang = lang_of(request)
    with db.session() as s:
        d = dash.dashboard(s, settings.supervision, hours=_hours(request), lang=lang)
    table = d["tables"].get(name.removesuffix(".csv"))
    if table is None:
        raise NotFoundException(f"no such table: {name}")
    return Response(content=dash.to_csv(table, lang).encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name.removesuffix(".csv")}.csv"', "Cache-Control": "no-store"})


def on_startup(app: Litestar) -> None:
    settings: Settings = app.state["settings"]
    if settings.app.run_scheduler:
        job = dash.snapshot_job(app.state["db"].engine, settings.supervision)
        job.start()
        app.state["status_snapshot_job"] = job


def on_shutdown(app: Litestar) -> None:
    try:
        job = app.state["status_snapshot_job"]
    except KeyError:
        return
    if job is not None:
        job.stop()


ROUTES: list[Any] = [dashboard, dashboard_csv]
__all__ = ["ROUTES", "on_shutdown", "on_startup"]
