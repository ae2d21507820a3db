"""The one clock. Everything that asks "what time is it" asks a `Clock`, handed in by the
app factory, so tests move time instead of waiting.

`SystemClock` is the real one. `OffsetClock` adds a number of seconds read from a file
(`CLOCK_OFFSET_FILE`): the end-to-end tests run the bot as a separate process and move its
clock by writing that file. Production leaves the setting unset.

What the database keeps is on the wall clock instead (`storage.models.utcnow`): column
defaults such as `created_at`, and schedule times (`next_attempt_at`, leases) that SQL
compares across processes. A test moving the app's clock forward and back must not strand
such a row, so the outbox worker, which writes them, is given a `SystemClock`.
`today(clock)` is the one "what day is it" (due dates, expired cards).
"""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """An aware datetime in UTC."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class OffsetClock:
    """The system clock plus the seconds written in a file (re-read when the file changes)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp: tuple[int, int] | None = None
        self._offset = dt.timedelta(0)

    def _current_offset(self) -> dt.timedelta:
        try:
            stat = os.stat(self._path)
        except OSError:
            return dt.timedelta(0)
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            try:
                seconds = Decimal(self._path.read_text().strip() or "0")
            except (OSError, InvalidOperation):
                seconds = Decimal(0)
            self._offset = dt.timedelta(seconds=int(seconds))
            self._stamp = stamp
        return self._offset

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self._current_offset()


def clock_from(offset_file: Path | None) -> Clock:
    return OffsetClock(offset_file) if offset_file else SystemClock()


def today(clock: Clock) -> dt.date:
    return clock.now().date()
