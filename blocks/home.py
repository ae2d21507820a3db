"""The App Home tab, built from a `bot.home.HomeView`: pure functions, no I/O.

Slack allows 100 blocks on a Home tab and 3,000 characters per section: every section
here has a fixed maximum of rows and each row is clipped, so no data can exceed either.
"""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock, ButtonElement, ContextBlock, DividerBlock, HeaderBlock, MarkdownTextObject, SectionBlock,
)

from blocks.invoices import PAY_NOW
from blocks.routes import _channel
from blocks.text import clip, day, safe
from bot.home import HomeView
from bot.invoices import InvoiceRow
from bot.money import Money
from bot.summaries import PaymentSummary

SEE_ALL = "home_see_all"
CHANGE_ROUTE = "home_route"
ROUTE_CALLBACK = "home_route_modal"
ROUTE_BLOCK, ROUTE_FIELD = "route_channel", "channel"
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
    blocks += _due(home)
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
    summary = f"*{home.invoice_count} invoice{'s' if home.invoice_count != 1 else ''} to pay*"
    summary += f" · :warning: {home.overdue_count} overdue" if home.overdue_count else " · none overdue"
    blocks = [_header("Balance due"), _section(f"{summary}\nBalance due: *{totals}*"), DividerBlock().to_dict()]
    for index, row in enumerate(home.invoices):
        blocks.append(_invoice(row, index, home))
    more = home.invoice_count - len(home.invoices)
    label = f"See all {home.invoice_count}" if more > 0 else "See the list"
    blocks.append(ActionsBlock(block_id="see_all", elements=[
        ButtonElement(text=label, action_id=SEE_ALL, value="all")]).to_dict())
    if more > 0:
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
    shown = len(home.recent) + len(home.in_flight)
    if home.payment_count > shown:
        blocks.append(_context(f"Your {shown} newest of {home.payment_count} payments. "
                               "`/invoices <invoice number>` tells what became of any invoice."))
    return blocks


def _settings(home: HomeView) -> list[dict[str, Any]]:
    routes = home.routes or []
    blocks = [_header("Where payment notices go"),
              _context("You are a billing-profile admin: choose the channel of each profile's payment notices.")]
    for index, row in enumerate(routes[:_ROUTES_SHOWN]):
        where = _channel(row.channel) + (" (default)" if row.is_default else "")
        section = _section(f"*{safe(row.profile_name, 200)}*: {where}", block_id=f"home_route:{index}")
        if len(row.profile_id) <= 2000:
            section["accessory"] = ButtonElement(text="Change", action_id=f"{CHANGE_ROUTE}:{index}",
                                                 value=row.profile_id).to_dict()
        blocks.append(section)
    if len(routes) > _ROUTES_SHOWN:
        blocks.append(_context(f"…and {len(routes) - _ROUTES_SHOWN} more billing profiles: "
                               "`/invoices notify #channel <profile name>` changes those."))
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
