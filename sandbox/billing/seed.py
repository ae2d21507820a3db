"""Realistic demo data: four billing profiles, invoices in every status (and enough open
ones for more than one page of `/invoices`), five users.

`seed_demo` is idempotent: users and profiles are upserted (so fresh Stripe customer ids
from a new localstripe run replace the old ones), invoices and the seeded payment are
only created when missing, so payments made in an earlier session survive a restart.
Dates are relative to today (UTC), so "past due" stays past due whenever the demo runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any, Final

from .admin import validate_billing_profile
from .money import parse_minor
from .store import BillingStore, NewInvoice, PaymentRequest

# -- billing profiles -------------------------------------------------------------------
BP_EU: Final = "bp_eu"  # Acme GmbH, EUR, card fee 2.9 %, SEPA wire
BP_US: Final = "bp_us"  # Acme Inc., USD, no card fee, ACH wire
BP_JP: Final = "bp_jp"  # Acme KK, JPY (no minor unit)
BP_KW: Final = "bp_kw"  # Acme Kuwait WLL, KWD (3 decimals), typically no Stripe customer
DEMO_PROFILE_IDS: Final = (BP_EU, BP_US, BP_JP, BP_KW)

# -- users ------------------------------------------------------------------------------
USER_FINANCE: Final = "finance@acme.example"  # invoice_viewer + billing_profile_admin, all profiles
USER_EU_ACCOUNTANT: Final = "eu.accountant@acme.example"  # invoice_viewer, bp_eu only
USER_SALES: Final = "sales@acme.example"  # has profiles but no invoice_viewer -> sees nothing
USER_NEWHIRE: Final = "newhire@acme.example"  # invoice_viewer but no profiles -> sees nothing
USER_DE_ACCOUNTANT: Final = "buchhaltung@acme.example"  # invoice_viewer, bp_eu; Slack locale de-DE

DEMO_USERS: Final[dict[str, dict[str, list[str]]]] = {
    USER_FINANCE: {
        "permissions": ["invoice_viewer", "billing_profile_admin"],
        "billing_profile_ids": list(DEMO_PROFILE_IDS),
    },
    USER_EU_ACCOUNTANT: {"permissions": ["invoice_viewer"], "billing_profile_ids": [BP_EU]},
    USER_SALES: {"permissions": [], "billing_profile_ids": [BP_EU, BP_US]},
    USER_NEWHIRE: {"permissions": ["invoice_viewer"], "billing_profile_ids": []},
    USER_DE_ACCOUNTANT: {"permissions": ["invoice_viewer"], "billing_profile_ids": [BP_EU]},
}

# -- invoices (ids are stable so tests and the demo script can refer to them) -----------
INV_EU_OPEN: Final = "inv_eu_open"
INV_EU_PAST_DUE: Final = "inv_eu_past_due"
INV_EU_PARTIAL: Final = "inv_eu_partial"
INV_EU_PARTIAL_PAST_DUE: Final = "inv_eu_partial_past_due"  # partially paid and overdue -> past_due
INV_EU_PROCESSING: Final = "inv_eu_processing"  # a bank debit is on its way
INV_EU_PAID: Final = "inv_eu_paid"
INV_EU_CANCELED: Final = "inv_eu_canceled"
INV_EU_PROFORMA: Final = "inv_eu_proforma"
INV_US_OPEN: Final = "inv_us_open"
INV_US_OPEN_SMALL: Final = "inv_us_open_small"
INV_US_PAST_DUE: Final = "inv_us_past_due"
INV_US_PAID: Final = "inv_us_paid"
INV_JP_OPEN: Final = "inv_jp_open"
INV_JP_PAST_DUE: Final = "inv_jp_past_due"
INV_JP_PARTIAL: Final = "inv_jp_partial"
INV_KW_OPEN: Final = "inv_kw_open"
INV_KW_PAST_DUE: Final = "inv_kw_past_due"
PAY_EU_PROCESSING: Final = "pay_seed_eu_processing"  # the processing debit on INV_EU_PROCESSING

# (id, profile, number seq, total, amount_due, stored status, due in days from today)
_INVOICES: Final[tuple[tuple[str, str, int, str, str, str, int], ...]] = (
    (INV_EU_OPEN, BP_EU, 42, "1200.00", "1200.00", "open", 20),
    (INV_EU_PAST_DUE, BP_EU, 37, "845.50", "845.50", "open", -15),
    (INV_EU_PARTIAL, BP_EU, 40, "3000.00", "1750.00", "partially_paid", 10),
    (INV_EU_PARTIAL_PAST_DUE, BP_EU, 39, "500.00", "125.00", "partially_paid", -5),
    (INV_EU_PROCESSING, BP_EU, 41, "640.00", "640.00", "open", 3),
    (INV_EU_PAID, BP_EU, 31, "990.00", "0.00", "paid", -40),
    (INV_EU_CANCELED, BP_EU, 35, "250.00", "250.00", "canceled", -10),
    (INV_EU_PROFORMA, BP_EU, 43, "4200.00", "4200.00", "proforma", 30),
    (INV_US_OPEN, BP_US, 118, "15000.00", "15000.00", "open", 25),
    (INV_US_OPEN_SMALL, BP_US, 119, "89.99", "89.99", "open", 5),
    (INV_US_PAST_DUE, BP_US, 112, "2340.75", "2340.75", "open", -3),
    (INV_US_PAID, BP_US, 105, "500.00", "0.00", "paid", -20),
    (INV_JP_OPEN, BP_JP, 7, "5000", "5000", "open", 14),
    (INV_JP_PAST_DUE, BP_JP, 5, "120000", "120000", "open", -20),
    (INV_JP_PARTIAL, BP_JP, 6, "80000", "48000", "partially_paid", 7),
    (INV_KW_OPEN, BP_KW, 3, "12.500", "12.500", "open", 12),
    (INV_KW_PAST_DUE, BP_KW, 2, "310.750", "310.750", "open", -8),
)

# More open invoices on 90-day terms, all due after the ones above, so that Fiona's list has
# more than one page (20 a page) while everything the README and the browser tests pay
# stays on the first. (id, profile, number seq, total, due in days from today.)
_LATER_TERMS_DAYS: Final = 90
_LATER_INVOICES: Final[tuple[tuple[str, str, int, str, int], ...]] = (
    *((f"inv_us_later_{n}", BP_US, 120 + n, total, 30 + 7 * n) for n, total in enumerate(
        ("1875.00", "2210.40", "1940.15", "2088.00", "1766.25", "2301.90", "1999.99", "2150.60"))),
    *((f"inv_eu_later_{n}", BP_EU, 44 + n, total, 35 + 14 * n) for n, total in enumerate(
        ("980.00", "1130.50", "1045.20", "1210.00"))),
    *((f"inv_jp_later_{n}", BP_JP, 8 + n, total, 42 + 28 * n) for n, total in enumerate(("64000", "71500"))),
)
LATER_INVOICE_IDS: Final = tuple(row[0] for row in _LATER_INVOICES)

_NUMBER_PREFIX: Final = {BP_EU: "EU", BP_US: "US", BP_JP: "JP", BP_KW: "KW"}


def _profiles(stripe_customers: Mapping[str, str | None]) -> list[dict[str, Any]]:
    reference = "Put the invoice number in the transfer reference"
    profiles: list[dict[str, Any]] = [
        {
            "id": BP_EU,
            "name": "Acme GmbH",
            "currency": "EUR",
            "country": "DE",
            "card_fee_percent": "2.9",
            "wire_instructions": {  # SEPA credit transfer
                "beneficiary": "Cloud Vendor Ltd",
                "bank_name": "Example Bank AG",
                "iban": "DE89370400440532013000",
                "swift": "COBADEFFXXX",
                "account_number": None,
                "routing_number": None,
                "reference": reference,
            },
        },
        {
            "id": BP_US,
            "name": "Acme Inc.",
            "currency": "USD",
            "country": "US",
            "card_fee_percent": None,
            "wire_instructions": {  # ACH / domestic wire
                "beneficiary": "Cloud Vendor Inc.",
                "bank_name": "Example Bank, N.A.",
                "iban": None,
                "swift": None,
                "account_number": "000123456789",
                "routing_number": "110000000",
                "reference": reference,
            },
        },
        {
            "id": BP_JP,
            "name": "Acme KK",
            "currency": "JPY",
            "country": "JP",
            "card_fee_percent": "3.6",
            "wire_instructions": {
                "beneficiary": "Cloud Vendor KK",
                "bank_name": "Example Bank, Tokyo Branch",
                "iban": None,
                "swift": "EXAMJPJT",
                "account_number": "1234567",
                "routing_number": None,
                "reference": reference,
            },
        },
        {
            "id": BP_KW,
            "name": "Acme Kuwait WLL",
            "currency": "KWD",
            "country": "KW",
            "card_fee_percent": None,
            "wire_instructions": {
                "beneficiary": "Cloud Vendor Ltd",
                "bank_name": "Example Bank Kuwait",
                "iban": "KW81CBKU0000000000001234560101",
                "swift": "EXAMKWKW",
                "account_number": None,
                "routing_number": None,
                "reference": reference,
            },
        },
    ]
    for profile in profiles:
        profile["stripe_customer_id"] = stripe_customers.get(profile["id"])
    return profiles


def seed_demo(
    store: BillingStore, *, base_url: str, stripe_customers: Mapping[str, str | None], today: date | None = None
) -> None:
    """Create (or refresh) the demo data. `base_url` is where the sandbox is reachable,
    used for the invoices' `pdf_url`/`url`; `stripe_customers` maps profile id -> Stripe
    customer id (missing or None = no saved payment methods)."""
    today = today or store.today()
    base_url = base_url.rstrip("/")
    for profile in _profiles(stripe_customers):
        store.upsert_billing_profile(validate_billing_profile(profile))
    for email, access in DEMO_USERS.items():
        store.upsert_user(email, access["permissions"], access["billing_profile_ids"])

    currencies = {profile["id"]: profile["currency"] for profile in _profiles({})}
    invoices = []
    later = tuple((invoice_id, profile_id, seq, total, total, "open", due_in_days, _LATER_TERMS_DAYS)
                  for invoice_id, profile_id, seq, total, due_in_days in _LATER_INVOICES)
    for invoice_id, profile_id, seq, total, amount_due, status, due_in_days, terms in (
            *((*row, 30) for row in _INVOICES), *later):
        currency = currencies[profile_id]
        due_on = today + timedelta(days=due_in_days)
        issued_on = due_on - timedelta(days=terms)
        invoices.append(
            NewInvoice(
                id=invoice_id,
                number=f"INV-{_NUMBER_PREFIX[profile_id]}-{issued_on.year}-{seq:04d}",
                billing_profile_id=profile_id,
                status=status,
                currency=currency,
                total_minor=parse_minor(total, currency),
                amount_due_minor=parse_minor(amount_due, currency),
                issued_on=issued_on,
                due_on=due_on,
                pdf_url=f"{base_url}/invoices/{invoice_id}.pdf",
                url=f"{base_url}/invoices/{invoice_id}",
            )
        )
    store.insert_invoices(invoices, keep_existing=True)

    # Made through the normal payment path so the invoice is in a genuine `processing`
    # state that a PATCH can settle. Re-seeding replays it idempotently (no change).
    store.record_payment(
        INV_EU_PROCESSING,
        PaymentRequest(
            payment_id=PAY_EU_PROCESSING,
            amount="640.00",
            currency="EUR",
            method="bank_debit",
            processor="stripe",
            processor_payment_id="pi_seed_eu_processing",
            status="processing",
            paid_by=USER_FINANCE,
        ),
    )
