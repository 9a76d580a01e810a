"""Outgoing e-mail and SMS behind two small interfaces, with the database outbox as the default.

Every message is recorded in ``outbox`` first (the developer's inbox: ``zhcharge outbox`` and
``/dev/outbox`` when ``ZHCHARGE_ENV=dev``). When an SMTP host (or an SMS gateway URL) is set,
the message is then delivered and ``sent_at`` or ``error`` recorded.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

import httpx
from sqlalchemy import func, insert, select, update

from services.models.accounts import Outbox
from services.settings import MailSettings

__all__ = ["Mailer", "Messenger", "OutboxMailer", "SmsGateway", "SmtpMailer", "HttpSmsGateway", "OutboxSms",
           "list_outbox", "messenger_for", "record"]

log = logging.getLogger("zhcharge.messaging")
OUTBOX = Outbox.__table__


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...


class SmsGateway(Protocol):
    def send(self, phone: str, text: str) -> None: ...


class OutboxMailer:
    """Delivers nothing: the outbox row is the message."""

    def send(self, to: str, subject: str, body: str) -> None:
        return None


class OutboxSms:
    def send(self, phone: str, text: str) -> None:
        return None


@dataclass
class SmtpMailer:
    """SMTP with optional implicit TLS (``smtp_tls``), STARTTLS and login, from settings."""

    settings: MailSettings
    timeout_s: float = 10.0

    def send(self, to: str, subject: str, body: str) -> None:
        s = self.settings
        msg = EmailMessage()
        msg["From"] = s.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=s.sender.rpartition("@")[2] or "zhcharge.local")
        msg.set_content(body)
        context = ssl.create_default_context()
        cls = smtplib.SMTP_SSL if s.smtp_tls else smtplib.SMTP
        kwargs: dict[str, Any] = {"context": context} if s.smtp_tls else {}
        with cls(s.smtp_host, s.smtp_port, timeout=self.timeout_s, **kwargs) as smtp:
            if s.smtp_starttls and not s.smtp_tls:
                smtp.starttls(context=context)
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password or "")
            smtp.send_message(msg)


@dataclass
class HttpSmsGateway:
    """A JSON POST ``{"phone", "text"}`` to the gateway URL; any 2xx is delivered."""

    url: str
    timeout_s: float = 10.0

    def send(self, phone: str, text: str) -> None:
        httpx.post(self.url, json={"phone": phone, "text": text}, timeout=self.timeout_s).raise_for_status()


def record(conn: Any, channel: str, recipient: str, subject: str | None, body: str) -> int:
    return conn.execute(insert(OUTBOX).values(channel=channel, recipient=recipient, subject=subject, body=body)
                        .returning(OUTBOX.c.id)).scalar_one()


class Messenger:
    """What handlers use: ``email(conn, to, subject, body)`` and ``sms(conn, phone, text)``."""

    def __init__(self, mailer: Mailer, sms: SmsGateway) -> None:
        self.mailer = mailer
        self.sms_gateway = sms

    def _deliver(self, conn: Any, outbox_id: int, send: Any) -> bool:
        try:
            send()
        except Exception as exc:  # noqa: BLE001 - any delivery failure is recorded, not raised
            log.warning("delivery of outbox message %s failed: %s", outbox_id, exc)
            conn.execute(update(OUTBOX).where(OUTBOX.c.id == outbox_id).values(error=str(exc)[:500]))
            return False
        if not isinstance(send.__self__, (OutboxMailer, OutboxSms)):
            conn.execute(update(OUTBOX).where(OUTBOX.c.id == outbox_id).values(sent_at=func.now()))
        return True

    def email(self, conn: Any, to: str, subject: str, body: str) -> bool:
        oid = record(conn, "email", to, subject, body)
        return self._deliver(conn, oid, _Bound(self.mailer, "send", to, subject, body))

    def sms(self, conn: Any, phone: str, text: str) -> bool:
        oid = record(conn, "sms", phone, None, text)
        return self._deliver(conn, oid, _Bound(self.sms_gateway, "send", phone, text))


class _Bound:
    """A deferred ``obj.method(*args)`` that remembers ``obj`` (as ``__self__``)."""

    def __init__(self, obj: Any, method: str, *args: Any) -> None:
        self.__self__ = obj
        self._method = method
        self._args = args

    def __call__(self) -> Any:
        return getattr(self.__self__, self._method)(*self._args)


def messenger_for(settings: MailSettings) -> Messenger:
    mailer: Mailer = SmtpMailer(settings) if settings.smtp_host else OutboxMailer()
    sms: SmsGateway = (HttpSmsGateway(settings.sms_url) if settings.sms_gateway == "http" and settings.sms_url
                       else OutboxSms())
    return Messenger(mailer, sms)


def list_outbox(conn: Any, limit: int = 50, channel: str | None = None) -> list[dict[str, Any]]:
    """The newest messages first."""
    q = select(OUTBOX).order_by(OUTBOX.c.id.desc()).limit(limit)
    if channel:
        q = q.where(OUTBOX.c.channel == channel)
    rows = conn.execute(q).mappings().all()
    return [dict(r) for r in rows]
