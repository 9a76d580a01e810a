"""Demo content for the back-office pages of this domain: a few notices (one asking for
confirmation), two citizen feedbacks (one for a station, one waiting for a regulator to assign
it) and a supervision task. Idempotent: each item is recognised by its title or text and only
created when missing. Needs approved operators (and, for the station feedback, a station).

    from services.messaging.demo import ensure_demo_content
    with db.session() as s:
        ensure_demo_content(s)
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from services.feedback.service import new_ticket
from services.messaging.notify import notify_operators
from services.models.core import Operator
from services.models.messaging import Feedback, Message, SupervisionTask, TaskAssignment
from services.workflow import WorkflowEvent

__all__ = ["ensure_demo_content"]

NOTICES = [
    ("关于开展2026年冬季充电设施安全检查的通知",
     "各运营商：\n请于12月15日前完成所辖充电站的消防、电气安全自查，并在“监管协助”中上传自查材料。\n请确认是否能按期完成。",
     True),
    ("平台维护通知", "本平台将于本周六 02:00–04:00 进行系统维护，期间数据接入可能中断，请做好重传准备。", False),
    ("充电服务费价格公示要求", "请确保各站点在平台公示的电费、服务费与现场一致；价格调整请于生效前3日通过数据接口更新。", False),
]
FEEDBACK = [
    ("repair", "充电枪插入后无法启动，屏幕显示“通信故障”。", True),
    ("suggestion", "建议在唐家湾大学城附近增设直流快充站，晚上排队时间很长。", False),
]
TASK_TITLE = "冬季充电设施安全自查"


def ensure_demo_content(session: Session) -> dict[str, Any]:
    """Create what is missing; returns counts of what was created."""
    s = session
    created = {"notices": 0, "feedback": 0, "tasks": 0}
    ops = list(s.execute(select(Operator.id).where(Operator.registration_state == "approved")
                         .order_by(Operator.id)).scalars())
    if ops:
        for title, body, confirm in NOTICES:
            if s.execute(select(Message.id).where(Message.title == title, Message.kind == "notice")).first() is None:
                notify_operators(s, ops, title, body, kind="notice", requires_confirmation=confirm,
                                 sender_name="珠海市发展和改革局")
                created["notices"] += 1
        if s.execute(select(SupervisionTask.id).where(SupervisionTask.title == TASK_TITLE)).first() is None:
            task = SupervisionTask(title=TASK_TITLE, description="请上传灭火器、应急照明及配电柜的现场照片和自查表（PDF）。",
                                   deadline=datetime.now(timezone.utc) + timedelta(days=21),
                                   created_by_name="珠海市发展和改革局")
            s.add(task)
            s.flush()
            for pk in ops:
                s.add(TaskAssignment(task_id=task.id, operator_pk=pk))
            s.flush()
            notify_operators(s, ops, f"新的监管任务：{TASK_TITLE}", "请在“监管协助”中完成并上传证明材料。", kind="task",
                             link="/backoffice/tasks")
            created["tasks"] += 1
    for kind, body, at_station in FEEDBACK:
        if s.execute(select(Feedback.id).where(Feedback.body == body)).first() is not None:
            continue
        station = None
        if at_station:
            station = s.execute(text(
                "SELECT st.id, o.id AS operator_pk FROM stations st JOIN operators o ON o.operator_id = st.operator_id "
                "WHERE st.feed_state = 'active' ORDER BY (o.registration_state = 'approved') DESC, st.id LIMIT 1")).first()
            if station is None:
                continue
        fb = Feedback(ticket=new_ticket(), kind=kind, state="submitted", body=body,
                      station_pk=station.id if station else None, operator_pk=station.operator_pk if station else None)
        s.add(fb)
        s.flush()
        s.add(WorkflowEvent(workflow="feedback", entity_id=str(fb.id), action="submit", from_state=None,
                            to_state="submitted", actor_role="citizen", actor_name="citizen"))
        created["feedback"] += 1
    return created
