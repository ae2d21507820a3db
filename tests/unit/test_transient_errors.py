"""Transient or permanent, per source: only what may change by waiting is retried."""

from __future__ import annotations

import pytest
import stripe

from bot.billing import BillingError
from bot.stripe_gateway import StripeRejected, StripeUnavailable, _translate


@pytest.mark.parametrize("status", [None, 429, 502, 503, 504])
def test_billing_no_answer_and_the_contract_s_retryable_statuses_are_transient(status: int | None) -> None:
    assert BillingError(status, "x", "x").transient


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 500, 501])
def test_every_other_billing_answer_is_permanent(status: int) -> None:
    # A 409 when settling a bank debit will answer 409 again: it must not be retried forever.
    assert not BillingError(status, "conflict", "x").transient


@pytest.mark.parametrize("error", [stripe.APIConnectionError("reset"), stripe.RateLimitError("slow down", http_status=429),
                                   stripe.APIError("oops", http_status=500), stripe.APIError("bad gateway", http_status=502)])
def test_stripe_outages_are_unavailable(error: stripe.StripeError) -> None:
    assert isinstance(_translate(error), StripeUnavailable)


@pytest.mark.parametrize("error", [stripe.InvalidRequestError("no such customer", "customer", http_status=400),
                                   stripe.AuthenticationError("bad key", http_status=401),
                                   stripe.PermissionError("restricted key", http_status=403),
                                   stripe.IdempotencyError("key reused", http_status=400)])
def test_stripe_refusing_the_request_is_rejected(error: stripe.StripeError) -> None:
    assert isinstance(_translate(error), StripeRejected)
