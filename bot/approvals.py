"""Approvals: payments of a profile's threshold or more need another person's yes.

The rule (threshold and approvers) is kept per workspace and billing profile, set by that
profile's admins. A submission above it writes the payment in `awaiting_approval` (it holds
the invoice's in-flight slot; nothing is charged) together with its request, which keeps the
rule as it was then. Every decision is checked on the server at the moment of the click and
is one guarded move of the payment (`UPDATE … WHERE status = 'awaiting_approval'`), so of two
approvers clicking at once exactly one wins. The charge is a separate step that starts from
`approved`: the same processor as any payment, and the reconciler finishes it after a crash.

    awaiting_approval ──approve──▶ approved ──charge (processor)──▶ confirming ▶ … ▶ recorded | failed
                      ──reject (reason)──▶ rejected
                      ──withdraw (requester)──▶ withdrawn
                      ──APPROVAL_TTL_HOURS──▶ expired   (its own scheduler job, `approval_expiry`)
                      ──approve, but the invoice or method changed──▶ canceled
                      ──approve a scheduled payment──▶ scheduled ──its day (bot/scheduled_payments.py)──▶ approved ▶ …

This module knows nothing of Slack: what people are told is built by an `ApprovalNotices`.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bot.billing import BillingClient, BillingError, BillingNotFound, Invoice
from bot.clock import Clock
from bot.errors import ApprovalProblem, NoApproverAvailable
from bot.identity import DEFAULT_LOCALE, AccessDenied, AccessProblem, IdentityService, Viewer
from bot.invoices import InvoiceService, ProfileNameProblem
from bot.money import Money, MoneyError, parse_amount
from bot.processor import PaymentProcessor, changed_since
from bot.routing import NotificationRouter
from bot.scheduler import JobContext, JobResult, Scheduler
from bot.stripe_gateway import StripeGateway, StripeRejected, StripeUnavailable
from storage.approvals import ApprovalRepository
from storage.audit import AuditLog
from storage.jobs import new_job
from storage.models import (
    SCHEDULED_PAYMENT_ID_PREFIX, ApprovalPolicy, ApprovalRequest, AuditEvent, Job, OutboxMessage, Payment, PaymentStatus,
)
from storage.payments import PaymentRepository

log = logging.getLogger(__name__)

S = PaymentStatus
# Each request's expiry is one scheduler job, written with the request, due at its expiry.
EXPIRY = "approval_expiry"
# Slack user ids are letters and digits; the demo's stand-in people have readable ones (U_EU), so "_" too.
_MENTION = re.compile(r"^<@([UW][A-Za-z0-9_]+)(?:\|[^>]*)?>$")
_GROUP = re.compile(r"^<!subteam\^([A-Z0-9]+)(?:\|[^>]*)?>$")


class Refusal(enum.StrEnum):
    SELF_APPROVAL = "self_approval"
    NOT_AN_APPROVER = "not_an_approver"
    LOST_ACCESS = "lost_access"
    ALREADY_DECIDED = "already_decided"
    NOT_THE_REQUESTER = "not_the_requester"
    UNKNOWN_REQUEST = "unknown_request"
    TRY_AGAIN = "try_again"


@dataclass(frozen=True, slots=True)
class Rule:
    """A profile's rule as a person sees it: payments of `threshold` or more need one of `approvers`."""

    profile_id: str
    profile_name: str
    threshold: Money | None
    approvers: tuple[str, ...]

    def applies_to(self, amount: Money) -> bool:
        if self.threshold is None:
            return False
        if self.threshold.currency != amount.currency:
            return True  # the profile's currency changed since: never let it through unasked
        return amount >= self.threshold


@dataclass(frozen=True, slots=True)
class Decision:
    """How a click ended: the payment now, and a refusal (with its reason) if it was refused."""

    payment: Payment | None
    refused: Refusal | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ApprovalCard:
    """What people are shown about one approval request (a view model: blocks/ never reads
    the rows). `decided_by`: who approved or rejected it, once someone did."""

    payment_id: str
    invoice_number: str
    profile_name: str
    amount: Money
    method: str  # brand and last 4 only
    locale: str
    status: str
    requester: str
    approvers: tuple[str, ...] = ()
    expires_at: dt.datetime | None = None
    decided_by: str | None = None
    reason: str | None = None
    failure_message: str | None = None
    pay_on: dt.date | None = None  # a scheduled payment's day (None: charged once approved)

    @classmethod
    def of(cls, payment: Payment, request: ApprovalRequest | None = None) -> ApprovalCard:
        return cls(
            payment_id=payment.id, invoice_number=payment.invoice_number, profile_name=payment.billing_profile_name,
            amount=Money.from_minor(payment.amount_minor, payment.currency), method=payment.method_label,
            locale=payment.locale or DEFAULT_LOCALE, status=str(payment.status),
            requester=request.requester_id if request else payment.user_id,
            approvers=tuple(request.approvers) if request else (),
            expires_at=request.expires_at if request else None,
            decided_by=(request.decided_by if request else None) or payment.approved_by,
            reason=request.reason if request else None, failure_message=payment.failure_message,
            pay_on=request.pay_on if request else None)


class ApprovalNotices(Protocol):
    """What people are told (built by the Slack side), as outbox messages."""

    async def policy_changed(self, team_id: str, rule: Rule, *, by: str, what: str) -> list[OutboxMessage]: ...

    async def asked(self, payment: Payment, request: ApprovalRequest, invoice: Invoice) -> list[OutboxMessage]: ...

    async def decided(self, payment: Payment, request: ApprovalRequest, event: str) -> list[OutboxMessage]:
        """Every approver's message updated, and the requester's DM, for `event`: approved,
        rejected, withdrawn, expired, canceled."""
        ...


class ApprovalService:
    def __init__(self, repo: ApprovalRepository, payments: PaymentRepository, identity: IdentityService,
                 invoices: InvoiceService, billing: BillingClient, stripe: StripeGateway,
                 processor: PaymentProcessor, audit: AuditLog, notices: ApprovalNotices, clock: Clock, *,
                 ttl: dt.timedelta, router: NotificationRouter | None = None,
                 scheduler: Scheduler | None = None) -> None:
        self._repo = repo
        self._payments = payments
        self._identity = identity
        self._invoices = invoices
        self._billing = billing
        self._stripe = stripe
        self._processor = processor
        self._audit = audit
        self._notices = notices
        self._clock = clock
        self._ttl = ttl
        self._router = router
        self._scheduler = scheduler
        self.on_queued: list = []  # callables: wake the outbox when something was queued
        # Told after a request ended without a charge following (rejected, expired, withdrawn,
        # canceled, approved for its day): the requester's open window shows it.
        self.on_ended: list[Callable[[Payment, str], Awaitable[None]]] = []
        # callables (team_id, user_ids): a request was made or decided (the requester and the
        # approvers), or a rule changed (the admin who changed it): what these people's Home
        # tabs show changed.
        self.on_changed: list = []

    # -- policy ------------------------------------------------------------------------
    async def rule(self, team_id: str, profile_id: str, profile_name: str = "") -> Rule:
        return _rule(await self._repo.policy(team_id, profile_id), profile_id, profile_name)

    async def show(self, viewer: Viewer) -> list[Rule]:
        """Every profile's rule the person may see."""
        ids = sorted(viewer.access.billing_profile_ids)
        policies = await self._repo.policies(viewer.team_id, ids)
        return [_rule(policies.get(pid), pid, (await self._invoices.profile(pid)).name) for pid in ids]

    async def rules(self, team_id: str, names: dict[str, str]) -> list[Rule]:
        """The rules of these profiles (id -> name, in that order): one query (the Home tab)."""
        policies = await self._repo.policies(team_id, list(names))
        return [_rule(policies.get(pid), pid, name) for pid, name in names.items()]

    async def waiting_for(self, viewer: Viewer, *, limit: int) -> tuple[list[ApprovalCard], int]:
        """The requests waiting for this person's decision (they are named as an approver, on a
        profile they may see; never their own), soonest to expire first, and how many."""
        pairs, total = await self._repo.waiting(viewer.team_id, now=self._clock.now(), approver=viewer.user_id,
                                                profile_ids=sorted(viewer.access.billing_profile_ids), limit=limit)
        return [ApprovalCard.of(payment, request) for request, payment in pairs], total

    async def waiting_of(self, team_id: str, user_id: str, *, limit: int,
                         not_prefixed: str | None = None) -> tuple[list[ApprovalCard], int]:
        """This person's own requests still waiting for a decision (but those whose payment id
        starts with `not_prefixed`), and how many."""
        pairs, total = await self._repo.waiting(team_id, now=self._clock.now(), requester=user_id,
                                                not_prefixed=not_prefixed, limit=limit)
        return [ApprovalCard.of(payment, request) for request, payment in pairs], total

    async def set_threshold(self, viewer: Viewer, text: str) -> Rule:
        """`<profile> <amount>` or `<profile> off`."""
        profile_text, _, amount_text = text.strip().rpartition(" ")
        if not profile_text or not amount_text:
            raise ApprovalProblem("Say which profile and from which amount, e.g. `/invoices approvals Acme 5000`, "
                                  "or `/invoices approvals Acme off`.")
        profile_id = await self._admin_profile(viewer, profile_text, action="set_approval_threshold")
        profile = await self._invoices.profile(profile_id, fresh=True)
        if amount_text.casefold() == "off":
            threshold: tuple[int, str] | None = None
            what = "no longer need approval"
        else:
            try:
                amount = parse_amount(amount_text, profile.currency, viewer.locale)
            except MoneyError as exc:
                raise ApprovalProblem(f"{exc}") from None
            threshold = (amount.minor, amount.currency)
            what = f"of {amount.format(viewer.locale)} or more now need approval"
        before = await self._repo.policy(viewer.team_id, profile_id)
        after = _rule(before, profile_id, profile.name)
        after = Rule(profile_id, profile.name, Money.from_minor(*threshold) if threshold else None, after.approvers)
        outbox = await self._notices.policy_changed(viewer.team_id, after, by=viewer.user_id, what=what)
        audit = AuditEvent(action="set_approval_threshold", outcome="ok", team_id=viewer.team_id,
                           user_id=viewer.user_id, billing_profile_id=profile_id,
                           detail={"threshold": after.threshold.api_string() if after.threshold else None,
                                   "currency": after.threshold.currency if after.threshold else None,
                                   "before": _describe(before)})
        await self._repo.save_policy(viewer.team_id, profile_id, set_by=viewer.user_id, threshold=threshold,
                                     outbox=outbox, audit=[audit])
        self._wake()
        self._told(viewer.team_id, [viewer.user_id])
        return after

    async def set_approvers(self, viewer: Viewer, text: str) -> Rule:
        """`<profile> @someone @someone-else` (user groups are not taken yet: say so)."""
        words = text.split()
        first = next((i for i, w in enumerate(words) if w.startswith("<")), len(words))
        profile_text, mentions = " ".join(words[:first]), words[first:]
        if not profile_text or not mentions:
            raise ApprovalProblem("Name the profile, then the approvers with @, e.g. "
                                  "`/invoices approvers Acme @anna @ben`.")
        approvers: list[str] = []
        for word in mentions:
            if _GROUP.match(word):
                raise ApprovalProblem("User groups can't be approvers yet: name the people with @.")
            match = _MENTION.match(word)
            if not match:
                raise ApprovalProblem(f"“{word[:60]}” is not a Slack user: name approvers with @, "
                                      "e.g. `/invoices approvers Acme @anna @ben`.")
            if match.group(1) not in approvers:
                approvers.append(match.group(1))
        profile_id = await self._admin_profile(viewer, profile_text, action="set_approvers")
        profile = await self._invoices.profile(profile_id)
        before = await self._repo.policy(viewer.team_id, profile_id)
        current = _rule(before, profile_id, profile.name)
        after = Rule(profile_id, profile.name, current.threshold, tuple(approvers))
        who = ", ".join(f"<@{a}>" for a in approvers)
        outbox = await self._notices.policy_changed(viewer.team_id, after, by=viewer.user_id,
                                                    what=f"are now approved by {who}")
        audit = AuditEvent(action="set_approvers", outcome="ok", team_id=viewer.team_id, user_id=viewer.user_id,
                           billing_profile_id=profile_id, detail={"approvers": approvers,
                                                                  "before": _describe(before)})
        await self._repo.save_policy(viewer.team_id, profile_id, set_by=viewer.user_id, approvers=approvers,
                                     outbox=outbox, audit=[audit])
        self._wake()
        self._told(viewer.team_id, [viewer.user_id])
        return after

    async def _admin_profile(self, viewer: Viewer, text: str, *, action: str) -> str:
        if not viewer.access.is_profile_admin:
            await self._audit.record(action, "denied", team_id=viewer.team_id, user_id=viewer.user_id,
                                     reason="not_billing_profile_admin")
            raise AccessDenied(AccessProblem.NOT_ADMIN)
        try:
            [profile_id] = await self._invoices.profiles_named(viewer, text, listed_by="/invoices approvals")
        except ProfileNameProblem as exc:
            raise ApprovalProblem(str(exc)) from None
        return profile_id

    # -- request (from the submission) -------------------------------------------------
    async def gate(self, viewer: Viewer, profile_id: str, amount: Money) -> Rule | None:
        """The rule this payment falls under, or None when it needs no approval. Raises
        NoApproverAvailable when nobody but the requester could approve it."""
        rule = await self.rule(viewer.team_id, profile_id)
        if not rule.applies_to(amount):
            return None
        if not [a for a in rule.approvers if a != viewer.user_id]:
            await self._audit.record("submit_payment", "denied", team_id=viewer.team_id, user_id=viewer.user_id,
                                     billing_profile_id=profile_id, reason="no_approver_available",
                                     amount=amount.api_string())
            raise NoApproverAvailable()
        return rule

    def request_row(self, payment: Payment, rule: Rule, *, pay_on: dt.date | None = None) -> ApprovalRequest:
        """The request written with the payment (same transaction), under today's rule."""
        assert rule.threshold is not None
        return ApprovalRequest(
            payment_id=payment.id, team_id=payment.team_id, billing_profile_id=payment.billing_profile_id,
            requester_id=payment.user_id, approvers=[a for a in rule.approvers if a != payment.user_id],
            threshold_minor=rule.threshold.minor, expires_at=self._clock.now() + self._ttl, pay_on=pay_on)

    def request_rows(self, payment: Payment, rule: Rule, *, pay_on: dt.date | None = None) -> list[object]:
        """The request and its expiry job, written with the payment (same transaction): no
        request waits without the job that ends it, whatever crashes. `pay_on`: the request
        is for a payment scheduled for that day (approved, it waits for it)."""
        request = self.request_row(payment, rule, pay_on=pay_on)
        return [request, *new_job(
            kind=EXPIRY, key=expiry_key(payment.id), due_at=request.expires_at, team_id=payment.team_id,
            payload={"payment_id": payment.id, "user_id": payment.user_id, "invoice_id": payment.invoice_id,
                     "billing_profile_id": payment.billing_profile_id})]

    async def requested(self, payment: Payment, invoice: Invoice) -> None:
        """The payment waits: ask each approver (a DM each, through the outbox), audit it."""
        request = await self._repo.request(payment.id)
        assert request is not None
        await self._payments.add_outbox(await self._notices.asked(payment, request, invoice))
        await self._audit.record("approval", "requested", team_id=payment.team_id, user_id=payment.user_id,
                                 invoice_id=payment.invoice_id, billing_profile_id=payment.billing_profile_id,
                                 payment_id=payment.id, approvers=list(request.approvers),
                                 amount=Money.from_minor(payment.amount_minor, payment.currency).api_string(),
                                 expires_at=request.expires_at.isoformat())
        self._wake()
        self._changed(payment.team_id, request)

    async def request(self, payment_id: str) -> ApprovalRequest | None:
        return await self._repo.request(payment_id)

    # -- decisions ---------------------------------------------------------------------
    async def approve(self, team_id: str, user_id: str, payment_id: str) -> Decision:
        checked = await self._checked(team_id, user_id, payment_id, action="approve")
        if isinstance(checked, Decision):
            return checked
        payment, request = checked
        # Still payable, with that balance, with that method: at this moment, not at the request's.
        problem = await self._still_chargeable(payment, user_id)
        if isinstance(problem, Decision):
            return problem
        if problem:
            return await self._end(payment, request, S.CANCELED, "canceled", by=user_id, reason=problem,
                                   failure_message=f"Not charged: {problem}")
        # A scheduled payment, approved, waits for its day (the scheduler charges it then).
        later = is_scheduled_payment(payment)
        to_state, event = (S.SCHEDULED, "approved_for_later") if later else (S.APPROVED, "approved")
        moved = await self._payments.transition(
            payment.id, [S.AWAITING_APPROVAL], to_state, approved_by=user_id,
            outbox=await self._notices.decided(_copy(payment, status=to_state.value, approved_by=user_id),
                                               _copy_request(request, decided_by=user_id, reason=None), event),
            audit=[self._event(payment, "approved", user_id, **({"for_later": "true"} if later else {}))])
        if moved is None:
            return await self._lost_race(payment, user_id, "approve")
        await self._repo.decide(payment.id, decided_by=user_id)
        await self._expiry_not_needed(payment.id, by=user_id)
        self._wake()
        self._changed(payment.team_id, request)
        if later:
            await self._ended(moved, "approved_for_later")
            return Decision(moved)
        # The charge: a separate step from `approved` (the reconciler finishes it after a crash).
        return Decision(await self.charge(payment.id))

    async def charge(self, payment_id: str) -> Payment:
        return await self._processor.advance(payment_id, via="approval")

    async def reject(self, team_id: str, user_id: str, payment_id: str, reason: str) -> Decision:
        checked = await self._checked(team_id, user_id, payment_id, action="reject")
        if isinstance(checked, Decision):
            return checked
        payment, request = checked
        reason = " ".join(reason.split())[:500] or "no reason given"
        return await self._end(payment, request, S.REJECTED, "rejected", by=user_id, reason=reason,
                               failure_message=f"Rejected by <@{user_id}>: {reason}")

    async def withdraw(self, team_id: str, user_id: str, payment_id: str) -> Decision:
        payment = await self._payments.get(payment_id)
        request = await self._repo.request(payment_id)
        if payment is None or request is None or payment.team_id != team_id:
            return await self._refuse(team_id, user_id, payment, Refusal.UNKNOWN_REQUEST, "withdraw")
        if user_id != request.requester_id:
            return await self._refuse(team_id, user_id, payment, Refusal.NOT_THE_REQUESTER, "withdraw")
        if payment.status != S.AWAITING_APPROVAL:
            return await self._refuse(team_id, user_id, payment, Refusal.ALREADY_DECIDED, "withdraw")
        return await self._end(payment, request, S.WITHDRAWN, "withdrawn", by=user_id, reason=None,
                               failure_message="Withdrawn by the requester before approval.")

    async def end_scheduled(self, payment: Payment, reason: str, *, by: str | None = None) -> Payment | None:
        """A scheduled payment's request ends before any charge (cancelled, or its day's checks
        failed): still waiting for approval, it is withdrawn (expired, when its day came with no
        decision and nobody cancelled it); approved, canceled. Every approver's message says so;
        the payer's DM is the scheduler's. None if it had moved on."""
        request = await self._repo.request(payment.id)
        waiting = payment.status == S.AWAITING_APPROVAL
        to_state = (S.WITHDRAWN if by else S.EXPIRED) if waiting else S.CANCELED
        preview = _copy(payment, status=to_state.value, failure_message=reason)
        outbox = (await self._notices.decided(preview, _copy_request(request, decided_by=by, reason=reason),
                                              "ended_scheduled") if request is not None else [])
        moved = await self._payments.transition(
            payment.id, [S.AWAITING_APPROVAL, S.SCHEDULED], to_state, failure_message=reason, outbox=outbox,
            audit=[self._event(payment, to_state.value, by, reason=reason)])
        if moved is not None:
            if waiting:
                await self._repo.decide(payment.id, decided_by=by, reason=reason)
                await self._expiry_not_needed(payment.id, by=by)
            self._wake()
        return moved

    async def expire_job(self, job: Job, ctx: JobContext) -> JobResult:
        """The scheduler's `approval_expiry` job, due at the request's expiry: if nobody has
        decided yet, it expires (the slot released, everyone told). Run twice (a lease taken
        over), the guarded move expires it once."""
        payment_id = str(job.payload.get("payment_id") or "")
        payment = await self._payments.get(payment_id)
        request = await self._repo.request(payment_id)
        if payment is None or request is None:
            return JobResult.skip("no such request")
        if payment.status != S.AWAITING_APPROVAL:
            return JobResult.skip(f"decided already: {payment.status}")
        decision = await self._end(payment, request, S.EXPIRED, "expired", by=None, reason=None,
                                   failure_message="Nobody approved it in time; the request expired.")
        if decision.refused is not None:
            return JobResult.skip("decided meanwhile")
        return JobResult.done("expired", payment_id=payment_id)

    async def expire_due(self, now: dt.datetime) -> int:
        """Requests past APPROVAL_TTL_HOURS: expired, the slot released, everyone told.
        The server's scheduler expires each at its time (`expire_job`); this sweep is the
        operator's (`invoicebot reconcile`), for any request whose job was lost."""
        expired = 0
        for request, payment in await self._repo.due_to_expire(now):
            decision = await self._end(payment, request, S.EXPIRED, "expired", by=None, reason=None,
                                       failure_message="Nobody approved it in time; the request expired.")
            expired += decision.refused is None
        return expired

    async def expire_now(self) -> int:
        """`expire_due` at the bot's clock's now (`invoicebot reconcile`)."""
        return await self.expire_due(self._clock.now())

    # -- the checks at the moment of the click -----------------------------------------
    async def _checked(self, team_id: str, user_id: str, payment_id: str, *,
                       action: str) -> tuple[Payment, ApprovalRequest] | Decision:
        payment = await self._payments.get(payment_id)
        request = await self._repo.request(payment_id)
        if payment is None or request is None or payment.team_id != team_id:
            return await self._refuse(team_id, user_id, payment, Refusal.UNKNOWN_REQUEST, action)
        if payment.status != S.AWAITING_APPROVAL:
            return await self._refuse(team_id, user_id, payment, Refusal.ALREADY_DECIDED, action,
                                      status=payment.status)
        if _as_utc(request.expires_at) <= self._clock.now():
            # Past its time though no sweep has expired it yet: it expires now, nothing is decided.
            ended = await self._end(payment, request, S.EXPIRED, "expired", by=None, reason=None,
                                    failure_message="Nobody approved it in time; the request expired.")
            return await self._refuse(team_id, user_id, ended.payment or payment, Refusal.ALREADY_DECIDED, action,
                                      status=S.EXPIRED.value)
        if user_id == request.requester_id:
            return await self._refuse(team_id, user_id, payment, Refusal.SELF_APPROVAL, action)
        if user_id not in request.approvers:
            return await self._refuse(team_id, user_id, payment, Refusal.NOT_AN_APPROVER, action)
        try:
            viewer = await self._identity.viewer(team_id, user_id, fresh=True)
            viewer.require(payment.billing_profile_id)
        except AccessDenied as exc:
            return await self._refuse(team_id, user_id, payment, Refusal.LOST_ACCESS, action,
                                      problem=exc.problem.value)
        except Exception as exc:  # noqa: BLE001 - the billing API down: decide nothing, say so
            log.warning("approval check for %s failed: %s", payment_id, type(exc).__name__)
            return await self._refuse(team_id, user_id, payment, Refusal.TRY_AGAIN, action,
                                      error=type(exc).__name__)
        return payment, request

    async def _still_chargeable(self, payment: Payment, user_id: str) -> str | Decision | None:
        """Why this payment can no longer be charged as asked (None: it can)."""
        try:
            invoice = await self._billing.get_invoice(payment.invoice_id)
            changed = changed_since(invoice, payment, "since the request")
            if changed:
                return changed
            saved = await self._stripe.saved_methods(payment.stripe_customer_id)
        except BillingNotFound:
            return "the invoice no longer exists in the billing system."
        except (BillingError, StripeUnavailable, StripeRejected) as exc:
            log.warning("approval of %s: cannot check now: %s", payment.id, type(exc).__name__)
            return await self._refuse(payment.team_id, user_id, payment, Refusal.TRY_AGAIN, "approve",
                                      error=type(exc).__name__)
        today = self._clock.now().date()
        if not any(m.id == payment.payment_method_id and not m.is_expired(today) for m in saved.methods):
            return f"{payment.method_label} is no longer saved (or has expired)."
        return None

    # -- moves -------------------------------------------------------------------------
    async def _end(self, payment: Payment, request: ApprovalRequest, to_state: S, event: str, *,
                   by: str | None, reason: str | None, failure_message: str) -> Decision:
        preview = _copy(payment, status=to_state.value, failure_message=failure_message)
        moved = await self._payments.transition(
            payment.id, [S.AWAITING_APPROVAL], to_state, failure_message=failure_message,
            outbox=await self._notices.decided(preview, _copy_request(request, decided_by=by, reason=reason), event),
            audit=[self._event(payment, event, by, reason=reason or "")])
        if moved is None:
            return await self._lost_race(payment, by or "", event)
        await self._repo.decide(payment.id, decided_by=by, reason=reason)
        if event != "expired":
            await self._expiry_not_needed(payment.id, by=by)
        self._wake()
        await self._ended(moved, event)
        self._changed(payment.team_id, request)
        return Decision(moved)

    async def _ended(self, payment: Payment, event: str) -> None:
        for tell in self.on_ended:
            try:
                await tell(payment, event)
            except Exception:  # noqa: BLE001 - the DMs say it anyway
                log.info("requester's window not redrawn for %s", payment.id, exc_info=True)

    async def _expiry_not_needed(self, payment_id: str, *, by: str | None) -> None:
        """Decided: its expiry job is cancelled (were that lost, the job skips a decided request)."""
        if self._scheduler is None:
            return
        try:
            await self._scheduler.cancel(expiry_key(payment_id), by=by, reason="decided")
        except Exception:  # noqa: BLE001 - the decision stands; the job will find it decided
            log.warning("expiry job of %s not cancelled", payment_id, exc_info=True)

    async def _lost_race(self, payment: Payment, user_id: str, action: str) -> Decision:
        """Someone else decided first: the click does nothing, and says what happened."""
        return await self._refuse(payment.team_id, user_id, await self._payments.get(payment.id) or payment,
                                  Refusal.ALREADY_DECIDED, action)

    async def _refuse(self, team_id: str, user_id: str, payment: Payment | None, why: Refusal, action: str,
                      **detail: str) -> Decision:
        await self._audit.record(f"approval_{action}", "denied", team_id=team_id, user_id=user_id or None,
                                 invoice_id=payment.invoice_id if payment else None,
                                 billing_profile_id=payment.billing_profile_id if payment else None,
                                 payment_id=payment.id if payment else None, reason=why.value, **detail)
        return Decision(payment, why, detail.get("problem", ""))

    @staticmethod
    def _event(payment: Payment, outcome: str, by: str | None, **detail: str) -> AuditEvent:
        return AuditEvent(action="approval", outcome=outcome, team_id=payment.team_id, user_id=by,
                          invoice_id=payment.invoice_id, billing_profile_id=payment.billing_profile_id,
                          payment_id=payment.id, detail={"requester": payment.user_id, **detail})

    def _wake(self) -> None:
        for wake in self.on_queued:
            wake()

    def _changed(self, team_id: str, request: ApprovalRequest) -> None:
        self._told(team_id, list(dict.fromkeys([request.requester_id, *request.approvers])))

    def _told(self, team_id: str, people: list[str]) -> None:
        for changed in self.on_changed:
            try:
                changed(team_id, people)
            except Exception:  # noqa: BLE001 - a view not refreshed never undoes a decision
                log.info("approval change not passed on", exc_info=True)


def _rule(policy: ApprovalPolicy | None, profile_id: str, profile_name: str) -> Rule:
    if policy is None:
        return Rule(profile_id, profile_name, None, ())
    threshold = (Money.from_minor(policy.threshold_minor, policy.currency)
                 if policy.threshold_minor is not None and policy.currency else None)
    return Rule(profile_id, profile_name, threshold, tuple(policy.approvers or ()))


def _describe(policy: ApprovalPolicy | None) -> dict[str, object] | None:
    if policy is None:
        return None
    return {"threshold_minor": policy.threshold_minor, "currency": policy.currency,
            "approvers": list(policy.approvers or [])}


def _copy(payment: Payment, **fields: object) -> Payment:
    clone = Payment(**{c.key: getattr(payment, c.key) for c in Payment.__table__.columns})
    for key, value in fields.items():
        setattr(clone, key, value)
    return clone


def _copy_request(request: ApprovalRequest, **fields: object) -> ApprovalRequest:
    clone = ApprovalRequest(**{c.key: getattr(request, c.key) for c in ApprovalRequest.__table__.columns})
    for key, value in fields.items():
        setattr(clone, key, value)
    return clone


def is_scheduled_payment(payment: Payment) -> bool:
    return payment.id.startswith(SCHEDULED_PAYMENT_ID_PREFIX)


def expiry_key(payment_id: str) -> str:
    return f"approval_expiry:{payment_id}"


def _as_utc(moment: dt.datetime) -> dt.datetime:
    """A stored time as an aware UTC time (SQLite gives it back without its zone)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
