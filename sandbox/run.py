"""`invoicebot sandbox`: the billing API sandbox with its demo data, optionally wired to a
fake Stripe (sandbox.stripe) whose customers and saved cards it creates first.

Also home of `seed_stripe`, shared with `invoicebot demo` (sandbox/demo.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sandbox.billing import seed as billing_seed

# Billing profiles that get a Stripe customer with saved payment methods. bp_kw (KWD) has
# none, as in the seed data: it shows the "no saved card yet" form and the wire details.
STRIPE_PROFILES: tuple[str, ...] = (billing_seed.BP_EU, billing_seed.BP_US, billing_seed.BP_JP)


def _profile_names() -> dict[str, str]:
    return {profile["id"]: profile["name"] for profile in billing_seed._profiles({})}  # noqa: SLF001


def seed_stripe(api_base: str, *, api_key: str = "sk_test_sandbox",
                profiles: Sequence[str] = STRIPE_PROFILES) -> dict[str, str]:
    """Create (or complete) a Stripe customer per billing profile at `api_base`, each with the
    standard test methods of sandbox.stripe.seed (Visa 4242 as default, Mastercard 4444, an
    expired card, Visa 0341 declined when charged, Visa 3155 needing 3-D Secure, a SEPA
    account); `{profile id: customer id}`. Idempotent (customers are found by email)."""
    import stripe  # noqa: PLC0415 - only when a Stripe is wanted

    from sandbox.stripe.seed import seed_customers  # noqa: PLC0415

    async def seed() -> dict[str, str]:
        client = stripe.StripeClient(api_key, base_addresses={"api": api_base.rstrip("/")},
                                     http_client=stripe.HTTPXClient(), max_network_retries=2)
        seeded = await seed_customers(client, list(profiles), names=_profile_names())
        return {profile: customer.customer_id for profile, customer in seeded.items()}

    return asyncio.run(seed())


def run_sandbox(*, host: str, port: int, db_path: str, token: str, latency: float, fresh: bool,
                stripe_api_base: str | None) -> None:
    """Serve the seeded billing sandbox until Ctrl-C (blocking)."""
    from sandbox.billing.server import serve  # noqa: PLC0415

    customers: dict[str, str] = {}
    if stripe_api_base:
        try:
            customers = seed_stripe(stripe_api_base)
        except Exception as exc:  # noqa: BLE001 - one readable line, not a traceback
            raise SystemExit(f"invoicebot sandbox: could not create the Stripe customers at {stripe_api_base}: "
                             f"{type(exc).__name__}: {exc}") from None
        print(f"Stripe customers at {stripe_api_base}: "
              + ", ".join(f"{profile}={customer}" for profile, customer in customers.items()), flush=True)
    details = f"database {db_path}" + (" (emptied first)" if fresh else "") + f", bearer token {token!r}"
    if latency:
        details += f", {latency:g} s added to every answer"
    print(f"Billing sandbox: {details}", flush=True)
    print("Demo users: " + ", ".join((
        f"{billing_seed.USER_FINANCE} (every profile)",
        f"{billing_seed.USER_EU_ACCOUNTANT} ({billing_seed.BP_EU} only)",
        f"{billing_seed.USER_SALES} (no invoice_viewer)",
        f"{billing_seed.USER_NEWHIRE} (no profiles)")), flush=True)
    try:
        serve(host, port, db_path, token, latency_seconds=latency, seed=True, stripe_customers=customers,
              fresh=fresh)
    except OSError as exc:
        raise SystemExit(f"invoicebot sandbox: {exc}") from None
