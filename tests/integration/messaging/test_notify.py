"""notify_operator / notify_operators: the entry point other domains call."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from services.db import Database
from services.messaging.notify import notify_operator, notify_operators
from tests.accounts_helpers import create_operator_user


def test_notify_operator_creates_an_unread_message(database: Database, engine) -> None:  # noqa: ANN001
    op = create_operator_user(engine)
    with database.session() as s:
        mid = notify_operator(s, op["operator_pk"], "档案审核通过", "站点档案已通过审核。", link="/backoffice/archives/1")
    with engine.connect() as conn:
        row = conn.execute(text("SELECT m.kind, m.title, m.link, r.read_at FROM messages m "
                                "JOIN message_recipients r ON r.message_id = m.id WHERE m.id = :id"), {"id": mid}).one()
    assert row.kind == "workflow" and row.title == "档案审核通过" and row.link == "/backoffice/archives/1"
    assert row.read_at is None


def test_notify_operators_dedupes_and_rolls_back_with_the_caller(database: Database, engine) -> None:  # noqa: ANN001
    a, b = create_operator_user(engine), create_operator_user(engine)
    with database.session() as s:
        mid = notify_operators(s, [a["operator_pk"], b["operator_pk"], a["operator_pk"]], "t", "b", kind="notice")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM message_recipients WHERE message_id = :id"),
                            {"id": mid}).scalar() == 2
    with pytest.raises(RuntimeError), database.session() as s:
        mid2 = notify_operator(s, a["operator_pk"], "rolled back", "")
        raise RuntimeError
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM messages WHERE id = :id"), {"id": mid2}).scalar() == 0
    with pytest.raises(ValueError), database.session() as s:
        notify_operators(s, [], "t", "b")


def test_demo_content_is_idempotent(database: Database, engine) -> None:  # noqa: ANN001
    from services.messaging.demo import ensure_demo_content

    create_operator_user(engine)
    with database.session() as s:
        first = ensure_demo_content(s)
    with database.session() as s:
        second = ensure_demo_content(s)
    assert first["notices"] == 3 and first["tasks"] == 1 and first["feedback"] >= 1
    assert second == {"notices": 0, "feedback": 0, "tasks": 0}
