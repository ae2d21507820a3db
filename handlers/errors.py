"""The one place that turns an error into words for the person in Slack.

The table is keyed by domain error type (bot/ raises them and knows nothing of Slack or
mrkdwn); a lookup walks the error's class hierarchy, so a subclass gets its parent's words
unless it has its own. Anything not in the table gets the generic words: they never carry
a stack trace, an internal id that helps nobody, a token or a card number.

Messages say what failed, whether money moved, and what to do next.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.admission import GateClosed
from bot.billing import BillingError
from bot.errors import (
    ApprovalProblem, FieldProblem, FormExpired, InvoiceNotPayable, InvoiceUnavailable, NoApproverAvailable,
    PaymentAlreadyInProgress,
)
from bot.identity import AccessDenied, AccessProblem
from bot.links import LinkInvalid
from bot.money import MoneyError
from bot.invoices import ProfileNameProblem
from bot.reminders import ReminderProblem
from bot.routing import RouteProblem
from bot.scheduled_payments import ScheduleProblem
from bot.stripe_gateway import StripeRejected, StripeUnavailable
from handlers.requests import BadPayload

log = logging.getLogger("invoicebot.handlers")

ASK_ADMIN = "Ask a billing-profile admin of your company to give you access in the billing console."


@dataclass(frozen=True, slots=True)
class Explanation:
    title: str
    text: str


GENERIC = Explanation("Something went wrong",
                      "Something went wrong on our side. Nothing was charged. Please try again in a few "
                      "minutes; if it keeps happening, tell your admin.")

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
        "Choosing where payment notifications go, and setting approval rules, needs the *Billing Profile Admin* "
        "permission. " + ASK_ADMIN),
    AccessProblem.PROFILE_NOT_ALLOWED: Explanation(
        "You can't pay this invoice",
        "This invoice belongs to a billing profile you don't have access to. Nothing was charged. " + ASK_ADMIN),
}


def _access(exc: AccessDenied) -> Explanation:
    return _ACCESS[exc.problem]


def _not_payable(exc: InvoiceNotPayable) -> Explanation:
    return Explanation("Nothing to pay on this invoice",
                       f"Invoice {exc.number} is {exc.status.replace('_', ' ')} now, so there is nothing to pay. "
                       "Nothing was charged. Run `/invoices` to see what is open.")


def _in_progress(exc: PaymentAlreadyInProgress) -> Explanation:
    if exc.awaiting_approval:
        by = f" by <@{exc.started_by}>" if exc.started_by else ""
        return Explanation("Waiting for approval",
                           f"A payment of this invoice requested{by} is waiting for approval, and it holds the "
                           "invoice until it is approved, rejected, withdrawn or expires. Nothing was charged.")
    who = f" (started by <@{exc.started_by}>)" if exc.started_by else ""
    return Explanation("Payment already in progress",
                       f"A payment for this invoice is already in progress{who}. Nothing more was charged. "
                       "Its result will be posted in the finance channel; check `/invoices` in a minute.")


def _billing(exc: BillingError) -> Explanation:
    if exc.transient:
        return Explanation("Billing system unavailable",
                           "The billing system isn't answering right now. Nothing was charged. "
                           "Please try again in a few minutes.")
    return Explanation("The billing system refused the request",
                       f"The billing system said: {exc.message} Nothing was charged.")


@dataclass(frozen=True, slots=True)
class Entry:
    """How one domain error type is told: its words (fixed or from the error), and whether it
    is an expected refusal (logged in one line) or a fault to look into (logged as an error)."""

    words: Explanation | Callable[[BaseException], Explanation]
    expected: bool = True


WORDS: dict[type[BaseException], Entry] = {
    AccessDenied: Entry(_access),  # type: ignore[arg-type]
    RouteProblem: Entry(lambda exc: Explanation("Notifications not changed", str(exc))),
    ReminderProblem: Entry(lambda exc: Explanation("Reminders not changed", str(exc))),
    # Each command says it under its own title (a RouteProblem, ...); this is the fallback.
    ProfileNameProblem: Entry(lambda exc: Explanation("Which billing profile?", str(exc))),
    ScheduleProblem: Entry(lambda exc: Explanation("Scheduled payment not changed", str(exc))),
    InvoiceUnavailable: Entry(Explanation(
        "Invoice not found", "That invoice no longer exists in the billing system. Nothing was charged. "
        "Run `/invoices` to see what is open now.")),
    InvoiceNotPayable: Entry(_not_payable),  # type: ignore[arg-type]
    FormExpired: Entry(Explanation(
        "This form has expired", "This payment form is no longer valid. Nothing was charged. Close it and press "
        "*Pay Now* on the invoice again.")),
    FieldProblem: Entry(lambda exc: Explanation("Check the form", str(exc))),
    MoneyError: Entry(lambda exc: Explanation("Check the amount", str(exc))),  # its message is written for people
    PaymentAlreadyInProgress: Entry(_in_progress),  # type: ignore[arg-type]
    BillingError: Entry(_billing),  # type: ignore[arg-type]
    StripeUnavailable: Entry(Explanation(
        "Stripe unavailable", "Stripe, our card processor, isn't answering right now. Nothing was charged. "
        "Please try again in a few minutes.")),
    StripeRejected: Entry(Explanation(
        "Payment could not be started", "Stripe refused to start this payment. Nothing was charged. Please try "
        "again, or pay by wire transfer; our team has been told."), expected=False),
    GateClosed: Entry(Explanation(
        "Not started", "The app was restarting, so this was not started. Nothing was charged. Please try again "
        "in a minute.")),
    LinkInvalid: Entry(Explanation(
        "Link not valid", "This link is not valid any more. Press *Pay Now* in Slack again.")),
    BadPayload: Entry(GENERIC),
    ApprovalProblem: Entry(lambda exc: Explanation("Approval rule not changed", str(exc))),
    NoApproverAvailable: Entry(Explanation(
        "This payment needs approval", "Payments of this amount need another person's approval, and nobody else "
        "is named to give it. Nothing was charged. Ask a billing-profile admin to name approvers with "
        "`/invoices approvers`.")),
}


def _entry(exc: BaseException) -> Entry | None:
    for kind in type(exc).__mro__:
        entry = WORDS.get(kind)
        if entry is not None:
            return entry
    return None


def is_known(exc: BaseException) -> bool:
    """An error the table has words for (a refusal or a known fault, not a bug)."""
    return _entry(exc) is not None


def explain(exc: BaseException) -> Explanation:
    """The words for an error, without logging (the unknown get the generic words)."""
    entry = _entry(exc)
    if entry is None:
        return GENERIC
    return entry.words(exc) if callable(entry.words) else entry.words


def explanation_for(exc: BaseException) -> Explanation:
    """The words for an error, and its log line: one line for an expected refusal, an error
    for a fault (Stripe refusing our request), the traceback for the unknown (a bug)."""
    entry = _entry(exc)
    if entry is None:
        log.exception("unexpected error", exc_info=exc)
    elif not entry.expected:
        log.error("%s: %s", type(exc).__name__, exc)
    else:
        log.info("request refused: %s", type(exc).__name__)
    return explain(exc)


def refusal_reason(exc: BaseException) -> str:
    """What the audit trail records as the reason for a refusal: the access problem
    (`not_invoice_viewer`, `billing_profile_not_allowed`, …) or the kind of failure."""
    if isinstance(exc, AccessDenied):
        return exc.problem.value
    return type(exc).__name__
