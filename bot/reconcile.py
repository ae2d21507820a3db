"""Finishes payments left half-way (a crash, a timeout, an outage) by asking Stripe."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field

from bot.processor import PaymentProcessor
from storage.models import Payment, PaymentStatus
from storage.payments import PaymentRepository

log = logging.getLogger(__name__)

# A live submission finishes in seconds; anything older than this was interrupted.
STALE_AFTER = dt.timedelta(seconds=60)


@dataclass
class ReconcileReport:
    examined: int = 0
    changed: list[tuple[str, str, str]] = field(default_factory=list)  # (payment, from, to)


class Reconciler:
    def __init__(self, repo: PaymentRepository, processor: PaymentProcessor, *,
                 stale_after: dt.timedelta = STALE_AFTER) -> None:
        self._repo = repo
        self._processor = processor
        self._stale_after = stale_after

    async def run_once(self) -> ReconcileReport:
        report = ReconcileReport()
        for payment in await self._repo.unfinished(older_than=self._stale_after):
            report.examined += 1
            after = await self._finish(payment)
            if after.status != payment.status:
                report.changed.append((payment.id, payment.status, after.status))
        return report

    async def _finish(self, payment: Payment) -> Payment:
        try:
            return await self._processor.advance(payment.id, recovering=True)
        except Exception:  # noqa: BLE001 - one bad payment must not stop the others
            log.exception("reconciling payment %s failed", payment.id)
            return payment

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
