"""The kinds of timed work the scheduler runs: one registration each (bot/scheduler.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.scheduler import Scheduler
from storage.models import OutboxMessage

if TYPE_CHECKING:
    from bot.app import Services


def register_jobs(scheduler: Scheduler, services: Services) -> None:
    """Every kind of job the servers run, registered in one place."""
    from blocks.reminders import digest_message  # noqa: PLC0415 - the app's wiring draws with blocks/
    from bot.identity import babel_locale  # noqa: PLC0415
    from bot.reminders import DIGEST, ReminderService  # noqa: PLC0415
    from storage.reminders import ReminderRepository  # noqa: PLC0415

    async def queue(messages: list[OutboxMessage]) -> None:
        await services.payments_repo.add_outbox(messages)
        services.outbox.wake()

    from blocks.scheduling import scheduled_words  # noqa: PLC0415
    from bot.scheduled_payments import KIND, ScheduledPayments  # noqa: PLC0415

    settings = services.settings
    services.scheduled_payments = ScheduledPayments(
        scheduler, services.payments, services.identity, services.invoices, services.billing, services.stripe,
        services.payments_repo, services.processor, services.audit, services.clock, queue, scheduled_words,
        time_zone=settings.default_timezone)
    scheduler.register(KIND, services.scheduled_payments.run)
    services.invoices.scheduled_for = services.scheduled_payments.scheduled_for_team
    services.reminders = ReminderService(
        ReminderRepository(services.sessions), scheduler, services.invoices, services.billing, services.router,
        services.audit, services.clock, digest_message, queue, default_timezone=settings.default_timezone,
        locale=babel_locale(settings.default_locale),
        scheduled_invoices=services.scheduled_payments.scheduled_invoices)
    scheduler.register(DIGEST, services.reminders.run_digest)
