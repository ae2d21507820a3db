"""Approvals in Slack: `/invoices approvals` and `/invoices approvers`, the approver's
Approve / Reject buttons (and the reason modal), the requester's Withdraw button.

Every listener acks at once, then calls one service method; every check is made by the
service on the server at the moment of the click, whatever the message showed."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from blocks.approvals import (
    APPROVE, REASON_BLOCK, REASON_FIELD, REJECT, REJECT_CALLBACK, WITHDRAW, awaiting_view, click_answer,
    ended_view, reason_view, rules_message,
)
from blocks.invoices import Message, notice_message
from blocks.pay_modal import CALLBACK_ID, message_view
from bot.approvals import ApprovalCard, ApprovalService, Decision, Refusal
from handlers.context import Background, ViewerLookup, after_ack
from handlers.errors import explanation_for
from handlers.requests import ActionRequest, BadPayload, ViewSubmissionPayload

log = logging.getLogger(__name__)

# After Approve, the charge may have started before something failed: say what is known.
UNSURE_AFTER_APPROVE = (":warning: Something went wrong after your click, and we can't tell yet whether the "
                        "payment was approved and charged. This request's message and the billing channel "
                        "will show the outcome; clicking again is safe.")


async def command(approvals: ApprovalService, viewer: ViewerLookup, word: str, rest: str) -> Message:
    """`/invoices approvals [<profile> <amount>|off]`, `/invoices approvers <profile> @a @b`."""

    async def answered() -> Message:
        changing = bool(rest.strip())
        # Changing a rule checks the person's rights afresh; showing the rules may use the cache.
        person = await viewer(fresh=changing)
        if not changing:
            return rules_message(await approvals.show(person), locale=person.locale)
        if word == "approvers":
            rule = await approvals.set_approvers(person, rest)
            return rules_message([rule], title="Approvers changed", locale=person.locale)
        rule = await approvals.set_threshold(person, rest)
        return rules_message([rule], title="Approval rule changed", locale=person.locale)

    return await after_ack(answered(), refused=lambda refusal: notice_message(refusal.title, refusal.text))


def register(app: AsyncApp, *, approvals: ApprovalService, background: Background) -> None:
    @app.action(APPROVE)
    async def approve(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond,
                      client: AsyncWebClient | None = None) -> None:
        await ack()
        request = ActionRequest.parse(body)
        # From the Home tab there is no message to answer under: a small modal says it instead,
        # opened at once (the click's trigger lasts 3 s; the charge may take longer).
        on_home = request.on_home and client is not None
        modal_id = await _open_answer(client, request, ":hourglass_flowing_sand: Approving…") if on_home else None
        try:
            # Tracked: a stopping server finishes an approved charge rather than cutting it.
            decision = await background.track(approvals.approve(request.team_id, request.user_id, request.value or ""))
            text = click_answer(decision.refused, await _card(approvals, decision))
        except Exception as exc:  # noqa: BLE001
            explanation_for(exc)  # logged; its words ("nothing was charged") may not hold here
            text = UNSURE_AFTER_APPROVE
        if on_home:
            await _update_answer(client, modal_id, text)  # type: ignore[arg-type]
        else:
            await _answer(respond, text)

    @app.action(REJECT)
    async def reject(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        await ack()
        request = ActionRequest.parse(body)
        try:
            await client.views_open(trigger_id=request.trigger_id, view=reason_view(request.value or ""))
        except SlackApiError as exc:
            log.info("reject reason modal not opened: %s", exc.response.get("error"))
            await _answer(respond, "The window for the reason couldn't open in time. Press *Reject* again.")

    @app.view(REJECT_CALLBACK)
    async def reject_reason(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        try:
            payload = ViewSubmissionPayload.model_validate(body)
            metadata = json.loads(payload.view.private_metadata or "{}")
            payment_id = str(metadata.get("payment") or "") if isinstance(metadata, dict) else ""
            field = payload.view.state.values.get(REASON_BLOCK, {}).get(REASON_FIELD)
            reason = (field.value or "").strip() if field else ""
        except (ValueError, BadPayload):
            await ack(response_action="update", view=message_view("Can't read this form", "Nothing was done."))
            return
        if not reason:
            await ack(response_action="errors", errors={REASON_BLOCK: "Say why, so the requester knows."})
            return
        # Slack's answer first: the checks re-read the person's access from the billing API,
        # which may be slow; the modal is then updated with the outcome.
        await ack(response_action="update", view=message_view("Rejecting", ":hourglass_flowing_sand: Rejecting…"))
        team_id = payload.workspace_id or ""
        try:
            decision = await approvals.reject(team_id, payload.user.id, payment_id, reason)
            text = click_answer(decision.refused, await _card(approvals, decision))
        except Exception as exc:  # noqa: BLE001 - a rejection never charges: the generic words hold
            text = explanation_for(exc).text
        try:
            await client.views_update(view_id=payload.view.id, view=message_view("Payment request", text))
        except SlackApiError as exc:  # closed meanwhile: the DM updates say the outcome anyway
            log.info("reject outcome not shown in the modal: %s", exc.response.get("error"))

    @app.action(WITHDRAW)
    async def withdraw(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        request = ActionRequest.parse(body)

        async def withdrawn() -> tuple[str, dict[str, Any]]:
            decision = await approvals.withdraw(request.team_id, request.user_id, request.value or "")
            card = await _card(approvals, decision)
            text = click_answer(decision.refused, card)
            if decision.refused is None and card is not None:
                return text, ended_view(card, "withdrawn", callback_id=CALLBACK_ID)
            if card is not None and card.status == "awaiting_approval" and decision.refused is Refusal.ALREADY_DECIDED:
                return text, awaiting_view(card, callback_id=CALLBACK_ID)
            return text, message_view("Payment request", text)

        # Anything unexpected (the database away) is said too, in the same place: never silence.
        text, view = await after_ack(withdrawn(), refused=lambda refusal: (
            refusal.text, message_view(refusal.title, refusal.text)))
        if request.on_home:  # the tab is refreshed; the words come in a small modal
            await _open_answer(client, request, text)
            return
        if not request.view_id:
            return
        try:
            await client.views_update(view_id=request.view_id, view=view)
        except SlackApiError as exc:
            log.info("modal not updated after withdraw: %s", exc.response.get("error"))


async def _card(approvals: ApprovalService, decision: Decision) -> ApprovalCard | None:
    if decision.payment is None:
        return None
    return ApprovalCard.of(decision.payment, await approvals.request(decision.payment.id))


async def _open_answer(client: AsyncWebClient, request: ActionRequest, text: str) -> str | None:
    """A click on the Home tab answered in a small modal (its id, to update it)."""
    try:
        opened = await client.views_open(trigger_id=request.trigger_id, view=message_view("Payment request", text))
        return str(opened["view"]["id"])
    except SlackApiError as exc:  # the tab is refreshed anyway, and the DMs say the outcome
        log.info("home answer not opened: %s", exc.response.get("error"))
        return None


async def _update_answer(client: AsyncWebClient, view_id: str | None, text: str) -> None:
    if view_id is None:
        return
    try:
        await client.views_update(view_id=view_id, view=message_view("Payment request", text))
    except SlackApiError as exc:
        log.info("home answer not updated: %s", exc.response.get("error"))


async def _answer(respond: AsyncRespond, text: str) -> None:
    """Every click gets words: an ephemeral reply to the person who clicked."""
    try:
        await respond(text=text, response_type="ephemeral", replace_original=False)
    except Exception:  # noqa: BLE001 - the message itself is updated through the outbox anyway
        log.info("click answer not delivered", exc_info=True)
