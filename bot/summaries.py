"""What the Slack side is shown of a payment: a small frozen view model built from the
row, so the Block Kit builders (`blocks/`) never see the ORM."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from storage.models import Payment, PaymentStatus

__all__ = ["PaymentStatus", "PaymentSummary", "payment_summary"]


@dataclass(frozen=True, slots=True)
class PaymentSummary:
    id: str
    team_id: str
    user_id: str
    invoice_id: str
    invoice_number: str
    invoice_url: str | None
    billing_profile_id: str
    billing_profile_name: str
    amount_minor: int
    currency: str
    method_label: str  # brand and last 4 only
    payment_method_id: str
    status: PaymentStatus
    attempts: int
    created_at: dt.datetime
    failure_message: str | None = None
    invoice_status_after: str | None = None
    balance_after_minor: int | None = None
    card_fee_minor: int | None = None
    stripe_payment_intent_id: str | None = None
    attention_step: str | None = None  # in needs_attention: the step that was refused
    locale: str | None = None
    approved_by: str | None = None  # above an approval threshold: who said yes


def payment_summary(payment: Payment) -> PaymentSummary:
    return PaymentSummary(
        id=payment.id, team_id=payment.team_id, user_id=payment.user_id, invoice_id=payment.invoice_id,
        invoice_number=payment.invoice_number, invoice_url=payment.invoice_url,
        billing_profile_id=payment.billing_profile_id, billing_profile_name=payment.billing_profile_name,
        approved_by=payment.approved_by,
        amount_minor=payment.amount_minor, currency=payment.currency, method_label=payment.method_label,
        payment_method_id=payment.payment_method_id, status=PaymentStatus(payment.status),
        attempts=payment.attempts or 0, created_at=payment.created_at, failure_message=payment.failure_message,
        invoice_status_after=payment.invoice_status_after, balance_after_minor=payment.balance_after_minor,
        card_fee_minor=payment.card_fee_minor, stripe_payment_intent_id=payment.stripe_payment_intent_id,
        attention_step=payment.attention_step, locale=payment.locale)
