"""messaging: notices and replies, operator contacts and profile changes, citizen feedback,
supervision tasks, and the dashboard's status snapshots

Revision ID: 0700
Revises: (none; depends on 0100 workflow and 0400 accounts, both off 0001)
Create Date: 2026-11-24 18:30:00

Why ``down_revision = None`` and not ``"0001"``: Alembic (1.20) folds ``down_revision`` into the
normalised parents together with ``depends_on``; with ``"0001"`` plus dependencies on two of its
children, upgrading from a database where 0001 is no longer a head tries to delete the ``0001``
row from ``alembic_version`` (``KeyError: '0001'``), or not, depending on set ordering (the
string hash seed). Depending on 0100 and 0400 alone implies 0001 and upgrades the same in every
order.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0700"
down_revision = None
branch_labels = ("messaging",)
depends_on = ("0100", "0400")

TABLES = ("status_snapshots", "task_proofs", "task_assignments", "supervision_tasks", "feedback_photos", "feedback",
          "operator_profile_changes", "operator_contacts", "message_replies", "message_recipients", "messages")


def upgrade() -> None:
    op.create_table('messages',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('kind', sa.String(length=12), server_default='notice', nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), server_default='', nullable=False),
    sa.Column('link', sa.String(length=300), nullable=True),
    sa.Column('requires_confirmation', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('sender_user_id', sa.Integer(), nullable=True),
    sa.Column('sender_name', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('notice', 'workflow', 'feedback', 'task', 'system')", name=op.f('ck_messages_kind')),
    sa.ForeignKeyConstraint(['sender_user_id'], ['users.id'], name=op.f('fk_messages_sender_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages'))
    )
    op.create_index('ix_messages_created_at', 'messages', ['created_at'], unique=False)
    op.create_table('message_recipients',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('message_id', sa.BigInteger(), nullable=False),
    sa.Column('operator_pk', sa.Integer(), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('read_by', sa.Integer(), nullable=True),
    sa.Column('confirmation', sa.String(length=10), nullable=True),
    sa.Column('confirmation_reason', sa.Text(), nullable=True),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('confirmed_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("confirmation IS NULL OR confirmation IN ('agree', 'disagree')", name=op.f('ck_message_recipients_confirmation')),
    sa.CheckConstraint("confirmation IS DISTINCT FROM 'disagree' OR length(btrim(coalesce(confirmation_reason, ''))) > 0", name=op.f('ck_message_recipients_confirmation_reason')),
    sa.ForeignKeyConstraint(['confirmed_by'], ['users.id'], name=op.f('fk_message_recipients_confirmed_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_message_recipients_message_id_messages'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['operator_pk'], ['operators.id'], name=op.f('fk_message_recipients_operator_pk_operators'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['read_by'], ['users.id'], name=op.f('fk_message_recipients_read_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_recipients')),
    sa.UniqueConstraint('message_id', 'operator_pk', name=op.f('uq_message_recipients_message_id_operator_pk'))
    )
    op.create_index('ix_message_recipients_operator', 'message_recipients', ['operator_pk', 'message_id'], unique=False)
    op.create_table('message_replies',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('message_id', sa.BigInteger(), nullable=False),
    sa.Column('operator_pk', sa.Integer(), nullable=False),
    sa.Column('author_user_id', sa.Integer(), nullable=True),
    sa.Column('author_role', sa.String(length=10), nullable=False),
    sa.Column('author_name', sa.String(length=100), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['author_user_id'], ['users.id'], name=op.f('fk_message_replies_author_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_message_replies_message_id_messages'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['operator_pk'], ['operators.id'], name=op.f('fk_message_replies_operator_pk_operators'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_replies'))
    )
    op.create_index('ix_message_replies_thread', 'message_replies', ['message_id', 'operator_pk', 'created_at'], unique=False)
    op.create_table('operator_contacts',
    sa.Column('id', sa.Integer(), sa.Identity(always=False), nullable=False),
    sa.Column('operator_pk', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('role', sa.String(length=50), nullable=True),
    sa.Column('phone', sa.String(length=30), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['operator_pk'], ['operators.id'], name=op.f('fk_operator_contacts_operator_pk_operators'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_contacts'))
    )
    op.create_index(op.f('ix_operator_contacts_operator_pk'), 'operator_contacts', ['operator_pk'], unique=False)
    op.create_table('operator_profile_changes',
    sa.Column('id', sa.Integer(), sa.Identity(always=False), nullable=False),
    sa.Column('operator_pk', sa.Integer(), nullable=False),
    sa.Column('changes', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('state', sa.String(length=10), server_default='pending', nullable=False),
    sa.Column('requested_by', sa.Integer(), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('reviewed_by', sa.Integer(), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.CheckConstraint("state IN ('pending', 'approved', 'rejected', 'withdrawn')", name=op.f('ck_operator_profile_changes_state')),
    sa.ForeignKeyConstraint(['operator_pk'], ['operators.id'], name=op.f('fk_operator_profile_changes_operator_pk_operators'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['requested_by'], ['users.id'], name=op.f('fk_operator_profile_changes_requested_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['reviewed_by'], ['users.id'], name=op.f('fk_operator_profile_changes_reviewed_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_profile_changes'))
    )
    op.create_index('ix_operator_profile_changes_one_pending', 'operator_profile_changes', ['operator_pk'], unique=True, postgresql_where=sa.text("state = 'pending'"))
    op.create_index(op.f('ix_operator_profile_changes_operator_pk'), 'operator_profile_changes', ['operator_pk'], unique=False)
    op.create_table('feedback',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('ticket', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('state', sa.String(length=10), server_default='submitted', nullable=False),
    sa.Column('station_pk', sa.BigInteger(), nullable=True),
    sa.Column('operator_pk', sa.Integer(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('contact', sa.String(length=100), nullable=True),
    sa.Column('reply', sa.Text(), nullable=True),
    sa.Column('replied_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ip_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('suggestion', 'repair')", name=op.f('ck_feedback_kind')),
    sa.CheckConstraint("state = 'submitted' OR operator_pk IS NOT NULL", name=op.f('ck_feedback_assigned_has_operator')),
    sa.CheckConstraint("state IN ('submitted', 'assigned', 'processed')", name=op.f('ck_feedback_state')),
    sa.ForeignKeyConstraint(['operator_pk'], ['operators.id'], name=op.f('fk_feedback_operator_pk_operators'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['station_pk'], ['stations.id'], name=op.f('fk_feedback_station_pk_stations'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback')),
    sa.UniqueConstraint('ticket', name=op.f('uq_feedback_ticket'))
    )
    op.create_index('ix_feedback_ip_created', 'feedback', ['ip_hash', 'created_at'], unique=False)
    op.create_index('ix_feedback_operator_state', 'feedback', ['operator_pk', 'state', 'created_at'], unique=False)
    op.create_index('ix_feedback_state_created', 'feedback', ['state', 'created_at'], unique=False)
    op.create_table('feedback_photos',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('feedback_id', sa.BigInteger(), nullable=False),
    sa.Column('content_type', sa.String(length=40), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['feedback_id'], ['feedback.id'], name=op.f('fk_feedback_photos_feedback_id_feedback'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_photos'))
    )
    op.create_index(op.f('ix_feedback_photos_feedback_id'), 'feedback_photos', ['feedback_id'], unique=False)
    op.create_table('supervision_tasks',
    sa.Column('id', sa.Integer(), sa.Identity(always=False), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_by_name', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_supervision_tasks_created_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_supervision_tasks'))
    )
    op.create_table('task_assignments',
    sa.Column('id', sa.Integer(), sa.Identity(always=False), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('operator_pk', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=10), server_default='open', nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('review_reason', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("state IN ('open', 'submitted', 'accepted', 'returned')", name=op.f('ck_task_assignments_state')),
    sa.ForeignKeyConstraint(['operator_pk'], ['operators.id'], name=op.f('fk_task_assignments_operator_pk_operators'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['supervision_tasks.id'], name=op.f('fk_task_assignments_task_id_supervision_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task_assignments')),
    sa.UniqueConstraint('task_id', 'operator_pk', name=op.f('uq_task_assignments_task_id_operator_pk'))
    )
    op.create_index('ix_task_assignments_operator', 'task_assignments', ['operator_pk', 'state'], unique=False)
    op.create_table('task_proofs',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=80), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('uploaded_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['task_assignments.id'], name=op.f('fk_task_proofs_assignment_id_task_assignments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['uploaded_by'], ['users.id'], name=op.f('fk_task_proofs_uploaded_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task_proofs'))
    )
    op.create_index(op.f('ix_task_proofs_assignment_id'), 'task_proofs', ['assignment_id'], unique=False)
    op.create_table('status_snapshots',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('operator_id', sa.String(length=9), nullable=False),
    sa.Column('district_adcode', sa.Integer(), nullable=True),
    sa.Column('free', sa.Integer(), server_default='0', nullable=False),
    sa.Column('charging', sa.Integer(), server_default='0', nullable=False),
    sa.Column('offline', sa.Integer(), server_default='0', nullable=False),
    sa.Column('fault', sa.Integer(), server_default='0', nullable=False),
    sa.Column('other', sa.Integer(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_status_snapshots'))
    )
    op.create_index('ix_status_snapshots_taken_at', 'status_snapshots', ['taken_at'], unique=False)


def downgrade() -> None:
    for name in TABLES:
        op.drop_table(name)
