"""Benchmark data made through the sandboxes' own APIs (as tests/e2e/world.py does):
Stripe customers with a saved card in localstripe, billing profiles, finance users and
invoices in the billing sandbox, the same people in the Slack stand-in.

Every run gets its own users, and every Pay Now its own invoice, so no two requests
share a modal or an invoice (a burst of different finance people, as at month-end)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import stripe

from bench.stack import BILLING_TOKEN, STRIPE_KEY, Sandboxes

T = TypeVar("T")

WIRE = {"beneficiary": "Cloud Vendor Ltd", "bank_name": "Example Bank", "iban": "DE89370400440532013000",
        "swift": "COBADEFFXXX", "account_number": None, "routing_number": None,
        "reference": "Put the invoice number in the transfer reference"}


async def gather_limited(coros: Iterable[Awaitable[T]], limit: int = 16) -> list[T]:
    gate = asyncio.Semaphore(limit)

    async def one(coro: Awaitable[T]) -> T:
        async with gate:
            return await coro

    return list(await asyncio.gather(*(one(c) for c in coros)))


@dataclass(frozen=True)
class BenchUser:
    user_id: str
    user_name: str
    email: str

    def item(self, **extra: Any) -> dict[str, Any]:
        return {"user_id": self.user_id, "user_name": self.user_name, **extra}


class BenchWorld:
    def __init__(self, sandboxes: Sandboxes) -> None:
        self.sandboxes = sandboxes
        self.billing = httpx.AsyncClient(base_url=sandboxes.billing_url, timeout=120,
                                         headers={"Authorization": f"Bearer {BILLING_TOKEN}"})
        self.slack = httpx.AsyncClient(base_url=sandboxes.slack_url, timeout=120)
        self.stripe = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": sandboxes.stripe_url},
                                          http_client=stripe.HTTPXClient(), max_network_retries=0)
        self._ids = itertools.count(1)

    async def aclose(self) -> None:
        await self.billing.aclose()
        await self.slack.aclose()

    def _next(self) -> int:
        return next(self._ids)

    async def _ok(self, response_future: Awaitable[httpx.Response]) -> dict[str, Any]:
        response = await response_future
        if response.status_code >= 300:
            raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} "
                               f"{response.text[:300]}")
        return response.json()

    # -- knobs -------------------------------------------------------------------------
    async def set_billing_latency(self, seconds: float) -> None:
        await self._ok(self.billing.put("/_sandbox/config", json={"latency_seconds": seconds}))

    # -- Stripe --------------------------------------------------------------------------
    async def customer_with_card(self) -> str:
        customer = await self.stripe.v1.customers.create_async(params={"name": f"Bench customer {self._next()}"})
        pm = await self.stripe.v1.payment_methods.create_async(params={
            "type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}})
        await self.stripe.v1.payment_methods.attach_async(pm.id, params={"customer": customer.id})
        await self.stripe.v1.customers.update_async(
            customer.id, params={"invoice_settings": {"default_payment_method": pm.id}})
        return customer.id

    # -- billing -------------------------------------------------------------------------
    async def profiles(self, count: int, *, prefix: str, customer_ids: list[str] | None = None) -> list[str]:
        ids = [f"bp_{prefix}_{self._next():05d}" for _ in range(count)]
        await gather_limited(self._ok(self.billing.post("/_sandbox/billing-profiles", json={
            "id": pid, "name": f"Acme {prefix.title()} {n} GmbH", "currency": "EUR", "country": "DE",
            "stripe_customer_id": customer_ids[n % len(customer_ids)] if customer_ids else None,
            "card_fee_percent": None, "wire_instructions": WIRE})) for n, pid in enumerate(ids))
        return ids

    async def bulk_invoices(self, profile_id: str, count: int, total: str = "100.00") -> list[str]:
        if count <= 0:
            return []
        data = await self._ok(self.billing.post("/_sandbox/invoices/bulk", json={
            "billing_profile_id": profile_id, "count": count, "total": total,
            "due_on": (dt.date.today() + dt.timedelta(days=14)).isoformat(), "due_every_days": 0}))
        return list(data["ids"])

    async def recorded_payments(self, invoice_id: str) -> list[dict[str, Any]]:
        return list((await self._ok(self.billing.get(f"/_sandbox/invoices/{invoice_id}/payments")))["data"])

    # -- people --------------------------------------------------------------------------
    async def users(self, count: int, profile_ids: list[list[str]] | list[str], *,
                    slack_only: bool = False) -> list[BenchUser]:
        """`count` finance users (invoice viewers) in Slack and in billing; user n sees
        profile_ids[n % len] (a profile id or a list of them)."""
        made = []
        for n in range(count):
            seq = self._next()
            made.append((BenchUser(f"UB{seq:06d}", f"bench.user{seq}", f"bench.user{seq}@acme.example"),
                         profile_ids[n % len(profile_ids)]))

        async def one(user: BenchUser, profiles: list[str] | str) -> None:
            await self._ok(self.slack.post("/_standin/users", json={
                "id": user.user_id, "name": user.user_name, "email": user.email}))
            if slack_only:
                return
            await self._ok(self.billing.post("/_sandbox/users", json={
                "email": user.email, "permissions": ["invoice_viewer"],
                "billing_profile_ids": [profiles] if isinstance(profiles, str) else list(profiles)}))

        await gather_limited((one(user, profiles) for user, profiles in made), limit=16)
        return [user for user, _ in made]

    async def invoice_per_user(self, users: list[BenchUser], profile_of: dict[str, str]) -> dict[str, str]:
        """One fresh invoice for each user on that user's profile: user id -> invoice id."""
        by_profile: dict[str, list[BenchUser]] = {}
        for user in users:
            by_profile.setdefault(profile_of[user.user_id], []).append(user)
        out: dict[str, str] = {}

        async def one(profile_id: str, members: list[BenchUser]) -> None:
            ids = await self.bulk_invoices(profile_id, len(members))
            out.update({user.user_id: invoice_id for user, invoice_id in zip(members, ids, strict=True)})

        await gather_limited((one(pid, members) for pid, members in by_profile.items()), limit=8)
        return out

    # -- the stand-in ----------------------------------------------------------------------
    async def calls(self, method: str, since: int = 0) -> list[dict[str, Any]]:
        return list((await self._ok(self.slack.get("/_standin/calls", params={"method": method, "since": since})))
                    ["calls"])

    async def last_seq(self) -> int:
        """The stand-in's current sequence number: calls recorded from now on have a higher one.

        Seq numbers are shared by calls, views, messages and triggers, and a minted trigger
        carries its own in its id ("<seq>.<time>.<random>"), so minting one (for the seeded
        U_FINANCE, never used) reads the counter in one cheap request."""
        minted = await self._ok(self.slack.post("/_standin/triggers", json={"user_id": "U_FINANCE"}))
        return int(minted["triggers"][0]["trigger_id"].split(".", 1)[0])

    async def view(self, view_id: str) -> dict[str, Any]:
        return await self._ok(self.slack.get(f"/_standin/views/{view_id}"))


class CallWatcher:
    """Follows one Web API method's recorded calls at the stand-in, incrementally."""

    def __init__(self, world: BenchWorld, method: str, since: int) -> None:
        self.world = world
        self.method = method
        self.since = since
        self.calls: list[dict[str, Any]] = []

    async def poll(self) -> list[dict[str, Any]]:
        fresh = await self.world.calls(self.method, self.since)
        if fresh:
            self.since = max(int(c["seq"]) for c in fresh)
            self.calls.extend(fresh)
        return fresh
