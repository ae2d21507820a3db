"""Buttons: Pay Now, paging through the list, adding a card, refreshing saved methods."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from blocks.invoices import PAGE, PAY_NOW, notice_message, parse_page_value, parse_pay_value
from blocks.pay_modal import (
    ADD_CARD, AMOUNT_FIELD, AUTHENTICATE, REFRESH_METHODS, amount_problem_view, fee_updated_view, loading_view,
    message_view, pay_form_view,
)
from bot.clock import Clock, today
from bot.invoices import ListQuery
from bot.errors import FieldProblem
from bot.payments import PaymentService
from handlers.context import Refusal, after_ack, viewer_of
from handlers.requests import ActionRequest
from handlers.slack_io import ListRenderer
from storage.audit import AuditLog
from storage.slack_links import SlackLinkRepository

log = logging.getLogger(__name__)

# Slack's answers to views.open with a trigger that is too old or was used already.
TRIGGER_PROBLEMS = frozenset({"expired_trigger_id", "exchanged_trigger_id", "trigger_expired", "trigger_exchanged"})
EXPIRED_CLICK = ("The payment window couldn't open in time. Press *Pay Now* again.")


def _words_view(refusal: Refusal) -> dict[str, Any]:
    return message_view(refusal.title, refusal.text)


def register(app: AsyncApp, *, payments: PaymentService, lists: ListRenderer, audit: AuditLog, clock: Clock,
             slack_links: SlackLinkRepository) -> None:
    @app.action(re.compile(rf"^{PAY_NOW}(:\d+)?$"))
    async def pay_now(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, req: AsyncBoltRequest) -> None:
        await ack()
        request = ActionRequest.parse(body)
        # Open a view at once, inside the trigger's 3 seconds, and fill it in when the
        # billing API and Stripe have answered.
        view_id = await _open_loading(audit, client, request, retried=bool(req.headers.get("x-slack-retry-num")))
        if view_id is None:
            return
        invoice_id, list_query = parse_pay_value(request.value)

        async def form_view() -> dict[str, Any]:
            form = await payments.open_form(team_id=request.team_id, user_id=request.user_id, invoice_id=invoice_id)
            await slack_links.remember_form(form.session_id, view_id=view_id, list_response_url=request.response_url,
                                            list_query=list_query)
            return pay_form_view(form, today=today(clock))

        await client.views_update(view_id=view_id, view=await after_ack(form_view(), refused=_words_view))

    @app.action(re.compile(rf"^{PAGE}:(prev|next)$"))
    async def page(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: dict[str, Any]) -> None:
        await ack()
        request = ActionRequest.parse(body)
        query, page_number = parse_page_value(request.value)

        async def listed() -> dict[str, Any]:
            message, _count = await lists.message(await viewer_of(context)(), ListQuery.parse(query), page_number)
            return message.as_dict()

        async def refused(refusal: Refusal) -> dict[str, Any]:
            await audit.record("list_invoices", "denied", team_id=request.team_id, user_id=request.user_id,
                               reason=refusal.reason, page=page_number)
            return notice_message(refusal.title, refusal.text).as_dict()

        message = await after_ack(listed(), refused=refused)
        await respond(**message, replace_original=True, response_type="ephemeral")

    @app.action(ADD_CARD)
    async def add_card(ack: AsyncAck) -> None:
        await ack()  # a link button: Slack opens the bot's /cards/new page itself

    @app.action(AUTHENTICATE)
    async def authenticate(ack: AsyncAck) -> None:
        await ack()  # a link button: Slack opens the bot's /pay/authenticate page itself

    @app.action(AMOUNT_FIELD)
    async def amount_entered(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        """Enter in the amount field: the card fee for that amount (dispatch_action)."""
        await ack()
        request = ActionRequest.parse(body)
        view = body.get("view") if isinstance(body.get("view"), dict) else None
        if view is None or not request.view_id:
            return
        try:
            quote = await payments.fee_quote(team_id=request.team_id, user_id=request.user_id,
                                             session_id=request.private_metadata, amount_text=request.value)
        except FieldProblem as problem:
            # Said now, where the fee note was (Slack shows field errors only on submission).
            updated = amount_problem_view(view, request.value or "", problem.message)
        else:
            updated = fee_updated_view(view, quote)
        try:
            await client.views_update(view_id=request.view_id, hash=view.get("hash"), view=updated)
        except SlackApiError as exc:  # submitted or changed meanwhile: that view wins
            log.info("fee not refreshed: %s", exc.response.get("error"))

    @app.action(REFRESH_METHODS)
    async def refresh_methods(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        request = ActionRequest.parse(body)

        async def form_view() -> dict[str, Any]:
            form = await payments.reload_form(team_id=request.team_id, user_id=request.user_id,
                                              session_id=request.private_metadata)
            return pay_form_view(form, today=today(clock))

        await client.views_update(view_id=request.view_id, view=await after_ack(form_view(), refused=_words_view))


async def _open_loading(audit: AuditLog, client: AsyncWebClient, action: ActionRequest, *,
                        retried: bool) -> str | None:
    """Open the loading modal; None when the click's trigger can no longer open one. Then
    the person is told through the click's response_url, unless this is Slack retrying a
    click whose trigger was already used (a modal opened for it: nothing more to do)."""
    try:
        opened = await client.views_open(trigger_id=action.trigger_id, view=loading_view())
        return str(opened["view"]["id"])
    except SlackApiError as exc:
        error = str(exc.response.get("error"))
    exchanged = error in ("exchanged_trigger_id", "trigger_exchanged")
    if error in TRIGGER_PROBLEMS:
        log.info("Pay Now: views.open refused (%s)%s", error, " on a retried click" if retried else "")
    else:  # Slack itself failed to open it (rate limit, outage): the same advice holds
        log.warning("Pay Now: views.open failed: %s", error)
    await audit.record("open_pay_now", "denied", team_id=action.team_id, user_id=action.user_id,
                                reason=error, retried=retried)
    if retried and exchanged:
        return None  # the first delivery of this click opened the modal
    if action.response_url:
        try:
            await AsyncWebhookClient(action.response_url, timeout=10).send_dict(
                {"response_type": "ephemeral", "replace_original": False, "text": EXPIRED_CLICK})
        except Exception as problem:  # noqa: BLE001 - nothing more we can tell the person
            log.info("Pay Now: the expired-click notice was not delivered: %s", type(problem).__name__)
    return None
