"""The App Home tab: its buttons (See all, where notices go) and the route modal.

Pay Now on the tab is the list's own `pay_now` action (handlers/actions.py): the same
modal and the same checks. Every button here checks the person's rights again on the server.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from blocks.home import CHANGE_ROUTE, ROUTE_BLOCK, ROUTE_CALLBACK, SEE_ALL, parse_route_value, route_modal
from blocks.invoices import notice_message
from blocks.pay_modal import message_view
from bot.errors import FieldProblem
from bot.identity import AccessDenied, AccessProblem
from bot.invoices import InvoiceService, ListQuery
from bot.routing import NotificationRouter, RouteProblem, RoutingService
from handlers.context import Refusal, after_ack, viewer_of
from handlers.errors import refusal_reason
from handlers.requests import ActionRequest, RouteSubmitRequest
from handlers.slack_io import ListRenderer
from storage.audit import AuditLog

log = logging.getLogger(__name__)


def register(app: AsyncApp, *, lists: ListRenderer, invoices: InvoiceService, router: NotificationRouter,
             routing: RoutingService, audit: AuditLog, refresh_home: Callable[[str, str], None]) -> None:
    @app.action(SEE_ALL)
    async def see_all(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]) -> None:
        """A Home tab has no response_url and no channel: the full list goes by DM."""
        await ack()
        request = ActionRequest.parse(body)

        async def listed() -> dict[str, Any]:
            message, _count = await lists.message(await viewer_of(context)(), ListQuery.parse(""))
            await audit.record("list_invoices", "ok", team_id=request.team_id, user_id=request.user_id,
                               query="", surface="home")
            return message.as_dict()

        async def refused(refusal: Refusal) -> dict[str, Any]:
            await audit.record("list_invoices", "denied", team_id=request.team_id, user_id=request.user_id,
                               reason=refusal.reason, surface="home")
            return notice_message(refusal.title, refusal.text).as_dict()

        await client.chat_postMessage(channel=request.user_id, **await after_ack(listed(), refused=refused))

    @app.action(re.compile(rf"^{CHANGE_ROUTE}:\d+$"))
    async def change_route(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient,
                           context: dict[str, Any]) -> None:
        await ack()
        request = ActionRequest.parse(body)
        profile_id = parse_route_value(request.value)

        async def route_view() -> dict[str, Any]:
            viewer = await viewer_of(context)(fresh=True)
            if not viewer.access.is_profile_admin:
                raise AccessDenied(AccessProblem.NOT_ADMIN)
            viewer.require(profile_id)
            profile = await invoices.profile(profile_id)
            current = await router.channel_for(request.team_id, profile_id)
            return route_modal(profile_id, profile.name, current)

        async def refused(refusal: Refusal) -> dict[str, Any]:
            await audit.record("set_notify_route", "denied", team_id=request.team_id, user_id=request.user_id,
                               reason=refusal.reason, surface="home")
            return message_view(refusal.title, refusal.text)

        view = await after_ack(route_view(), refused=refused)
        try:
            await client.views_open(trigger_id=request.trigger_id, view=view)
        except SlackApiError as exc:
            log.info("route modal not opened: %s", exc.response.get("error"))

    @app.view(ROUTE_CALLBACK)
    async def save_route(ack: AsyncAck, body: dict[str, Any], context: dict[str, Any]) -> None:
        request = RouteSubmitRequest.parse(body)  # a bad payload: the error handler's words
        if not request.channel_id:
            await ack(response_action="errors", errors={ROUTE_BLOCK: "Pick a channel."})
            return
        try:
            # The same service and checks as `/invoices notify #channel <profile>`.
            viewer = await viewer_of(context)(fresh=True)
            viewer.require(request.profile_id)
            channel_id, _rows = await routing.set(viewer, request.channel_id, request.profile_id)
        except RouteProblem as problem:  # shown under the channel picker, by the error handler
            raise FieldProblem(ROUTE_BLOCK, str(problem)[:150]) from None
        except AccessDenied as denied:  # the modal replaced by its words, by the error handler
            if denied.problem is AccessProblem.PROFILE_NOT_ALLOWED:
                await audit.record("set_notify_route", "denied", team_id=request.team_id,
                                   user_id=request.user_id, reason=refusal_reason(denied), surface="home")
            raise
        await ack(response_action="update", view=message_view(
            "Saved", f":white_check_mark: Payment notices now go to <#{channel_id}>."))
        refresh_home(request.team_id, request.user_id)
