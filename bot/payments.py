"""Pay Now: what the modal offers, and turning a submitted form into a payment row.

Nothing from the modal is believed: the form's server-side session says which invoice and
which methods were offered to whom; the invoice, its balance and the person's access are
read again, uncached, before a payment row is written.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass

from ulid import ULID

from bot.billing import BillingClient, BillingNotFound, BillingProfile, Invoice
from bot.errors import FieldProblem, FormExpired, InvoiceNotPayable, InvoiceUnavailable, PaymentAlreadyInProgress
from bot.identity import AccessDenied, IdentityService, Viewer
from bot.invoices import InvoiceService
from bot.money import Money, MoneyError, check_chargeable
from bot.stripe_gateway import SavedMethod, StripeGateway, StripeUnavailable, StripeRejected
from storage.audit import AuditLog
from storage.models import Payment, PaymentStatus, PaySession
from storage.pay_sessions import PaySessionRepository
from storage.payments import DuplicateSubmission, PaymentInFlight, PaymentRepository

log = logging.getLogger(__name__)

AMOUNT_FIELD = "amount"
METHOD_FIELD = "method"
MAX_OFFERED_METHODS = 99  # Slack allows 100 options in a select


@dataclass(frozen=True, slots=True)
class PayForm:
    session_id: str
    invoice: Invoice
    profile: BillingProfile
    methods: list[SavedMethod]
    default_method_id: str | None
    add_card_url: str | None
    methods_unavailable: bool  # Stripe did not answer: offer wire transfer and retry
    in_flight: Payment | None

    def card_fee(self, amount: Money) -> Money | None:
        if self.profile.card_fee_percent is None or self.profile.card_fee_percent <= 0:
            return None
        return amount.percent(self.profile.card_fee_percent)


@dataclass(frozen=True, slots=True)
class Submission:
    team_id: str
    user_id: str
    session_id: str
    view_id: str
    view_hash: str
    amount_text: str | None
    method_id: str | None


class PaymentService:
    def __init__(self, identity: IdentityService, invoices: InvoiceService, billing: BillingClient,
                 stripe: StripeGateway, payments: PaymentRepository, sessions: PaySessionRepository,
                 audit: AuditLog, *, return_url: str | None = None) -> None:
        self._identity = identity
        self._invoices = invoices
        self._billing = billing
        self._stripe = stripe
        self._payments = payments
        self._sessions = sessions
        self._audit = audit
        self._return_url = return_url

    # -- Pay Now -------------------------------------------------------------------------
    async def open_form(self, *, team_id: str, user_id: str, invoice_id: str, view_id: str | None,
                        list_response_url: str | None, list_query: str | None) -> PayForm:
        viewer = await self._identity.viewer(team_id, user_id)
        invoice = await self._visible_invoice(viewer, invoice_id, action="open_pay_now")
        profile = await self._invoices.profile(invoice.billing_profile_id)
        pay_session = await self._sessions.open(team_id=team_id, user_id=user_id, invoice_id=invoice.id,
                                                list_response_url=list_response_url, list_query=list_query)
        form = await self._form(pay_session, invoice, profile)
        await self._sessions.update(pay_session.id, view_id=view_id, currency=invoice.currency,
                                    balance_minor=invoice.balance.minor, offered_methods=_offered(form.methods))
        await self._audit.record("open_pay_now", "ok", team_id=team_id, user_id=user_id, invoice_id=invoice.id,
                                 billing_profile_id=invoice.billing_profile_id)
        return form

    async def reload_form(self, *, team_id: str, user_id: str, session_id: str) -> PayForm:
        """The same modal, with payment methods read again (after adding a card)."""
        pay_session = await self._session_of(team_id, user_id, session_id)
        viewer = await self._identity.viewer(team_id, user_id)
        invoice = await self._visible_invoice(viewer, pay_session.invoice_id, action="reload_pay_now")
        profile = await self._invoices.profile(invoice.billing_profile_id)
        form = await self._form(pay_session, invoice, profile)
        await self._sessions.update(pay_session.id, currency=invoice.currency, balance_minor=invoice.balance.minor,
                                    offered_methods=_offered(form.methods))
        return form

    async def _form(self, pay_session: PaySession, invoice: Invoice, profile: BillingProfile) -> PayForm:
        methods: list[SavedMethod] = []
        default_id: str | None = None
        add_card_url: str | None = None
        unavailable = False
        if profile.stripe_customer_id:
            saved, link = await asyncio.gather(
                self._stripe.saved_methods(profile.stripe_customer_id),
                self._stripe.create_setup_session(
                    profile.stripe_customer_id, currency=invoice.currency,
                    success_url=self._return_url or invoice.url or "https://slack.com/",
                    cancel_url=self._return_url or invoice.url or "https://slack.com/",
                    metadata={"slack_team_id": pay_session.team_id, "slack_user_id": pay_session.user_id,
                              "pay_session_id": pay_session.id,
                              "invoice_id": invoice.id, "billing_profile_id": invoice.billing_profile_id}),
                return_exceptions=True,
            )
            if isinstance(saved, BaseException):
                if not isinstance(saved, (StripeUnavailable, StripeRejected)):
                    raise saved
                log.warning("saved methods unavailable: %s", saved)
                unavailable = True
            else:
                today = dt.datetime.now(dt.UTC).date()
                methods = [m for m in saved.methods if not m.is_expired(today)]
                # The customer's default first, then cards, then bank accounts.
                methods.sort(key=lambda m: (m.id != saved.default_id, m.kind != "card"))
                methods = methods[:MAX_OFFERED_METHODS]
                default_id = saved.default_id if any(m.id == saved.default_id for m in methods) else None
            add_card_url = link if isinstance(link, str) else None
        in_flight = await self._payments.in_flight_for_invoice(invoice.id)
        return PayForm(pay_session.id, invoice, profile, methods, default_id, add_card_url, unavailable, in_flight)

    # -- Submit --------------------------------------------------------------------------
    def parse_amount(self, text: str | None, currency: str) -> Money:
        try:
            amount = Money.parse_user_input(text, currency)
            check_chargeable(amount)
        except MoneyError as exc:
            raise FieldProblem(AMOUNT_FIELD, str(exc)) from None
        return amount

    async def quick_check(self, submission: Submission) -> PaySession:
        """What can be checked without the network, in time for Slack's answer: the form is
        this person's, the amount is a valid amount of the invoice's currency and within the
        balance the form was opened with, and the method is one the form offered."""
        pay_session = await self.session(submission)
        amount = self.parse_amount(submission.amount_text, pay_session.currency or "")
        if pay_session.balance_minor is not None and amount.minor > pay_session.balance_minor:
            balance = Money.from_minor(pay_session.balance_minor, amount.currency)
            raise FieldProblem(AMOUNT_FIELD, f"That is more than the balance due of {balance.format()}.")
        if (submission.method_id or "") not in pay_session.offered_methods:
            raise FieldProblem(METHOD_FIELD, "Choose one of the saved payment methods.")
        return pay_session

    async def session(self, submission: Submission) -> PaySession:
        return await self._session_of(submission.team_id, submission.user_id, submission.session_id)

    async def submit(self, submission: Submission) -> Payment:
        """Validate against fresh data and write the payment row; money moves later.

        Raises FieldProblem (shown under a field), AccessDenied, InvoiceNotPayable,
        InvoiceUnavailable, FormExpired or PaymentAlreadyInProgress. A repeat of the same
        submission returns the first payment instead of a new one.
        """
        pay_session = await self.session(submission)
        currency = pay_session.currency or ""
        amount = self.parse_amount(submission.amount_text, currency)
        method = pay_session.offered_methods.get(submission.method_id or "")
        if method is None:
            raise FieldProblem(METHOD_FIELD, "Choose one of the saved payment methods.")

        viewer, invoice = await self._fresh(submission, pay_session.invoice_id)
        if invoice.currency != currency:
            await self._deny(viewer, invoice, "currency_changed")
            raise FieldProblem(AMOUNT_FIELD, f"This invoice is now billed in {invoice.currency}. "
                                             "Close this form and press Pay Now again.")
        if amount > invoice.balance:
            await self._deny(viewer, invoice, "amount_exceeds_balance", amount=amount.api_string())
            raise FieldProblem(AMOUNT_FIELD, f"That is more than the balance due of {invoice.balance.format()}.")
        profile = await self._invoices.profile(invoice.billing_profile_id, fresh=True)
        if not profile.stripe_customer_id:
            raise FieldProblem(METHOD_FIELD, "This billing profile has no saved payment methods any more.")

        payment = Payment(
            id=f"pay_{ULID()}", team_id=viewer.team_id, user_id=viewer.user_id, paid_by=viewer.email,
            invoice_id=invoice.id, invoice_number=invoice.number, billing_profile_id=invoice.billing_profile_id,
            billing_profile_name=profile.name, invoice_url=invoice.url, amount_minor=amount.minor,
            currency=currency, method_kind=method["kind"], payment_method_id=submission.method_id,
            payment_method_type=method["type"], method_label=method["short_label"],
            stripe_customer_id=profile.stripe_customer_id, status=PaymentStatus.CREATED.value,
            submission_key=f"{submission.view_id}:{submission.view_hash}", view_id=submission.view_id,
            list_response_url=pay_session.list_response_url, list_query=pay_session.list_query, attempts=0,
        )
        payment = await self._create(payment, viewer)
        if payment.submission_key == f"{submission.view_id}:{submission.view_hash}" and \
                payment.status == PaymentStatus.CREATED:
            await self._recheck_holding_the_slot(payment, viewer, amount)
        await self._audit.record("submit_payment", "accepted", team_id=viewer.team_id, user_id=viewer.user_id,
                                 invoice_id=invoice.id, billing_profile_id=invoice.billing_profile_id,
                                 payment_id=payment.id, amount=amount.api_string(), currency=currency,
                                 method=payment.method_label)
        return payment

    async def _create(self, payment: Payment, viewer: Viewer) -> Payment:
        try:
            return await self._payments.create(payment)
        except DuplicateSubmission as dup:
            return dup.payment
        except PaymentInFlight as busy:
            other = busy.payment
            if other is not None and other.status == PaymentStatus.REQUIRES_ACTION and await self._supersede(other):
                return await self._create(payment, viewer)
            await self._audit.record("submit_payment", "denied", team_id=viewer.team_id, user_id=viewer.user_id,
                                     invoice_id=payment.invoice_id, billing_profile_id=payment.billing_profile_id,
                                     reason="payment_in_progress")
            raise PaymentAlreadyInProgress(other.user_id if other else None) from None

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
                problem = FieldProblem(AMOUNT_FIELD, "The balance changed while you were paying: it is now "
                                                     f"{invoice.balance.format()}.")
        except Exception as exc:  # noqa: BLE001 - no certainty, no charge
            problem = exc
        if problem is None:
            return
        await self._payments.transition(payment.id, [PaymentStatus.CREATED], PaymentStatus.CANCELED,
                                        failure_message="The invoice changed before the card was charged.")
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
        moved = await self._payments.transition(
            waiting.id, [PaymentStatus.REQUIRES_ACTION], PaymentStatus.CANCELED,
            failure_message="Replaced by a new payment attempt before authentication.")
        return moved is not None

    async def _fresh(self, submission: Submission, invoice_id: str) -> tuple[Viewer, Invoice]:
        viewer_task = self._identity.viewer(submission.team_id, submission.user_id, fresh=True)
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
        self._check(viewer, invoice)
        if not invoice.is_payable:
            await self._deny(viewer, invoice, "invoice_not_payable", status=invoice.status)
            raise InvoiceNotPayable(invoice.number, invoice.status)
        return viewer, invoice

    # -- shared checks -------------------------------------------------------------------
    async def _visible_invoice(self, viewer: Viewer, invoice_id: str, *, action: str) -> Invoice:
        try:
            invoice = await self._billing.get_invoice(invoice_id)
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

    async def _session_of(self, team_id: str, user_id: str, session_id: str) -> PaySession:
        pay_session = await self._sessions.get(session_id) if session_id else None
        if pay_session is None or pay_session.user_id != user_id or pay_session.team_id != team_id:
            await self._audit.record("submit_payment", "denied", team_id=team_id, user_id=user_id,
                                     reason="unknown_form_session")
            raise FormExpired()
        return pay_session


def _offered(methods: list[SavedMethod]) -> dict[str, dict[str, str]]:
    return {m.id: {"kind": m.kind, "type": m.type, "short_label": m.short_label} for m in methods}
