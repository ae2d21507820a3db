"""The Pay Now modal's submission: validate, charge, record, show the result.

Slack waits 3 seconds for the answer to a submission, and errors under a field can only
be given in that answer. So the answer carries what can be checked at once, without the
network (the form's own session: amount, currency, the balance the form was opened with,
the offered methods), and otherwise says "working on it"; the fresh checks, the charge
and the record follow, and their result replaces the modal through views.update.

Copies of one submission (a double click, Slack's retries) make one payment: only the copy
that wrote the payment row drives it; the others wait for that drive to rest and show the
same state. The whole submission has one deadline; past it the modal says where the
payment stands, and the reconciler finishes it (updating the modal and DMing the payer).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from blocks.pay_modal import CALLBACK_ID, decline_notice, message_view, pay_form_view, payment_view
from bot.clock import Clock, today
from bot.errors import FieldProblem
from bot.payments import PayLinks, PaymentService, Submitted
from bot.processor import OUTCOMES, S, PaymentProcessor, at_rest
from handlers.context import Background, Refusal, after_ack
from handlers.requests import SubmitRequest
from handlers.scheduling import PayLater, wants_later
from storage.models import Payment, PaymentStatus
from storage.payments import PaymentRepository

T = TypeVar("T")

log = logging.getLogger(__name__)

# Slack applies our answer when it receives it; a views.update that arrives sooner would
# be overwritten by it. Results that follow the answer wait at least this long.
SETTLE_SECONDS = 1.0

# Copies of a submission look at the one payment this often while its drive goes on.
WAIT_POLL_SECONDS = 0.25
# Past the deadline the reconciler takes over from its next pass on.
HANDOVER_DELAY = dt.timedelta(seconds=5)

WORKING = ("Working on your payment", ":hourglass_flowing_sand: Checking the invoice and charging your payment "
           "method. This takes a few seconds; keep this window open to see the result.")


@dataclass(frozen=True, slots=True)
class _Services:
    """What the submission uses (handlers/app.py gives each of them)."""

    payments: PaymentService
    payments_repo: PaymentRepository
    processor: PaymentProcessor
    links: PayLinks
    background: Background
    clock: Clock
    deadline_seconds: float

    def track(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        return self.background.track(work)

    def today(self) -> dt.date:
        return today(self.clock)


def _words_view(refusal: Refusal) -> dict[str, Any]:
    return message_view(refusal.title, refusal.text)


def register(app: AsyncApp, *, payments: PaymentService, payments_repo: PaymentRepository,
             processor: PaymentProcessor, links: PayLinks, background: Background, clock: Clock,
             deadline_seconds: float, pay_later: PayLater | None = None) -> None:
    services = _Services(payments, payments_repo, processor, links, background, clock, deadline_seconds)

    @app.view(CALLBACK_ID)
    async def submit(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        if pay_later is not None and wants_later(body):  # "When to pay" is not now: handlers/scheduling.py
            await pay_later(ack, body, client)
            return
        # A bad payload, an expired form, a field's problem: they raise before the ack, and
        # the one error handler (handlers/failures.py) answers with the error under the
        # field or the modal replaced by words.
        request = SubmitRequest.parse(body)
        earlier = await services.payments.earlier(request.submission())
        if earlier is None:
            await services.payments.quick_check(request.submission())
        if earlier is not None and at_rest(earlier):
            # A repeat after the first copy has ended: its truth at once; never a "working"
            # that would cover a receipt.
            await ack(response_action="update", view=await _result_view(services, request, earlier))
            return
        work = services.track(_pay(services, request))
        await ack(response_action="update",
                  view=_where_it_stands(services, earlier) if earlier is not None else message_view(*WORKING))
        answered = time.monotonic()
        view = await work
        await asyncio.sleep(max(0.0, SETTLE_SECONDS - (time.monotonic() - answered)))
        await _update(client, request.view_id, view)


async def _pay(services: _Services, request: SubmitRequest) -> dict[str, Any]:
    """The whole submission under one deadline; the view that shows how it ended (or where
    it stands when the deadline passed: the reconciler takes over). Never raises."""
    try:
        return await asyncio.wait_for(_submit(services, request), services.deadline_seconds)
    except TimeoutError:
        return await _past_deadline(services, request)


async def _submit(services: _Services, request: SubmitRequest) -> dict[str, Any]:
    """Fresh checks, then the charge by the one copy that wrote the payment row."""
    async def refused(refusal: Refusal) -> dict[str, Any]:
        # Refused before any payment row: nothing was charged.
        if isinstance(refusal.error, FieldProblem):
            return await _form(services, request, f":warning: {refusal.error.message} Nothing was charged.")
        return _words_view(refusal)

    submitted = await after_ack(services.payments.submit(request.submission()), refused=refused)
    if not isinstance(submitted, Submitted):
        return submitted
    if not submitted.first:
        return await _wait_and_show(services, request, submitted.payment)
    return await _charge(services, request, submitted.payment)


async def _charge(services: _Services, request: SubmitRequest, payment: Payment) -> dict[str, Any]:
    """Charge and record a validated payment; the view that shows how it ended. Never raises."""
    try:
        payment = await services.processor.advance(payment.id)
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - a confirm may have been sent: say what we know, not "nothing"
        log.exception("payment %s: unexpected error while charging", payment.id)
        return await _uncertain(services, request, payment.id)
    return await _result_view(services, request, payment)


async def _wait_and_show(services: _Services, request: SubmitRequest, payment: Payment) -> dict[str, Any]:
    """A copy of a submission another copy is driving: wait (the deadline bounds it) until
    that drive has ended, and show the very same state, so every copy tells one truth."""
    while not at_rest(payment):
        await asyncio.sleep(WAIT_POLL_SECONDS)
        payment = await services.payments_repo.get(payment.id) or payment
    return await _result_view(services, request, payment)


async def _result_view(services: _Services, request: SubmitRequest, payment: Payment) -> dict[str, Any]:
    if payment.status == PaymentStatus.FAILED:
        # Declined (or never started): the form again, so another method can be chosen.
        return await _form(services, request, decline_notice(payment), method_id=payment.payment_method_id)
    return _where_it_stands(services, payment)


def _where_it_stands(services: _Services, payment: Payment) -> dict[str, Any]:
    return payment_view(payment, authenticate_url=services.links.authenticate(payment.id))


async def _past_deadline(services: _Services, request: SubmitRequest) -> dict[str, Any]:
    payment = await services.payments.earlier(request.submission())
    if payment is None:
        return message_view("This took too long", "We couldn't check the invoice in time, so no payment was "
                                                  "started. Nothing was charged. Please try again in a minute.")
    return await _uncertain(services, request, payment.id)


async def _uncertain(services: _Services, request: SubmitRequest, payment_id: str) -> dict[str, Any]:
    """The live drive stopped before an outcome: hand the payment to the reconciler soon,
    and show where it stands (it will update this window and DM the payer)."""
    payment = await services.payments_repo.get(payment_id)
    if payment is None:  # pragma: no cover - rows are never deleted
        return message_view("Payment in progress", "Checking with Stripe; you'll get a direct message.")
    if S(payment.status) in OUTCOMES or payment.status == PaymentStatus.CANCELED:
        return await _result_view(services, request, payment)
    if payment.next_attempt_at is None:  # not already waiting for a retry of its own
        await services.payments_repo.touch(payment.id, attempts=payment.attempts + 1,
                                           next_attempt_at=services.clock.now() + HANDOVER_DELAY)
        payment = await services.payments_repo.get(payment.id) or payment
    return _where_it_stands(services, payment)


async def _form(services: _Services, request: SubmitRequest, notice: str, *, method_id: str | None = None) -> dict[str, Any]:
    async def form() -> dict[str, Any]:
        reloaded = await services.payments.reload_form(team_id=request.team_id, user_id=request.user_id,
                                                       session_id=request.private_metadata)
        return pay_form_view(reloaded, today=services.today(), notice=notice, amount_text=request.amount_text,
                             method_id=method_id or request.method_id)

    return await after_ack(form(), refused=lambda refusal: message_view(refusal.title,
                                                                         f"{notice}\n\n{refusal.text}"))


async def _update(client: AsyncWebClient, view_id: str, view: dict[str, Any]) -> None:
    try:
        await client.views_update(view_id=view_id, view=view)
    except SlackApiError as exc:
        log.info("modal not updated: %s", exc.response.get("error"))
