"""`/invoices`: list what the person may pay, or explain why there is nothing."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from blocks.invoices import Message, help_message, notice_message
from blocks.routes import routes_message
from bot.invoices import ListQuery, QueryKind
from bot.approvals import ApprovalService
from bot.routing import RoutingService
from handlers import approvals as approval_listeners
from handlers.context import Refusal, ViewerLookup, after_ack, viewer_of
from handlers.requests import CommandRequest
from handlers.scheduling import SUBCOMMANDS, TimedCommands
from handlers.slack_io import ListRenderer
from storage.audit import AuditLog


def register(app: AsyncApp, *, lists: ListRenderer, routing: RoutingService, audit: AuditLog,
             timed: TimedCommands | None = None, approvals: ApprovalService | None = None) -> None:
    @app.command("/invoices")
    async def list_invoices(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond,
                            context: dict[str, Any]) -> None:
        request = CommandRequest.parse(body)
        viewer = viewer_of(context)
        words = request.text.split(maxsplit=2)
        if words and words[0].lower() == "notify":
            await ack()
            message = await _notify(routing, viewer, words[1] if len(words) > 1 else "",
                                    words[2] if len(words) > 2 else "")
            await respond(**message.as_dict(), response_type="ephemeral", replace_original=False)
            return
        if words and words[0].lower() in SUBCOMMANDS and timed is not None:  # handlers/scheduling.py
            await ack()
            message = await timed.command(request, viewer)
            await respond(**message.as_dict(), response_type="ephemeral", replace_original=False)
            return
        if words and words[0].lower() in ("approvals", "approvers") and approvals is not None:
            await ack()
            rest = request.text.strip().split(maxsplit=1)
            message = await approval_listeners.command(approvals, viewer, words[0].lower(),
                                                       rest[1] if len(rest) > 1 else "")
            await respond(**message.as_dict(), response_type="ephemeral", replace_original=False)
            return
        query = ListQuery.parse(request.text)
        if query.kind is QueryKind.HELP:
            await ack(**help_message().as_dict(), response_type="ephemeral")
            return
        await ack()  # within Slack's 3 seconds; the list follows through response_url
        replace = False  # True once the first page is shown and the whole list replaces it

        async def listed() -> Message:
            nonlocal replace
            person = await viewer()
            # The first page from one bounded read; a longer list says "counting…" in place
            # of its totals, and is replaced by the whole list once they are known.
            first = await lists.first_page(person, query)
            if first.count is not None:
                await audit.record("list_invoices", "ok", team_id=request.team_id, user_id=request.user_id,
                                   query=query.as_text, count=first.count)
                return first.message
            await respond(**first.message.as_dict(), response_type="ephemeral", replace_original=False)
            replace = True

            async def counted() -> Message:
                message, count = await lists.message(person, query)
                await audit.record("list_invoices", "ok", team_id=request.team_id, user_id=request.user_id,
                                   query=query.as_text, count=count)
                return message

            async def not_counted(refusal: Refusal) -> Message:
                # The first page stays (it was right); it says the totals are not known.
                await audit.record("list_invoices", "ok", team_id=request.team_id, user_id=request.user_id,
                                   query=query.as_text, count=None, totals_error=refusal.reason)
                return lists.uncounted(first)

            return await after_ack(counted(), refused=not_counted)

        async def refused(refusal: Refusal) -> Message:
            await audit.record("list_invoices", "denied", team_id=request.team_id, user_id=request.user_id,
                               reason=refusal.reason)
            return notice_message(refusal.title, refusal.text)

        message = await after_ack(listed(), refused=refused)
        await respond(**message.as_dict(), response_type="ephemeral", replace_original=replace)


async def _notify(routing: RoutingService, viewer: ViewerLookup, channel: str, profile: str) -> Message:
    """`/invoices notify` shows the routes; `/invoices notify #channel [profile]` sets one."""

    async def notified() -> Message:
        # Changing a route checks the person's rights afresh; showing them may use the cache.
        person = await viewer(fresh=bool(channel))
        if not channel:
            return routes_message(await routing.show(person))
        channel_id, rows = await routing.set(person, channel, profile)
        return routes_message(rows, title=f"Payment notifications now go to <#{channel_id}>")

    return await after_ack(notified(), refused=lambda refusal: notice_message(refusal.title, refusal.text))
