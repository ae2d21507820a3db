"""Domain errors, and the one place that turns any error into words for the user.

Messages say what failed, whether money moved, and what to do next. They never carry a
stack trace, an internal id that helps nobody, a token or a card number.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.billing import BillingError
from bot.identity import AccessDenied, AccessProblem
from bot.routing import RouteProblem
from bot.stripe_gateway import StripeRejected, StripeUnavailable

ASK_ADMIN = "Ask a billing-profile admin of your company to give you access in the billing console."


class InvoiceUnavailable(Exception):
    """The invoice does not exist (or is not visible to this person)."""


class InvoiceNotPayable(Exception):
    def __init__(self, number: str, status: str) -> None:
        super().__init__(status)
        self.number = number
        self.status = status


class FormExpired(Exception):
    """The modal's server-side session is gone or belongs to someone else."""


class FieldProblem(Exception):
    """Bad input in one field of the pay form; shown under that field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class PaymentAlreadyInProgress(Exception):
    def __init__(self, started_by: str | None) -> None:
        super().__init__("in progress")
        self.started_by = started_by


@dataclass(frozen=True, slots=True)
class Explanation:
    title: str
    text: str


_ACCESS = {
    AccessProblem.NO_EMAIL: Explanation(
        "We can't tell who you are",
        "Slack did not give this app an email address for your account, and access to invoices is granted "
        "by email. Ask your Slack admin to make sure your profile has an email address (and that the app may "
        "read it), then try again."),
    AccessProblem.UNKNOWN_USER: Explanation(
        "You're not set up in billing yet",
        "The billing system has no user with your email address. " + ASK_ADMIN),
    AccessProblem.NOT_VIEWER: Explanation(
        "You can't view invoices",
        "Your billing account does not have the *Invoice Viewer* permission. " + ASK_ADMIN),
    AccessProblem.NO_PROFILES: Explanation(
        "No billing profiles assigned",
        "You have the Invoice Viewer permission, but no billing profile is assigned to you, so there are "
        "no invoices to show. " + ASK_ADMIN),
    AccessProblem.NOT_ADMIN: Explanation(
        "Only billing-profile admins can do that",
        "Choosing where payment notifications go needs the *Billing Profile Admin* permission. " + ASK_ADMIN),
    AccessProblem.PROFILE_NOT_ALLOWED: Explanation(
        "You can't pay this invoice",
        "This invoice belongs to a billing profile you don't have access to. Nothing was charged. " + ASK_ADMIN),
}


def explain(exc: BaseException) -> Explanation:
    if isinstance(exc, AccessDenied):
        return _ACCESS[exc.problem]
    if isinstance(exc, RouteProblem):
        return Explanation("Notifications not changed", str(exc))
    if isinstance(exc, InvoiceUnavailable):
        return Explanation("Invoice not found",
                           "That invoice no longer exists in the billing system. Nothing was charged. "
                           "Run `/invoices` to see what is open now.")
    if isinstance(exc, InvoiceNotPayable):
        status = exc.status.replace("_", " ")
        return Explanation("Nothing to pay on this invoice",
                           f"Invoice {exc.number} is {status} now, so there is nothing to pay. Nothing was "
                           "charged. Run `/invoices` to see what is open.")
    if isinstance(exc, FormExpired):
        return Explanation("This form has expired",
                           "This payment form is no longer valid. Nothing was charged. Close it and press "
                           "*Pay Now* on the invoice again.")
    if isinstance(exc, PaymentAlreadyInProgress):
        who = f" (started by <@{exc.started_by}>)" if exc.started_by else ""
        return Explanation("Payment already in progress",
                           f"A payment for this invoice is already in progress{who}. Nothing more was charged. "
                           "Its result will be posted in the finance channel; check `/invoices` in a minute.")
    if isinstance(exc, BillingError):
        if exc.transient:
            return Explanation("Billing system unavailable",
                               "The billing system isn't answering right now. Nothing was charged. "
                               "Please try again in a few minutes.")
        return Explanation("The billing system refused the request",
                           f"The billing system said: {exc.message} Nothing was charged.")
    if isinstance(exc, StripeUnavailable):
        return Explanation("Stripe unavailable",
                           "Stripe, our card processor, isn't answering right now. Nothing was charged. "
                           "Please try again in a few minutes.")
    if isinstance(exc, StripeRejected):
        return Explanation("Payment could not be started",
                           "Stripe refused to start this payment. Nothing was charged. Please try again, or "
                           "pay by wire transfer; our team has been told.")
    return Explanation("Something went wrong",
                       "Something went wrong on our side. Nothing was charged. Please try again in a few "
                       "minutes; if it keeps happening, tell your admin.")
