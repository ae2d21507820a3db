"""Seed the fake Stripe: one customer per billing profile, with the standard test methods.

Everything goes through the ordinary Stripe API (stripe-python `StripeClient`, async
methods), so it works against `sandbox.stripe` and, except for the expired card (real
Stripe refuses a past expiry), against a real Stripe *test* account.  Creating
PaymentMethods from raw card numbers is what a Stripe test setup does; it is fine in the
sandbox only -- in the product, card numbers are typed on Stripe's hosted page.

Each customer gets (labels -> PaymentMethod ids in `SeededCustomer.payment_methods`):

    visa         4242 4242 4242 4242   succeeds; the customer's invoice_settings default
    mastercard   5555 5555 5555 4444   succeeds (brand "mastercard")
    expired      4000 0566 5566 5556   exp 01/2021: declined with `expired_card` when charged
    declined     4000 0000 0000 0341   attaches, declined (`card_declined`) when charged
    3ds          4000 0025 0000 3155   confirming needs 3-D Secure (`requires_action`)
    sepa         IBAN DE89 3704 0044 0532 0130 00   `processing`, then `succeeded`

and, on request (`include=` or `add_payment_method()`):

    sepa_failing              IBAN DE62 3704 0044 0532 0130 01   `processing`, then fails
    us_bank_account           ACH 110000000 / 000123456789       `processing`, then succeeds
    us_bank_account_failing   ACH 110000000 / 000222222227       fails: insufficient_funds

Seeding is idempotent: a profile's customer is found again by its email
(`<profile>@sandbox.invoicebot.test`) and only missing labels are added (each
PaymentMethod carries `metadata.sandbox_label`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import stripe

__all__ = [
    "BANK_ACCOUNTS",
    "CARDS",
    "DEFAULT_LABELS",
    "OPTIONAL_LABELS",
    "SeededCustomer",
    "add_payment_method",
    "customer_email",
    "seed_customer",
    "seed_customers",
]

LABEL_METADATA_KEY = "sandbox_label"
PROFILE_METADATA_KEY = "billing_profile_id"


@dataclass(frozen=True)
class CardFixture:
    number: str
    description: str
    exp_month: int = 12
    exp_year: int | None = None  # None: five years from now


@dataclass(frozen=True)
class BankFixture:
    type: str  # "sepa_debit" | "us_bank_account"
    details: Mapping[str, str]
    description: str


CARDS: Mapping[str, CardFixture] = {
    "visa": CardFixture("4242424242424242", "Visa, succeeds (default)"),
    "mastercard": CardFixture("5555555555554444", "Mastercard, succeeds"),
    "expired": CardFixture("4000056655665556", "Visa debit, expired 01/2021", exp_month=1, exp_year=2021),
    "declined": CardFixture("4000000000000341", "Visa, declined when charged"),
    "3ds": CardFixture("4000002500003155", "Visa, requires 3-D Secure"),
}

BANK_ACCOUNTS: Mapping[str, BankFixture] = {
    "sepa": BankFixture("sepa_debit", {"iban": "DE89370400440532013000"}, "SEPA Direct Debit, succeeds"),
    "sepa_failing": BankFixture("sepa_debit", {"iban": "DE62370400440532013001"}, "SEPA Direct Debit, fails"),
    "us_bank_account": BankFixture(
        "us_bank_account",
        {
            "account_holder_type": "company",
            "account_type": "checking",
            "routing_number": "110000000",
            "account_number": "000123456789",
        },
        "ACH Direct Debit, succeeds",
    ),
    "us_bank_account_failing": BankFixture(
        "us_bank_account",
        {
            "account_holder_type": "company",
            "account_type": "checking",
            "routing_number": "110000000",
            "account_number": "000222222227",
        },
        "ACH Direct Debit, fails (insufficient_funds)",
    ),
}

DEFAULT_LABELS: tuple[str, ...] = ("visa", "mastercard", "expired", "declined", "3ds", "sepa")
OPTIONAL_LABELS: tuple[str, ...] = ("sepa_failing", "us_bank_account", "us_bank_account_failing")
DEFAULT_PAYMENT_METHOD_LABEL = "visa"


@dataclass(frozen=True)
class SeededCustomer:
    profile: str
    customer_id: str
    email: str
    default_payment_method: str
    payment_methods: Mapping[str, str] = field(default_factory=dict)  # label -> pm id

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "customer_id": self.customer_id,
            "email": self.email,
            "default_payment_method": self.default_payment_method,
            "payment_methods": dict(self.payment_methods),
        }


def customer_email(profile: str) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", profile.lower()).strip("-") or "profile"
    return f"{slug}@sandbox.invoicebot.test"


def _payment_method_params(label: str, *, name: str, email: str) -> dict[str, Any]:
    metadata = {LABEL_METADATA_KEY: label}
    if label in CARDS:
        card = CARDS[label]
        exp_year = card.exp_year if card.exp_year is not None else dt.date.today().year + 5
        return {
            "type": "card",
            "card": {"number": card.number, "exp_month": card.exp_month, "exp_year": exp_year, "cvc": "123"},
            "billing_details": {"name": name, "email": email},
            "metadata": metadata,
        }
    if label in BANK_ACCOUNTS:
        bank = BANK_ACCOUNTS[label]
        return {
            "type": bank.type,
            bank.type: dict(bank.details),
            "billing_details": {"name": name, "email": email},
            "metadata": metadata,
        }
    known = ", ".join((*CARDS, *BANK_ACCOUNTS))
    raise ValueError(f"unknown payment method label {label!r} (known: {known})")


async def add_payment_method(
    client: stripe.StripeClient, customer_id: str, label: str, *, name: str, email: str
) -> str:
    """Create the fixture `label` (e.g. "sepa_failing"), attach it to the customer; its id."""
    params = _payment_method_params(label, name=name, email=email)
    pm = await client.v1.payment_methods.create_async(params=params)  # type: ignore[arg-type]
    await client.v1.payment_methods.attach_async(pm.id, params={"customer": customer_id})
    return pm.id


async def _find_customer(client: stripe.StripeClient, email: str) -> stripe.Customer | None:
    found = await client.v1.customers.list_async(params={"email": email, "limit": 1})
    return found.data[0] if found.data else None


async def _labelled_payment_methods(client: stripe.StripeClient, customer_id: str) -> dict[str, str]:
    listed = await client.v1.customers.payment_methods.list_async(customer_id, params={"limit": 100})
    labelled: dict[str, str] = {}
    for pm in listed.data:
        metadata = pm.metadata.to_dict() if pm.metadata else {}
        label = metadata.get(LABEL_METADATA_KEY)
        if label and label not in labelled:
            labelled[label] = pm.id
    return labelled


async def seed_customer(
    client: stripe.StripeClient,
    profile: str,
    *,
    name: str | None = None,
    include: Iterable[str] = (),
) -> SeededCustomer:
    """Create (or complete) the customer of one billing profile."""
    email = customer_email(profile)
    name = name or f"Sandbox customer {profile}"
    labels = list(dict.fromkeys((*DEFAULT_LABELS, *include)))
    for label in labels:
        if label not in CARDS and label not in BANK_ACCOUNTS:
            _payment_method_params(label, name=name, email=email)  # raises ValueError

    customer = await _find_customer(client, email)
    if customer is None:
        customer = await client.v1.customers.create_async(
            params={"name": name, "email": email, "metadata": {PROFILE_METADATA_KEY: profile}}
        )
        existing: dict[str, str] = {}
    else:
        existing = await _labelled_payment_methods(client, customer.id)

    methods = dict(existing)
    for label in labels:
        if label not in methods:
            methods[label] = await add_payment_method(client, customer.id, label, name=name, email=email)

    default = methods[DEFAULT_PAYMENT_METHOD_LABEL]
    settings = customer.invoice_settings.to_dict() if customer.invoice_settings else {}
    if settings.get("default_payment_method") != default:
        await client.v1.customers.update_async(
            customer.id, params={"invoice_settings": {"default_payment_method": default}}
        )
    ordered = {label: methods[label] for label in labels}
    ordered.update({k: v for k, v in methods.items() if k not in ordered})
    return SeededCustomer(
        profile=profile,
        customer_id=customer.id,
        email=email,
        default_payment_method=default,
        payment_methods=ordered,
    )


async def seed_customers(
    client: stripe.StripeClient,
    profiles: Sequence[str],
    *,
    include: Iterable[str] = (),
    names: Mapping[str, str] | None = None,
) -> dict[str, SeededCustomer]:
    """Seed every billing profile (concurrently); `{profile: SeededCustomer}`.

    `include` adds optional fixtures to every customer, e.g. `include=["sepa_failing"]`.
    """
    extra = tuple(include)
    names = names or {}
    seeded = await asyncio.gather(
        *(seed_customer(client, profile, name=names.get(profile), include=extra) for profile in profiles)
    )
    return {s.profile: s for s in seeded}
