"""The one money module: exact amounts, the two scales they travel in, and how people write them.

Two scales, kept apart:

* **ISO 4217** minor-unit digits (`iso_digits`) are the billing API's scale (its decimal
  strings carry at most that many decimals) and the bot database's (`Money.minor`).
* **Stripe's** scale (`stripe_digits`, `Money.to_stripe`) follows docs.stripe.com/currencies,
  which differs from ISO 4217 (ISK, the three-decimal rule) and from CLDR's display digits
  (HUF, IDR, COP, TWD, ... which CLDR shows without decimals).

A conversion between them is exact or refused with a `MoneyError`; nothing is ever rounded,
except `Money.percent`, which says how. Floats never appear.

What a person types is read with `parse_amount` in their locale (Babel's CLDR data) and
either means one amount, is refused in words, or - when it could mean two amounts - raises
`AmbiguousAmount` so the person is asked which one they meant.
"""

from __future__ import annotations

import decimal
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.numbers import (
    get_decimal_symbol,
    get_group_symbol,
    parse_pattern,
)
from iso4217 import Currency as _Iso4217

# Every computation here is exact: amounts are at most a few dozen digits, and a context
# far wider than that means no operation below can round silently (the default context's
# 28 digits once let `1.0000000000000000000000000000009` pass a decimals check).
_EXACT = decimal.Context(prec=100, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])
_WIDE = decimal.Context(prec=100)  # for the one rounding (percent), still never too narrow


class MoneyError(ValueError):
    """An amount that is not acceptable; the message is safe to show to a user."""


class AmbiguousAmount(MoneyError):
    """What was typed could mean two different amounts; the person must say which."""

    def __init__(self, message: str, readings: tuple[Money, Money]) -> None:
        super().__init__(message)
        self.readings = readings


class WrongFormat(MoneyError):
    """Not how amounts are written in the person's locale; `suggestion` is the one
    sensible reading, shown to them but never charged."""

    def __init__(self, message: str, suggestion: Money | None = None) -> None:
        super().__init__(message)
        self.suggestion = suggestion


# ---------------------------------------------------------------------------------------
# The ISO 4217 scale
# ---------------------------------------------------------------------------------------

# ISO 4217 List One comes from the `iso4217` package (public domain, a copy of the ISO
# maintenance agency's table.xml; see its version in pyproject.toml). Codes ISO has
# withdrawn (List Three) but Stripe still accepts are added here with their last ISO
# minor unit, so old invoices in them stay exact (checked 2026-12-02):
_WITHDRAWN_ISO_DIGITS: dict[str, int] = {
    "ANG": 2,  # Netherlands Antillean guilder, replaced by XCG on 2025-03-31
    "BGN": 2,  # Bulgarian lev, replaced by EUR on 2026-01-01
    "STD": 2,  # São Tomé dobra, replaced by STN in 2018 (Stripe still lists STD)
}


@lru_cache(maxsize=1)
def _iso_table() -> dict[str, int]:
    table = {c.code: c.exponent for c in _Iso4217 if c.exponent is not None}  # XAU, XXX, ... have none
    return _WITHDRAWN_ISO_DIGITS | table


def iso_digits(currency: str) -> int:
    """ISO 4217 minor-unit digits, the billing API's scale: JPY 0, EUR 2, HUF 2, ISK 0, KWD 3, CLF 4."""
    code = currency.upper() if isinstance(currency, str) else currency
    try:
        return _iso_table()[code]
    except (KeyError, TypeError):
        raise MoneyError(f"{currency!r} is not an ISO 4217 currency with minor units") from None


def is_iso_currency(currency: object) -> bool:
    """True for an upper-case ISO 4217 code that has minor units (what an invoice may use)."""
    return isinstance(currency, str) and currency in _iso_table()


# ---------------------------------------------------------------------------------------
# Stripe's scale (https://docs.stripe.com/currencies)
# ---------------------------------------------------------------------------------------

# "Supported presentment currencies" for card payments, transcribed from that page (the
# zero-decimal, three-decimal and special-case lists below are quoted from it; the full
# list was checked against copies of the page, not a live fetch, on 2026-12-02). XCG,
# ANG's successor, is not in it yet: add it when Stripe's page lists it.
STRIPE_CURRENCIES: frozenset[str] = frozenset("""
    USD AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CVE CZK DJF DKK DOP DZD EGP ETB EUR FJD FKP GBP
    GEL GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR ISK JMD JOD JPY KES KGS KHR KMF KRW
    KWD KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MUR MVR MWK MXN MYR MZN NAD
    NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SEK
    SGD SHP SLE SOS SRD STD SZL THB TJS TND TOP TRY TTD TWD TZS UAH UGX UYU UZS VND VUV WST
    XAF XCD XOF XPF YER ZAR ZMW
""".split())

# "Zero-decimal currencies": Stripe's `amount` is in major units.
STRIPE_ZERO_DECIMAL: frozenset[str] = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()
)
# "Three-decimal currencies": `amount` in thousandths, and its last digit must be 0
# (amounts are charged to the hundredth).
STRIPE_THREE_DECIMAL: frozenset[str] = frozenset("BHD JOD KWD OMR TND".split())
# "Special cases", as they bear on charges (every other currency is two-decimal):
#  - ISK moved to zero decimals but stays two-decimal in the API for backwards
#    compatibility: 5 ISK is `amount=500`, and fractions of ISK cannot be charged.
#  - HUF and TWD are zero-decimal for payouts only; charges are two-decimal and may
#    carry fractions (`amount=15000000` is HUF 150,000.00).
#  - UGX is zero-decimal for charges (it is on the list above); it is two-decimal
#    only for payouts.
_STRIPE_WHOLE_UNITS_ONLY: frozenset[str] = frozenset({"ISK"})

# "Minimum and maximum charge amounts", in major units. Stripe's table lists these for
# settlement currencies; a charge in any other currency must convert to at least the
# settlement currency's minimum (about USD 0.50), which needs an exchange rate the bot
# does not have: for those currencies the bot checks only the smallest amount both scales
# can represent and reports Stripe's own refusal (`amount_too_small`) truthfully.
_STRIPE_MINIMUMS: dict[str, str] = {
    "USD": "0.50", "AED": "2.00", "AUD": "0.50", "BGN": "1.00", "BRL": "0.50",
    "CAD": "0.50", "CHF": "0.50", "CZK": "15.00", "DKK": "2.50", "EUR": "0.50",
    "GBP": "0.30", "HKD": "4.00", "HUF": "175.00", "INR": "0.50", "JPY": "50",
    "MXN": "10", "MYR": "2", "NOK": "3.00", "NZD": "0.50", "PLN": "2.00",
    "RON": "2.00", "SEK": "3.00", "SGD": "0.50", "THB": "10",
}
# "The amount value supports up to eight digits (e.g., 99999999 for USD 999,999.99)";
# IDR up to twelve.
_STRIPE_MAX_DIGITS: dict[str, int] = {"IDR": 12}
_STRIPE_DEFAULT_MAX_DIGITS = 8


def stripe_supports(currency: str) -> bool:
    return isinstance(currency, str) and currency.upper() in STRIPE_CURRENCIES


def stripe_digits(currency: str) -> int:
    """How many decimals Stripe's integer `amount` carries: JPY 0, EUR 2, HUF 2, ISK 2, KWD 3."""
    code = currency.upper()
    if code not in STRIPE_CURRENCIES:
        raise MoneyError(f"Card payments in {code} are not possible: Stripe does not support {code}.")
    if code in STRIPE_ZERO_DECIMAL:
        return 0
    if code in STRIPE_THREE_DECIMAL:
        return 3
    return 2


def stripe_maximum_units(currency: str) -> int:
    """The largest Stripe `amount` (in Stripe's units) for one charge."""
    return 10 ** _STRIPE_MAX_DIGITS.get(currency.upper(), _STRIPE_DEFAULT_MAX_DIGITS) - 1


def _decimals(value: Decimal) -> int:
    """Decimals the value needs (trailing zeros do not count); exact at any length."""
    if not value.is_finite():
        raise MoneyError(f"{value} is not an amount")
    if value.is_zero():
        return 0
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    needed, index = -exponent, len(digits)
    while needed > 0 and index > 0 and digits[index - 1] == 0:
        needed, index = needed - 1, index - 1
    return max(0, needed)


def _scaled(value: Decimal, digits: int) -> Decimal:
    """`value` written with exactly `digits` decimals; only call when it fits."""
    return value.quantize(Decimal(1).scaleb(-digits), context=_EXACT)


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount in major units of an ISO 4217 currency."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError("Money.amount must be a Decimal")
        if not self.amount.is_finite():
            raise MoneyError(f"{self.amount} is not an amount")
        if not isinstance(self.currency, str):
            raise TypeError("Money.currency must be a currency code")
        object.__setattr__(self, "currency", self.currency.upper())

    # -- construction ------------------------------------------------------------------
    @classmethod
    def of(cls, amount: str | Decimal | int, currency: str) -> Money:
        """Exact constructor from a Decimal, an int or a plain decimal string (floats refused)."""
        if isinstance(amount, float | bool):
            raise TypeError("floats are not money")
        try:
            value = amount if isinstance(amount, Decimal) else Decimal(amount)
        except (decimal.InvalidOperation, TypeError, ValueError) as exc:
            raise MoneyError(f"{amount!r} is not an amount") from exc
        if not value.is_finite():
            raise MoneyError(f"{amount!r} is not an amount")
        return cls(value, currency)

    @classmethod
    def from_api(cls, text: object, currency: str) -> Money:
        """Strictly read a billing API amount: a plain decimal string in major units with
        at most the currency's ISO digits as written ("150000" and "150000.00" for HUF;
        not "150000.000", "1e3", " 5", "+5" or a JSON number)."""
        digits = iso_digits(currency)
        if not isinstance(text, str) or not _API_AMOUNT.fullmatch(text):
            raise MoneyError(f"{text!r} is not a plain decimal amount")
        _, _, fraction = text.partition(".")
        if len(fraction) > digits:
            raise MoneyError(f"{text!r} has more than the {digits} decimals {currency.upper()} has")
        return cls(Decimal(text), currency)

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        """From ISO minor units (what the bot's database stores): 120000 EUR is 1200.00."""
        if not isinstance(minor, int) or isinstance(minor, bool):
            raise TypeError("minor units are an int")
        digits = iso_digits(currency)
        return cls(Decimal(minor).scaleb(-digits, context=_EXACT), currency)

    @classmethod
    def from_stripe(cls, units: int, currency: str) -> Money:
        """From Stripe's integer `amount`; refused when the ISO scale cannot hold it
        (150 ISK units are 1.50 ISK) or Stripe could not have charged it."""
        if not isinstance(units, int) or isinstance(units, bool):
            raise TypeError("Stripe amounts are an int")
        money = cls(Decimal(units).scaleb(-stripe_digits(currency), context=_EXACT), currency)
        money.to_stripe()  # the same checks both ways: exact, or refused
        return money

    # -- the ISO scale -----------------------------------------------------------------
    @property
    def minor(self) -> int:
        """ISO 4217 minor units (the bot database's scale); exact or a MoneyError."""
        digits = iso_digits(self.currency)
        if _decimals(self.amount) > digits:
            raise MoneyError(f"{self.amount} has more decimals than {self.currency} allows")
        return int(self.amount.scaleb(digits, context=_EXACT))

    def api_string(self) -> str:
        """The billing API's form: major units with exactly the ISO digits ("1200.00",
        "5000" JPY, "1.500" KWD); refused, never rounded, when the amount has more."""
        digits = iso_digits(self.currency)
        if _decimals(self.amount) > digits:
            raise MoneyError(f"{self.amount} has more decimals than {self.currency} allows")
        return format(_scaled(self.amount, digits), "f")

    # -- Stripe's scale ----------------------------------------------------------------
    def to_stripe(self) -> int:
        """Stripe's integer `amount`; exact, or a MoneyError when either scale cannot
        represent this amount (fractions of ISK, a third KWD decimal other than 0, more
        decimals than ISO allows) or Stripe does not support the currency."""
        code = self.currency
        digits = stripe_digits(code)
        if self.amount < 0:
            raise MoneyError("A card payment must be more than zero.")
        needed = _decimals(self.amount)
        if code in _STRIPE_WHOLE_UNITS_ONLY and needed > 0:
            raise MoneyError(f"Card payments in {code} must be whole amounts: Stripe cannot charge fractions of {code}.")
        if needed > iso_digits(code):
            raise MoneyError(f"{self.amount} has more decimals than {code} allows")
        if needed > digits:
            if digits == 0:
                raise MoneyError(f"Card payments in {code} must be whole amounts.")
            raise MoneyError(f"Card payments in {code} have at most {digits} decimals.")
        units = int(self.amount.scaleb(digits, context=_EXACT))
        if code in STRIPE_THREE_DECIMAL and units % 10:
            raise MoneyError(f"Card payments in {code} must end in 0 (at most 2 decimals).")
        return units

    # -- display -----------------------------------------------------------------------
    def format(self, locale: str = "en_US") -> str:
        """`€1,200.00`, `¥5,000`, `$12.50`, `KWD12.500`: an alias of `format_money`."""
        return format_money(self, locale)

    # -- arithmetic --------------------------------------------------------------------
    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError("only Money combines with Money")
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(_EXACT.add(self.amount, other.amount), self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(_EXACT.subtract(self.amount, other.amount), self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def percent(self, rate: Decimal) -> Money:
        """`rate` percent of this amount (a card fee), rounded half-up (0.5 away from
        zero) to the currency's ISO digits: 2.9 % of EUR 1000.50 is 29.0145 -> 29.01,
        of JPY 5001 is 145.029 -> 145. The one place this module rounds."""
        if not isinstance(rate, Decimal):
            raise TypeError("a rate is a Decimal")
        digits = iso_digits(self.currency)
        exact = _EXACT.divide(_EXACT.multiply(self.amount, rate), Decimal(100))
        value = exact.quantize(Decimal(1).scaleb(-digits), rounding=decimal.ROUND_HALF_UP, context=_WIDE)
        return Money(value, self.currency)

    def __str__(self) -> str:
        try:
            return f"{self.api_string()} {self.currency}"
        except MoneyError:
            return f"{self.amount} {self.currency}"


_API_AMOUNT = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def stripe_minimum(currency: str) -> Money:
    """Stripe's minimum charge for the currency (its table), else the smallest amount both
    scales can represent (see `_STRIPE_MINIMUMS` for why)."""
    code = currency.upper()
    if code in _STRIPE_MINIMUMS:
        return Money.of(_STRIPE_MINIMUMS[code], code)
    if code in _STRIPE_WHOLE_UNITS_ONLY:
        return Money(Decimal(1), code)
    digits = min(iso_digits(code), stripe_digits(code))
    if code in STRIPE_THREE_DECIMAL:
        digits = 2  # the last of the three digits must be 0
    return Money(Decimal(1).scaleb(-digits), code)


def stripe_maximum(currency: str) -> Money:
    """The largest single card payment Stripe takes in the currency (8 digits, IDR 12)."""
    code = currency.upper()
    units = stripe_maximum_units(code)
    if code in STRIPE_THREE_DECIMAL:
        units -= units % 10
    if code in _STRIPE_WHOLE_UNITS_ONLY:
        units -= units % 100
    return Money(Decimal(units).scaleb(-stripe_digits(code), context=_EXACT), code)


def check_chargeable(money: Money, locale: str = "en_US") -> None:
    """Stripe's rules before anything is charged, with messages in `locale`: the currency
    is supported, the amount converts exactly to Stripe's scale (ISK whole, three-decimal
    last digit 0), and it lies within Stripe's minimum and maximum for one charge."""
    code = money.currency
    if code not in STRIPE_CURRENCIES:
        raise MoneyError(f"Card payments in {code} are not possible: Stripe does not support {code}.")
    if money.amount <= 0:
        raise MoneyError("The amount must be more than zero.")
    units = money.to_stripe()
    minimum = stripe_minimum(code)
    if money < minimum:
        raise MoneyError(f"The smallest card payment in {code} is {format_money(minimum, locale)}.")
    if units > stripe_maximum_units(code):
        raise MoneyError(f"The largest card payment in {code} is {format_money(stripe_maximum(code), locale)}.")


def totals_by_currency(amounts: Iterable[Money]) -> list[Money]:
    """Sum per currency, sorted by currency code (a stable order for lists and tests)."""
    sums: dict[str, Money] = {}
    for money in amounts:
        sums[money.currency] = sums[money.currency] + money if money.currency in sums else money
    return [sums[code] for code in sorted(sums)]


# ---------------------------------------------------------------------------------------
# Amounts as people write them
# ---------------------------------------------------------------------------------------

_MAX_INPUT = 40
# Direction marks Babel puts around Arabic amounts (and people paste back).
_BIDI_MARKS = dict.fromkeys(map(ord, "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
_SPACES = frozenset(" \u00a0\u202f\u2009\u2007")
_APOSTROPHES = frozenset("'\u2019")
_MINUS = frozenset("-\u2212\u2012\u2013")
_PLUS = frozenset("+\uff0b")
# Arabic decimal separator and thousands separator, read as their Latin counterparts.
_ARABIC_SEPARATORS = str.maketrans({"\u066b": ".", "\u066c": ","})


@dataclass(frozen=True, slots=True)
class _NumberFormat:
    """What Babel's CLDR data says about writing numbers in one locale."""

    tag: str  # "de-DE", for messages
    decimal: str  # in Latin form ("." or ","), Arabic ٫ already mapped to "."
    group: str  # "," "." " " "'" (a kind of space -> " ", an apostrophe -> "'")
    primary: int  # grouping sizes: 3 and 3, or 3 and 2 (hi-IN: 12,34,567)
    secondary: int
    currency_grouping: tuple[int, int]  # the currency pattern's, which may differ (mr-IN)
    native_zero: str  # "0", or "٠" where the locale writes Arabic-Indic digits
    native_decimal: str  # the symbols as the locale writes them with its own digits
    native_group: str


# The zero of CLDR's numbering systems a locale may default to (Babel knows which system a
# locale uses, e.g. ar-EG "arab", but formats with Latin digits; Unicode digits 0-9 follow
# their zero).
_NUMBERING_ZERO: dict[str, str] = {
    "latn": "0", "arab": "\u0660", "arabext": "\u06f0", "beng": "\u09e6", "deva": "\u0966",
    "mymr": "\u1040", "tibt": "\u0f20", "olck": "\u1c50", "nkoo": "\u07c0", "adlm": "\U0001e950",
}


@lru_cache(maxsize=256)
def _locale(tag: str) -> Locale:
    """Babel's locale for a Slack or Babel tag ("de-DE", "de_DE"); a tag Babel does not
    know falls back to its language (Slack's "es-LA" -> "es"), then to en-US."""
    candidates = [tag.replace("-", "_"), tag.replace("-", "_").split("_")[0]] if isinstance(tag, str) else []
    for candidate in [*candidates, "en_US"]:
        try:
            return Locale.parse(candidate)
        except (UnknownLocaleError, ValueError, TypeError):
            continue
    raise AssertionError("en_US is always known")  # pragma: no cover


@lru_cache(maxsize=256)
def _number_format(tag: str) -> _NumberFormat:
    locale = _locale(tag)
    pattern = locale.decimal_formats[None]
    primary, secondary = pattern.grouping
    native_zero = _NUMBERING_ZERO.get(locale.default_numbering_system, "0")
    native_decimal = get_decimal_symbol(locale, numbering_system="default")
    native_group = get_group_symbol(locale, numbering_system="default")

    def latin(symbol: str) -> str:
        symbol = symbol.translate(_ARABIC_SEPARATORS)
        if symbol in _SPACES:
            return " "
        if symbol in _APOSTROPHES:
            return "'"
        return symbol

    decimal_symbol = latin(get_decimal_symbol(locale, numbering_system="latn"))
    group_symbol = latin(get_group_symbol(locale, numbering_system="latn"))
    return _NumberFormat(
        tag=str(locale).replace("_", "-"), decimal=decimal_symbol, group=group_symbol,
        primary=primary, secondary=secondary, currency_grouping=locale.currency_formats["standard"].grouping,
        native_zero=native_zero,
        native_decimal=native_decimal, native_group=native_group,
    )


@lru_cache(maxsize=256)
def _currency_tokens(tag: str) -> dict[str, frozenset[str]]:
    """Currency symbols and codes a person of this locale may write -> the currencies they name."""
    locale = _locale(tag)
    tokens: dict[str, set[str]] = {}
    # The locale's own symbols first, then English ones ("US$", "£") people also type.
    for source in (locale, Locale.parse("en"), Locale.parse("en_001")):
        for code, symbol in source.currency_symbols.items():
            tokens.setdefault(symbol.translate(_BIDI_MARKS).strip().casefold(), set()).add(code)
    for code in _iso_table():
        tokens.setdefault(code.casefold(), set()).add(code)
    longest_first = sorted((t for t in tokens if t and not any(c.isdigit() for c in t)), key=len, reverse=True)
    return {token: frozenset(tokens[token]) for token in longest_first}


def _peel_currency(text: str, currency: str, tag: str, shown: str) -> str:
    """Take one currency symbol or code off either end; refuse one naming another currency."""
    tokens = _currency_tokens(tag)
    for token in tokens:  # longest first, so "us$" wins over "$"
        size = len(token)
        if size >= len(text):
            continue
        for at_start in (True, False):
            # Compared slice by slice: casefolding the whole text could change its length.
            if at_start and text[:size].casefold() == token:
                rest = text[size:]
            elif not at_start and text[-size:].casefold() == token:
                rest = text[:-size]
            else:
                continue
            # A letter token must not be glued to more letters ("EURO5", "5EURx").
            edge = rest[:1] if at_start else rest[-1:]
            if token[-1 if at_start else 0].isalpha() and edge.isalpha():
                continue
            codes = tokens[token]
            if currency not in codes:
                named = ", ".join(sorted(codes))
                raise MoneyError(
                    f"“{shown}” is not a number in {currency}. This invoice is in {currency}; you typed {named}: "
                    f"enter the amount in {currency}."
                )
            return rest.strip("".join(_SPACES))
    return text


def _digits_to_ascii(text: str, fmt: _NumberFormat, original: str) -> str:
    """Digits of the locale's own script or ASCII (never both), as ASCII."""
    scripts: set[int] = set()
    out = []
    for char in text:
        value = unicodedata.decimal(char, None)
        if value is None:
            out.append(char)
            continue
        zero = ord(char) - value
        scripts.add(zero)
        out.append(str(value))
    allowed = {ord("0"), ord(fmt.native_zero)}
    if scripts - allowed:
        raise MoneyError(f"“{original}” uses digits this form cannot read. Type the amount with the digits 0-9.")
    if len(scripts) > 1:
        raise MoneyError(f"“{original}” mixes two kinds of digits. Type the amount with one kind of digits.")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class _Reading:
    integer: str
    fraction: str  # as written, trailing zeros included


def _read(text: str, decimal_mark: str, groups: frozenset[str], primary: int, secondary: int) -> _Reading | None:
    """Read `text` (ASCII digits and separators) under one convention, or None when it is
    not a well-formed number in it: at most one decimal mark, group marks only between
    groups of the right sizes (the last `primary` wide, the ones before `secondary`)."""
    if text.count(decimal_mark) > 1:
        return None
    integer, mark, fraction = text.partition(decimal_mark)
    if mark and not fraction:
        return None  # "5." - a separator with nothing after it is a typo, not a number
    if fraction and not fraction.isdigit():
        return None
    if not integer:
        return _Reading("0", fraction) if fraction else None
    parts = re.split("|".join(map(re.escape, sorted(groups))), integer) if groups else [integer]
    if not all(part.isdigit() for part in parts):
        return None
    if len(parts) > 1:
        first, middle, last = parts[0], parts[1:-1], parts[-1]
        if len(last) != primary or not 1 <= len(first) <= secondary or any(len(p) != secondary for p in middle):
            return None
        if first.startswith("0"):
            return None  # "0,500" is not a grouped number
    return _Reading("".join(parts), fraction)


def _to_money(reading: _Reading, currency: str) -> Money | None:
    """The reading as Money when the currency can hold it (trailing zeros are fine)."""
    digits = iso_digits(currency)
    if digits == 0 and reading.fraction:
        return None  # a currency without decimals takes none, not even zeros ("5,000" JPY is not 5)
    fraction = reading.fraction.rstrip("0")
    if len(fraction) > digits:
        return None
    return Money(Decimal(f"{int(reading.integer)}.{fraction.ljust(digits, '0')}" if digits else reading.integer.lstrip("0") or "0"), currency)


def _example(fmt: _NumberFormat) -> str:
    """`1,234.56` as the locale writes it (in Latin digits: the form takes both)."""
    return f"1{fmt.group}234{fmt.decimal}56"


def parse_amount(text: str | None, currency: str, locale: str) -> Money:
    """Read an amount as a person of `locale` wrote it ("de_DE" or "de-DE"), strictly.

    * The locale's decimal and group symbols and grouping sizes (Babel, CLDR): in de-DE
      `1.234,56` is 1234.56 and `100,50` 100.50; in en-US `1,234.56`; in hi-IN `12,34,567`;
      where the locale groups with a (narrow) no-break space, a plain space works too, and
      de-CH's apostrophe may be ' or ’. A number written without grouping is fine.
    * A leading decimal symbol means zero before it: `,5` in de-DE and `.5` in en-US are 0.50.
    * Digits are ASCII or the locale's own (ar-EG's Arabic-Indic, with ٫ and ٬), not both.
    * One currency symbol or ISO code before or after the number is fine when it names
      this invoice's currency (`€200`, `200 EUR`); naming another one is refused.
    * Input that could mean two amounts raises `AmbiguousAmount`: one '.' or ',' followed by
      exactly three digits, where reading it as grouping and as decimals both give amounts
      valid in the currency (`1,500`: 1500 or 1.5; `1.200` in de-DE; `50.000` in en-US). Not
      ambiguous: when only one reading is valid (JPY `1.200` in de-DE is 1200), or when the
      symbol is the locale's decimal and the currency has exactly three decimals, as
      KWD amounts are written (`1.500` KWD in en-US is 1.500).
    * Refused in words (a MoneyError): empty, longer than 40 characters, signs, exponents,
      letters, the other convention's separators (`4,50` in en-US: `WrongFormat`, naming
      4.50 as what they probably meant, without charging it), bad grouping (`1,2,3`), more
      decimals than the currency has (any length), zero.
    """
    original = (text or "").strip()
    if not original:
        raise MoneyError("Enter the amount to pay.")
    if len(original) > _MAX_INPUT:
        raise MoneyError(f"That is too long for an amount ({_MAX_INPUT} characters at most).")
    currency = currency.upper()
    iso_digits(currency)
    fmt = _number_format(locale)
    shown = original[:_MAX_INPUT]
    work = original.translate(_BIDI_MARKS).strip()
    _refuse_sign(work, shown)
    work = _peel_currency(work, currency, locale, shown)
    _refuse_sign(work, shown)
    work = _digits_to_ascii(work, fmt, shown).translate(_ARABIC_SEPARATORS)
    work = "".join(" " if c in _SPACES else "'" if c in _APOSTROPHES else c for c in work)
    if not work or not re.fullmatch(r"[0-9.,' ]+", work) or not re.search(r"[0-9]", work):
        if re.fullmatch(r"[0-9.,' ]*[eE][+-]?[0-9]+", work):
            raise MoneyError(f"“{shown}” is not a number: type the amount in full digits, like {_example(fmt)}.")
        raise MoneyError(f"“{shown}” is not a number. Enter an amount like {_example(fmt)}.")

    local = _read(work, fmt.decimal, frozenset({fmt.group}), fmt.primary, fmt.secondary)
    if local is None and fmt.currency_grouping != (fmt.primary, fmt.secondary):
        # Some locales group amounts of money differently from other numbers (CLDR's
        # mr-IN: 1,234,567.00 ₹ but 12,34,567): both are the locale's own way.
        local = _read(work, fmt.decimal, frozenset({fmt.group}), *fmt.currency_grouping)
    # The two common conventions, for spotting ambiguity and helping with typos.
    others = [
        _read(work, ",", frozenset({".", " ", "'"}), 3, 3),
        _read(work, ".", frozenset({",", " ", "'"}), 3, 3),
    ]

    if local is not None:
        money = _to_money(local, currency)
        ambiguous = _ambiguity(work, fmt, currency, money)
        if ambiguous is not None:
            raise _ambiguous(shown, ambiguous, locale)
        if money is None:
            raise _too_many_decimals(shown, currency, _suggestion(others, currency), locale)
        if money.amount <= 0:
            raise MoneyError("The amount must be more than zero.")
        return money

    readings = {m for m in (_to_money(r, currency) for r in others if r is not None) if m is not None and m.amount > 0}
    if len(readings) == 2:
        first, second = sorted(readings, key=lambda m: m.amount, reverse=True)
        raise _ambiguous(shown, (first, second), locale)
    if len(readings) == 1:
        (suggestion,) = readings
        written = format_amount_input(suggestion, locale)
        raise WrongFormat(
            f"“{shown}” is not how amounts are written here ({fmt.tag}: {_example(fmt)}). "
            f"If you mean {written}, type {written}.",
            suggestion,
        )
    if any(r is not None for r in others):
        if any(r is not None and _to_money(r, currency) is None for r in others):
            raise _too_many_decimals(shown, currency, None, locale)
        raise MoneyError("The amount must be more than zero.")
    raise MoneyError(f"“{shown}” is not an amount. Type it like {_example(fmt)}.")


def _refuse_sign(work: str, shown: str) -> None:
    if work[:1] in _MINUS or work[-1:] in _MINUS:
        raise MoneyError("The amount must be more than zero.")
    if work[:1] in _PLUS or work[-1:] in _PLUS:
        raise MoneyError(f"“{shown}”: type the amount without a sign.")


def _ambiguity(work: str, fmt: _NumberFormat, currency: str, local: Money | None) -> tuple[Money, Money] | None:
    """The two readings of a lone '.' or ',' followed by exactly three digits, when both
    are valid in the currency (see `parse_amount`)."""
    match = re.fullmatch(r"([0-9]{1,3})([.,])([0-9]{3})", work)
    if match is None or local is None:
        return None
    integer, mark, fraction = match.groups()
    if mark == fmt.decimal and iso_digits(currency) == 3:
        return None  # "1.500" KWD: written exactly as the currency is
    if integer.startswith("0"):
        return None  # "0.500" cannot be grouping
    grouped = _to_money(_Reading(integer + fraction, ""), currency)
    as_decimals = _to_money(_Reading(integer, fraction), currency)
    if grouped is None or as_decimals is None or as_decimals.amount <= 0:
        return None
    return grouped, as_decimals


def _ambiguous(shown: str, readings: tuple[Money, Money], locale: str) -> AmbiguousAmount:
    first, second = (format_amount_input(m, locale) for m in readings)
    return AmbiguousAmount(
        f"“{shown}” could be {first} or {second}. Type it with decimals, like {first} or {second}.", readings
    )


def _suggestion(readings: list[_Reading | None], currency: str) -> Money | None:
    valid = {m for m in (_to_money(r, currency) for r in readings if r is not None) if m is not None and m.amount > 0}
    return next(iter(valid)) if len(valid) == 1 else None


def _too_many_decimals(shown: str, currency: str, suggestion: Money | None, locale: str) -> MoneyError:
    digits = iso_digits(currency)
    message = (
        f"{currency} has no decimals: enter a whole amount." if digits == 0
        else f"{currency} amounts have at most {digits} decimals."
    )
    if suggestion is not None:
        written = format_amount_input(suggestion, locale)
        return WrongFormat(f"{message} If you mean {written}, type {written}.", suggestion)
    return MoneyError(message)


def _with_native_digits(text: str, fmt: _NumberFormat) -> str:
    if fmt.native_zero == "0":
        return text
    zero = ord(fmt.native_zero)
    return "".join(chr(zero + int(c)) if c.isdigit() else c for c in text)


def format_amount_input(money: Money, locale: str, *, grouped: bool = True) -> str:
    """The number a modal prefills: in the locale's digits and symbols, grouped as it
    groups, without a currency symbol, with all ISO digits (`1.200,00` de-DE, `1,200.00`
    en-US, `1,200` JPY). `parse_amount` reads it back as the same amount.

    `grouped=False` leaves the groups out (`1200,00`): what the pay form prefills, so that a
    person who edits it to a whole amount (`1000`) never types an ambiguous `1,000`."""
    fmt = _number_format(locale)
    digits = iso_digits(money.currency)
    if _decimals(money.amount) > digits:
        raise MoneyError(f"{money.amount} has more decimals than {money.currency} allows")
    plain = format(_scaled(abs(money.amount), digits), "f")
    integer, _, fraction = plain.partition(".")
    if grouped:
        integer = _group(integer, fmt.primary, fmt.secondary, "\x00")
    number = _with_native_digits(integer, fmt).replace("\x00", fmt.native_group)
    if fraction:
        number += fmt.native_decimal + _with_native_digits(fraction, fmt)
    return ("-" if money.amount < 0 else "") + number


def format_money(money: Money, locale: str) -> str:
    """An amount for people (list, modal, receipt): Babel's currency format for the locale,
    with at least the ISO digits and never rounded (more digits are all shown)."""
    loc = _locale(locale)
    # Display must never fail: a code missing from the ISO table (a withdrawn one on an
    # old invoice) shows the digits it has.
    digits = iso_digits(money.currency) if is_iso_currency(money.currency) else 0
    pattern = parse_pattern(loc.currency_formats["standard"].pattern)
    pattern.frac_prec = (digits, max(digits, _decimals(money.amount)))
    fmt = _number_format(locale)
    # Babel unquotes '...' in its output, which eats de-CH's apostrophe group separators
    # ("1'000'000.00" comes out as "1000000.00" or "1000000'000.00"): for such locales
    # Babel formats without groups and the groups are put in here.
    apostrophe = fmt.native_group in _APOSTROPHES
    text = pattern.apply(
        money.amount, loc, currency=money.currency, currency_digits=False,
        decimal_quantization=False, numbering_system="default", group_separator=not apostrophe,
    )
    if apostrophe:
        primary, secondary = pattern.grouping
        text = re.sub(r"[0-9]+", lambda m: _group(m.group(0), primary, secondary, fmt.native_group), text, count=1)
    return text


def _group(integer: str, primary: int, secondary: int, symbol: str) -> str:
    if len(integer) <= primary:
        return integer
    groups, rest = [integer[-primary:]], integer[:-primary]
    while rest:
        groups.insert(0, rest[-secondary:])
        rest = rest[:-secondary]
    return symbol.join(groups)


__all__ = [
    "STRIPE_CURRENCIES", "STRIPE_THREE_DECIMAL", "STRIPE_ZERO_DECIMAL", "AmbiguousAmount", "Money",
    "MoneyError", "WrongFormat", "check_chargeable", "format_amount_input", "format_money", "is_iso_currency",
    "iso_digits", "parse_amount", "stripe_digits", "stripe_maximum", "stripe_minimum", "stripe_supports",
    "totals_by_currency",
]
