"""Timed work in Slack: `/invoices reminders`, and Pay Now from a channel's digest."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from blocks.invoices import Message, notice_message, parse_pay_value
from blocks.pay_modal import message_view, pay_form_view
from blocks.reminders import DIGEST_PAY_NOW, reminders_message
from bot.reminders import ReminderCommand, ReminderProblem
from handlers.actions import _open_loading
from handlers.common import explanation_for
from handlers.requests import ActionRequest, CommandRequest

if TYPE_CHECKING:
    from bot.app import Services

SUBCOMMANDS = frozenset({"reminders", "reminder"})


async def command(services: Services, request: CommandRequest) -> Message:
    """`/invoices reminders` shows each profile's digest; `/invoices reminders <profile>
    daily|weekly|off [HH:MM]` sets one (billing-profile admins)."""
    assert services.reminders is not None
    parsed = ReminderCommand.parse(request.text)
    try:
        viewer = await services.identity.viewer(request.team_id, request.user_id, fresh=parsed.cadence is not None)
        if parsed.cadence is None:
            return reminders_message(await services.reminders.show(viewer))
        rows = await services.reminders.configure(viewer, parsed)
        title = "Reminders turned off" if parsed.cadence == "off" else "Reminders set"
        return reminders_message(rows, title=title)
    except ReminderProblem as exc:
        return notice_message("Reminders not changed", str(exc))
    except Exception as exc:  # noqa: BLE001 - every failure gets words
        explanation = explanation_for(exc)
        return notice_message(explanation.title, explanation.text)


def register(app: AsyncApp, services: Services) -> None:
    @app.action(re.compile(rf"^{DIGEST_PAY_NOW}:\d+$"))
    async def pay_from_digest(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient,
                              req: AsyncBoltRequest) -> None:
        # As Pay Now in a list, with the clicker's access checked by open_form; but the
        # channel's digest is nobody's list, so it is never redrawn after the payment.
        await ack()
        request = ActionRequest.parse(body)
        view_id = await _open_loading(services, client, request, retried=bool(req.headers.get("x-slack-retry-num")))
        if view_id is None:
            return
        invoice_id, _ = parse_pay_value(request.value)
        try:
            form = await services.payments.open_form(
                team_id=request.team_id, user_id=request.user_id, invoice_id=invoice_id,
                view_id=view_id, list_response_url=None, list_query=None)
            view = pay_form_view(form, today=services.today())
        except Exception as exc:  # noqa: BLE001
            explanation = explanation_for(exc)
            view = message_view(explanation.title, explanation.text)
        await client.views_update(view_id=view_id, view=view)
