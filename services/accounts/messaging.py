"""Outgoing e-mail and SMS behind two small interfaces, with the database outbox as the default.

Every message is recorded in ``outbox`` first, in the caller's transaction (the developer's inbox:
``zhcharge outbox`` and ``/dev/outbox`` when ``ZHCHARGE_ENV=dev``). When an SMTP host (or an SMS
gateway URL) is set, the message is delivered once that transaction has committed, and
``sent_at`` or ``error`` recorded in the row; a failed send is never lost (see :class:`Messenger`).
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
from sqlalchemy import event, func, insert, select, update
from sqlalchemy.orm import Session

from services.models.accounts import Outbox
from services.settings import MailSettings

__all__ = ["Mailer", "Messenger", "Outgoing", "OutboxMailer", "SmsGateway", "SmtpMailer", "HttpSmsGateway", "OutboxSms",
           "deliver_unsent", "list_outbox", "messenger_for", "record"]

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


class Outgoing:
    """One recorded message. ``delivered`` is None until the send was tried (after the commit), then
    True (sent, or nothing to send: the outbox is the delivery) or False (``error`` recorded)."""

    __slots__ = ("outbox_id", "channel", "recipient", "_send", "delivered", "error")

    def __init__(self, outbox_id: int, channel: str, recipient: str, send: "_Bound | None") -> None:
        self.outbox_id = outbox_id
        self.channel = channel
        self.recipient = recipient
        self._send = send
        self.delivered: bool | None = True if send is None else None
        self.error: str | None = None

    def __bool__(self) -> bool:
        """False only when the send was tried and failed (the row is kept either way)."""
        return self.delivered is not False

    def __repr__(self) -> str:
        return f"<Outgoing #{self.outbox_id} {self.channel} → {self.recipient} delivered={self.delivered}>"


_PENDING_KEY = "zhcharge_outbox_pending"
_HOOKED_KEY = "zhcharge_outbox_hooked"


class Messenger:
    """What handlers use: ``email(session, to, subject, body)`` and ``sms(session, phone, text)``.

    The outbox row is inserted in the caller's transaction; the message is *sent* only after that
    transaction commits (a slow SMTP server never holds a transaction open, and a rolled-back
    transaction sends nothing). With an ORM ``Session`` this happens by itself (an
    ``after_commit`` hook); with a Core ``Connection`` the caller calls :meth:`deliver` with the
    engine after its ``with engine.begin()`` block. The send's outcome goes into the row
    (``sent_at`` or ``error``, in a transaction of its own), so a failed message stays visible
    in ``zhcharge outbox`` and can be retried (:func:`deliver_unsent`).
    """

    def __init__(self, mailer: Mailer, sms: SmsGateway) -> None:
        self.mailer = mailer
        self.sms_gateway = sms

    def email(self, conn: Any, to: str, subject: str, body: str) -> Outgoing:
        oid = record(conn, "email", to, subject, body)
        send = None if isinstance(self.mailer, OutboxMailer) else _Bound(self.mailer, "send", to, subject, body)
        return _queue(conn, Outgoing(oid, "email", to, send))

    def sms(self, conn: Any, phone: str, text: str) -> Outgoing:
        oid = record(conn, "sms", phone, None, text)
        send = None if isinstance(self.sms_gateway, OutboxSms) else _Bound(self.sms_gateway, "send", phone, text)
        return _queue(conn, Outgoing(oid, "sms", phone, send))

    @staticmethod
    def deliver(engine: Any, *messages: Outgoing) -> bool:
        """Send ``messages`` (already committed) and record each outcome; True when all went out."""
        ok = True
        for m in messages:
            ok = _deliver(engine, m) and ok
        return ok


def _queue(conn: Any, message: Outgoing) -> Outgoing:
    if message._send is None or not isinstance(conn, Session):
        return message
    if not conn.info.get(_HOOKED_KEY):
        conn.info[_HOOKED_KEY] = True
        event.listen(conn, "after_commit", _after_commit)
        event.listen(conn, "after_rollback", _after_rollback)
    conn.info.setdefault(_PENDING_KEY, []).append(message)
    return message


def _after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, None) or []
    if pending:
        engine = session.get_bind().engine
        for m in pending:
            _deliver(engine, m)


def _after_rollback(session: Session) -> None:
    # the rows are gone with the transaction: nothing to send
    session.info.pop(_PENDING_KEY, None)


def _deliver(engine: Any, m: Outgoing) -> bool:
    """Try the send once and write the outcome into the outbox row (its own transaction)."""
    if m._send is None:
        m.delivered = True
        return True
    try:
        m._send()
    except Exception as exc:  # noqa: BLE001 - any delivery failure is recorded, not raised
        log.warning("delivery of outbox message %s failed: %s", m.outbox_id, exc)
        m.delivered, m.error = False, (str(exc) or type(exc).__name__)[:500]
        values: dict[str, Any] = {"error": m.error}
    else:
        m.delivered = True
        values = {"sent_at": func.now(), "error": None}
    try:
        with engine.begin() as conn:
            conn.execute(update(OUTBOX).where(OUTBOX.c.id == m.outbox_id).values(**values))
    except Exception:  # noqa: BLE001 - the message itself went out (or not); only its status is lost
        log.exception("could not record the delivery status of outbox message %s", m.outbox_id)
    return bool(m.delivered)


def deliver_unsent(engine: Any, messenger: "Messenger", *, older_than_s: int = 60, limit: int = 100) -> int:
    """Retry messages never sent (an error, or a process that stopped between commit and send);
    returns how many went out now. Only when a real transport is configured."""
    with engine.begin() as conn:
        rows = conn.execute(select(OUTBOX).where(
            OUTBOX.c.sent_at.is_(None),
            OUTBOX.c.created_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than_s))
            .order_by(OUTBOX.c.id).limit(limit)).all()
    sent = 0
    for r in rows:
        if r.channel == "email":
            if isinstance(messenger.mailer, OutboxMailer):
                continue
            send = _Bound(messenger.mailer, "send", r.recipient, r.subject or "", r.body)
        else:
            if isinstance(messenger.sms_gateway, OutboxSms):
                continue
            send = _Bound(messenger.sms_gateway, "send", r.recipient, r.body)
        sent += _deliver(engine, Outgoing(r.id, r.channel, r.recipient, send))
    return sent


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
