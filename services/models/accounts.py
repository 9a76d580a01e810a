"""Accounts: users, server-side sessions, one-time codes, the message outbox; and the
registration columns of ``operators`` (added by the accounts migration, revision 0400).

The registration of an operator company lives on its ``operators`` row (not a parallel table),
so the feed, archives and subsidies all join one row. The columns are attached to the
foundation's :class:`~services.models.core.Operator` class here, where they are migrated.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Identity, Index, Integer,
                        SmallInteger, String, Text, text)
from sqlalchemy.orm import Mapped, mapped_column

from services.models.base import Base, created_at, updated_at
from services.models.core import Operator

__all__ = ["News", "Outbox", "SitePage", "User", "UserSession", "VerificationCode", "REGISTRATION_STATES", "ROLES"]

ROLES = ("operator", "regulator", "admin")
REGISTRATION_STATES = ("submitted", "approved", "rejected")

# --- registration columns of operators (declarative attribute assignment) --------------------
Operator.address = mapped_column(String(200))
Operator.legal_representative = mapped_column(String(50))
Operator.contact_name = mapped_column(String(50))
Operator.contact_phone = mapped_column(String(20))
Operator.email = mapped_column(String(254))
Operator.registration_state = mapped_column(String(10))
Operator.rejection_reason = mapped_column(Text)
Operator.submitted_at = mapped_column(DateTime(timezone=True))
Operator.reviewed_at = mapped_column(DateTime(timezone=True))
Operator.reviewed_by = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL", use_alter=True))
Operator.__table__.append_constraint(CheckConstraint(
    "registration_state IS NULL OR registration_state IN ('submitted', 'approved', 'rejected')",
    name="registration_state"))


class User(Base):
    """A person who logs in: an operator company's user, a regulator or an administrator."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('operator', 'regulator', 'admin')", name="role"),
        CheckConstraint("role <> 'operator' OR operator_pk IS NOT NULL", name="operator_has_company"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    account_name: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(String(10), nullable=False)
    operator_pk: Mapped[int | None] = mapped_column(Integer, ForeignKey("operators.id", ondelete="CASCADE"), index=True)
    display_name: Mapped[str | None] = mapped_column(String(100))
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()


class UserSession(Base):
    """A logged-in session. ``id`` is the SHA-256 of the cookie's secret, never the secret."""

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    created_at: Mapped[datetime] = created_at()
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=text("now()"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(200))


class VerificationCode(Base):
    """A 6-digit code sent by e-mail or SMS; only its HMAC is stored.

    ``session_key`` binds a verified registration e-mail to the browser session that verified it.
    """

    __tablename__ = "verification_codes"
    __table_args__ = (
        CheckConstraint("purpose IN ('register', 'reset_password', 'unlock')", name="purpose"),
        CheckConstraint("channel IN ('email', 'sms')", name="channel"),
        Index("ix_verification_codes_lookup", "purpose", "recipient", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(20), nullable=False)
    channel: Mapped[str] = mapped_column(String(5), nullable=False)
    recipient: Mapped[str] = mapped_column(String(254), nullable=False)
    code_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    attempts: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    session_key: Mapped[str | None] = mapped_column(String(64))


class Outbox(Base):
    """Every e-mail and SMS the platform sends; without a gateway it is the delivery itself."""

    __tablename__ = "outbox"
    __table_args__ = (CheckConstraint("channel IN ('email', 'sms')", name="channel"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    channel: Mapped[str] = mapped_column(String(5), nullable=False)
    recipient: Mapped[str] = mapped_column(String(254), nullable=False)
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = created_at()
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)


class News(Base):
    """A news item of the portal (P5): industry or policy news, Markdown, draft or published."""

    __tablename__ = "news"
    __table_args__ = (
        CheckConstraint("category IN ('industry', 'policy')", name="category"),
        CheckConstraint("state IN ('draft', 'published')", name="state"),
        Index("ix_news_published", "state", "published_at"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    category: Mapped[str] = mapped_column(String(10), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    summary: Mapped[str | None] = mapped_column(String(500))
    body_md: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    state: Mapped[str] = mapped_column(String(10), nullable=False, server_default="draft")
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    author_user_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class SitePage(Base):
    """Editable text of a portal page (``open-platform``, ``about``), Markdown, draft or published."""

    __tablename__ = "site_pages"
    __table_args__ = (CheckConstraint("state IN ('draft', 'published')", name="state"),)

    slug: Mapped[str] = mapped_column(String(40), primary_key=True)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    title_en: Mapped[str | None] = mapped_column(String(200))
    body_md: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    body_md_en: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(10), nullable=False, server_default="published")
    updated_by: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = updated_at()
