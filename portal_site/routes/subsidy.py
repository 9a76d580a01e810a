"""Subsidy pages: the operators' B10 rules, B11 applications and B12 accounting results under
``/backoffice/subsidy/``, and the regulators' rules, review and accounting under ``/admin/subsidy/``.

The work is in :mod:`services.subsidy` (``rules``, ``options``, ``applications``, ``listing``,
``accounting``); this module parses forms, scopes every query to the operator of the session
(another operator's ids are 404) and renders templates. The expected amount of the application
form is an htmx fragment re-rendered as the form changes.

Why one file of about 640 lines: every handler is a thin form/guard/render shell around one
service call, and the operators' and regulators' pages of one workflow are read together when the
workflow changes (the service side is split by responsibility in ``services.subsidy``).

Per-kWh amounts come from the station's reconciled charge orders (``services.subsidy.energy``);
the operator's ``query_station_stats`` is read through :func:`feed_energy_source` (cached for a few
minutes per station and period) only to cross-check them on the form and on the application's
page, for the operator and the reviewer; tests put their own source in
``app.state["subsidy_energy"]``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from sqlalchemy import text
from sqlalchemy.orm import Session

from portal_site import auth
from services.db import Database
from services.errors import AppError, BadRequest, Conflict, NotFound
from services.models.subsidy import SubsidyRule
from services.orders.energy import EXCLUSIONS, code_label
from services.stations.enums import STATION_STATUSES
from services.stations.vocab import FACILITY_TYPES
from services.subsidy.accounting import account_rule, mark_paid
from services.subsidy.applications import (
    ApplicationForm,
    Estimate,
    application_energy,
    application_lines,
    applications_energy,
    batch_delete,
    batch_submit,
    delete_application,
    estimate,
    get_application,
    review,
    save_application,
    submit_application,
)
from services.subsidy.eligibility import INTERCONNECTION_REQUIREMENTS, Failure
from services.subsidy.energy import EnergySource, EnergyUnavailable, StationEnergy, parse_station_stats
from services.subsidy.export import XLSX_MEDIA_TYPE, accounting_xlsx, applications_xlsx
from services.subsidy.listing import (
    ApplicationQuery,
    line_summary,
    list_applications,
    rule_totals,
    rule_tree,
    statistics,
)
from services.subsidy.options import facility_options, operator_check, operator_power_kw, station_options
from services.subsidy.rules import (
    RULE_LABELS,
    RuleForm,
    create_rule,
    get_rule,
    list_rules,
    publish_rule,
    rule_editable,
    update_rule,
)
from services.subsidy.shared import CHINA_TZ, Actor, china_today
from services.subsidy.states import APPLICATION_WORKFLOW as WF
from services.subsidy.states import EDITABLE, role_of
from services.workflow import events_for
from services.params import id_list, int_param

__all__ = ["ROUTES", "feed_energy_source"]

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
OPERATOR = [auth.require_operator]
REGULATOR = [auth.require_regulator]
LIMITS = {"station": ("单站上限", "station cap"), "operator": ("单运营商上限", "operator cap"),
          "budget": ("预算", "budget")}


# --- the energy figures of per-kWh rules --------------------------------------------------------
_CACHE: dict[tuple[str, str, date, date], tuple[float, StationEnergy]] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_TTL_S = 300.0


def feed_energy_source(app: Any) -> EnergySource:
    """``query_station_stats`` on the operator's own platform (the cross-check of per-kWh
    applications), answers cached for 5 minutes."""
    override = app.state.get("subsidy_energy")
    if override is not None:
        return override
    settings = app.state["settings"]
    db = app.state["db"]

    def fetch(operator_id: str, station_id: str, start: date, end: date) -> StationEnergy:
        key = (operator_id, station_id, start, end)
        with _CACHE_LOCK:
            hit = _CACHE.get(key)
            if hit and time.monotonic() - hit[0] < _CACHE_TTL_S:
                return hit[1]
        try:
            from ingest.client import FeedClient, FeedError
            from ingest.sync import load_endpoints
        except ImportError:  # pragma: no cover - the feed module is part of the product
            raise EnergyUnavailable("充电量统计暂不可用 / the charging statistics are unavailable") from None
        with db.engine.connect() as conn:
            endpoints = [e for e in load_endpoints(conn, operator_id) if e.enabled and e.pullable]
        if not endpoints:
            raise EnergyUnavailable("运营商平台尚未完成对接，无法获取充电量统计 / the operator's platform is not "
                                    "connected, so its charging statistics cannot be read")
        f = settings.feed
        try:
            with FeedClient(endpoints[0].endpoint(), timeout_s=f.timeout_s, retries=min(f.retries, 1),
                            backoff_s=f.backoff_s, token_margin_s=f.token_margin_s) as client:
                energy = parse_station_stats(client.station_stats(station_id, start, end))
        except FeedError as exc:
            raise EnergyUnavailable(f"读取充电量统计失败 / reading the charging statistics failed: {exc.message}") \
                from None
        with _CACHE_LOCK:
            _CACHE[key] = (time.monotonic(), energy)
        return energy

    return fetch


# --- helpers ---------------------------------------------------------------------------------
def _see(url: str) -> Redirect:
    """Post/redirect/get: 303, so the browser follows with a GET."""
    return Redirect(url, status_code=303)


def _money(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def _plain(value: Decimal | None) -> str:
    """A Decimal as written, without exponent or trailing zeros (200, 0.1235, 9075.33275)."""
    return "—" if value is None else f"{value.normalize():f}"


def _local(ts: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return ts.astimezone(CHINA_TZ).strftime(fmt) if ts else ""


def _ctx(**kw: Any) -> dict[str, Any]:
    return {"money": _money, "plain": _plain, "local": _local, "wf": WF, "limits": LIMITS, "station_statuses": STATION_STATUSES,
            "facility_types": FACILITY_TYPES, "ic_requirements": INTERCONNECTION_REQUIREMENTS,
            "exclusions": EXCLUSIONS, "code_label": code_label, **kw}


def _actor(request: Request) -> Actor:
    return Actor.of(auth.current_user(request))


def _lang(request: Request) -> str:
    from portal_site.i18n import lang_of

    return lang_of(request)


def _int(value: Any, name: str) -> int | None:
    """An optional id: empty or not digits means "none chosen"; digits beyond bigint are a 400."""
    s = str(value or "").strip()
    return int_param(s, name) if s.isdigit() else None


def _ids(data: dict[str, Any]) -> list[int]:
    raw = data.get("ids")
    values = raw if isinstance(raw, list) else ([] if raw is None else [raw])
    return id_list(values)


def _rule_state(rule: SubsidyRule, today: date) -> str:
    if rule.published_at is None:
        return "draft"
    if today < rule.apply_start:
        return "upcoming"
    if today > rule.apply_end:
        return "closed"
    return "open"


def _rule_eligibility(s: Session, rule: SubsidyRule, operator_pk: int, today: date) -> dict[str, Any]:
    """Operator failures and the station picture: can this operator start an application?"""
    failures = operator_check(s, rule, operator_pk, today=today)
    stations = station_options(s, rule, operator_pk)
    eligible = [st for st in stations if st.eligible]
    if not eligible:
        if not stations:
            failures = failures + [Failure("no_station", "尚无站点档案，请先录入站点档案",
                                           "no station archive yet: enter the station archives first")]
        else:
            failures = failures + [Failure("no_station", "没有满足规则充电站条件的站点（详见规则详情）",
                                           "no station meets the rule's station conditions (see the rule's detail)")]
    return {"failures": failures, "stations": stations, "eligible_stations": eligible, "can_apply": not failures}


# === B10: rules =================================================================================
@get("/backoffice/subsidy/rules", guards=OPERATOR, sync_to_thread=True, include_in_schema=False)
def rules_page(request: Request, db: Database) -> Template:
    actor = _actor(request)
    today = china_today()
    with db.session() as s:
        rows = [{"rule": r, "phase": _rule_state(r, today), **_rule_eligibility(s, r, actor.operator_pk, today)}
                for r in list_rules(s, published_only=True)]
        power = operator_power_kw(s, actor.operator_pk)
    return Template("subsidy/rules.html", context=_ctx(rows=rows, power=power, lang=_lang(request)))


@get("/backoffice/subsidy/rules/{rule_id:int}", guards=OPERATOR, sync_to_thread=True, include_in_schema=False)
def rule_page(request: Request, db: Database, rule_id: int) -> Template:
    actor = _actor(request)
    today = china_today()
    with db.session() as s:
        rule = get_rule(s, rule_id, published_only=True)
        elig = _rule_eligibility(s, rule, actor.operator_pk, today)
        power = operator_power_kw(s, actor.operator_pk)
    return Template("subsidy/rule_detail.html", context=_ctx(rule=rule, phase=_rule_state(rule, today), power=power,
                                                             lang=_lang(request), **elig))


# === B11: applications ===========================================================================
def _applications_context(s: Session, request: Request, actor: Actor, query: ApplicationQuery) -> dict[str, Any]:
    today = china_today()
    tree = rule_tree(s, actor.operator_pk, today=today)  # type: ignore[arg-type]
    if query.rule_id is None and tree:
        query = ApplicationQuery(tree[0]["rule"].id, query.state, query.q)
    selected = next((n["rule"] for n in tree if n["rule"].id == query.rule_id), None)
    if query.rule_id is not None and selected is None:
        raise NotFound(f"没有编号为 {query.rule_id} 的补贴规则 / no subsidy rule {query.rule_id}")
    apps = list_applications(s, query, operator_pk=actor.operator_pk) if selected else []
    all_of_rule = (list_applications(s, ApplicationQuery(query.rule_id), operator_pk=actor.operator_pk)
                   if selected else [])
    elig = _rule_eligibility(s, selected, actor.operator_pk, today) if selected else None  # type: ignore[arg-type]
    return _ctx(tree=tree, selected=selected, query=query, apps=apps, stats=statistics(all_of_rule),
                lines=line_summary(s, [a.id for a in apps]), elig=elig, editable=EDITABLE,
                export_qs=urlencode(query.as_params()), lang=_lang(request))


@get("/backoffice/subsidy/applications", guards=OPERATOR, sync_to_thread=True, include_in_schema=False)
def applications_page(request: Request, db: Database) -> Template:
    actor = _actor(request)
    query = ApplicationQuery.parse(request.query_params)
    done = request.query_params.get("done")
    flash = {"submitted": "已提交 / submitted", "saved": "已保存 / saved", "deleted": "已删除 / deleted",
             "batch_submitted": "已批量提交 / submitted", "batch_deleted": "已批量删除 / deleted"}.get(done or "")
    with db.session() as s:
        ctx = _applications_context(s, request, actor, query)
    return Template("subsidy/applications.html", context={**ctx, "flash": flash})


@get("/backoffice/subsidy/applications/export.xlsx", guards=OPERATOR, sync_to_thread=True, include_in_schema=False)
def applications_export(request: Request, db: Database) -> Response:
    actor = _actor(request)
    query = ApplicationQuery.parse(request.query_params)
    with db.session() as s:
        apps = list_applications(s, query, operator_pk=actor.operator_pk)
        rules = {r.id: r for r in list_rules(s, published_only=False)}
        data = applications_xlsx(apps, rules, line_summary(s, [a.id for a in apps]), applications_energy(s, apps, rules))
    return Response(content=data, media_type=XLSX_MEDIA_TYPE, headers={
        "Content-Disposition": f'attachment; filename="subsidy-applications-{china_today()}.xlsx"'})


def _form_context(s: Session, request: Request, actor: Actor, rule: SubsidyRule, form: ApplicationForm,
                  app: Any = None, errors: list[str] | None = None) -> dict[str, Any]:
    today = china_today()
    stations = station_options(s, rule, actor.operator_pk)  # type: ignore[arg-type]
    facilities = (facility_options(s, rule, actor.operator_pk, form.station_pk,  # type: ignore[arg-type]
                                       application_id=app.id if app else None)
                  if form.station_pk and any(st.id == form.station_pk for st in stations) else [])
    return _ctx(rule=rule, form=form, app=app, stations=stations, facilities=facilities, errors=errors or [],
                operator_failures=operator_check(s, rule, actor.operator_pk, today=today),  # type: ignore[arg-type]
                estimate=_estimate(s, request, actor, rule, form, app), lang=_lang(request))


def _estimate(s: Session, request: Request, actor: Actor, rule: SubsidyRule, form: ApplicationForm,
              app: Any = None) -> Estimate | None:
    if form.station_pk is None:
        return None
    stations = station_options(s, rule, actor.operator_pk, station_pk=form.station_pk)  # type: ignore[arg-type]
    if not stations:
        return None
    options = {f.id: f for f in facility_options(s, rule, actor.operator_pk, form.station_pk,  # type: ignore[arg-type]
                                                       application_id=app.id if app else None)}
    chosen = [options[pk] for pk in form.facility_pks if pk in options]
    return estimate(s, rule, actor.operator_pk, stations[0], chosen,  # type: ignore[arg-type]
                        feed_energy_source(request.app), operator_id=auth.current_user(request).operator_id)


@get("/backoffice/subsidy/applications/new", guards=OPERATOR, sync_to_thread=True, include_in_schema=False)
def application_new(request: Request, db: Database) -> Template:
    actor = _actor(request)
    rule_id = _int(request.query_params.get("rule"), "rule")
    if rule_id is None:
        raise BadRequest("请选择补贴规则 / choose a subsidy rule", param="rule")
    form = ApplicationForm.parse(request.query_params)
    user = auth.current_user(request)
    form.contact_name = form.contact_name or ""
    with db.session() as s:
        rule = get_rule(s, rule_id, published_only=True)
        if not form.contact_phone:
            row = s.execute(text("SELECT contact_name, contact_phone FROM operators WHERE id = :pk"),
                            {"pk": user.operator_pk}).first()
            if row:
                form.contact_name, form.contact_phone = row[0] or "", row[1] or ""
        ctx = _form_context(s, request, actor, rule, form)
    return Template("subsidy/application_form.html", context=ctx)


@get("/backoffice/subsidy/applications/facilities", guards=OPERATOR, sync_to_thread=True, include_in_schema=False)
def application_facilities(request: Request, db: Database) -> Template:
    """The facility checklist of the chosen station (htmx fragment)."""
    actor = _actor(request)
    form = ApplicationForm.parse(request.query_params)
    app_id = _int(request.query_params.get("application"), "application")
    with db.session() as s:
        app = get_application(s, app_id, operator_pk=actor.operator_pk) if app_id else None
        rule = get_rule(s, app.rule_id if app else (form.rule_id or 0), published_only=True)
        if app is not None:
            form.facility_pks = form.facility_pks or [x.facility_archive_pk for x in application_lines(s, app.id)]
        ctx = _form_context(s, request, actor, rule, form, app)
    return Template("subsidy/_facilities.html", context=ctx)


@post("/backoffice/subsidy/applications/estimate", guards=OPERATOR, sync_to_thread=True, include_in_schema=False,
      status_code=200)
def application_estimate(request: Request, db: Database, data: Form) -> Template:
    """The expected amount of the form as it stands (htmx fragment)."""
    actor = _actor(request)
    form = ApplicationForm.parse(data)
    app_id = _int(data.get("application"), "application")
    with db.session() as s:
        app = get_application(s, app_id, operator_pk=actor.operator_pk) if app_id else None
        rule = get_rule(s, app.rule_id if app else (form.rule_id or 0), published_only=True)
        est = _estimate(s, request, actor, rule, form, app)
    return Template("subsidy/_estimate.html", context=_ctx(rule=rule, estimate=est, lang=_lang(request)))


def _save(request: Request, db: Database, data: dict[str, Any], app_id: int | None) -> Template | Redirect:
    actor = _actor(request)
    user = auth.current_user(request)
    form = ApplicationForm.parse(data)
    submit = data.get("action") == "submit"
    try:
        with db.session() as s:
            app = get_application(s, app_id, operator_pk=actor.operator_pk, lock=True) if app_id else None
            saved = save_application(s, actor, form, submit=submit, operator_id=user.operator_id, application=app)
            rule_id = saved.rule_id
    except NotFound:
        raise
    except AppError as exc:
        problems = exc.details if isinstance(exc.details, list) and exc.details else [exc.message]
        with db.session() as s:
            app = get_application(s, app_id, operator_pk=actor.operator_pk) if app_id else None
            rule = get_rule(s, app.rule_id if app else (form.rule_id or 0), published_only=True)
            ctx = _form_context(s, request, actor, rule, form, app, errors=[str(p) for p in problems])
        return Template("subsidy/application_form.html", status_code=exc.status_code,
                        context={**ctx, "flash": exc.message if len(problems) == 1 else
                                 "申请未保存，请处理以下问题 / not saved: see the problems below", "flash_error": True})
    return _see(f"/backoffice/subsidy/applications?rule={rule_id}&done={'submitted' if submit else 'saved'}")


@post("/backoffice/subsidy/applications", guards=OPERATOR, sync_to_thread=True, include_in_schema=False)
def application_create(request: Request, db: Database, data: Form) -> Template | Redirect:
    return _save(request, db, data, None)


@get("/backoffice/subsidy/applications/{app_id:int}", guards=OPERATOR, sync_to_thread=True, include_in_schema=False)
def application_detail(request: Request, db: Database, app_id: int) -> Template:
    actor = _actor(request)
    with db.session() as s:
        app = get_application(s, app_id, operator_pk=actor.operator_pk)
        rule = get_rule(s, app.rule_id)
        lines = application_lines(s, app.id)
        events = events_for(s, WF, [app.id])
        basis = application_energy(s, app, rule, auth.current_user(request).operator_id,
                                   feed_energy_source(request.app), lines=lines)
    return Template("subsidy/application_detail.html", context=_ctx(
        app=app, rule=rule, lines=lines, events=events, actions=WF.allowed(app.state, "operator"),
        editable=app.state in EDITABLE, admin=False, basis=basis, lang=_lang(request)))


@get("/backoffice/subsidy/applications/{app_id:int}/edit", guards=OPERATOR, sync_to_thread=True,
     include_in_schema=False)
def application_edit(request: Request, db: Database, app_id: int) -> Template:
    actor = _actor(request)
    with db.session() as s:
        app = get_application(s, app_id, operator_pk=actor.operator_pk)
        if app.state not in EDITABLE:
            raise Conflict(f"申请 #{app.id} 为{WF.label(app.state)}，不能修改 / application #{app.id} is "
                           f"{WF.label(app.state, 'en')} and cannot be changed")
        rule = get_rule(s, app.rule_id)
        form = ApplicationForm.of(app, [x.facility_archive_pk for x in application_lines(s, app.id)])
        ctx = _form_context(s, request, actor, rule, form, app)
    return Template("subsidy/application_form.html", context=ctx)


@post("/backoffice/subsidy/applications/{app_id:int}/edit", guards=OPERATOR, sync_to_thread=True,
      include_in_schema=False)
def application_update(request: Request, db: Database, app_id: int, data: Form) -> Template | Redirect:
    return _save(request, db, data, app_id)


@post("/backoffice/subsidy/applications/{app_id:int}/submit", guards=OPERATOR, sync_to_thread=True,
      include_in_schema=False)
def application_submit(request: Request, db: Database, app_id: int) -> Redirect:
    actor = _actor(request)
    with db.session() as s:
        app = submit_application(s, actor, app_id)
        rule_id = app.rule_id
    return _see(f"/backoffice/subsidy/applications?rule={rule_id}&done=submitted")


@post("/backoffice/subsidy/applications/{app_id:int}/delete", guards=OPERATOR, sync_to_thread=True,
      include_in_schema=False)
def application_delete(request: Request, db: Database, app_id: int) -> Redirect:
    actor = _actor(request)
    with db.session() as s:
        rule_id = get_application(s, app_id, operator_pk=actor.operator_pk).rule_id
        delete_application(s, actor, app_id)
    return _see(f"/backoffice/subsidy/applications?rule={rule_id}&done=deleted")


@post("/backoffice/subsidy/applications/batch", guards=OPERATOR, sync_to_thread=True, include_in_schema=False)
def applications_batch(request: Request, db: Database, data: Form) -> Template | Redirect:
    """Batch submit (every selected pending, else nothing) or batch delete (none in process)."""
    actor = _actor(request)
    action = data.get("action")
    if action not in ("submit", "delete"):
        raise BadRequest("未知的批量操作 / unknown batch action", param="action")
    ids = _ids(data)
    query = ApplicationQuery.parse(data)
    try:
        with db.session() as s:
            if action == "submit":
                batch_submit(s, actor, ids)
            else:
                batch_delete(s, actor, ids)
    except NotFound:
        raise
    except AppError as exc:
        with db.session() as s:
            ctx = _applications_context(s, request, actor, query)
        return Template("subsidy/applications.html", status_code=exc.status_code,
                        context={**ctx, "flash": exc.message, "flash_error": True, "checked": set(ids)})
    params = {**query.as_params(), "done": f"batch_{action}ted" if action == "submit" else "batch_deleted"}
    return _see("/backoffice/subsidy/applications?" + urlencode(params))


# === B12: accounting results =====================================================================
def _accounted(s: Session, actor: Actor, rule_id: int | None) -> list[Any]:
    apps = list_applications(s, ApplicationQuery(rule_id), operator_pk=actor.operator_pk)
    return [a for a in apps if a.state in ("accounted", "paid")]


@get("/backoffice/subsidy/accounting", guards=OPERATOR, sync_to_thread=True, include_in_schema=False)
def accounting_page(request: Request, db: Database) -> Template:
    actor = _actor(request)
    rule_id = _int(request.query_params.get("rule"), "rule")
    with db.session() as s:
        apps = _accounted(s, actor, rule_id)
        rules = list_rules(s, published_only=True)
    total_gross = sum((a.expected_amount for a in apps), Decimal(0))
    total = sum((a.accounted_amount or Decimal(0) for a in apps), Decimal(0))
    return Template("subsidy/accounting.html", context=_ctx(
        apps=apps, rules=rules, rule_names={r.id: r.name for r in rules}, rule_id=rule_id, total=total,
        total_gross=total_gross, export_qs=urlencode({"rule": rule_id} if rule_id else {}), lang=_lang(request)))


@get("/backoffice/subsidy/accounting/export.xlsx", guards=OPERATOR, sync_to_thread=True, include_in_schema=False)
def accounting_export(request: Request, db: Database) -> Response:
    actor = _actor(request)
    rule_id = _int(request.query_params.get("rule"), "rule")
    with db.session() as s:
        apps = _accounted(s, actor, rule_id)
        rules = {r.id: r for r in list_rules(s, published_only=False)}
        data = accounting_xlsx(apps, rules, applications_energy(s, apps, rules))
    return Response(content=data, media_type=XLSX_MEDIA_TYPE, headers={
        "Content-Disposition": f'attachment; filename="subsidy-accounting-{china_today()}.xlsx"'})


# === regulators ===================================================================================
@get("/admin/subsidy/", guards=REGULATOR, sync_to_thread=True, include_in_schema=False)
def admin_rules(request: Request, db: Database) -> Template:
    today = china_today()
    with db.session() as s:
        rows = [{"rule": r, "phase": _rule_state(r, today), "totals": rule_totals(s, r),
                 "editable": rule_editable(r, today)} for r in list_rules(s, published_only=False)]
        to_review = len(list_applications(s, ApplicationQuery(state="submitted"), operator_pk=None))
    return Template("subsidy/admin_rules.html", context=_ctx(rows=rows, to_review=to_review, lang=_lang(request),
                                                             flash=request.query_params.get("done") and "已完成 / done"))


def _rule_form_page(form: RuleForm, rule: SubsidyRule | None, status: int = 200, flash: str | None = None) -> Template:
    return Template("subsidy/admin_rule_form.html", status_code=status, context=_ctx(
        form=form, rule=rule, labels=RULE_LABELS, flash=flash, flash_error=bool(flash)))


@get("/admin/subsidy/rules/new", guards=REGULATOR, sync_to_thread=True, include_in_schema=False)
def admin_rule_new(request: Request) -> Template:
    return _rule_form_page(RuleForm(raw={"basis": "per_kw", "required_interconnection": "none",
                                             "min_operator_power_kw": "0"}), None)


@post("/admin/subsidy/rules", guards=REGULATOR, sync_to_thread=True, include_in_schema=False)
def admin_rule_create(request: Request, db: Database, data: Form) -> Template | Redirect:
    form = RuleForm.parse(data)
    try:
        with db.session() as s:
            rule = create_rule(s, form, _actor(request))
            rule_id = rule.id
    except AppError as exc:
        return _rule_form_page(form, None, exc.status_code, exc.message)
    return _see(f"/admin/subsidy/rules/{rule_id}?done=saved")


@get("/admin/subsidy/rules/{rule_id:int}", guards=REGULATOR, sync_to_thread=True, include_in_schema=False)
def admin_rule(request: Request, db: Database, rule_id: int) -> Template:
    today = china_today()
    query = ApplicationQuery(rule_id, ApplicationQuery.parse(request.query_params).state)
    with db.session() as s:
        rule = get_rule(s, rule_id)
        totals = rule_totals(s, rule)
        apps = list_applications(s, query, operator_pk=None)
        operators = dict(s.execute(text(
            "SELECT id, name FROM operators WHERE id = ANY(:ids)"), {"ids": list({a.operator_pk for a in apps})}).all())
    done = request.query_params.get("done")
    flash = {"saved": "已保存 / saved", "published": "已发布 / published",
             "accounted": "已完成财务核算 / the accounting is done", "paid": "已标记支付 / marked paid"}.get(done or "")
    return Template("subsidy/admin_rule.html", context=_ctx(
        rule=rule, totals=totals, apps=apps, operators=operators, phase=_rule_state(rule, today), query=query,
        editable=rule_editable(rule, today), flash=flash, lang=_lang(request)))


@get("/admin/subsidy/rules/{rule_id:int}/edit", guards=REGULATOR, sync_to_thread=True, include_in_schema=False)
def admin_rule_edit(request: Request, db: Database, rule_id: int) -> Template:
    with db.session() as s:
        rule = get_rule(s, rule_id)
        if not rule_editable(rule):
            raise Conflict("补贴规则已发布且申请时间已开始，不能再修改 / the rule is published and its application "
                           "period has opened: it can no longer be edited")
    return _rule_form_page(RuleForm.from_rule(rule), rule)


@post("/admin/subsidy/rules/{rule_id:int}/edit", guards=REGULATOR, sync_to_thread=True, include_in_schema=False)
def admin_rule_update(request: Request, db: Database, rule_id: int, data: Form) -> Template | Redirect:
    form = RuleForm.parse(data)
    try:
        with db.session() as s:
            update_rule(s, get_rule(s, rule_id, lock=True), form)
    except NotFound:
        raise
    except AppError as exc:
        with db.session() as s:
            rule = get_rule(s, rule_id)
        return _rule_form_page(form, rule, exc.status_code, exc.message)
    return _see(f"/admin/subsidy/rules/{rule_id}?done=saved")


@post("/admin/subsidy/rules/{rule_id:int}/publish", guards=REGULATOR, sync_to_thread=True, include_in_schema=False)
def admin_rule_publish(request: Request, db: Database, rule_id: int) -> Redirect:
    with db.session() as s:
        publish_rule(s, get_rule(s, rule_id, lock=True))
    return _see(f"/admin/subsidy/rules/{rule_id}?done=published")


@post("/admin/subsidy/rules/{rule_id:int}/accounting", guards=REGULATOR, sync_to_thread=True, include_in_schema=False)
def admin_rule_accounting(request: Request, db: Database, rule_id: int) -> Redirect:
    with db.session() as s:
        account_rule(s, _actor(request), rule_id)
    return _see(f"/admin/subsidy/rules/{rule_id}?done=accounted")


@get("/admin/subsidy/applications", guards=REGULATOR, sync_to_thread=True, include_in_schema=False)
def admin_applications(request: Request, db: Database) -> Template:
    params = dict(request.query_params)
    params.setdefault("state", "submitted")
    query = ApplicationQuery.parse(params)
    with db.session() as s:
        apps = list_applications(s, query, operator_pk=None)
        rules = {r.id: r for r in list_rules(s, published_only=False)}
        operators = dict(s.execute(text(
            "SELECT id, name FROM operators WHERE id = ANY(:ids)"), {"ids": list({a.operator_pk for a in apps})}).all())
    return Template("subsidy/admin_applications.html", context=_ctx(apps=apps, rules=rules, operators=operators,
                                                                    query=query, lang=_lang(request)))


@get("/admin/subsidy/applications/{app_id:int}", guards=REGULATOR, sync_to_thread=True, include_in_schema=False)
def admin_application(request: Request, db: Database, app_id: int) -> Template:
    user = auth.current_user(request)
    with db.session() as s:
        app = get_application(s, app_id)
        rule = get_rule(s, app.rule_id)
        lines = application_lines(s, app.id)
        events = events_for(s, WF, [app.id])
        operator = s.execute(text("SELECT name, operator_id FROM operators WHERE id = :pk"),
                             {"pk": app.operator_pk}).first()
        # what the reviewer should know: does each claimed facility still meet the rule today?
        checks = {o.id: o.failures for o in facility_options(s, rule, app.operator_pk, app.station_archive_pk,
                                                                  application_id=app.id)}
        # the orders behind a per-kWh amount as they stand now, and the operator's statistics beside them
        basis = application_energy(s, app, rule, operator.operator_id if operator else "",
                                   feed_energy_source(request.app), lines=lines)
    return Template("subsidy/application_detail.html", context=_ctx(
        app=app, rule=rule, lines=lines, events=events, actions=WF.allowed(app.state, role_of(user.role)),
        editable=False, admin=True, operator=operator, checks=checks, basis=basis, lang=_lang(request),
        flash=request.query_params.get("done") and "已处理 / done"))


@post("/admin/subsidy/applications/{app_id:int}/{action:str}", guards=REGULATOR, sync_to_thread=True,
      include_in_schema=False)
def admin_application_action(request: Request, db: Database, app_id: int, action: str, data: Form) -> Redirect:
    actor = _actor(request)
    with db.session() as s:
        if action in ("approve", "return"):
            review(s, actor, app_id, action, data.get("reason"))
        elif action == "pay":
            mark_paid(s, actor, app_id)
        else:
            raise NotFound(f"no such action: {action}")
    return _see(f"/admin/subsidy/applications/{app_id}?done={action}")


ROUTES: list[Callable[..., Any] | Any] = [
    rules_page, rule_page, applications_page, applications_export, application_new, application_facilities,
    application_estimate, application_create, application_detail, application_edit, application_update,
    application_submit, application_delete, applications_batch, accounting_page, accounting_export,
    admin_rules, admin_rule_new, admin_rule_create, admin_rule, admin_rule_edit, admin_rule_update,
    admin_rule_publish, admin_rule_accounting, admin_applications, admin_application, admin_application_action,
]
