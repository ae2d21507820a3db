"""Slack UI state in its own tables: the modal and `/invoices` message of pay sessions
and payments move off `pay_sessions` and `payments` into `slack_form_links` and
`slack_payment_links`, existing rows copied over. The submission key (the unique
constraint that makes a repeated submission find the first payment) moves with them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

LINK = ('view_id', 'list_response_url', 'list_query')


def _link_columns() -> list[sa.Column]:
    return [sa.Column('view_id', sa.String(length=32), nullable=True),
            sa.Column('list_response_url', sa.String(length=2000), nullable=True),
            sa.Column('list_query', sa.String(length=500), nullable=True)]


def upgrade() -> None:
    op.create_table(
        'slack_form_links',
        sa.Column('pay_session_id', sa.String(length=64), nullable=False),
        *_link_columns(),
        sa.PrimaryKeyConstraint('pay_session_id'),
    )
    op.create_table(
        'slack_payment_links',
        sa.Column('payment_id', sa.String(length=40), nullable=False),
        sa.Column('submission_key', sa.String(length=200), nullable=True),
        *_link_columns(),
        sa.PrimaryKeyConstraint('payment_id'),
        sa.UniqueConstraint('submission_key'),
    )
    some_link = ' OR '.join(f'{column} IS NOT NULL' for column in LINK)
    op.execute(
        f"INSERT INTO slack_form_links (pay_session_id, {', '.join(LINK)}) "
        f"SELECT id, {', '.join(LINK)} FROM pay_sessions WHERE {some_link}")
    op.execute(
        f"INSERT INTO slack_payment_links (payment_id, submission_key, {', '.join(LINK)}) "
        f"SELECT id, submission_key, {', '.join(LINK)} FROM payments WHERE submission_key IS NOT NULL OR {some_link}")
    with op.batch_alter_table('pay_sessions', schema=None) as batch_op:
        for column in LINK:
            batch_op.drop_column(column)
    with op.batch_alter_table('payments', schema=None) as batch_op:
        # The unique constraint on submission_key goes with its column (PostgreSQL drops
        # it; SQLite's batch copy leaves it out).
        for column in ('submission_key', *LINK):
            batch_op.drop_column(column)


def downgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('submission_key', sa.String(length=200), nullable=True))
        for column in _link_columns():
            batch_op.add_column(column)
        batch_op.create_unique_constraint('uq_payments_submission_key', ['submission_key'])
    with op.batch_alter_table('pay_sessions', schema=None) as batch_op:
        for column in _link_columns():
            batch_op.add_column(column)
    for column in ('submission_key', *LINK):
        op.execute(f"UPDATE payments SET {column} = (SELECT l.{column} FROM slack_payment_links l "
                   "WHERE l.payment_id = payments.id)")
    for column in LINK:
        op.execute(f"UPDATE pay_sessions SET {column} = (SELECT l.{column} FROM slack_form_links l "
                   "WHERE l.pay_session_id = pay_sessions.id)")
    op.drop_table('slack_payment_links')
    op.drop_table('slack_form_links')
