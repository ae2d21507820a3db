"""The error-to-words table (handlers/errors.py): every domain error has words of its own,
and anything else gets the generic words, never its details."""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil

import pytest

import bot
from bot.billing import BillingError, BillingNotFound
from bot.errors import FieldProblem, FormExpired, InvoiceNotPayable, InvoiceUnavailable, PaymentAlreadyInProgress
from bot.identity import AccessDenied, AccessProblem
from bot.links import LinkInvalid
from bot.money import AmbiguousAmount, WrongFormat
from bot.routing import RouteProblem
from bot.stripe_gateway import StripeRejected, StripeUnavailable
from handlers.errors import GENERIC, WORDS, explain, explanation_for, is_known, refusal_reason

# Errors of bot/ that never reach a person in Slack: the operator's command line and the
# HTTP edge answer them (bot/commands.py, bot/resolutions.py, bot/settings.py, bot/edge.py).
NOT_FOR_SLACK = {"CommandError", "OperatorError", "SettingsError", "Refused"}


def domain_errors() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.iter_modules(bot.__path__):
        module = importlib.import_module(f"bot.{module_info.name}")
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == module.__name__ \
                    and name not in NOT_FOR_SLACK and not name.startswith("_"):
                found[f"{module.__name__}.{name}"] = value
    return list(found.values())


def test_every_domain_error_type_of_bot_is_in_the_table() -> None:
    errors = domain_errors()
    assert {e.__name__ for e in errors} >= {"AccessDenied", "FormExpired", "BillingError", "StripeUnavailable"}
    missing = [e.__name__ for e in errors if not any(kind in WORDS for kind in e.__mro__)]
    assert missing == []


@pytest.mark.parametrize("error", [
    *[AccessDenied(problem) for problem in AccessProblem],
    RouteProblem("I can't post in #secret."), InvoiceUnavailable(), InvoiceNotPayable("INV-9", "partially_paid"),
    FormExpired(), FieldProblem("amount", "Enter an amount."), PaymentAlreadyInProgress("U2"),
    PaymentAlreadyInProgress(None), BillingError(503, "unavailable", "down"),
    BillingError(409, "conflict", "The invoice changed."), BillingNotFound(404, "not_found", "no such user"),
    StripeUnavailable(), StripeRejected("bad request"), LinkInvalid(), AmbiguousAmount("Did you mean…?", (None, None)),
    WrongFormat("Write 1.234,50."),
], ids=lambda e: type(e).__name__)
def test_each_domain_error_has_its_own_words(error: BaseException) -> None:
    words = explain(error)
    assert words != GENERIC and words.title and words.text
    assert is_known(error)
    assert "Traceback" not in words.text and type(error).__name__ not in words.text


def test_the_words_carry_what_the_person_needs() -> None:
    assert explain(InvoiceNotPayable("INV-9", "partially_paid")).text.startswith("Invoice INV-9 is partially paid now")
    assert "(started by <@U2>)" in explain(PaymentAlreadyInProgress("U2")).text
    assert "started by" not in explain(PaymentAlreadyInProgress(None)).text
    assert explain(BillingError(503, "unavailable", "down")).title == "Billing system unavailable"
    assert explain(BillingError(409, "conflict", "The invoice changed.")).text == (
        "The billing system said: The invoice changed. Nothing was charged.")
    # A subclass without words of its own gets its parent's.
    assert explain(BillingNotFound(404, "not_found", "no such user")).title == "The billing system refused the request"
    for problem in AccessProblem:
        assert explain(AccessDenied(problem, detail="bp_secret")).text.count("bp_secret") == 0


def test_an_unknown_error_gets_the_generic_words_without_its_details(caplog: pytest.LogCaptureFixture) -> None:
    error = RuntimeError("password=hunter2 at /srv/app.py line 9")
    with caplog.at_level(logging.INFO, logger="invoicebot.handlers"):
        words = explanation_for(error)
    assert words == GENERIC and not is_known(error)
    assert "hunter2" not in words.title + words.text and "RuntimeError" not in words.text
    assert words.text.startswith("Something went wrong on our side. Nothing was charged.")
    assert any(record.levelno == logging.ERROR and record.exc_info for record in caplog.records)  # a bug: traced


def test_refusals_log_one_line_and_faults_an_error(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="invoicebot.handlers"):
        explanation_for(FormExpired())
        explanation_for(StripeRejected("No such customer"))
    levels = [(record.levelno, bool(record.exc_info)) for record in caplog.records]
    assert levels == [(logging.INFO, False), (logging.ERROR, False)]


def test_the_audit_reason_names_the_access_problem_or_the_kind() -> None:
    assert refusal_reason(AccessDenied(AccessProblem.PROFILE_NOT_ALLOWED)) == "billing_profile_not_allowed"
    assert refusal_reason(FormExpired()) == "FormExpired"
