"""The due-date digest posted to a billing profile's channel, and `/invoices reminders`.

Slack's limits: at most 50 blocks a message, 3,000 characters a section, 150 a header. A
digest shows at most `MAX_LINES` invoices (overdue first, then by due date), each with Pay
Now; beyond that it says how many more there are (the totals count them all) and points to
`/invoices <profile>`, which pages through every one of them."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ButtonElement, ContextBlock, DividerBlock, HeaderBlock, MarkdownTextObject, SectionBlock,
)

from blocks.invoices import Message
from blocks.text import clip, day, link, safe
from bot.reminders import Digest, DigestLine, ReminderRow

MAX_LINES = 20  # 20 invoices + 6 framing blocks: far below Slack's 50
# Pay Now from a channel digest: the modal opens for whoever clicks (their access checked
# then), and the channel message is never redrawn for one person (handlers/scheduling.py).
DIGEST_PAY_NOW = "digest_pay_now"
_SECTION = 3000


def digest_message(digest: Digest) -> dict[str, Any]:
    locale = digest.locale
    count = len(digest.lines)
    totals = " · ".join(m.format(locale) for m in digest.totals)
    summary = (f"*{count} invoice{'s' if count != 1 else ''}* due by {day(digest.today + dt.timedelta(days=digest.days_ahead), locale)}"
               f" or overdue · balance *{totals}*")
    if digest.overdue_count:
        summary += (f"\n:warning: {digest.overdue_count} overdue: "
                    + " · ".join(m.format(locale) for m in digest.overdue_totals))
    blocks: list[dict[str, Any]] = [
        HeaderBlock(text=clip(f"Coming due: {digest.profile_name}", 150)).to_dict(),
        SectionBlock(text=MarkdownTextObject(text=clip(summary, _SECTION))).to_dict(),
        DividerBlock().to_dict(),
    ]
    for index, line in enumerate(digest.lines[:MAX_LINES]):
        blocks.append(_line(line, index, digest.today, locale))
    hidden = count - MAX_LINES
    if hidden > 0:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(
            f"…and {hidden} more invoice{'s' if hidden != 1 else ''} (counted in the totals above): "
            f"`/invoices {safe(digest.profile_name, 200)}` lists them all.", _SECTION))]).to_dict())
    cadence = "Daily" if digest.cadence == "daily" else "Weekly"
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=(
        f"{cadence} reminder · admins change it with `/invoices reminders <profile> daily|weekly|off [HH:MM]`"))])
        .to_dict())
    text = f"{count} invoices of {digest.profile_name} due soon or overdue, balance {totals}"
    return Message(clip(text, 3000), blocks).as_dict()


def _line(line: DigestLine, index: int, today: dt.date, locale: str) -> dict[str, Any]:
    invoice = line.invoice
    if line.overdue:
        late = (today - invoice.due_on).days
        due = f":warning: *Overdue* · was due {day(invoice.due_on, locale)}" + (
            f" ({late} days ago)" if late > 0 else "")
    else:
        left = (invoice.due_on - today).days
        due = f"Due {day(invoice.due_on, locale)}" + (" (today)" if left == 0 else f" (in {left} days)")
    scheduled = " · :calendar: payment scheduled" if line.scheduled else ""
    text = (f"*{safe(invoice.number, 120)}* · {due}{scheduled}\n"
            f"Balance due *{invoice.balance.format(locale)}* ({invoice.currency}) · {link(invoice.pdf_url, 'PDF')}")
    section: dict[str, Any] = SectionBlock(block_id=f"digest:{index}",
                                           text=MarkdownTextObject(text=clip(text, _SECTION))).to_dict()
    section["accessory"] = ButtonElement(text="Pay Now", action_id=f"{DIGEST_PAY_NOW}:{index}",
                                         value=json.dumps({"invoice": invoice.id}, separators=(",", ":"))[:2000],
                                         style="primary").to_dict()
    return section


def reminders_message(rows: list[ReminderRow], *, title: str = "Due-date reminders") -> Message:
    lines = [f"*{title}*"]
    for row in rows[:40]:
        nxt = f" · next {row.next_at.astimezone(ZoneInfo(row.time_zone)):%a %Y-%m-%d %H:%M}" if row.next_at else ""
        lines.append(f"• {safe(row.profile_name, 120)}: {row.describe()}{nxt}")
    if len(rows) > 40:
        lines.append(f"…and {len(rows) - 40} more billing profiles")
    help_text = ("Billing-profile admins: `/invoices reminders <profile> daily|weekly|off [<weekday>] [HH:MM] "
                 "[<N> days] [<time zone>]`, e.g. `/invoices reminders Acme weekly friday 08:30 14 days "
                 "Europe/Berlin` (by default weekly, Mondays at 09:00, 7 days ahead). The time zone is the "
                 "profile's: scheduled payments of its invoices run at 09:00 there too. The digest goes to the "
                 "profile's notification channel (`/invoices notify`).")
    return Message(clip(title, 3000), [
        SectionBlock(text=MarkdownTextObject(text=clip("\n".join(lines), _SECTION))).to_dict(),
        ContextBlock(elements=[MarkdownTextObject(text=help_text)]).to_dict(),
    ])
