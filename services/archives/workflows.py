"""The archives' review workflows as data: ``(state, action) -> (next state, roles)``.

Three tables: station archives (B2), facility archives (B4, archive check then interconnection)
and the operator's system interconnection application (B5). ``services.workflow.apply`` is the
only place that moves a state; pages render :meth:`Workflow.allowed` actions.

"edit" and "delete" are in the tables as well (edit keeps the state; delete is a move to the
pseudo-state ``deleted``), so buttons and 409s for them come from the same place. They are
checked with :meth:`Workflow.next_state` and do not write events (delete writes one).

>>> STATION.allowed("pending", "operator")
['submit', 'edit', 'delete']
>>> STATION.allowed("under_review", "regulator")
['approve', 'reject']
>>> FACILITY.next_state("approved", "withdraw", "operator")
Traceback (most recent call last):
...
services.errors.Conflict: cannot withdraw: the record is 档案申请通过 (archive approved)
"""

from __future__ import annotations

from services.workflow import Workflow

__all__ = ["ACTION_LABELS", "FACILITY", "INTERCONNECTION", "OPERATOR", "REGULATORS", "STATION", "SYSTEM",
           "WORKFLOWS"]

OPERATOR = frozenset({"operator"})
REGULATORS = frozenset({"regulator", "admin"})
SYSTEM = frozenset({"system"})

ACTION_LABELS: dict[str, tuple[str, str]] = {
    "submit": ("提交审核", "submit for review"),
    "withdraw": ("撤回", "withdraw"),
    "approve": ("审核通过", "approve"),
    "reject": ("审核不通过", "reject"),
    "edit": ("修改", "edit"),
    "delete": ("删除", "delete"),
    "apply_ic": ("互联互通申请", "apply for interconnection"),
    "approve_ic": ("互联互通通过", "approve interconnection"),
    "reject_ic": ("互联互通不通过", "reject interconnection"),
    "submit_check": ("提交系统核对申请", "submit the system check"),
    "pass": ("核对通过", "check passed"),
    "fail": ("核对未通过", "check failed"),
    "reconfigure": ("重新配置", "reconfigure"),
}

STATION = Workflow(
    "station_archive",
    {
        "pending": ("待提交", "pending submission"),
        "under_review": ("档案申请中", "under review"),
        "approved": ("档案申请通过", "approved"),
        "rejected": ("审核不通过", "rejected"),
        "deleted": ("已删除", "deleted"),
    },
    {
        ("pending", "submit"): ("under_review", OPERATOR),
        ("pending", "edit"): ("pending", OPERATOR),
        ("pending", "delete"): ("deleted", OPERATOR),
        ("under_review", "withdraw"): ("pending", OPERATOR),
        ("under_review", "approve"): ("approved", REGULATORS),
        ("under_review", "reject"): ("rejected", REGULATORS),
        ("rejected", "submit"): ("under_review", OPERATOR),
        ("rejected", "edit"): ("rejected", OPERATOR),
        ("rejected", "delete"): ("deleted", OPERATOR),
        ("approved", "delete"): ("deleted", OPERATOR),
    },
    action_labels=ACTION_LABELS,
    reason_required=frozenset({"reject"}),
)

FACILITY = Workflow(
    "facility_archive",
    {
        "pending": ("待提交", "pending submission"),
        "under_review": ("档案申请中", "archive under review"),
        "rejected": ("审核不通过", "rejected"),
        "approved": ("档案申请通过", "archive approved"),
        "ic_review": ("平台互联互通审核中", "interconnection under review"),
        "interconnected": ("互联互通", "interconnected"),
        "deleted": ("已删除", "deleted"),
    },
    {
        ("pending", "submit"): ("under_review", OPERATOR),
        ("pending", "edit"): ("pending", OPERATOR),
        ("pending", "delete"): ("deleted", OPERATOR),
        ("under_review", "withdraw"): ("pending", OPERATOR),
        ("under_review", "approve"): ("approved", REGULATORS),
        ("under_review", "reject"): ("rejected", REGULATORS),
        ("rejected", "submit"): ("under_review", OPERATOR),
        ("rejected", "edit"): ("rejected", OPERATOR),
        ("rejected", "delete"): ("deleted", OPERATOR),
        ("approved", "apply_ic"): ("ic_review", OPERATOR),
        ("ic_review", "withdraw"): ("approved", OPERATOR),
        ("ic_review", "approve_ic"): ("interconnected", REGULATORS),
        ("ic_review", "reject_ic"): ("rejected", REGULATORS),
    },
    action_labels=ACTION_LABELS,
    reason_required=frozenset({"reject", "reject_ic"}),
)

INTERCONNECTION = Workflow(
    "interconnection",
    {
        "configuring": ("配置联调中", "configuring"),
        "checking": ("系统核对中", "system check running"),
        "passed": ("核对通过（已互联互通）", "check passed (interconnected)"),
        "failed": ("核对未通过", "check failed"),
    },
    {
        ("configuring", "submit_check"): ("checking", OPERATOR),
        ("checking", "pass"): ("passed", SYSTEM),
        ("checking", "fail"): ("failed", SYSTEM),
        ("failed", "submit_check"): ("checking", OPERATOR),
        ("failed", "reconfigure"): ("configuring", OPERATOR),
        ("passed", "reconfigure"): ("configuring", OPERATOR),
    },
    action_labels=ACTION_LABELS,
)

WORKFLOWS = {wf.name: wf for wf in (STATION, FACILITY, INTERCONNECTION)}
