"""approvals: policies per billing profile, requests, new payment states holding the slot

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

INDEX = 'uq_payments_one_in_flight_per_invoice'
OLD = "status IN ('created', 'confirming', 'charged', 'debiting', 'requires_action', 'needs_attention')"
NEW = ("status IN ('created', 'confirming', 'charged', 'debiting', 'requires_action', 'needs_attention', "
       "'awaiting_approval', 'approved')")


def _recreate(where: str) -> None:
    # A partial index cannot be altered: drop it and create it again (SQLite and PostgreSQL).
    op.drop_index(INDEX, table_name='payments')
    op.create_index(INDEX, 'payments', ['invoice_id'], unique=True, sqlite_where=sa.text(where),
                    postgresql_where=sa.text(where))


def upgrade() -> None:
    op.create_table(
        'approval_policies',
        sa.Column('team_id', sa.String(length=32), nullable=False),
        sa.Column('billing_profile_id', sa.String(length=64), nullable=False),
        sa.Column('threshold_minor', sa.BigInteger(), nullable=True),
        sa.Column('currency', sa.String(length=3), nullable=True),
        sa.Column('approvers', sa.JSON(), nullable=False),
        sa.Column('set_by', sa.String(length=32), nullable=False),
        sa.Column('set_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.PrimaryKeyConstraint('team_id', 'billing_profile_id'),
    )
    op.create_table(
        'approval_requests',
        sa.Column('payment_id', sa.String(length=40), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.Column('team_id', sa.String(length=32), nullable=False),
        sa.Column('billing_profile_id', sa.String(length=64), nullable=False),
        sa.Column('requester_id', sa.String(length=32), nullable=False),
        sa.Column('approvers', sa.JSON(), nullable=False),
        sa.Column('threshold_minor', sa.BigInteger(), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decided_by', sa.String(length=32), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('payment_id'),
    )
    op.create_index('ix_approval_requests_expires', 'approval_requests', ['expires_at'], unique=False)
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('approved_by', sa.String(length=32), nullable=True))
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('posted_channel', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('posted_ts', sa.String(length=32), nullable=True))
    _recreate(NEW)


def downgrade() -> None:
    _recreate(OLD)
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('posted_ts')
        batch_op.drop_column('posted_channel')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('approved_by')
    op.drop_index('ix_approval_requests_expires', table_name='approval_requests')
    op.drop_table('approval_requests')
    op.drop_table('approval_policies')
