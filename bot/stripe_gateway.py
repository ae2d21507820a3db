"""Stripe, as the bot needs it: saved payment methods, a hosted page to add a card, and
PaymentIntents created, stored, then confirmed off-session with idempotency keys.

One `StripeClient` (httpx, async, with stripe-python's own network retries) per app.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Literal

import stripe

log = logging.getLogger(__name__)

BANK_DEBIT_TYPES = ("us_bank_account", "sepa_debit", "bacs_debit")
LISTED_TYPES = ("card", *BANK_DEBIT_TYPES)

_BRANDS = {
    "visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "discover": "Discover",
    "diners": "Diners Club", "jcb": "JCB", "unionpay": "UnionPay", "cartes_bancaires": "Cartes Bancaires",
}


@dataclass(frozen=True, slots=True)
class SavedMethod:
    id: str
    type: str
    brand: str  # "Visa", or the bank's name for a bank account
    last4: str
    exp_month: int | None = None
    exp_year: int | None = None

    @property
    def kind(self) -> Literal["card", "bank_debit"]:
        return "card" if self.type == "card" else "bank_debit"

    @property
    def short_label(self) -> str:
        """Brand and last 4 only: what may appear in messages and logs."""
        return f"{self.brand} •••• {self.last4}"

    @property
    def label(self) -> str:
        if self.type == "card" and self.exp_month and self.exp_year:
            return f"{self.short_label}, expires {self.exp_month:02d}/{self.exp_year % 100:02d}"
        if self.kind == "bank_debit":
            return f"{self.short_label} (bank debit)"
        return self.short_label

    def is_expired(self, today: dt.date) -> bool:
        if self.type != "card" or not self.exp_year or not self.exp_month:
            return False
        return (self.exp_year, self.exp_month) < (today.year, today.month)


@dataclass(frozen=True, slots=True)
class SavedMethods:
    methods: list[SavedMethod]
    default_id: str | None


IntentStatus = Literal["succeeded", "processing", "requires_action", "declined", "canceled", "requires_confirmation"]


@dataclass(frozen=True, slots=True)
class IntentResult:
    id: str
    status: IntentStatus
    message: str | None = None  # Stripe's plain-words reason for a decline


class StripeUnavailable(Exception):
    """Stripe did not answer (timeout, connection reset, 5xx after retries)."""


class StripeRejected(Exception):
    """Stripe refused the request itself (not a decline): a bug or a configuration error."""


def make_client(api_key: str, api_base: str, *, max_network_retries: int = 2, timeout: float = 20.0) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base.rstrip("/")},
        http_client=stripe.HTTPXClient(timeout=timeout),
        max_network_retries=max_network_retries,
    )


class StripeGateway:
    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client

    async def saved_methods(self, customer_id: str) -> SavedMethods:
        async def of_type(pm_type: str) -> list[SavedMethod]:
            try:
                page = await self._client.v1.payment_methods.list_async(
                    params={"customer": customer_id, "type": pm_type, "limit": 100})  # type: ignore[typeddict-item]
            except stripe.InvalidRequestError:
                return []  # a type this account (or stand-in) does not offer
            return [m for pm in page.data if (m := _saved_method(pm.to_dict())) is not None]

        try:
            # The customer (for its default method) and each type's list, side by side.
            customer, *lists = await asyncio.gather(
                self._client.v1.customers.retrieve_async(customer_id), *(of_type(t) for t in LISTED_TYPES))
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        default = (customer.to_dict().get("invoice_settings") or {}).get("default_payment_method")
        if isinstance(default, dict):
            default = default.get("id")
        return SavedMethods([m for methods in lists for m in methods], default)

    async def create_setup_session(self, customer_id: str, *, currency: str, success_url: str, cancel_url: str,
                                   metadata: dict[str, str]) -> str:
        """A Stripe-hosted page where the user saves a new card: no card number touches us."""
        try:
            session = await self._client.v1.checkout.sessions.create_async(params={
                "mode": "setup", "customer": customer_id, "currency": currency.lower(),
                "payment_method_types": ["card"], "success_url": success_url, "cancel_url": cancel_url,
                "metadata": metadata,
            })
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return str(session.url)

    async def create_intent(self, *, amount_minor: int, currency: str, customer_id: str, payment_method_id: str,
                            payment_method_type: str, metadata: dict[str, str], idempotency_key: str) -> IntentResult:
        try:
            intent = await self._client.v1.payment_intents.create_async(
                params={
                    "amount": amount_minor, "currency": currency.lower(), "customer": customer_id,
                    "payment_method": payment_method_id, "payment_method_types": [payment_method_type],
                    "metadata": metadata,
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return _result(intent)

    async def confirm_intent(self, intent_id: str, *, idempotency_key: str) -> IntentResult:
        try:
            intent = await self._client.v1.payment_intents.confirm_async(
                intent_id, params={"off_session": True}, options={"idempotency_key": idempotency_key})
        except stripe.CardError as exc:
            if exc.code == "authentication_required":
                return IntentResult(intent_id, "requires_action", exc.user_message or str(exc.user_message))
            return IntentResult(intent_id, "declined", _decline_message(exc))
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return _result(intent)

    async def retrieve_intent(self, intent_id: str) -> IntentResult:
        try:
            return _result(await self._client.v1.payment_intents.retrieve_async(intent_id))
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    async def cancel_intent(self, intent_id: str) -> IntentResult:
        try:
            return _result(await self._client.v1.payment_intents.cancel_async(intent_id))
        except stripe.InvalidRequestError:
            return await self.retrieve_intent(intent_id)  # already past cancelling: tell what it is
        except stripe.StripeError as exc:
            raise _translate(exc) from exc


def _saved_method(pm: dict[str, Any]) -> SavedMethod | None:
    pm_type = pm.get("type")
    details = pm.get(pm_type) or {}
    if pm_type == "card":
        brand = _BRANDS.get(str(details.get("brand", "")).lower(), str(details.get("brand") or "Card").title())
        return SavedMethod(pm["id"], "card", brand, str(details.get("last4", "????")),
                           details.get("exp_month"), details.get("exp_year"))
    if pm_type in BANK_DEBIT_TYPES:
        bank = details.get("bank_name") or {"sepa_debit": "SEPA account", "bacs_debit": "Bacs account"}.get(
            pm_type, "Bank account")
        return SavedMethod(pm["id"], pm_type, str(bank), str(details.get("last4", "????")))
    return None


def _result(obj: Any) -> IntentResult:
    return intent_result(obj.to_dict())


def intent_result(intent: dict[str, Any]) -> IntentResult:
    """Where a PaymentIntent (as Stripe sends it, e.g. in a webhook) stands, for us."""
    status = intent.get("status")
    if status == "requires_payment_method":
        error = intent.get("last_payment_error") or {}
        if error:
            return IntentResult(intent["id"], "declined", error.get("message") or "The payment was declined.")
        return IntentResult(intent["id"], "requires_confirmation")
    if status in ("succeeded", "processing", "requires_action", "canceled", "requires_confirmation"):
        return IntentResult(intent["id"], status)
    return IntentResult(intent["id"], "requires_confirmation")


def _decline_message(exc: stripe.CardError) -> str:
    message = exc.user_message or (exc.error.message if exc.error else None)
    return str(message or "The card was declined.")


def _translate(exc: stripe.StripeError) -> Exception:
    if isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)) or (
        exc.http_status is not None and exc.http_status >= 500
    ) or (isinstance(exc, stripe.APIError)):
        return StripeUnavailable(type(exc).__name__)
    return StripeRejected(f"{type(exc).__name__}: {exc.user_message or exc.code or exc.http_status}")
