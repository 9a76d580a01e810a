"""Operator configuration (B6) and address book (B7).

Plain fields (address, contacts, phones...) change at once; the key fields (company name, credit
code) become a pending :class:`~services.models.messaging.OperatorProfileChange` that a regulator
approves or rejects (workflow ``profile_change``). Every change, direct or reviewed, is written
to ``audit_log`` with the old and new values.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from services.accounts.service import CurrentUser
from services.accounts.validation import credit_code_problem, is_valid_email, normalize_credit_code
from services.errors import BadRequest, Conflict, NotFound
from services.messaging.notify import notify_operator
from services.models.core import AuditLog, Operator
from services.models.messaging import OperatorContact, OperatorProfileChange
from services.workflow import Workflow, apply, events_for

__all__ = ["DIRECT_FIELDS", "KEY_FIELDS", "PROFILE_CHANGE", "add_contact", "all_contacts", "contacts", "delete_contact",
           "get_profile", "list_changes", "pending_change", "review_change", "update_contact", "update_profile",
           "withdraw_change"]

O, C, PC = Operator.__table__, OperatorContact.__table__, OperatorProfileChange.__table__
REGULATORS = frozenset({"regulator", "admin"})
PROFILE_CHANGE = Workflow(
    "profile_change",
    {"pending": ("待审核", "pending review"), "approved": ("已通过", "approved"), "rejected": ("未通过", "rejected"),
     "withdrawn": ("已撤回", "withdrawn")},
    {("pending", "approve"): ("approved", REGULATORS), ("pending", "reject"): ("rejected", REGULATORS),
     ("pending", "withdraw"): ("withdrawn", frozenset({"operator"}))},
    action_labels={"approve": ("通过", "approve"), "reject": ("不通过", "reject"), "withdraw": ("撤回", "withdraw")},
    reason_required=frozenset({"reject"}),
)
# field -> (label zh, label en, max length)
KEY_FIELDS: dict[str, tuple[str, str, int]] = {
    "name": ("企业名称", "company name", 100),
    "credit_code": ("统一社会信用代码", "unified social credit code", 18),
}
DIRECT_FIELDS: dict[str, tuple[str, str, int]] = {
    "short_name": ("简称", "short name", 50),
    "address": ("地址", "address", 200),
    "legal_representative": ("法定代表人", "legal representative", 50),
    "contact_name": ("联系人", "contact person", 50),
    "contact_phone": ("联系电话", "contact phone", 20),
    "email": ("电子邮箱", "e-mail", 254),
    "service_tel": ("客服电话", "service phone", 30),
}
_PROFILE_COLS = ["id", "operator_id", "registration_state", "reviewed_at", *KEY_FIELDS, *DIRECT_FIELDS]


def _audit(s: Session, user: CurrentUser, action: str, target_type: str, target_id: Any, details: dict) -> None:
    s.add(AuditLog(actor_user_id=user.id, actor=user.account_name, action=action, target_type=target_type,
                   target_id=str(target_id), details=details))


def get_profile(s: Session, operator_pk: int) -> dict[str, Any]:
    row = s.execute(select(*[O.c[c] for c in _PROFILE_COLS]).where(O.c.id == operator_pk)).mappings().first()
    if row is None:
        raise NotFound("没有这个运营商 / no such operator")
    return dict(row)


def pending_change(s: Session, operator_pk: int) -> dict[str, Any] | None:
    row = s.execute(select(PC).where(PC.c.operator_pk == operator_pk, PC.c.state == "pending")).mappings().first()
    return dict(row) if row else None


def _clean(form: dict[str, Any], fields: dict[str, tuple[str, str, int]]) -> tuple[dict[str, str | None], dict[str, str]]:
    values: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    for f, (zh, en, n) in fields.items():
        if f not in form:
            continue
        v = str(form.get(f) or "").strip()
        if len(v) > n:
            errors[f] = f"{zh}最多 {n} 字 / the {en} has at most {n} characters"
        values[f] = v or None
    return values, errors


def update_profile(s: Session, user: CurrentUser, form: dict[str, Any]) -> dict[str, Any]:
    """Apply the plain fields now; key-field changes become one pending change. Returns what happened:
    ``{"changed": {field: [old, new]}, "pending": {field: [old, new]} | None}``."""
    current = get_profile(s, user.operator_pk)
    direct, errors = _clean(form, DIRECT_FIELDS)
    key, key_errors = _clean(form, KEY_FIELDS)
    errors.update(key_errors)
    if direct.get("email") and not is_valid_email(direct["email"]):
        errors["email"] = "电子邮箱格式不正确 / the e-mail address is not valid"
    if "credit_code" in key:
        key["credit_code"] = normalize_credit_code(key["credit_code"]) or None
        if key["credit_code"] and (p := credit_code_problem(key["credit_code"])):
            errors["credit_code"] = p
    if "name" in key and not key["name"]:
        errors["name"] = "企业名称不能为空 / the company name is required"
    if errors:
        raise BadRequest("请修正标出的字段 / please correct the marked fields", details=errors)

    changed = {f: [current[f], v] for f, v in direct.items() if v != current[f]}
    key_changed = {f: [current[f], v] for f, v in key.items() if v != current[f]}
    if changed:
        s.execute(update(O).where(O.c.id == user.operator_pk).values(**{f: v[1] for f, v in changed.items()},
                                                                     updated_at=func.now()))
        _audit(s, user, "profile.update", "operator", user.operator_pk, {"changes": changed})
    pending = None
    if key_changed:
        if pending_change(s, user.operator_pk) is not None:
            raise Conflict("已有一项关键信息变更在审核中，请等待审核或撤回后再提交 / a change of the key fields is already "
                           "under review: wait for it or withdraw it first")
        if "credit_code" in key_changed and key_changed["credit_code"][1] and s.execute(
                select(O.c.id).where(O.c.credit_code == key_changed["credit_code"][1], O.c.id != user.operator_pk)).first():
            raise BadRequest("请修正标出的字段 / please correct the marked fields",
                             details={"credit_code": "该统一社会信用代码已被其他企业使用 / another company uses this code"})
        cid = s.execute(insert(PC).values(operator_pk=user.operator_pk, changes=key_changed, requested_by=user.id)
                        .returning(PC.c.id)).scalar_one()
        from services.workflow import WorkflowEvent

        s.add(WorkflowEvent(workflow=PROFILE_CHANGE.name, entity_id=str(cid), action="request", from_state=None,
                            to_state="pending", actor_user_id=user.id, actor_role=user.role,
                            actor_name=user.account_name))
        _audit(s, user, "profile.change_requested", "operator", user.operator_pk, {"change_id": cid,
                                                                                     "changes": key_changed})
        pending = key_changed
    return {"changed": changed, "pending": pending}


def withdraw_change(s: Session, user: CurrentUser, change_id: int) -> None:
    ch = s.get(OperatorProfileChange, change_id, with_for_update=True)
    if ch is None or ch.operator_pk != user.operator_pk:
        raise NotFound("没有这项变更 / no such change")
    apply(s, PROFILE_CHANGE, ch, "withdraw", role=user.role, actor_user_id=user.id, actor_name=user.account_name)
    _audit(s, user, "profile.change_withdrawn", "operator", ch.operator_pk, {"change_id": ch.id})


def list_changes(s: Session, state: str | None = "pending") -> list[dict[str, Any]]:
    q = text("""SELECT c.*, o.name AS operator_name, o.operator_id, u.account_name AS requested_by_name
                FROM operator_profile_changes c JOIN operators o ON o.id = c.operator_pk
                LEFT JOIN users u ON u.id = c.requested_by
                WHERE (CAST(:st AS text) IS NULL OR c.state = :st) ORDER BY c.requested_at DESC LIMIT 500""")
    return [dict(r) for r in s.execute(q, {"st": state}).mappings()]


def change_history(s: Session, change_ids: list[int]) -> list[Any]:
    return events_for(s, PROFILE_CHANGE, change_ids)


def review_change(s: Session, user: CurrentUser, change_id: int, action: str, reason: str | None) -> None:
    """A regulator approves (the new values are written) or rejects (with a reason) a key-field change."""
    if action not in ("approve", "reject"):
        raise NotFound("no such action")
    ch = s.get(OperatorProfileChange, change_id, with_for_update=True)
    if ch is None:
        raise NotFound("没有这项变更 / no such change")
    apply(s, PROFILE_CHANGE, ch, action, role=user.role, actor_user_id=user.id, actor_name=user.account_name,
          reason=reason)
    ch.reviewed_by, ch.reviewed_at, ch.reason = user.id, func.now(), (reason or "").strip() or None
    labels = "、".join(KEY_FIELDS[f][0] for f in ch.changes)
    if action == "approve":
        values = {f: v[1] for f, v in ch.changes.items()}
        if "credit_code" in values and values["credit_code"] and s.execute(
                select(O.c.id).where(O.c.credit_code == values["credit_code"], O.c.id != ch.operator_pk)).first():
            raise Conflict("该统一社会信用代码已被其他企业使用 / another company uses this credit code")
        s.execute(update(O).where(O.c.id == ch.operator_pk).values(**values, updated_at=func.now()))
        _audit(s, user, "profile.change_approved", "operator", ch.operator_pk, {"change_id": ch.id, "changes": ch.changes})
        notify_operator(s, ch.operator_pk, "企业信息变更已通过", f"您提交的{labels}变更已审核通过。",
                        link="/backoffice/profile")
    else:
        _audit(s, user, "profile.change_rejected", "operator", ch.operator_pk, {"change_id": ch.id, "reason": reason})
        notify_operator(s, ch.operator_pk, "企业信息变更未通过", f"您提交的{labels}变更未通过审核。原因：{reason}",
                        link="/backoffice/profile")


def audit_trail(s: Session, operator_pk: int, limit: int = 50) -> list[dict[str, Any]]:
    return [dict(r) for r in s.execute(text("""
        SELECT at, actor, action, details FROM audit_log
        WHERE target_type = 'operator' AND target_id = :id AND (action LIKE 'profile.%' OR action LIKE 'contact.%')
        ORDER BY at DESC, id DESC LIMIT :n"""), {"id": str(operator_pk), "n": limit}).mappings()]


# --- address book -------------------------------------------------------------------------------
CONTACT_FIELDS: dict[str, tuple[str, str, int]] = {
    "name": ("姓名", "name", 50), "role": ("职务", "role", 50), "phone": ("电话", "phone", 30),
    "email": ("电子邮箱", "e-mail", 254),
}


def _contact_values(form: dict[str, Any]) -> dict[str, str | None]:
    values, errors = _clean({f: form.get(f) for f in CONTACT_FIELDS}, CONTACT_FIELDS)
    if not values.get("name"):
        errors["name"] = "姓名不能为空 / the name is required"
    if not values.get("phone") and not values.get("email"):
        errors["phone"] = "电话和邮箱至少填一项 / give a phone number or an e-mail address"
    if values.get("email") and not is_valid_email(values["email"]):
        errors["email"] = "电子邮箱格式不正确 / the e-mail address is not valid"
    if values.get("phone") and not all(ch.isdigit() or ch in "+-() " for ch in values["phone"]):
        errors["phone"] = "电话号码格式不正确 / the phone number is not valid"
    if errors:
        raise BadRequest("请修正标出的字段 / please correct the marked fields", details=errors)
    return values


def contacts(s: Session, operator_pk: int) -> list[dict[str, Any]]:
    return [dict(r) for r in s.execute(select(C).where(C.c.operator_pk == operator_pk).order_by(C.c.name, C.c.id))
            .mappings()]


def add_contact(s: Session, user: CurrentUser, form: dict[str, Any]) -> int:
    values = _contact_values(form)
    if s.execute(select(func.count()).select_from(C).where(C.c.operator_pk == user.operator_pk)).scalar_one() >= 200:
        raise BadRequest("通讯录最多 200 人 / at most 200 contacts")
    cid = s.execute(insert(C).values(operator_pk=user.operator_pk, **values).returning(C.c.id)).scalar_one()
    _audit(s, user, "contact.add", "operator", user.operator_pk, {"contact_id": cid, **values})
    return cid


def update_contact(s: Session, user: CurrentUser, contact_id: int, form: dict[str, Any]) -> None:
    values = _contact_values(form)
    old = s.execute(select(C).where(C.c.id == contact_id, C.c.operator_pk == user.operator_pk)).mappings().first()
    if old is None:
        raise NotFound("没有这个联系人 / no such contact")
    s.execute(update(C).where(C.c.id == contact_id).values(**values, updated_at=func.now()))
    _audit(s, user, "contact.update", "operator", user.operator_pk,
           {"contact_id": contact_id, "changes": {k: [old[k], v] for k, v in values.items() if old[k] != v}})


def delete_contact(s: Session, user: CurrentUser, contact_id: int) -> None:
    res = s.execute(delete(C).where(C.c.id == contact_id, C.c.operator_pk == user.operator_pk).returning(C.c.name))
    name = res.scalar()
    if name is None:
        raise NotFound("没有这个联系人 / no such contact")
    _audit(s, user, "contact.delete", "operator", user.operator_pk, {"contact_id": contact_id, "name": name})


def get_contact(s: Session, operator_pk: int, contact_id: int) -> dict[str, Any]:
    row = s.execute(select(C).where(C.c.id == contact_id, C.c.operator_pk == operator_pk)).mappings().first()
    if row is None:
        raise NotFound("没有这个联系人 / no such contact")
    return dict(row)


def all_contacts(s: Session, q: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """Every operator's contacts for regulators, with each company's registered contact first; ``q``
    matches company, name, role, phone or e-mail."""
    like = f"%{(q or '').strip()}%"
    return [dict(r) for r in s.execute(text("""
        SELECT * FROM (
          SELECT o.id AS operator_pk, o.name AS operator_name, o.operator_id, o.contact_name AS name,
                 '注册联系人 / registered contact' AS role, o.contact_phone AS phone, o.email, 0 AS ord
          FROM operators o WHERE o.registration_state IS NOT NULL AND o.contact_name IS NOT NULL
          UNION ALL
          SELECT o.id, o.name, o.operator_id, c.name, c.role, c.phone, c.email, 1
          FROM operator_contacts c JOIN operators o ON o.id = c.operator_pk) x
        WHERE :all OR operator_name ILIKE :q OR name ILIKE :q OR coalesce(role, '') ILIKE :q
           OR coalesce(phone, '') ILIKE :q OR coalesce(email, '') ILIKE :q OR operator_id ILIKE :q
        ORDER BY operator_name, ord, name LIMIT :n"""), {"q": like, "all": not (q or "").strip(), "n": limit}).mappings()]
