from decimal import Decimal

import pytest

from bot.money import Money, MoneyError, check_chargeable, exponent, stripe_minimum, totals_by_currency


@pytest.mark.parametrize(("currency", "digits"), [("EUR", 2), ("USD", 2), ("JPY", 0), ("KWD", 3), ("jpy", 0)])
def test_exponent_follows_iso_4217(currency: str, digits: int) -> None:
    assert exponent(currency) == digits


@pytest.mark.parametrize(("amount", "currency", "shown"), [
    ("1200", "EUR", "€1,200.00"), ("5000", "JPY", "¥5,000"), ("12.5", "USD", "$12.50"), ("12.5", "KWD", "KWD12.500"),
])
def test_format_uses_the_currency_s_own_decimals(amount: str, currency: str, shown: str) -> None:
    assert Money.of(amount, currency).format() == shown


@pytest.mark.parametrize(("amount", "currency", "minor"), [
    ("1200.00", "EUR", 120000), ("5000", "JPY", 5000), ("12.5", "KWD", 12500), ("0.01", "USD", 1),
])
def test_minor_units_are_exact(amount: str, currency: str, minor: int) -> None:
    money = Money.of(amount, currency)
    assert money.minor == minor
    assert Money.from_minor(minor, currency).amount == money.amount


def test_api_string_has_exactly_the_currency_s_decimals() -> None:
    assert Money.of("1200", "EUR").api_string() == "1200.00"
    assert Money.of("5000", "JPY").api_string() == "5000"
    assert Money.of("1.5", "KWD").api_string() == "1.500"


def test_minor_refuses_to_round() -> None:
    with pytest.raises(MoneyError):
        _ = Money.of("1.005", "EUR").minor


@pytest.mark.parametrize(("text", "currency", "message"), [
    ("abc", "EUR", "is not a number"),
    ("", "EUR", "Enter the amount"),
    ("0", "EUR", "more than zero"),
    ("-5", "EUR", "more than zero"),
    ("0.00", "USD", "more than zero"),
    ("12.345", "EUR", "at most 2 decimals"),
    ("100.5", "JPY", "no decimals"),
    ("1.2345", "KWD", "at most 3 decimals"),
    ("1e3", "EUR", "is not a number"),
    ("NaN", "EUR", "is not a number"),
    ("Infinity", "EUR", "is not a number"),
])
def test_user_input_is_refused_with_words(text: str, currency: str, message: str) -> None:
    with pytest.raises(MoneyError, match=message):
        Money.parse_user_input(text, currency)


@pytest.mark.parametrize(("text", "currency", "value"), [
    ("1,200.50", "EUR", "1200.50"), (" 99 ", "USD", "99"), ("EUR 10", "EUR", "10"), ("5000", "JPY", "5000"),
    (".5", "USD", "0.5"),
])
def test_user_input_accepts_what_people_type(text: str, currency: str, value: str) -> None:
    assert Money.parse_user_input(text, currency).amount == Decimal(value)


def test_stripe_minimum_and_three_decimal_rule() -> None:
    assert stripe_minimum("EUR") == Money.of("0.50", "EUR")
    assert stripe_minimum("JPY") == Money.of("50", "JPY")
    with pytest.raises(MoneyError, match="smallest card payment"):
        check_chargeable(Money.of("0.49", "EUR"))
    with pytest.raises(MoneyError, match="smallest card payment"):
        check_chargeable(Money.of("49", "JPY"))
    with pytest.raises(MoneyError, match="must end in 0"):
        check_chargeable(Money.of("10.005", "KWD"))
    check_chargeable(Money.of("10.010", "KWD"))
    check_chargeable(Money.of("50", "JPY"))


def test_card_fee_rounds_half_up_to_the_minor_unit() -> None:
    assert Money.of("1200", "EUR").percent(Decimal("2.9")).format() == "€34.80"
    assert Money.of("1000.50", "EUR").percent(Decimal("2.9")) == Money.of("29.01", "EUR")  # 29.0145
    assert Money.of("5001", "JPY").percent(Decimal("2.9")) == Money.of("145", "JPY")  # 145.029


def test_totals_are_per_currency_and_never_mixed() -> None:
    totals = totals_by_currency([Money.of("1", "EUR"), Money.of("500", "JPY"), Money.of("2.5", "EUR")])
    assert totals == [Money.of("3.5", "EUR"), Money.of("500", "JPY")]
    with pytest.raises(MoneyError):
        _ = Money.of("1", "EUR") + Money.of("1", "USD")


def test_floats_are_not_money() -> None:
    with pytest.raises(TypeError):
        Money(1.5, "EUR")  # type: ignore[arg-type]
