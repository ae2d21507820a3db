"""Money on the wire is a decimal string in major units; in the database it is an
integer count of minor units. Floats never appear anywhere."""

from __future__ import annotations

import re
from decimal import Decimal

from babel.numbers import get_currency_precision, is_currency

from .errors import rejected

# Plain decimal notation only: no exponent, sign "+", spaces, or bare ".5".
_AMOUNT_RE = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


def is_known_currency(code: object) -> bool:
    # babel answers a precision of 2 for *any* code, so check existence separately.
    return isinstance(code, str) and bool(_CURRENCY_RE.match(code)) and is_currency(code)


def currency_exponent(currency: str) -> int:
    """ISO 4217 minor-unit exponent: JPY 0, EUR 2, KWD 3."""
    return int(get_currency_precision(currency))


def parse_decimal(value: object, field: str = "amount") -> Decimal:
    """Parse a wire money string (any sign, any precision) or raise 422 invalid_amount."""
    if not isinstance(value, str):
        raise rejected(
            "invalid_amount", f'{field} must be a decimal string such as "12.50", not {type(value).__name__}'
        )
    if not _AMOUNT_RE.match(value):
        raise rejected("invalid_amount", f"{field} {value!r} is not a plain decimal string")
    return Decimal(value)


def to_minor(amount: Decimal, currency: str, field: str = "amount") -> int:
    """Convert major units to integer minor units, rejecting excess precision.

    Precision is judged on the digits as written: "1200.000" EUR is rejected even though
    its value fits, because a client sending it is not formatting by the currency's
    exponent and would likely also send "0.001".
    """
    exponent = currency_exponent(currency)
    decimals = -amount.as_tuple().exponent  # type: ignore[operator]
    if decimals > exponent:
        raise rejected(
            "invalid_amount",
            f"{field} has {decimals} decimal places but {currency} allows {exponent}",
        )
    return int(amount.scaleb(exponent))


def parse_minor(value: object, currency: str, field: str = "amount") -> int:
    return to_minor(parse_decimal(value, field), currency, field)


def format_minor(minor: int, currency: str) -> str:
    """Integer minor units -> wire string with exactly the currency's decimals."""
    exponent = currency_exponent(currency)
    return format(Decimal(minor).scaleb(-exponent), "f")
