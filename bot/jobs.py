"""The kinds of timed work the scheduler runs: one registration each (bot/scheduler.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.scheduler import Scheduler

if TYPE_CHECKING:
    from bot.app import Services


def register_jobs(scheduler: Scheduler, services: Services) -> None:
    """Every kind of job the servers run, registered in one place."""
    return None
