"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=True),
    sa.Column('user_id', sa.String(length=32), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('outcome', sa.String(length=40), nullable=False),
    sa.Column('invoice_id', sa.String(length=64), nullable=True),
    sa.Column('billing_profile_id', sa.String(length=64), nullable=True),
    sa.Column('payment_id', sa.String(length=40), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_invoice', ['invoice_id'], unique=False)
        batch_op.create_index('ix_audit_user_at', ['user_id', 'at'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=True),
    sa.Column('channel', sa.String(length=100), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedupe_key')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_due', ['delivered_at', 'next_attempt_at'], unique=False)

    op.create_table('pay_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('invoice_id', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('view_id', sa.String(length=32), nullable=True),
    sa.Column('offered_methods', sa.JSON(), nullable=False),
    sa.Column('list_response_url', sa.String(length=2000), nullable=True),
    sa.Column('list_query', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('payments',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('paid_by', sa.String(length=320), nullable=False),
    sa.Column('invoice_id', sa.String(length=64), nullable=False),
    sa.Column('invoice_number', sa.String(length=128), nullable=False),
    sa.Column('billing_profile_id', sa.String(length=64), nullable=False),
    sa.Column('billing_profile_name', sa.String(length=256), nullable=False),
    sa.Column('invoice_url', sa.String(length=2000), nullable=True),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('method_kind', sa.String(length=16), nullable=False),
    sa.Column('payment_method_id', sa.String(length=64), nullable=False),
    sa.Column('payment_method_type', sa.String(length=32), nullable=False),
    sa.Column('method_label', sa.String(length=128), nullable=False),
    sa.Column('stripe_customer_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('stripe_payment_intent_id', sa.String(length=64), nullable=True),
    sa.Column('failure_message', sa.Text(), nullable=True),
    sa.Column('invoice_status_after', sa.String(length=24), nullable=True),
    sa.Column('balance_after_minor', sa.BigInteger(), nullable=True),
    sa.Column('submission_key', sa.String(length=200), nullable=True),
    sa.Column('view_id', sa.String(length=32), nullable=True),
    sa.Column('list_response_url', sa.String(length=2000), nullable=True),
    sa.Column('list_query', sa.String(length=500), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('stripe_payment_intent_id'),
    sa.UniqueConstraint('submission_key')
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index('ix_payments_invoice', ['invoice_id'], unique=False)
        batch_op.create_index('ix_payments_status_updated', ['status', 'updated_at'], unique=False)
        batch_op.create_index('uq_payments_one_in_flight_per_invoice', ['invoice_id'], unique=True, sqlite_where=sa.text("status IN ('created', 'confirming', 'charged', 'debiting', 'requires_action')"), postgresql_where=sa.text("status IN ('created', 'confirming', 'charged', 'debiting', 'requires_action')"))

    op.create_table('stripe_events',
    sa.Column('id', sa.String(length=80), nullable=False),
    sa.Column('type', sa.String(length=80), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    


def downgrade() -> None:
    
    op.drop_table('stripe_events')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index('uq_payments_one_in_flight_per_invoice', sqlite_where=sa.text("status IN ('created', 'confirming', 'charged', 'debiting', 'requires_action')"), postgresql_where=sa.text("status IN ('created', 'confirming', 'charged', 'debiting', 'requires_action')"))
        batch_op.drop_index('ix_payments_status_updated')
        batch_op.drop_index('ix_payments_invoice')

    op.drop_table('payments')
    op.drop_table('pay_sessions')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_due')

    op.drop_table('outbox')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_user_at')
        batch_op.drop_index('ix_audit_invoice')

    op.drop_table('audit_events')
    
