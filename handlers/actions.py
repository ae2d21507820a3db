"""Buttons: Pay Now, paging through the list, adding a card, refreshing saved methods."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from blocks.invoices import PAGE, PAY_NOW, notice_message, parse_page_value, parse_pay_value
from blocks.pay_modal import (
    ADD_CARD, AUTHENTICATE, REFRESH_METHODS, fee_updated_view, loading_view, message_view, pay_form_view,
)
from bot.errors import FieldProblem
from bot.payments import AMOUNT_FIELD
from handlers.common import explanation_for
from handlers.requests import ActionRequest

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)


def register(app: AsyncApp, services: Services) -> None:
    @app.action(re.compile(rf"^{PAY_NOW}(:\d+)?$"))
    async def pay_now(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        request = ActionRequest.parse(body)
        # Open a view at once, inside the trigger's 3 seconds, and fill it in when the
        # billing API and Stripe have answered.
        opened = await client.views_open(trigger_id=request.trigger_id, view=loading_view())
        view_id = opened["view"]["id"]
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

