"""jobs: the scheduler's timed work; reminder_settings: each profile's due-date digest

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'jobs',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('team_id', sa.String(length=32), nullable=True),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('locked_by', sa.String(length=80), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'),
                  nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('note', sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key'),
    )
    op.create_index('ix_jobs_status_due', 'jobs', ['status', 'due_at'], unique=False)
    op.create_table(
        'reminder_settings',
        sa.Column('team_id', sa.String(length=32), nullable=False),
        sa.Column('billing_profile_id', sa.String(length=64), nullable=False),
        sa.Column('cadence', sa.String(length=8), nullable=False),
        sa.Column('local_time', sa.String(length=5), nullable=False),
        sa.Column('weekday', sa.Integer(), nullable=False),
        sa.Column('days_ahead', sa.Integer(), nullable=False),
        sa.Column('time_zone', sa.String(length=64), nullable=False),
        sa.Column('set_by', sa.String(length=32), nullable=False),
        sa.Column('set_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'),
                  nullable=False),
        sa.PrimaryKeyConstraint('team_id', 'billing_profile_id'),
    )


def downgrade() -> None:
    op.drop_table('reminder_settings')
    op.drop_index('ix_jobs_status_due', table_name='jobs')
    op.drop_table('jobs')
