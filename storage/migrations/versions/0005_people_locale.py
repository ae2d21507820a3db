"""the payer's locale on payments and pay sessions; the card fee of a payment

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('card_fee_minor', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('pay_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('pay_sessions', schema=None) as batch_op:
        batch_op.drop_column('locale')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('card_fee_minor')
        batch_op.drop_column('locale')
