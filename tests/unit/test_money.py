from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.money import (
    STRIPE_CURRENCIES,
    STRIPE_THREE_DECIMAL,
    STRIPE_ZERO_DECIMAL,
    AmbiguousAmount,
    Money,
    MoneyError,
    WrongFormat,
    check_chargeable,
    format_amount_input,
    format_money,
    iso_digits,
    parse_amount,
    stripe_digits,
    stripe_maximum,
    stripe_minimum,
    totals_by_currency,
)

LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "de_CH", "ja_JP", "hi_IN", "ar_EG"]
# The round trips also hold where CLDR is less usual: Devanagari digits and money grouped
# unlike other numbers (mr-IN), Persian digits (fa-IR), an apostrophe with a decimal comma (fr-CH).
PROPERTY_LOCALES = [*LOCALES, "mr_IN", "fa_IR", "fr_CH", "es-LA"]


# -- the ISO scale ---------------------------------------------------------------------


@pytest.mark.parametrize(("currency", "digits"), [
    ("EUR", 2), ("USD", 2), ("JPY", 0), ("KWD", 3), ("jpy", 0),
    ("HUF", 2), ("ISK", 0), ("IDR", 2), ("CLF", 4), ("COP", 2), ("TWD", 2), ("UGX", 0),
])
def test_iso_digits_follow_iso_4217_not_cldr(currency: str, digits: int) -> None:
    assert iso_digits(currency) == digits


@pytest.mark.parametrize("currency", ["XXX", "XAU", "ABC", "", "eu"])
def test_iso_digits_refuse_unknown_currencies(currency: str) -> None:
    with pytest.raises(MoneyError):
        iso_digits(currency)


@pytest.mark.parametrize(("amount", "currency", "shown"), [
    ("1200", "EUR", "€1,200.00"), ("5000", "JPY", "¥5,000"), ("12.5", "USD", "$12.50"), ("12.5", "KWD", "KWD12.500"),
])
def test_format_uses_the_currency_s_own_decimals(amount: str, currency: str, shown: str) -> None:
    assert Money.of(amount, currency).format() == shown


@pytest.mark.parametrize(("amount", "currency", "locale", "shown"), [
    ("150000", "HUF", "en_US", "HUF150,000.00"),  # ISO digits, though CLDR shows HUF without
    ("1234.56", "EUR", "de_DE", "1.234,56\xa0€"),
    ("1234.56", "EUR", "fr_FR", "1\u202f234,56\xa0€"),
    ("1234567.5", "INR", "hi_IN", "₹12,34,567.50"),
    ("5000", "JPY", "ja_JP", "￥5,000"),
    ("1.005", "EUR", "en_US", "€1.005"),  # never rounded: every digit is shown
    ("1000000000", "CHF", "de_CH", "CHF\xa01'000'000'000.00"),  # Babel alone loses these groups
    ("1234.5", "CHF", "de_CH", "CHF\xa01'234.50"),
])
def test_format_money_in_the_locale(amount: str, currency: str, locale: str, shown: str) -> None:
    assert format_money(Money.of(amount, currency), locale) == shown
    assert Money.of(amount, currency).format(locale) == shown


@pytest.mark.parametrize(("amount", "currency", "minor"), [
    ("1200.00", "EUR", 120000), ("5000", "JPY", 5000), ("12.5", "KWD", 12500), ("0.01", "USD", 1),
    ("150000", "HUF", 15000000), ("5", "ISK", 5), ("1.2345", "CLF", 12345),
])
def test_minor_units_are_exact(amount: str, currency: str, minor: int) -> None:
    money = Money.of(amount, currency)
    assert money.minor == minor
    assert Money.from_minor(minor, currency).amount == money.amount


def test_api_string_has_exactly_the_currency_s_decimals() -> None:
    assert Money.of("1200", "EUR").api_string() == "1200.00"
    assert Money.of("5000", "JPY").api_string() == "5000"
    assert Money.of("1.5", "KWD").api_string() == "1.500"
    assert Money.of("150000", "HUF").api_string() == "150000.00"
    assert Money.of("1.50000", "EUR").api_string() == "1.50"  # trailing zeros are no extra digits


def test_api_string_and_minor_refuse_to_round() -> None:
    with pytest.raises(MoneyError):
        _ = Money.of("1.005", "EUR").minor
    with pytest.raises(MoneyError):
        Money.of("1.005", "EUR").api_string()
    with pytest.raises(MoneyError):
        Money.of("1.5", "JPY").api_string()


@pytest.mark.parametrize(("text", "currency", "value"), [
    ("150000", "HUF", "150000"), ("150000.00", "HUF", "150000"), ("150000.5", "HUF", "150000.5"),
    ("5000", "JPY", "5000"), ("12.500", "KWD", "12.5"), ("0", "EUR", "0"), ("1.2345", "CLF", "1.2345"),
])
def test_from_api_accepts_the_contract_s_strings(text: str, currency: str, value: str) -> None:
    assert Money.from_api(text, currency) == Money.of(value, currency)


@pytest.mark.parametrize(("text", "currency"), [
    ("150000.000", "HUF"), ("5000.0", "JPY"), ("1.0000", "KWD"), ("1e3", "EUR"), (" 5", "EUR"), ("+5", "EUR"),
    ("1,200.00", "EUR"), (".5", "EUR"), ("5.", "EUR"), ("NaN", "EUR"), ("", "EUR"), (12.5, "EUR"), (12, "EUR"),
    ("10", "XXX"),
])
def test_from_api_is_strict(text: object, currency: str) -> None:
    with pytest.raises(MoneyError):
        Money.from_api(text, currency)


def test_floats_are_not_money() -> None:
    with pytest.raises(TypeError):
        Money(1.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money.of(1.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money.from_minor(1.0, "EUR")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money.from_stripe(100.0, "EUR")  # type: ignore[arg-type]


# -- Stripe's scale --------------------------------------------------------------------


@pytest.mark.parametrize(("currency", "digits"), [
    ("USD", 2), ("EUR", 2), ("JPY", 0), ("KRW", 0), ("UGX", 0), ("XOF", 0), ("CLP", 0),
    ("KWD", 3), ("BHD", 3), ("TND", 3), ("ISK", 2), ("HUF", 2), ("TWD", 2), ("IDR", 2), ("COP", 2),
])
def test_stripe_digits_follow_stripe_s_table(currency: str, digits: int) -> None:
    assert stripe_digits(currency) == digits


@pytest.mark.parametrize(("amount", "currency", "units"), [
    ("150000", "HUF", 15000000),  # the defect: was sent as 150000, i.e. HUF 1,500.00
    ("150000.50", "HUF", 15000050),  # fractional HUF charges are allowed
    ("5", "ISK", 500),  # two-decimal in Stripe's API, whole krónur only
    ("1000000", "IDR", 100000000),
    ("12000", "COP", 1200000),
    ("5000", "JPY", 5000),
    ("20000", "UGX", 20000),
    ("12.34", "USD", 1234),
    ("10.010", "KWD", 10010),
    ("100.5", "TWD", 10050),
])
def test_to_stripe_and_back_are_exact(amount: str, currency: str, units: int) -> None:
    money = Money.of(amount, currency)
    assert money.to_stripe() == units
    assert Money.from_stripe(units, currency) == money


@pytest.mark.parametrize(("amount", "currency", "message"), [
    ("1.5", "ISK", "whole amounts"),  # Stripe could carry 150, ISO ISK has no decimals
    ("1.50", "MGA", "whole amounts"),  # ISO MGA has two decimals, Stripe's none
    ("10.005", "KWD", "must end in 0"),
    ("1.005", "EUR", "more decimals"),
    ("1.5", "JPY", "more decimals"),
    ("10", "XXX", "not possible"),
    ("10", "CLF", "Stripe does not support"),
    ("-1", "EUR", "more than zero"),
])
def test_to_stripe_refuses_what_either_side_cannot_represent(amount: str, currency: str, message: str) -> None:
    with pytest.raises(MoneyError, match=message):
        Money.of(amount, currency).to_stripe()


@pytest.mark.parametrize(("units", "currency"), [(150, "ISK"), (10005, "KWD"), (100, "CLF")])
def test_from_stripe_refuses_what_the_iso_side_cannot_hold(units: int, currency: str) -> None:
    with pytest.raises(MoneyError):
        Money.from_stripe(units, currency)


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


def test_minimum_messages_are_in_the_person_s_locale() -> None:
    with pytest.raises(MoneyError, match="is 0,50\xa0€"):
        check_chargeable(Money.of("0.49", "EUR"), "de_DE")
    with pytest.raises(MoneyError, match=r"HUF175\.00"):
        check_chargeable(Money.of("174.99", "HUF"))
    check_chargeable(Money.of("175", "HUF"))


def test_minimum_for_currencies_stripe_lists_none_for() -> None:
    # The smallest amount both scales hold; Stripe's own converted minimum is its call.
    assert stripe_minimum("COP") == Money.of("0.01", "COP")
    assert stripe_minimum("ISK") == Money.of("1", "ISK")
    assert stripe_minimum("KWD") == Money.of("0.01", "KWD")
    assert stripe_minimum("XOF") == Money.of("1", "XOF")


@pytest.mark.parametrize(("amount", "currency", "ok"), [
    ("999999.99", "USD", True), ("1000000.00", "USD", False),
    ("99999999", "JPY", True), ("100000000", "JPY", False),
    ("9999999999.99", "IDR", True), ("10000000000", "IDR", False),  # twelve digits for IDR
    ("999999", "ISK", True), ("1000000", "ISK", False),
    ("99999.990", "KWD", True), ("100000", "KWD", False),
])
def test_maximum_charge(amount: str, currency: str, ok: bool) -> None:
    money = Money.of(amount, currency)
    if ok:
        check_chargeable(money)
        assert money <= stripe_maximum(currency)
    else:
        with pytest.raises(MoneyError, match="largest card payment"):
            check_chargeable(money)


@pytest.mark.parametrize(("amount", "currency", "message"), [
    ("10", "CLF", "not possible"), ("10", "XAU", "not possible"), ("0", "EUR", "more than zero"),
    ("1.5", "ISK", "whole amounts"),
])
def test_check_chargeable_refuses_in_words(amount: str, currency: str, message: str) -> None:
    with pytest.raises(MoneyError, match=message):
        check_chargeable(Money.of(amount, currency))


# -- arithmetic ------------------------------------------------------------------------


def test_card_fee_rounds_half_up_to_the_minor_unit() -> None:
    assert Money.of("1200", "EUR").percent(Decimal("2.9")).format() == "€34.80"
    assert Money.of("1000.50", "EUR").percent(Decimal("2.9")) == Money.of("29.01", "EUR")  # 29.0145
    assert Money.of("5001", "JPY").percent(Decimal("2.9")) == Money.of("145", "JPY")  # 145.029
    assert Money.of("0.50", "EUR").percent(Decimal("1")) == Money.of("0.01", "EUR")  # 0.005 rounds up
    assert Money.of("150000", "HUF").percent(Decimal("2.9")) == Money.of("4350.00", "HUF")


def test_totals_are_per_currency_and_never_mixed() -> None:
    totals = totals_by_currency([Money.of("1", "EUR"), Money.of("500", "JPY"), Money.of("2.5", "EUR")])
    assert totals == [Money.of("3.5", "EUR"), Money.of("500", "JPY")]
    with pytest.raises(MoneyError):
        _ = Money.of("1", "EUR") + Money.of("1", "USD")


def test_totals_are_sorted_by_currency_code() -> None:
    totals = totals_by_currency([Money.of("1", "USD"), Money.of("500", "JPY"), Money.of("2", "EUR")])
    assert [t.currency for t in totals] == ["EUR", "JPY", "USD"]


def test_arithmetic_is_exact_beyond_28_digits() -> None:
    big = Money.of("12345678901234567890123456789.01", "EUR")
    assert (big + Money.of("0.01", "EUR")).amount == Decimal("12345678901234567890123456789.02")


# -- what people type ------------------------------------------------------------------

# Every typed value of issue 10, defect 1, on a EUR invoice, in every tested locale.
# A value is the amount charged, "?a|b" an AmbiguousAmount with readings a and b,
# "~x" a WrongFormat refusal suggesting x (never charged), "!words" a refusal.
DEFECT_1 = ["4,50", "100,50", "1 234,56", "0,99", ",5", "1,2,3", "1.200", "50.000", "1.0000000000000000000000000000009"]
_POINT = ["~4.50", "~100.50", "~1234.56", "~0.99", "~0.50", "!not an amount", "?1200|1.20", "?50000|50.00", "!at most 2 decimals"]
_COMMA = ["4.50", "100.50", "~1234.56", "0.99", "0.50", "!not an amount", "?1200|1.20", "?50000|50.00", "!at most 2 decimals"]
EXPECTED = {
    "en_US": _POINT,
    "en_GB": _POINT,
    "ja_JP": _POINT,
    "hi_IN": _POINT,
    "ar_EG": _POINT,
    "de_CH": _POINT,  # decimal point, ' or ’ to group: "4,50" is not Swiss either
    "de_DE": _COMMA,
    "fr_FR": ["4.50", "100.50", "1234.56", "0.99", "0.50", "!not an amount", "?1200|1.20", "?50000|50.00",
              "!at most 2 decimals"],
}


def _check(text: str, currency: str, locale: str, expected: str) -> None:
    if expected.startswith("?"):
        first, second = expected[1:].split("|")
        with pytest.raises(AmbiguousAmount) as caught:
            parse_amount(text, currency, locale)
        assert caught.value.readings == (Money.of(first, currency), Money.of(second, currency))
        shown = [format_amount_input(m, locale) for m in caught.value.readings]
        assert f"could be {shown[0]} or {shown[1]}" in str(caught.value)
    elif expected.startswith("~"):
        with pytest.raises(WrongFormat) as wrong:
            parse_amount(text, currency, locale)
        assert wrong.value.suggestion == Money.of(expected[1:], currency)
        assert format_amount_input(Money.of(expected[1:], currency), locale) in str(wrong.value)
    elif expected.startswith("!"):
        with pytest.raises(MoneyError, match=expected[1:]):
            parse_amount(text, currency, locale)
    else:
        parsed = parse_amount(text, currency, locale)
        assert parsed == Money.of(expected, currency)
        assert parsed.amount.as_tuple().exponent == -iso_digits(currency)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("index", range(len(DEFECT_1)))
def test_defect_1_values_in_every_locale(locale: str, index: int) -> None:
    _check(DEFECT_1[index], "EUR", locale, EXPECTED[locale][index])


def test_the_ambiguity_message_states_both_readings_in_the_locale() -> None:
    with pytest.raises(AmbiguousAmount, match="“1,500” could be 1,500.00 or 1.50. Type it with decimals"):
        parse_amount("1,500", "EUR", "en_US")
    with pytest.raises(AmbiguousAmount, match="“1.200” could be 1.200,00 or 1,20"):
        parse_amount("1.200", "EUR", "de-DE")


@pytest.mark.parametrize(("text", "currency", "locale", "expected"), [
    # the locale's own way
    ("1,234.56", "EUR", "en_US", "1234.56"),
    ("1.234,56", "EUR", "de_DE", "1234.56"),
    ("1.234,56", "EUR", "de-DE", "1234.56"),
    ("1234,56", "EUR", "de_DE", "1234.56"),
    ("1\u202f234,56", "EUR", "fr_FR", "1234.56"),
    ("1\u00a0234,56", "EUR", "fr_FR", "1234.56"),
    ("1 234 567,89", "EUR", "fr_FR", "1234567.89"),
    ("1'234.56", "CHF", "de_CH", "1234.56"),
    ("1’234.56", "CHF", "de_CH", "1234.56"),
    ("12,34,567.50", "INR", "hi_IN", "1234567.50"),
    ("1,00,000", "INR", "hi_IN", "100000"),
    ("100,000", "INR", "hi_IN", "?100000|100"),  # not hi-IN grouping: 100000, or 100 with a decimal comma
    ("1,000,000", "INR", "hi_IN", "~1000000"),  # Western grouping is not hi-IN's
    ("1,234", "JPY", "ja_JP", "1234"),
    ("1,500", "JPY", "en_US", "1500"),  # 1.5 JPY is no amount: not ambiguous
    ("1.200", "JPY", "de_DE", "1200"),
    ("1.200", "JPY", "en_US", "~1200"),  # JPY has no decimals; 1,200 is suggested, not charged
    ("50.000", "JPY", "en_US", "~50000"),
    ("5,000", "JPY", "en_US", "5000"),  # a currency without decimals takes none: not 5
    ("5000.00", "JPY", "en_US", "!no decimals"),
    ("1.500", "KWD", "en_US", "1.5"),  # three decimals, as KWD is written
    ("1,500", "KWD", "de_DE", "1.5"),
    ("1,500", "KWD", "en_US", "?1500|1.5"),
    ("1,234", "EUR", "en_US", "1234"),  # 1.234 EUR is no amount: not ambiguous
    ("1,230", "EUR", "en_US", "?1230|1.23"),
    ("1.500", "EUR", "fr_FR", "?1500|1.50"),
    ("0.500", "EUR", "en_US", "0.50"),
    ("12.345", "EUR", "en_US", "~12345"),
    ("١٬٢٣٤٫٥٠", "EGP", "ar_EG", "1234.50"),
    ("١٢٣٤٫٥", "EGP", "ar_EG", "1234.50"),
    ("1,234.50", "EGP", "ar_EG", "1234.50"),
    ("٤٫٥٠", "EUR", "ar_EG", "4.50"),
    ("१२,३४,५६७.५०", "INR", "mr_IN", "1234567.50"),  # mr-IN's own digits and number grouping
    ("1,234,567.50", "INR", "mr_IN", "1234567.50"),  # ... and its grouping of money
    (".5", "USD", "en_US", "0.50"),
    (",5", "EUR", "de_DE", "0.50"),
    (".5", "EUR", "de_DE", "~0.50"),
    # currency symbols and codes naming this invoice's currency
    ("€200", "EUR", "en_US", "200"),
    ("200 EUR", "EUR", "en_US", "200"),
    ("EUR 10", "EUR", "en_US", "10"),
    ("eur 10", "EUR", "de_DE", "10"),
    ("200€", "EUR", "de_DE", "200"),
    ("200 €", "EUR", "fr_FR", "200"),
    ("US$5", "USD", "en_US", "5"),
    ("$5", "USD", "en_US", "5"),
    ("CHF 1'000.00", "CHF", "de_CH", "1000"),
    ("￥5,000", "JPY", "ja_JP", "5000"),
    ("¥5,000", "JPY", "ja_JP", "5000"),
    ("₹12,34,567.50", "INR", "hi_IN", "1234567.50"),
    # ... and refused when they name another
    ("$200", "EUR", "en_US", "!This invoice is in EUR; you typed USD"),
    ("200 USD", "EUR", "de_DE", "!This invoice is in EUR; you typed USD"),
    ("US$5", "EUR", "en_US", "!you typed USD"),
    ("£5", "EUR", "en_GB", "!you typed GBP"),
    # refused in words
    ("-5", "EUR", "en_US", "!more than zero"),
    ("−5", "EUR", "en_US", "!more than zero"),
    ("€-5", "EUR", "en_US", "!more than zero"),
    ("+5", "EUR", "en_US", "!without a sign"),
    ("1e3", "EUR", "en_US", "!is not a number"),
    ("1E3", "EUR", "de_DE", "!is not a number"),
    ("0", "EUR", "de_DE", "!more than zero"),
    ("0,00", "EUR", "de_DE", "!more than zero"),
    ("1" * 41, "EUR", "en_US", "!too long"),
    ("   ", "EUR", "en_US", "!Enter the amount"),
    ("5.", "EUR", "en_US", "!not an amount"),
    ("1,,000", "EUR", "en_US", "!not an amount"),
    ("1.234.56", "EUR", "en_US", "!not an amount"),
    ("١2", "EGP", "ar_EG", "!mixes two kinds of digits"),
    ("१२३", "INR", "en_US", "!digits this form cannot read"),
    ("١٢٣", "EUR", "en_US", "!digits this form cannot read"),
    ("12.5", "JPY", "en_US", "!no decimals"),
    ("1.2345", "KWD", "en_US", "!at most 3 decimals"),
    ("5 apples", "EUR", "en_US", "!is not a number"),
])
def test_parsing_table(text: str, currency: str, locale: str, expected: str) -> None:
    _check(text, currency, locale, expected)


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
        parse_amount(text, currency, "en_US")


@pytest.mark.parametrize(("text", "currency", "value"), [
    ("1,200.50", "EUR", "1200.50"), (" 99 ", "USD", "99"), ("EUR 10", "EUR", "10"), ("5000", "JPY", "5000"),
    (".5", "USD", "0.5"),
])
def test_user_input_accepts_what_people_type(text: str, currency: str, value: str) -> None:
    assert parse_amount(text, currency, "en_US").amount == Decimal(value)


@pytest.mark.parametrize(("amount", "currency", "locale", "shown"), [
    ("1200", "EUR", "de_DE", "1.200,00"), ("1200", "EUR", "en_US", "1,200.00"), ("1200", "JPY", "en_US", "1,200"),
    ("1234567.5", "INR", "hi_IN", "12,34,567.50"), ("1234.5", "EUR", "fr_FR", "1\u202f234,50"),
    ("1234.5", "CHF", "de_CH", "1'234.50"), ("1234.5", "EGP", "ar_EG", "١٬٢٣٤٫٥٠"), ("1.5", "KWD", "en_US", "1.500"),
])
def test_format_amount_input(amount: str, currency: str, locale: str, shown: str) -> None:
    assert format_amount_input(Money.of(amount, currency), locale) == shown


def test_unknown_locales_fall_back_rather_than_fail() -> None:
    assert parse_amount("1,5", "EUR", "es-LA") == Money.of("1.5", "EUR")  # Slack's Latin American Spanish
    assert parse_amount("1.5", "EUR", "xx-YY") == Money.of("1.5", "EUR")


# -- properties ------------------------------------------------------------------------

_FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_SUPPORTED = sorted(STRIPE_CURRENCIES)


@st.composite
def valid_money(draw: st.DrawFn, currencies: list[str] = _SUPPORTED) -> Money:
    """A positive amount with at most the currency's ISO digits."""
    currency = draw(st.sampled_from(currencies))
    minor = draw(st.integers(min_value=1, max_value=10**14))
    return Money.from_minor(minor, currency)


@_FAST
@given(currency=st.sampled_from(_SUPPORTED), units=st.integers(min_value=0, max_value=10**12))
def test_property_stripe_units_round_trip_or_are_refused(currency: str, units: int) -> None:
    try:
        money = Money.from_stripe(units, currency)
    except MoneyError:
        # Refused only when the ISO side cannot hold it or Stripe could not charge it.
        assert (currency == "ISK" and units % 100) or (currency in STRIPE_THREE_DECIMAL and units % 10)
        return
    assert money.to_stripe() == units
    assert money.amount == Decimal(units).scaleb(-stripe_digits(currency))


@_FAST
@given(currency=st.sampled_from(_SUPPORTED), minor=st.integers(min_value=0, max_value=10**12))
def test_property_iso_amounts_reach_stripe_exactly_or_are_refused(currency: str, minor: int) -> None:
    money = Money.from_minor(minor, currency)
    try:
        units = money.to_stripe()
    except MoneyError:
        # MGA has two ISO digits and none at Stripe; the three-decimal rule.
        assert (currency == "MGA" and minor % 100) or (currency in STRIPE_THREE_DECIMAL and minor % 10)
        return
    assert Money.from_stripe(units, currency) == money
    assert Decimal(units).scaleb(-stripe_digits(currency)) == money.amount


@_FAST
@given(currency=st.sampled_from(_SUPPORTED), minor=st.integers(min_value=1, max_value=10**9),
       extra=st.integers(min_value=1, max_value=9))
def test_property_amounts_beyond_iso_digits_never_reach_stripe(currency: str, minor: int, extra: int) -> None:
    money = Money(Decimal(minor * 10 + extra).scaleb(-iso_digits(currency) - 1), currency)
    with pytest.raises(MoneyError):
        money.to_stripe()
    with pytest.raises(MoneyError):
        money.api_string()


@_FAST
@given(money=valid_money())
def test_property_api_string_round_trips(money: Money) -> None:
    text = money.api_string()
    assert Money.from_api(text, money.currency) == money
    assert len(text.partition(".")[2]) == iso_digits(money.currency)
    assert Money.from_minor(money.minor, money.currency) == money


@_FAST
@given(money=valid_money())
def test_property_minimum_and_three_decimal_rules(money: Money) -> None:
    try:
        check_chargeable(money)
    except MoneyError as refused:
        assert (
            money < stripe_minimum(money.currency)
            or money > stripe_maximum(money.currency)
            or (money.currency in STRIPE_THREE_DECIMAL and money.minor % 10)
            or (money.currency == "MGA" and money.amount != money.amount.to_integral_value())
        ), str(refused)
        return
    assert stripe_minimum(money.currency) <= money <= stripe_maximum(money.currency)
    if money.currency in STRIPE_THREE_DECIMAL:
        assert money.to_stripe() % 10 == 0
    if money.currency in STRIPE_ZERO_DECIMAL:
        assert money.to_stripe() == money.amount


_PARSE_CURRENCIES = ["EUR", "USD", "JPY", "KWD", "HUF", "INR", "CHF", "EGP", "ISK", "CLF", "IDR"]


@_FAST
@given(money=valid_money(_PARSE_CURRENCIES), locale=st.sampled_from(PROPERTY_LOCALES))
def test_property_prefilled_amounts_parse_back(money: Money, locale: str) -> None:
    assert parse_amount(format_amount_input(money, locale), money.currency, locale) == money


@_FAST
@given(money=valid_money(_PARSE_CURRENCIES), locale=st.sampled_from(PROPERTY_LOCALES))
def test_property_ungrouped_prefill_parses_back(money: Money, locale: str) -> None:
    # What the pay form prefills (no groups), and what a person gets by deleting the decimals.
    assert parse_amount(format_amount_input(money, locale, grouped=False), money.currency, locale) == money
    whole = Money.of(int(money.amount), money.currency)
    if whole.amount > 0:  # the same edited to a whole number, digits only: never ambiguous
        assert parse_amount(str(int(money.amount)), money.currency, locale) == whole


@_FAST
@given(money=valid_money(_PARSE_CURRENCIES), locale=st.sampled_from(PROPERTY_LOCALES))
def test_property_displayed_amounts_parse_back(money: Money, locale: str) -> None:
    assert parse_amount(format_money(money, locale), money.currency, locale) == money
