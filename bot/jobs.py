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

    settings = services.settings
    services.reminders = ReminderService(
        ReminderRepository(services.sessions), scheduler, services.invoices, services.billing, services.router,
        services.audit, services.clock, digest_message, queue, default_timezone=settings.default_timezone,
        locale=babel_locale(settings.default_locale))
    scheduler.register(DIGEST, services.reminders.run_digest)
