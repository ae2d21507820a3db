"""Finishes payments left half-way (a crash, a timeout, an outage) by asking Stripe.

Runs every `RECONCILE_INTERVAL_SECONDS` (30 s) in the server. A payment whose look fails
(Stripe or the billing API down, or anything unexpected) is not looked at again on every
pass: it waits on the `bot.retry.PAYMENT_RETRY` curve (5 s, 10 s, 20 s ... 10 min), counted
in its `attempts` and scheduled by its `next_attempt_at`."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field

from bot.billing import BillingError
from bot.clock import Clock, SystemClock
from bot.processor import PaymentProcessor
from bot.retry import PAYMENT_RETRY, Backoff
from bot.stripe_gateway import StripeUnavailable
from storage.models import Payment, PaymentStatus
from storage.payments import PaymentRepository

log = logging.getLogger(__name__)

# A live submission finishes in seconds; anything older than this was interrupted.
STALE_AFTER = dt.timedelta(seconds=60)
# 3-D Secure and bank debits are settled by webhooks; look ourselves if none came.
WAITING_AFTER = dt.timedelta(minutes=10)


@dataclass
class ReconcileReport:
    examined: int = 0
    changed: list[tuple[str, str, str]] = field(default_factory=list)  # (payment, from, to)


class Reconciler:
    def __init__(self, repo: PaymentRepository, processor: PaymentProcessor, *,
                 stale_after: dt.timedelta = STALE_AFTER, backoff: Backoff = PAYMENT_RETRY,
                 clock: Clock | None = None) -> None:
        self._repo = repo
        self._clock = clock or SystemClock()  # the app's one clock, as the repository's and the processor's
        self._processor = processor
        self._stale_after = stale_after
        self._backoff = backoff

    async def run_once(self, *, force: bool = False) -> ReconcileReport:
        """One pass. `force` (the CLI) looks at every unfinished payment now, whatever its
        retry schedule; guarded transitions keep that safe next to a live server."""
        report = ReconcileReport()
        stuck = await self._repo.unfinished(older_than=self._stale_after, force=force)
        waiting = await self._repo.unfinished(
            older_than=WAITING_AFTER, statuses=(PaymentStatus.REQUIRES_ACTION, PaymentStatus.PROCESSING),
            force=force)
        for payment in stuck + waiting:
            report.examined += 1
            after = await self._finish(
                payment, waiting=payment.status in (PaymentStatus.REQUIRES_ACTION, PaymentStatus.PROCESSING))
            if after.status != payment.status:
                report.changed.append((payment.id, payment.status, after.status))
        return report

    async def _finish(self, payment: Payment, *, waiting: bool) -> Payment:
        try:
            if waiting:
                return await self._processor.refresh(payment) or payment
            return await self._processor.advance(payment.id, recovering=True)
        except Exception as exc:  # noqa: BLE001 - one bad payment must not stop the others
            await self._back_off(payment, exc)
            return payment

    async def _back_off(self, payment: Payment, exc: Exception) -> None:
        """The next look at this payment waits on the curve, not for the next pass."""
        current = await self._repo.get(payment.id) or payment
        attempts = current.attempts + 1
        at = self._backoff.next_at(attempts, now=self._clock.now())
        if isinstance(exc, (StripeUnavailable, BillingError)):
            log.warning("reconciling payment %s failed (%s: %s), try %d; next look at %s", payment.id,
                        type(exc).__name__, exc, attempts, f"{at:%H:%M:%S}")
        else:
            # Unknown: the traceback on the first failure only, one line after that.
            log.warning("reconciling payment %s failed, try %d; next look at %s", payment.id, attempts,
                        f"{at:%H:%M:%S}", exc_info=exc if attempts <= 1 else None)
        try:
            await self._repo.touch(payment.id, attempts=attempts, next_attempt_at=at)
        except Exception:  # noqa: BLE001 - the database itself failing: the next pass tries again
            log.warning("could not schedule payment %s's next look", payment.id, exc_info=True)

    async def run_forever(self, every_seconds: float = 30.0) -> None:
        while True:
            try:
                report = await self.run_once()
                if report.changed:
                    log.info("reconciled %d payments", len(report.changed))
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("reconcile pass failed")
            await asyncio.sleep(every_seconds)


__all__ = ["Reconciler", "ReconcileReport", "PaymentStatus"]
