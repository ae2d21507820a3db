"""The App Home tab: its own buttons (See all, Receipt, and per profile: where notices go,
the approval rule, the reminders) and their modals.

Pay Now on the tab is the list's own `pay_now` action (handlers/actions.py), Approve / Reject
the approver DM's (handlers/approvals.py), Withdraw the requester's, Cancel that of
`/invoices scheduled` (handlers/scheduling.py): the same listeners and the same checks.
Every button here checks the person's rights again on the server, and every modal saves
through the service of the slash subcommand that does the same.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from blocks.home import (
    APPROVERS_BLOCK, CADENCE_BLOCK, CHANGE_REMINDERS, CHANGE_ROUTE, CHANGE_RULE, RECEIPT, REMINDERS_CALLBACK,
    ROUTE_BLOCK, ROUTE_CALLBACK, RULE_CALLBACK, SEE_ALL, THRESHOLD_BLOCK, TIME_BLOCK, parse_route_value,
    reminders_modal, route_modal, rule_modal,
)
from blocks.invoices import notice_message
from blocks.pay_modal import message_view, payment_view
from bot.approvals import ApprovalService, Rule
from bot.errors import ApprovalProblem, FieldProblem
from bot.identity import AccessDenied, AccessProblem, Viewer
from bot.invoices import InvoiceService, ListQuery
from bot.reminders import ReminderCommand, ReminderProblem, ReminderService
from bot.routing import NotificationRouter, RouteProblem, RoutingService
from bot.summaries import payment_summary
from handlers.context import Refusal, after_ack, viewer_of
from handlers.errors import refusal_reason
from handlers.requests import ActionRequest, FormSubmitRequest, RouteSubmitRequest
from handlers.slack_io import ListRenderer
from handlers.views import SETTLE_SECONDS
from storage.audit import AuditLog
from storage.payments import PaymentRepository

log = logging.getLogger(__name__)


def register(app: AsyncApp, *, lists: ListRenderer, invoices: InvoiceService, router: NotificationRouter,
             routing: RoutingService, audit: AuditLog, refresh_home: Callable[[str, str], None],
             approvals: ApprovalService | None = None, reminders: ReminderService | None = None,
             payments: PaymentRepository | None = None) -> None:
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
        refresh_home(request.team_id, request.user_id)  # RoutingService.on_changed too: coalesced

    async def admin_of(context: dict[str, Any], profile_id: str, action: str, request: ActionRequest) -> Viewer:
        """The clicker, checked afresh: a billing-profile admin of this profile (the button's
        value is input: it is checked here, and again when the modal is saved)."""
        viewer = await viewer_of(context)(fresh=True)
        if not viewer.access.is_profile_admin:
            raise AccessDenied(AccessProblem.NOT_ADMIN)
        try:
            viewer.require(profile_id)
        except AccessDenied as denied:
            await audit.record(action, "denied", team_id=request.team_id, user_id=request.user_id,
                               reason=refusal_reason(denied), surface="home")
            raise
        return viewer

    async def open_modal(client: AsyncWebClient, request: ActionRequest, build: Any) -> None:
        view = await after_ack(build, refused=lambda refusal: message_view(refusal.title, refusal.text))
        try:
            await client.views_open(trigger_id=request.trigger_id, view=view)
        except SlackApiError as exc:
            log.info("home modal not opened: %s", exc.response.get("error"))

    if approvals is not None:
        @app.action(re.compile(rf"^{CHANGE_RULE}:\d+$"))
        async def change_rule(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient,
                              context: dict[str, Any]) -> None:
            await ack()
            request = ActionRequest.parse(body)
            profile_id = parse_route_value(request.value)

            async def rule_view() -> dict[str, Any]:
                viewer = await admin_of(context, profile_id, "set_approval_threshold", request)
                profile = await invoices.profile(profile_id)
                return rule_modal(await approvals.rule(request.team_id, profile_id, profile.name), viewer.locale)

            await open_modal(client, request, rule_view())

        @app.view(RULE_CALLBACK)
        async def save_rule(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient,
                            context: dict[str, Any]) -> None:
            """The same services and checks as `/invoices approvals <profile> <amount>|off` and
            `/invoices approvers <profile> @a @b`: each part is saved only when it changed."""
            form = FormSubmitRequest.parse(body)
            typed = form.text(THRESHOLD_BLOCK).strip()
            chosen = list(dict.fromkeys(form.users(APPROVERS_BLOCK)))
            if typed and not chosen:
                raise FieldProblem(APPROVERS_BLOCK, "Name at least one approver (nobody approves their own payment).")

            async def saved() -> dict[str, Any]:
                viewer = await viewer_of(context)(fresh=True)
                viewer.require(form.profile_id)
                profile = await invoices.profile(form.profile_id)
                current = await approvals.rule(form.team_id, form.profile_id, profile.name)
                shown = current.threshold.format(viewer.locale) if current.threshold is not None else ""
                try:
                    if typed != shown:
                        # The command's text: "<profile> <amount>" (the amount's own spaces dropped) or "off".
                        await approvals.set_threshold(viewer, f"{form.profile_id} {typed.replace(' ', '') or 'off'}")
                    if chosen and set(chosen) != set(current.approvers):
                        await approvals.set_approvers(viewer, f"{form.profile_id} "
                                                      + " ".join(f"<@{user}>" for user in chosen))
                except ApprovalProblem as problem:  # the form again, with the typed values and the words
                    again = Rule(current.profile_id, current.profile_name, current.threshold, tuple(chosen))
                    return rule_modal(again, viewer.locale, problem=str(problem), typed=typed)
                rule = await approvals.rule(form.team_id, form.profile_id, profile.name)
                words = (f"payments of *{rule.threshold.format(viewer.locale)}* or more need approval"
                         if rule.threshold is not None else "no payment needs approval")
                return message_view("Saved", f":white_check_mark: {profile.name}: {words}."[:2900])

            await _saving(ack, client, form, saved())

    if reminders is not None:
        @app.action(re.compile(rf"^{CHANGE_REMINDERS}:\d+$"))
        async def change_reminders(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient,
                                   context: dict[str, Any]) -> None:
            await ack()
            request = ActionRequest.parse(body)
            profile_id = parse_route_value(request.value)

            async def reminders_view() -> dict[str, Any]:
                await admin_of(context, profile_id, "set_reminders", request)
                profile = await invoices.profile(profile_id)
                [row] = await reminders.rows(request.team_id, {profile_id: profile.name})
                return reminders_modal(row)

            await open_modal(client, request, reminders_view())

        @app.view(REMINDERS_CALLBACK)
        async def save_reminders(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient,
                                 context: dict[str, Any]) -> None:
            """The same service and checks as `/invoices reminders <profile> daily|weekly|off HH:MM`."""
            form = FormSubmitRequest.parse(body)
            cadence = form.option(CADENCE_BLOCK)
            # The command's own parser reads the time (HH:MM); anything else stays in `profile`.
            parsed = ReminderCommand.parse(f"{cadence} {form.time(TIME_BLOCK)}")
            if parsed.cadence not in ("daily", "weekly", "off"):
                raise FieldProblem(CADENCE_BLOCK, "Choose every day, every Monday or off.")
            if parsed.profile or parsed.local_time is None:
                raise FieldProblem(TIME_BLOCK, "Choose the time of day, HH:MM.")
            if not form.profile_id:  # configure() with no profile would change them all
                raise FieldProblem(CADENCE_BLOCK, "This form lost its billing profile: close it and try again.")

            async def saved() -> dict[str, Any]:
                viewer = await viewer_of(context)(fresh=True)
                viewer.require(form.profile_id)
                [row] = await reminders.configure(viewer, ReminderCommand(form.profile_id, parsed.cadence,
                                                                          parsed.local_time))
                return message_view("Saved", f":white_check_mark: Reminders of {row.profile_name}: "
                                             f"{row.describe()}."[:2900])

            await _saving(ack, client, form, saved())

    if payments is not None:
        @app.action(re.compile(rf"^{RECEIPT}:\d+$"))
        async def receipt(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient,
                          context: dict[str, Any]) -> None:
            """The receipt the Pay Now modal showed: only of the clicker's own recorded payment, on a
            profile they may still see."""
            await ack()
            request = ActionRequest.parse(body)

            async def receipt_view() -> dict[str, Any]:
                payment = await payments.get((request.value or "")[:64])
                if payment is None or payment.team_id != request.team_id or payment.user_id != request.user_id \
                        or payment.status != "recorded":
                    await audit.record("show_receipt", "denied", team_id=request.team_id, user_id=request.user_id,
                                       reason="not_their_payment", surface="home")
                    return message_view("No receipt", "I can't find a receipt of yours for this payment.")
                viewer = await viewer_of(context)()
                viewer.require(payment.billing_profile_id)
                return payment_view(payment_summary(payment))

            await open_modal(client, request, receipt_view())


async def _saving(ack: AsyncAck, client: AsyncWebClient, form: FormSubmitRequest, work: Any) -> None:
    """Slack's answer first ("Saving…"): the checks re-read the person's access from the billing
    API, which may be slow; the modal is then updated with the outcome, or the service's words."""
    await ack(response_action="update", view=message_view("Saving", ":hourglass_flowing_sand: Saving…"))
    answered = time.monotonic()
    view = await after_ack(work, refused=lambda refusal: message_view(refusal.title, refusal.text))
    # A views.update that reached Slack before our answer would be overwritten by it.
    await asyncio.sleep(max(0.0, SETTLE_SECONDS - (time.monotonic() - answered)))
    try:
        await client.views_update(view_id=form.view_id, view=view)
    except SlackApiError as exc:  # closed meanwhile: the tab and the channel notice say it
        log.info("settings outcome not shown in the modal: %s", exc.response.get("error"))
