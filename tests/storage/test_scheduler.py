"""The scheduler against the real jobs table, on SQLite and (when INVOICEBOT_TEST_POSTGRES
names a server) PostgreSQL: each job runs once, however many schedulers race for it; a job
held by a scheduler that died is finished by another after its lease; missed jobs run at
start-up; every step is audited."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.retry import Backoff
from bot.scheduler import JobContext, JobResult, Scheduler
from sandbox.postgres import temporary_database_sync as temporary_database
from storage.db import create_engine, session_factory
from storage.jobs import JobRepository
from storage.models import AuditEvent, Job, JobStatus
from storage.schema import upgrade

START = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)


class FakeClock:
    def __init__(self, at: dt.datetime = START) -> None:
        self.at = at

    def now(self) -> dt.datetime:
        return self.at

    def move(self, **delta: float) -> None:
        self.at += dt.timedelta(**delta)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
        upgrade(url)
        yield url
        return
    server = os.environ.get("INVOICEBOT_TEST_POSTGRES")
    if not server:
        pytest.skip("INVOICEBOT_TEST_POSTGRES is not set (CI sets it on its PostgreSQL run)")
    with temporary_database(server) as url:
        upgrade(url)
        yield url


@pytest.fixture
async def repos(database_url: str) -> AsyncIterator[tuple[JobRepository, JobRepository]]:
    """Two repositories on two engines (two pools), as two server processes would have."""
    engines = [create_engine(database_url), create_engine(database_url)]
    try:
        yield JobRepository(session_factory(engines[0])), JobRepository(session_factory(engines[1]))
    finally:
        for engine in engines:
            await engine.dispose()


async def audit_of(repo: JobRepository, key: str) -> list[str]:
    async with repo._sessions() as session:  # noqa: SLF001 - the test reads the audit table itself
        events = await session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        return [e.outcome for e in events if e.detail.get("job") == key]


def scheduler(repo: JobRepository, clock: FakeClock, name: str, **kw: object) -> Scheduler:
    return Scheduler(repo, clock, worker=name, lease_seconds=60, poll_seconds=0.05, **kw)  # type: ignore[arg-type]


async def test_a_due_job_runs_once_and_every_step_is_audited(repos: tuple[JobRepository, JobRepository]) -> None:
    clock = FakeClock()
    runs: list[str] = []

    async def work(job: Job, ctx: JobContext) -> JobResult:
        runs.append(job.key)
        return JobResult.done(sent=1)

    one = scheduler(repos[0], clock, "one")
    one.register("test", work)
    first = await one.schedule("test", "t:1", START + dt.timedelta(hours=1), {"user_id": "U1"}, team_id="T1")
    again = await one.schedule("test", "t:1", START + dt.timedelta(hours=5))
    assert again.id == first.id and again.due_at == first.due_at  # scheduling twice is a no-op

    assert await one.run_due() == 0 and runs == []  # not due yet
    clock.move(hours=1)
    assert await one.run_due() == 1
    assert await one.run_due() == 0
    assert runs == ["t:1"]
    job = await repos[0].by_key("t:1")
    assert job is not None and job.status == JobStatus.DONE and job.attempts == 1 and job.locked_until is None
    assert await audit_of(repos[0], "t:1") == ["scheduled", "ran"]


async def test_a_cancelled_job_never_runs(repos: tuple[JobRepository, JobRepository]) -> None:
    clock = FakeClock()
    runs: list[str] = []

    async def work(job: Job, ctx: JobContext) -> JobResult:
        runs.append(job.key)
        return JobResult.done()

    one = scheduler(repos[0], clock, "one")
    one.register("test", work)
    await one.schedule("test", "t:c", START + dt.timedelta(minutes=5))
    assert await one.cancel("t:c", by="U1", reason="paid by wire")
    assert not await one.cancel("t:c")  # once
    clock.move(days=2)
    assert await one.run_due() == 0 and runs == []
    assert await audit_of(repos[0], "t:c") == ["scheduled", "canceled"]


async def test_two_schedulers_racing_run_each_of_100_jobs_once(repos: tuple[JobRepository, JobRepository]) -> None:
    clock = FakeClock()
    runs: list[tuple[str, str]] = []

    def work_of(name: str):  # noqa: ANN202
        async def work(job: Job, ctx: JobContext) -> JobResult:
            await asyncio.sleep(0.01)  # long enough for the other to try the same rows
            runs.append((name, job.key))
            return JobResult.done()
        return work

    schedulers = [scheduler(repo, clock, name) for repo, name in zip(repos, ["a", "b"], strict=True)]
    for each, name in zip(schedulers, ["a", "b"], strict=True):
        each.register("test", work_of(name))
    for n in range(100):
        await schedulers[0].schedule("test", f"race:{n}", START)
    counts = await asyncio.gather(*(each.run_due() for each in schedulers))
    keys = sorted(key for _, key in runs)
    assert keys == sorted(f"race:{n}" for n in range(100))  # every job, none twice
    assert sum(counts) == 100
    assert {name for name, _ in runs} == {"a", "b"}  # both took a share


async def test_a_job_held_by_a_dead_scheduler_is_finished_by_another_after_its_lease(
        repos: tuple[JobRepository, JobRepository]) -> None:
    clock = FakeClock()
    runs: list[str] = []

    async def work(job: Job, ctx: JobContext) -> JobResult:
        runs.append(job.locked_by or "")
        return JobResult.done()

    survivor = scheduler(repos[1], clock, "survivor")
    survivor.register("test", work)
    await survivor.schedule("test", "t:dead", START)
    # The one that dies: it claims the job (its lease: 60 s) and never finishes it.
    held = await repos[0].claim_due(clock.now(), worker="dead", lease=dt.timedelta(seconds=60), limit=10)
    assert [j.key for j in held] == ["t:dead"]

    assert await survivor.run_due() == 0  # the lease still holds
    clock.move(seconds=61)
    assert await survivor.run_due() == 1
    assert runs == ["survivor"]
    # The dead one waking up late cannot overwrite the survivor's result.
    assert not await repos[0].finish(held[0], JobStatus.FAILED, now=clock.now(), note="late")
    job = await repos[0].by_key("t:dead")
    assert job is not None and job.status == JobStatus.DONE and job.attempts == 2
    assert await audit_of(repos[0], "t:dead") == ["scheduled", "ran"]


async def test_a_long_job_keeps_its_lease_while_it_runs(repos: tuple[JobRepository, JobRepository]) -> None:
    clock = FakeClock()
    started = asyncio.Event()
    release = asyncio.Event()
    runs: list[str] = []

    async def slow(job: Job, ctx: JobContext) -> JobResult:
        runs.append(job.locked_by or "")
        started.set()
        await release.wait()
        return JobResult.done()

    one = Scheduler(repos[0], clock, worker="one", lease_seconds=0.6, poll_seconds=0.05)
    other = Scheduler(repos[1], clock, worker="other", lease_seconds=0.6, poll_seconds=0.05)
    for each in (one, other):
        each.register("test", slow)
    await one.schedule("test", "t:slow", START)
    running = asyncio.create_task(one.run_due())
    await started.wait()
    for _ in range(4):  # well past the first lease, in real time and on the clock
        await asyncio.sleep(0.3)
        clock.move(seconds=0.3)
        assert await other.run_due() == 0
    release.set()
    assert await running == 1
    assert runs == ["one"]


async def test_a_failing_job_is_retried_then_failed_and_audited(repos: tuple[JobRepository, JobRepository]) -> None:
    clock = FakeClock()
    tries: list[int] = []

    async def broken(job: Job, ctx: JobContext) -> JobResult:
        tries.append(job.attempts)
        raise RuntimeError("billing said no")

    one = scheduler(repos[0], clock, "one", backoff=Backoff(base=10, cap=10, jitter=0, max_attempts=3))
    one.register("test", broken)
    await one.schedule("test", "t:fail", START)
    assert await one.run_due() == 1
    assert await one.run_due() == 0  # waits for its retry
    for _ in range(2):
        clock.move(seconds=11)
        assert await one.run_due() == 1
    clock.move(days=1)
    assert await one.run_due() == 0
    assert tries == [1, 2, 3]
    job = await repos[0].by_key("t:fail")
    assert job is not None and job.status == JobStatus.FAILED and "billing said no" in (job.note or "")
    assert await audit_of(repos[0], "t:fail") == ["scheduled", "retrying", "retrying", "failed"]


async def test_jobs_missed_while_no_server_ran_run_at_start_up(repos: tuple[JobRepository, JobRepository]) -> None:
    clock = FakeClock()
    late: list[dt.timedelta] = []

    async def work(job: Job, ctx: JobContext) -> JobResult:
        late.append(ctx.late_by(job))
        return JobResult.skip("too late") if ctx.late_by(job) > dt.timedelta(days=1) else JobResult.done()

    await repos[0].schedule(kind="test", key="t:missed", due_at=START - dt.timedelta(hours=3))
    await repos[0].schedule(kind="test", key="t:very-late", due_at=START - dt.timedelta(days=2))
    one = scheduler(repos[0], clock, "one")
    one.register("test", work)
    task = asyncio.create_task(one.run_forever())
    try:
        for _ in range(100):
            if len(late) == 2:
                break
            await asyncio.sleep(0.05)
    finally:
        one.stop()
        await asyncio.wait_for(task, 5)
    assert sorted(late) == [dt.timedelta(hours=3), dt.timedelta(days=2)]
    assert (await repos[0].by_key("t:missed")).status == JobStatus.DONE  # type: ignore[union-attr]
    skipped = await repos[0].by_key("t:very-late")
    assert skipped is not None and skipped.status == JobStatus.SKIPPED and skipped.note == "too late"
    assert await audit_of(repos[0], "t:very-late") == ["scheduled", "skipped"]


def test_one_registration_per_kind() -> None:
    one = Scheduler(JobRepository(None), FakeClock(), worker="x")  # type: ignore[arg-type]

    async def work(job: Job, ctx: JobContext) -> JobResult:
        return JobResult.done()

    one.register("approval_expiry", work)
    with pytest.raises(ValueError, match="registered already"):
        one.register("approval_expiry", work)
    assert one.kinds == ["approval_expiry"]
