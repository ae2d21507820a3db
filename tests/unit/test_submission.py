"""The submission service with fakes of the payment service and the processor, and the
handler's drawing of its outcomes: one truth per submission, "nothing was charged" only
when no payment row was written, a field problem under the modal's own block."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest

from blocks.pay_modal import AMOUNT_FIELD, METHOD_FIELD, block_for
from bot.errors import FieldProblem, FormExpired
from handlers.errors import explain
from bot.payments import AMOUNT, METHOD, FirstLook, Submission, Submitted
from bot.submission import SubmissionOutcome, SubmissionService
from handlers.requests import SubmitRequest
from handlers.views import outcome_view
from sandbox.slack.limits import validate_view
from storage.models import Payment, PaymentStatus
from tests.unit.test_blocks import form

TODAY = dt.date(2026, 12, 2)
SUBMISSION = Submission(team_id="T1", user_id="U1", session_id="ps_1", key="V1:h1", view_id="V1",
                        amount_text="100", method_id="pm_1")
REQUEST = SubmitRequest(team_id="T1", user_id="U1", view_id="V1", view_hash="h1", private_metadata="ps_1",
                        amount_text="100", method_id="pm_1")


def row(status: PaymentStatus, **fields: Any) -> Payment:
    values: dict[str, Any] = dict(
        id="pay_1", team_id="T1", user_id="U1", paid_by="ap@acme.example", invoice_id="inv_1",
        invoice_number="INV-1", billing_profile_id="bp_1", billing_profile_name="Acme", invoice_url=None,
        amount_minor=10000, currency="EUR", method_kind="card", payment_method_id="pm_1", payment_method_type="card",
        method_label="Visa •••• 4242", stripe_customer_id="cus_1", status=status.value, attempts=0,
        next_attempt_at=None, created_at=dt.datetime(2026, 12, 2, tzinfo=dt.UTC))
    values.update(fields)
    return Payment(**values)


class FakePayments:
    def __init__(self, *, earlier: Payment | None = None, submit: Any = None, quick: Exception | None = None,
                 slow: float = 0.0) -> None:
        self._earlier, self._submit, self._quick, self._slow = earlier, submit, quick, slow
        self.submitted = 0

    async def earlier(self, submission: Submission) -> Payment | None:
        return self._earlier

    async def first_look(self, submission: Submission) -> FirstLook:
        return FirstLook(self._earlier, None)

    async def quick_check(self, submission: Submission, *, looked: FirstLook | None = None) -> None:
        if self._quick:
            raise self._quick

    async def submit(self, submission: Submission) -> Submitted:
        self.submitted += 1
        await asyncio.sleep(self._slow)
        if isinstance(self._submit, Exception):
            raise self._submit
        return self._submit

    async def reload_form(self, **_: str) -> Any:
        return form([])


class FakeProcessor:
    def __init__(self, result: Payment | Exception) -> None:
        self.result, self.advanced = result, 0

    async def advance(self, payment_id: str, *, written: Payment | None = None) -> Payment:
        self.advanced += 1
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


class FakeRepo:
    def __init__(self, payment: Payment) -> None:
        self.payment, self.touched = payment, 0

    async def get(self, payment_id: str) -> Payment:
        return self.payment

    async def touch(self, payment_id: str, **fields: Any) -> None:
        self.touched += 1
        for name, value in fields.items():
            setattr(self.payment, name, value)


class Links:
    def authenticate(self, payment_id: str) -> str:
        return f"https://bot.example/pay/authenticate/{payment_id}"


def service(payments: FakePayments, processor: FakeProcessor | None = None, repo: FakeRepo | None = None,
            deadline: float = 5.0) -> SubmissionService:
    return SubmissionService(payments, processor or FakeProcessor(row(PaymentStatus.RECORDED)),  # type: ignore[arg-type]
                             repo or FakeRepo(row(PaymentStatus.CREATED)), Links(), deadline_seconds=deadline)  # type: ignore[arg-type]


def words(view: dict[str, Any]) -> str:
    assert validate_view(view) == []
    return json.dumps(view, ensure_ascii=False)


def test_field_problems_name_domain_fields_and_show_under_the_modals_blocks() -> None:
    assert (block_for(AMOUNT), block_for(METHOD)) == (AMOUNT_FIELD, METHOD_FIELD)


async def test_a_first_submission_passing_the_quick_checks_goes_on_and_a_bad_form_is_refused_at_once() -> None:
    assert await service(FakePayments()).first_answer(SUBMISSION) is None
    # Refused before Slack's answer: raised, for the one error handler to answer with.
    with pytest.raises(FieldProblem):
        await service(FakePayments(quick=FieldProblem(AMOUNT, "Not an amount."))).first_answer(SUBMISSION)
    with pytest.raises(FormExpired):
        await service(FakePayments(quick=FormExpired())).first_answer(SUBMISSION)
    # After the answer a refusal is an outcome, drawn in words.
    expired = await service(FakePayments(submit=FormExpired())).pay(SUBMISSION)
    assert isinstance(expired.refused, FormExpired) and expired.payment is None
    assert explain(FormExpired()).title in words(outcome_view(expired, REQUEST, today=TODAY))


async def test_a_repeat_of_an_ended_submission_shows_its_end_at_once_and_never_charges() -> None:
    payments = FakePayments(earlier=row(PaymentStatus.RECORDED, invoice_status_after="paid", balance_after_minor=0))
    processor = FakeProcessor(RuntimeError("must not be called"))
    answer = await service(payments, processor).first_answer(SUBMISSION)
    assert answer is not None and answer.at_rest and answer.payment.status is PaymentStatus.RECORDED
    assert "Payment received" in words(outcome_view(answer, REQUEST, today=TODAY))
    assert processor.advanced == 0 and payments.submitted == 0

    going = await service(FakePayments(earlier=row(PaymentStatus.CONFIRMING))).first_answer(SUBMISSION)
    assert going is not None and not going.at_rest


async def test_the_first_copy_charges_once_and_a_decline_gives_the_form_again_with_its_method() -> None:
    declined = row(PaymentStatus.FAILED, failure_message="Your card was declined.")
    processor = FakeProcessor(declined)
    outcome = await service(FakePayments(submit=Submitted(row(PaymentStatus.CREATED), first=True)),
                            processor).pay(SUBMISSION)
    assert processor.advanced == 1 and outcome.declined and outcome.form is not None
    text = words(outcome_view(outcome, REQUEST, today=TODAY))
    assert "was not charged" in text and "Your card was declined." in text


async def test_a_copy_that_did_not_write_the_row_waits_for_the_drive_and_shows_the_same_state() -> None:
    repo = FakeRepo(row(PaymentStatus.CONFIRMING))
    processor = FakeProcessor(RuntimeError("must not be called"))
    pay = asyncio.create_task(service(FakePayments(submit=Submitted(repo.payment, first=False)), processor,
                                      repo).pay(SUBMISSION))
    await asyncio.sleep(0.1)
    assert not pay.done()
    repo.payment = row(PaymentStatus.RECORDED)
    outcome = await pay
    assert processor.advanced == 0 and outcome.payment.status is PaymentStatus.RECORDED


async def test_refusals_before_a_row_say_nothing_was_charged_and_an_error_after_the_confirm_does_not() -> None:
    too_much = await service(FakePayments(submit=FieldProblem(AMOUNT, "That is more than the balance due."))
                             ).pay(SUBMISSION)
    assert "Nothing was charged" in words(outcome_view(too_much, REQUEST, today=TODAY))

    slow = await service(FakePayments(slow=1.0), deadline=0.05).pay(SUBMISSION)
    assert slow == SubmissionOutcome(timed_out=True)
    assert "Nothing was charged" in words(outcome_view(slow, REQUEST, today=TODAY))

    repo = FakeRepo(row(PaymentStatus.CONFIRMING, stripe_payment_intent_id="pi_1"))
    unsure = await service(FakePayments(submit=Submitted(repo.payment, first=True)),
                           FakeProcessor(RuntimeError("connection reset")), repo).pay(SUBMISSION)
    assert unsure.payment.status is PaymentStatus.CONFIRMING
    assert repo.touched == 1 and repo.payment.next_attempt_at is not None  # handed to the reconciler
    assert "Nothing was charged" not in words(outcome_view(unsure, REQUEST, today=TODAY))
