"""A fake Stripe for tests and the local demo: localstripe, patched and extended.

* `sandbox.stripe.server` -- `create_app()` / `serve()`; its module docstring lists every
  patch applied to localstripe and why.  Run it with
  `python -m sandbox.stripe --host 127.0.0.1 --port 8420 [--seed bp_1,bp_2] [-v]`.
* `sandbox.stripe.seed` -- `seed_customers()`: customers with the standard test cards
  and bank accounts, created through the ordinary Stripe API.
* `sandbox.stripe.middleware` -- idempotency keys, fault injection, request log.

Pointing the bot (or stripe-python) at it::

    STRIPE_API_KEY=sk_test_anything          # any key starting with sk_
    STRIPE_API_BASE=http://127.0.0.1:8420
    stripe.StripeClient(key, base_addresses={"api": "http://127.0.0.1:8420"},  # no trailing "/"
                        http_client=stripe.HTTPXClient())

Webhooks: `POST /_config/webhooks/<any id>` with `url` and `secret` (form or JSON,
optional `events` list); events are signed like Stripe's (`Stripe-Signature`).

Nothing is imported here so that `import sandbox.stripe.seed` does not pull in
localstripe (and its module-level aiohttp app) when only seeding is wanted.
"""
