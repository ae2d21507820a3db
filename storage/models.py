"""The bot's own tables. Invoices live in the billing backend; we keep only what lets a
payment be traced and resumed, the notification outbox, and the audit trail."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, DateTime, Index, Integer, String, Text, func, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> dt.datetime:
    """The wall clock, for what the database keeps: the column defaults below (created_at,
    updated_at, at, set_at, received_at) and stored schedule times (next_attempt_at,
    locked_until) that SQL compares across processes. Decisions a person sees (due dates,
    link and pay-session expiry) ask the app's injected `bot.clock.Clock` instead, which
    tests move; these stay on the wall clock so a moved test clock never strands a row."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON}


class PaymentStatus(enum.StrEnum):
    CREATED = "created"            # row written, no money moved, no PaymentIntent yet
    CONFIRMING = "confirming"      # PaymentIntent created and stored; confirm sent
    CHARGED = "charged"            # Stripe says succeeded; not yet recorded in billing
    DEBITING = "debiting"          # bank debit accepted by Stripe; not yet recorded
    PROCESSING = "processing"      # recorded in billing as processing; settles by webhook
    REQUIRES_ACTION = "requires_action"  # needs 3-D Secure; finished elsewhere
    RECORDED = "recorded"          # charged and recorded: done
    FAILED = "failed"              # declined or failed; nothing recorded (or given back)
    CANCELED = "canceled"          # superseded before any money moved
    # Charged, but the billing API refused the record for good: an operator records it
    # again or refunds it (`invoicebot payments resolve`). Holds the invoice's slot meanwhile.
    NEEDS_ATTENTION = "needs_attention"
    REFUNDED = "refunded"          # charged, never recorded, given back by an operator
    # Approvals (bot/approvals.py): above a profile's threshold a payment waits for another
    # person's yes before anything is charged. The decision and the charge are separate steps.
    AWAITING_APPROVAL = "awaiting_approval"  # nothing charged; holds the invoice's slot
    APPROVED = "approved"          # an approver said yes; the charge (from `approved`) follows
    REJECTED = "rejected"          # an approver said no (with a reason); nothing charged
    EXPIRED = "expired"            # nobody decided within APPROVAL_TTL_HOURS; nothing charged
    WITHDRAWN = "withdrawn"        # the requester took it back; nothing charged
    # A scheduled payment approved before its day (bot/scheduled_payments.py): nothing charged;
    # it holds no slot, and on its day the scheduler checks it again and charges it (`approved`).
    SCHEDULED = "scheduled"


# A scheduled payment's id says so (chosen when it is scheduled, kept by its job and its row).
SCHEDULED_PAYMENT_ID_PREFIX = "pay_sched_"


# At most one of these per invoice at a time (a partial unique index enforces it).
IN_FLIGHT = (
    PaymentStatus.CREATED,
    PaymentStatus.CONFIRMING,
    PaymentStatus.CHARGED,
    PaymentStatus.DEBITING,
    PaymentStatus.REQUIRES_ACTION,
    PaymentStatus.NEEDS_ATTENTION,
    PaymentStatus.AWAITING_APPROVAL,
    PaymentStatus.APPROVED,
)
_IN_FLIGHT_SQL = "status IN ({})".format(", ".join(f"'{s.value}'" for s in IN_FLIGHT))


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())

    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    paid_by: Mapped[str] = mapped_column(String(320))  # the billing API's `paid_by` (email)

    invoice_id: Mapped[str] = mapped_column(String(64))
    invoice_number: Mapped[str] = mapped_column(String(128))
    billing_profile_id: Mapped[str] = mapped_column(String(64))
    billing_profile_name: Mapped[str] = mapped_column(String(256))
    invoice_url: Mapped[str | None] = mapped_column(String(2000))

    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    method_kind: Mapped[str] = mapped_column(String(16))  # card | bank_debit
    payment_method_id: Mapped[str] = mapped_column(String(64))
    payment_method_type: Mapped[str] = mapped_column(String(32))  # card, sepa_debit, us_bank_account, ...
    method_label: Mapped[str] = mapped_column(String(128))  # brand and last 4 only
    stripe_customer_id: Mapped[str] = mapped_column(String(64))

    status: Mapped[str] = mapped_column(String(24), default=PaymentStatus.CREATED)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    failure_message: Mapped[str | None] = mapped_column(Text)
    invoice_status_after: Mapped[str | None] = mapped_column(String(24))
    balance_after_minor: Mapped[int | None] = mapped_column(BigInteger)

    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # In needs_attention: the billing step that was refused ("record:succeeded",
    # "record:processing", "settle:succeeded", "settle:failed"), so `resolve --record` retries it.
    attention_step: Mapped[str | None] = mapped_column(String(32))
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column()
    # The payer's locale (Babel's form), so a receipt drawn later (webhook, reconciler)
    # speaks the payer's format; None for payments made before it was kept.
    locale: Mapped[str | None] = mapped_column(String(32))
    # The vendor's card fee for this amount (ISO minor units), billed separately; shown on
    # the receipt and the notice. None: no fee (bank debits, profiles without one).
    card_fee_minor: Mapped[int | None] = mapped_column(BigInteger)
    # The Slack user who approved it (payments above a profile's approval threshold).
    approved_by: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index(
            "uq_payments_one_in_flight_per_invoice",
            "invoice_id",
            unique=True,
            sqlite_where=text(_IN_FLIGHT_SQL),
            postgresql_where=text(_IN_FLIGHT_SQL),
        ),
        Index("ix_payments_status_updated", "status", "updated_at"),
        Index("ix_payments_invoice", "invoice_id"),
    )


class PaySession(Base):
    """Server-side state of one open Pay Now modal; the modal carries only its id."""

    __tablename__ = "pay_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    invoice_id: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str | None] = mapped_column(String(3))
    # The balance the form was opened with: what the amount is checked against at once
    # (the fresh balance is checked again before any money moves).
    balance_minor: Mapped[int | None] = mapped_column(BigInteger)
    # Payment methods offered in the modal: {pm_id: {"kind": ..., "label": ...}}
    offered_methods: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    locale: Mapped[str | None] = mapped_column(String(32))  # the person's, Babel's form


class SlackFormLink(Base):
    """Where an open Pay Now modal is in Slack: its view, and the `/invoices` message it
    was opened from (redrawn after the payment). Slack UI state, kept off the pay session."""

    __tablename__ = "slack_form_links"

    pay_session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    view_id: Mapped[str | None] = mapped_column(String(32))
    list_response_url: Mapped[str | None] = mapped_column(String(2000))
    list_query: Mapped[str | None] = mapped_column(String(500))


class SlackHomeTab(Base):
    """A person whose Home tab exists in Slack (they opened it once, so it was published).
    Only those are published again when something the tab shows changes: a tab never
    opened is built fresh when it is (app_home_opened), so publishing it is work for no one."""

    __tablename__ = "slack_home_tabs"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class SlackPaymentLink(Base):
    """Where a payment shows in Slack: the modal it was submitted from (updated when the
    payment moves) and the `/invoices` message to redraw. Written in the same transaction
    as the payment row: its unique `submission_key` is what makes a repeat of the same
    submission (a double click, a Slack retry) find the first payment instead of a second."""

    __tablename__ = "slack_payment_links"

    payment_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    submission_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    view_id: Mapped[str | None] = mapped_column(String(32))
    list_response_url: Mapped[str | None] = mapped_column(String(2000))
    list_query: Mapped[str | None] = mapped_column(String(500))


class OutboxMessage(Base):
    """A Slack message to deliver, written in the same transaction as the state change
    that calls for it, and delivered by a worker that survives restarts."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    team_id: Mapped[str | None] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # text and blocks
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    locked_until: Mapped[dt.datetime | None] = mapped_column()
    delivered_at: Mapped[dt.datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(500))
    # Dead letter: delivery was given up (a permanent error, or too many transient ones).
    # The message waits, with `last_error`, until an operator sends it again
    # (`invoicebot outbox retry`); it no longer holds back its channel's later messages.
    failed_at: Mapped[dt.datetime | None] = mapped_column()
    # Where Slack put it (chat.postMessage's channel and ts), so a later message can update
    # it in place: the payload's `update_of` names the dedupe key of the message to update.
    posted_channel: Mapped[str | None] = mapped_column(String(32))
    posted_ts: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (Index("ix_outbox_due", "delivered_at", "next_attempt_at"),)


class AuditEvent(Base):
    """Append-only: who did what, when, and how it ended."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    team_id: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(40))
    invoice_id: Mapped[str | None] = mapped_column(String(64))
    billing_profile_id: Mapped[str | None] = mapped_column(String(64))
    payment_id: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_audit_user_at", "user_id", "at"), Index("ix_audit_invoice", "invoice_id"))


class NotificationRoute(Base):
    """Where payment notifications of one billing profile go, in one workspace."""

    __tablename__ = "notification_routes"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    billing_profile_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32))
    set_by: Mapped[str] = mapped_column(String(32))
    set_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class ProcessedWebhookEvent(Base):
    """Stripe event ids already handled, so each event acts once."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    type: Mapped[str] = mapped_column(String(80))
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class JobStatus(enum.StrEnum):
    SCHEDULED = "scheduled"  # waiting for its time (or for a retry after a failure)
    RUNNING = "running"      # claimed by a process until `locked_until` (its lease)
    DONE = "done"
    SKIPPED = "skipped"      # ran, and found nothing to do or a reason not to act (said in `note`)
    FAILED = "failed"        # gave up after its tries (the error in `note`)
    CANCELED = "canceled"


class Job(Base):
    """One piece of timed work (bot/scheduler.py): claimed with a lease by whichever server
    process finds it due, run once per `key`."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # One job per key (e.g. "digest:T1:bp_eu:2026-12-07"): scheduling twice is a no-op, and
    # the key is the idempotency key of what the job does (outbox dedupe, payment ids).
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    team_id: Mapped[str | None] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    due_at: Mapped[dt.datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.SCHEDULED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column()
    locked_by: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    note: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (Index("ix_jobs_status_due", "status", "due_at"),)


class ReminderSetting(Base):
    """A billing profile's due-date digest in one workspace (`/invoices reminders`)."""

    __tablename__ = "reminder_settings"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    billing_profile_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    cadence: Mapped[str] = mapped_column(String(8))  # daily | weekly | off
    local_time: Mapped[str] = mapped_column(String(5))  # HH:MM in `time_zone`
    weekday: Mapped[int] = mapped_column(Integer, default=0)  # 0 = Monday (weekly only)
    days_ahead: Mapped[int] = mapped_column(Integer, default=7)
    time_zone: Mapped[str] = mapped_column(String(64))  # an IANA name, e.g. Europe/Berlin
    set_by: Mapped[str] = mapped_column(String(32))
    set_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
class ApprovalPolicy(Base):
    """A billing profile's approval rule in one workspace, set by its admins: payments of
    `threshold_minor` or more (ISO minor units of `currency`) need an approver's yes."""

    __tablename__ = "approval_policies"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    billing_profile_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    threshold_minor: Mapped[int | None] = mapped_column(BigInteger)  # None: no approval needed
    currency: Mapped[str | None] = mapped_column(String(3))
    approvers: Mapped[list[str]] = mapped_column(JSON, default=list)  # Slack user ids
    set_by: Mapped[str] = mapped_column(String(32))
    set_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class ApprovalRequest(Base):
    """One payment's request for approval, under the rule it was made with (a policy
    changed later does not touch it). The payment's status says where it stands."""

    __tablename__ = "approval_requests"

    payment_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    team_id: Mapped[str] = mapped_column(String(32))
    billing_profile_id: Mapped[str] = mapped_column(String(64))
    requester_id: Mapped[str] = mapped_column(String(32))
    approvers: Mapped[list[str]] = mapped_column(JSON, default=list)  # as the rule named them then
    threshold_minor: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[dt.datetime] = mapped_column()
    pay_on: Mapped[dt.date | None] = mapped_column(Date)  # a scheduled payment's day (None: now)
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[dt.datetime | None] = mapped_column()
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_approval_requests_expires", "expires_at"),)
