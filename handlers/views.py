"""The Pay Now modal's submission: validate, charge, record, show the result.

Slack waits 3 seconds for the answer to a submission. Field errors must be in that
answer, so the fresh checks get a budget; when the billing API is slower than that the
modal says "checking" and the rest happens (and is shown) through views.update.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from blocks.pay_modal import CALLBACK_ID, decline_notice, message_view, pay_form_view, payment_view
from bot.errors import FieldProblem
from handlers.common import explanation_for
from handlers.requests import BadPayload, SubmitRequest
from storage.models import Payment, PaymentStatus

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

# Time allowed for the fresh checks before answering Slack without them.
ACK_BUDGET_SECONDS = 2.2


def register(app: AsyncApp, services: Services) -> None:
    @app.view(CALLBACK_ID)
    async def submit(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        try:
            request = SubmitRequest.parse(body)
            submission = request.submission()
            pay_session = await services.payments.session(submission)
            services.payments.parse_amount(request.amount_text, pay_session.currency or "")
        except FieldProblem as problem:
            await ack(response_action="errors", errors={problem.field: problem.message})
            return
        except (BadPayload, Exception) as exc:  # noqa: BLE001
            explanation = explanation_for(exc)
            await ack(response_action="update", view=message_view(explanation.title, explanation.text))
            return

        attempt = asyncio.ensure_future(services.payments.submit(submission))
        done, _ = await asyncio.wait({attempt}, timeout=ACK_BUDGET_SECONDS)
        acked = False
        if not done:
            await ack(response_action="update", view=message_view(
                "Checking the invoice", ":hourglass_flowing_sand: Checking the invoice's balance before "
                "charging anything…"))
            acked = True
        try:
            payment = await attempt
        except FieldProblem as problem:
            if not acked:
                await ack(response_action="errors", errors={problem.field: problem.message})
                return
            await _show_form(services, client, request, notice=f":warning: {problem.message}")
            return
        except Exception as exc:  # noqa: BLE001
            explanation = explanation_for(exc)
            view = message_view(explanation.title, explanation.text)
            if acked:
                await _update(client, request.view_id, view)
            else:
                await ack(response_action="update", view=view)
            return

        if not acked:
            await ack(response_action="update", view=payment_view(payment))
        if payment.submission_key != f"{request.view_id}:{request.view_hash}" or payment.status != PaymentStatus.CREATED:
            return  # a repeat of a submission already being handled: it shows its own result
        payment = await services.processor.advance(payment.id)
        await _show_result(services, client, request, payment)


async def _show_result(services: Services, client: AsyncWebClient, request: SubmitRequest, payment: Payment) -> None:
    if payment.status == PaymentStatus.FAILED:
        # Declined (or never started): the form again, so another method can be chosen.
        await _show_form(services, client, request, notice=decline_notice(payment), method_id=payment.payment_method_id)
        return
    await _update(client, request.view_id, payment_view(payment))


async def _show_form(services: Services, client: AsyncWebClient, request: SubmitRequest, *, notice: str,
                     method_id: str | None = None) -> None:
    try:
        form = await services.payments.reload_form(team_id=request.team_id, user_id=request.user_id,
                                                   session_id=request.private_metadata)
        view = pay_form_view(form, today=services.today(), notice=notice, amount_text=request.amount_text,
                             method_id=method_id or request.method_id)
    except Exception as exc:  # noqa: BLE001
        explanation = explanation_for(exc)
        view = message_view(explanation.title, f"{notice}\n\n{explanation.text}")
    await _update(client, request.view_id, view)


async def _update(client: AsyncWebClient, view_id: str, view: dict[str, Any]) -> None:
    try:
        await client.views_update(view_id=view_id, view=view)
    except SlackApiError as exc:
        log.info("modal not updated: %s", exc.response.get("error"))
