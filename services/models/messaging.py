"""Tables for the back-office pages B6–B9 and B13 and the regulator dashboard.

* messages (B8): one ``messages`` row per notice, one ``message_recipients`` row per addressed
  operator (read / confirmation state), ``message_replies`` for the operators' text replies;
* operator contacts (B7) and pending changes to an operator's key fields (B6);
* citizen feedback (B9) with its photos;
* supervision tasks (B13): a task, one assignment per target operator, proof files;
* ``status_snapshots``: the periodic connector counts behind the dashboard's online-rate chart.

Uploaded files (photos, proofs) are stored in the database as ``bytea``: they are small (size
limits at the edge), every app process sees them, and they go away with their row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from services.models.base import Base, created_at, updated_at

__all__ = ["Message", "MessageRecipient", "MessageReply", "OperatorContact", "OperatorProfileChange", "Feedback",
           "FeedbackPhoto", "SupervisionTask", "TaskAssignment", "TaskProof", "StatusSnapshot"]


class Message(Base):
    """A notice from a regulator or a notification from a workflow, addressed to operators."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), nullable=False, server_default="notice")
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    link: Mapped[str | None] = mapped_column(String(300))
    requires_confirmation: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    sender_user_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    sender_name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = created_at()

    __table_args__ = (
        CheckConstraint("kind IN ('notice', 'workflow', 'feedback', 'task', 'system')", name="kind"),
        Index("ix_messages_created_at", "created_at"),
    )


class MessageRecipient(Base):
    """One operator's copy of a message: read mark and, where asked, its confirmation."""

    __tablename__ = "message_recipients"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    message_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False)
    operator_pk: Mapped[int] = mapped_column(Integer, ForeignKey("operators.id", ondelete="CASCADE"), nullable=False)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    read_by: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    confirmation: Mapped[str | None] = mapped_column(String(10))
    confirmation_reason: Mapped[str | None] = mapped_column(Text)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    confirmed_by: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at()

    __table_args__ = (
        UniqueConstraint("message_id", "operator_pk"),
        CheckConstraint("confirmation IS NULL OR confirmation IN ('agree', 'disagree')", name="confirmation"),
        CheckConstraint("confirmation IS DISTINCT FROM 'disagree' OR length(btrim(coalesce(confirmation_reason, ''))) > 0",
                        name="confirmation_reason"),
        Index("ix_message_recipients_operator", "operator_pk", "message_id"),
    )


class MessageReply(Base):
    """A text reply in the thread between the regulators and one recipient operator."""

    __tablename__ = "message_replies"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    message_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False)
    operator_pk: Mapped[int] = mapped_column(Integer, ForeignKey("operators.id", ondelete="CASCADE"), nullable=False)
    author_user_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    author_role: Mapped[str] = mapped_column(String(10), nullable=False)
    author_name: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = created_at()

    __table_args__ = (Index("ix_message_replies_thread", "message_id", "operator_pk", "created_at"),)


class OperatorContact(Base):
    """An entry in an operator's address book (B7)."""

    __tablename__ = "operator_contacts"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    operator_pk: Mapped[int] = mapped_column(Integer, ForeignKey("operators.id", ondelete="CASCADE"), nullable=False,
                                             index=True)
    name: Mapped[str] = mapped_column(String(50), nullable=False)
    role: Mapped[str | None] = mapped_column(String(50))
    phone: Mapped[str | None] = mapped_column(String(30))
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class OperatorProfileChange(Base):
    """A requested change to an operator's key fields (name, credit code), pending regulator review."""

    __tablename__ = "operator_profile_changes"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    operator_pk: Mapped[int] = mapped_column(Integer, ForeignKey("operators.id", ondelete="CASCADE"), nullable=False,
                                             index=True)
    changes: Mapped[dict] = mapped_column(JSONB, nullable=False)
    state: Mapped[str] = mapped_column(String(10), nullable=False, server_default="pending")
    requested_by: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    requested_at: Mapped[datetime] = created_at()
    reviewed_by: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("state IN ('pending', 'approved', 'rejected', 'withdrawn')", name="state"),
        Index("ix_operator_profile_changes_one_pending", "operator_pk", unique=True,
              postgresql_where=text("state = 'pending'")),
    )


class Feedback(Base):
    """A citizen's suggestion or repair report (B9); looked up by its ticket number."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    ticket: Mapped[str] = mapped_column(String(20), nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    state: Mapped[str] = mapped_column(String(10), nullable=False, server_default="submitted")
    station_pk: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("stations.id", ondelete="SET NULL"))
    operator_pk: Mapped[int | None] = mapped_column(Integer, ForeignKey("operators.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text, nullable=False)
    contact: Mapped[str | None] = mapped_column(String(100))
    reply: Mapped[str | None] = mapped_column(Text)
    replied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ip_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    __table_args__ = (
        CheckConstraint("kind IN ('suggestion', 'repair')", name="kind"),
        CheckConstraint("state IN ('submitted', 'assigned', 'processed')", name="state"),
        CheckConstraint("state = 'submitted' OR operator_pk IS NOT NULL", name="assigned_has_operator"),
        Index("ix_feedback_operator_state", "operator_pk", "state", "created_at"),
        Index("ix_feedback_state_created", "state", "created_at"),
        Index("ix_feedback_ip_created", "ip_hash", "created_at"),
    )


class FeedbackPhoto(Base):
    __tablename__ = "feedback_photos"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    feedback_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("feedback.id", ondelete="CASCADE"),
                                             nullable=False, index=True)
    content_type: Mapped[str] = mapped_column(String(40), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = created_at()


class SupervisionTask(Base):
    """A supervision task published by a regulator to one or more operators (B13)."""

    __tablename__ = "supervision_tasks"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    created_by_name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = created_at()


class TaskAssignment(Base):
    """One target operator's part of a task; its state follows the ``task`` workflow."""

    __tablename__ = "task_assignments"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    task_id: Mapped[int] = mapped_column(Integer, ForeignKey("supervision_tasks.id", ondelete="CASCADE"),
                                         nullable=False)
    operator_pk: Mapped[int] = mapped_column(Integer, ForeignKey("operators.id", ondelete="CASCADE"), nullable=False)
    state: Mapped[str] = mapped_column(String(10), nullable=False, server_default="open")
    note: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    review_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = updated_at()

    __table_args__ = (
        UniqueConstraint("task_id", "operator_pk"),
        CheckConstraint("state IN ('open', 'submitted', 'accepted', 'returned')", name="state"),
        Index("ix_task_assignments_operator", "operator_pk", "state"),
    )


class TaskProof(Base):
    __tablename__ = "task_proofs"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    assignment_id: Mapped[int] = mapped_column(Integer, ForeignKey("task_assignments.id", ondelete="CASCADE"),
                                               nullable=False, index=True)
    filename: Mapped[str] = mapped_column(String(200), nullable=False)
    content_type: Mapped[str] = mapped_column(String(80), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    uploaded_by: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at()


class StatusSnapshot(Base):
    """Connector counts by state per operator and district at one moment (the online-rate series)."""

    __tablename__ = "status_snapshots"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    taken_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    operator_id: Mapped[str] = mapped_column(String(9), nullable=False)
    district_adcode: Mapped[int | None] = mapped_column(Integer)
    free: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    charging: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    offline: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    fault: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    other: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")

    __table_args__ = (Index("ix_status_snapshots_taken_at", "taken_at"),)
