"""approval expiry as scheduler jobs: one `approval_expiry` job for each request still waiting;
approval_requests.pay_on: the day of a scheduled payment that asks for approval first

Until now the reconciler's loop swept expired requests; each request is now expired by its
own job, written with the request. This carries the requests that wait at upgrade time over:
each gets its job, due at its expiry. A request may now be for a scheduled payment: `pay_on`
is its day (NULL for a payment now, as every older request is).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""
import datetime as dt

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_jobs = sa.table(
    'jobs',
    sa.column('key', sa.String), sa.column('kind', sa.String), sa.column('team_id', sa.String),
    sa.column('payload', sa.JSON), sa.column('due_at', sa.DateTime(timezone=True)), sa.column('status', sa.String),
    sa.column('attempts', sa.Integer), sa.column('created_at', sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    op.add_column('approval_requests', sa.Column('pay_on', sa.Date(), nullable=True))
    bind = op.get_bind()
    waiting = bind.execute(sa.text(
        "SELECT r.payment_id, r.team_id, r.expires_at, p.user_id, p.invoice_id, p.billing_profile_id "
        "FROM approval_requests r JOIN payments p ON p.id = r.payment_id "
        "WHERE p.status = 'awaiting_approval' "
        "AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.key = 'approval_expiry:' || r.payment_id)")
        .columns(sa.column('payment_id', sa.String), sa.column('team_id', sa.String),
                 sa.column('expires_at', sa.DateTime(timezone=True)), sa.column('user_id', sa.String),
                 sa.column('invoice_id', sa.String), sa.column('billing_profile_id', sa.String))).all()
    now = dt.datetime.now(dt.UTC)
    rows = [{"key": f"approval_expiry:{r.payment_id}", "kind": "approval_expiry", "team_id": r.team_id,
             "payload": {"payment_id": r.payment_id, "user_id": r.user_id, "invoice_id": r.invoice_id,
                         "billing_profile_id": r.billing_profile_id},
             "due_at": r.expires_at, "status": "scheduled", "attempts": 0, "created_at": now} for r in waiting]
    if rows:
        op.bulk_insert(_jobs, rows)


def downgrade() -> None:
    # The sweep of the older code expires what waits; its jobs would only be unknown kinds there.
    op.execute("DELETE FROM jobs WHERE kind = 'approval_expiry' AND status = 'scheduled'")
    with op.batch_alter_table('approval_requests') as batch:
        batch.drop_column('pay_on')
