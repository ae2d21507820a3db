"""Money on the wire is a decimal string in major units; in the database it is an
integer count of minor units. Floats never appear anywhere.

The scale is ISO 4217's minor units, as the billing API contract says (HUF 2, IDR 2,
ISK 0, KWD 3), taken from the bot's one money module: a sandbox may import the bot's
domain code, never the other way round."""

from __future__ import annotations

import re
from decimal import Decimal

from bot.money import is_iso_currency, iso_digits

from .errors import rejected

# Plain decimal notation only: no exponent, sign "+", spaces, or bare ".5".
_AMOUNT_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def is_known_currency(code: object) -> bool:
    """An upper-case ISO 4217 code with minor units (not XAU, XXX, ...)."""
    return is_iso_currency(code)


def currency_exponent(currency: str) -> int:
    """ISO 4217 minor-unit digits: JPY 0, EUR 2, HUF 2, KWD 3 (not CLDR's display digits)."""
    return iso_digits(currency)


def parse_decimal(value: object, field: str = "amount") -> Decimal:
    """Parse a wire money string (any sign, any precision) or raise 422 invalid_amount."""
    if not isinstance(value, str):
        raise rejected(
            "invalid_amount", f'{field} must be a decimal string such as "12.50", not {type(value).__name__}'
        )
    if not _AMOUNT_RE.fullmatch(value):  # fullmatch: "$" would let "12.50\n" through
        raise rejected("invalid_amount", f"{field} {value!r} is not a plain decimal string")
    return Decimal(value)


def to_minor(amount: Decimal, currency: str, field: str = "amount") -> int:
    """Convert major units to integer minor units, rejecting excess precision.

    Precision is judged on the digits as written: at most the ISO digits, trailing zeros
    optional ("150000" and "150000.00" for HUF). "1200.000" EUR is rejected even though
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
