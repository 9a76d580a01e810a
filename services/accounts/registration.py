"""Operator registration (P8) and its review: submitted → approved | rejected → resubmitted.

The review workflow is data (``REGISTRATION``, a :class:`services.workflow.Workflow`); :func:`apply`
is the only place that changes ``operators.registration_state`` and it writes a
``workflow_events`` row each time (the submission too, as ``None → submitted``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, insert, select, update

from services.accounts import validation as v
from services.accounts.service import CurrentUser, create_user
from services.errors import BadRequest, Conflict, NotFound
from services.models.accounts import User
from services.models.core import AuditLog, Operator
from services import workflow as wf

__all__ = ["REGISTRATION", "RegistrationForm", "allowed_actions", "apply", "decide", "decision_texts",
           "get_registration", "history",
           "list_registrations", "submit_registration", "update_registration"]

OPERATORS = Operator.__table__
USERS = User.__table__
AUDIT = AuditLog.__table__

STATE_LABELS = {"submitted": ("审核中", "under review"), "approved": ("注册成功", "approved"),
                "rejected": ("审核不通过", "rejected")}
REGULATORS = frozenset({"regulator", "admin"})
REGISTRATION = wf.Workflow(
    "registration", STATE_LABELS,
    {("submitted", "approve"): ("approved", REGULATORS),
     ("submitted", "reject"): ("rejected", REGULATORS),
     ("rejected", "resubmit"): ("submitted", frozenset({"operator"}))},
    action_labels={"submit": ("提交注册", "submitted"), "approve": ("审核通过", "approved"),
                   "reject": ("审核不通过", "rejected"), "resubmit": ("修改后重新提交", "resubmitted")},
    reason_required=frozenset({"reject"}))


@dataclass
class RegistrationForm:
    """Step 2 of the registration (the e-mail comes from step 1)."""

    company_name: str = ""
    credit_code: str = ""
    address: str = ""
    legal_representative: str = ""
    contact_name: str = ""
    phone: str = ""
    account_name: str = ""
    password: str = ""
    password2: str = ""

    @classmethod
    def from_form(cls, data: dict[str, Any]) -> "RegistrationForm":
        f = cls(**{k: str(data.get(k) or "").strip() for k in cls.__dataclass_fields__ if k not in ("password", "password2")})
        f.password = str(data.get("password") or "")
        f.password2 = str(data.get("password2") or "")
        f.credit_code = v.normalize_credit_code(f.credit_code)
        return f

    @property
    def operator_id(self) -> str:
        return v.operator_id_from_credit_code(self.credit_code) if v.is_valid_credit_code(self.credit_code) else ""

    def errors(self, *, with_account: bool = True) -> dict[str, str]:
        """Field → message for every problem (empty when the form is good)."""
        e: dict[str, str] = {}
        if not 2 <= len(self.company_name) <= 100:
            e["company_name"] = "请填写企业名称（2–100 字）/ company name: 2–100 characters"
        if problem := v.credit_code_problem(self.credit_code):
            e["credit_code"] = problem
        if not 2 <= len(self.address) <= 200:
            e["address"] = "请填写企业地址 / enter the address"
        if not 2 <= len(self.legal_representative) <= 50:
            e["legal_representative"] = "请填写法定代表人 / enter the legal representative"
        if not 2 <= len(self.contact_name) <= 50:
            e["contact_name"] = "请填写第一联系人 / enter the first contact"
        if not v.is_valid_phone(self.phone):
            e["phone"] = "请输入有效的 11 位手机号 / enter a valid 11-digit mobile number"
        if with_account:
            if not v.is_valid_account_name(self.account_name):
                e["account_name"] = ("账户名为 4–32 位字母、数字或下划线，以字母开头 / "
                                     "account name: 4–32 letters, digits or _, starting with a letter")
            if problem := v.password_problem(self.password, account_name=self.account_name):
                e["password"] = problem
            elif self.password != self.password2:
                e["password2"] = "两次输入的密码不一致 / the passwords differ"
        return e


def _audit(conn: Any, actor: CurrentUser | None, action: str, operator_pk: int, details: dict | None = None) -> None:
    conn.execute(insert(AUDIT).values(actor_user_id=actor.id if actor else None,
                                      actor=actor.account_name if actor else "registration",
                                      action=f"registration.{action}", target_type="operator",
                                      target_id=str(operator_pk), details=details))


def _submitted_event(conn: Any, operator_pk: int, account_name: str, user_id: int) -> None:
    conn.execute(insert(wf.WorkflowEvent.__table__).values(
        workflow=REGISTRATION.name, entity_id=str(operator_pk), action="submit", from_state=None,
        to_state="submitted", actor_user_id=user_id, actor_role="operator", actor_name=account_name))


def submit_registration(conn: Any, form: RegistrationForm, email: str) -> dict[str, Any]:
    """Create (or claim) the operator row and its first user; returns ``{operator_pk, operator_id, user_id}``.

    An operator already known from the feed (same OperatorID, never registered, no users) is
    claimed; the review decides whether the claim is genuine.
    """
    if errs := form.errors():
        raise BadRequest(next(iter(errs.values())), param=next(iter(errs)), details=errs)
    op_id = form.operator_id
    existing = conn.execute(select(OPERATORS).where(
        (OPERATORS.c.operator_id == op_id) | (OPERATORS.c.credit_code == form.credit_code)).with_for_update()).first()
    values = dict(name=form.company_name, credit_code=form.credit_code, address=form.address,
                  legal_representative=form.legal_representative, contact_name=form.contact_name,
                  contact_phone=form.phone, email=email, registration_state="submitted", rejection_reason=None,
                  submitted_at=func.now(), reviewed_at=None, reviewed_by=None)
    if existing is not None:
        has_users = conn.execute(select(func.count()).select_from(USERS).where(USERS.c.operator_pk == existing.id)).scalar()
        if existing.registration_state is not None or has_users:
            raise Conflict("该统一社会信用代码已注册 / this credit code is already registered", param="credit_code")
        conn.execute(update(OPERATORS).where(OPERATORS.c.id == existing.id).values(**values))
        operator_pk = existing.id
    else:
        operator_pk = conn.execute(insert(OPERATORS).values(operator_id=op_id, **values)
                                   .returning(OPERATORS.c.id)).scalar_one()
    user_id = create_user(conn, account_name=form.account_name, password=form.password, role="operator",
                          phone=form.phone, email=email, operator_pk=operator_pk, display_name=form.contact_name)
    _audit(conn, None, "submit", operator_pk, {"account_name": form.account_name, "operator_id": op_id})
    _submitted_event(conn, operator_pk, form.account_name, user_id)
    return {"operator_pk": operator_pk, "operator_id": op_id, "user_id": user_id}


def update_registration(conn: Any, user: CurrentUser, form: RegistrationForm) -> None:
    """The "modify registration" entry: change the company fields and resubmit (only when rejected)."""
    if errs := form.errors(with_account=False):
        raise BadRequest(next(iter(errs.values())), param=next(iter(errs)), details=errs)
    row = conn.execute(select(OPERATORS).where(OPERATORS.c.id == user.operator_pk).with_for_update()).first()
    if row is None:
        raise NotFound("no such registration")
    if row.registration_state != "rejected":
        raise Conflict("只有审核不通过的注册可以修改 / only a rejected registration can be modified")
    if form.operator_id != row.operator_id:
        clash = conn.execute(select(OPERATORS.c.id).where(
            ((OPERATORS.c.operator_id == form.operator_id) | (OPERATORS.c.credit_code == form.credit_code)),
            OPERATORS.c.id != row.id)).first()
        if clash:
            raise Conflict("该统一社会信用代码已注册 / this credit code is already registered", param="credit_code")
    phone_clash = conn.execute(select(USERS.c.id).where(USERS.c.phone == form.phone, USERS.c.id != user.id)).first()
    if phone_clash:
        raise Conflict("该手机号已注册 / this phone number is already registered", param="phone")
    conn.execute(update(OPERATORS).where(OPERATORS.c.id == row.id).values(
        name=form.company_name, credit_code=form.credit_code, operator_id=form.operator_id, address=form.address,
        legal_representative=form.legal_representative, contact_name=form.contact_name, contact_phone=form.phone))
    conn.execute(update(USERS).where(USERS.c.id == user.id).values(phone=form.phone))
    apply(conn, row.id, "resubmit", user)


def allowed_actions(state: str | None, role: str) -> list[str]:
    return REGISTRATION.allowed(state, role) if state else []


def apply(session: Any, operator_pk: int, action: str, actor: CurrentUser, reason: str | None = None) -> str:
    """Move a registration along ``REGISTRATION``; an illegal move is a 409, a wrong role 403.

    ``session`` is an ORM Session (``db.session()``); an operator may only move its own company.
    """
    if actor.role == "operator" and actor.operator_pk != operator_pk:
        raise NotFound("no such registration")
    op = session.get(Operator, operator_pk, with_for_update=True)
    if op is None or op.registration_state is None:
        raise NotFound("no such registration")
    reason = (reason or "").strip() or None
    if action == "reject" and not reason:
        raise BadRequest("请填写不通过的原因 / give the reason for the rejection", param="reason")
    new = wf.apply(session, REGISTRATION, op, action, role=actor.role, actor_user_id=actor.id,
                   actor_name=actor.account_name, reason=reason, state_attr="registration_state")
    t = datetime.now(timezone.utc)
    if action in ("approve", "reject"):
        op.reviewed_at, op.reviewed_by = t, actor.id
        op.rejection_reason = reason if action == "reject" else None
    else:
        op.submitted_at = t
    session.flush()
    return new


def decision_texts(name: str, action: str, reason: str | None, public_url: str) -> tuple[str, str]:
    """(title, body) telling the operator the outcome of the review (inbox message and e-mail)."""
    if action == "approve":
        return "注册审核通过", (f"{name}：您的注册申请已审核通过，现在可以登录监管子系统使用全部功能。\n"
                               f"{public_url}/login")
    return "注册审核未通过", (f"{name}：您的注册申请未通过审核。原因：{reason}\n"
                             f"请登录后在“运营商概览”中修改注册信息并重新提交。{public_url}/login")


def decide(session: Any, operator_pk: int, action: str, actor: CurrentUser, reason: str | None = None, *,
           messenger: Any = None, public_url: str = "") -> str:
    """A regulator's decision (approve | reject with a reason), and the operator is told of it.

    In the caller's transaction: the state change (:func:`apply`), a message in the operator's
    B8 inbox (``notify_operator``) and, when ``messenger`` is given and the registration has an
    e-mail, the e-mail's outbox row (sent only after the commit). Returns the new state.
    """
    if action not in ("approve", "reject"):
        raise NotFound("no such action")
    new = apply(session, operator_pk, action, actor, reason)
    from services.messaging.notify import notify_operator

    op = session.get(Operator, operator_pk)
    title, body = decision_texts(op.name, action, (reason or "").strip(), public_url.rstrip("/"))
    notify_operator(session, operator_pk, title, body, kind="workflow",
                    link="/backoffice/" if action == "approve" else "/backoffice/registration")
    if messenger is not None and op.email:
        messenger.email(session, op.email, title, body)
    return new


def history(session: Any, operator_pk: int) -> list[Any]:
    return wf.events_for(session, REGISTRATION, [operator_pk])


def list_registrations(conn: Any, state: str | None = "submitted") -> list[dict[str, Any]]:
    q = (select(OPERATORS, USERS.c.account_name, USERS.c.id.label("user_id"))
         .select_from(OPERATORS.outerjoin(USERS, (USERS.c.operator_pk == OPERATORS.c.id) & (USERS.c.role == "operator")))
         .where(OPERATORS.c.registration_state.is_not(None)).order_by(OPERATORS.c.submitted_at.desc()))
    if state:
        q = q.where(OPERATORS.c.registration_state == state)
    seen: dict[int, dict[str, Any]] = {}
    for r in conn.execute(q).mappings():
        seen.setdefault(r["id"], dict(r))
    return list(seen.values())


def get_registration(conn: Any, operator_pk: int) -> dict[str, Any] | None:
    r = conn.execute(select(OPERATORS).where(OPERATORS.c.id == operator_pk)).mappings().first()
    return dict(r) if r else None
