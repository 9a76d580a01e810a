"""accounts: users, server-side sessions, verification codes, message outbox, news and site pages;
registration columns on operators

Revision ID: 0400
Revises: 0001
Create Date: 2026-11-24 18:20:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa

revision = "0400"
down_revision = "0001"
branch_labels = ("accounts",)
depends_on = None


def upgrade() -> None:
    op.create_table('outbox',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('channel', sa.String(length=5), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.CheckConstraint("channel IN ('email', 'sms')", name=op.f('ck_outbox_channel')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox'))
    )
    op.create_table('verification_codes',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('purpose', sa.String(length=20), nullable=False),
    sa.Column('channel', sa.String(length=5), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('attempts', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('consumed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('session_key', sa.String(length=64), nullable=True),
    sa.CheckConstraint("channel IN ('email', 'sms')", name=op.f('ck_verification_codes_channel')),
    sa.CheckConstraint("purpose IN ('register', 'reset_password')", name=op.f('ck_verification_codes_purpose')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_verification_codes'))
    )
    op.create_index('ix_verification_codes_lookup', 'verification_codes', ['purpose', 'recipient', 'created_at'], unique=False)
    op.create_table('users',
    sa.Column('id', sa.Integer(), sa.Identity(always=False), nullable=False),
    sa.Column('account_name', sa.String(length=32), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=10), nullable=False),
    sa.Column('operator_pk', sa.Integer(), nullable=True),
    sa.Column('display_name', sa.String(length=100), nullable=True),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('failed_logins', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("role <> 'operator' OR operator_pk IS NOT NULL", name=op.f('ck_users_operator_has_company')),
    sa.CheckConstraint("role IN ('operator', 'regulator', 'admin')", name=op.f('ck_users_role')),
    sa.ForeignKeyConstraint(['operator_pk'], ['operators.id'], name=op.f('fk_users_operator_pk_operators'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('account_name', name=op.f('uq_users_account_name')),
    sa.UniqueConstraint('phone', name=op.f('uq_users_phone'))
    )
    op.create_index(op.f('ix_users_operator_pk'), 'users', ['operator_pk'], unique=False)
    op.create_table('news',
    sa.Column('id', sa.Integer(), sa.Identity(always=False), nullable=False),
    sa.Column('category', sa.String(length=10), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('summary', sa.String(length=500), nullable=True),
    sa.Column('body_md', sa.Text(), server_default='', nullable=False),
    sa.Column('state', sa.String(length=10), server_default='draft', nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('author_user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("category IN ('industry', 'policy')", name=op.f('ck_news_category')),
    sa.CheckConstraint("state IN ('draft', 'published')", name=op.f('ck_news_state')),
    sa.ForeignKeyConstraint(['author_user_id'], ['users.id'], name=op.f('fk_news_author_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_news'))
    )
    op.create_index('ix_news_published', 'news', ['state', 'published_at'], unique=False)
    op.create_table('site_pages',
    sa.Column('slug', sa.String(length=40), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('title_en', sa.String(length=200), nullable=True),
    sa.Column('body_md', sa.Text(), server_default='', nullable=False),
    sa.Column('body_md_en', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=10), server_default='published', nullable=False),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("state IN ('draft', 'published')", name=op.f('ck_site_pages_state')),
    sa.ForeignKeyConstraint(['updated_by'], ['users.id'], name=op.f('fk_site_pages_updated_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('slug', name=op.f('pk_site_pages'))
    )
    op.create_table('user_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('user_agent', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_sessions'))
    )
    op.create_index(op.f('ix_user_sessions_expires_at'), 'user_sessions', ['expires_at'], unique=False)
    op.create_index(op.f('ix_user_sessions_user_id'), 'user_sessions', ['user_id'], unique=False)
    op.add_column('operators', sa.Column('address', sa.String(length=200), nullable=True))
    op.add_column('operators', sa.Column('legal_representative', sa.String(length=50), nullable=True))
    op.add_column('operators', sa.Column('contact_name', sa.String(length=50), nullable=True))
    op.add_column('operators', sa.Column('contact_phone', sa.String(length=20), nullable=True))
    op.add_column('operators', sa.Column('email', sa.String(length=254), nullable=True))
    op.add_column('operators', sa.Column('registration_state', sa.String(length=10), nullable=True))
    op.add_column('operators', sa.Column('rejection_reason', sa.Text(), nullable=True))
    op.add_column('operators', sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('operators', sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('operators', sa.Column('reviewed_by', sa.Integer(), nullable=True))
    op.create_foreign_key(op.f('fk_operators_reviewed_by_users'), 'operators', 'users', ['reviewed_by'], ['id'], ondelete='SET NULL', use_alter=True)
    op.create_check_constraint(op.f('ck_operators_registration_state'), 'operators',
                               "registration_state IS NULL OR registration_state IN ('submitted', 'approved', 'rejected')")


def downgrade() -> None:
    op.drop_constraint(op.f('ck_operators_registration_state'), 'operators', type_='check')
    op.drop_constraint(op.f('fk_operators_reviewed_by_users'), 'operators', type_='foreignkey')
    op.drop_column('operators', 'reviewed_by')
    op.drop_column('operators', 'reviewed_at')
    op.drop_column('operators', 'submitted_at')
    op.drop_column('operators', 'rejection_reason')
    op.drop_column('operators', 'registration_state')
    op.drop_column('operators', 'email')
    op.drop_column('operators', 'contact_phone')
    op.drop_column('operators', 'contact_name')
    op.drop_column('operators', 'legal_representative')
    op.drop_column('operators', 'address')
    op.drop_index(op.f('ix_user_sessions_user_id'), table_name='user_sessions')
    op.drop_index(op.f('ix_user_sessions_expires_at'), table_name='user_sessions')
    op.drop_table('user_sessions')
    op.drop_table('site_pages')
    op.drop_index('ix_news_published', table_name='news')
    op.drop_table('news')
    op.drop_index(op.f('ix_users_operator_pk'), table_name='users')
    op.drop_table('users')
    op.drop_index('ix_verification_codes_lookup', table_name='verification_codes')
    op.drop_table('verification_codes')
    op.drop_table('outbox')
