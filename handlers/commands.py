"""`/invoices`: list what the person may pay, or explain why there is nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from blocks.invoices import Message, help_message, invoice_list_message, notice_message
from blocks.routes import routes_message
from bot.invoices import ListQuery, QueryKind
from handlers import scheduling
from handlers.common import explanation_for, refusal_reason
from handlers.requests import CommandRequest

if TYPE_CHECKING:
    from bot.app import Services


def register(app: AsyncApp, services: Services) -> None:
    @app.command("/invoices")
    async def list_invoices(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        request = CommandRequest.parse(body)
        words = request.text.split(maxsplit=2)
        if words and words[0].lower() == "notify":
            await ack()
            message = await _notify(services, request, words[1] if len(words) > 1 else "",
                                    words[2] if len(words) > 2 else "")
            await respond(**message.as_dict(), response_type="ephemeral", replace_original=False)
            return
        if words and words[0].lower() in scheduling.SUBCOMMANDS:
            await ack()
            message = await scheduling.command(services, request)
            await respond(**message.as_dict(), response_type="ephemeral", replace_original=False)
            return
        query = ListQuery.parse(request.text)
        if query.kind is QueryKind.HELP:
            await ack(**help_message().as_dict(), response_type="ephemeral")
            return
        await ack()  # within Slack's 3 seconds; the list follows through response_url
        try:
            viewer = await services.identity.viewer(request.team_id, request.user_id)
            listing = await services.invoices.list_payable(viewer, query)
            message = invoice_list_message(listing, page=0, today=services.today())
            await services.audit.record("list_invoices", "ok", team_id=request.team_id, user_id=request.user_id,
                                        query=query.as_text, count=len(listing.rows))
        except Exception as exc:  # noqa: BLE001 - every failure gets words, never silence
            explanation = explanation_for(exc)
            message = notice_message(explanation.title, explanation.text)
            await services.audit.record("list_invoices", "denied", team_id=request.team_id,
                                        user_id=request.user_id, reason=refusal_reason(exc))
        await respond(**message.as_dict(), response_type="ephemeral", replace_original=False)


async def _notify(services: Services, request: CommandRequest, channel: str, profile: str) -> Message:
    """`/invoices notify` shows the routes; `/invoices notify #channel [profile]` sets one."""
    try:
        viewer = await services.identity.viewer(request.team_id, request.user_id, fresh=bool(channel))
        if not channel:
            return routes_message(await services.routing.show(viewer))
        channel_id, rows = await services.routing.set(viewer, channel, profile)
        return routes_message(rows, title=f"Payment notifications now go to <#{channel_id}>")
    except Exception as exc:  # noqa: BLE001
        explanation = explanation_for(exc)
        return notice_message(explanation.title, explanation.text)
