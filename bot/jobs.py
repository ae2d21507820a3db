"""The kinds of timed work the scheduler runs: one registration each (bot/scheduler.py).

Approval expiry (issue 13) becomes one more `scheduler.register(...)` here. What the jobs
say in Slack is drawn by the app's renderers (`Renderers`, from blocks/), handed in by the
app factory: nothing here knows Block Kit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.identity import babel_locale
from bot.reminders import DIGEST, Digest, ReminderService
from bot.scheduled_payments import KIND, ScheduledPayments, Words
from bot.scheduler import Scheduler
from storage.models import OutboxMessage
from storage.reminders import ReminderRepository

if TYPE_CHECKING:
    from bot.app import Services


@dataclass(frozen=True, slots=True)
class Renderers:
    digest: Callable[[Digest], dict[str, Any]]  # blocks.reminders.digest_message
    scheduled_payment: Words  # blocks.scheduling.scheduled_words


def register_jobs(scheduler: Scheduler, services: Services, render: Renderers) -> None:
    """Every kind of job the servers run, registered in one place."""

    async def queue(messages: list[OutboxMessage]) -> None:
        await services.payments_repo.add_outbox(messages)
        services.outbox.wake()

    settings = services.settings
    services.scheduled_payments = ScheduledPayments(
        scheduler, services.payments, services.identity, services.invoices, services.billing, services.stripe,
        services.payments_repo, services.processor, services.audit, services.clock, queue,
        render.scheduled_payment, time_zone=settings.default_timezone)
    scheduler.register(KIND, services.scheduled_payments.run)
    services.invoices.scheduled_for = services.scheduled_payments.scheduled_for_team

    services.reminders = ReminderService(
        ReminderRepository(services.sessions), scheduler, services.invoices, services.billing, services.router,
        services.audit, services.clock, render.digest, queue, default_timezone=settings.default_timezone,
        locale=babel_locale(settings.default_locale),
        scheduled_invoices=services.scheduled_payments.scheduled_invoices)
    scheduler.register(DIGEST, services.reminders.run_digest)
