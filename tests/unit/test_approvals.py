"""Approvals without the network: which amounts a rule catches, the messages within Slack's
limits, and the outbox's in-place updates (a request DM kept alone, its updates by chat.update)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from blocks.approvals import (
    awaiting_view, click_answer, decided_message, policy_notice, reason_view, request_message, requester_message,
    rules_message,
)
from bot.approvals import ApprovalCard, Refusal, Rule
from bot.money import Money
from bot.outbox_worker import OutboxWorker
from handlers.slack_io import SlackSender
from handlers.slack_approvals import SlackApprovalNotices, ask_key, updates
from sandbox.slack.limits import validate_message, validate_view
from storage.db import create_engine, session_factory
from storage.models import ApprovalRequest, Base, OutboxMessage, Payment, PaymentStatus, utcnow
from storage.outbox import OutboxRepository
from storage.payments import PaymentRepository

EUR = "EUR"


def eur(text: str) -> Money:
    return Money(Decimal(text), EUR)


@pytest.mark.parametrize(("threshold", "amount", "needs"), [
    ("1000.00", "999.99", False),
    ("1000.00", "1000.00", True),   # "of that amount or more"
    ("1000.00", "1000.01", True),
    (None, "1000000.00", False),    # no threshold: no approval
])
def test_a_rule_catches_its_threshold_and_more(threshold: str | None, amount: str, needs: bool) -> None:
    rule = Rule("bp_1", "Acme", eur(threshold) if threshold else None, ("U1",))
    assert rule.applies_to(eur(amount)) is needs


def test_a_rule_in_another_currency_never_lets_a_payment_through_unasked() -> None:
    rule = Rule("bp_1", "Acme", Money(Decimal("1000"), "USD"), ("U1",))
    assert rule.applies_to(eur("1.00"))


def _payment(**fields: Any) -> Payment:
    values: dict[str, Any] = dict(
        id="pay_1", team_id="T1", user_id="UREQ", paid_by="req@acme.example", invoice_id="in_1",
        invoice_number="INV-<1>", billing_profile_id="bp_1", billing_profile_name="Acme <!channel>",
        invoice_url=None, amount_minor=150000, currency=EUR, method_kind="card", payment_method_id="pm_1",
        payment_method_type="card", method_label="Visa •••• 4242", stripe_customer_id="cus_1",
        status=PaymentStatus.AWAITING_APPROVAL.value, attempts=0, locale="en_US")
    values.update(fields)
    return Payment(**values)


def _request(**fields: Any) -> ApprovalRequest:
    values: dict[str, Any] = dict(payment_id="pay_1", team_id="T1", billing_profile_id="bp_1", requester_id="UREQ",
                                  approvers=["UA", "UB"], threshold_minor=100000,
                                  expires_at=dt.datetime(2026, 12, 5, tzinfo=dt.UTC))
    values.update(fields)
    return ApprovalRequest(**values)


def test_every_approval_message_is_one_slack_takes_and_escapes_billing_text() -> None:
    payment, request = _payment(), _request(decided_by="UA", reason="Wrong <@U9> cost centre")
    card = ApprovalCard.of(payment, request)
    asked = request_message(card, due_on=dt.date(2026, 12, 31), balance=eur("1500.00"))
    assert validate_message(asked["text"], asked["blocks"]) == []
    assert "approval_approve" in str(asked["blocks"]) and "approval_reject" in str(asked["blocks"])
    assert "<!channel>" not in str(asked["blocks"]) and "INV-&lt;1&gt;" in str(asked["blocks"])
    for event in ("approved", "paid", "failed", "rejected", "withdrawn", "expired", "canceled"):
        message = decided_message(card, event)
        assert validate_message(message["text"], message["blocks"]) == []
        assert "approval_approve" not in str(message["blocks"]), "an outcome keeps no buttons"
        told = requester_message(card, event)
        assert validate_message(told["text"], told["blocks"]) == []
    assert "<@U9>" not in str(decided_message(card, "rejected")["blocks"])
    rule = Rule("bp_1", "Acme", eur("1000.00"), ("UA", "UB"))
    notice = policy_notice(rule, by="UADMIN", what="of €1,000.00 or more now need approval")
    assert validate_message(notice["text"], notice["blocks"]) == []
    message = rules_message([rule, Rule("bp_2", "Beta", None, ())])
    assert validate_message(message.text, message.blocks) == []
    assert validate_view(awaiting_view(card, callback_id="pay_invoice")) == []
    assert validate_view(reason_view("pay_1")) == []


def test_a_click_answer_says_what_happened() -> None:
    assert "yourself" in click_answer(Refusal.SELF_APPROVAL, ApprovalCard.of(_payment(), _request()))
    decided = ApprovalCard.of(_payment(status=PaymentStatus.RECORDED.value, approved_by="UB"), _request())
    assert "already decided by <@UB>" in click_answer(Refusal.ALREADY_DECIDED, decided)
    assert "Approved and charged: €1,500.00" in click_answer(None, decided)


class RecordingSlack:
    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []

    def client(self) -> Any:
        fake = self

        class Client:
            async def chat_postMessage(self, **kw: Any) -> dict[str, Any]:  # noqa: N802
                fake.posts.append(kw)
                return {"ok": True, "channel": f"D{kw['channel']}", "ts": f"{len(fake.posts)}.0001"}

            async def chat_update(self, **kw: Any) -> dict[str, Any]:
                fake.updates.append(kw)
                return {"ok": True}

        return Client()


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[tuple[OutboxRepository, PaymentRepository]]:
    engine = create_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield OutboxRepository(session_factory(engine)), PaymentRepository(session_factory(engine))
    await engine.dispose()


async def test_a_request_dm_is_sent_alone_and_its_updates_edit_it_in_place(
        outbox: tuple[OutboxRepository, PaymentRepository]) -> None:
    repo, payments = outbox
    slack = RecordingSlack()

    async def client_for(_team: str) -> Any:
        return slack.client()

    class Router:
        async def channel_for(self, team_id: str, profile_id: str) -> str:
            return "C_BILLING"

    worker = OutboxWorker(repo, SlackSender(client_for), pace_seconds=0)
    payment, request = _payment(), _request()
    notices = SlackApprovalNotices(Router())  # type: ignore[arg-type]
    from bot.billing import Invoice  # noqa: PLC0415

    invoice = Invoice(id="in_1", number="INV-1", billing_profile_id="bp_1", status="open", currency=EUR,
                      total=Decimal("1500.00"), amount_due=Decimal("1500.00"), due_on=dt.date(2026, 12, 31))
    # Another DM to the same approver queued first: it must not swallow the request into a digest.
    await payments.add_outbox([OutboxMessage(dedupe_key="other", team_id="T1", channel="UA",
                                             payload={"text": "hello"}, attempts=0, next_attempt_at=utcnow())])
    await payments.add_outbox(await notices.asked(payment, request, invoice))
    await payments.add_outbox(updates(_payment(status="approved", approved_by="UB"), request, "approved"))
    while await worker.deliver_due():
        pass

    assert [p["channel"] for p in slack.posts].count("UA") == 2  # "hello" and the request, separately
    assert await repo.posted(ask_key("pay_1", "UA")) is not None
    edited = {u["channel"]: u for u in slack.updates}
    assert set(edited) == {"DUA", "DUB"}
    assert edited["DUA"]["ts"] == (await repo.posted(ask_key("pay_1", "UA")))[1]
    assert "Approved by <@UB>" in str(edited["DUA"]["blocks"])


class _NoNotices:
    async def decided(self, *_args: Any) -> list[OutboxMessage]:
        return []


async def test_a_request_past_its_time_is_never_approved_even_before_a_sweep_expires_it(tmp_path: Path) -> None:
    from bot.approvals import ApprovalService
    from storage.approvals import ApprovalRepository
    from storage.audit import AuditLog
    from tests.fakes import FakeClock

    clock = FakeClock()
    engine = create_engine(f"sqlite:///{tmp_path / 'expiry.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    sessions = session_factory(engine)
    payments = PaymentRepository(sessions, now=clock.now)
    await payments.create(_payment(), submission_key="V1:h1",
                          also=[_request(expires_at=clock.now() + dt.timedelta(hours=72))])
    # Nothing past the time check is reachable: identity, billing, Stripe and the processor are absent.
    service = ApprovalService(ApprovalRepository(sessions), payments, None, None, None, None, None,  # type: ignore[arg-type]
                              AuditLog(sessions), _NoNotices(), clock, ttl=dt.timedelta(hours=72))  # type: ignore[arg-type]
    clock.move(hours=72, seconds=1)  # past its time; the reconciler's sweep has not run

    decision = await service.approve("T1", "UA", "pay_1")
    assert decision.refused is Refusal.ALREADY_DECIDED
    stored = await payments.get("pay_1")
    assert stored is not None and stored.status == PaymentStatus.EXPIRED.value
    await engine.dispose()


async def test_each_request_is_expired_by_its_own_scheduler_job_and_a_decided_one_s_job_is_cancelled(
        tmp_path: Path) -> None:
    """The request and its `approval_expiry` job are written with the payment; at the expiry
    the real scheduler runs the job and the request expires; a request decided before its
    time has its job cancelled (and a job run anyway would find it decided)."""
    from bot.approvals import EXPIRY, ApprovalService, expiry_key
    from bot.scheduler import Scheduler
    from storage.approvals import ApprovalRepository
    from storage.audit import AuditLog
    from storage.jobs import JobRepository
    from tests.fakes import FakeClock

    clock = FakeClock()
    engine = create_engine(f"sqlite:///{tmp_path / 'expiry_jobs.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    sessions = session_factory(engine)
    payments = PaymentRepository(sessions, now=clock.now)
    scheduler = Scheduler(JobRepository(sessions), clock, worker="test")
    service = ApprovalService(ApprovalRepository(sessions), payments, None, None, None, None, None,  # type: ignore[arg-type]
                              AuditLog(sessions), _NoNotices(), clock, ttl=dt.timedelta(hours=72),  # type: ignore[arg-type]
                              scheduler=scheduler)
    scheduler.register(EXPIRY, service.expire_job)
    rule = Rule("bp_1", "Acme", eur("1000.00"), ("UA", "UB"))
    for payment_id, invoice_id in (("pay_1", "in_1"), ("pay_2", "in_2")):
        payment = _payment(id=payment_id, invoice_id=invoice_id)
        await payments.create(payment, submission_key=f"V:{payment_id}", also=service.request_rows(payment, rule))
    job = await scheduler.jobs.by_key(expiry_key("pay_1"))
    assert job is not None and job.status == "scheduled" and job.due_at == clock.now() + dt.timedelta(hours=72)

    withdrawn = await service.withdraw("T1", "UREQ", "pay_2")
    assert withdrawn.refused is None
    cancelled = await scheduler.jobs.by_key(expiry_key("pay_2"))
    assert cancelled is not None and cancelled.status == "canceled"

    clock.move(hours=71)
    assert await scheduler.run_due() == 0  # not yet
    clock.move(hours=1, seconds=1)
    assert await scheduler.run_due() == 1
    expired = await payments.get("pay_1")
    assert expired is not None and expired.status == PaymentStatus.EXPIRED.value
    ran = await scheduler.jobs.by_key(expiry_key("pay_1"))
    assert ran is not None and ran.status == "done"
    second = await payments.get("pay_2")
    assert second is not None and second.status == PaymentStatus.WITHDRAWN.value
    await engine.dispose()
