"""Timed work in Slack: `/invoices reminders`, Pay Now from a channel's digest, the Pay Now
modal's *when to pay* (a scheduled payment), `/invoices scheduled` and Cancel."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from blocks.invoices import Message, notice_message, parse_pay_value
from blocks.pay_modal import CALLBACK_ID, TITLE, message_view, pay_form_view
from blocks.reminders import DIGEST_PAY_NOW, reminders_message
from blocks.scheduling import CANCEL_SCHEDULED, scheduled_list_message, scheduled_view
from bot.clock import Clock, today
from bot.errors import FieldProblem
from bot.payments import PaymentService
from bot.reminders import ReminderCommand, ReminderService
from bot.scheduled_payments import DATE_FIELD, WHEN_FIELD, ScheduledPayments, ScheduleProblem
from handlers.actions import _open_loading
from handlers.context import Refusal, ViewerLookup, after_ack
from handlers.requests import ActionRequest, CommandRequest, SubmitRequest
from storage.audit import AuditLog
from storage.slack_links import SlackLinkRepository

log = logging.getLogger(__name__)

SUBCOMMANDS = frozenset({"reminders", "reminder", "scheduled"})


def _notice(refusal: Refusal) -> Message:
    return notice_message(refusal.title, refusal.text)


@dataclass(frozen=True, slots=True)
class TimedCommands:
    """`/invoices reminders ...` and `/invoices scheduled` (handlers/commands.py hands them over)."""

    reminders: ReminderService
    scheduled: ScheduledPayments

    async def command(self, request: CommandRequest, viewer: ViewerLookup) -> Message:
        """`/invoices reminders` shows each profile's digest; `/invoices reminders <profile>
        daily|weekly|off [<weekday>] [HH:MM] [<N> days] [<time zone>]` sets one (billing-profile admins). `/invoices scheduled`
        lists the scheduled payments the person may see, each with Cancel."""
        if request.text.split()[0].lower() == "scheduled":
            async def listed() -> Message:
                return scheduled_list_message(await self.scheduled.visible(await viewer()))
            return await after_ack(listed(), refused=_notice)
        async def reminded() -> Message:
            parsed = ReminderCommand.parse(request.text)  # a bad option is said, after the ack
            person = await viewer(fresh=parsed.is_change)  # a change checks rights afresh
            if not parsed.is_change:
                return reminders_message(await self.reminders.show(person))
            rows = await self.reminders.configure(person, parsed)
            return reminders_message(rows, title="Reminders turned off" if parsed.cadence == "off" else "Reminders set")

        return await after_ack(reminded(), refused=_notice)


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


@dataclass(frozen=True, slots=True)
class PayLater:
    """Pay Now's submission when *When to pay* is not now (handlers/views.py hands it over)."""

    payments: PaymentService
    scheduled: ScheduledPayments
    refresh_home: Callable[[str, str], None] = lambda _team, _user: None  # the payer's Home tab

    async def __call__(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        """The same checks as paying now, then a confirmation with Cancel. A field's problem
        raises before the ack: the one error handler shows it under the field."""
        request = SubmitRequest.parse(body)
        await self.payments.quick_check(request.submission())
        when, chosen = _later(body)
        if when == "date" and chosen is None:
            raise FieldProblem(DATE_FIELD, "Choose the date to pay on.")
        await ack(response_action="update", view=message_view(
            "Scheduling your payment", ":hourglass_flowing_sand: Checking the invoice and your payment method…"))

        async def confirmed() -> dict[str, Any]:
            scheduled = await self.scheduled.schedule(request.submission(), when, chosen)
            self.refresh_home(request.team_id, request.user_id)
            return scheduled_view(scheduled, callback_id=CALLBACK_ID, title=TITLE)

        def refused(refusal: Refusal) -> dict[str, Any]:
            if isinstance(refusal.error, FieldProblem):
                return message_view("Payment not scheduled", f"{refusal.error.message} Nothing was scheduled or "
                                                             "charged.")
            if isinstance(refusal.error, ScheduleProblem):
                return message_view("Payment not scheduled", refusal.text)
            return message_view(refusal.title, refusal.text)

        view = await after_ack(confirmed(), refused=refused)
        try:
            await client.views_update(view_id=request.view_id, view=view)
        except Exception as exc:  # noqa: BLE001 - the modal was closed: the DM says it all
            log.info("scheduling modal not updated: %s", type(exc).__name__)


def register(app: AsyncApp, *, payments: PaymentService, scheduled: ScheduledPayments, audit: AuditLog,
             clock: Clock, slack_links: SlackLinkRepository,
             refresh_home: Callable[[str, str], None] = lambda _team, _user: None) -> None:
    @app.action(re.compile(rf"^{DIGEST_PAY_NOW}:\d+$"))
    async def pay_from_digest(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient,
                              req: AsyncBoltRequest) -> None:
        # As Pay Now in a list, with the clicker's access checked by open_form; but the
        # channel's digest (or a DM) is nobody's list, so it is never redrawn after the payment.
        await ack()
        request = ActionRequest.parse(body)
        view_id = await _open_loading(audit, client, request, retried=bool(req.headers.get("x-slack-retry-num")))
        if view_id is None:
            return
        invoice_id, _ = parse_pay_value(request.value)

        async def form_view() -> dict[str, Any]:
            form = await payments.open_form(team_id=request.team_id, user_id=request.user_id, invoice_id=invoice_id)
            await slack_links.remember_form(form.session_id, view_id=view_id, list_response_url=None, list_query=None)
            return pay_form_view(form, today=today(clock))

        await client.views_update(view_id=view_id, view=await after_ack(
            form_view(), refused=lambda refusal: message_view(refusal.title, refusal.text)))

    @app.action(CANCEL_SCHEDULED)
    async def cancel(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        request = ActionRequest.parse(body)

        async def cancelled() -> tuple[str, str]:
            s = await scheduled.cancel(request.team_id, request.user_id, request.value or "")
            refresh_home(request.team_id, s.user_id)  # the payer's tab (the canceller's is refreshed below)
            return "Scheduled payment cancelled", (f"The payment of *{s.amount.format(s.locale)}* on "
                                                   f"*{s.invoice_number}* will not be made. Nothing was charged.")

        title, text = await after_ack(cancelled(), refused=lambda refusal: (refusal.title, refusal.text))
        if request.on_home:  # the tab is not a modal to replace: the words in a small modal of their own
            refresh_home(request.team_id, request.user_id)
            try:
                await client.views_open(trigger_id=request.trigger_id, view=message_view(title, text))
            except SlackApiError as exc:
                log.info("cancel answer not opened: %s", exc.response.get("error"))
        elif request.view_id:
            await client.views_update(view_id=request.view_id, view=message_view(title, text))
        elif request.response_url:
            await AsyncWebhookClient(request.response_url, timeout=10).send_dict(
                {"response_type": "ephemeral", "replace_original": False, "text": f"{title}: {text}",
                 "blocks": notice_message(title, text).blocks})
