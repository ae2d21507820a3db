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
    fingerprint: str | None = None  # the same card saved twice has the same one
    created: int = 0

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
    """Stripe refused the request itself (not a decline): a bug or a configuration error.

    `http_status` and `code` are Stripe's. A refusal is `permanent` when asking again
    cannot answer differently: the request itself is wrong (400, or 404 for a missing
    object). A 401/403 (the key or its permissions) or a 409 (the idempotency key in use
    by a request still running) may pass once someone fixes the setup, or by itself."""

    def __init__(self, message: str, *, http_status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code

    @property
    def permanent(self) -> bool:
        return self.http_status in (400, 402, 404)


def make_client(api_key: str, api_base: str, *, max_network_retries: int = 2, timeout: float = 20.0,
                http_client: stripe.HTTPXClient | None = None) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base.rstrip("/")},
        http_client=http_client or stripe.HTTPXClient(timeout=timeout),
        max_network_retries=max_network_retries,
    )


class StripeGateway:
    def __init__(self, client: stripe.StripeClient, http_client: stripe.HTTPXClient | None = None) -> None:
        self._client = client
        self._http = http_client

    @classmethod
    def connect(cls, api_key: str, api_base: str) -> StripeGateway:
        """The app's gateway: one pooled httpx client (keep-alive connections) for the life
        of the process, closed by `aclose`."""
        http = stripe.HTTPXClient(timeout=20.0)
        return cls(make_client(api_key, api_base, http_client=http), http)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close_async()

    async def saved_methods(self, customer_id: str) -> SavedMethods:
        """The customer's cards and bank accounts, each offered once (a card saved twice has
        one fingerprint: the default, or else the newest copy, stands for it)."""
        try:
            # The customer (for its default method) and one list of every type, side by side.
            customer, page = await asyncio.gather(
                self._client.v1.customers.retrieve_async(customer_id),
                self._client.v1.customers.payment_methods.list_async(
                    customer_id, params={"limit": 100}))  # type: ignore[typeddict-item]
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        default = (customer.to_dict().get("invoice_settings") or {}).get("default_payment_method")
        if isinstance(default, dict):
            default = default.get("id")
        methods = [m for pm in page.data if (m := _saved_method(pm.to_dict())) is not None]
        return SavedMethods(_once_per_fingerprint(methods, default), default)

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

    async def create_intent(self, *, stripe_amount: int, currency: str, customer_id: str, payment_method_id: str,
                            payment_method_type: str, metadata: dict[str, str], idempotency_key: str) -> IntentResult:
        try:
            intent = await self._client.v1.payment_intents.create_async(
                params={
                    "amount": stripe_amount, "currency": currency.lower(), "customer": customer_id,
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

    async def authentication_url(self, intent_id: str, *, payment_method_id: str, return_url: str,
                                 idempotency_key: str) -> str | None:
        """Stripe's own page where the cardholder finishes 3-D Secure for this intent, or None
        when the intent is past needing it.

        Off-session, Stripe answers `authentication_required` and leaves the intent waiting
        for a payment method: confirming it on-session with a `return_url` gives the
        redirect. (The local fake Stripe leaves it in `requires_action`: confirming that with
        a `return_url` gives the same redirect; see sandbox/stripe.)
        """
        try:
            intent = (await self._client.v1.payment_intents.retrieve_async(intent_id)).to_dict()
            redirect = _redirect_url(intent)
            if redirect:
                return redirect
            if intent.get("status") not in ("requires_payment_method", "requires_confirmation", "requires_action"):
                return None
            params: dict[str, Any] = {"return_url": return_url}
            if intent.get("status") == "requires_payment_method":
                params["payment_method"] = payment_method_id
            confirmed = await self._client.v1.payment_intents.confirm_async(
                intent_id, params=params, options={"idempotency_key": idempotency_key})  # type: ignore[arg-type]
        except stripe.CardError:
            return None  # declined outright: the webhook tells the payment so
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return _redirect_url(confirmed.to_dict())

    async def retrieve_intent(self, intent_id: str) -> IntentResult:
        try:
            return _result(await self._client.v1.payment_intents.retrieve_async(intent_id))
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    async def refund_intent(self, intent_id: str, *, idempotency_key: str) -> str:
        """Refund a succeeded PaymentIntent in full; returns the refund's id. The same key
        gives the same refund, so an operator running it twice refunds once."""
        try:
            refund = await self._client.v1.refunds.create_async(
                params={"payment_intent": intent_id}, options={"idempotency_key": idempotency_key})
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return str(refund.id)

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
    fingerprint = details.get("fingerprint") if isinstance(details.get("fingerprint"), str) else None
    created = pm.get("created") if isinstance(pm.get("created"), int) else 0
    if pm_type == "card":
        brand = _BRANDS.get(str(details.get("brand", "")).lower(), str(details.get("brand") or "Card").title())
        return SavedMethod(pm["id"], "card", brand, str(details.get("last4", "????")),
                           details.get("exp_month"), details.get("exp_year"), fingerprint, created)
    if pm_type in BANK_DEBIT_TYPES:
        bank = details.get("bank_name") or {"sepa_debit": "SEPA account", "bacs_debit": "Bacs account"}.get(
            pm_type, "Bank account")
        return SavedMethod(pm["id"], pm_type, str(bank), str(details.get("last4", "????")),
                           fingerprint=fingerprint, created=created)
    return None


def _once_per_fingerprint(methods: list[SavedMethod], default_id: str | None) -> list[SavedMethod]:
    """One entry per saved card or account. Copies with the same fingerprint (and expiry,
    for cards: a renewed card is a new choice) collapse to the default, else the newest."""
    chosen: dict[tuple[object, ...], SavedMethod] = {}
    order: list[tuple[object, ...]] = []
    for method in methods:
        key: tuple[object, ...] = ((method.type, method.fingerprint, method.exp_month, method.exp_year)
                                   if method.fingerprint else (method.id,))
        if key not in chosen:
            chosen[key] = method
            order.append(key)
            continue
        kept = chosen[key]
        if kept.id != default_id and (method.id == default_id or method.created > kept.created):
            chosen[key] = method
    return [chosen[key] for key in order]


def _redirect_url(intent: dict[str, Any]) -> str | None:
    action = intent.get("next_action") or {}
    if intent.get("status") != "requires_action" or action.get("type") != "redirect_to_url":
        return None
    url = (action.get("redirect_to_url") or {}).get("url")
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


def _result(obj: Any) -> IntentResult:
    return intent_result(obj.to_dict())


def intent_result(intent: dict[str, Any]) -> IntentResult:
    """Where a PaymentIntent (as Stripe sends it, e.g. in a webhook) stands, for us."""
    status = intent.get("status")
    if status == "requires_payment_method":
        error = intent.get("last_payment_error") or {}
        if isinstance(error, dict) and error.get("code") == "authentication_required":
            return IntentResult(intent["id"], "requires_action", error.get("message"))
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
    return StripeRejected(f"{type(exc).__name__}: {exc.user_message or exc.code or exc.http_status}",
                          http_status=exc.http_status, code=exc.code)
