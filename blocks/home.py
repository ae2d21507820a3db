"""The App Home tab, built from a `bot.home.HomeView`: pure functions, no I/O.

Slack allows 100 blocks on a Home tab and 3,000 characters per section: every section
here has a fixed maximum of rows and each row is clipped, so no data can exceed either.
At most: 1 title + 12 decisions (5 requests × 2) + 10 invoices + 8 waiting payments
+ 2 in flight + 4 recent + 43 settings (20 profiles × 2) + 1 footer = 81 blocks.

The buttons are those of the same action elsewhere, with the same action ids, so the same
listeners and the same checks on the server: Pay Now (`pay_now`), Approve / Reject (the
approver's DM), Withdraw (the requester's modal), Cancel (`/invoices scheduled`).
"""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock, ButtonElement, ContextBlock, DividerBlock, HeaderBlock, MarkdownTextObject, SectionBlock,
)

from blocks.approvals import APPROVE, REJECT, WITHDRAW, people
from blocks.invoices import PAY_NOW
from blocks.routes import _channel
from blocks.scheduling import cancel_button, scheduled_summary
from blocks.text import clip, day, safe
from bot.approvals import ApprovalCard, Rule
from bot.home import HomeView
from bot.invoices import InvoiceRow
from bot.money import Money
from bot.reminders import ReminderRow
from bot.summaries import PaymentSummary

SEE_ALL = "home_see_all"
CHANGE_ROUTE = "home_route"
ROUTE_CALLBACK = "home_route_modal"
ROUTE_BLOCK, ROUTE_FIELD = "route_channel", "channel"
CHANGE_RULE = "home_rule"
RULE_CALLBACK = "home_rule_modal"
THRESHOLD_BLOCK, APPROVERS_BLOCK = "rule_threshold", "rule_approvers"
CHANGE_REMINDERS = "home_reminders"
REMINDERS_CALLBACK = "home_reminders_modal"
CADENCE_BLOCK, TIME_BLOCK = "reminder_cadence", "reminder_time"
RECEIPT = "home_receipt"
MAX_BLOCKS = 100
_ROUTES_SHOWN = 20
_SECTION = 3000

_STATUS = {
    "recorded": ":white_check_mark: Paid",
    "processing": ":bank: Bank debit processing",
    "debiting": ":bank: Bank debit processing",
    "failed": ":x: Failed",
    "needs_attention": ":warning: Needs attention (our team is on it)",
    "refunded": ":leftwards_arrow_with_hook: Refunded",
    "requires_action": ":lock: Waiting for authentication",
    "canceled": "Canceled",
    "created": ":hourglass_flowing_sand: In progress",
    "confirming": ":hourglass_flowing_sand: In progress",
    "charged": ":hourglass_flowing_sand: Charged, being recorded",
    "awaiting_approval": ":scales: Waiting for approval (nothing charged)",
    "approved": ":hourglass_flowing_sand: Approved, being charged",
    "rejected": ":no_entry: Rejected",
    "expired": ":hourglass: Approval expired",
    "withdrawn": "Withdrawn",
    "scheduled": ":calendar: Approved, waiting for its day",
    "scheduled": ":calendar: Approved; paid on its day (nothing charged yet)",
}


def _section(text: str, **kw: Any) -> dict[str, Any]:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, _SECTION)), **kw).to_dict()


def _context(text: str) -> dict[str, Any]:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, 2000))]).to_dict()


def _header(text: str) -> dict[str, Any]:
    return HeaderBlock(text=clip(text, 150)).to_dict()


def home_view(home: HomeView) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [_header("invoicebot")]
    if home.denied is not None:
        blocks.append(_section(f"*{home.denied.title}*\n{home.denied.text}"))
        return {"type": "home", "blocks": blocks}
    blocks += _to_decide(home)
    blocks += _due(home)
    blocks += _waiting(home)
    blocks += _in_flight(home)
    blocks += _recent(home)
    if home.routes is not None:
        blocks += _settings(home)
    blocks.append(_context("`/invoices help` lists everything the bot does."))
    return {"type": "home", "blocks": blocks[:MAX_BLOCKS]}


def _due(home: HomeView) -> list[dict[str, Any]]:
    locale = home.locale
    if not home.invoice_count:
        return [_section(":tada: *Nothing to pay right now*: no open, partly paid or past-due invoices on your "
                         "billing profiles.")]
    totals = " · ".join(m.format(locale) for m in home.totals)
    count = home.invoice_count
    # More invoices than the tab reads (docs/home.md, "Reads"): what it counted is a floor.
    at_least = "" if home.complete else "at least "
    summary = f"*{'At least ' if not home.complete else ''}{count} invoice{'s' if count != 1 else ''} to pay*"
    if home.overdue_count:
        summary += f" · :warning: {'' if home.overdue_complete else 'at least '}{home.overdue_count} overdue"
    else:
        summary += " · none overdue"
    blocks = [_header("Balance due"), _section(f"{summary}\nBalance due: {at_least}*{totals}*"),
              DividerBlock().to_dict()]
    for index, row in enumerate(home.invoices):
        blocks.append(_invoice(row, index, home))
    more = count - len(home.invoices)
    if not home.complete:
        label = "See all"
    else:
        label = f"See all {count}" if more > 0 else "See the list"
    blocks.append(ActionsBlock(block_id="see_all", elements=[
        ButtonElement(text=label, action_id=SEE_ALL, value="all")]).to_dict())
    if not home.complete:
        blocks.append(_context(f"…and more: the tab counts the first {count} invoices (soonest due first). "
                               f"*{label}* sends you the full list with its totals, as `/invoices` does."))
    elif more > 0:
        blocks.append(_context(f"…and {more} more. *{label}* sends you the full list, as `/invoices` does."))
    return blocks


def _invoice(row: InvoiceRow, index: int, home: HomeView) -> dict[str, Any]:
    invoice, locale = row.invoice, home.locale
    due = (f":warning: *Overdue* · was due {day(invoice.due_on, locale)}" if row.overdue
           else f"Due {day(invoice.due_on, locale)}")
    text = (f"*{safe(invoice.number, 120)}* · {safe(row.profile_name, 200)}\n{due}\n"
            f"Balance due *{invoice.balance.format(locale)}* ({invoice.currency})")
    section = _section(text, block_id=f"home_invoice:{index}")
    value = json.dumps({"invoice": invoice.id, "q": ""}, separators=(",", ":"))
    if len(value) <= 2000:
        # The same action as the /invoices list: the same modal, the same checks on the server.
        section["accessory"] = ButtonElement(text="Pay Now", action_id=f"{PAY_NOW}:{index}", value=value,
                                             style="primary").to_dict()
    return section


def _payment_line(payment: PaymentSummary, locale: str) -> str:
    amount = Money.from_minor(payment.amount_minor, payment.currency).format(locale)
    status = _STATUS.get(payment.status, safe(payment.status.replace("_", " "), 40))
    if payment.status == "recorded" and payment.invoice_status_after == "partially_paid":
        status = ":white_check_mark: Paid (invoice partially paid)"
    when = day(payment.created_at.date(), locale)
    return (f"{status} · *{safe(payment.invoice_number, 120)}* · {amount} with {safe(payment.method_label, 80)}"
            f" · {when}")


def _in_flight(home: HomeView) -> list[dict[str, Any]]:
    if not home.in_flight:
        return []
    lines = [_payment_line(p, home.locale) for p in home.in_flight]
    return [_header("Payments in flight"), _section("\n".join(lines))]


def _recent(home: HomeView) -> list[dict[str, Any]]:
    if not home.recent:
        return [_header("Recent payments"), _section("You haven't paid an invoice with invoicebot yet.")]
    blocks = [_header("Recent payments"), _section("\n".join(_payment_line(p, home.locale) for p in home.recent))]
    # The receipt the Pay Now modal showed (blocks.pay_modal.payment_view), for each recorded payment.
    receipts = [ButtonElement(text=clip(f"Receipt {_plain(p.invoice_number)}", 75), action_id=f"{RECEIPT}:{index}",
                              value=p.id[:2000])
                for index, p in enumerate(home.recent) if p.status == "recorded"]
    if receipts:
        blocks.append(ActionsBlock(block_id="home_receipts", elements=receipts[:25]).to_dict())
    shown = len(home.recent) + len(home.in_flight)
    if home.payment_count > shown:
        blocks.append(_context(f"Your {shown} newest of {home.payment_count} payments. "
                               "`/invoices <invoice number>` tells what became of any invoice."))
    return blocks


def _plain(text: str) -> str:
    """For a button's plain text: never anything that reads like a mention or markup."""
    return text.translate({ord(c): None for c in "<>&*_~`"})


def _to_decide(home: HomeView) -> list[dict[str, Any]]:
    """The approver's requests: the DM's Approve / Reject (same action ids, same checks)."""
    if not home.to_decide:
        return []
    blocks = [_header("Waiting for your decision")]
    for index, card in enumerate(home.to_decide):
        expires = f" · expires {card.expires_at:%Y-%m-%d %H:%M} UTC" if card.expires_at else ""
        text = (f":raised_hand: <@{card.requester}> asks to pay *{card.amount.format(home.locale)}* on invoice "
                f"*{safe(card.invoice_number, 120)}* ({safe(card.profile_name, 200)}) with "
                f"{safe(card.method, 80)}{expires}")
        blocks.append(_section(text, block_id=f"home_decide:{index}"))
        if len(card.payment_id) <= 2000:
            blocks.append(ActionsBlock(block_id=f"home_decision:{index}", elements=[
                ButtonElement(text="Approve", action_id=APPROVE, value=card.payment_id, style="primary"),
                ButtonElement(text="Reject", action_id=REJECT, value=card.payment_id, style="danger"),
            ]).to_dict())
    more = home.to_decide_count - len(home.to_decide)
    if more > 0:
        blocks.append(_context(f"…and {more} more waiting for your decision: each is in your direct messages "
                               "with the same buttons."))
    return blocks


def _waiting(home: HomeView) -> list[dict[str, Any]]:
    """The person's own payments not made yet: waiting for approval (Withdraw) or scheduled (Cancel)."""
    if not home.my_requests and not home.scheduled:
        return []
    locale = home.locale
    blocks = [_header("Your payments waiting")]
    for index, card in enumerate(home.my_requests):
        text = (f":scales: *Waiting for approval* (nothing charged): *{card.amount.format(locale)}* on invoice "
                f"*{safe(card.invoice_number, 120)}* ({safe(card.profile_name, 200)}) · asked {people(card.approvers)}")
        section = _section(text, block_id=f"home_request:{index}")
        if len(card.payment_id) <= 2000:
            section["accessory"] = ButtonElement(text="Withdraw", action_id=WITHDRAW, value=card.payment_id).to_dict()
        blocks.append(section)
    for index, scheduled in enumerate(home.scheduled):
        section = _section(f":calendar: *Scheduled*: {scheduled_summary(scheduled)}",
                           block_id=f"home_scheduled:{index}")
        section["accessory"] = cancel_button(scheduled)
        blocks.append(section)
    more = [f"{n} more waiting for approval" for n in [home.my_request_count - len(home.my_requests)] if n > 0]
    more += [f"{n} more scheduled (`/invoices scheduled` lists them)"
             for n in [home.scheduled_count - len(home.scheduled)] if n > 0]
    if more:
        blocks.append(_context("…and " + "; ".join(more) + "."))
    return blocks


def _rule_text(rule: Rule | None, locale: str) -> str:
    if rule is None or rule.threshold is None:
        return "no approval needed"
    who = people(rule.approvers) if rule.approvers else "_nobody named yet_"
    return f"payments of *{rule.threshold.format(locale)}* or more need approval by {who}"


def _settings(home: HomeView) -> list[dict[str, Any]]:
    routes = home.routes or []
    blocks = [_header("Where payment notices go, approvals and reminders"),
              _context("You are a billing-profile admin: per profile, the channel of its payment notices, its "
                       "approval rule and its due-date reminders.")]
    for index, row in enumerate(routes[:_ROUTES_SHOWN]):
        where = _channel(row.channel) + (" (default)" if row.is_default else "")
        reminders = home.reminders.get(row.profile_id)
        lines = [f"*{safe(row.profile_name, 200)}*: {where}"]
        if row.profile_id in home.rules:
            lines.append(f":scales: Approval: {_rule_text(home.rules[row.profile_id], home.locale)}")
        if reminders is not None:
            lines.append(f":alarm_clock: Reminders: {safe(reminders.describe(), 300)}")
        section = _section("\n".join(lines), block_id=f"home_route:{index}")
        if len(row.profile_id) <= 2000:
            section["accessory"] = ButtonElement(text="Change channel", action_id=f"{CHANGE_ROUTE}:{index}",
                                                 value=row.profile_id).to_dict()
        blocks.append(section)
        buttons = []
        if row.profile_id in home.rules and len(row.profile_id) <= 2000:
            buttons.append(ButtonElement(text="Approval rule", action_id=f"{CHANGE_RULE}:{index}",
                                         value=row.profile_id))
        if reminders is not None and len(row.profile_id) <= 2000:
            buttons.append(ButtonElement(text="Reminders", action_id=f"{CHANGE_REMINDERS}:{index}",
                                         value=row.profile_id))
        if buttons:
            blocks.append(ActionsBlock(block_id=f"home_settings:{index}", elements=buttons).to_dict())
    total = max(home.admin_profile_count, len(routes))
    if total > _ROUTES_SHOWN:
        blocks.append(_context(f"…and {total - _ROUTES_SHOWN} more billing profiles: "
                               "`/invoices notify #channel <profile name>`, `/invoices approvals` and "
                               "`/invoices reminders` change those."))
    return blocks


def route_modal(profile_id: str, profile_name: str, current: str | None) -> dict[str, Any]:
    """Choose the channel of one profile's notices; submitted through RoutingService.set."""
    element: dict[str, Any] = {"type": "conversations_select", "action_id": ROUTE_FIELD,
                               "filter": {"include": ["public", "private"], "exclude_bot_users": True},
                               "placeholder": {"type": "plain_text", "text": "Pick a channel"}}
    if current and current[:1] in ("C", "G"):
        element["initial_conversation"] = current
    return {
        "type": "modal", "callback_id": ROUTE_CALLBACK, "private_metadata": profile_id[:3000],
        "title": {"type": "plain_text", "text": "Payment notices"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _section(f"Where should payment notices of *{safe(profile_name, 200)}* go?"),
            {"type": "input", "block_id": ROUTE_BLOCK, "label": {"type": "plain_text", "text": "Channel"},
             "element": element},
            _context("Private channel? Invite me first: `/invite @invoicebot` in the channel."),
        ],
    }


def parse_route_value(value: str | None) -> str:
    return (value or "")[:200]


def rule_modal(rule: Rule, locale: str, *, problem: str | None = None, typed: str | None = None) -> dict[str, Any]:
    """A profile's approval rule: the threshold (empty: none) and the approvers; saved through
    ApprovalService.set_threshold / set_approvers, as `/invoices approvals` and `approvers`.
    Shown again with the service's `problem` and what was `typed` when it refused a change."""
    threshold: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "max_length": 40,
                                 "placeholder": {"type": "plain_text", "text": "e.g. 5000 (empty: no approval)"}}
    if typed is not None:
        if typed:
            threshold["initial_value"] = clip(typed, 40)
    elif rule.threshold is not None:
        threshold["initial_value"] = clip(rule.threshold.format(locale), 40)
    approvers: dict[str, Any] = {"type": "multi_users_select", "action_id": "users",
                                 "placeholder": {"type": "plain_text", "text": "Pick the approvers"}}
    if rule.approvers:
        approvers["initial_users"] = list(rule.approvers)[:100]
    return {
        "type": "modal", "callback_id": RULE_CALLBACK, "private_metadata": rule.profile_id[:3000],
        "title": {"type": "plain_text", "text": "Approval rule"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            *([_section(f":warning: *Not saved:* {safe(problem, 1000)}")] if problem else []),
            _section(f"Payments of *{safe(rule.profile_name or rule.profile_id, 200)}* from which amount need "
                     "another person's approval, and whose?"),
            {"type": "input", "block_id": THRESHOLD_BLOCK, "optional": True, "element": threshold,
             "label": {"type": "plain_text", "text": "Approval needed from (amount)"}},
            {"type": "input", "block_id": APPROVERS_BLOCK, "optional": True, "element": approvers,
             "label": {"type": "plain_text", "text": "Approvers"}},
            _context("Nobody approves their own payment. A change applies to new requests only; the profile's "
                     "notification channel hears of it."),
        ],
    }


def reminders_modal(row: ReminderRow) -> dict[str, Any]:
    """A profile's due-date digest: daily, weekly (on the profile's weekday, Monday unless
    `/invoices reminders` set another) or off, at a time; saved through
    ReminderService.configure, as `/invoices reminders <profile> daily|weekly|off HH:MM`."""
    options = {"daily": "Every day", "weekly": f"Every {row.weekday_name}", "off": "Off"}

    def option(value: str) -> dict[str, Any]:
        return {"text": {"type": "plain_text", "text": options[value]}, "value": value}

    return {
        "type": "modal", "callback_id": REMINDERS_CALLBACK, "private_metadata": row.profile_id[:3000],
        "title": {"type": "plain_text", "text": "Due-date reminders"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _section(f"When should *{safe(row.profile_name, 200)}*'s channel hear what is due within "
                     f"{row.days_ahead} days and what is overdue?"),
            {"type": "input", "block_id": CADENCE_BLOCK, "label": {"type": "plain_text", "text": "Digest"},
             "element": {"type": "static_select", "action_id": "cadence",
                         "options": [option(v) for v in options],
                         "initial_option": option(row.cadence if row.cadence in options else "off")}},
            {"type": "input", "block_id": TIME_BLOCK, "label": {"type": "plain_text", "text": "At"},
             "element": {"type": "timepicker", "action_id": "time", "initial_time": row.local_time}},
            _context(clip(f"In the profile's time zone ({row.time_zone}). Nothing is sent when nothing is due.",
                          2000)),
        ],
    }
