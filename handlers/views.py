"""The Pay Now modal's submission: validate, charge, record, show the result.

Slack waits 3 seconds for the answer to a submission, and errors under a field can only
be given in that answer. So the answer carries what can be checked at once, without the
network (the form's own session: amount, currency, the balance the form was opened with,
the offered methods), and otherwise says "working on it"; the fresh checks, the charge
and the record follow, and their result replaces the modal through views.update.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from blocks.pay_modal import CALLBACK_ID, decline_notice, message_view, pay_form_view, payment_view
from bot.errors import FieldProblem
from handlers.common import explanation_for
from handlers.requests import SubmitRequest
from storage.models import Payment, PaymentStatus

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

# Slack applies our answer when it receives it; a views.update that arrives sooner would
# be overwritten by it. Results that follow the answer wait at least this long.
SETTLE_SECONDS = 1.0

WORKING = ("Working on your payment", ":hourglass_flowing_sand: Checking the invoice and charging your payment "
           "method. This takes a few seconds; keep this window open to see the result.")


def register(app: AsyncApp, services: Services) -> None:
    @app.view(CALLBACK_ID)
    async def submit(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        try:
            request = SubmitRequest.parse(body)
            await services.payments.quick_check(request.submission())
        except FieldProblem as problem:
            await ack(response_action="errors", errors={problem.field: problem.message})
            return
        except Exception as exc:  # noqa: BLE001 - a bad payload or an expired form: words, not traces
            explanation = explanation_for(exc)
            await ack(response_action="update", view=message_view(explanation.title, explanation.text))
            return
        work = services.track(_pay(services, request))
        await ack(response_action="update", view=message_view(*WORKING))
        answered = time.monotonic()
        view = await work
        await asyncio.sleep(max(0.0, SETTLE_SECONDS - (time.monotonic() - answered)))
        await _update(client, request.view_id, view)


async def _pay(services: Services, request: SubmitRequest) -> dict[str, Any]:
    """Fresh checks, then the charge; the view that shows how it ended. Never raises."""
    try:
        payment = await services.payments.submit(request.submission())
    except FieldProblem as problem:
        return await _form(services, request, f":warning: {problem.message} Nothing was charged.")
    except Exception as exc:  # noqa: BLE001
        explanation = explanation_for(exc)
        return message_view(explanation.title, explanation.text)
    return await _charge(services, request, payment)


async def _charge(services: Services, request: SubmitRequest, payment: Payment) -> dict[str, Any]:
    """Charge and record a validated payment; the view that shows how it ended. Never raises."""
    try:
        if payment.submission_key != f"{request.view_id}:{request.view_hash}" or \
                payment.status != PaymentStatus.CREATED:
            return _where_it_stands(services, payment)  # a repeat: show where the first one stands
        payment = await services.processor.advance(payment.id)
        await services.audit.record("payment_result", payment.status, team_id=payment.team_id,
                                    user_id=payment.user_id, invoice_id=payment.invoice_id,
                                    billing_profile_id=payment.billing_profile_id, payment_id=payment.id,
                                    method=payment.method_label, reason=payment.failure_message or "")
    except Exception as exc:  # noqa: BLE001
        explanation = explanation_for(exc)
        return message_view(explanation.title, explanation.text)
    if payment.status == PaymentStatus.FAILED:
        # Declined (or never started): the form again, so another method can be chosen.
        return await _form(services, request, decline_notice(payment), method_id=payment.payment_method_id)
    return _where_it_stands(services, payment)


def _where_it_stands(services: Services, payment: Payment) -> dict[str, Any]:
    return payment_view(payment, authenticate_url=services.links.authenticate(payment.id))


async def _form(services: Services, request: SubmitRequest, notice: str, *, method_id: str | None = None) -> dict[str, Any]:
    try:
        form = await services.payments.reload_form(team_id=request.team_id, user_id=request.user_id,
                                                   session_id=request.private_metadata)
        return pay_form_view(form, today=services.today(), notice=notice, amount_text=request.amount_text,
                             method_id=method_id or request.method_id)
    except Exception as exc:  # noqa: BLE001
        explanation = explanation_for(exc)
        return message_view(explanation.title, f"{notice}\n\n{explanation.text}")


async def _update(client: AsyncWebClient, view_id: str, view: dict[str, Any]) -> None:
    try:
        await client.views_update(view_id=view_id, view=view)
    except SlackApiError as exc:
        log.info("modal not updated: %s", exc.response.get("error"))
