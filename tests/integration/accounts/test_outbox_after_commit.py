"""Mail and SMS go out only after the transaction that created them commits; a failed send is kept.

A slow SMTP server (aiosmtpd on loopback that looks into the database while it receives) sees the
outbox row and the code already committed; a dead SMTP server leaves the row with its error,
visible in ``zhcharge outbox``; a rolled-back transaction sends nothing.
"""

from __future__ import annotations

import email
import email.policy
import json
import secrets
import socket
import threading
import time
from typing import Any

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient
from sqlalchemy import create_engine, text

from services.accounts.messaging import Messenger, OutboxSms, SmtpMailer, deliver_unsent, messenger_for
from services.settings import AccountSettings, AppSettings, DatabaseSettings, MailSettings, Settings
from tests.accounts_helpers import csrf_from


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlowWatchingInbox:
    """An SMTP handler that, while a message arrives, asks the database (its own connection) what
    is committed, then answers slowly."""

    def __init__(self, db_url: str, delay_s: float = 0.5) -> None:
        self.engine = create_engine(db_url, pool_size=1)
        self.delay_s = delay_s
        self.seen: list[dict[str, Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        to = str(msg["To"])
        with self.engine.connect() as conn:
            row = conn.execute(text("SELECT sent_at, error FROM outbox WHERE recipient = :r ORDER BY id DESC LIMIT 1"),
                               {"r": to}).first()
            codes = conn.execute(text("SELECT count(*) FROM verification_codes WHERE recipient = :r"), {"r": to}).scalar()
            open_tx = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND state LIKE 'idle in transaction%' AND query ILIKE '%outbox%'")).scalar()
        self.seen.append({"to": to, "row_committed": row is not None, "sent_at": row.sent_at if row else None,
                          "codes_committed": codes, "open_tx": open_tx, "body": msg.get_content()})
        time.sleep(self.delay_s)  # a slow server: nothing of ours waits on it inside a transaction
        return "250 OK"


@pytest.fixture()
def slow_smtp(db_url: str):  # noqa: ANN201
    from aiosmtpd.controller import Controller

    handler = SlowWatchingInbox(db_url)
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()
    handler.engine.dispose()


def _app(db_url: str, database: Any, tmp_path: Any, smtp_port: int):  # noqa: ANN202
    from portal_site.app import create_app

    settings = Settings(db=DatabaseSettings(database_url=db_url),
                        app=AppSettings(env="test", run_scheduler=False, upload_dir=tmp_path),
                        mail=MailSettings(smtp_host="127.0.0.1", smtp_port=smtp_port, sender="noreply@zhcharge.test"),
                        accounts=AccountSettings())
    return create_app(settings, database=database)


def _outbox(engine: Any, recipient: str) -> list:
    with engine.connect() as conn:
        return conn.execute(text("SELECT id, sent_at, error, body FROM outbox WHERE recipient = :r ORDER BY id"),
                            {"r": recipient}).all()


def test_registration_code_is_mailed_after_the_commit(db_url, database, engine, tmp_path, slow_smtp) -> None:  # noqa: ANN001
    handler, port = slow_smtp
    to = f"slow-{secrets.token_hex(3)}@example.com"
    with TestClient(_app(db_url, database, tmp_path, port), base_url="http://127.0.0.1:8000") as c:
        token = csrf_from(c, "/register")
        r = c.post("/register/code", data={"_csrf": token, "email": to})
    assert r.status_code == 200 and "验证码已发送" in r.text
    [seen] = [s for s in handler.seen if s["to"] == to]
    # while the SMTP server had the message, the outbox row and the code were already committed,
    # not yet marked sent, and no transaction of ours stood open
    assert seen["row_committed"] and seen["codes_committed"] == 1 and seen["sent_at"] is None
    assert seen["open_tx"] == 0
    [row] = _outbox(engine, to)
    assert row.sent_at is not None and row.error is None and row.body in seen["body"].replace("\r\n", "\n") + "\n"


def test_a_failed_send_is_recorded_and_listed(db_url, database, engine, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    dead_port = _free_port()  # nothing listens there
    to = f"dead-{secrets.token_hex(3)}@example.com"
    with TestClient(_app(db_url, database, tmp_path, dead_port), base_url="http://127.0.0.1:8000") as c:
        token = csrf_from(c, "/register")
        r = c.post("/register/code", data={"_csrf": token, "email": to})
    assert r.status_code == 503 and "邮件发送失败" in r.text
    [row] = _outbox(engine, to)  # the message is not lost: it is in the outbox with the error
    assert row.sent_at is None and row.error
    with engine.connect() as conn:  # and the code it carries was committed
        assert conn.execute(text("SELECT count(*) FROM verification_codes WHERE recipient = :r"), {"r": to}).scalar() == 1

    monkeypatch.setenv("ZHCHARGE_DATABASE_URL", db_url)
    from portal_site.cli import main

    out = CliRunner().invoke(main, ["outbox", "--json", "--limit", "200"])
    assert out.exit_code == 0, out.output
    [listed] = [m for m in json.loads(out.output) if m["recipient"] == to]
    assert listed["error"] == row.error and listed["sent_at"] is None
    out = CliRunner().invoke(main, ["outbox", "--limit", "200", "--channel", "email"])
    assert f"{to} [error: " in out.output


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple] = []
        self.fail = fail
        self.lock = threading.Lock()

    def send(self, *args: Any) -> None:
        if self.fail:
            raise ConnectionRefusedError("gateway down")
        with self.lock:
            self.sent.append(args)


def test_nothing_is_sent_before_the_commit_or_after_a_rollback(database, engine) -> None:  # noqa: ANN001
    mailer, sms = Recorder(), Recorder()
    m = Messenger(mailer, sms)  # type: ignore[arg-type]
    to = f"tx-{secrets.token_hex(3)}@example.com"

    class Boom(Exception):
        pass

    with pytest.raises(Boom), database.session() as s:
        m.email(s, to, "主题", "正文")
        raise Boom
    assert mailer.sent == [] and _outbox(engine, to) == []  # rolled back: no row, nothing sent

    with database.session() as s:
        out = m.email(s, to, "主题", "正文")
        phone_msg = m.sms(s, "13800000000", f"短信 {to}")
        assert mailer.sent == [] and sms.sent == [] and out.delivered is None  # not inside the transaction
    assert mailer.sent == [(to, "主题", "正文")] and sms.sent == [("13800000000", f"短信 {to}")]
    assert out.delivered is True and phone_msg.delivered is True
    [row] = _outbox(engine, to)
    assert row.sent_at is not None and row.error is None


def test_core_connections_deliver_explicitly_and_unsent_messages_are_retried(engine) -> None:  # noqa: ANN001
    down = Messenger(Recorder(fail=True), OutboxSms())  # type: ignore[arg-type]
    to = f"retry-{secrets.token_hex(3)}@example.com"
    with engine.begin() as conn:
        out = down.email(conn, to, "主题", "正文")
    assert out.delivered is None
    assert down.deliver(engine, out) is False and out.error == "gateway down"
    [row] = _outbox(engine, to)
    assert row.sent_at is None and row.error == "gateway down"

    up = Recorder()
    assert deliver_unsent(engine, Messenger(up, OutboxSms()), older_than_s=0, limit=1000) >= 1  # type: ignore[arg-type]
    assert (to, "主题", "正文") in up.sent
    [row] = _outbox(engine, to)
    assert row.sent_at is not None and row.error is None

    # the outbox-only default has nothing to send: the row is the message
    with engine.begin() as conn:
        assert messenger_for(MailSettings()).email(conn, f"plain-{to}", "s", "b").delivered is True


def test_smtp_mailer_is_used_when_a_host_is_set() -> None:
    assert isinstance(messenger_for(MailSettings(smtp_host="127.0.0.1", smtp_port=2525)).mailer, SmtpMailer)
