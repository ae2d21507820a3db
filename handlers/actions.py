"""Buttons: Pay Now, paging through the list, adding a card, refreshing saved methods."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from blocks.invoices import PAGE, PAY_NOW, notice_message, parse_page_value, parse_pay_value
from blocks.pay_modal import (
    ADD_CARD, AUTHENTICATE, REFRESH_METHODS, fee_updated_view, loading_view, message_view, pay_form_view,
)
from bot.errors import FieldProblem
from bot.payments import AMOUNT_FIELD
from handlers.common import explanation_for, refusal_reason
from handlers.requests import ActionRequest

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

# Slack's answers to views.open with a trigger that is too old or was used already.
TRIGGER_PROBLEMS = frozenset({"expired_trigger_id", "exchanged_trigger_id", "trigger_expired", "trigger_exchanged"})
EXPIRED_CLICK = ("The payment window couldn't open in time. Press *Pay Now* again.")


def register(app: AsyncApp, services: Services) -> None:
    @app.action(re.compile(rf"^{PAY_NOW}(:\d+)?$"))
    async def pay_now(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, req: AsyncBoltRequest) -> None:
        await ack()
        request = ActionRequest.parse(body)
        # Open a view at once, inside the trigger's 3 seconds, and fill it in when the
        # billing API and Stripe have answered.
        view_id = await _open_loading(services, client, request, retried=bool(req.headers.get("x-slack-retry-num")))
        if view_id is None:
            return
        invoice_id, list_query = parse_pay_value(request.value)
        try:
            form = await services.payments.open_form(
                team_id=request.team_id, user_id=request.user_id, invoice_id=invoice_id,
                view_id=view_id, list_response_url=request.response_url, list_query=list_query)
            view = pay_form_view(form, today=services.today())
        except Exception as exc:  # noqa: BLE001
            explanation = explanation_for(exc)
            view = message_view(explanation.title, explanation.text)
        await client.views_update(view_id=view_id, view=view)

    @app.action(re.compile(rf"^{PAGE}:(prev|next)$"))
    async def page(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        request = ActionRequest.parse(body)
        query, page_number = parse_page_value(request.value)
        try:
            message = await services.render_list(request.team_id, request.user_id, query, page_number)
        except Exception as exc:  # noqa: BLE001
            explanation = explanation_for(exc)
            message = notice_message(explanation.title, explanation.text).as_dict()
            await services.audit.record("list_invoices", "denied", team_id=request.team_id, user_id=request.user_id,
                                        reason=refusal_reason(exc), page=page_number)
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
            quote = await services.payments.fee_quote(team_id=request.team_id, user_id=request.user_id,
                                                      session_id=request.private_metadata, amount_text=request.value)
        except FieldProblem:
            return  # the field's own error shows at submission; nothing to recompute
        except Exception as exc:  # noqa: BLE001
            explanation_for(exc)  # logged; the form stays as it is
            return
        try:
            await client.views_update(view_id=request.view_id, hash=view.get("hash"),
                                      view=fee_updated_view(view, quote))
        except SlackApiError as exc:  # submitted or changed meanwhile: that view wins
            log.info("fee not refreshed: %s", exc.response.get("error"))

    @app.action(REFRESH_METHODS)
    async def refresh_methods(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        request = ActionRequest.parse(body)
        try:
            form = await services.payments.reload_form(team_id=request.team_id, user_id=request.user_id,
                                                       session_id=request.private_metadata)
            view = pay_form_view(form, today=services.today())
        except Exception as exc:  # noqa: BLE001
            explanation = explanation_for(exc)
            view = message_view(explanation.title, explanation.text)
        await client.views_update(view_id=request.view_id, view=view)


async def _open_loading(services: Services, client: AsyncWebClient, action: ActionRequest, *,
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
    await services.audit.record("open_pay_now", "denied", team_id=action.team_id, user_id=action.user_id,
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
