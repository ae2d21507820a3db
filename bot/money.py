"""The one money type: an exact Decimal amount in major units plus its ISO 4217 currency.

Amounts cross every boundary as strings ("1234.50", "5000") or integer minor units
(Stripe); floats never appear. The number of decimals a currency has comes from Babel's
copy of the ISO 4217 / CLDR data, so JPY has 0, EUR 2 and KWD 3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from babel.numbers import format_currency, get_currency_precision

# Stripe's documented minimum charge amounts, in major units
# (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
_STRIPE_MINIMUMS: dict[str, str] = {
    "USD": "0.50", "AED": "2.00", "AUD": "0.50", "BGN": "1.00", "BRL": "0.50",
    "CAD": "0.50", "CHF": "0.50", "CZK": "15.00", "DKK": "2.50", "EUR": "0.50",
    "GBP": "0.30", "HKD": "4.00", "HUF": "175.00", "INR": "0.50", "JPY": "50",
    "MXN": "10", "MYR": "2", "NOK": "3.00", "NZD": "0.50", "PLN": "2.00",
    "RON": "2.00", "SEK": "3.00", "SGD": "0.50", "THB": "10",
}
# Currencies not in the table above: Stripe requires the equivalent of USD 0.50; one
# minor unit is the floor we can check without exchange rates.

# Stripe's three-decimal currencies must be charged with a last digit of zero
# (https://docs.stripe.com/currencies#three-decimal).
_STRIPE_THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


# What a person may type: digits with an optional decimal part (no exponents, no signs).
_PLAIN_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?|\.[0-9]+")


class MoneyError(ValueError):
    """An amount that is not acceptable; the message is safe to show to a user."""


def exponent(currency: str) -> int:
    """How many decimals the currency has (ISO 4217): JPY 0, EUR 2, KWD 3."""
    return get_currency_precision(currency.upper())


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError("Money.amount must be a Decimal")
        object.__setattr__(self, "currency", self.currency.upper())

    # -- construction ------------------------------------------------------------------
    @classmethod
    def of(cls, amount: str | Decimal | int, currency: str) -> Money:
        """Exact constructor from a decimal string as the billing API sends it."""
        if isinstance(amount, float):  # pragma: no cover - a programming error
            raise TypeError("floats are not money")
        try:
            value = Decimal(amount)
        except InvalidOperation as exc:
            raise MoneyError(f"{amount!r} is not an amount") from exc
        if not value.is_finite():
            raise MoneyError(f"{amount!r} is not an amount")
        return cls(value, currency)

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        return cls(Decimal(minor).scaleb(-exponent(currency)), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    @classmethod
    def parse_user_input(cls, text: str | None, currency: str) -> Money:
        """Parse what a person typed into the amount field, with messages for people."""
        raw = (text or "").strip().replace(",", "").replace("_", "").replace(" ", "")
        currency = currency.upper()
        if raw.upper().startswith(currency):
            raw = raw[len(currency):]
        if not raw:
            raise MoneyError("Enter the amount to pay.")
        if raw.startswith("-"):
            raise MoneyError("The amount must be more than zero.")
        if not _PLAIN_NUMBER.fullmatch(raw):
            raise MoneyError(f"“{(text or '').strip()[:40]}” is not a number. Enter an amount like 120.50.")
        value = Decimal(raw)
        money = cls(value, currency)
        if value <= 0:
            raise MoneyError("The amount must be more than zero.")
        digits = exponent(currency)
        if -value.normalize().as_tuple().exponent > digits:
            if digits == 0:
                raise MoneyError(f"{currency} has no decimals: enter a whole amount.")
            raise MoneyError(f"{currency} amounts have at most {digits} decimals.")
        return money

    # -- conversions -------------------------------------------------------------------
    @property
    def minor(self) -> int:
        """Integer minor units (Stripe's `amount`); exact or an error, never rounded."""
        scaled = self.amount.scaleb(exponent(self.currency))
        if scaled != scaled.to_integral_value():
            raise MoneyError(f"{self.amount} has more decimals than {self.currency} allows")
        return int(scaled)

    def api_string(self) -> str:
        """The billing API's form: major units with exactly the currency's decimals."""
        digits = exponent(self.currency)
        return str(self.amount.quantize(Decimal(1).scaleb(-digits)))

    def format(self, locale: str = "en_US") -> str:
        """`€1,200.00`, `¥5,000`, `$12.50`, `KWD 12.500` (Babel, CLDR data)."""
        return format_currency(self.amount, self.currency, locale=locale, currency_digits=True)

    # -- arithmetic --------------------------------------------------------------------
    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

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
        """`rate` percent of this amount, rounded half-up to the currency's minor unit."""
        digits = exponent(self.currency)
        value = (self.amount * rate / Decimal(100)).quantize(Decimal(1).scaleb(-digits), rounding="ROUND_HALF_UP")
        return Money(value, self.currency)

    def __str__(self) -> str:
        return f"{self.api_string()} {self.currency}"


def stripe_minimum(currency: str) -> Money:
    currency = currency.upper()
    if currency in _STRIPE_MINIMUMS:
        return Money.of(_STRIPE_MINIMUMS[currency], currency)
    return Money.from_minor(1, currency)


def check_chargeable(amount: Money) -> None:
    """Stripe's own rules on top of the currency's: minimum, and three-decimal rounding."""
    minimum = stripe_minimum(amount.currency)
    if amount < minimum:
        raise MoneyError(f"The smallest card payment in {amount.currency} is {minimum.format()}.")
    if amount.currency in _STRIPE_THREE_DECIMAL and amount.minor % 10:
        raise MoneyError(f"Card payments in {amount.currency} must end in 0 (at most 2 decimals).")


def totals_by_currency(amounts: list[Money]) -> list[Money]:
    """Sum per currency, in the order currencies first appear."""
    sums: dict[str, Money] = {}
    for money in amounts:
        sums[money.currency] = sums[money.currency] + money if money.currency in sums else money
    return list(sums.values())
