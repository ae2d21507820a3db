"""The App Home tab: its buttons (See all, where notices go) and the route modal.

Pay Now on the tab is the list's own `pay_now` action (handlers/actions.py): the same
modal and the same checks. Every button here checks the person's rights again on the server.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from blocks.home import CHANGE_ROUTE, ROUTE_BLOCK, ROUTE_CALLBACK, SEE_ALL, parse_route_value, route_modal
from blocks.invoices import notice_message
from blocks.pay_modal import message_view
from bot.identity import AccessDenied, AccessProblem
from bot.routing import RouteProblem
from handlers.common import explanation_for, refusal_reason
from handlers.requests import ActionRequest, RouteSubmitRequest

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)


def register(app: AsyncApp, services: Services) -> None:
    @app.action(SEE_ALL)
    async def see_all(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        """A Home tab has no response_url and no channel: the full list goes by DM."""
        await ack()
        request = ActionRequest.parse(body)
        try:
            message = await services.render_list(request.team_id, request.user_id, "")
            await services.audit.record("list_invoices", "ok", team_id=request.team_id, user_id=request.user_id,
                                        query="", surface="home")
        except Exception as exc:  # noqa: BLE001
            explanation = explanation_for(exc)
            message = notice_message(explanation.title, explanation.text).as_dict()
            await services.audit.record("list_invoices", "denied", team_id=request.team_id,
                                        user_id=request.user_id, reason=refusal_reason(exc), surface="home")
        await client.chat_postMessage(channel=request.user_id, **message)

    @app.action(re.compile(rf"^{CHANGE_ROUTE}:\d+$"))
    async def change_route(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        request = ActionRequest.parse(body)
        profile_id = parse_route_value(request.value)
        try:
            viewer = await services.identity.viewer(request.team_id, request.user_id, fresh=True)
            if not viewer.access.is_profile_admin:
                raise AccessDenied(AccessProblem.NOT_ADMIN)
            viewer.require(profile_id)
            profile = await services.invoices.profile(profile_id)
            current = await services.router.channel_for(request.team_id, profile_id)
            view = route_modal(profile_id, profile.name, current)
        except Exception as exc:  # noqa: BLE001
            await services.audit.record("set_notify_route", "denied", team_id=request.team_id,
                                        user_id=request.user_id, reason=refusal_reason(exc), surface="home")
            explanation = explanation_for(exc)
            view = message_view(explanation.title, explanation.text)
        try:
            await client.views_open(trigger_id=request.trigger_id, view=view)
        except SlackApiError as exc:
            log.info("route modal not opened: %s", exc.response.get("error"))

    @app.view(ROUTE_CALLBACK)
    async def save_route(ack: AsyncAck, body: dict[str, Any]) -> None:
        try:
            request = RouteSubmitRequest.parse(body)
        except Exception as exc:  # noqa: BLE001
            explanation = explanation_for(exc)
            await ack(response_action="update", view=message_view(explanation.title, explanation.text))
            return
        if not request.channel_id:
            await ack(response_action="errors", errors={ROUTE_BLOCK: "Pick a channel."})
            return
        try:
            # The same service and checks as `/invoices notify #channel <profile>`.
            viewer = await services.identity.viewer(request.team_id, request.user_id, fresh=True)
            viewer.require(request.profile_id)
            channel_id, _rows = await services.routing.set(viewer, request.channel_id, request.profile_id)
        except RouteProblem as problem:
            await ack(response_action="errors", errors={ROUTE_BLOCK: str(problem)[:150]})
            return
        except Exception as exc:  # noqa: BLE001
            if isinstance(exc, AccessDenied) and exc.problem is AccessProblem.PROFILE_NOT_ALLOWED:
                await services.audit.record("set_notify_route", "denied", team_id=request.team_id,
                                            user_id=request.user_id, reason=refusal_reason(exc), surface="home")
            explanation = explanation_for(exc)
            await ack(response_action="update", view=message_view(explanation.title, explanation.text))
            return
        await ack(response_action="update", view=message_view(
            "Saved", f":white_check_mark: Payment notices now go to <#{channel_id}>."))
        services.refresh_home(request.team_id, request.user_id)
