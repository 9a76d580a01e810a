"""An app whose mail goes through a real SMTP server (aiosmtpd) on a loopback port."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from services.settings import AccountSettings, AppSettings, DatabaseSettings, MailSettings, Settings


class Inbox:
    """Messages received by the test SMTP server."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self._cv:
            self.messages.append(msg)
            self._cv.notify_all()
        return "250 OK"

    def last_to(self, address: str) -> email.message.EmailMessage:
        with self._cv:
            found = [m for m in self.messages if address in str(m["To"])]
        assert found, f"no mail to {address}; got {[str(m['To']) for m in self.messages]}"
        return found[-1]

    def code_for(self, address: str) -> str:
        body = self.last_to(address).get_content()
        m = re.search(r"\b(\d{6})\b", body)
        assert m, body
        return m.group(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def smtp_inbox() -> Iterator[tuple[Inbox, int]]:
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture(scope="session")
def mail_settings(db_url: str, tmp_path_factory: pytest.TempPathFactory, smtp_inbox: tuple[Inbox, int]) -> Settings:
    return Settings(db=DatabaseSettings(database_url=db_url),
                    app=AppSettings(env="test", run_scheduler=False, upload_dir=tmp_path_factory.mktemp("mailapp")),
                    mail=MailSettings(smtp_host="127.0.0.1", smtp_port=smtp_inbox[1], sender="noreply@zhcharge.test"),
                    accounts=AccountSettings())


@pytest.fixture(scope="session")
def mail_app(mail_settings: Settings, database: Any):  # noqa: ANN201
    from portal_site.app import create_app

    return create_app(mail_settings, database=database)


@pytest.fixture()
def mail_client(mail_app: Any) -> Iterator[Any]:
    from litestar.testing import TestClient

    with TestClient(mail_app, base_url="http://127.0.0.1:8000") as c:
        yield c


@pytest.fixture()
def inbox(smtp_inbox: tuple[Inbox, int]) -> Inbox:
    return smtp_inbox[0]
