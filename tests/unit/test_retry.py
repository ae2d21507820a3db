"""The one retry curve: exponential, capped, jittered within bounds, with a last try."""

from __future__ import annotations

import datetime as dt
import random

import pytest

import httpx

from bot.billing import BillingClient, BillingError
from bot.retry import BILLING_CALL, PAYMENT_RETRY, SLACK_DELIVERY, Backoff, retry_after

NONE = lambda: 0.0  # noqa: E731 - no jitter


def seconds(curve: Backoff, attempt: int, rng=NONE) -> float:  # noqa: ANN001
    return curve.delay(attempt, rng=rng).total_seconds()


def test_the_curve_doubles_from_its_base_up_to_its_cap() -> None:
    curve = Backoff(base=1.0, cap=60.0)
    assert [seconds(curve, n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert seconds(curve, 0) == 1  # "no try yet" is treated as the first
    assert seconds(curve, 10_000) == 60  # no overflow, however many tries


def test_jitter_only_lengthens_a_wait_within_its_fraction_and_never_above_the_cap() -> None:
    curve = Backoff(base=10.0, cap=40.0, jitter=0.2)
    assert seconds(curve, 1, rng=lambda: 0.0) == pytest.approx(10.0)
    assert seconds(curve, 1, rng=lambda: 0.999999) == pytest.approx(12.0, rel=1e-5)
    assert seconds(curve, 3, rng=lambda: 0.999999) == 40.0  # 48 s would be above the cap
    seeded = random.Random(7)
    values = []
    for attempt in range(1, 12):
        value = seconds(curve, attempt, rng=seeded.random)
        nominal = min(40.0, 10.0 * 2 ** (attempt - 1))
        assert nominal <= value <= min(40.0, nominal * 1.2)  # never sooner than documented
        values.append(value)
    assert len(set(values[:2])) == 2  # and it does vary


def test_a_limited_curve_has_a_last_try_and_a_total() -> None:
    curve = Backoff(base=1.0, cap=4.0, max_attempts=4)
    assert [curve.exhausted(n) for n in range(0, 6)] == [False, False, False, False, True, True]
    assert curve.total() == dt.timedelta(seconds=1 + 2 + 4)  # waits between the 4 tries
    assert not Backoff(base=1.0, cap=4.0).exhausted(10 ** 6)


def test_next_at_is_now_plus_the_delay() -> None:
    now = dt.datetime(2026, 12, 2, 3, 0, tzinfo=dt.UTC)
    assert Backoff(base=5.0, cap=600.0).next_at(3, now=now, rng=NONE) == now + dt.timedelta(seconds=20)


@pytest.mark.parametrize("bad", [dict(base=0, cap=1), dict(base=2, cap=1), dict(base=1, cap=2, factor=0.5),
                                 dict(base=1, cap=2, jitter=1.0), dict(base=1, cap=2, max_attempts=0)])
def test_nonsense_curves_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        Backoff(**bad)


def test_the_app_curves_as_documented() -> None:
    # docs/payments.md states these: keep them in step.
    assert [seconds(SLACK_DELIVERY, n) for n in (1, 2, 3, 10, 11, 15)] == [1, 2, 4, 512, 600, 600]
    assert SLACK_DELIVERY.max_attempts == 16
    assert 60 * 60 <= SLACK_DELIVERY.total().total_seconds() <= 70 * 60  # about an hour of tries
    assert [seconds(PAYMENT_RETRY, n) for n in (1, 2, 3, 7, 8, 50)] == [5, 10, 20, 320, 600, 600]
    assert PAYMENT_RETRY.max_attempts is None
    # Within one Slack request: four tries, under two seconds of waiting in all.
    assert [seconds(BILLING_CALL, n) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]
    assert BILLING_CALL.max_attempts == 4 and BILLING_CALL.total() == dt.timedelta(seconds=1.75)


@pytest.mark.parametrize(("header", "seconds_"), [
    ("7", 7.0), (" 2.5 ", 2.5), (["3", "9"], 3.0), ("0", 0.0), ("120", 30.0),  # capped
    (None, None), ([], None), ("soon", None), ("-1", None), ("nan", None), ("inf", None),
    ("Wed, 21 Oct 2026 07:28:00 GMT", None),  # an HTTP-date: neither Slack nor billing sends one; the curve applies
])
def test_retry_after_reads_delta_seconds_and_nothing_else(header: object, seconds_: float | None) -> None:
    assert retry_after(header, cap=30.0) == seconds_


def _billing(answers: list[httpx.Response | Exception],
             waits: list[float]) -> tuple[BillingClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        next_answer = answers.pop(0)
        if isinstance(next_answer, Exception):
            raise next_answer
        return next_answer

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    client = BillingClient("http://billing.invalid", "token", transport=httpx.MockTransport(answer), sleep=sleep)
    return client, seen


@pytest.fixture
def waits() -> list[float]:
    return []


ACCESS = {"email": "f@example.com", "billing_profile_ids": [], "permissions": []}


async def test_the_billing_client_retries_on_the_one_curve_and_honours_retry_after(waits: list[float]) -> None:
    client, seen = _billing([httpx.Response(503), httpx.ConnectError("down"),
                             httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200, json=ACCESS)], waits)
    try:
        access = await client.get_access("f@example.com")
    finally:
        await client.aclose()
    assert access.email == "f@example.com" and len(seen) == 4
    assert 0.25 <= waits[0] <= 0.275 and 0.5 <= waits[1] <= 0.55  # the curve, jitter only lengthening
    assert waits[2] == 3.0  # the server's Retry-After, never sooner


async def test_the_billing_client_gives_up_after_the_curve_s_last_try(waits: list[float]) -> None:
    client, seen = _billing([httpx.Response(503)] * 5, waits)
    try:
        with pytest.raises(BillingError) as raised:
            await client.get_access("f@example.com")
    finally:
        await client.aclose()
    assert raised.value.status == 503 and len(seen) == BILLING_CALL.max_attempts == 4 and len(waits) == 3
