"""Admission of heavy background work (payment drives) by how well the event loop keeps up.

Every request's ack runs on the same event loop as the work that follows earlier acks. When
that work needs more CPU than the process has (a month-end burst of submissions, each
tens of milliseconds of SQLAlchemy, Stripe SDK and HTTP), every ready task runs before the
loop comes back to an ack (Bolt's runner looks for the ack every 10 ms), acks queue behind
it and pass Slack's 3 seconds. A fixed count of slots would not do: with a slow billing
API a payment spends seconds waiting, not computing, and a few slots would leave the CPU
idle while payments queue.

So the gate measures the loop's own lag (a 10 ms sleep that wakes late means the loop is
busy) and admits new work only while the lag is small, a few pieces per 10 ms tick, always
at least `floor` at once so that work never stops, and never more than `ceiling` at once
(each piece queries the database, whose pool serves only so many at a time). Work that
waits here uses no CPU and holds no database connection; it starts as soon as there is
room, in the order it came.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import time
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

TICK_SECONDS = 0.01
# Lag above this means the loop is busy: requests' acks are already waiting behind work.
MAX_LAG_SECONDS = 0.025
# Work admitted whatever the lag (progress is never stopped by the measurement itself).
FLOOR = 4
# How quickly the measured lag follows the loop (exponential moving average per tick).
SMOOTHING = 0.3


class GateClosed(Exception):
    """The gate closed (the server is stopping) before this work started: none of it ran."""


class LoopGate:
    """`await gate.run(work)`: runs `work` once the loop has room for it (see the module)."""

    def __init__(self, *, max_lag: float = MAX_LAG_SECONDS, floor: int = FLOOR, ceiling: int | None = None,
                 tick: float = TICK_SECONDS) -> None:
        self._max_lag = max_lag
        self._floor = floor
        self._ceiling = ceiling  # never more at once, however idle the loop (what the database serves)
        self._tick = tick
        self._running = 0
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._lag = 0.0
        self._watcher: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def lag(self) -> float:
        return self._lag

    async def run(self, work: Awaitable[T]) -> T:
        """Raises GateClosed (and `work` never runs) when the gate closes before it starts."""
        try:
            await self._enter()
        except (asyncio.CancelledError, GateClosed):
            if inspect.iscoroutine(work):
                work.close()  # never started: nothing of it ran
            raise
        try:
            return await work
        finally:
            self._leave()

    def _has_room(self) -> bool:
        if self._ceiling is not None and self._running >= self._ceiling:
            return False
        return self._running < self._floor or self._lag <= self._max_lag

    async def _enter(self) -> None:
        if self._closed:
            raise GateClosed()
        self._watch()
        if not self._waiting and self._running < self._floor:
            self._running += 1
            return
        # Beyond the floor, work comes in through the watch, one piece per tick while the
        # lag is small: a burst that arrives within one tick cannot all start before the
        # lag it causes has been measured.
        admitted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(admitted)
        try:
            await admitted  # _admit counts it as running when it resolves the future
        except asyncio.CancelledError:
            if admitted.done() and not admitted.cancelled() and admitted.exception() is None:
                self._running -= 1  # admitted and cancelled in the same tick: its slot goes on
                self._admit(1)
            elif admitted in self._waiting:
                self._waiting.remove(admitted)
            raise

    def _leave(self) -> None:
        self._running -= 1
        self._admit(1)  # the slot it leaves, at once when there is room (the watch admits beyond that)

    def _admit(self, count: int) -> None:
        while count > 0 and self._waiting and self._has_room() and not self._closed:
            admitted = self._waiting.popleft()
            if admitted.done():
                continue
            admitted.set_result(None)
            self._running += 1
            count -= 1

    def _watch(self) -> None:
        if not self._closed and (self._watcher is None or self._watcher.done()):
            self._watcher = asyncio.get_running_loop().create_task(self._measure(), name="loop-gate")

    async def _measure(self) -> None:
        """Measures the loop's lag every tick and, while there is room, admits waiting work:
        a few pieces per tick while the loop is idle, one near the limit (a burst is let in
        gradually, so that the lag it causes is measured before more starts)."""
        while True:
            started = time.monotonic()
            await asyncio.sleep(self._tick)
            late = max(0.0, time.monotonic() - started - self._tick)
            self._lag += SMOOTHING * (late - self._lag)
            if self._waiting:
                # Well below the limit a few at once, near it one at a time.
                self._admit(self._floor if self._lag <= self._max_lag / 2 else 1)
            elif not self._waiting and self._running == 0 and self._lag < self._max_lag / 10:
                self._watcher = None
                return  # idle: the next entry starts the watch again

    async def aclose(self) -> None:
        """No more work starts: what still waits gets GateClosed (it never ran, so nothing
        of it happened: a submission says so), and the watch stops."""
        self._closed = True
        while self._waiting:
            waiting = self._waiting.popleft()
            if not waiting.done():
                waiting.set_exception(GateClosed())
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
