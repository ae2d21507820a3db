"""The reconciler backs off per payment: one whose look keeps failing waits on the retry
curve instead of being tried on every pass. Real repository (SQLite file) and processor;
Stripe and the billing API are fakes that fail."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.processor import PaymentProcessor
from bot.reconcile import Reconciler
from bot.retry import Backoff
from bot.stripe_gateway import StripeUnavailable
from storage.db import create_engine, session_factory
from storage.models import Base, Payment, PaymentStatus, utcnow
from storage.payments import PaymentRepository

CURVE = Backoff(base=0.2, cap=0.8, jitter=0.0)


class DownStripe:
    """retrieve_intent fails every time, and says when it was asked."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def retrieve_intent(self, intent_id: str) -> Any:
        self.asked.append(asyncio.get_running_loop().time())
        raise StripeUnavailable("APIConnectionError")


class Silent:
    async def notices(self, payment: Payment, event: str) -> list[Any]:
        return []

    async def changed(self, payment: Payment, *, update_modal: bool) -> None:
        return None

    async def direct(self, payment: Payment) -> list[Any]:
        return []


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[PaymentRepository]:
    engine = create_engine(f"sqlite:///{tmp_path / 'payments.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield PaymentRepository(session_factory(engine))
    await engine.dispose()


def payment(status: PaymentStatus, **fields: Any) -> Payment:
    long_ago = utcnow() - dt.timedelta(hours=1)  # long past the reconciler's "stale" and "waiting" marks
    values: dict[str, Any] = dict(
        id=f"pay_{status.value}", team_id="T1", user_id="U1", paid_by="ap@acme.example", invoice_id=f"inv_{status}",
        invoice_number="INV-1", billing_profile_id="bp_1", billing_profile_name="Acme", invoice_url=None,
        amount_minor=1000, currency="EUR", method_kind="bank_debit", payment_method_id="pm_1",
        payment_method_type="sepa_debit", method_label="SEPA •••• 3000", stripe_customer_id="cus_1",
        status=status.value, stripe_payment_intent_id=f"pi_{status.value}", attempts=0, next_attempt_at=None,
        created_at=long_ago, updated_at=long_ago)
    values.update(fields)
    return Payment(**values)


async def passes(reconciler: Reconciler, seconds: float, every: float = 0.05) -> int:
    loop = asyncio.get_running_loop()
    count, deadline = 0, loop.time() + seconds
    while loop.time() < deadline:
        await reconciler.run_once()
        count += 1
        await asyncio.sleep(every)
    return count


async def test_a_payment_whose_stripe_refresh_keeps_failing_is_retried_on_the_curve(repo: PaymentRepository) -> None:
    stripe = DownStripe()
    await repo.create(payment(PaymentStatus.PROCESSING))
    processor = PaymentProcessor(repo, stripe, billing=None, events=Silent())  # type: ignore[arg-type]
    reconciler = Reconciler(repo, processor, backoff=CURVE)

    count = await passes(reconciler, 2.0)

    assert count >= 20  # many passes ...
    # ... but Stripe was asked at 0, 0.2, 0.6 (0.2 + 0.4), 1.4 (0.6 + 0.8) s: four times, not every pass.
    assert 3 <= len(stripe.asked) <= 5, stripe.asked
    gaps = [b - a for a, b in zip(stripe.asked, stripe.asked[1:])]
    nominal = [CURVE.delay(n, rng=lambda: 0.0).total_seconds() for n in range(1, len(gaps) + 1)]  # 0.2, 0.4, 0.8
    assert all(gap >= wait - 0.02 for gap, wait in zip(gaps, nominal)), (gaps, nominal)
    stored = await repo.get("pay_processing")
    assert stored is not None and stored.attempts == len(stripe.asked)
    assert stored.status == PaymentStatus.PROCESSING  # nothing moved: it waits, visibly, for the next look
    assert stored.next_attempt_at is not None and stored.next_attempt_at > utcnow()


async def test_an_unexpected_failure_backs_off_too_and_other_payments_go_on(repo: PaymentRepository) -> None:
    class Broken(PaymentProcessor):
        calls: list[str] = []

        async def advance(self, payment_id: str, *, recovering: bool = False) -> Payment:
            self.calls.append(payment_id)
            if payment_id == "pay_confirming":
                raise RuntimeError("a bug")
            return await super().advance(payment_id, recovering=recovering)

    await repo.create(payment(PaymentStatus.CONFIRMING))
    await repo.create(payment(PaymentStatus.CREATED, stripe_payment_intent_id=None))
    processor = Broken(repo, DownStripe(), billing=None, events=Silent())  # type: ignore[arg-type]
    reconciler = Reconciler(repo, processor, backoff=CURVE)

    await passes(reconciler, 1.0)

    # The interrupted `created` one was finished on the first pass despite its neighbour.
    created = await repo.get("pay_created")
    assert created is not None and created.status == PaymentStatus.FAILED
    tries = processor.calls.count("pay_confirming")
    assert 2 <= tries <= 4, processor.calls  # 0, 0.2, 0.6 s: not ~20 passes
    stored = await repo.get("pay_confirming")
    assert stored is not None and stored.attempts == tries
