"""The subsidy application workflow as data (see :mod:`services.workflow`).

pending 待提交 → submitted 审核中 → returned 已退回 (editable, resubmit) / approved 审核通过 →
accounted 已核算 → paid 已支付. ``delete`` moves a record that is not in process (pending or
returned) to ``deleted`` and the row is then removed; its events stay.
"""

from __future__ import annotations

from services.workflow import Workflow

__all__ = ["APPLICATION_WORKFLOW", "EDITABLE", "IN_PROCESS", "NEEDS_ACTION", "OPERATOR", "REGULATOR", "role_of"]

OPERATOR = frozenset({"operator"})
REGULATOR = frozenset({"regulator", "admin"})

APPLICATION_WORKFLOW = Workflow(
    name="subsidy_application",
    states={
        "pending": ("待提交", "pending"),
        "submitted": ("审核中", "under review"),
        "returned": ("已退回", "returned"),
        "approved": ("审核通过", "approved"),
        "accounted": ("已核算", "accounted"),
        "paid": ("已支付", "paid"),
        "deleted": ("已删除", "deleted"),
    },
    transitions={
        ("pending", "submit"): ("submitted", OPERATOR),
        ("returned", "submit"): ("submitted", OPERATOR),
        ("submitted", "approve"): ("approved", REGULATOR),
        ("submitted", "return"): ("returned", REGULATOR),
        ("approved", "account"): ("accounted", REGULATOR),
        ("accounted", "pay"): ("paid", REGULATOR),
        ("pending", "delete"): ("deleted", OPERATOR),
        ("returned", "delete"): ("deleted", OPERATOR),
    },
    action_labels={
        "submit": ("提交", "Submit"), "approve": ("通过", "Approve"), "return": ("退回", "Return"),
        "account": ("核算", "Account"), "pay": ("标记已支付", "Mark paid"), "delete": ("删除", "Delete"),
    },
    reason_required=frozenset({"return"}),
)

EDITABLE = frozenset({"pending", "returned"})
"""States in which the operator may change the application (save, edit)."""
IN_PROCESS = frozenset({"submitted", "approved", "accounted", "paid"})
"""States that block deletion (batch delete refuses any of these)."""
NEEDS_ACTION = frozenset({"pending", "returned"})
"""What the rule tree counts as "needing action" for an operator."""


def role_of(user_role: str) -> str:
    """The workflow role of a user role (admins act as regulators)."""
    return "regulator" if user_role in ("regulator", "admin") else user_role
