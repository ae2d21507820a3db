"""The Pay Now modal's submission: parse it, ask the submission service, draw the answer.

Slack waits 3 seconds for the answer to a submission, and errors under a field can only be
given in that answer. The service's first answer (bot/submission.py: the checks that need
no network, or where an earlier copy of the same submission stands) goes in it, and
otherwise "working on it"; a refusal there raises, and the one error handler
(handlers/failures.py) answers with the problem under its field or the modal replaced by
words. The payment itself follows (`SubmissionService.pay`, under one deadline), and how
it ended replaces the modal through views.update.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from blocks.approvals import awaiting_view
from blocks.pay_modal import CALLBACK_ID, decline_notice, message_view, pay_form_view, payment_view
from bot.admission import GateClosed
from bot.clock import Clock, today
from bot.errors import FieldProblem
from bot.submission import SubmissionOutcome, SubmissionService
from handlers.context import Background
from handlers.errors import explanation_for
from handlers.requests import SubmitRequest
from handlers.scheduling import PayLater, wants_later

log = logging.getLogger(__name__)

# Slack applies our answer when it receives it; a views.update that arrives sooner would
# be overwritten by it. Results that follow the answer wait at least this long.
SETTLE_SECONDS = 1.0

WORKING = ("Working on your payment", ":hourglass_flowing_sand: Checking the invoice and charging your payment "
           "method. This takes a few seconds; keep this window open to see the result.")
TOO_LONG = ("This took too long", "We couldn't check the invoice in time, so no payment was started. Nothing was "
                                  "charged. Please try again in a minute.")


def register(app: AsyncApp, *, submissions: SubmissionService, background: Background, clock: Clock,
             pay_later: PayLater | None = None) -> None:
    @app.view(CALLBACK_ID)
    async def submit(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        if pay_later is not None and wants_later(body):  # "When to pay" is not now: handlers/scheduling.py
            await pay_later(ack, body, client)
            return
        # A bad payload, an expired form, a field's problem: they raise before the ack, and
        # the one error handler (handlers/failures.py) answers.
        request = SubmitRequest.parse(body)
        submission = request.submission()
        answer = await submissions.first_answer(submission)
        if answer is not None and answer.at_rest:
            # A repeat after the first copy has ended: its truth at once; never a "working"
            # that would cover a receipt.
            await ack(response_action="update", view=outcome_view(answer, request, today=today(clock)))
            return
        work = background.track(submissions.pay(submission))
        await ack(response_action="update",
                  view=outcome_view(answer, request, today=today(clock)) if answer else message_view(*WORKING))
        answered = time.monotonic()
        try:
            outcome = await work
        except GateClosed:
            # The server is stopping and this payment never started (no row, no charge).
            outcome = SubmissionOutcome(timed_out=True)
        await asyncio.sleep(max(0.0, SETTLE_SECONDS - (time.monotonic() - answered)))
        await _update(client, request.view_id, outcome_view(outcome, request, today=today(clock)))


def outcome_view(outcome: SubmissionOutcome, request: SubmitRequest, *, today: dt.date) -> dict[str, Any]:
    """The modal that shows how a submission stands."""
    if outcome.timed_out:
        return message_view(*TOO_LONG)
    if outcome.refused is not None:
        # Refused before any payment row: nothing was charged.
        if isinstance(outcome.refused, FieldProblem):
            return _form(outcome, request, f":warning: {outcome.refused.message} Nothing was charged.", today=today)
        explanation = explanation_for(outcome.refused)
        return message_view(explanation.title, explanation.text)
    payment = outcome.payment
    if payment is None:  # pragma: no cover - an outcome is one of the three
        return message_view(*WORKING)
    if outcome.approval is not None:
        return awaiting_view(outcome.approval, callback_id=CALLBACK_ID)
    if outcome.declined:
        return _form(outcome, request, decline_notice(payment), method_id=payment.payment_method_id, today=today)
    return payment_view(payment, authenticate_url=outcome.authenticate_url)


def _form(outcome: SubmissionOutcome, request: SubmitRequest, notice: str, *, today: dt.date,
          method_id: str | None = None) -> dict[str, Any]:
    if outcome.form is None:
        explanation = explanation_for(outcome.form_problem or LookupError("form not drawn"))
        return message_view(explanation.title, f"{notice}\n\n{explanation.text}")
    return pay_form_view(outcome.form, today=today, notice=notice, amount_text=request.amount_text,
                         method_id=method_id or request.method_id)


async def _update(client: AsyncWebClient, view_id: str, view: dict[str, Any]) -> None:
    try:
        await client.views_update(view_id=view_id, view=view)
    except SlackApiError as exc:
        log.info("modal not updated: %s", exc.response.get("error"))
