"""The scheduler's jobs: scheduled once per key, claimed with a lease, finished once.

Claiming, on PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED` picks due rows no other
transaction holds, and the same transaction marks them running with a lease, so any number
of processes on any number of machines split the due jobs between them without waiting on
each other. On SQLite (one machine; the default for one process): the due rows are read,
then each is taken by a conditional `UPDATE ... WHERE still claimable`; SQLite has one
writer at a time, so the update either takes the row or finds it taken (rowcount 0).

A running job's lease (`locked_until`) is renewed while it runs. A process that dies stops
renewing: once the lease has passed, the job is claimable again and another process runs
it again, with the same key, so what it does (outbox dedupe keys, payment ids) happens once.
Finishing is guarded by the claim (`locked_by` and `attempts`): a process that lost its
lease cannot overwrite the result of the one that took the job over.

Every time is the injected clock's (bot/clock.py), handed in by the caller.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from storage.models import AuditEvent, Job, JobStatus

J = JobStatus
FINISHED = (J.DONE, J.SKIPPED, J.FAILED, J.CANCELED)


def _claimable(now: dt.datetime) -> ColumnElement[bool]:
    return or_(and_(Job.status == J.SCHEDULED, Job.due_at <= now),
               and_(Job.status == J.RUNNING, Job.locked_until < now))


def _audit(job: Job, outcome: str, **detail: Any) -> AuditEvent:
    payload = job.payload or {}
    return AuditEvent(action=f"job:{job.kind}"[:40], outcome=outcome, team_id=job.team_id,
                      user_id=payload.get("user_id"), invoice_id=payload.get("invoice_id"),
                      billing_profile_id=payload.get("billing_profile_id"), payment_id=payload.get("payment_id"),
                      detail={"job": job.key, "due_at": job.due_at.isoformat(), **detail})


def new_job(*, kind: str, key: str, due_at: dt.datetime, payload: dict[str, Any] | None = None,
            team_id: str | None = None, by: str | None = None) -> list[Any]:
    """A job and its `scheduled` audit row, for the caller to write in its own transaction
    together with the rows whose timed work it is (an approval request and its expiry), so
    that neither exists without the other."""
    job = Job(kind=kind, key=key, due_at=due_at, payload=payload or {}, team_id=team_id, status=J.SCHEDULED,
              attempts=0)
    return [job, _audit(job, "scheduled", **({"by": by} if by else {}))]


class JobRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def schedule(self, *, kind: str, key: str, due_at: dt.datetime, payload: dict[str, Any] | None = None,
                       team_id: str | None = None, by: str | None = None) -> Job:
        """Schedule a job once: a second call with the same key returns the first job as it is."""
        rows = new_job(kind=kind, key=key, due_at=due_at, payload=payload, team_id=team_id, by=by)
        job = rows[0]
        try:
            async with self._sessions.begin() as session:
                session.add_all(rows)
                await session.flush()
        except IntegrityError:
            existing = await self.by_key(key)
            if existing is None:  # pragma: no cover - deleted in between; never happens
                raise
            return existing
        return job

    async def reschedule(self, key: str, due_at: dt.datetime, payload: dict[str, Any] | None = None) -> bool:
        """Move a job that has not started yet (e.g. a digest whose time was changed)."""
        values: dict[str, Any] = {"due_at": due_at}
        if payload is not None:
            values["payload"] = payload
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Job).where(Job.key == key, Job.status == J.SCHEDULED).values(**values))
            return result.rowcount == 1

    async def cancel(self, key: str, *, now: dt.datetime, by: str | None = None, reason: str = "") -> bool:
        """Cancel a job not yet started; False when it already ran, runs, or never existed."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Job).where(Job.key == key, Job.status == J.SCHEDULED)
                .values(status=J.CANCELED, finished_at=now, note=reason[:500] or None))
            if result.rowcount != 1:
                return False
            job = await session.scalar(select(Job).where(Job.key == key))
            assert job is not None
            session.add(_audit(job, "canceled", by=by, reason=reason))
            return True

    async def revive(self, key: str, due_at: dt.datetime, *, by: str | None = None) -> bool:
        """Schedule again a job that was cancelled before it ran (e.g. a digest turned off and
        on again for the same day); False when it is not a cancelled job."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Job).where(Job.key == key, Job.status == J.CANCELED)
                .values(status=J.SCHEDULED, due_at=due_at, attempts=0, finished_at=None, note=None,
                        locked_until=None, locked_by=None))
            if result.rowcount != 1:
                return False
            job = await session.scalar(select(Job).where(Job.key == key))
            assert job is not None
            session.add(_audit(job, "scheduled", **({"by": by} if by else {}), revived="true"))
            return True

    async def claim_due(self, now: dt.datetime, *, worker: str, lease: dt.timedelta, limit: int) -> list[Job]:
        """Take up to `limit` due jobs (oldest due first) for `worker`, each until now + lease."""
        if limit <= 0:
            return []
        async with self._sessions() as session:
            dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            return await self._claim_skip_locked(now, worker=worker, lease=lease, limit=limit)
        return await self._claim_conditional(now, worker=worker, lease=lease, limit=limit)

    async def _claim_skip_locked(self, now: dt.datetime, *, worker: str, lease: dt.timedelta,
                                 limit: int) -> list[Job]:
        async with self._sessions.begin() as session:
            ids = list(await session.scalars(
                select(Job.id).where(_claimable(now)).order_by(Job.due_at, Job.id).limit(limit)
                .with_for_update(skip_locked=True)))
            if not ids:
                return []
            await session.execute(
                update(Job).where(Job.id.in_(ids))
                .values(status=J.RUNNING, locked_until=now + lease, locked_by=worker, attempts=Job.attempts + 1)
                .execution_options(synchronize_session=False))
            return list(await session.scalars(select(Job).where(Job.id.in_(ids)).order_by(Job.due_at, Job.id)
                                              .execution_options(populate_existing=True)))

    async def _claim_conditional(self, now: dt.datetime, *, worker: str, lease: dt.timedelta,
                                 limit: int) -> list[Job]:
        claimed: list[Job] = []
        while not claimed:
            async with self._sessions() as session:
                ids = list(await session.scalars(
                    select(Job.id).where(_claimable(now)).order_by(Job.due_at, Job.id).limit(limit)))
            if not ids:
                return []
            for job_id in ids:
                async with self._sessions.begin() as session:
                    result = await session.execute(
                        update(Job).where(Job.id == job_id, _claimable(now))
                        .values(status=J.RUNNING, locked_until=now + lease, locked_by=worker,
                                attempts=Job.attempts + 1))
                    if result.rowcount == 1:
                        claimed.append(await session.get_one(Job, job_id, populate_existing=True))
            # All of them taken by another process in between: look again, more may be due.
        return claimed

    def _held(self, job: Job) -> ColumnElement[bool]:
        """Still this claim's: nobody took the job over after its lease passed."""
        return and_(Job.id == job.id, Job.status == J.RUNNING, Job.locked_by == job.locked_by,
                    Job.attempts == job.attempts)

    async def renew(self, job: Job, until: dt.datetime) -> bool:
        async with self._sessions.begin() as session:
            result = await session.execute(update(Job).where(self._held(job)).values(locked_until=until))
            return result.rowcount == 1

    async def finish(self, job: Job, status: JobStatus, *, now: dt.datetime, note: str | None = None,
                     detail: dict[str, Any] | None = None) -> bool:
        """End a claimed job (done, skipped, failed), audited in the same transaction; False
        when the claim was lost (another process has taken the job over)."""
        assert status in FINISHED
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Job).where(self._held(job))
                .values(status=status, finished_at=now, locked_until=None, note=(note or "")[:500] or None))
            if result.rowcount != 1:
                return False
            session.add(_audit(job, {J.DONE: "ran"}.get(status, status.value), **{
                **(detail or {}), "attempt": job.attempts, "worker": job.locked_by, **({"note": note} if note else {})}))
            return True

    async def retry_later(self, job: Job, at: dt.datetime, *, error: str) -> bool:
        """A failed try that will be tried again at `at` (audited as a failed try)."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Job).where(self._held(job))
                .values(status=J.SCHEDULED, due_at=at, locked_until=None, note=error[:500]))
            if result.rowcount != 1:
                return False
            session.add(_audit(job, "retrying", attempt=job.attempts, error=error, next_at=at.isoformat()))
            return True

    async def by_key(self, key: str) -> Job | None:
        async with self._sessions() as session:
            return await session.scalar(select(Job).where(Job.key == key))

    async def get(self, job_id: int) -> Job | None:
        async with self._sessions() as session:
            return await session.get(Job, job_id)

    async def upcoming(self, *, kinds: Sequence[str] = (), key_prefix: str | None = None,
                       team_id: str | None = None, limit: int = 100) -> list[Job]:
        """Jobs still to run (scheduled or running), soonest first."""
        query = select(Job).where(Job.status.in_([J.SCHEDULED, J.RUNNING])).order_by(Job.due_at, Job.id).limit(limit)
        if team_id is not None:
            query = query.where(Job.team_id == team_id)
        if kinds:
            query = query.where(Job.kind.in_(list(kinds)))
        if key_prefix:
            query = query.where(Job.key.startswith(key_prefix, autoescape=True))
        async with self._sessions() as session:
            return list(await session.scalars(query))

    async def scheduled_by(self, kind: str, team_id: str, user_id: str, *, limit: int) -> tuple[list[Job], int]:
        """One person's jobs of `kind` still waiting (`payload.user_id`), soonest first, at most
        `limit`, and how many there are: two bounded queries (the Home tab)."""
        mine = and_(Job.kind == kind, Job.team_id == team_id, Job.status == J.SCHEDULED,
                    Job.payload["user_id"].as_string() == user_id)
        async with self._sessions() as session:
            rows = list(await session.scalars(select(Job).where(mine).order_by(Job.due_at, Job.id).limit(limit)))
            total = int(await session.scalar(select(func.count()).select_from(Job).where(mine)) or 0)
        return rows, total

    async def recent(self, *, limit: int = 50) -> list[Job]:
        """Finished jobs, the latest first."""
        async with self._sessions() as session:
            return list(await session.scalars(
                select(Job).where(Job.status.in_(list(FINISHED)))
                .order_by(Job.finished_at.desc().nulls_last(), Job.id.desc()).limit(limit)))
