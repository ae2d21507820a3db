"""Scheduled payments: Pay Now's *when to pay* (now, on the due date, or a chosen date).

Scheduling checks what a payment now would check (the form is the person's, the amount and
method, fresh access and balance), then writes one scheduler job (kind `scheduled_payment`)
to run at `RUN_AT` local time on the chosen day, in the billing profile's time zone: the
billing API's profiles carry none (docs/billing-api.md), so it is the zone an admin set for
the profile with `/invoices reminders <profile> <time zone>` (kept with its reminder
setting), else the deployment's `DEFAULT_TIMEZONE`. The job's payload holds the payment's id, chosen
at scheduling, so however often the job runs (a crash, a lease taken over) it drives the
same payment row, with the same Stripe idempotency keys: one charge, one record.

On the day, before any money moves, it checks again: the payer still has access; the invoice
still has a balance (lower: the balance is paid and the payer told; none: cancelled, and the
payer told why); the method is still saved and valid. Then the payment goes through the one
state machine (bot/processor.py), off-session, driven as "scheduler", so its outcome reaches
the payer by DM and the channel gets its usual notice. A payment at or above its profile's approval threshold (bot/approvals.py) is approved
before its day: scheduling it writes its payment row in `awaiting_approval` with its request
(the approvers are asked at once; the row holds the invoice's slot while it waits, as any
request does); approved, the row waits in `scheduled` (no slot) and on the day, after the same
checks, moves to `approved` and is charged. Not decided by its day, rejected, expired or
cancelled: nothing is charged. A job found more than `LATE_LIMIT`
after its planned time (every server was down; counted from the time it was scheduled
for, not from its last retry) charges nothing and asks the payer to pay again instead. A
job whose every try failed (`JOB_RETRY`) tells the payer too (`failed`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from ulid import ULID

from bot.approvals import ApprovalService, Rule
from bot.billing import BillingClient, BillingNotFound, Invoice
from bot.clock import Clock
from bot.errors import FieldProblem, InvoiceNotPayable
from bot.identity import DEFAULT_LOCALE, AccessDenied, IdentityService, Viewer
from bot.invoices import InvoiceService
from bot.money import Money
from bot.payments import METHOD as METHOD_FIELD
from bot.payments import PaymentService, Submission, card_fee
from bot.processor import PaymentProcessor
from bot.scheduler import JobContext, JobResult, Scheduler
from bot.stripe_gateway import StripeGateway
from storage.audit import AuditLog
from storage.models import (
    SCHEDULED_PAYMENT_ID_PREFIX, AuditEvent, Job, JobStatus, OutboxMessage, Payment, PaymentStatus, utcnow,
)
from storage.payments import DuplicateSubmission, PaymentInFlight, PaymentRepository

log = logging.getLogger(__name__)

KIND = "scheduled_payment"
RUN_AT = dt.time(9, 0)  # local time of day a scheduled payment runs
LATEST_AFTER_DUE = dt.timedelta(days=30)  # the latest date offered: the due date plus this
LATE_LIMIT = dt.timedelta(days=1)  # later than this (servers down): ask the payer, don't charge
WHEN_FIELD = "pay_when"
DATE_FIELD = "pay_on"


# A scheduled payment's id says so (its id is chosen when it is scheduled): what marks it
# as scheduled in the notices.
ID_PREFIX = SCHEDULED_PAYMENT_ID_PREFIX
S = PaymentStatus
_ENDED_BEFORE_ANY_CHARGE = (S.REJECTED, S.EXPIRED, S.WITHDRAWN, S.CANCELED)


def is_scheduled(payment: Any) -> bool:
    """A payment row or its summary (anything with an `id`)."""
    return str(getattr(payment, "id", "")).startswith(ID_PREFIX)


class ScheduleProblem(Exception):
    """A scheduled payment that cannot be made or cancelled; the message is for the person."""


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A scheduled payment, as the confirmation, the DM and `/invoices scheduled` show it."""

    key: str
    invoice_id: str
    invoice_number: str
    profile_id: str
    profile_name: str
    amount: Money
    method_label: str
    pay_on: dt.date
    runs_at: dt.datetime  # UTC
    time_zone: str
    user_id: str
    locale: str
    approvers: tuple[str, ...] = ()  # asked to approve it before its day (none: no approval needed)

    @classmethod
    def of(cls, job: Job) -> Scheduled:
        p = job.payload
        pay_on = dt.date.fromisoformat(p["pay_on"])
        return cls(job.key, p["invoice_id"], p["invoice_number"], p["billing_profile_id"], p["billing_profile_name"],
                   Money.from_minor(int(p["amount_minor"]), p["currency"]), p["method_label"],
                   pay_on, planned_run(pay_on, p["time_zone"]), p["time_zone"], p["user_id"],
                   p.get("locale") or DEFAULT_LOCALE, tuple(p.get("approvers") or ()))


def planned_run(day: dt.date, zone: str) -> dt.datetime:
    """When a payment scheduled for `day` runs (UTC): `RUN_AT` there, whatever retries did
    to its job's due time since."""
    return dt.datetime.combine(day, RUN_AT, tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)


def allowed_dates(due_on: dt.date, today: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day a payment of this invoice may be scheduled for."""
    return today + dt.timedelta(days=1), max(due_on, today) + LATEST_AFTER_DUE


def pay_date(when: str, chosen: dt.date | None, *, due_on: dt.date, today: dt.date) -> dt.date | None:
    """The day to pay (None: now), or FieldProblem said under the field."""
    if when == "now":
        return None
    first, last = allowed_dates(due_on, today)
    if when == "due":
        if due_on < first:
            raise FieldProblem(WHEN_FIELD, "The due date is today or has passed: pay now, or choose a date.")
        return due_on
    if chosen is None:
        raise FieldProblem(DATE_FIELD, "Choose the date to pay on.")
    if not first <= chosen <= last:
        raise FieldProblem(DATE_FIELD, f"Choose a date from {first:%Y-%m-%d} to {last:%Y-%m-%d}.")
    return chosen


Queue = Callable[[list[OutboxMessage]], Awaitable[None]]
Words = Callable[[str, Scheduled | None, dict[str, Any]], dict[str, Any]]  # (event, payment, extra) -> payload


@dataclass
class ScheduledPayments:
    scheduler: Scheduler
    payments: PaymentService
    identity: IdentityService
    invoices: InvoiceService
    billing: BillingClient
    stripe: StripeGateway
    repo: PaymentRepository
    processor: PaymentProcessor
    audit: AuditLog
    clock: Clock
    queue: Queue
    words: Words  # the DMs' payloads (blocks/scheduling.py)
    time_zone: str = "UTC"  # the deployment's default (DEFAULT_TIMEZONE)
    # The zone an admin set for a billing profile (team, profile) -> IANA name or None.
    profile_zone: Callable[[str, str], Awaitable[str | None]] | None = None
    # Payments at or above a profile's approval threshold (bot/approvals.py) are never
    # scheduled past it: refused when scheduled, and not made if a threshold came since.
    approvals: ApprovalService | None = None

    async def _needs_approval(self, team_id: str, profile_id: str, amount: Money) -> bool:
        return self.approvals is not None and (await self.approvals.rule(team_id, profile_id)).applies_to(amount)

    async def zone(self, team_id: str, profile_id: str) -> str:
        """The billing profile's time zone: its admins' setting, else the deployment's."""
        chosen = await self.profile_zone(team_id, profile_id) if self.profile_zone else None
        return chosen or self.time_zone

    def today(self, zone: str | None = None) -> dt.date:
        return self.clock.now().astimezone(ZoneInfo(zone or self.time_zone)).date()

    # -- scheduling ------------------------------------------------------------------------
    async def schedule(self, submission: Submission, when: str, chosen: dt.date | None) -> Scheduled:
        """Check like a payment now, then schedule it (a repeat of the same submission
        returns the same scheduled payment). Raises FieldProblem, AccessDenied, ..."""
        key = f"payment:{submission.key}"[:200]
        existing = await self.scheduler.jobs.by_key(key)
        if existing is not None and existing.payload.get("user_id") == submission.user_id:
            return Scheduled.of(existing)
        pay_session = await self.payments.quick_check(submission)
        locale = pay_session.locale or DEFAULT_LOCALE
        amount = self.payments.parse_amount(submission.amount_text, pay_session.currency or "", locale)
        method = pay_session.offered_methods[submission.method_id or ""]
        viewer = await self.identity.viewer(submission.team_id, submission.user_id, fresh=True)
        invoice = await self.billing.get_invoice(pay_session.invoice_id)
        try:
            viewer.require(invoice.billing_profile_id)
        except AccessDenied as exc:
            await self._deny(viewer, invoice.id, exc.problem.value)
            raise
        if not invoice.is_payable:
            await self._deny(viewer, invoice.id, "invoice_not_payable")
            raise InvoiceNotPayable(invoice.number, invoice.status)
        if invoice.currency != amount.currency or amount > invoice.balance:
            await self._deny(viewer, invoice.id, "amount_exceeds_balance")
            raise FieldProblem("amount", f"That is more than the balance due of {invoice.balance.format(locale)}.")
        zone = await self.zone(viewer.team_id, invoice.billing_profile_id)
        day = pay_date(when, chosen, due_on=invoice.due_on, today=self.today(zone))
        assert day is not None
        profile = await self.invoices.profile(invoice.billing_profile_id, fresh=True)
        if not profile.stripe_customer_id:
            raise FieldProblem(METHOD_FIELD, "This billing profile has no saved payment methods any more.")
        # At or above the approval threshold: approved before it is scheduled to run (raises
        # NoApproverAvailable when nobody but the payer could approve it).
        rule = await self.approvals.gate(viewer, profile.id, amount) if self.approvals is not None else None
        if any(j.payload.get("invoice_id") == invoice.id for j in await self._upcoming(viewer.team_id)):
            await self._deny(viewer, invoice.id, "already_scheduled")
            raise ScheduleProblem(f"A payment of {invoice.number} is already scheduled: see `/invoices scheduled`.")
        payload = {
            "payment_id": f"{ID_PREFIX}{ULID()}", "user_id": viewer.user_id, "paid_by": viewer.email,
            "invoice_id": invoice.id, "invoice_number": invoice.number, "billing_profile_id": profile.id,
            "billing_profile_name": profile.name, "invoice_url": invoice.url, "amount_minor": amount.minor,
            "currency": amount.currency, "method_id": submission.method_id, "method_kind": method["kind"],
            "method_type": method["type"], "method_label": method["short_label"], "pay_on": day.isoformat(),
            "time_zone": zone, "locale": locale, "stripe_customer_id": profile.stripe_customer_id,
        }
        if rule is not None:
            payload |= {"needs_approval": True,
                        "approvers": [a for a in rule.approvers if a != viewer.user_id]}
        job = await self.scheduler.schedule(KIND, key, planned_run(day, zone), payload, team_id=viewer.team_id,
                                            by=viewer.user_id)
        scheduled = Scheduled.of(job)
        if job.payload.get("payment_id") != payload["payment_id"]:
            return scheduled  # a copy of the same submission scheduled it: it tells
        if rule is not None:
            try:
                await self._ask_approval(job, invoice, rule, day, paid_by=viewer.email)
            except PaymentInFlight:
                await self.scheduler.cancel(key, by=viewer.user_id, reason="another payment of the invoice in flight")
                await self._deny(viewer, invoice.id, "payment_in_flight")
                raise ScheduleProblem(f"Another payment of {invoice.number} is in progress or waiting for "
                                      "approval; nothing was scheduled or charged.") from None
        await self.queue([self._dm(job, "scheduled", scheduled)])
        return scheduled

    async def _ask_approval(self, job: Job, invoice: Invoice, rule: Rule, day: dt.date, *, paid_by: str) -> None:
        """Write the payment row waiting for approval, with its request (under today's rule,
        for `day`), and ask the approvers now: the yes comes before the day, not on it."""
        assert self.approvals is not None
        scheduled = Scheduled.of(job)
        payment = await self._payment_row(job, invoice, scheduled.amount, paid_by=paid_by,
                                          status=S.AWAITING_APPROVAL)
        await self.repo.create(payment, submission_key=f"job:{job.key}"[:200],
                               also=self.approvals.request_rows(payment, rule, pay_on=day))
        await self.approvals.requested(payment, invoice)

    async def _payment_row(self, job: Job, invoice: Invoice, amount: Money, *, paid_by: str,
                           status: PaymentStatus) -> Payment:
        """The payment this job makes (its id was fixed when it was scheduled)."""
        p = job.payload
        payment = Payment(
            id=p["payment_id"], team_id=job.team_id or "", user_id=p["user_id"], paid_by=paid_by,
            invoice_id=invoice.id, invoice_number=invoice.number, billing_profile_id=invoice.billing_profile_id,
            billing_profile_name=p["billing_profile_name"], invoice_url=invoice.url, amount_minor=amount.minor,
            currency=amount.currency, method_kind=p["method_kind"], payment_method_id=p["method_id"],
            payment_method_type=p["method_type"], method_label=p["method_label"],
            stripe_customer_id=p["stripe_customer_id"], status=status.value,
            locale=p.get("locale") or DEFAULT_LOCALE, card_fee_minor=await self._fee(invoice, p, amount), attempts=0)
        return payment

    async def _fee(self, invoice: Invoice, p: dict[str, Any], amount: Money) -> int | None:
        if p["method_kind"] != "card":
            return None
        profile = await self.invoices.profile(invoice.billing_profile_id, fresh=True)
        fee = card_fee(profile.card_fee_percent, amount)
        return fee.minor if fee else None

    async def _upcoming(self, team_id: str | None = None) -> list[Job]:
        return await self.scheduler.jobs.upcoming(kinds=[KIND], team_id=team_id, limit=10_000)

    async def visible(self, viewer: Viewer) -> list[Scheduled]:
        """The scheduled payments of the profiles this person may see, soonest first."""
        return [Scheduled.of(j) for j in await self._upcoming(viewer.team_id)
                if j.status == JobStatus.SCHEDULED
                and viewer.access.may_see(j.payload.get("billing_profile_id", ""))]

    async def scheduled_invoices(self, team_id: str, profile_id: str) -> frozenset[str]:
        return frozenset(j.payload["invoice_id"] for j in await self._upcoming(team_id)
                         if j.payload.get("billing_profile_id") == profile_id)

    async def scheduled_for_team(self, team_id: str) -> frozenset[str]:
        return frozenset(j.payload["invoice_id"] for j in await self._upcoming(team_id))

    async def cancel(self, team_id: str, user_id: str, key: str) -> Scheduled:
        """Cancel before it runs: the person who scheduled it, or an admin of its profile."""
        job = await self.scheduler.jobs.by_key(key)
        if job is None or job.kind != KIND or job.team_id != team_id:
            raise ScheduleProblem("That scheduled payment no longer exists.")
        scheduled = Scheduled.of(job)
        if job.payload.get("user_id") != user_id:
            viewer = await self.identity.viewer(team_id, user_id, fresh=True)
            if not (viewer.access.is_profile_admin and viewer.access.may_see(scheduled.profile_id)):
                await self.audit.record("cancel_scheduled_payment", "denied", team_id=team_id, user_id=user_id,
                                        invoice_id=scheduled.invoice_id, reason="not_scheduler_or_admin")
                raise ScheduleProblem("Only the person who scheduled this payment, or an admin of its billing "
                                      "profile, can cancel it.")
        payment = await self.repo.get(str(job.payload.get("payment_id") or ""))
        if payment is not None and payment.status not in (S.AWAITING_APPROVAL, S.SCHEDULED, *_ENDED_BEFORE_ANY_CHARGE):
            # It ran and made its payment, then its job was put back for a retry: the money may
            # be moving, so it is not cancelled here and nobody is told "nothing was charged".
            raise ScheduleProblem("This payment has already started; it can't be cancelled here. Its result "
                                  "comes by direct message and in the billing channel.")
        if not await self.scheduler.cancel(key, by=user_id, reason="cancelled by a person"):
            raise ScheduleProblem("That payment is not waiting any more: it has run, is running, or was "
                                  "cancelled already. `/invoices` shows where the invoice stands.")
        if payment is not None and self.approvals is not None:
            # Its request (waiting, or approved for the day) ends too; the approvers' messages say so.
            await self.approvals.end_scheduled(payment, f"cancelled by <@{user_id}>", by=user_id)
        await self.queue([self._dm(job, "cancelled", scheduled, by=user_id)])
        return scheduled

    # -- on the day ------------------------------------------------------------------------
    async def run(self, job: Job, ctx: JobContext) -> JobResult:
        p = job.payload
        scheduled = Scheduled.of(job)
        existing = await self.repo.get(p["payment_id"])
        approved: Payment | None = None  # its row, approved before the day and waiting for it
        if existing is not None:
            status = S(existing.status)
            if status is S.AWAITING_APPROVAL:
                return await self._skip(job, scheduled, "not_approved", "nobody approved it before its day",
                                        ending=existing)
            if status in _ENDED_BEFORE_ANY_CHARGE:
                return JobResult.skip(f"not approved: {status.value}")  # people were told when it ended
            if status is not S.SCHEDULED:
                # A run that died after the payment started: finish that very payment.
                payment = await self.processor.advance(existing.id, via="scheduler")
                return JobResult.done(f"payment {payment.id}: {payment.status}", payment_id=payment.id)
            approved = existing
        elif p.get("needs_approval"):
            # Its request was never written (a crash while scheduling): never charge unapproved.
            return await self._skip(job, scheduled, "approval", "needs approval; no request was made")
        if ctx.now - scheduled.runs_at > LATE_LIMIT:
            return await self._skip(job, scheduled, "late", "more than a day late: not charged, payer asked",
                                    ending=approved)
        try:
            viewer = await self.identity.viewer(job.team_id or "", p["user_id"], fresh=True)
            invoice = await self.billing.get_invoice(p["invoice_id"])
            viewer.require(invoice.billing_profile_id)
        except AccessDenied as exc:
            return await self._skip(job, scheduled, "no_access", f"no access: {exc.problem.value}", ending=approved)
        except BillingNotFound:
            return await self._skip(job, scheduled, "gone", "the invoice no longer exists", ending=approved)
        if not invoice.is_payable or invoice.amount_due <= 0:
            return await self._skip(job, scheduled, "paid", f"nothing left to pay ({invoice.status})",
                                    ending=approved)
        amount = scheduled.amount
        if invoice.currency != amount.currency:
            return await self._skip(job, scheduled, "changed", "the invoice's currency changed", ending=approved)
        lowered = invoice.balance < amount
        if lowered:
            amount = invoice.balance  # never more than was approved or scheduled
        if approved is None and await self._needs_approval(job.team_id or "", invoice.billing_profile_id, amount):
            return await self._skip(job, scheduled, "approval", "needs approval since it was scheduled")
        saved = await self.stripe.saved_methods(p["stripe_customer_id"])
        method = next((m for m in saved.methods if m.id == p["method_id"]), None)
        if method is None or method.is_expired(ctx.now.date()):
            return await self._skip(job, scheduled, "method", "the payment method is no longer saved or valid",
                                    ending=approved)
        payment = await self._payment_row(job, invoice, amount, paid_by=viewer.email, status=S.CREATED)
        try:
            if approved is not None:
                # Approved before the day: now checked again, it is charged from `approved`.
                moved = await self.repo.transition(
                    approved.id, [S.SCHEDULED], S.APPROVED, amount_minor=payment.amount_minor,
                    card_fee_minor=payment.card_fee_minor, paid_by=payment.paid_by, invoice_url=payment.invoice_url,
                    audit=[AuditEvent(action="payment_step", outcome=S.APPROVED.value, team_id=approved.team_id,
                                      user_id=approved.user_id, invoice_id=approved.invoice_id,
                                      billing_profile_id=approved.billing_profile_id, payment_id=approved.id,
                                      detail={"via": "scheduler", "from": S.SCHEDULED.value,
                                              "method": approved.method_label, "reason": ""})])
                if moved is None:
                    return JobResult.skip("its request ended meanwhile")
            else:
                await self.repo.create(payment, submission_key=f"job:{job.key}"[:200])
        except DuplicateSubmission:
            pass  # written by an earlier run of this job: drive it
        except PaymentInFlight:
            return await self._skip(job, scheduled, "busy", "another payment of this invoice is in progress",
                                    ending=approved)
        if lowered:
            await self.queue([self._dm(job, "lowered", scheduled, paying=amount.minor)])
        await self.audit.record("scheduled_payment", "started", team_id=job.team_id, user_id=p["user_id"],
                                invoice_id=invoice.id, billing_profile_id=invoice.billing_profile_id,
                                payment_id=payment.id, amount=amount.api_string(), lowered=lowered,
                                approved=approved is not None)
        result = await self.processor.advance(payment.id, via="scheduler")
        if result.status == PaymentStatus.FAILED:
            # The processor's DM says why; this one offers another method at once.
            await self.queue([self._dm(job, "declined", scheduled)])
        return JobResult.done(f"payment {result.id}: {result.status}", payment_id=result.id,
                              payment_status=result.status)

    async def failed(self, job: Job, error: str) -> None:
        """Every try of the job failed (the scheduler gave up): the payer hears, in words
        that are true. The payment row is written before any call to Stripe, so without one
        nothing can have been charged; with one, the payment goes on in the state machine
        (the reconciler) and its own DM tells the outcome."""
        scheduled = Scheduled.of(job)
        payment = await self.repo.get(str(job.payload.get("payment_id") or ""))
        await self.queue([self._dm(job, "failed", scheduled, started=payment is not None,
                                   status=payment.status if payment else "")])

    async def _skip(self, job: Job, scheduled: Scheduled, why: str, note: str, *,
                    ending: Payment | None = None) -> JobResult:
        """Not made today: the payer is told why; `ending`, its request (waiting or approved),
        ends too, before any charge."""
        if ending is not None and self.approvals is not None:
            await self.approvals.end_scheduled(ending, note)
        await self.queue([self._dm(job, why, scheduled)])
        return JobResult.skip(note, reason=why)

    def _dm(self, job: Job, event: str, scheduled: Scheduled, **extra: Any) -> OutboxMessage:
        return OutboxMessage(dedupe_key=f"{job.key}:{event}"[:200], team_id=job.team_id, channel=scheduled.user_id,
                             payload=self.words(event, scheduled, extra), attempts=0, next_attempt_at=utcnow())

    async def _deny(self, viewer: Viewer, invoice_id: str, reason: str) -> None:
        await self.audit.record("schedule_payment", "denied", team_id=viewer.team_id, user_id=viewer.user_id,
                                invoice_id=invoice_id, reason=reason)
