"""What an operator does to a payment the product cannot finish alone: one that was
charged but that the billing API refused to record (`needs_attention`). (The outbox's
operator verbs are in `bot/operator.py`.)

`invoicebot payments resolve <id> --refund | --record | --cancel` calls `resolve` (`--cancel`
only for a confirm Stripe refused: its intent canceled, the payment failed, nothing charged); the CLI framework
only parses arguments and prints the answer. `resolve_payment` is the same decision with
its dependencies named (the processor, the payments, the audit log, Stripe's port), so the
unit tests run it against fakes.
"""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass
from typing import Literal, Protocol

from bot.billing import BillingError
from bot.ports import PaymentIntents
from bot.processor import PaymentProcessor
from bot.stripe_gateway import StripeRejected, StripeUnavailable
from storage.audit import AuditLog
from storage.models import PaymentStatus
from storage.payments import PaymentRepository


class Services(Protocol):
    """What a resolution uses (the app built by handlers/app.py has them)."""

    payments_repo: PaymentRepository
    audit: AuditLog
    stripe: PaymentIntents
    processor: PaymentProcessor


log = logging.getLogger(__name__)

Resolution = Literal["refund", "record", "cancel"]


class OperatorError(Exception):
    """The resolution could not be done (wrong state, Stripe or billing refused); nothing changed."""


@dataclass(frozen=True, slots=True)
class Resolved:
    payment_id: str
    before: str
    after: str
    message: str


def operator_name(given: str | None = None) -> str:
    """Who resolves: `--by`, or the operating-system user running the command."""
    if given:
        return given[:32]
    try:
        return getpass.getuser()[:32]
    except Exception:  # noqa: BLE001 - no user name in this environment
        return "unknown-operator"


async def resolve(services: Services, payment_id: str, how: Resolution, *, by: str) -> Resolved:
    return await resolve_payment(payment_id, how, by=by, payments=services.payments_repo,
                                 processor=services.processor, stripe=services.stripe, audit=services.audit)


async def resolve_payment(payment_id: str, how: Resolution, *, by: str, payments: PaymentRepository,
                          processor: PaymentProcessor, stripe: PaymentIntents, audit: AuditLog) -> Resolved:
    """The payment's move itself (and its `payment_result` row) is the processor's; this
    audits the operator's request (`resolve_payment`) and refuses what cannot be done."""
    payment = await payments.get(payment_id)
    if payment is None:
        raise OperatorError(f"no payment {payment_id}")
    before = payment.status
    done = {"refund": PaymentStatus.REFUNDED, "record": PaymentStatus.RECORDED, "cancel": PaymentStatus.FAILED}[how]
    if before == done:
        # Run twice: the first run did it; nothing is sent to Stripe or billing again.
        return Resolved(payment.id, before, before, f"{payment.id} is already {before}; nothing to do")
    if before != PaymentStatus.NEEDS_ATTENTION:
        raise OperatorError(f"{payment.id} is {before}, not needs_attention; only a payment that needs "
                            "attention can be resolved")

    async def audited(outcome: str, **detail: str) -> None:
        await audit.record("resolve_payment", outcome, team_id=payment.team_id, user_id=by,
                                    invoice_id=payment.invoice_id, billing_profile_id=payment.billing_profile_id,
                                    payment_id=payment.id, how=how, by=by, payer=payment.user_id, **detail)

    refused_confirm = payment.attention_step == "confirm"
    if how == "cancel" and not refused_confirm:
        raise OperatorError(f"{payment.id}: only a payment whose confirm Stripe refused can be canceled "
                            "(this one was charged); use --record or --refund")
    if how == "refund" and refused_confirm and payment.stripe_payment_intent_id and (
            await stripe.retrieve_intent(payment.stripe_payment_intent_id)).status != "succeeded":
        # Stripe refused the confirm and shows no charge: there is nothing to give back.
        await audited("failed", reason="nothing charged")
        raise OperatorError(f"{payment.id}: Stripe shows nothing charged for this payment, so there is nothing "
                            "to refund; use --cancel to end it, or --record to try the confirm again")
    if how == "refund" and payment.method_kind == "bank_debit" and payment.stripe_payment_intent_id and (
            await stripe.retrieve_intent(payment.stripe_payment_intent_id)).status == "processing":
        # Stripe cannot refund a bank debit that has not cleared yet.
        await audited("failed", reason="bank debit still processing")
        raise OperatorError(f"{payment.id}: the bank debit has not cleared yet, so Stripe cannot refund it; "
                            "run this again once it has cleared, or use --record")
    try:
        if how == "refund":
            after = await processor.resolve_refund(payment, by=by)
        elif how == "cancel":
            after = await processor.resolve_cancel(payment, by=by)
        else:
            after = await processor.resolve_record(payment, by=by)
    except (StripeRejected, StripeUnavailable, BillingError) as exc:
        reason = exc.message if isinstance(exc, BillingError) else str(exc)
        await audited("failed", reason=reason)
        raise OperatorError(f"{payment.id}: {how} failed, nothing changed: {reason}") from None
    await audited(after.status, reason=after.failure_message or "")
    if after.status == PaymentStatus.NEEDS_ATTENTION:
        message = f"{payment.id}: still needs attention: {after.failure_message}"
    else:
        message = f"{payment.id}: {before} -> {after.status}"
    return Resolved(payment.id, before, after.status, message)
