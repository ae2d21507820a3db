"""needs_attention: a payment the billing API refused to record holds the invoice's slot

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

INDEX = 'uq_payments_one_in_flight_per_invoice'
OLD = "status IN ('created', 'confirming', 'charged', 'debiting', 'requires_action')"
NEW = "status IN ('created', 'confirming', 'charged', 'debiting', 'requires_action', 'needs_attention')"


def _recreate(where: str) -> None:
    # A partial index cannot be altered: drop it and create it again (SQLite and PostgreSQL).
    op.drop_index(INDEX, table_name='payments')
    op.create_index(INDEX, 'payments', ['invoice_id'], unique=True, sqlite_where=sa.text(where),
                    postgresql_where=sa.text(where))


def upgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attention_step', sa.String(length=32), nullable=True))
    _recreate(NEW)


def downgrade() -> None:
    _recreate(OLD)
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('attention_step')
