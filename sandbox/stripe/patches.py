"""Compatibility patches for localstripe 1.15 and the resources it lacks.

Everything here mutates localstripe's classes (`localstripe.resources`), so it only
happens when `apply_patches()` is called (once; later calls are no-ops).  The list of
patches and the reasons for them is in `sandbox.stripe.server`'s docstring; each
function below says which real-Stripe behaviour it imitates.

Functions meant for the HTTP layer (`confirm_payment_intent`, `authenticate_payment_intent`,
`create_checkout_session`, `complete_checkout_session`, ...) raise localstripe's
`UserError` exactly like localstripe's own handlers, so the server's error middleware
turns them into Stripe-shaped JSON errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from localstripe import resources as ls
from localstripe.errors import UserError
from localstripe.webhooks import schedule_webhook

__all__ = [
    "CARD_DECLINED_AT_CHARGE",
    "PAYMENT_METHOD_TYPES",
    "US_BANK_ACCOUNT_FAILURES",
    "apply_patches",
    "authenticate_payment_intent",
    "card_brand",
    "checkout_session_class",
    "complete_checkout_session",
    "confirm_payment_intent",
    "create_checkout_session",
    "expire_checkout_session",
    "list_checkout_sessions",
    "list_customer_payment_methods",
    "luhn_valid",
    "retrieve_customer_payment_method",
]

PAYMENT_METHOD_TYPES: tuple[str, ...] = ("card", "sepa_debit", "us_bank_account")
ASYNC_PAYMENT_METHOD_TYPES = frozenset({"sepa_debit", "us_bank_account"})
# Other real Stripe types: listing them is valid (and finds nothing here), creating them is not.
OTHER_STRIPE_PAYMENT_METHOD_TYPES = frozenset(
    "acss_debit affirm afterpay_clearpay alipay amazon_pay au_becs_debit bacs_debit bancontact blik boleto "
    "cashapp customer_balance eps fpx giropay grabpay ideal klarna konbini link mobilepay multibanco oxxo "
    "p24 paynow paypal pix promptpay revolut_pay sofort swish twint wechat_pay zip".split()  # noqa: SIM905
)
_LISTABLE_TYPES = frozenset(PAYMENT_METHOD_TYPES) | OTHER_STRIPE_PAYMENT_METHOD_TYPES

# localstripe's list: these attach fine and are declined when charged.
CARD_DECLINED_AT_CHARGE = frozenset({"4000000000000341", "4000008260003178", "4000008400001629"})

SEPA_FAILING_IBAN = "DE62370400440532013001"

# https://docs.stripe.com/payments/ach-direct-debit/accept-a-payment (test account numbers,
# routing number 110000000): they attach fine and the debit fails asynchronously.
US_BANK_ACCOUNT_FAILURES: Mapping[str, tuple[str, str]] = {
    "000111111113": ("account_closed", "The customer's bank account has been closed."),
    "000111111116": ("no_account", "The customer's bank account could not be located."),
    "000222222227": (
        "insufficient_funds",
        "The customer's account has insufficient funds to cover this payment.",
    ),
    "000333333335": (
        "debit_not_authorized",
        "The customer has notified their bank that this payment was unauthorized.",
    ),
    "000444444440": (
        "invalid_currency",
        "The bank was unable to process this payment because of its currency.",
    ),
}

CHECKOUT_SESSION_TTL_SECONDS = 24 * 3600

_applied = False


# -- small helpers -----------------------------------------------------------------------
def _invalid(message: str, param: str | None = None, code: str | None = None, status: int = 400) -> UserError:
    contents: dict[str, Any] = {}
    if param is not None:
        contents["param"] = param
    if code is not None:
        contents["code"] = code
    return UserError(status, message, contents)


def _card_error(code: str, message: str, param: str | None = None) -> UserError:
    """A 402 like Stripe's `card_error`s (the error middleware sets `type`)."""
    return _invalid(message, param=param, code=code, status=402)


def _unexpected(kwargs: Mapping[str, Any], prefix: str = "") -> None:
    if kwargs:
        names = ", ".join(f"{prefix}[{k}]" if prefix else k for k in kwargs)
        raise _invalid(f"Received unknown parameter: {names}", param=next(iter(kwargs)))


def _to_int(value: Any) -> int | None:
    converted = ls.try_convert_to_int(value)
    return converted if isinstance(converted, int) and not isinstance(converted, bool) else None


def _to_bool(value: Any) -> Any:
    return ls.try_convert_to_bool(value)


def luhn_valid(number: str) -> bool:
    """The Luhn checksum every real card number (and every Stripe test number) passes."""
    if not number.isdigit():
        return False
    digits = [int(c) for c in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


def card_brand(number: str) -> str:
    """Stripe's `card.brand` from the number's prefix (IIN ranges); `unknown` otherwise."""
    if number.startswith("4"):
        return "visa"
    if len(number) >= 2 and 51 <= int(number[:2]) <= 55:
        return "mastercard"
    if len(number) >= 4 and 2221 <= int(number[:4]) <= 2720:
        return "mastercard"
    if number.startswith(("34", "37")):
        return "amex"
    if number.startswith(("6011", "65")) or (len(number) >= 3 and 644 <= int(number[:3]) <= 649):
        return "discover"
    if number.startswith(("36", "38", "39")) or (len(number) >= 3 and 300 <= int(number[:3]) <= 305):
        return "diners"
    if len(number) >= 4 and 3528 <= int(number[:4]) <= 3589:
        return "jcb"
    if number.startswith("62"):
        return "unionpay"
    return "unknown"


def _iban_valid(iban: str) -> bool:
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}", iban):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _expired(exp_month: int | None, exp_year: int | None, today: dt.date | None = None) -> bool:
    if exp_month is None or exp_year is None:
        return False
    today = today or dt.date.today()
    return (exp_year, exp_month) < (today.year, today.month)


def _charge_failure(source: Any) -> tuple[str, str] | None:
    """(failure_code, failure_message) if charging `source` fails, else None.

    Works for PaymentMethod, legacy Card and Source objects alike (localstripe's Card and
    Source call `PaymentMethod._charging_is_declined(self)` with themselves as `self`).
    """
    number = getattr(source, "_card_number", None)
    if number is not None:
        if number in CARD_DECLINED_AT_CHARGE:
            return ("card_declined", "Your card was declined.")
        card = getattr(source, "card", None)
        if isinstance(card, dict):
            exp_month, exp_year = card.get("exp_month"), card.get("exp_year")
        else:  # legacy Card object
            exp_month, exp_year = getattr(source, "exp_month", None), getattr(source, "exp_year", None)
        if _expired(exp_month, exp_year):
            return ("expired_card", "Your card has expired.")
        return None
    if getattr(source, "_sepa_debit_iban", None) == SEPA_FAILING_IBAN:
        return ("insufficient_funds", "The customer's account has insufficient funds to cover this payment.")
    account = getattr(source, "_us_bank_account_number", None)
    if account is not None:
        return US_BANK_ACCOUNT_FAILURES.get(account)
    return None


def _billing_details(value: Any) -> dict[str, Any]:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise _invalid("Invalid billing_details: must be an object", param="billing_details")
    _unexpected(
        {k: v for k, v in value.items() if k not in {"address", "email", "name", "phone"}}, "billing_details"
    )
    return {key: value.get(key) for key in ("address", "email", "name", "phone")}


# -- PaymentMethod: card brand, relaxed card validation, us_bank_account ------------------
def _validate_card(card: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(card, dict):
        raise _invalid("Missing required param: card.", param="card")
    _unexpected(
        {k: v for k, v in card.items() if k not in {"number", "exp_month", "exp_year", "cvc"}}, "card"
    )
    for key in ("number", "exp_month", "exp_year"):
        if card.get(key) in (None, ""):
            raise _invalid(f"Missing required param: card[{key}].", param=f"card[{key}]")
    number = re.sub(r"[\s-]", "", str(card["number"]))
    if not (12 <= len(number) <= 19) or not luhn_valid(number):
        raise _card_error("incorrect_number", "Your card number is incorrect.", "number")
    exp_month = _to_int(card["exp_month"])
    if exp_month is None or not 1 <= exp_month <= 12:
        raise _card_error("invalid_expiry_month", "Your card's expiration month is invalid.", "exp_month")
    exp_year = _to_int(card["exp_year"])
    if exp_year is not None and 0 <= exp_year < 100:
        exp_year += 2000
    # Real Stripe refuses a past expiry; localstripe accepts >= 2019 and so do we, so that
    # the sandbox can hold an *expired* saved card (declined with `expired_card` when charged).
    if exp_year is None or not 2019 <= exp_year < 2100:
        raise _card_error("invalid_expiry_year", "Your card's expiration year is invalid.", "exp_year")
    cvc = card.get("cvc")
    if cvc is not None and not re.fullmatch(r"[0-9]{3,4}", str(cvc)):
        raise _card_error("invalid_cvc", "Your card's security code is invalid.", "cvc")
    brand = card_brand(number)
    details = {
        "brand": brand,
        "checks": {
            "address_line1_check": None,
            "address_postal_code_check": None,
            "cvc_check": "pass" if cvc is not None else None,
        },
        "country": "US",
        "exp_month": exp_month,
        "exp_year": exp_year,
        "fingerprint": ls.fingerprint(number),
        "funding": "credit",
        "generated_from": None,
        "last4": number[-4:],
        "networks": {"available": [brand], "preferred": None},
        "three_d_secure_usage": {"supported": True},
        "wallet": None,
    }
    return number, details


def _validate_sepa_debit(sepa_debit: Any, billing: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if not isinstance(sepa_debit, dict) or not sepa_debit.get("iban"):
        raise _invalid("Missing required param: sepa_debit[iban].", param="sepa_debit[iban]")
    _unexpected({k: v for k, v in sepa_debit.items() if k != "iban"}, "sepa_debit")
    iban = re.sub(r"\s", "", str(sepa_debit["iban"])).upper()
    if not _iban_valid(iban):
        raise _invalid(
            "The IBAN you provided appears to be invalid.",
            param="sepa_debit[iban]",
            code="invalid_bank_account_iban",
        )
    # Stripe requires the account holder's name and email for SEPA Direct Debit.
    for key in ("name", "email"):
        if not billing.get(key):
            raise _invalid(
                f"Missing required param: billing_details[{key}] (required for sepa_debit).",
                param=f"billing_details[{key}]",
            )
    details = {
        "bank_code": iban[4:12],
        "branch_code": "",
        "country": iban[:2],
        "fingerprint": ls.fingerprint(iban),
        "generated_from": {"charge": None, "setup_attempt": None},
        "last4": iban[-4:],
    }
    return iban, details


def _validate_us_bank_account(account: Any, billing: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if not isinstance(account, dict):
        raise _invalid("Missing required param: us_bank_account.", param="us_bank_account")
    allowed = {"account_holder_type", "account_number", "routing_number", "account_type"}
    _unexpected({k: v for k, v in account.items() if k not in allowed}, "us_bank_account")
    number = str(account.get("account_number") or "")
    routing = str(account.get("routing_number") or "")
    holder_type = account.get("account_holder_type") or "individual"
    account_type = account.get("account_type") or "checking"
    if not re.fullmatch(r"[0-9]{4,17}", number):
        raise _invalid("Invalid account number.", param="us_bank_account[account_number]")
    if not re.fullmatch(r"[0-9]{9}", routing):
        raise _invalid(
            "Routing number must have 9 digits.",
            param="us_bank_account[routing_number]",
            code="routing_number_invalid",
        )
    if holder_type not in ("individual", "company"):
        raise _invalid("Invalid account_holder_type.", param="us_bank_account[account_holder_type]")
    if account_type not in ("checking", "savings"):
        raise _invalid("Invalid account_type.", param="us_bank_account[account_type]")
    if not billing.get("name"):
        raise _invalid(
            "Missing required param: billing_details[name] (required for us_bank_account).",
            param="billing_details[name]",
        )
    details = {
        "account_holder_type": holder_type,
        "account_type": account_type,
        "bank_name": "STRIPE TEST BANK",
        "financial_connections_account": None,
        "fingerprint": ls.fingerprint(routing + number),
        "last4": number[-4:],
        "networks": {"preferred": "ach", "supported": ["ach"]},
        "routing_number": routing,
        "status_details": None,
    }
    return number, details


def _payment_method_init(
    self: Any,
    type: Any = None,
    billing_details: Any = None,
    card: Any = None,
    sepa_debit: Any = None,
    us_bank_account: Any = None,
    metadata: Any = None,
    **kwargs: Any,
) -> None:
    """Replacement for `PaymentMethod.__init__` (a superset of localstripe's)."""
    _unexpected(kwargs)
    if type not in PAYMENT_METHOD_TYPES:
        raise _invalid(f"Invalid type: must be one of {', '.join(PAYMENT_METHOD_TYPES)}", param="type")
    for name, value in (("card", card), ("sepa_debit", sepa_debit), ("us_bank_account", us_bank_account)):
        if value is not None and name != type:
            raise _invalid(f"Received {name} but type is {type}.", param=name)
    if metadata is not None and not isinstance(metadata, dict):
        raise _invalid("Invalid metadata: must be an object", param="metadata")
    billing = _billing_details(billing_details)
    if type == "card":
        secret, details = _validate_card(card)
    elif type == "sepa_debit":
        secret, details = _validate_sepa_debit(sepa_debit, billing)
    else:
        secret, details = _validate_us_bank_account(us_bank_account, billing)

    # All exceptions must be raised before this point (this registers the object).
    ls.StripeObject.__init__(self)

    self.type = type
    self.billing_details = billing
    self.customer = None
    self.metadata = metadata or {}
    self.allow_redisplay = "unspecified"
    setattr(self, type, details)
    if type == "card":
        self._card_number = secret
    elif type == "sepa_debit":
        self._sepa_debit_iban = secret
    else:
        self._us_bank_account_number = secret


def _payment_method_charging_is_declined(self: Any) -> bool:
    return _charge_failure(self) is not None


def _payment_method_list_all(
    cls: Any,
    /,
    url: str,
    customer: Any = None,
    type: Any = None,
    limit: Any = None,
    starting_after: Any = None,
    **kwargs: Any,
) -> Any:
    """`GET /v1/payment_methods`: any Stripe `type` (or all types), newest first."""
    _unexpected(kwargs)
    if not isinstance(customer, str) or not customer.startswith("cus_"):
        raise _invalid("Missing required param: customer.", param="customer")
    if type is not None and type not in _LISTABLE_TYPES:
        raise _invalid(f"Invalid type: {type!r} is not a payment method type", param="type")
    ls.Customer._api_retrieve(customer)  # 404 if it does not exist
    li = ls.List(url, limit=limit, starting_after=starting_after)
    li._list = [
        pm
        for key, pm in reversed(list(ls.store.items()))
        if key.startswith("payment_method:") and pm.customer == customer and (type is None or pm.type == type)
    ]
    return li


def list_customer_payment_methods(customer_id: str, **params: Any) -> Any:
    """`GET /v1/customers/{customer}/payment_methods` (optional `type`, `limit`, `starting_after`)."""
    params.pop("allow_redisplay", None)  # accepted and ignored: everything is redisplayable here
    return ls.PaymentMethod._api_list_all(
        f"/v1/customers/{customer_id}/payment_methods", customer=customer_id, **params
    )


def retrieve_customer_payment_method(customer_id: str, payment_method_id: str) -> Any:
    """`GET /v1/customers/{customer}/payment_methods/{payment_method}`."""
    ls.Customer._api_retrieve(customer_id)
    pm = ls.PaymentMethod._api_retrieve(payment_method_id)
    if getattr(pm, "customer", None) != customer_id:
        raise _invalid(
            f"No such PaymentMethod: '{payment_method_id}' for customer '{customer_id}'",
            param="payment_method",
            code="resource_missing",
            status=404,
        )
    return pm


# -- Charge: failure codes, asynchronous bank debits -------------------------------------
def _charge_set_auth_failure(self: Any) -> None:
    self.status = "failed"
    failure = _charge_failure(ls.PaymentMethod._api_retrieve(self.payment_method))
    self.failure_code, self.failure_message = failure or ("card_declined", "Your card was declined.")


def _charge_is_async_payment_method(self: Any) -> bool:
    pm = ls.PaymentMethod._api_retrieve(self.payment_method)
    return getattr(pm, "type", None) in ASYNC_PAYMENT_METHOD_TYPES


# How long a bank debit stays `processing` before it settles (succeeds or fails). Real
# debits take days; localstripe's own delay is 0.5 s, which tests keep. The demo sets a
# longer one (`--bank-debit-delay`, or PUT /_config/bank_debits) so that a person sees the
# Processing state before it clears.
LOCALSTRIPE_SETTLE_SECONDS = 0.5
_settle = {"seconds": LOCALSTRIPE_SETTLE_SECONDS}


def bank_debit_settle_seconds() -> float:
    return _settle["seconds"]


def set_bank_debit_settle_seconds(seconds: float) -> None:
    if not 0 <= seconds <= 3600:
        raise ValueError("the bank debit delay must be between 0 and 3600 seconds")
    _settle["seconds"] = max(seconds, LOCALSTRIPE_SETTLE_SECONDS)  # localstripe's sleep is the floor


def _after_extra_settle_delay(action: Callable[[], None]) -> None:
    """Run `action` (which starts localstripe's own 0.5 s settling) after the rest of the
    configured delay; at once with the default."""
    extra = _settle["seconds"] - LOCALSTRIPE_SETTLE_SECONDS
    if extra <= 0:
        action()
        return

    async def later() -> None:
        await asyncio.sleep(extra)
        action()

    asyncio.ensure_future(later())


def _wrap_initialize_charge(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _initialize_charge(
        self: Any, on_success: Any = None, on_failure_now: Any = None, on_failure_later: Any = None
    ) -> None:
        # localstripe marks a successful bank debit `succeeded` at once (only the balance
        # transaction waits); Stripe keeps it `pending` (PaymentIntent `processing`) until
        # the debit settles.  localstripe's callback flips it to `succeeded` 0.5 s later.
        if self._authorized and self.captured and self._is_async_payment_method():
            self.status = "pending"
            _after_extra_settle_delay(lambda: self._trigger_payment(on_success))
            return
        if not self._authorized and self._is_async_payment_method():
            # A failing debit: localstripe fails it 0.5 s later; the status stays pending.
            self.status = "pending"
            _after_extra_settle_delay(lambda: original(self, on_success, on_failure_now, on_failure_later))
            return
        original(self, on_success, on_failure_now, on_failure_later)

    return _initialize_charge


# -- PaymentIntent: extra create params, confirm(off_session, payment_method) -------------
_PI_EXTRA_FIELDS = ("description", "receipt_email", "statement_descriptor", "statement_descriptor_suffix")


def _check_ownership(customer: Any, payment_method_id: Any) -> None:
    if not customer or not isinstance(payment_method_id, str):
        return
    pm = ls.store.get("payment_method:" + payment_method_id)
    if pm is not None and pm.customer and pm.customer != customer:
        raise _invalid(
            f"The provided PaymentMethod {payment_method_id} belongs to another Customer "
            f"({pm.customer}), not {customer}.",
            param="payment_method",
        )


def _wrap_payment_intent_init(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __init__(self: Any, **data: Any) -> None:
        extras = {key: data.pop(key) for key in _PI_EXTRA_FIELDS if key in data}
        for key, value in extras.items():
            if value is not None and not isinstance(value, str):
                raise _invalid(f"Invalid {key}: must be a string", param=key)
        _check_ownership(data.get("customer"), data.get("payment_method"))
        types = data.get("payment_method_types")
        original(self, **data)
        for key in _PI_EXTRA_FIELDS:
            setattr(self, key, extras.get(key))
        self.payment_method_types = types or ["card"]

    return __init__


def _wrap_payment_intent_export(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _export(self: Any, expand: Any = None) -> dict[str, Any]:
        # localstripe inlines the whole Charge; Stripe gives its id unless expanded.
        paths = expand if isinstance(expand, list) else []
        wanted = any(isinstance(p, str) and p.split(".", 1)[0] == "latest_charge" for p in paths)
        exported: dict[str, Any] = original(self, expand=expand)
        charge = exported.get("latest_charge")
        if not wanted and isinstance(charge, dict):
            exported["latest_charge"] = charge.get("id")
        return exported

    return _export


def _enrich_payment_error(error: UserError, intent: Any) -> None:
    """Give a 402 raised while confirming the fields Stripe's card errors carry."""
    body = error.body.setdefault("error", {})
    body["payment_intent"] = intent._export()
    if intent.payment_method:
        with contextlib.suppress(UserError):
            body["payment_method"] = ls.PaymentMethod._api_retrieve(intent.payment_method)._export()


def _confirm_with_effects(intent: Any) -> None:
    try:
        intent._confirm(on_failure_now=intent._report_failure)
    except UserError as exc:
        if exc.code == 402:
            _enrich_payment_error(exc, intent)
        raise
    if intent.status == "requires_action":
        schedule_webhook(ls.Event("payment_intent.requires_action", intent))
    elif intent.status == "processing":
        schedule_webhook(ls.Event("payment_intent.processing", intent))


def _parse_off_session(value: Any) -> bool | str | None:
    value = _to_bool(value)
    if value is None or isinstance(value, bool):
        return value
    if value in ("one_off", "recurring"):
        return str(value)
    raise _invalid("Invalid off_session: must be a boolean, 'one_off' or 'recurring'", param="off_session")


def _payment_intent_api_create(cls: Any, /, confirm: Any = None, off_session: Any = None, **data: Any) -> Any:
    """`POST /v1/payment_intents` (localstripe's, plus Stripe-shaped 402s and webhooks)."""
    confirm = _to_bool(confirm)
    if confirm is not None and not isinstance(confirm, bool):
        raise _invalid("Invalid boolean: confirm", param="confirm")
    off = _parse_off_session(off_session)
    if off not in (None, False) and confirm is not True:
        raise _invalid("off_session can only be set when confirm=true.", param="off_session")
    intent = cls(**data)
    intent._off_session = off
    if confirm:
        _confirm_with_effects(intent)
    return intent


def _payment_intent_list_all(
    cls: Any, /, url: str, customer: Any = None, limit: Any = None, starting_after: Any = None, **kwargs: Any
) -> Any:
    _unexpected(kwargs)
    li = ls.List(url, limit=limit, starting_after=starting_after)
    li._list = [
        pi
        for key, pi in reversed(list(ls.store.items()))
        if key.startswith("payment_intent:") and (customer is None or pi.customer == customer)
    ]
    return li


def _unexpected_state(intent: Any, action: str) -> UserError:
    status = intent.status
    if status == "requires_payment_method":
        message = (
            f"You cannot {action} this PaymentIntent because it's missing a payment method. "
            "Specify a payment method attached to the PaymentIntent's customer."
        )
    else:
        message = f"You cannot {action} this PaymentIntent because it has a status of {status}."
    return UserError(
        400, message, {"code": "payment_intent_unexpected_state", "payment_intent": intent._export()}
    )


def confirm_payment_intent(
    intent_id: str,
    *,
    authenticate_base_url: str | None = None,
    payment_method: Any = None,
    off_session: Any = None,
    return_url: Any = None,
    **kwargs: Any,
) -> Any:
    """`POST /v1/payment_intents/{id}/confirm` with `off_session`, `payment_method`, `return_url`.

    A card that needs 3-D Secure ends in `requires_action` even with off_session=true
    (localstripe's behaviour; real Stripe answers 402 `authentication_required` and leaves
    the intent in `requires_payment_method`).  With `return_url`, `next_action` is a
    `redirect_to_url` pointing at this server's `/authenticate/{id}` page.
    """
    _unexpected(kwargs)
    intent = ls.PaymentIntent._api_retrieve(intent_id)
    off = _parse_off_session(off_session)
    if return_url is not None and not isinstance(return_url, str):
        raise _invalid("Invalid return_url", param="return_url")
    if payment_method is not None:
        if not isinstance(payment_method, str):
            raise _invalid("Invalid payment_method", param="payment_method")
        if intent.status not in ("requires_payment_method", "requires_confirmation"):
            raise _unexpected_state(intent, "confirm")
        pm = ls.PaymentMethod._api_retrieve(payment_method)  # 404 if unknown
        _check_ownership(intent.customer, pm.id)
        intent.payment_method = pm.id
        intent.latest_charge = None  # a new attempt (the failed charge stays in the store)
        intent._authentication_failed = False
    if intent.status == "requires_action" and payment_method is None and return_url and authenticate_base_url:
        # Only this fake leaves an off-session confirm in `requires_action` (Stripe answers
        # `authentication_required` and waits for a payment method, which the bot then
        # confirms with a return_url). Confirming with a return_url here gives what Stripe
        # gives there: the redirect to the challenge page, with no new charge attempt.
        _redirect_to_authenticate(intent, authenticate_base_url, return_url)
        return intent
    if intent.status != "requires_confirmation":
        raise _unexpected_state(intent, "confirm")
    intent._off_session = off
    _confirm_with_effects(intent)
    if intent.status == "requires_action" and return_url and authenticate_base_url:
        _redirect_to_authenticate(intent, authenticate_base_url, return_url)
    return intent


def _redirect_to_authenticate(intent: Any, authenticate_base_url: str, return_url: str) -> None:
    url = f"{authenticate_base_url}/authenticate/{intent.id}?return_url={quote(return_url, safe='')}"
    intent.next_action = {
        "type": "redirect_to_url",
        "redirect_to_url": {"url": url, "return_url": return_url},
    }


def authenticate_payment_intent(intent_id: str, success: bool) -> Any:
    """Finish (or fail) 3-D Secure the way Stripe's hosted challenge page would.

    Uses localstripe's own `_api_authenticate`; success creates the charge (and the
    `payment_intent.succeeded` webhook), failure leaves `requires_payment_method` with
    `last_payment_error.code == payment_intent_authentication_failure`.
    """
    intent = ls.PaymentIntent._api_retrieve(intent_id)
    if intent.status != "requires_action":
        raise _unexpected_state(intent, "authenticate")
    try:
        ls.PaymentIntent._api_authenticate(intent_id, client_secret=intent.client_secret, success=success)
    except UserError as exc:
        if exc.code == 402:
            _enrich_payment_error(exc, intent)
        raise
    if not success:
        schedule_webhook(ls.Event("payment_intent.payment_failed", intent))
    return intent


# -- Checkout Sessions (mode=setup) -------------------------------------------------------
@functools.cache
def checkout_session_class() -> type[Any]:
    """The `checkout.session` StripeObject subclass (defined on first use, not at import)."""

    class CheckoutSession(ls.StripeObject):  # type: ignore[misc]
        object = "checkout.session"
        _id_prefix = "cs_test_"

        def __init__(
            self,
            mode: Any = None,
            customer: Any = None,
            currency: Any = None,
            success_url: Any = None,
            cancel_url: Any = None,
            payment_method_types: Any = None,
            metadata: Any = None,
            client_reference_id: Any = None,
            setup_intent_data: Any = None,
            expires_at: Any = None,
            **kwargs: Any,
        ) -> None:
            _unexpected(kwargs)
            if mode is None:
                raise _invalid("Missing required param: mode.", param="mode")
            if mode != "setup":
                raise _invalid(
                    f"The sandbox supports only mode=setup Checkout Sessions (got {mode!r}).", param="mode"
                )
            for name, value in (
                ("customer", customer),
                ("currency", currency),
                ("success_url", success_url),
                ("cancel_url", cancel_url),
                ("client_reference_id", client_reference_id),
            ):
                if value is not None and not isinstance(value, str):
                    raise _invalid(f"Invalid {name}: must be a string", param=name)
            for name, url in (("success_url", success_url), ("cancel_url", cancel_url)):
                if url is not None and not re.match(r"^https?://", url):
                    raise _invalid(f"Not a valid URL: {name}", param=name, code="url_invalid")
            if customer is not None:
                ls.Customer._api_retrieve(customer)  # 404 if unknown
            types = payment_method_types if payment_method_types is not None else ["card"]
            if not isinstance(types, list) or not types or any(t != "card" for t in types):
                raise _invalid(
                    "The sandbox's hosted page collects cards only: payment_method_types must be ['card'].",
                    param="payment_method_types",
                )
            if metadata is not None and not isinstance(metadata, dict):
                raise _invalid("Invalid metadata: must be an object", param="metadata")
            setup_data = setup_intent_data or {}
            if not isinstance(setup_data, dict):
                raise _invalid("Invalid setup_intent_data", param="setup_intent_data")
            _unexpected(
                {k: v for k, v in setup_data.items() if k not in {"metadata", "description"}},
                "setup_intent_data",
            )
            now = int(time.time())
            expiry = _to_int(expires_at) if expires_at is not None else now + CHECKOUT_SESSION_TTL_SECONDS
            if expiry is None or not now + 1800 <= expiry <= now + CHECKOUT_SESSION_TTL_SECONDS:
                raise _invalid(
                    "expires_at must be between 30 minutes and 24 hours from now.", param="expires_at"
                )

            setup_intent = ls.SetupIntent(
                customer=customer,
                usage="off_session",
                payment_method_types=types,
                metadata=setup_data.get("metadata") or {},
            )
            setup_intent.description = setup_data.get("description")

            # All exceptions must be raised before this point (this registers the object).
            super().__init__(id="cs_test_" + ls.random_id(56))
            self.mode = mode
            self.customer = customer
            self.currency = currency.lower() if currency else None
            self.status = "open"
            self.payment_status = "no_payment_required"
            self.url: str | None = None  # set by the HTTP layer, which knows the public base URL
            self.success_url = success_url
            self.cancel_url = cancel_url
            self.metadata = metadata or {}
            self.setup_intent = setup_intent.id
            self.client_reference_id = client_reference_id
            self.payment_method_types = types
            self.expires_at = expiry
            self.ui_mode = "hosted"

    return CheckoutSession


def create_checkout_session(public_base_url: str, **params: Any) -> Any:
    """`POST /v1/checkout/sessions`; `url` is this server's `/checkout/{id}` page."""
    session = checkout_session_class()(**params)
    session.url = f"{public_base_url}/checkout/{session.id}"
    return session


def retrieve_checkout_session(session_id: str) -> Any:
    session = checkout_session_class()._api_retrieve(session_id)
    _expire_if_due(session)
    return session


def list_checkout_sessions(
    url: str, customer: Any = None, limit: Any = None, starting_after: Any = None, **kwargs: Any
) -> Any:
    """`GET /v1/checkout/sessions` (optional `customer`), newest first."""
    _unexpected(kwargs)
    li = ls.List(url, limit=limit, starting_after=starting_after)
    li._list = [
        session
        for key, session in reversed(list(ls.store.items()))
        if key.startswith("checkout.session:") and (customer is None or session.customer == customer)
    ]
    for session in li._list:
        _expire_if_due(session)
    return li


def expire_checkout_session(session_id: str, **kwargs: Any) -> Any:
    """`POST /v1/checkout/sessions/{id}/expire`."""
    _unexpected(kwargs)
    session = retrieve_checkout_session(session_id)
    if session.status != "open":
        raise _invalid(
            f"Only Checkout Sessions with a status of open can be expired (this one is {session.status})."
        )
    _expire(session)
    return session


def _expire(session: Any) -> None:
    session.status = "expired"
    session.url = None
    setup_intent = ls.SetupIntent._api_retrieve(session.setup_intent)
    setup_intent.status = "canceled"
    schedule_webhook(ls.Event("checkout.session.expired", session))


def _expire_if_due(session: Any) -> None:
    if session.status == "open" and time.time() >= session.expires_at:
        _expire(session)


def complete_checkout_session(
    session_id: str, *, number: str, exp_month: int, exp_year: int, cvc: str | None, name: str | None
) -> Any:
    """What Stripe's hosted page does on "Save": create the card, attach it, finish.

    Raises UserError (402 for declines, 400 for bad input) without changing the
    session, so the page can show the message and let the customer try again.
    A card that would need 3-D Secure is treated as authenticated on the page.
    """
    session = retrieve_checkout_session(session_id)
    if session.status != "open":
        raise _invalid(f"This Checkout Session is {session.status}.")
    card: dict[str, Any] = {"number": number, "exp_month": exp_month, "exp_year": exp_year}
    if cvc:
        card["cvc"] = cvc
    if _expired(exp_month, exp_year if exp_year >= 100 else exp_year + 2000):
        raise _card_error("invalid_expiry_year", "Your card's expiration date is in the past.", "exp_year")
    pm = ls.PaymentMethod(type="card", card=card, billing_details={"name": name} if name else None)
    if session.customer:
        try:
            ls.PaymentMethod._api_attach(pm.id, customer=session.customer)
        except UserError:
            del ls.store["payment_method:" + pm.id]
            raise
    setup_intent = ls.SetupIntent._api_retrieve(session.setup_intent)
    setup_intent.payment_method = pm.id
    setup_intent.status = "succeeded"
    setup_intent.next_action = None
    session.status = "complete"
    session.url = None
    if session.customer:
        schedule_webhook(ls.Event("payment_method.attached", pm))
    schedule_webhook(ls.Event("setup_intent.succeeded", setup_intent))
    schedule_webhook(ls.Event("checkout.session.completed", session))
    return session


# -- persistence --------------------------------------------------------------------------
def _no_dump_to_disk(self: Any) -> None:
    """localstripe pickles the whole store to /tmp/localstripe.pickle on every write."""


def _no_load_from_disk(self: Any) -> None:
    """Never resurrect another instance's /tmp/localstripe.pickle."""


# -- entry point --------------------------------------------------------------------------
def apply_patches() -> None:
    """Patch localstripe's classes in place; idempotent (only the first call does anything)."""
    global _applied
    if _applied:
        return

    ls.Store.dump_to_disk = _no_dump_to_disk
    ls.Store.try_load_from_disk = _no_load_from_disk

    ls.PaymentMethod.__init__ = _payment_method_init
    ls.PaymentMethod._charging_is_declined = _payment_method_charging_is_declined
    ls.PaymentMethod._api_list_all = classmethod(_payment_method_list_all)

    ls.Charge._set_auth_failure = _charge_set_auth_failure
    ls.Charge._is_async_payment_method = _charge_is_async_payment_method
    ls.Charge._initialize_charge = _wrap_initialize_charge(ls.Charge._initialize_charge)

    ls.PaymentIntent.__init__ = _wrap_payment_intent_init(ls.PaymentIntent.__init__)
    ls.PaymentIntent._api_create = classmethod(_payment_intent_api_create)
    ls.PaymentIntent._api_list_all = classmethod(_payment_intent_list_all)
    ls.PaymentIntent._export = _wrap_payment_intent_export(ls.PaymentIntent._export)

    checkout_session_class()
    _applied = True
