"""Supervision tasks (B13): regulators publish a task to target operators; each operator uploads
proof files and submits; a regulator accepts it or returns it with a reason (then the operator
can add proof and submit again).

Each target operator has its own ``task_assignments`` row, moved by the ``task`` workflow.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from services.accounts.service import CurrentUser
from services.errors import BadRequest, Conflict, NotFound
from services.messaging.files import PROOF_TYPES, check_upload
from services.messaging.notify import notify_operator
from services.models.core import AuditLog, Operator
from services.models.messaging import SupervisionTask, TaskAssignment, TaskProof
from services.settings import SupervisionSettings
from services.workflow import Workflow, apply, events_for

__all__ = ["TASK", "add_proof", "assignment_for_operator", "delete_proof", "list_for_operator", "list_tasks",
           "parse_deadline", "proof_file", "publish", "review", "submit", "task_detail"]

T, A, PF = SupervisionTask.__table__, TaskAssignment.__table__, TaskProof.__table__
REGULATORS = frozenset({"regulator", "admin"})
OPERATOR = frozenset({"operator"})
TASK = Workflow(
    "task",
    {"open": ("待完成", "to do"), "submitted": ("已提交", "submitted"), "accepted": ("已通过", "accepted"),
     "returned": ("已退回", "returned")},
    {
        ("open", "submit"): ("submitted", OPERATOR),
        ("returned", "submit"): ("submitted", OPERATOR),
        ("submitted", "accept"): ("accepted", REGULATORS),
        ("submitted", "return"): ("returned", REGULATORS),
    },
    action_labels={"submit": ("提交", "submit"), "accept": ("通过", "accept"), "return": ("退回", "return")},
    reason_required=frozenset({"return"}),
)
EDITABLE = ("open", "returned")
CST = timezone(timedelta(hours=8))


def parse_deadline(value: str | None) -> datetime | None:
    """``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM`` (a date means the end of that day, China time).

    >>> parse_deadline("2026-12-01").isoformat()
    '2026-12-01T23:59:00+08:00'
    >>> parse_deadline("") is None
    True
    """
    value = (value or "").strip()
    if not value:
        return None
    cst = CST
    try:
        if len(value) == 10:
            return datetime.fromisoformat(value).replace(hour=23, minute=59, tzinfo=cst)
        dt = datetime.fromisoformat(value)
        return dt if dt.tzinfo else dt.replace(tzinfo=cst)
    except ValueError:
        raise BadRequest("截止时间格式应为 YYYY-MM-DD / the deadline is YYYY-MM-DD", param="deadline") from None


def publish(s: Session, user: CurrentUser, *, title: str, description: str, deadline: datetime | None,
            operator_pks: Iterable[int] | str) -> int:
    title = (title or "").strip()
    if not title or len(title) > 200:
        raise BadRequest("标题不能为空，最多 200 字 / a title of 1–200 characters is required", param="title")
    description = (description or "").strip()
    if len(description) > 10000:
        raise BadRequest("描述过长 / the description is too long", param="description")
    if deadline is not None and deadline <= datetime.now(timezone.utc):
        raise BadRequest("截止时间应晚于现在 / the deadline must be in the future", param="deadline")
    if operator_pks == "all":
        pks = list(s.execute(select(Operator.id).where(Operator.registration_state == "approved")).scalars())
    else:
        pks = sorted({int(p) for p in operator_pks})
        if pks and len(set(s.execute(select(Operator.id).where(Operator.id.in_(pks))).scalars())) != len(pks):
            raise BadRequest("运营商不存在 / unknown operator", param="operators")
    if not pks:
        raise BadRequest("请选择至少一个运营商 / choose at least one operator", param="operators")
    tid = s.execute(insert(T).values(title=title, description=description, deadline=deadline, created_by=user.id,
                                     created_by_name=user.account_name).returning(T.c.id)).scalar_one()
    ids = s.execute(insert(A).returning(A.c.id, A.c.operator_pk),
                    [{"task_id": tid, "operator_pk": pk} for pk in pks]).all()
    due = f"截止时间：{deadline.astimezone(CST):%Y-%m-%d %H:%M}。" if deadline else ""
    for aid, pk in ids:
        notify_operator(s, pk, f"新的监管任务：{title}", f"{description[:300]}\n{due}请在“监管协助”中完成并上传证明材料。",
                        kind="task", link=f"/backoffice/tasks/{aid}")
    s.add(AuditLog(actor_user_id=user.id, actor=user.account_name, action="task.publish", target_type="task",
                   target_id=str(tid), details={"operators": pks}))
    return tid


def list_tasks(s: Session) -> list[dict[str, Any]]:
    return [dict(r) for r in s.execute(text("""
        SELECT t.id, t.title, t.deadline, t.created_at, t.created_by_name, count(a.id) AS targets,
               count(*) FILTER (WHERE a.state = 'submitted') AS submitted,
               count(*) FILTER (WHERE a.state = 'accepted') AS accepted,
               count(*) FILTER (WHERE a.state = 'returned') AS returned,
               count(*) FILTER (WHERE a.state = 'open') AS open
        FROM supervision_tasks t JOIN task_assignments a ON a.task_id = t.id
        GROUP BY t.id ORDER BY t.created_at DESC, t.id DESC""")).mappings()]


def _proofs(s: Session, assignment_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in assignment_ids}
    if assignment_ids:
        for r in s.execute(select(PF.c.id, PF.c.assignment_id, PF.c.filename, PF.c.content_type, PF.c.size,
                                  PF.c.created_at).where(PF.c.assignment_id.in_(assignment_ids))
                           .order_by(PF.c.id)).mappings():
            out[r["assignment_id"]].append(dict(r))
    return out


def task_detail(s: Session, task_id: int) -> dict[str, Any]:
    task = s.execute(select(T).where(T.c.id == task_id)).mappings().first()
    if task is None:
        raise NotFound("没有这个任务 / no such task")
    rows = [dict(r) for r in s.execute(text("""
        SELECT a.*, o.name AS operator_name, o.operator_id FROM task_assignments a
        JOIN operators o ON o.id = a.operator_pk WHERE a.task_id = :t ORDER BY o.name"""), {"t": task_id}).mappings()]
    proofs = _proofs(s, [r["id"] for r in rows])
    history = events_for(s, TASK, [r["id"] for r in rows])
    for r in rows:
        r["proofs"] = proofs[r["id"]]
        r["history"] = [e for e in history if e.entity_id == str(r["id"])]
    return dict(task, assignments=rows)


def list_for_operator(s: Session, operator_pk: int) -> list[dict[str, Any]]:
    return [dict(r) for r in s.execute(text("""
        SELECT a.id, a.state, a.submitted_at, a.review_reason, t.title, t.deadline, t.created_at,
               (SELECT count(*) FROM task_proofs p WHERE p.assignment_id = a.id) AS proofs
        FROM task_assignments a JOIN supervision_tasks t ON t.id = a.task_id
        WHERE a.operator_pk = :op ORDER BY t.created_at DESC, a.id DESC"""), {"op": operator_pk}).mappings()]


def assignment_for_operator(s: Session, operator_pk: int | None, assignment_id: int) -> dict[str, Any]:
    """One assignment with its task and proofs; 404 unless it is ``operator_pk``'s (None: any, for regulators)."""
    row = s.execute(text("""
        SELECT a.*, t.title, t.description, t.deadline, t.created_at AS published_at, t.created_by_name,
               o.name AS operator_name
        FROM task_assignments a JOIN supervision_tasks t ON t.id = a.task_id JOIN operators o ON o.id = a.operator_pk
        WHERE a.id = :id"""), {"id": assignment_id}).mappings().first()
    if row is None or (operator_pk is not None and row["operator_pk"] != operator_pk):
        raise NotFound("没有这个任务 / no such task")
    out = dict(row)
    out["proofs"] = _proofs(s, [assignment_id])[assignment_id]
    out["history"] = events_for(s, TASK, [assignment_id])
    return out


def _lock(s: Session, assignment_id: int, operator_pk: int | None) -> TaskAssignment:
    a = s.get(TaskAssignment, assignment_id, with_for_update=True)
    if a is None or (operator_pk is not None and a.operator_pk != operator_pk):
        raise NotFound("没有这个任务 / no such task")
    return a


def add_proof(s: Session, cfg: SupervisionSettings, user: CurrentUser, assignment_id: int, filename: str | None,
              data: bytes) -> int:
    a = _lock(s, assignment_id, user.operator_pk)
    if a.state not in EDITABLE:
        raise Conflict(f"任务{TASK.label(a.state)}，不能再上传 / the task is {TASK.label(a.state, 'en')}: no more uploads")
    n = s.execute(select(func.count()).select_from(PF).where(PF.c.assignment_id == assignment_id)).scalar_one()
    if n >= cfg.proof_max_files:
        raise BadRequest(f"最多 {cfg.proof_max_files} 个文件 / at most {cfg.proof_max_files} files", param="file")
    up = check_upload(filename, data, allowed=PROOF_TYPES, max_bytes=cfg.proof_max_bytes, what="证明材料 / proof file")
    pid = s.execute(insert(PF).values(assignment_id=assignment_id, filename=up.filename, content_type=up.content_type,
                                      size=len(up.data), data=up.data, uploaded_by=user.id)
                    .returning(PF.c.id)).scalar_one()
    s.add(AuditLog(actor_user_id=user.id, actor=user.account_name, action="task.proof_upload", target_type="task_assignment",
                   target_id=str(assignment_id), details={"file": up.filename, "size": len(up.data)}))
    return pid


def delete_proof(s: Session, user: CurrentUser, assignment_id: int, proof_id: int) -> None:
    a = _lock(s, assignment_id, user.operator_pk)
    if a.state not in EDITABLE:
        raise Conflict(f"任务{TASK.label(a.state)}，不能删除材料 / the task is {TASK.label(a.state, 'en')}")
    res = s.execute(delete(PF).where(PF.c.id == proof_id, PF.c.assignment_id == assignment_id))
    if res.rowcount == 0:
        raise NotFound("没有这个文件 / no such file")


def submit(s: Session, user: CurrentUser, assignment_id: int, note: str | None) -> None:
    a = _lock(s, assignment_id, user.operator_pk)
    n = s.execute(select(func.count()).select_from(PF).where(PF.c.assignment_id == assignment_id)).scalar_one()
    if n == 0 and a.state in EDITABLE:
        raise BadRequest("请先上传证明材料 / upload at least one proof file first", param="file")
    apply(s, TASK, a, "submit", role=user.role, actor_user_id=user.id, actor_name=user.operator_name,
          reason=(note or "").strip()[:2000] or None)
    a.note = (note or "").strip()[:2000] or None
    a.submitted_at = datetime.now(timezone.utc)


def review(s: Session, user: CurrentUser, assignment_id: int, action: str, reason: str | None) -> None:
    if action not in ("accept", "return"):
        raise NotFound("no such action")
    a = _lock(s, assignment_id, None)
    apply(s, TASK, a, action, role=user.role, actor_user_id=user.id, actor_name=user.account_name, reason=reason)
    a.reviewed_at = datetime.now(timezone.utc)
    a.review_reason = (reason or "").strip() or None
    title = s.execute(select(T.c.title).where(T.c.id == a.task_id)).scalar_one()
    if action == "accept":
        notify_operator(s, a.operator_pk, f"监管任务已通过：{title}", "您提交的任务材料已审核通过。", kind="task",
                        link=f"/backoffice/tasks/{a.id}")
    else:
        notify_operator(s, a.operator_pk, f"监管任务被退回：{title}", f"退回原因：{reason}\n请补充材料后重新提交。",
                        kind="task", link=f"/backoffice/tasks/{a.id}")


def proof_file(s: Session, proof_id: int, *, operator_pk: int | None) -> tuple[str, str, bytes]:
    row = s.execute(select(PF.c.filename, PF.c.content_type, PF.c.data, A.c.operator_pk)
                    .join(A, A.c.id == PF.c.assignment_id).where(PF.c.id == proof_id)).first()
    if row is None or (operator_pk is not None and row.operator_pk != operator_pk):
        raise NotFound("没有这个文件 / no such file")
    return row.filename, row.content_type, bytes(row.data)

