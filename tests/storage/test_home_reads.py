"""The Home tab's bounded reads of the bot's own tables, on SQLite and (when
INVOICEBOT_TEST_POSTGRES names a server) PostgreSQL: the requests waiting for one approver
(the JSON list of approvers), a requester's own, and one person's scheduled payments (the
JSON payload's user), each a page and a count."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from storage.approvals import ApprovalRepository
from storage.db import create_engine, session_factory
from storage.jobs import JobRepository
from storage.models import ApprovalRequest, Job, JobStatus, Payment
from storage.schema import upgrade

NOW = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)


def _payment(i: int, status: str, user: str) -> Payment:
    return Payment(id=f"pay_{i:03d}", team_id="T1", user_id=user, paid_by="x@acme.example", invoice_id=f"inv_{i}",
                   invoice_number=f"INV-{i}", billing_profile_id="bp_eu" if i % 2 else "bp_us",
                   billing_profile_name="Acme", amount_minor=100_000 + i, currency="EUR", method_kind="card",
                   payment_method_id="pm", payment_method_type="card", method_label="Visa •••• 4242",
                   stripe_customer_id="cus", status=status)


@pytest.fixture
async def sessions(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    upgrade(database_url)
    engine = create_engine(database_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def test_waiting_requests_for_an_approver_and_of_a_requester(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions.begin() as session:
        for i in range(30):
            status = "awaiting_approval" if i < 25 else "approved"
            session.add(_payment(i, status, "UREQ" if i % 3 else "UOTHER"))
            await session.flush()
            approvers = ["UANNA", "UBEN"] if i % 5 else ["UBEN"]
            session.add(ApprovalRequest(payment_id=f"pay_{i:03d}", team_id="T1",
                                        billing_profile_id="bp_eu" if i % 2 else "bp_us",
                                        requester_id="UREQ" if i % 3 else "UOTHER", approvers=approvers,
                                        threshold_minor=1000,
                                        expires_at=NOW + dt.timedelta(hours=i - 2)))  # 0..2 expired
        # A near-miss id: "UANN" must not match "UANNA"; another workspace's request never shows.
        session.add(_payment(99, "awaiting_approval", "UREQ"))
        await session.flush()
        session.add(ApprovalRequest(payment_id="pay_099", team_id="T2", billing_profile_id="bp_eu",
                                    requester_id="UREQ", approvers=["UANNA"], threshold_minor=1, expires_at=NOW
                                    + dt.timedelta(days=1)))
    repo = ApprovalRepository(sessions)

    expected = [i for i in range(3, 25) if i % 5]
    rows, total = await repo.waiting("T1", now=NOW, approver="UANNA", limit=5)
    assert total == len(expected) and [p.id for _, p in rows] == [f"pay_{i:03d}" for i in expected[:5]]
    rows, total = await repo.waiting("T1", now=NOW, approver="UANNA", profile_ids=["bp_eu"], limit=100)
    assert total == len([i for i in expected if i % 2]) and all(r.billing_profile_id == "bp_eu" for r, _ in rows)
    assert (await repo.waiting("T1", now=NOW, approver="UANN", limit=5))[1] == 0
    assert (await repo.waiting("T1", now=NOW, approver="U%", limit=5))[1] == 0
    mine = [i for i in range(3, 25) if i % 3]
    rows, total = await repo.waiting("T1", now=NOW, requester="UREQ", limit=3)
    assert total == len(mine) and [p.id for _, p in rows] == [f"pay_{i:03d}" for i in mine[:3]]
    # Leaving out a kind of payment by its id's prefix (the Home tab: scheduled payments' requests).
    rows, total = await repo.waiting("T1", now=NOW, requester="UREQ", not_prefixed="pay_00", limit=100)
    assert total == len([i for i in mine if i >= 10]) and all(p.id >= "pay_010" for _, p in rows)
    # Nobody is asked to decide their own request.
    rows, total = await repo.waiting("T1", now=NOW, approver="UREQ", limit=5)
    assert total == 0


async def test_one_person_s_scheduled_jobs(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions.begin() as session:
        for i in range(40):
            session.add(Job(key=f"payment:{i}", kind="scheduled_payment", team_id="T1",
                            payload={"user_id": "U1" if i % 2 else "U2", "n": i},
                            due_at=NOW + dt.timedelta(hours=40 - i),
                            status=JobStatus.SCHEDULED if i < 36 else JobStatus.CANCELED))
        session.add(Job(key="digest:x", kind="reminder_digest", team_id="T1", payload={"user_id": "U1"},
                        due_at=NOW, status=JobStatus.SCHEDULED))
    jobs = JobRepository(sessions)
    rows, total = await jobs.scheduled_by("scheduled_payment", "T1", "U1", limit=4)
    assert total == 18 and [j.payload["n"] for j in rows] == [35, 33, 31, 29]  # the soonest first
    assert (await jobs.scheduled_by("scheduled_payment", "T2", "U1", limit=4))[1] == 0
