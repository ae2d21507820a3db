"""Scheduled payments in Slack: *when to pay* in the Pay Now modal, the confirmation, the
payer's DMs and `/invoices scheduled`, each scheduled payment with **Cancel**."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock, ButtonElement, ContextBlock, DatePickerElement, InputBlock, MarkdownTextObject, Option,
    SectionBlock, StaticSelectElement,
)
from slack_sdk.models.views import View

from blocks.approvals import people
from blocks.invoices import Message
from blocks.reminders import DIGEST_PAY_NOW
from blocks.text import clip, day, safe
from bot.billing import Invoice
from bot.scheduled_payments import DATE_FIELD, RUN_AT, WHEN_FIELD, Scheduled, allowed_dates

CANCEL_SCHEDULED = "cancel_scheduled_payment"
_SECTION = 3000


def when_blocks(invoice: Invoice, *, today: dt.date, locale: str) -> list[Any]:
    """*When to pay*: now (the default), on the due date, or a chosen date, with the limits."""
    first, last = allowed_dates(invoice.due_on, today)
    now = Option(text="Now", value="now")
    options = [now]
    if invoice.due_on >= first:
        options.append(Option(text=clip(f"On the due date, {day(invoice.due_on, locale)}", 75), value="due"))
    options.append(Option(text="On the date below", value="date"))
    return [
        InputBlock(block_id=WHEN_FIELD, label="When to pay", optional=True,
                   element=StaticSelectElement(action_id=WHEN_FIELD, options=options, initial_option=now)),
        InputBlock(block_id=DATE_FIELD, label="Pay on", optional=True,
                   element=DatePickerElement(action_id=DATE_FIELD, placeholder="Choose a date"),
                   hint=clip(f"For a later payment: from {day(first, locale)} to {day(last, locale)} (30 days after "
                             f"the due date), at {RUN_AT:%H:%M} in the billing profile's time zone.", 150)),
    ]


def _when(s: Scheduled) -> str:
    return f"{day(s.pay_on, s.locale)} at {RUN_AT:%H:%M} ({safe(s.time_zone, 64)})"


def _summary(s: Scheduled) -> str:
    return (f"*{s.amount.format(s.locale)}* on invoice *{safe(s.invoice_number, 120)}* "
            f"({safe(s.profile_name, 200)}) with {safe(s.method_label, 80)}, on {_when(s)}")


def _cancel(s: Scheduled) -> ButtonElement:
    return ButtonElement(text="Cancel payment", action_id=CANCEL_SCHEDULED, value=s.key[:2000], style="danger",
                         confirm={"title": {"type": "plain_text", "text": "Cancel this payment?"},
                                  "text": {"type": "mrkdwn", "text": clip(f"{_summary(s)} will not be made.", 300)},
                                  "confirm": {"type": "plain_text", "text": "Cancel payment"},
                                  "deny": {"type": "plain_text", "text": "Keep it"}})


def cancel_button(s: Scheduled) -> dict[str, Any]:
    """The one Cancel of a scheduled payment (`/invoices scheduled`, the DM, the Home tab)."""
    return _cancel(s).to_dict()


def scheduled_summary(s: Scheduled) -> str:
    return _summary(s)


def scheduled_view(s: Scheduled, *, callback_id: str, title: str) -> dict[str, Any]:
    """The modal's confirmation of a scheduled payment, with Cancel."""
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=clip(f":calendar: *Payment scheduled*\n{_summary(s)}.", _SECTION))),
        *([SectionBlock(text=MarkdownTextObject(text=clip(_approval_note(s), _SECTION)))] if s.approvers else []),
        ContextBlock(elements=[MarkdownTextObject(text=(
            "On the day it is checked again: if the balance is lower it pays the balance, if the invoice is paid it "
            "is cancelled, and you get a direct message either way. Nothing is charged before then."))]),
        ActionsBlock(block_id="scheduled", elements=[_cancel(s)]),
    ]
    return View(type="modal", callback_id=callback_id, title=title, close="Close", blocks=blocks).to_dict()


def _approval_note(s: Scheduled) -> str:
    return (f":scales: *Needs approval first*: we asked {people(list(s.approvers))}. Approved before its day, it is "
            "charged on that day; not approved by then, nothing is charged and you are told. The invoice is held "
            "for this payment while the request waits.")


def scheduled_words(event: str, s: Scheduled | None, extra: dict[str, Any]) -> dict[str, Any]:
    """The payer's DM about their scheduled payment (`event`: scheduled, cancelled, lowered,
    late, no_access, gone, paid, changed, method, busy, declined, approval, not_approved, failed)."""
    assert s is not None
    summary = _summary(s)
    pay_again = False
    if event == "scheduled":
        text = f":calendar: You scheduled a payment: {summary}." + (f"\n{_approval_note(s)}" if s.approvers else "")
    elif event == "cancelled":
        by = extra.get("by")
        text = (f":no_entry_sign: Your scheduled payment was cancelled{f' by <@{by}>' if by and by != s.user_id else ''}"
                f": {summary}. Nothing was charged.")
    elif event == "lowered":
        from bot.money import Money  # noqa: PLC0415

        paying = Money.from_minor(int(extra["paying"]), s.amount.currency).format(s.locale)
        text = (f":information_source: The balance of *{safe(s.invoice_number, 120)}* is now lower than your "
                f"scheduled {s.amount.format(s.locale)}, so your scheduled payment pays the balance, *{paying}*.")
    elif event == "failed" and extra.get("started"):
        text = (f":warning: Your scheduled payment ran into trouble after it started: {summary}. It is not lost: "
                "it goes on by itself, and its result comes here and in the billing channel. *Please don't pay "
                "this invoice again until you hear.*")
    elif event == "failed":
        text = (f":x: Your scheduled payment could not be made: {summary}. We tried for about an hour and a half, "
                "but the billing system or Stripe did not answer. Nothing was charged; press *Pay Now* to pay it.")
        pay_again = True
    else:
        reasons = {
            "late": "it could not run on its day (our servers were down for more than a day), so it was not made "
                    "late without asking you",
            "no_access": "you no longer have access to this invoice's billing profile",
            "gone": "the invoice no longer exists in the billing system",
            "paid": "the invoice has nothing left to pay (it was paid another way)",
            "changed": "the invoice changed (its currency) since you scheduled it",
            "method": "the payment method is no longer saved with Stripe, or has expired",
            "busy": "another payment of this invoice was in progress",
            "declined": "the payment did not go through (see the message above); pay with another method",
            "approval": "payments of this amount now need an approver's approval: pay now to ask for it",
            "not_approved": "nobody approved it before its day; pay now, or schedule it again, to ask again",
        }
        text = (f":x: Your scheduled payment was not made: {summary}. Why: {reasons[event]}." if event == "declined"
                else f":x: Your scheduled payment was cancelled, nothing was charged: {summary}. Why: {reasons[event]}.")
        pay_again = event in {"late", "method", "busy", "changed", "declined", "approval", "not_approved"}
    blocks: list[dict[str, Any]] = [SectionBlock(text=MarkdownTextObject(text=clip(text, _SECTION))).to_dict()]
    if event == "scheduled":
        blocks.append(ActionsBlock(block_id="scheduled", elements=[_cancel(s)]).to_dict())
    if pay_again:
        blocks.append(ActionsBlock(block_id="pay_again", elements=[ButtonElement(
            text="Pay Now", action_id=f"{DIGEST_PAY_NOW}:0", style="primary",
            value=json.dumps({"invoice": s.invoice_id}, separators=(",", ":")))]).to_dict())
    return {"text": clip(text, 3000), "blocks": blocks}


def scheduled_list_message(rows: list[Scheduled]) -> Message:
    if not rows:
        return Message("No scheduled payments", [SectionBlock(text=MarkdownTextObject(text=(
            "*No scheduled payments* for the billing profiles you may see. In *Pay Now*, choose *When to pay* to "
            "schedule one."))).to_dict()])
    blocks: list[dict[str, Any]] = [SectionBlock(text=MarkdownTextObject(
        text=f"*{len(rows)} scheduled payment{'s' if len(rows) != 1 else ''}*")).to_dict()]
    for index, s in enumerate(rows[:40]):
        section = SectionBlock(block_id=f"scheduled:{index}", text=MarkdownTextObject(
            text=clip(f"{_summary(s)} · scheduled by <@{s.user_id}>", _SECTION))).to_dict()
        section["accessory"] = _cancel(s).to_dict()
        blocks.append(section)
    if len(rows) > 40:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"…and {len(rows) - 40} more")]).to_dict())
    return Message(f"{len(rows)} scheduled payments", blocks)
