"""Ports: what the payment core needs from the world outside it, as `typing.Protocol`s.

The processor, the reconciler, the webhooks, the operator's resolutions and the payment
service are written against these, not against the HTTP clients. The real adapters
satisfy them structurally (no inheritance): `bot.billing.BillingClient` is a `BillingApi`,
`bot.stripe_gateway.StripeGateway` is a `StripePayments`, `bot.clock.SystemClock` is a
`Clock`, and the Slack side's payment events adapter is a `PaymentNotifier`. The unit
tests drive the same code with the in-memory fakes in `tests/fakes.py`.

Errors are part of each port's contract: the billing port raises `bot.billing.BillingError`
(`.transient` says whether a retry may answer differently; `BillingNotFound` for a 404),
the Stripe port raises `bot.stripe_gateway.StripeUnavailable` (no answer: the call may or may
not have happened, retry with the same idempotency key) or `StripeRejected` (Stripe refused;
nothing happened). A card decline is not an error: it is an `IntentResult` with status
"declined".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from bot.clock import Clock

if TYPE_CHECKING:
    from bot.billing import Invoice, PaymentRecord, RecordedPayment
    from bot.stripe_gateway import IntentResult, SavedMethods
    from storage.models import OutboxMessage, Payment

__all__ = ["BillingApi", "Clock", "PaymentIntents", "PaymentNotifier", "StripePayments"]


class BillingApi(Protocol):
    """The billing API, as far as paying an invoice goes (docs/billing-api.md)."""

    async def get_invoice(self, invoice_id: str) -> Invoice:
        """The invoice as it stands now (its balance, status and currency)."""
        ...

    async def record_payment(self, invoice_id: str, record: PaymentRecord) -> RecordedPayment:
        """Record a charge against the invoice. Idempotent on `record.payment_id`: posting
        the same id again returns the first result."""
        ...

    async def settle_payment(self, invoice_id: str, payment_id: str, *, succeeded: bool,
                             failure_reason: str | None = None) -> RecordedPayment:
        """Settle a payment recorded as processing (a bank debit): it cleared, or it failed
        and the balance is due again."""
        ...


class PaymentIntents(Protocol):
    """Stripe's PaymentIntents: what moves money. Every call that can charge or refund
    carries an idempotency key derived from the payment row (`<payment>-create`, ...)."""

    async def create_intent(self, *, stripe_amount: int, currency: str, customer_id: str, payment_method_id: str,
                            payment_method_type: str, metadata: dict[str, str],
                            idempotency_key: str) -> IntentResult:
        """Create (never confirm) a PaymentIntent; no money moves yet."""
        ...

    async def confirm_intent(self, intent_id: str, *, idempotency_key: str) -> IntentResult:
        """Confirm off-session: succeeded, processing (bank debit), requires_action
        (3-D Secure) or declined."""
        ...

    async def retrieve_intent(self, intent_id: str) -> IntentResult:
        """Where the intent stands now (used after a crash, a timeout or a missed webhook)."""
        ...

    async def cancel_intent(self, intent_id: str) -> IntentResult:
        """Cancel an intent that was not completed (a 3-D Secure attempt given up)."""
        ...

    async def refund_intent(self, intent_id: str, *, idempotency_key: str) -> str:
        """Refund a succeeded intent in full; the refund's id. Same key, same refund."""
        ...


class StripePayments(PaymentIntents, Protocol):
    """All the payment service needs from Stripe: the intents, the saved methods, the
    hosted pages (add a card, 3-D Secure)."""

    async def saved_methods(self, customer_id: str) -> SavedMethods:
        ...

    async def create_setup_session(self, customer_id: str, *, currency: str, success_url: str, cancel_url: str,
                                   metadata: dict[str, str]) -> str:
        ...

    async def authentication_url(self, intent_id: str, *, payment_method_id: str, return_url: str,
                                 idempotency_key: str) -> str | None:
        ...


class PaymentNotifier(Protocol):
    """Tell people about a payment (wired to Slack by the app; a recorder in the tests).

    `notices` and `direct` only *build* outbox messages: the processor writes them in the
    same transaction as the move they announce, so a move and its word are never separated.
    `changed` is the best-effort live update (the open modal, the list message, the Home
    tab) after the move was committed; its failure never undoes a payment."""

    async def notices(self, payment: Payment, event: str) -> list[OutboxMessage]:
        """Channel notices for `event` ("paid", "processing", "settled", "debit_failed",
        "failed", "attention", "refunded")."""
        ...

    async def changed(self, payment: Payment, *, update_modal: bool) -> None:
        ...

    async def direct(self, payment: Payment) -> list[OutboxMessage]:
        """The payer's direct message about where `payment` now stands (deduplicated by
        `<payment>:dm:<status>`)."""
        ...
