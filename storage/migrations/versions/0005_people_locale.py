"""the payer's locale on payments and pay sessions; the card fee of a payment; stored
minor units rescaled to ISO 4217 digits

Until 0005 the bot took a currency's digits from Babel (CLDR), which gives 0 for the
currencies below where ISO 4217 (the billing API's scale, and the bot's from now on) has 2
or 3. Their stored minor units are multiplied by the factor, exactly (frozen here so that
the migration never depends on the installed Babel).

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


# currency -> 10 ** (ISO digits - Babel's digits), for every currency where they differ
RESCALE = {'AFN': 100, 'ALL': 100, 'COP': 100, 'HUF': 100, 'IDR': 100, 'IQD': 1000, 'IRR': 100, 'KPW': 100,
           'LAK': 100, 'LBP': 100, 'MGA': 100, 'MMK': 100, 'SOS': 100, 'SYP': 100, 'YER': 100}


def _rescale(factor_of: dict[str, int], inverse: bool = False) -> None:
    for currency, factor in factor_of.items():
        op_ = "/" if inverse else "*"
        op.execute(sa.text(
            f"UPDATE payments SET amount_minor = amount_minor {op_} :f, "
            f"balance_after_minor = balance_after_minor {op_} :f WHERE currency = :c").bindparams(f=factor, c=currency))
        op.execute(sa.text(
            f"UPDATE pay_sessions SET balance_minor = balance_minor {op_} :f WHERE currency = :c"
        ).bindparams(f=factor, c=currency))


def upgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('card_fee_minor', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('pay_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=32), nullable=True))
    _rescale(RESCALE)


def downgrade() -> None:
    _rescale(RESCALE, inverse=True)
    with op.batch_alter_table('pay_sessions', schema=None) as batch_op:
        batch_op.drop_column('locale')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('card_fee_minor')
        batch_op.drop_column('locale')
