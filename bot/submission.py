"""The Pay Now form's submission, from the form's values to how the payment ended.

Slack waits 3 seconds for the answer to a submission, and problems under a field can only
be given in that answer. So `first_answer` says, without the network, what can be checked
at once (the form's own session: amount, currency, the balance the form was opened with,
the offered methods) or where an earlier copy of the same submission stands; `pay` then
makes the fresh checks, the charge and the record, under one deadline, and says how it
ended (the Slack side shows it in place of the modal).

Copies of one submission (a double click, Slack's retries) make one payment: the database
refuses a second payment row for the same submission key, and only the copy that wrote the
row drives it; the others wait for that drive to rest and show the same state. Past the
deadline the outcome says where the payment stands, and the reconciler finishes it.
The `payment_result` audit of every outcome is the processor's, whichever path reached it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass

from bot.clock import Clock, SystemClock
from bot.errors import FieldProblem
from bot.payments import PayForm, PayLinks, PaymentService, Submission
from bot.approvals import ApprovalCard, ApprovalService
from bot.processor import APPROVAL_STATES, OUTCOMES, S, PaymentProcessor, at_rest
from bot.summaries import PaymentSummary, payment_summary
from storage.models import Payment, PaymentStatus
from storage.payments import PaymentRepository

log = logging.getLogger(__name__)

# Copies of a submission look at the one payment this often while its drive goes on.
WAIT_POLL_SECONDS = 0.25
# Past the deadline the reconciler takes over from its next pass on.
HANDOVER_DELAY = dt.timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class SubmissionOutcome:
    """How a submission stands, for the Slack side to draw. Exactly one of: `refused` (no
    payment was started: nothing was charged), `payment` (where the payment stands), or
    `timed_out` (the checks did not finish in time: no payment was started)."""

    refused: Exception | None = None  # FieldProblem: shown under its field, or in the form again
    payment: PaymentSummary | None = None
    authenticate_url: str | None = None  # the payment waits for 3-D Secure here
    # The payment was declined: the form again (`form`, or why it could not be drawn
    # again: `form_problem`) with the declined method preselected.
    declined: bool = False
    form: PayForm | None = None
    form_problem: Exception | None = None
    timed_out: bool = False
    # False while an earlier copy's drive goes on (the outcome is where it stands now).
    at_rest: bool = True
    # Above the approval threshold: the request (who was asked), nothing charged.
    approval: ApprovalCard | None = None


class SubmissionService:
    def __init__(self, payments: PaymentService, processor: PaymentProcessor, repo: PaymentRepository,
                 links: PayLinks, *, deadline_seconds: float, clock: Clock | None = None,
                 approvals: ApprovalService | None = None) -> None:
        self._payments = payments
        self._processor = processor
        self._repo = repo
        self._links = links
        self._deadline = deadline_seconds
        self._approvals = approvals  # above a profile's threshold the payment waits (bot/approvals.py)
        self._clock = clock or SystemClock()  # the app's one clock, as the repository's and processor's

    async def first_answer(self, submission: Submission) -> SubmissionOutcome | None:
        """What can be said at once (None: the checks pass, the payment is to be made).
        Raises what refuses the form at once, before Slack's answer: FieldProblem (shown
        under its field), FormExpired."""
        looked = await self._payments.first_look(submission)  # one read, on the ack's own connections
        earlier = looked.earlier
        if earlier is None:
            await self._payments.quick_check(submission, looked=looked)
            return None
        if at_rest(earlier):
            # A repeat after the first copy has ended: its truth at once; never a "working"
            # that would cover a receipt.
            return await self._outcome(submission, earlier)
        return SubmissionOutcome(payment=payment_summary(earlier), at_rest=False,
                                 authenticate_url=self._links.authenticate(earlier.id))

    async def pay(self, submission: Submission) -> SubmissionOutcome:
        """The whole submission under one deadline: how it ended, or where it stands when
        the deadline passed (the reconciler takes over). Never raises."""
        try:
            return await asyncio.wait_for(self._submit(submission), self._deadline)
        except TimeoutError:
            payment = await self._payments.earlier(submission)
            if payment is None:
                return SubmissionOutcome(timed_out=True)
            return await self._uncertain(submission, payment.id)

    async def _submit(self, submission: Submission) -> SubmissionOutcome:
        """Fresh checks, then the charge by the one copy that wrote the payment row."""
        try:
            submitted = await self._payments.submit(submission)
        except Exception as exc:  # noqa: BLE001 - refused before any payment row: nothing was charged
            if isinstance(exc, FieldProblem):
                return SubmissionOutcome(refused=exc, **await self._form_again(submission))
            return SubmissionOutcome(refused=exc)
        if not submitted.first:
            return await self._wait_and_show(submission, submitted.payment)
        return await self._charge(submission, submitted.payment)

    async def _charge(self, submission: Submission, payment: Payment) -> SubmissionOutcome:
        try:
            payment = await self._processor.advance(payment.id, written=payment)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a confirm may have been sent: say what we know, not "nothing"
            log.exception("payment %s: unexpected error while charging", payment.id)
            return await self._uncertain(submission, payment.id)
        return await self._outcome(submission, payment)

    async def _wait_and_show(self, submission: Submission, payment: Payment) -> SubmissionOutcome:
        """A copy of a submission another copy is driving: wait (the deadline bounds it) until
        that drive has ended, and show the very same state, so every copy tells one truth."""
        while not at_rest(payment):
            await asyncio.sleep(WAIT_POLL_SECONDS)
            payment = await self._repo.get(payment.id) or payment
        return await self._outcome(submission, payment)

    async def _uncertain(self, submission: Submission, payment_id: str) -> SubmissionOutcome:
        """The live drive stopped before an outcome: hand the payment to the reconciler soon,
        and say where it stands (the reconciler updates the modal and DMs the payer)."""
        payment = await self._repo.get(payment_id)
        if payment is None:  # pragma: no cover - rows are never deleted
            raise LookupError(payment_id)
        if S(payment.status) in OUTCOMES or payment.status == PaymentStatus.CANCELED:
            return await self._outcome(submission, payment)
        if payment.next_attempt_at is None:  # not already waiting for a retry of its own
            await self._repo.touch(payment.id, attempts=payment.attempts + 1,
                                   next_attempt_at=self._clock.now() + HANDOVER_DELAY)
            payment = await self._repo.get(payment.id) or payment
        return self._standing(payment)

    async def _outcome(self, submission: Submission, payment: Payment) -> SubmissionOutcome:
        if S(payment.status) in APPROVAL_STATES and self._approvals is not None:
            # Waits for an approver (bot/approvals.py): say who was asked; nothing was charged.
            card = ApprovalCard.of(payment, await self._approvals.request(payment.id))
            return SubmissionOutcome(payment=payment_summary(payment), approval=card)
        if payment.status == PaymentStatus.FAILED:
            # Declined (or never started): the form again, so another method can be chosen.
            return SubmissionOutcome(payment=payment_summary(payment), declined=True,
                                     **await self._form_again(submission))
        return self._standing(payment)

    def _standing(self, payment: Payment) -> SubmissionOutcome:
        return SubmissionOutcome(payment=payment_summary(payment), authenticate_url=self._links.authenticate(payment.id))

    async def _form_again(self, submission: Submission) -> dict[str, object]:
        try:
            return {"form": await self._payments.reload_form(team_id=submission.team_id, user_id=submission.user_id,
                                                             session_id=submission.session_id)}
        except Exception as exc:  # noqa: BLE001 - said in words next to the notice
            return {"form_problem": exc}
