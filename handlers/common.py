"""Shared by the listeners: turning any failure into words, and logging the unexpected."""

from __future__ import annotations

import logging

from bot.billing import BillingError
from bot.errors import Explanation, FieldProblem, FormExpired, InvoiceNotPayable, InvoiceUnavailable, \
    PaymentAlreadyInProgress, explain
from bot.identity import AccessDenied
from bot.routing import RouteProblem
from bot.stripe_gateway import StripeRejected, StripeUnavailable
from handlers.requests import BadPayload

log = logging.getLogger("invoicebot.handlers")

_EXPECTED = (AccessDenied, InvoiceUnavailable, InvoiceNotPayable, FormExpired, FieldProblem,
             PaymentAlreadyInProgress, BillingError, StripeUnavailable, BadPayload, RouteProblem)


def explanation_for(exc: BaseException) -> Explanation:
    if isinstance(exc, StripeRejected):
        log.error("Stripe rejected a request: %s", exc)
    elif not isinstance(exc, _EXPECTED):
        log.exception("unexpected error", exc_info=exc)
    else:
        log.info("request refused: %s", type(exc).__name__)
    return explain(exc)


def refusal_reason(exc: BaseException) -> str:
    """What the audit trail records as the reason for a refusal: the access problem
    (`not_invoice_viewer`, `billing_profile_not_allowed`, …) or the kind of failure."""
    if isinstance(exc, AccessDenied):
        return exc.problem.value
    return type(exc).__name__
