"""Scheduled payments' pure parts: which dates may be chosen, and what the payer is told."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from blocks.scheduling import CANCEL_SCHEDULED, scheduled_words, when_blocks
from bot.billing import Invoice
from bot.errors import FieldProblem
from bot.money import Money
from bot.scheduled_payments import Scheduled, allowed_dates, pay_date

TODAY = dt.date(2026, 12, 2)
DUE = dt.date(2026, 12, 10)


def test_the_dates_run_from_tomorrow_to_30_days_after_the_due_date() -> None:
    assert allowed_dates(DUE, TODAY) == (dt.date(2026, 12, 3), dt.date(2027, 1, 9))
    assert pay_date("now", None, due_on=DUE, today=TODAY) is None
    assert pay_date("due", None, due_on=DUE, today=TODAY) == DUE
    assert pay_date("date", dt.date(2027, 1, 9), due_on=DUE, today=TODAY) == dt.date(2027, 1, 9)
    for bad in (TODAY, dt.date(2027, 1, 10), dt.date(2026, 11, 30)):
        with pytest.raises(FieldProblem) as problem:
            pay_date("date", bad, due_on=DUE, today=TODAY)
        assert problem.value.field == "pay_on" and "2026-12-03 to 2027-01-09" in problem.value.message
    with pytest.raises(FieldProblem, match="pay now, or choose a date"):
        pay_date("due", None, due_on=TODAY, today=TODAY)  # due today: nothing to wait for
    with pytest.raises(FieldProblem, match="Choose the date"):
        pay_date("date", None, due_on=DUE, today=TODAY)


def test_the_modal_offers_the_due_date_only_while_it_is_ahead() -> None:
    invoice = Invoice(id="inv_1", number="INV-1", billing_profile_id="bp", status="open", currency="EUR",
                      total="10.00", amount_due="10.00", due_on=DUE)
    [when, on] = [b.to_dict() for b in when_blocks(invoice, today=TODAY, locale="en_US")]
    assert [o["value"] for o in when["element"]["options"]] == ["now", "due", "date"]
    assert when["element"]["initial_option"]["value"] == "now" and when["optional"] and on["optional"]
    assert "Dec 3, 2026" in on["hint"]["text"] and "Jan 9, 2027" in on["hint"]["text"]
    past = invoice.model_copy(update={"due_on": TODAY})
    [when, _] = [b.to_dict() for b in when_blocks(past, today=TODAY, locale="en_US")]
    assert [o["value"] for o in when["element"]["options"]] == ["now", "date"]


def scheduled() -> Scheduled:
    return Scheduled("payment:V1:h", "inv_1", "INV-1", "bp", "Acme GmbH", Money.from_minor(25000, "EUR"),
                     "Visa •••• 4242", DUE, dt.datetime(2026, 12, 10, 8, 0, tzinfo=dt.UTC), "Europe/Berlin", "U1",
                     "de_DE")


def test_the_payer_is_told_in_their_locale_with_cancel_or_pay_now() -> None:
    told = scheduled_words("scheduled", scheduled(), {})
    assert "250,00" in told["text"] and "09:00 (Europe/Berlin)" in told["text"]
    [cancel] = [e for b in told["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert cancel["action_id"] == CANCEL_SCHEDULED and cancel["value"] == "payment:V1:h" and "confirm" in cancel
    lowered = scheduled_words("lowered", scheduled(), {"paying": 20000})
    assert "200,00" in lowered["text"]
    for event in ("late", "method", "declined"):
        [pay] = [e for b in scheduled_words(event, scheduled(), {})["blocks"] if b["type"] == "actions"
                 for e in b["elements"]]
        assert pay["text"]["text"] == "Pay Now" and json.loads(pay["value"]) == {"invoice": "inv_1"}
    paid = scheduled_words("paid", scheduled(), {})
    assert "nothing was charged" in paid["text"] and not [b for b in paid["blocks"] if b["type"] == "actions"]


async def test_a_scheduled_payment_whose_charge_started_is_not_cancelled_as_if_nothing_was_charged() -> None:
    """Its job ran, made its payment, failed after, and was put back for a retry: Cancel must
    refuse (the money may be moving) rather than say "nothing was charged"."""
    import datetime as dt
    from types import SimpleNamespace

    from bot.scheduled_payments import KIND, ScheduledPayments, ScheduleProblem
    from storage.models import Job

    job = Job(key="sched:1", kind=KIND, team_id="T1", due_at=dt.datetime(2026, 12, 3, 8, tzinfo=dt.UTC), payload={
        "payment_id": "pay_sched_1", "user_id": "U1", "invoice_id": "in_1", "invoice_number": "INV-1",
        "billing_profile_id": "bp_1", "billing_profile_name": "Acme", "amount_minor": 10000, "currency": "EUR",
        "method_label": "Visa •••• 4242", "pay_on": "2026-12-03", "time_zone": "UTC"})
    cancelled: list[str] = []

    async def by_key(key: str) -> Job | None:
        return job if key == job.key else None

    async def cancel(key: str, **_: object) -> bool:
        cancelled.append(key)
        return True

    async def get(payment_id: str) -> object | None:
        # The payment row exists, and its charge has started.
        return SimpleNamespace(status="confirming") if payment_id == "pay_sched_1" else None

    async def queue(_messages: list[object]) -> None:
        raise AssertionError("nobody is told anything was cancelled")

    scheduler = SimpleNamespace(jobs=SimpleNamespace(by_key=by_key), cancel=cancel)
    service = ScheduledPayments(scheduler, None, None, None, None, None, SimpleNamespace(get=get),  # type: ignore[arg-type]
                                None, None, None, queue, None)  # type: ignore[arg-type]
    with pytest.raises(ScheduleProblem) as refused:
        await service.cancel("T1", "U1", "sched:1")
    assert "already started" in str(refused.value) and cancelled == []


def _job_payload(**extra: object) -> dict[str, object]:
    return {"payment_id": "pay_sched_2", "user_id": "U1", "invoice_id": "in_1", "invoice_number": "INV-1",
            "billing_profile_id": "bp_1", "billing_profile_name": "Acme", "amount_minor": 10000, "currency": "EUR",
            "method_label": "Visa •••• 4242", "pay_on": "2026-12-03", "time_zone": "Europe/Berlin", **extra}


async def _service_on_a_real_scheduler(clock: object, told: list[dict[str, object]], *, run: object = None):
    """ScheduledPayments over the real Scheduler and job repository (in-memory SQLite); only
    the payer's DMs are looked at (`told`: each DM's event and words)."""
    from types import SimpleNamespace

    from bot.retry import Backoff
    from bot.scheduled_payments import KIND, ScheduledPayments
    from bot.scheduler import Scheduler
    from storage.jobs import JobRepository

    async def queue(messages: list) -> None:
        told.extend({"key": m.dedupe_key, "text": m.payload["text"]} for m in messages)

    async def no_payment(_payment_id: str) -> None:
        return None

    def words(event: str, s: object, extra: dict) -> dict:
        return scheduled_words(event, s, extra)  # type: ignore[arg-type]

    def build(sessions: object) -> tuple[Scheduler, ScheduledPayments]:
        scheduler = Scheduler(JobRepository(sessions), clock, backoff=Backoff(base=30, cap=60, max_attempts=2),  # type: ignore[arg-type]
                              worker="test")
        service = ScheduledPayments(scheduler, None, None, None, None, None, SimpleNamespace(get=no_payment),  # type: ignore[arg-type]
                                    None, None, clock, queue, words)  # type: ignore[arg-type]
        scheduler.register(KIND, run or service.run, on_failed=service.failed)  # type: ignore[arg-type]
        return scheduler, service
    return build


async def test_a_job_that_fails_every_try_tells_the_payer_nothing_was_charged() -> None:
    from tests.fakes import FakeClock, memory_database

    clock = FakeClock(dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC))
    told: list[dict[str, object]] = []

    async def billing_down(_job: object, _ctx: object) -> None:
        raise ConnectionError("billing API unreachable")

    async with memory_database() as sessions:
        scheduler, _service = (await _service_on_a_real_scheduler(clock, told, run=billing_down))(sessions)
        await scheduler.schedule("scheduled_payment", "payment:V2:h", clock.now(), _job_payload(), team_id="T1")
        await scheduler.run_due()
        assert told == []  # the first failure is retried, not announced
        clock.move(minutes=2)
        await scheduler.run_due()
        job = await scheduler.jobs.by_key("payment:V2:h")
        assert job is not None and job.status == "failed"
    [dm] = told
    assert dm["key"] == "payment:V2:h:failed"
    assert "could not be made" in str(dm["text"]) and "Nothing was charged" in str(dm["text"])


async def test_lateness_counts_from_the_day_planned_not_from_the_last_retry() -> None:
    """Retried at 08:30 (its due time moved), then every server down until the next day at
    09:00: 25 hours after its planned 08:00 UTC (09:00 in Berlin), so the payer is asked."""
    from tests.fakes import FakeClock, memory_database

    clock = FakeClock(dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC))
    told: list[dict[str, object]] = []
    async with memory_database() as sessions:
        scheduler, service = (await _service_on_a_real_scheduler(clock, told))(sessions)
        job = await scheduler.jobs.schedule(kind="scheduled_payment", key="payment:V3:h", due_at=clock.now(),
                                            payload=_job_payload(payment_id="pay_sched_3"), team_id="T1")
        [claimed] = await scheduler.jobs.claim_due(clock.now(), worker="test", lease=dt.timedelta(minutes=2), limit=1)
        await scheduler.jobs.retry_later(claimed, dt.datetime(2026, 12, 3, 8, 30, tzinfo=dt.UTC), error="boom")
        clock.move(hours=25)
        await scheduler.run_due()
        job = await scheduler.jobs.by_key("payment:V3:h")
        assert job is not None and job.status == "skipped"
    assert [dm["key"] for dm in told] == ["payment:V3:h:late"]
    assert service is not None


async def test_a_scheduled_payment_runs_at_nine_in_the_profile_s_own_time_zone() -> None:
    from types import SimpleNamespace

    from bot.scheduled_payments import ScheduledPayments, planned_run

    async def zone_of(team_id: str, profile_id: str) -> str | None:
        return "America/New_York" if profile_id == "bp_us" else None

    service = ScheduledPayments(*([None] * 9), SimpleNamespace(now=lambda: dt.datetime(2026, 12, 3, 3, tzinfo=dt.UTC)),  # type: ignore[arg-type]
                                None, None, time_zone="Europe/Berlin", profile_zone=zone_of)  # type: ignore[arg-type]
    assert await service.zone("T1", "bp_us") == "America/New_York"
    assert await service.zone("T1", "bp_eu") == "Europe/Berlin"  # none set: the deployment's
    # 03:00 UTC is still the 2nd in New York and already the 3rd in Berlin.
    assert service.today("America/New_York") == dt.date(2026, 12, 2) and service.today() == dt.date(2026, 12, 3)
    assert planned_run(dt.date(2026, 12, 10), "America/New_York") == dt.datetime(2026, 12, 10, 14, tzinfo=dt.UTC)
    assert planned_run(dt.date(2026, 7, 10), "America/New_York") == dt.datetime(2026, 7, 10, 13, tzinfo=dt.UTC)
