"""One scheduler for all timed work: digests, scheduled payments, approval expiry.

Every `invoicebot serve` process runs one. A pass claims the due jobs from the database with
a lease (storage/jobs.py: `FOR UPDATE SKIP LOCKED` on PostgreSQL, a conditional update on
SQLite), runs each through the handler registered for its kind, and records how it ended.
So any number of processes run each job once; a process that dies mid-job stops renewing
its lease, and once the lease has passed another process runs the job again with the same
key (handlers make their effects idempotent by that key). Jobs that came due while every
server was down are simply due: the first pass after start-up runs them (a handler decides
what "late" means for its work, e.g. a payment more than a day late asks the payer).

Adding a kind of work is one registration:

    scheduler.register("approval_expiry", approvals.expire_job)

where the handler is `async def expire_job(job: Job, ctx: JobContext) -> JobResult`.
A handler that raises is tried again on `JOB_RETRY` (then the job is failed, audited,
listed by `invoicebot jobs`, and the kind's `on_failed` is told); one that returns `JobResult.skip(note)` ran and chose not to act.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.clock import Clock
from bot.retry import Backoff
from storage.jobs import JobRepository
from storage.models import Job, JobStatus

log = logging.getLogger(__name__)

# A job that raises: again after 30 s, 1 min, 2 min ... up to 30 min, 8 tries in all (about
# an hour and a half), then it is failed and waits for an operator (`invoicebot jobs`).
JOB_RETRY = Backoff(base=30.0, cap=1800.0, max_attempts=8)


@dataclass(frozen=True, slots=True)
class JobResult:
    status: JobStatus = JobStatus.DONE
    note: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def done(cls, note: str | None = None, **detail: Any) -> JobResult:
        return cls(JobStatus.DONE, note, detail)

    @classmethod
    def skip(cls, note: str, **detail: Any) -> JobResult:
        """Ran and chose not to act; `note` says why (for `invoicebot jobs`), `detail` is audited."""
        return cls(JobStatus.SKIPPED, note, detail)


@dataclass(frozen=True, slots=True)
class JobContext:
    now: dt.datetime  # when this run started, by the injected clock

    def late_by(self, job: Job) -> dt.timedelta:
        return max(dt.timedelta(0), self.now - job.due_at)


Handler = Callable[[Job, JobContext], Awaitable[JobResult]]
GaveUp = Callable[[Job, str], Awaitable[None]]


def worker_name() -> str:
    """Who holds a lease, for the operator: host and process id."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}"


class Scheduler:
    def __init__(self, jobs: JobRepository, clock: Clock, *, lease_seconds: float = 120.0,
                 poll_seconds: float = 5.0, concurrency: int = 4, backoff: Backoff = JOB_RETRY,
                 worker: str | None = None) -> None:
        self.jobs = jobs
        self._clock = clock
        self._lease = dt.timedelta(seconds=lease_seconds)
        self._poll = poll_seconds
        self._concurrency = max(1, concurrency)
        self._backoff = backoff
        self.worker = worker or worker_name()
        self._handlers: dict[str, Handler] = {}
        self._gave_up: dict[str, GaveUp] = {}
        self._wake = asyncio.Event()
        self._stopping = False

    # -- the registry ----------------------------------------------------------------------
    def register(self, kind: str, handler: Handler, *, on_failed: GaveUp | None = None) -> None:
        """`on_failed(job, error)`: told once when every try of a job of this kind failed
        (e.g. to tell the person whose work it was)."""
        if kind in self._handlers:
            raise ValueError(f"job kind {kind!r} is registered already")
        self._handlers[kind] = handler
        if on_failed is not None:
            self._gave_up[kind] = on_failed

    @property
    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    # -- scheduling ------------------------------------------------------------------------
    async def schedule(self, kind: str, key: str, due_at: dt.datetime, payload: dict[str, Any] | None = None, *,
                       team_id: str | None = None, by: str | None = None) -> Job:
        if kind not in self._handlers:
            raise ValueError(f"no handler for job kind {kind!r}")
        job = await self.jobs.schedule(kind=kind, key=key, due_at=due_at, payload=payload, team_id=team_id, by=by)
        if job.due_at <= self._clock.now():
            self.wake()
        return job

    async def cancel(self, key: str, *, by: str | None = None, reason: str = "") -> bool:
        return await self.jobs.cancel(key, now=self._clock.now(), by=by, reason=reason)

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Finish the jobs under way, then return from `run_forever`."""
        self._stopping = True
        self._wake.set()

    # -- running ---------------------------------------------------------------------------
    async def run_due(self) -> int:
        """Run what is due now, pass after pass, until nothing is; returns how many ran."""
        ran = 0
        while not self._stopping:
            claimed = await self.jobs.claim_due(self._clock.now(), worker=self.worker, lease=self._lease,
                                                limit=self._concurrency)
            if not claimed:
                break
            await asyncio.gather(*(self._run(job) for job in claimed))
            ran += len(claimed)
        return ran

    async def run_forever(self) -> None:
        # The first pass is at once: what came due while no server ran is run at start-up.
        while not self._stopping:
            try:
                await self.run_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the scheduler outlives any one failure (the database away)
                log.exception("scheduler pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
            self._wake.clear()

    async def _run(self, job: Job) -> None:
        handler = self._handlers.get(job.kind)
        now = self._clock.now()
        if handler is None:
            # A job of a kind this (older) process does not know: leave it to one that does.
            log.warning("job %s: no handler for kind %s here; leaving it to another process", job.key, job.kind)
            await self.jobs.retry_later(job, now + dt.timedelta(minutes=1), error=f"no handler for {job.kind} "
                                        f"in {self.worker}")
            return
        heartbeat = asyncio.create_task(self._keep_lease(job), name=f"lease:{job.id}")
        try:
            result = await handler(job, JobContext(now=now))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one job's failure stays with that job
            await self._failed(job, exc)
            return
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        try:
            held = await self.jobs.finish(job, result.status, now=self._clock.now(), note=result.note,
                                          detail=result.detail)
        except Exception:  # noqa: BLE001 - the database away: the lease passes and the job runs again (same key)
            log.exception("job %s ran but its end could not be recorded", job.key)
            return
        if not held:
            log.warning("job %s finished here after its lease passed; the process that took it over records it",
                        job.key)
            return
        log.info("job %s (%s): %s%s", job.key, job.kind, result.status.value,
                 f" ({result.note})" if result.note else "")

    async def _failed(self, job: Job, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"[:300]
        now = self._clock.now()
        if self._backoff.exhausted(job.attempts):
            log.error("job %s (%s) failed after %d tries: %s", job.key, job.kind, job.attempts, error)
            if await self.jobs.finish(job, JobStatus.FAILED, now=now, note=error) and job.kind in self._gave_up:
                try:
                    await self._gave_up[job.kind](job, error)
                except Exception:  # noqa: BLE001 - the job stays failed and listed by `invoicebot jobs`
                    log.exception("job %s: telling that it failed did not work", job.key)
            return
        at = now + self._backoff.delay(job.attempts)
        log.warning("job %s (%s) failed, try %d; again at %s: %s", job.key, job.kind, job.attempts,
                    f"{at:%H:%M:%S}", error, exc_info=exc if job.attempts <= 1 else None)
        await self.jobs.retry_later(job, at, error=error)

    async def _keep_lease(self, job: Job) -> None:
        """Renew the lease while the handler runs, a third of the lease at a time."""
        every = max(self._lease.total_seconds() / 3, 0.2)
        while True:
            await asyncio.sleep(every)
            try:
                if not await self.jobs.renew(job, self._clock.now() + self._lease):
                    log.warning("job %s: lease lost (taken over after it passed)", job.key)
                    return
            except Exception:  # noqa: BLE001 - the next renewal tries again
                log.warning("job %s: could not renew its lease", job.key, exc_info=True)
