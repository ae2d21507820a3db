"""Approvals as Slack messages through the outbox (next to handlers/slack_io.py).

Each approver's request is a DM sent on its own (`alone`) so that Slack's channel and ts are
kept on its outbox row; every later word about that request is a `chat.update` of it
(`update_of`), queued behind it for the same person, so the updates are tracked per approver
and a stale message never keeps live buttons."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError

from ulid import ULID

from blocks.approvals import decided_message, ended_view, policy_notice, request_message, requester_message
from blocks.pay_modal import CALLBACK_ID as PAY_CALLBACK_ID
from bot.approvals import ApprovalCard, Rule
from bot.billing import Invoice
from bot.processor import PaymentEvents
from bot.routing import NotificationRouter
from storage.approvals import ApprovalRepository
from storage.models import ApprovalRequest, OutboxMessage, Payment, PaymentStatus
from storage.slack_links import SlackLinkRepository

log = logging.getLogger(__name__)

# The payer's DM about an outcome of an approved payment, and the approvers' messages.
_EVENT_OF_STATUS = {
    PaymentStatus.RECORDED: "paid", PaymentStatus.PROCESSING: "processing", PaymentStatus.FAILED: "failed",
    PaymentStatus.NEEDS_ATTENTION: "attention", PaymentStatus.REFUNDED: "refunded",
    PaymentStatus.CANCELED: "canceled",  # approved, then the invoice changed before the charge
}
# Decisions the requester hears about from us (an approval is followed by the charge's own DM).
_TELL_REQUESTER = {"rejected", "expired", "withdrawn", "canceled", "approved_for_later"}


def ask_key(payment_id: str, approver: str) -> str:
    return f"approval:{payment_id}:{approver}:ask"


class SlackApprovalNotices:
    def __init__(self, router: NotificationRouter) -> None:
        self._router = router

    async def policy_changed(self, team_id: str, rule: Rule, *, by: str, what: str) -> list[OutboxMessage]:
        channel = await self._router.channel_for(team_id, rule.profile_id)
        return [OutboxMessage(dedupe_key=f"approval_policy:{team_id}:{rule.profile_id}:{ULID()}", team_id=team_id,
                              channel=channel, payload={**policy_notice(rule, by=by, what=what),
                                                        "billing_profile_id": rule.profile_id},
                              attempts=0, next_attempt_at=_now())]

    async def asked(self, payment: Payment, request: ApprovalRequest, invoice: Invoice) -> list[OutboxMessage]:
        payload = request_message(ApprovalCard.of(payment, request), due_on=invoice.due_on, balance=invoice.balance)
        return [OutboxMessage(dedupe_key=ask_key(payment.id, approver), team_id=payment.team_id, channel=approver,
                              payload={**payload, "alone": True}, attempts=0, next_attempt_at=_now())
                for approver in request.approvers]

    async def decided(self, payment: Payment, request: ApprovalRequest, event: str) -> list[OutboxMessage]:
        messages = updates(payment, request, event)
        if event in _TELL_REQUESTER:
            messages.append(OutboxMessage(
                dedupe_key=f"{payment.id}:dm:{event}", team_id=payment.team_id, channel=request.requester_id,
                payload=requester_message(ApprovalCard.of(payment, request), event), attempts=0, next_attempt_at=_now()))
        return messages


def updates(payment: Payment, request: ApprovalRequest, event: str) -> list[OutboxMessage]:
    """Every approver's request message, updated in place with `event`."""
    payload = decided_message(ApprovalCard.of(payment, request), event)
    return [OutboxMessage(dedupe_key=f"approval:{payment.id}:{approver}:{event}", team_id=payment.team_id,
                          channel=approver, payload={**payload, "update_of": ask_key(payment.id, approver)},
                          attempts=0, next_attempt_at=_now())
            for approver in request.approvers]


class ApprovalAwareEvents:
    """The payment events of any payment, plus, for an approved one: the channel notice names
    the approver too, and the charge's outcome updates every approver's message."""

    def __init__(self, inner: PaymentEvents, repo: ApprovalRepository) -> None:
        self._inner = inner
        self._repo = repo

    async def notices(self, payment: Payment, event: str) -> list[OutboxMessage]:
        messages = await self._inner.notices(payment, event)
        if payment.approved_by:
            for message in messages:
                message.payload = _with_approver(message.payload, payment.approved_by)
        return messages

    async def direct(self, payment: Payment) -> list[OutboxMessage]:
        messages = await self._inner.direct(payment)
        if not payment.approved_by:
            return messages
        for message in messages:
            message.payload = _with_approver(message.payload, payment.approved_by)
        request = await self._repo.request(payment.id)
        event = _EVENT_OF_STATUS.get(PaymentStatus(payment.status))
        if request is not None and event:
            messages += updates(payment, request, event)
        return messages

    async def changed(self, payment: Payment, *, update_modal: bool) -> None:
        await self._inner.changed(payment, update_modal=update_modal)


def _with_approver(payload: dict[str, Any], approver: str) -> dict[str, Any]:
    note = f"Approved by <@{approver}>."
    blocks = list(payload.get("blocks") or [])
    blocks.insert(1 if blocks else 0, {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    return {**payload, "text": f"{payload.get('text', '')} {note}".strip(), "blocks": blocks}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RequesterWindow:
    """The requester's Pay Now window, if still open, redrawn when their request ends by
    someone else's hand or the clock (rejected, expired, canceled, approved for its day): it
    no longer says "waiting" nor offers Withdraw. The modal is found by the payment's Slack link."""

    def __init__(self, links: SlackLinkRepository, client_for: Callable[[str], Awaitable[Any]],
                 approvals: ApprovalRepository) -> None:
        self._links = links
        self._client_for = client_for
        self._approvals = approvals

    async def ended(self, payment: Payment, event: str) -> None:
        link = await self._links.payment(payment.id)
        if link is None or not link.view_id:
            return
        card = ApprovalCard.of(payment, await self._approvals.request(payment.id))
        client = await self._client_for(payment.team_id)
        try:
            await client.views_update(view_id=link.view_id, view=ended_view(card, event, callback_id=PAY_CALLBACK_ID))
        except SlackApiError as exc:  # closed meanwhile: the DM says it
            log.info("requester's window for %s not updated: %s", payment.id, exc.response.get("error"))

