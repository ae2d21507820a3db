"""Test data made through the real APIs: Stripe customers and cards in localstripe,
profiles, users and invoices in the sandbox billing API, people in the Slack stand-in.
Every test makes its own, with fresh ids, so tests never share an invoice."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import stripe

from sandbox.slack.client import StandInClient
from sandbox.stripe.seed import add_payment_method
from tests.harness import BILLING_TOKEN, NOTIFY_CHANNEL, STRIPE_KEY, Stack, unique

CARDS = {
    "visa": ("4242424242424242", 12, 2030),
    "mastercard": ("5555555555554444", 6, 2031),
    "declines": ("4000000000000341", 12, 2030),
    "3ds": ("4000002500003155", 12, 2030),
    "expired": ("4242424242424242", 1, 2021),
}


@dataclass
class Profile:
    id: str
    name: str
    currency: str
    customer_id: str | None
    methods: dict[str, str] = field(default_factory=dict)  # label -> payment method id


@dataclass
class Person:
    user_id: str
    email: str | None


class World:
    def __init__(self, stack: Stack, slack: StandInClient, billing: httpx.AsyncClient,
                 stripe_client: stripe.StripeClient) -> None:
        self.stack = stack
        self.slack = slack
        self.billing = billing
        self.stripe = stripe_client

    # -- Stripe ------------------------------------------------------------------------
    async def customer(self, cards: tuple[str, ...], default: str | None) -> tuple[str, dict[str, str]]:
        customer = await self.stripe.v1.customers.create_async(params={"name": unique("Customer ")})
        methods: dict[str, str] = {}
        for label in cards:
            if label not in CARDS:  # a bank account: sepa, sepa_failing, us_bank_account, ...
                methods[label] = await add_payment_method(self.stripe, customer.id, label, name="Acme AP",
                                                          email="ap@acme.example")
                continue
            number, month, year = CARDS[label]
            pm = await self.stripe.v1.payment_methods.create_async(params={
                "type": "card", "card": {"number": number, "exp_month": month, "exp_year": year, "cvc": "123"}})
            await self.stripe.v1.payment_methods.attach_async(pm.id, params={"customer": customer.id})
            methods[label] = pm.id
        if default:
            await self.stripe.v1.customers.update_async(
                customer.id, params={"invoice_settings": {"default_payment_method": methods[default]}})
        return customer.id, methods

    async def add_card(self, profile: Profile, label: str) -> str:
        """Save one more card of `CARDS` for the profile's customer (e.g. the same one twice)."""
        number, month, year = CARDS[label]
        pm = await self.stripe.v1.payment_methods.create_async(params={
            "type": "card", "card": {"number": number, "exp_month": month, "exp_year": year, "cvc": "123"}})
        await self.stripe.v1.payment_methods.attach_async(pm.id, params={"customer": profile.customer_id or ""})
        return pm.id

    async def stripe_checkout_sessions(self, customer_id: str | None) -> list[dict[str, Any]]:
        page = await self.stripe.v1.checkout.sessions.list_async(params={"limit": 100})  # type: ignore[typeddict-item]
        return [cs.to_dict() for cs in page.data if cs.to_dict().get("customer") == customer_id]

    async def intents(self, customer_id: str) -> list[dict[str, Any]]:
        page = await self.stripe.v1.payment_intents.list_async(params={"limit": 100})  # type: ignore[typeddict-item]
        return [pi.to_dict() for pi in page.data if pi.to_dict().get("customer") == customer_id]

    # -- billing -----------------------------------------------------------------------
    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.billing.post(path, json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    async def profile(self, *, currency: str = "EUR", name: str | None = None, cards: tuple[str, ...] = ("visa",),
                      default: str | None = "visa", card_fee: str | None = None,
                      wire: dict[str, Any] | None = None) -> Profile:
        customer_id, methods = (await self.customer(cards, default if default in cards else None)
                                if cards else (None, {}))
        profile_id = unique("bp_")
        name = name or unique("Acme ") + " GmbH"
        await self._post("/_sandbox/billing-profiles", {
            "id": profile_id, "name": name, "currency": currency, "country": "DE",
            "stripe_customer_id": customer_id, "card_fee_percent": card_fee,
            "wire_instructions": wire or {"beneficiary": "Cloud Vendor Ltd", "bank_name": "Example Bank",
                                          "iban": "DE89370400440532013000", "swift": "COBADEFFXXX",
                                          "account_number": None, "routing_number": None,
                                          "reference": "Put the invoice number in the transfer reference"}})
        return Profile(profile_id, name, currency, customer_id, methods)

    async def person(self, profiles: list[Profile], *, permissions: tuple[str, ...] = ("invoice_viewer",),
                     in_billing: bool = True, has_email: bool = True, locale: str | None = None) -> Person:
        user_id = unique("U")
        email = f"{user_id.lower()}@acme.example" if has_email else None
        await self.slack.add_user(user_id, user_id.lower(), email, locale=locale)
        if in_billing and email:
            await self._post("/_sandbox/users", {"email": email, "permissions": list(permissions),
                                                 "billing_profile_ids": [p.id for p in profiles]})
        return Person(user_id, email)

    async def invoice(self, profile: Profile, total: str, *, amount_due: str | None = None, due_in_days: int = 14,
                      number: str | None = None) -> dict[str, Any]:
        today = dt.date.today()
        body: dict[str, Any] = {
            "billing_profile_id": profile.id, "total": total, "amount_due": amount_due or total,
            "issued_on": (today - dt.timedelta(days=30)).isoformat(),
            "due_on": (today + dt.timedelta(days=due_in_days)).isoformat(),
        }
        if number:
            body["number"] = number
        return await self._post("/_sandbox/invoices", body)

    async def bulk_invoices(self, profile: Profile, count: int, total: str = "100.00") -> list[str]:
        data = await self._post("/_sandbox/invoices/bulk", {
            "billing_profile_id": profile.id, "count": count, "total": total,
            "due_on": (dt.date.today() + dt.timedelta(days=1)).isoformat(), "due_every_days": 1})
        return data["ids"]

    async def invoice_now(self, invoice_id: str) -> dict[str, Any]:
        response = await self.billing.get(f"/v1/invoices/{invoice_id}")
        assert response.status_code == 200, response.text
        return response.json()

    async def recorded_payments(self, invoice_id: str) -> list[dict[str, Any]]:
        response = await self.billing.get(f"/_sandbox/invoices/{invoice_id}/payments")
        assert response.status_code == 200, response.text
        return response.json()["data"]

    async def billing_fault(self, path_regex: str, status: int = 503, *, count: int = 1, method: str = "POST",
                            after_processing: bool = False) -> None:
        response = await self.billing.post("/_sandbox/faults", json={
            "method": method, "path_regex": path_regex, "status": status, "count": count,
            "after_processing": after_processing})
        assert response.status_code in (200, 201), response.text

    async def clear_billing_faults(self) -> None:
        await self.billing.delete("/_sandbox/faults")

    async def stripe_fault(self, path_regex: str, mode: str, *, count: int = 1, method: str = "POST",
                           delay_seconds: float | None = None) -> None:
        spec: dict[str, Any] = {"method": method, "path_regex": path_regex, "mode": mode, "count": count}
        if delay_seconds is not None:
            spec["delay_seconds"] = delay_seconds
        async with httpx.AsyncClient(base_url=self.stack.stripe_url) as http:
            response = await http.post("/_faults", json=spec)
            assert response.status_code in (200, 201), response.text

    async def clear_stripe_faults(self) -> None:
        async with httpx.AsyncClient(base_url=self.stack.stripe_url) as http:
            await http.delete("/_faults")

    async def notifications_about(self, invoice_number: str) -> list[dict[str, Any]]:
        return [m for m in await self.channel_messages() if invoice_number in str(m["blocks"])]

    async def set_billing_latency(self, seconds: float) -> None:
        response = await self.billing.put("/_sandbox/config", json={"latency_seconds": seconds})
        assert response.status_code == 200, response.text

    # -- Slack -------------------------------------------------------------------------
    async def channel_messages(self) -> list[dict[str, Any]]:
        """What everyone in the finance channel sees (not the ephemeral replies there)."""
        return [m for m in await self.slack.messages(channel=NOTIFY_CHANNEL) if not m["ephemeral"]]

    async def wait_for_channel_message(self, needle: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for message in await self.channel_messages():
                if needle in message["text"] or needle in str(message["blocks"]):
                    return message
            if time.monotonic() > deadline:
                raise AssertionError(f"no message with {needle!r} in the channel")
            await asyncio.sleep(0.05)


def billing_client(stack: Stack) -> httpx.AsyncClient:
    # Idle connections go before the server's 5 s keep-alive does (no request on a closing one).
    return httpx.AsyncClient(base_url=stack.billing_url, headers={"Authorization": f"Bearer {BILLING_TOKEN}"},
                             timeout=30, limits=httpx.Limits(keepalive_expiry=2.0))


def stripe_client(stack: Stack) -> stripe.StripeClient:
    return stripe.StripeClient(STRIPE_KEY, base_addresses={"api": stack.stripe_url},
                               http_client=stripe.HTTPXClient(), max_network_retries=0)
