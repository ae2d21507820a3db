"""Pay Now: what the modal offers, and turning a submitted form into a payment row.

Nothing from the modal is believed: the form's server-side session says which invoice and
which methods were offered to whom; the invoice, its balance and the person's access are
read again, uncached, before a payment row is written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING

from ulid import ULID

from bot import clock as clocks
from bot.billing import BillingNotFound, BillingProfile, Invoice
from bot.clock import Clock, SystemClock
from bot.errors import FieldProblem, FormExpired, InvoiceNotPayable, InvoiceUnavailable, PaymentAlreadyInProgress
from bot.identity import DEFAULT_LOCALE, AccessDenied, IdentityService, Viewer
from bot.invoices import InvoiceService
from bot.links import LinkSigner
from bot.money import Money, MoneyError, check_chargeable, parse_amount
from bot.ports import BillingApi, StripePayments
from bot.processor import PaymentProcessor
from bot.summaries import PaymentSummary, payment_summary
from bot.stripe_gateway import SavedMethod, StripeUnavailable, StripeRejected
from storage.audit import AuditLog
from storage.models import Payment, PaymentStatus, PaySession
from storage.pay_sessions import PaySessionRepository
from storage.payments import DuplicateSubmission, PaymentInFlight, PaymentRepository

if TYPE_CHECKING:
    from bot.approvals import ApprovalService, Rule

log = logging.getLogger(__name__)

# The form's fields by their domain names (FieldProblem.field); the Slack side maps them
# to the modal's block ids.
AMOUNT = "amount"
METHOD = "method"
MAX_OFFERED_METHODS = 99  # Slack allows 100 options in a select


ADD_CARD_LINK = "add_card"
AUTHENTICATE_LINK = "authenticate"


class PayLinks:
    """The bot's own short links behind the modal's buttons (see bot/links.py)."""

    def __init__(self, public_url: str | None, signer: LinkSigner) -> None:
        self.public_url = public_url.rstrip("/") if public_url else None
        self.signer = signer

    def add_card(self, session_id: str) -> str | None:
        if not self.public_url:
            return None
        return f"{self.public_url}/cards/new/{session_id}?t={self.signer.sign(ADD_CARD_LINK, session_id)}"

    def authenticate(self, payment_id: str) -> str | None:
        if not self.public_url:
            return None
        token = self.signer.sign(AUTHENTICATE_LINK, payment_id)
        return f"{self.public_url}/pay/authenticate/{payment_id}?t={token}"

    def authenticated(self, payment_id: str) -> str:
        return f"{self.public_url or ''}/pay/authenticated/{payment_id}"

    def card_saved(self) -> str | None:
        return f"{self.public_url}/card-saved" if self.public_url else None


def card_fee(percent: Decimal | None, amount: Money) -> Money | None:
    """The vendor's surcharge for paying `amount` by card (billed separately), or None."""
    if percent is None or percent <= 0:
        return None
    return amount.percent(percent)


@dataclass(frozen=True, slots=True)
class PayForm:
    session_id: str
    invoice: Invoice
    profile: BillingProfile
    methods: list[SavedMethod]
    default_method_id: str | None
    add_card_url: str | None
    methods_unavailable: bool  # Stripe did not answer: offer wire transfer and retry
    in_flight: PaymentSummary | None
    locale: str = DEFAULT_LOCALE
    new_method_id: str | None = None  # saved since the form was last drawn: preselected
    approval: Rule | None = None  # the profile's approval rule, said before submitting

    def card_fee(self, amount: Money) -> Money | None:
        return card_fee(self.profile.card_fee_percent, amount)


@dataclass(frozen=True, slots=True)
class FeeQuote:
    """The card fee for the amount in the field (the modal refreshes it on Enter)."""

    amount: Money
    fee: Money | None
    percent: Decimal | None
    locale: str


@dataclass(frozen=True, slots=True)
class Submitted:
    """The payment a submission stands for; `first` is true only for the copy that wrote
    it, the one that drives it (repeats show where it stands and never call Stripe)."""

    payment: Payment
    first: bool


@dataclass(frozen=True, slots=True)
class Submission:
    team_id: str
    user_id: str
    session_id: str
    # The same form state submitted twice (a double click, a Slack retry) carries the same
    # key; the database refuses a second payment for it.
    key: str
    view_id: str  # where the form is shown, so the payment's later moves update it
    amount_text: str | None
    method_id: str | None


@dataclass(frozen=True, slots=True)
class FirstLook:
    """What a submission's first answer is drawn from (PaymentService.first_look)."""

    earlier: Payment | None
    pay_session: PaySession | None


class PaymentService:
    def __init__(self, identity: IdentityService, invoices: InvoiceService, billing: BillingApi,
                 stripe: StripePayments, payments: PaymentRepository, sessions: PaySessionRepository,
                 audit: AuditLog, links: PayLinks, processor: PaymentProcessor, *,
                 clock: Clock | None = None, approvals: ApprovalService | None = None,
                 before_ack: tuple[PaymentRepository, PaySessionRepository] | None = None) -> None:
        self._identity = identity
        self._invoices = invoices
        self._billing = billing
        self._stripe = stripe
        self._payments = payments
        self._sessions = sessions
        # The same tables through connections of their own, for the reads made before
        # Slack's answer (`first_look`, `quick_check`): they never wait behind payments in flight.
        self._ack_payments, self._ack_sessions = before_ack or (payments, sessions)
        self._audit = audit
        self._links = links
        self._processor = processor  # every move of a payment is the processor's (and audited there)
        self._clock = clock or SystemClock()
        self.approvals = approvals  # set by the app factory (bot/approvals.py)

    # -- Pay Now -------------------------------------------------------------------------
    async def _viewer(self, team_id: str, user_id: str, *, action: str, fresh: bool = False,
                      invoice_id: str | None = None) -> Viewer:
        """The person's rights; a refusal is audited with its reason, at every step."""
        try:
            return await self._identity.viewer(team_id, user_id, fresh=fresh)
        except AccessDenied as exc:
            await self._audit.record(action, "denied", team_id=team_id, user_id=user_id, invoice_id=invoice_id,
                                     reason=exc.problem.value)
            raise

    async def open_form(self, *, team_id: str, user_id: str, invoice_id: str) -> PayForm:
        # The invoice is read side by side with the person's rights (one billing round trip
        # less before the form); nothing of it is shown or used until the rights allow it.
        invoice_read = asyncio.ensure_future(self._billing.get_invoice(invoice_id))
        try:
            viewer = await self._viewer(team_id, user_id, action="open_pay_now", invoice_id=invoice_id)
        except BaseException:
            invoice_read.cancel()
            await asyncio.gather(invoice_read, return_exceptions=True)
            raise
        invoice = await self._visible_invoice(viewer, invoice_id, action="open_pay_now", read=invoice_read)
        profile = await self._invoices.profile(invoice.billing_profile_id)
        pay_session = self._sessions.new(team_id=team_id, user_id=user_id, invoice_id=invoice.id,
                                         locale=viewer.locale)
        form = await self._form(pay_session, invoice, profile)
        # Written once the form is known, with its audit row: one transaction per Pay Now.
        pay_session.currency = invoice.currency
        pay_session.balance_minor = invoice.balance.minor
        pay_session.offered_methods = _offered(form.methods)
        await self._sessions.save(pay_session, also=[self._audit.event(
            "open_pay_now", "ok", team_id=team_id, user_id=user_id, invoice_id=invoice.id,
            billing_profile_id=invoice.billing_profile_id)])
        return form

    async def reload_form(self, *, team_id: str, user_id: str, session_id: str) -> PayForm:
        """The same modal, with payment methods read again (after adding a card)."""
        pay_session = await self._session_of(team_id, user_id, session_id, action="reload_pay_now")
        viewer = await self._viewer(team_id, user_id, action="reload_pay_now", invoice_id=pay_session.invoice_id)
        invoice = await self._visible_invoice(viewer, pay_session.invoice_id, action="reload_pay_now")
        profile = await self._invoices.profile(invoice.billing_profile_id)
        form = await self._form(pay_session, invoice, profile)
        # A card saved since the form was drawn (on Stripe's page) is what the person came
        # back to pay with: preselect it.
        new = [m.id for m in form.methods if pay_session.offered_methods and m.id not in pay_session.offered_methods]
        if new:
            form = replace(form, new_method_id=new[-1])
        await self._sessions.update(pay_session.id, currency=invoice.currency, balance_minor=invoice.balance.minor,
                                    offered_methods=_offered(form.methods), locale=viewer.locale)
        return form

    async def fee_quote(self, *, team_id: str, user_id: str, session_id: str, amount_text: str | None) -> FeeQuote:
        """The card fee for what the person typed (FieldProblem if it is not an amount)."""
        pay_session = await self._session_of(team_id, user_id, session_id)
        invoice = await self._billing.get_invoice(pay_session.invoice_id)
        profile = await self._invoices.profile(invoice.billing_profile_id)
        locale = pay_session.locale or DEFAULT_LOCALE
        amount = self.parse_amount(amount_text, invoice.currency, locale)
        if amount > invoice.balance:  # said on Enter too, not only when Pay is pressed
            raise FieldProblem(AMOUNT, f"That is more than the balance due of {invoice.balance.format(locale)}.")
        return FeeQuote(amount, card_fee(profile.card_fee_percent, amount), profile.card_fee_percent, locale)

    # -- links behind the modal's buttons --------------------------------------------------
    async def add_card_page(self, session_id: str, token: str | None) -> str:
        """Stripe's page to save a new card for this form's billing profile, created now
        (the button was drawn without a Stripe call). Raises LinkInvalid, FormExpired,
        AccessDenied or InvoiceUnavailable."""
        self._links.signer.verify(ADD_CARD_LINK, session_id, token)
        pay_session = await self._sessions.get(session_id)
        if pay_session is None:
            raise FormExpired()
        viewer = await self._viewer(pay_session.team_id, pay_session.user_id, action="add_card",
                                    invoice_id=pay_session.invoice_id)
        invoice = await self._visible_invoice(viewer, pay_session.invoice_id, action="add_card")
        profile = await self._invoices.profile(invoice.billing_profile_id)
        if not profile.stripe_customer_id:
            await self._deny(viewer, invoice, "no_stripe_customer", action="add_card")
            raise InvoiceUnavailable(invoice.id)
        back = self._links.card_saved() or invoice.url or "https://slack.com/"
        url = await self._stripe.create_setup_session(
            profile.stripe_customer_id, currency=invoice.currency, success_url=back, cancel_url=back,
            metadata={"slack_team_id": pay_session.team_id, "slack_user_id": pay_session.user_id,
                      "pay_session_id": pay_session.id, "invoice_id": invoice.id,
                      "billing_profile_id": invoice.billing_profile_id})
        await self._audit.record("add_card", "ok", team_id=viewer.team_id, user_id=viewer.user_id,
                                 invoice_id=invoice.id, billing_profile_id=invoice.billing_profile_id)
        return url

    async def authentication_page(self, payment_id: str, token: str | None) -> str | None:
        """Stripe's 3-D Secure page for this payment (None: nothing left to authenticate)."""
        self._links.signer.verify(AUTHENTICATE_LINK, payment_id, token)
        payment = await self._payments.get(payment_id)
        if payment is None or payment.status != PaymentStatus.REQUIRES_ACTION or not payment.stripe_payment_intent_id:
            return None
        return await self._stripe.authentication_url(
            payment.stripe_payment_intent_id, payment_method_id=payment.payment_method_id,
            return_url=self._links.authenticated(payment.id), idempotency_key=f"{payment.id}-authenticate")

    async def _form(self, pay_session: PaySession, invoice: Invoice, profile: BillingProfile) -> PayForm:
        methods: list[SavedMethod] = []
        default_id: str | None = None
        add_card_url: str | None = None
        unavailable = False
        if profile.stripe_customer_id:
            add_card_url = self._links.add_card(pay_session.id)
            try:
                saved = await self._stripe.saved_methods(profile.stripe_customer_id)
            except (StripeUnavailable, StripeRejected) as exc:
                log.warning("saved methods unavailable: %s", exc)
                unavailable = True
            else:
                today = clocks.today(self._clock)
                methods = [m for m in saved.methods if not m.is_expired(today)]
                # The customer's default first, then cards, then bank accounts.
                methods.sort(key=lambda m: (m.id != saved.default_id, m.kind != "card"))
                methods = methods[:MAX_OFFERED_METHODS]
                default_id = saved.default_id if any(m.id == saved.default_id for m in methods) else None
        in_flight = await self._payments.in_flight_for_invoice(invoice.id)
        rule = await self.approvals.rule(pay_session.team_id, profile.id, profile.name) if self.approvals else None
        return PayForm(pay_session.id, invoice, profile, methods, default_id, add_card_url, unavailable,
                       payment_summary(in_flight) if in_flight is not None else None,
                       pay_session.locale or DEFAULT_LOCALE,
                       approval=replace(rule, approvers=tuple(a for a in rule.approvers if a != pay_session.user_id))
                       if rule is not None and rule.threshold is not None else None)

    # -- Submit --------------------------------------------------------------------------
    @staticmethod
    def parse_amount(text: str | None, currency: str, locale: str) -> Money:
        """What the person typed, read in their locale; ambiguous or unchargeable input is
        refused under the field (never guessed)."""
        try:
            amount = parse_amount(text, currency, locale)
            check_chargeable(amount, locale)
        except MoneyError as exc:
            raise FieldProblem(AMOUNT, str(exc)) from None
        return amount

    async def first_look(self, submission: Submission) -> FirstLook:
        """What Slack's answer to a submission depends on, in one read on the ack's own
        connections: the payment an earlier copy of it wrote (this person's only) and the
        form's session."""
        payment, pay_session = await self._ack_payments.submission_look(submission.key, submission.session_id)
        if payment is not None and (payment.user_id != submission.user_id or payment.team_id != submission.team_id):
            payment = None
        return FirstLook(payment, self._ack_sessions.current(pay_session))

    async def quick_check(self, submission: Submission, *, looked: FirstLook | None = None) -> PaySession:
        """What can be checked without the network, in time for Slack's answer: the form is
        this person's, the amount is a valid amount of the invoice's currency and within the
        balance the form was opened with, and the method is one the form offered (`looked`:
        the form's session as `first_look` read it, else it is read now)."""
        if looked is not None:
            pay_session = await self._owned(submission.team_id, submission.user_id, looked.pay_session)
        else:
            pay_session = await self._session_of(submission.team_id, submission.user_id, submission.session_id,
                                                 sessions=self._ack_sessions)
        locale = pay_session.locale or DEFAULT_LOCALE
        amount = self.parse_amount(submission.amount_text, pay_session.currency or "", locale)
        if pay_session.balance_minor is not None and amount.minor > pay_session.balance_minor:
            balance = Money.from_minor(pay_session.balance_minor, amount.currency)
            raise FieldProblem(AMOUNT, f"That is more than the balance due of {balance.format(locale)}.")
        if (submission.method_id or "") not in pay_session.offered_methods:
            raise FieldProblem(METHOD, "Choose one of the saved payment methods.")
        return pay_session

    async def session(self, submission: Submission) -> PaySession:
        return await self._session_of(submission.team_id, submission.user_id, submission.session_id)

    async def earlier(self, submission: Submission) -> Payment | None:
        """The payment an earlier copy of this very submission wrote, if any (this person's only)."""
        payment = await self._payments.by_submission(submission.key)
        if payment is None or payment.user_id != submission.user_id or payment.team_id != submission.team_id:
            return None
        return payment

    async def submit(self, submission: Submission) -> Submitted:
        """Validate against fresh data and write the payment row; money moves later.

        Raises FieldProblem (shown under a field), AccessDenied, InvoiceNotPayable,
        InvoiceUnavailable, FormExpired or PaymentAlreadyInProgress. A repeat of the same
        submission returns the first payment (`first=False`) instead of a new one.
        """
        earlier = await self.earlier(submission)
        if earlier is not None:
            return Submitted(earlier, first=False)
        pay_session = await self.session(submission)
        currency = pay_session.currency or ""
        locale = pay_session.locale or DEFAULT_LOCALE
        amount = self.parse_amount(submission.amount_text, currency, locale)
        method = pay_session.offered_methods.get(submission.method_id or "")
        if method is None:
            raise FieldProblem(METHOD, "Choose one of the saved payment methods.")

        viewer, invoice = await self._fresh(submission, pay_session.invoice_id)
        if invoice.currency != currency:
            await self._deny(viewer, invoice, "currency_changed")
            raise FieldProblem(AMOUNT, f"This invoice is now billed in {invoice.currency}. "
                                             "Close this form and press Pay Now again.")
        if amount > invoice.balance:
            await self._deny(viewer, invoice, "amount_exceeds_balance", amount=amount.api_string())
            raise FieldProblem(AMOUNT, f"That is more than the balance due of {invoice.balance.format(locale)}.")
        profile = await self._invoices.profile(invoice.billing_profile_id, fresh=True)
        if not profile.stripe_customer_id:
            await self._deny(viewer, invoice, "no_stripe_customer")
            raise FieldProblem(METHOD, "This billing profile has no saved payment methods any more.")
        # Above the profile's approval threshold: a request instead of a charge (bot/approvals.py).
        rule = await self.approvals.gate(viewer, invoice.billing_profile_id, amount) if self.approvals else None

        payment = Payment(
            id=f"pay_{ULID()}", team_id=viewer.team_id, user_id=viewer.user_id, paid_by=viewer.email,
            invoice_id=invoice.id, invoice_number=invoice.number, billing_profile_id=invoice.billing_profile_id,
            billing_profile_name=profile.name, invoice_url=invoice.url, amount_minor=amount.minor,
            currency=currency, method_kind=method["kind"], payment_method_id=submission.method_id,
            payment_method_type=method["type"], method_label=method["short_label"],
            stripe_customer_id=profile.stripe_customer_id, locale=locale,
            status=(PaymentStatus.AWAITING_APPROVAL if rule else PaymentStatus.CREATED).value,
            card_fee_minor=fee.minor if method["kind"] == "card" and (fee := card_fee(profile.card_fee_percent,
                                                                                      amount)) else None,
            attempts=0,
        )
        also = self.approvals.request_rows(payment, rule) if self.approvals and rule else []
        created = await self._create(payment, viewer, submission, also=also)
        if not created.first:
            return created  # a copy that arrived at the same time: the first one is audited
        payment = created.payment
        await self._recheck_holding_the_slot(payment, viewer, amount)
        await self._audit.record("submit_payment", "accepted", team_id=viewer.team_id, user_id=viewer.user_id,
                                 invoice_id=invoice.id, billing_profile_id=invoice.billing_profile_id,
                                 payment_id=payment.id, amount=amount.api_string(), currency=currency,
                                 method=payment.method_label, needs_approval=bool(rule))
        if self.approvals and rule:
            await self.approvals.requested(payment, invoice)
        return created

    async def _create(self, payment: Payment, viewer: Viewer, submission: Submission, *,
                      also: list[object] | None = None) -> Submitted:
        try:
            return Submitted(await self._payments.create(payment, submission_key=submission.key,
                                                         view_id=submission.view_id,
                                                         pay_session_id=submission.session_id, also=also or ()),
                             first=True)
        except DuplicateSubmission as dup:
            return Submitted(dup.payment, first=False)
        except PaymentInFlight as busy:
            other = busy.payment
            if other is not None and other.status == PaymentStatus.REQUIRES_ACTION and await self._supersede(other):
                return await self._create(payment, viewer, submission, also=also)
            await self._audit.record("submit_payment", "denied", team_id=viewer.team_id, user_id=viewer.user_id,
                                     invoice_id=payment.invoice_id, billing_profile_id=payment.billing_profile_id,
                                     reason="payment_in_progress")
            raise PaymentAlreadyInProgress(
                other.user_id if other else None,
                awaiting_approval=other is not None and other.status == PaymentStatus.AWAITING_APPROVAL) from None

    async def _recheck_holding_the_slot(self, payment: Payment, viewer: Viewer, amount: Money) -> None:
        """The balance, read again now that this payment holds the invoice's one in-flight
        slot: a payment that finished between our first read and our insert shows here, so
        two people paying at once can never both be charged."""
        try:
            invoice = await self._billing.get_invoice(payment.invoice_id)
            problem: Exception | None = None
            if not invoice.is_payable:
                problem = InvoiceNotPayable(invoice.number, invoice.status)
            elif invoice.currency != payment.currency or amount > invoice.balance:
                problem = FieldProblem(AMOUNT, "The balance changed while you were paying: it is now "
                                                     f"{invoice.balance.format(viewer.locale)}.")
        except Exception as exc:  # noqa: BLE001 - no certainty, no charge
            problem = exc
        if problem is None:
            return
        # The payment's own state: `created`, or `awaiting_approval` (no approver was asked yet).
        await self._processor.cancel(payment, PaymentStatus(payment.status),
                                     "The invoice changed before the card was charged.")
        await self._audit.record("submit_payment", "denied", team_id=viewer.team_id, user_id=viewer.user_id,
                                 invoice_id=payment.invoice_id, billing_profile_id=payment.billing_profile_id,
                                 payment_id=payment.id, reason=type(problem).__name__)
        raise problem

    async def _supersede(self, waiting: Payment) -> bool:
        """A payment stuck waiting for 3-D Secure gives way to a new attempt, once Stripe
        confirms its PaymentIntent is canceled (so it can never be completed later)."""
        if not waiting.stripe_payment_intent_id:
            return False
        result = await self._stripe.cancel_intent(waiting.stripe_payment_intent_id)
        if result.status != "canceled":
            return False
        moved = await self._processor.cancel(waiting, PaymentStatus.REQUIRES_ACTION,
                                             "Replaced by a new payment attempt before authentication.")
        return moved is not None

    async def _fresh(self, submission: Submission, invoice_id: str) -> tuple[Viewer, Invoice]:
        viewer_task = self._viewer(submission.team_id, submission.user_id, action="submit_payment", fresh=True,
                                   invoice_id=invoice_id)
        invoice_task = self._billing.get_invoice(invoice_id)
        viewer, invoice = await asyncio.gather(viewer_task, invoice_task, return_exceptions=True)
        if isinstance(viewer, BaseException):
            raise viewer
        if isinstance(invoice, BillingNotFound):
            await self._audit.record("submit_payment", "denied", team_id=submission.team_id,
                                     user_id=submission.user_id, invoice_id=invoice_id, reason="invoice_not_found")
            raise InvoiceUnavailable(invoice_id)
        if isinstance(invoice, BaseException):
            raise invoice
        try:
            # Access lost since the modal opened, or the invoice moved to another profile.
            self._check(viewer, invoice)
        except AccessDenied as exc:
            await self._deny(viewer, invoice, exc.problem.value)
            raise
        if not invoice.is_payable:
            await self._deny(viewer, invoice, "invoice_not_payable", status=invoice.status)
            raise InvoiceNotPayable(invoice.number, invoice.status)
        return viewer, invoice

    # -- shared checks -------------------------------------------------------------------
    async def _visible_invoice(self, viewer: Viewer, invoice_id: str, *, action: str,
                               read: Awaitable[Invoice] | None = None) -> Invoice:
        """The invoice, if this person may see it and it can be paid (`read`: its read, already
        under way)."""
        try:
            invoice = await (read if read is not None else self._billing.get_invoice(invoice_id))
        except BillingNotFound:
            await self._audit.record(action, "denied", team_id=viewer.team_id, user_id=viewer.user_id,
                                     invoice_id=invoice_id, reason="invoice_not_found")
            raise InvoiceUnavailable(invoice_id) from None
        try:
            self._check(viewer, invoice)
        except AccessDenied:
            await self._audit.record(action, "denied", team_id=viewer.team_id, user_id=viewer.user_id,
                                     invoice_id=invoice.id, billing_profile_id=invoice.billing_profile_id,
                                     reason="billing_profile_not_allowed")
            raise
        if not invoice.is_payable:
            await self._deny(viewer, invoice, "invoice_not_payable", status=invoice.status, action=action)
            raise InvoiceNotPayable(invoice.number, invoice.status)
        return invoice

    @staticmethod
    def _check(viewer: Viewer, invoice: Invoice) -> None:
        viewer.require(invoice.billing_profile_id)

    async def _deny(self, viewer: Viewer, invoice: Invoice, reason: str, *, action: str = "submit_payment",
                    **detail: str) -> None:
        await self._audit.record(action, "denied", team_id=viewer.team_id, user_id=viewer.user_id,
                                 invoice_id=invoice.id, billing_profile_id=invoice.billing_profile_id,
                                 reason=reason, **detail)

    async def _session_of(self, team_id: str, user_id: str, session_id: str, *, action: str = "submit_payment",
                          sessions: PaySessionRepository | None = None) -> PaySession:
        pay_session = await (sessions or self._sessions).get(session_id) if session_id else None
        return await self._owned(team_id, user_id, pay_session, action=action)

    async def _owned(self, team_id: str, user_id: str, pay_session: PaySession | None, *,
                     action: str = "submit_payment") -> PaySession:
        """The form's session if it exists and is this person's; else FormExpired (audited)."""
        if pay_session is None or pay_session.user_id != user_id or pay_session.team_id != team_id:
            await self._audit.record(action, "denied", team_id=team_id, user_id=user_id,
                                     reason="unknown_form_session")
            raise FormExpired()
        return pay_session


def _offered(methods: list[SavedMethod]) -> dict[str, dict[str, str]]:
    return {m.id: {"kind": m.kind, "type": m.type, "short_label": m.short_label} for m in methods}
