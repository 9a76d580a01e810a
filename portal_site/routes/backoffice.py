"""The operator overview (B1) with the registration progress and "modify registration", and the
regulators' home and registration review (/admin/, /admin/registrations)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body
from litestar.response import Redirect, Template
from sqlalchemy import text

from portal_site import auth
from services.accounts import registration as reg
from services.accounts.messaging import messenger_for
from services.db import Database
from services.errors import AppError
from services.settings import Settings

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]

STEPS = [  # the step guide of B1: (zh, en, path)
    ("录入站点档案", "Enter the station archives", "/backoffice/stations"),
    ("上传检测报告", "Upload the test reports", "/backoffice/reports"),
    ("录入设施档案并申请核查", "Enter the facility archives and apply for the check", "/backoffice/facilities"),
    ("配置互联互通并联调", "Configure the interconnection and run the joint debugging", "/backoffice/interconnection"),
    ("申请设施互联互通", "Apply for the interconnection of the facilities", "/backoffice/facilities"),
    ("申请补贴", "Apply for subsidies", "/backoffice/subsidy/rules"),
]


def _count(s: Any, sql: str, params: dict[str, Any], table: str) -> int | None:
    """A count from a table another domain owns, or None while that table does not exist yet."""
    if s.execute(text("SELECT to_regclass(:t)"), {"t": table}).scalar() is None:
        return None
    return s.execute(text(sql), params).scalar()


def _facility_states(s: Any, operator_pk: int) -> list[tuple[str, str, str, int]] | None:
    """(state, zh, en, count) of the operator's facility archives, in workflow order (B1's check counts)."""
    if s.execute(text("SELECT to_regclass('facility_archives')")).scalar() is None:
        return None
    counts = dict(s.execute(text("SELECT state, count(*) FROM facility_archives WHERE operator_pk = :pk "
                                 "AND state <> 'deleted' GROUP BY state"), {"pk": operator_pk}).all())
    try:
        from services.archives.workflows import FACILITY

        labels = {k: v for k, v in FACILITY.states.items() if k != "deleted"}
    except ImportError:
        labels = {k: (k, k) for k in counts}
    return [(k, zh, en, counts.get(k, 0)) for k, (zh, en) in labels.items()]


def _overview_counts(s: Any, operator_id: str, operator_pk: int) -> dict[str, Any]:
    p = {"o": operator_id}
    pk = {"pk": operator_pk}
    return {
        "station_archives": _count(s, "SELECT count(*) FROM station_archives WHERE operator_pk = :pk "
                                      "AND state <> 'deleted'", pk, "station_archives"),
        "facility_archives": _count(s, "SELECT count(*) FROM facility_archives WHERE operator_pk = :pk "
                                       "AND state <> 'deleted'", pk, "facility_archives"),
        "facility_states": _facility_states(s, operator_pk),
        # the interconnection process completed (facility archives 互联互通) and their stations
        "facilities_interconnected": _count(s, "SELECT count(*) FROM facility_archives WHERE operator_pk = :pk "
                                               "AND state = 'interconnected'", pk, "facility_archives"),
        "stations_of_interconnected_facilities": _count(
            s, "SELECT count(DISTINCT station_archive_pk) FROM facility_archives WHERE operator_pk = :pk "
               "AND state = 'interconnected'", pk, "facility_archives"),
        "stations_reported": _count(s, "SELECT count(*) FROM stations WHERE operator_id = :o AND feed_state = 'active'",
                                    p, "stations"),
        "stations_interconnected": _count(s, "SELECT count(*) FROM stations WHERE operator_id = :o AND interconnected",
                                          p, "stations"),
        "piles_interconnected": _count(s, "SELECT count(*) FROM equipment e JOIN stations st ON st.id = e.station_pk "
                                          "WHERE st.operator_id = :o AND st.interconnected", p, "equipment"),
    }


@get("/backoffice/", guards=[auth.require_operator_any], sync_to_thread=True, include_in_schema=False)
def overview(request: Request, db: Database) -> Template:
    user = auth.current_user(request)
    with db.session() as s:
        registration = reg.get_registration(s, user.operator_pk)
        counts = _overview_counts(s, user.operator_id, user.operator_pk) if user.approved else {}
    return Template("backoffice/overview.html", context={
        
        "registration": registration, "counts": counts, "steps": STEPS,
        "flash": request.query_params.get("ok") and "已重新提交注册申请 / the registration was resubmitted"})


@get("/backoffice/registration", guards=[auth.require_operator_any], sync_to_thread=True, include_in_schema=False)
def registration_form(request: Request, db: Database) -> Template:
    user = auth.current_user(request)
    with db.session() as s:
        registration = reg.get_registration(s, user.operator_pk)
    form = {"company_name": registration["name"], "credit_code": registration["credit_code"] or "",
            "address": registration["address"] or "", "legal_representative": registration["legal_representative"] or "",
            "contact_name": registration["contact_name"] or "", "phone": registration["contact_phone"] or ""}
    return Template("backoffice/registration_edit.html", context={
        "registration": registration, "form": form, "errors": {}})


@post("/backoffice/registration", guards=[auth.require_operator_any], sync_to_thread=True, include_in_schema=False)
def registration_resubmit(request: Request, db: Database, data: Form) -> Template | Redirect:
    user = auth.current_user(request)
    form = reg.RegistrationForm.from_form(data)
    try:
        with db.session() as s:
            reg.update_registration(s, user, form)
    except AppError as exc:
        with db.session() as s:
            registration = reg.get_registration(s, user.operator_pk)
        errors = exc.details if isinstance(exc.details, dict) else {exc.param or "_": exc.message}
        return Template("backoffice/registration_edit.html", status_code=exc.status_code, context={
            "registration": registration, "form": data, "errors": errors,
            "flash": exc.message, "flash_error": True})
    return Redirect("/backoffice/?ok=1")


# --- regulators ----------------------------------------------------------------------------------
# The regulators' review queues on /admin/: (key, zh, en, table, state, list link, item link, SQL of the items).
# The states are the ones regulators act on (services/archives/workflows.py, services/subsidy/states.py).
ADMIN_QUEUES: list[tuple[str, str, str, str, str, str, str, str]] = [
    ("stations", "站点档案待审核", "Station archives to review", "station_archives", "under_review",
     "/admin/stations?state=under_review", "/admin/stations/{id}",
     "SELECT a.id, coalesce(a.name, a.station_id) AS title, o.name AS operator_name, a.submitted_at AS at "
     "FROM station_archives a JOIN operators o ON o.id = a.operator_pk WHERE a.state = :state"),
    ("facilities", "设施档案待审核", "Facility archives to review", "facility_archives", "under_review",
     "/admin/facilities?state=under_review", "/admin/facilities/{id}",
     "SELECT a.id, coalesce(a.equipment_name, a.equipment_id) AS title, o.name AS operator_name, "
     "a.submitted_at AS at FROM facility_archives a JOIN operators o ON o.id = a.operator_pk WHERE a.state = :state"),
    ("interconnection", "互联互通待审核", "Interconnection requests to review", "facility_archives", "ic_review",
     "/admin/interconnection", "/admin/facilities/{id}",
     "SELECT a.id, coalesce(a.equipment_name, a.equipment_id) AS title, o.name AS operator_name, "
     "a.updated_at AS at FROM facility_archives a JOIN operators o ON o.id = a.operator_pk WHERE a.state = :state"),
    ("subsidy", "补贴申请待审核", "Subsidy applications to review", "subsidy_applications", "submitted",
     "/admin/subsidy/applications?state=submitted", "/admin/subsidy/applications/{id}",
     "SELECT a.id, a.station_name AS title, o.name AS operator_name, a.submitted_at AS at "
     "FROM subsidy_applications a JOIN operators o ON o.id = a.operator_pk WHERE a.state = :state"),
]
ADMIN_QUEUE_ITEMS = 5


def _admin_queues(s: Any) -> list[dict[str, Any]]:
    """Each review queue with its count and its oldest items (first come, first served); a queue
    whose table does not exist yet is left out."""
    queues = []
    for key, zh, en, table, state, href, item_href, items_sql in ADMIN_QUEUES:
        count = _count(s, f"SELECT count(*) FROM {table} WHERE state = :state", {"state": state}, table)
        if count is None:
            continue
        items = s.execute(text(f"{items_sql} ORDER BY at NULLS LAST, a.id LIMIT :n"),
                          {"state": state, "n": ADMIN_QUEUE_ITEMS}).mappings().all() if count else []
        queues.append({"key": key, "zh": zh, "en": en, "count": count, "href": href,
                       "rows": [dict(i, href=item_href.format(id=i["id"])) for i in items]})
    return queues


def _price_summary(s: Any, settings: Settings) -> dict[str, Any]:
    """The price execution of the last 30 days and the cap in force, for the regulators' home."""
    from services.orders.execution import execution_report
    from services.orders.window import Window
    from services.prices.store import cap_at

    cap = cap_at(s, default=settings.supervision)
    report = execution_report(s, Window.last(), cap)
    return {"cap": cap, "total": report["total"],
            "unreconciled": sum(1 for r in report["operators"] if r["unreconciled_days"])}


@get("/admin/", guards=[auth.require_regulator], sync_to_thread=True, include_in_schema=False)
def admin_home(request: Request, db: Database, settings: Settings) -> Template:
    with db.session() as s:
        registrations_pending = reg.list_registrations(s, "submitted")
        queues = _admin_queues(s)
        prices = _price_summary(s, settings)
    registrations_pending.sort(key=lambda r: (r["submitted_at"] is None, r["submitted_at"]))  # oldest first
    return Template("admin/home.html", context={
        "pending": len(registrations_pending), "registrations": registrations_pending[:ADMIN_QUEUE_ITEMS],
        "queues": queues, "prices": prices})


@get("/admin/registrations", guards=[auth.require_regulator], sync_to_thread=True, include_in_schema=False)
def registrations(request: Request, db: Database) -> Template:
    state = request.query_params.get("state", "submitted")
    state = state if state in ("submitted", "approved", "rejected", "all") else "submitted"
    with db.session() as s:
        rows = reg.list_registrations(s, None if state == "all" else state)
    return Template("admin/registrations.html", context={"rows": rows, "state": state,
                                                          "labels": reg.STATE_LABELS})


@get("/admin/registrations/{operator_pk:int}", guards=[auth.require_regulator], sync_to_thread=True,
     include_in_schema=False)
def registration_detail(request: Request, db: Database, operator_pk: int) -> Template:
    with db.session() as s:
        row = reg.get_registration(s, operator_pk)
        if row is None or row["registration_state"] is None:
            raise NotFoundException("no such registration")
        users = s.execute(text("SELECT account_name, phone, email, created_at FROM users WHERE operator_pk = :pk "
                               "ORDER BY id"), {"pk": operator_pk}).mappings().all()
        history = reg.history(s, operator_pk)
    user = auth.current_user(request)
    return Template("admin/registration_detail.html", context={
        "r": row, "users": users, "history": history, "labels": reg.STATE_LABELS,
        "action_labels": reg.REGISTRATION.action_labels,
        "actions": reg.allowed_actions(row["registration_state"], user.role),
        "flash": request.query_params.get("done") and "已处理 / done"})


@post("/admin/registrations/{operator_pk:int}/{action:str}", guards=[auth.require_regulator], sync_to_thread=True,
      include_in_schema=False)
def registration_decide(request: Request, db: Database, settings: Settings, operator_pk: int, action: str,
                        data: Form) -> Redirect:
    if action not in ("approve", "reject"):
        raise NotFoundException("no such action")
    user = auth.current_user(request)
    # the decision, the operator's inbox message and the e-mail's outbox row commit together;
    # the e-mail is sent after the commit
    with db.session() as s:
        reg.decide(s, operator_pk, action, user, data.get("reason"), messenger=messenger_for(settings.mail),
                   public_url=str(settings.app.public_url))
    return Redirect(f"/admin/registrations/{operator_pk}?done=1")


ROUTES: list[Any] = [overview, registration_form, registration_resubmit, admin_home, registrations,
                     registration_detail, registration_decide]
