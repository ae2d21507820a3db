"""Approvals in Block Kit: the rules, the approver's request with Approve / Reject, the
outcome that replaces it, the requester's words, the reason modal."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock, ButtonElement, ContextBlock, InputBlock, MarkdownTextObject, PlainTextInputElement,
    PlainTextObject, SectionBlock,
)
from slack_sdk.models.views import View

from blocks.invoices import Message
from blocks.text import clip, day, safe
from bot.approvals import ApprovalCard, Refusal, Rule
from bot.identity import DEFAULT_LOCALE
from bot.money import Money

APPROVE = "approval_approve"
REJECT = "approval_reject"
WITHDRAW = "approval_withdraw"
REJECT_CALLBACK = "approval_reject_reason"
REASON_BLOCK = "reason"
REASON_FIELD = "reason"


def _md(text: str) -> dict[str, Any]:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, 3000))).to_dict()


def _context(text: str) -> dict[str, Any]:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, 3000))]).to_dict()


def people(user_ids: list[str] | tuple[str, ...]) -> str:
    mentions = [f"<@{u}>" for u in user_ids]
    if len(mentions) <= 1:
        return "".join(mentions) or "nobody"
    return ", ".join(mentions[:-1]) + " or " + mentions[-1]


def _amount(card: ApprovalCard, locale: str = DEFAULT_LOCALE) -> str:
    return card.amount.format(locale)


# -- the rules ---------------------------------------------------------------------------
def rule_line(rule: Rule, locale: str = DEFAULT_LOCALE) -> str:
    name = safe(rule.profile_name or rule.profile_id, 120)
    if rule.threshold is None:
        who = f" (approvers named: {people(rule.approvers)})" if rule.approvers else ""
        return f"• {name}: no approval needed{who}"
    return (f"• {name}: payments of *{rule.threshold.format(locale)}* or more need approval by "
            f"{people(rule.approvers) if rule.approvers else '_nobody named yet_'}")


def rules_message(rules: list[Rule], *, title: str = "Approval rules", locale: str = DEFAULT_LOCALE) -> Message:
    lines = [f"*{safe(title, 200)}*", *(rule_line(r, locale) for r in rules[:40])]
    help_text = ("Billing-profile admins: `/invoices approvals <profile> <amount>` (or `off`) and "
                 "`/invoices approvers <profile> @someone @someone-else`. A change applies to new requests only.")
    return Message(clip(title, 3000), [_md("\n".join(lines)), _context(help_text)])


def policy_notice(rule: Rule, *, by: str, what: str) -> dict[str, Any]:
    """The announcement in the profile's notification channel."""
    text = (f":scales: <@{by}> changed the approval rule of *{safe(rule.profile_name, 200)}*: payments {what}.\n"
            + rule_line(rule))
    return {"text": clip(text.replace("*", ""), 3000), "blocks": [_md(text), _context(
        "Requests already waiting keep the rule they were made under.")]}


def form_note(rule: Rule, locale: str) -> str:
    """What the Pay Now modal says before submitting (the rule's approvers other than the payer)."""
    assert rule.threshold is not None
    if not rule.approvers:
        return (f":scales: Payments of *{rule.threshold.format(locale)}* or more need another person's approval, "
                "and nobody else is named to give it yet: ask a billing-profile admin (`/invoices approvers`).")
    return (f":scales: Payments of *{rule.threshold.format(locale)}* or more need approval by "
            f"{people(rule.approvers)} before anything is charged.")


# -- the approver's message --------------------------------------------------------------
def _summary(card: ApprovalCard, requester: str, due_on: dt.date | None, balance: Money | None) -> str:
    lines = [f"*Invoice* {safe(card.invoice_number, 150)} · {safe(card.profile_name, 200)}"]
    if due_on is not None:
        lines.append(f"*Due* {day(due_on)}")
    if balance is not None:
        lines.append(f"*Balance* {balance.format()}")
    lines.append(f"*Amount* {_amount(card)} · *Method* {safe(card.method, 80)}")
    if card.pay_on is not None:
        lines.append(f"*Scheduled for* {day(card.pay_on)}, 09:00 in the profile's time zone")
    lines.append(f"*Asked by* <@{requester}>")
    return "\n".join(lines)


def request_message(card: ApprovalCard, *, due_on: dt.date | None,
                    balance: Money | None) -> dict[str, Any]:
    when = (f" scheduled for {day(card.pay_on)}" if card.pay_on is not None else "")
    after = (" Approved, it is charged on that day, after the invoice is checked again." if card.pay_on is not None
             else "")
    head = (f":raised_hand: <@{card.requester}> asks you to approve a payment of *{_amount(card)}*{when} on "
            f"invoice *{safe(card.invoice_number, 150)}*. Nothing is charged until someone approves it.{after}")
    value = card.payment_id
    blocks = [
        _md(head),
        _md(_summary(card, card.requester, due_on, balance)),
        ActionsBlock(block_id=f"approval:{card.payment_id}", elements=[
            ButtonElement(text="Approve", action_id=APPROVE, value=value, style="primary"),
            ButtonElement(text="Reject", action_id=REJECT, value=value, style="danger"),
        ]).to_dict(),
        _context((f"Expires {card.expires_at:%Y-%m-%d %H:%M} UTC · " if card.expires_at else "")
                 + f"Payment {card.payment_id}"),
    ]
    return {"text": clip(head.replace("*", ""), 3000), "blocks": blocks}


def outcome_line(card: ApprovalCard, event: str) -> str:
    amount = _amount(card)
    by = f"<@{card.decided_by}>" if card.decided_by else ""
    if event == "approved":
        return f":white_check_mark: Approved by {by}. Charging *{amount}*…"
    if event == "approved_for_later":
        on = f" on {day(card.pay_on)}" if card.pay_on else " on its day"
        return f":white_check_mark: Approved by {by}. *{amount}* will be charged{on}, after the invoice is checked again."
    if event == "ended_scheduled":
        return (f":no_entry_sign: The scheduled payment will not be made: "
                f"{safe(card.reason or card.failure_message or '', 500)}. Nothing was charged.")
    if event in ("paid", "settled"):
        return f":white_check_mark: Approved by {by} and charged: *{amount}* to {safe(card.method, 80)}."
    if event == "processing":
        return f":bank: Approved by {by}: the bank debit of *{amount}* is on its way."
    if event in ("failed", "debit_failed"):
        return (f":x: Approved by {by}, but the charge of *{amount}* was declined: "
                f"{safe(card.failure_message or 'no reason given', 300)}")
    if event == "attention":
        return f":rotating_light: Approved by {by} and charged, but the billing system refused the record."
    if event == "rejected":
        return f":no_entry: Rejected by {by}: {safe(card.reason or '', 500)}. Nothing was charged."
    if event == "withdrawn":
        return f":leftwards_arrow_with_hook: Withdrawn by <@{card.requester}>. Nothing was charged."
    if event == "expired":
        return ":hourglass: Expired: nobody decided in time. Nothing was charged."
    if event == "canceled":
        return f":warning: Not charged: {safe(card.reason or card.failure_message or '', 500)}"
    return f"Now {event}."


def decided_message(card: ApprovalCard, event: str) -> dict[str, Any]:
    """Replaces an approver's request in place: no buttons any more, the outcome instead."""
    head = (f"<@{card.requester}> asked for approval of *{_amount(card)}* on invoice "
            f"*{safe(card.invoice_number, 150)}*.")
    line = outcome_line(card, event)
    blocks = [_md(head), _md(_summary(card, card.requester, None, None)), _md(line),
              _context(f"Payment {card.payment_id}")]
    return {"text": clip(f"{head} {line}".replace("*", ""), 3000), "blocks": blocks}


def requester_message(card: ApprovalCard, event: str) -> dict[str, Any]:
    locale = card.locale
    amount = _amount(card, locale)
    invoice = f"*{safe(card.invoice_number, 150)}* ({safe(card.profile_name, 200)})"
    if event == "rejected":
        head = (f":no_entry: <@{card.decided_by}> rejected your payment of *{amount}* on invoice {invoice}: "
                f"{safe(card.reason or '', 500)}. Nothing was charged; the invoice is free to pay again.")
    elif event == "expired":
        head = (f":hourglass: Your request to pay *{amount}* on invoice {invoice} expired: nobody approved it in "
                "time. Nothing was charged; press *Pay Now* to ask again.")
    elif event == "withdrawn":
        head = f":leftwards_arrow_with_hook: You withdrew your request to pay *{amount}* on invoice {invoice}."
    elif event == "approved_for_later":
        on = f"on {day(card.pay_on, locale)}" if card.pay_on else "on the day you chose"
        head = (f":white_check_mark: <@{card.decided_by}> approved your payment of *{amount}* on invoice {invoice}. "
                f"It will be charged {on} at 09:00 (the profile's time zone), after the invoice is checked again; "
                "nothing is charged before. `/invoices scheduled` shows it, with Cancel.")
    elif event == "canceled":
        by = f"<@{card.decided_by}> approved it, but it" if card.decided_by else "It"
        head = (f":warning: Your payment of *{amount}* on invoice {invoice} was not charged. {by} could not be "
                f"charged: {safe(card.reason or '', 500)}")
    else:
        head = f"Your payment of *{amount}* on invoice {invoice} is now {event}."
    return {"text": clip(head.replace("*", ""), 3000), "blocks": [_md(head), _context(f"Payment {card.payment_id}")]}


# -- the requester's modal ---------------------------------------------------------------
def awaiting_view(card: ApprovalCard, *, callback_id: str) -> dict[str, Any]:
    locale = card.locale
    approvers = card.approvers
    text = (f"*Waiting for approval*\n:scales: Nothing has been charged. Your payment of *{_amount(card, locale)}* "
            f"on invoice *{safe(card.invoice_number, 150)}* needs approval; we asked {people(approvers)}. "
            "You'll get a direct message when it is decided. The invoice is held for this payment meanwhile.")
    blocks: list[dict[str, Any]] = [_md(text)]
    if card.status == "awaiting_approval":
        blocks.append(ActionsBlock(block_id="withdraw", elements=[
            ButtonElement(text="Withdraw request", action_id=WITHDRAW, value=card.payment_id)]).to_dict())
    return View(type="modal", callback_id=callback_id, title="Pay invoice", close="Close",
                private_metadata=card.payment_id, blocks=blocks).to_dict()


_ENDED_TITLE = {"approved_for_later": "approved", "ended_scheduled": "ended"}


def ended_view(card: ApprovalCard, event: str, *, callback_id: str) -> dict[str, Any]:
    line = outcome_line(card, event)
    return View(type="modal", callback_id=callback_id, title="Pay invoice", close="Close",
                blocks=[_md(f"*Payment request {_ENDED_TITLE.get(event, event)}*\n{line}")]).to_dict()


def reason_view(payment_id: str) -> dict[str, Any]:
    return View(type="modal", callback_id=REJECT_CALLBACK, title="Reject payment", submit="Reject", close="Cancel",
                private_metadata=json.dumps({"payment": payment_id}), blocks=[
                    InputBlock(block_id=REASON_BLOCK, label="Why? (the requester sees this)",
                               element=PlainTextInputElement(action_id=REASON_FIELD, multiline=True,
                                                             max_length=500)),
                ]).to_dict()


# -- what a click answers ----------------------------------------------------------------
_REFUSALS = {
    Refusal.SELF_APPROVAL: "You asked for this payment, so you can't decide it yourself: another approver must.",
    Refusal.NOT_AN_APPROVER: "You're not one of the approvers of this request, so nothing was done.",
    Refusal.LOST_ACCESS: ("You no longer have access to this invoice's billing profile (or can't view invoices), "
                          "so you can't approve it. Nothing was charged."),
    Refusal.NOT_THE_REQUESTER: "Only the person who asked can withdraw this request.",
    Refusal.UNKNOWN_REQUEST: "I can't find this request any more. Nothing was charged.",
    Refusal.TRY_AGAIN: "I couldn't check the invoice right now, so nothing was decided. Try again in a minute.",
}


def click_answer(refused: Refusal | None, card: ApprovalCard | None) -> str:
    """The private reply to a click: what it did, or why it did nothing."""
    if refused is Refusal.ALREADY_DECIDED and card is not None:
        by = f" by <@{card.decided_by}>" if card.decided_by else ""
        return (f"This request was already decided{by}: it is *{card.status.replace('_', ' ')}* now. "
                "Your click changed nothing.")
    if refused is not None:
        return _REFUSALS.get(refused, "Nothing was done.")
    if card is None:
        return "Done."
    if card.status == "recorded":
        return f":white_check_mark: Approved and charged: {_amount(card)}."
    if card.status == "scheduled":
        on = f" on {day(card.pay_on)}" if card.pay_on else " on its day"
        return (f":white_check_mark: Approved. {_amount(card)} will be charged{on}, after the invoice is checked "
                "again; the requester has been told.")
    if card.status == "rejected":
        return "Rejected. The requester has been told why."
    if card.status == "withdrawn":
        return "Withdrawn. Nothing was charged."
    if card.status == "canceled":
        return f":warning: Not charged: {safe(card.failure_message or '', 500)} Both of you have been told."
    if card.status == "failed":
        return f":x: Approved, but the charge was declined: {safe(card.failure_message or '', 300)}"
    return f"Approved. The payment is {card.status.replace('_', ' ')}; the requester will hear the result."
