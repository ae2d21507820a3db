"""Timed work in Slack: `/invoices reminders`, Pay Now from a channel's digest, the Pay Now
modal's *when to pay* (a scheduled payment), `/invoices scheduled` and Cancel."""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from blocks.invoices import Message, notice_message, parse_pay_value
from blocks.pay_modal import CALLBACK_ID, TITLE, message_view, pay_form_view
from blocks.reminders import DIGEST_PAY_NOW, reminders_message
from blocks.scheduling import CANCEL_SCHEDULED, scheduled_list_message, scheduled_view
from bot.errors import FieldProblem
from bot.reminders import ReminderCommand, ReminderProblem
from bot.scheduled_payments import DATE_FIELD, WHEN_FIELD, ScheduleProblem
from handlers.actions import _open_loading
from handlers.common import explanation_for
from handlers.requests import ActionRequest, CommandRequest, SubmitRequest

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

SUBCOMMANDS = frozenset({"reminders", "reminder", "scheduled"})


async def command(services: Services, request: CommandRequest) -> Message:
    """`/invoices reminders` shows each profile's digest; `/invoices reminders <profile>
    daily|weekly|off [HH:MM]` sets one (billing-profile admins). `/invoices scheduled` lists
    the scheduled payments the person may see, each with Cancel."""
    assert services.reminders is not None and services.scheduled_payments is not None
    if request.text.split()[0].lower() == "scheduled":
        try:
            viewer = await services.identity.viewer(request.team_id, request.user_id)
            return scheduled_list_message(await services.scheduled_payments.visible(viewer))
        except Exception as exc:  # noqa: BLE001
            explanation = explanation_for(exc)
            return notice_message(explanation.title, explanation.text)
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
    register_cancel(app, services)

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


def _state(body: dict[str, Any]) -> dict[str, Any]:
    return ((body.get("view") or {}).get("state") or {}).get("values") or {}


def wants_later(body: dict[str, Any]) -> bool:
    """A Pay Now submission whose *When to pay* is not "now"."""
    chosen = (_state(body).get(WHEN_FIELD, {}).get(WHEN_FIELD) or {}).get("selected_option") or {}
    return isinstance(chosen, dict) and chosen.get("value") in {"due", "date"}


def _later(body: dict[str, Any]) -> tuple[str, dt.date | None]:
    values = _state(body)
    when = str(((values.get(WHEN_FIELD, {}).get(WHEN_FIELD) or {}).get("selected_option") or {}).get("value"))
    picked = (values.get(DATE_FIELD, {}).get(DATE_FIELD) or {}).get("selected_date")
    try:
        return when, dt.date.fromisoformat(str(picked)) if picked else None
    except ValueError:
        return when, None


async def submit_later(services: Services, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
    """Schedule instead of paying now: the same checks, then a confirmation with Cancel."""
    assert services.scheduled_payments is not None
    try:
        request = SubmitRequest.parse(body)
        await services.payments.quick_check(request.submission())
        when, chosen = _later(body)
        if when == "date" and chosen is None:
            raise FieldProblem(DATE_FIELD, "Choose the date to pay on.")
    except FieldProblem as problem:
        await ack(response_action="errors", errors={problem.field: problem.message})
        return
    except Exception as exc:  # noqa: BLE001
        explanation = explanation_for(exc)
        await ack(response_action="update", view=message_view(explanation.title, explanation.text))
        return
    await ack(response_action="update", view=message_view(
        "Scheduling your payment", ":hourglass_flowing_sand: Checking the invoice and your payment method…"))
    try:
        scheduled = await services.scheduled_payments.schedule(request.submission(), when, chosen)
        view = scheduled_view(scheduled, callback_id=CALLBACK_ID, title=TITLE)
    except FieldProblem as problem:
        view = message_view("Payment not scheduled", f"{problem.message} Nothing was scheduled or charged.")
    except ScheduleProblem as problem:
        view = message_view("Payment not scheduled", str(problem))
    except Exception as exc:  # noqa: BLE001
        explanation = explanation_for(exc)
        view = message_view(explanation.title, explanation.text)
    try:
        await client.views_update(view_id=request.view_id, view=view)
    except Exception as exc:  # noqa: BLE001 - the modal was closed: the DM says it all
        log.info("scheduling modal not updated: %s", type(exc).__name__)


def register_cancel(app: AsyncApp, services: Services) -> None:
    @app.action(CANCEL_SCHEDULED)
    async def cancel(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        assert services.scheduled_payments is not None
        request = ActionRequest.parse(body)
        try:
            scheduled = await services.scheduled_payments.cancel(request.team_id, request.user_id,
                                                                 request.value or "")
            title, text = "Scheduled payment cancelled", (
                f"The payment of *{scheduled.amount.format(scheduled.locale)}* on "
                f"*{scheduled.invoice_number}* will not be made. Nothing was charged.")
        except ScheduleProblem as problem:
            title, text = "Not cancelled", str(problem)
        except Exception as exc:  # noqa: BLE001
            explanation = explanation_for(exc)
            title, text = explanation.title, explanation.text
        if request.view_id:
            await client.views_update(view_id=request.view_id, view=message_view(title, text))
        elif request.response_url:
            from slack_sdk.webhook.async_client import AsyncWebhookClient  # noqa: PLC0415

            await AsyncWebhookClient(request.response_url, timeout=10).send_dict(
                {"response_type": "ephemeral", "replace_original": False, "text": f"{title}: {text}",
                 "blocks": notice_message(title, text).blocks})
