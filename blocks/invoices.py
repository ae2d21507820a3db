"""The `/invoices` message: a header with totals, one section per invoice, paging."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock, ButtonElement, ContextBlock, DividerBlock, HeaderBlock, MarkdownTextObject, SectionBlock,
)

from blocks.text import clip, day, link, safe
from bot.invoices import InvoiceListing, InvoiceRow, QueryKind, Totals, UnpayableMatch
from bot.money import Money

PAGE_SIZE = 20  # 20 rows + 5 framing blocks stays far below Slack's 50 blocks
PAY_NOW = "pay_now"
PAGE = "invoices_page"
_SECTION_LIMIT = 3000
_VALUE_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class Message:
    text: str  # the notification / accessibility fallback
    blocks: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def help_message() -> Message:
    text = (
        "*`/invoices`* lists the open, partly paid and past-due invoices of the billing profiles you may see, "
        "with a *Pay Now* button for each.\n"
        "• `/invoices overdue`: only past-due invoices\n"
        "• `/invoices <profile name or id>`: one billing profile's invoices\n"
        "• `/invoices <invoice number>`: find one invoice, e.g. `/invoices INV-2026-0042`\n"
        "• `/invoices notify`: where payment notifications go (admins: `/invoices notify #channel [profile]`)\n"
        "• `/invoices scheduled`: payments scheduled for later (*When to pay* in Pay Now), with Cancel\n"
        "• `/invoices reminders`: due-date digests (admins: `/invoices reminders <profile> daily|weekly|off [HH:MM]`)\n"
        "• `/invoices help`: this message\n"
        "Cards are charged through Stripe; a new card is added on Stripe's own page, never typed into Slack."
    )
    return Message("How to use /invoices", [SectionBlock(text=MarkdownTextObject(text=text)).to_dict()])


def notice_message(title: str, text: str) -> Message:
    return Message(f"{title}: {text}", [
        SectionBlock(text=MarkdownTextObject(text=clip(f"*{title}*\n{text}", _SECTION_LIMIT))).to_dict()])


# While the count and totals of a long list are worked out, the first page says so rather
# than show a partial sum (handlers/commands.py replaces the message once they are known).
COUNTING = "counting…"


def invoice_list_message(listing: InvoiceListing, *, page: int, today: dt.date) -> Message:
    rows = listing.rows
    if not rows:
        return _empty(listing)
    if not listing.complete:
        return _first_page(listing, today)
    pages = (len(rows) + PAGE_SIZE - 1) // PAGE_SIZE
    page = min(max(page, 0), pages - 1)
    shown = rows[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
    overdue = sum(1 for row in rows if row.overdue)

    locale = listing.locale
    totals = " · ".join(money.format(locale) for money in listing.totals)
    summary = f"*{len(rows)} invoice{'s' if len(rows) != 1 else ''} to pay*"
    if overdue:
        summary += f" · :warning: {overdue} overdue"
    summary += f"\nBalance due: *{totals}*"

    blocks = _framed(listing, summary, shown, page, today)
    first = page * PAGE_SIZE + 1
    context = f"Showing {first}–{first + len(shown) - 1} of {len(rows)} · Sorted by due date · `/invoices help`"
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=context)]).to_dict())
    if pages > 1:
        blocks.append(_paging(listing, page, last=pages - 1))
    fallback = f"{len(rows)} invoices to pay, balance due {totals}"
    return Message(clip(fallback, 3000), blocks)


def _first_page(listing: InvoiceListing, today: dt.date) -> Message:
    """The first page of a list longer than a page, before its count and totals are known:
    no number that could be wrong (neither the count, the overdue count nor a sum)."""
    shown = listing.rows[:PAGE_SIZE]
    if listing.totals_state is Totals.COUNTING:
        balance, fallback = f"_{COUNTING}_", f"More than {len(shown)} invoices to pay; balance due: {COUNTING}"
    else:
        balance = "_not counted just now (the billing system didn't answer in time): run `/invoices` again_"
        fallback = f"More than {len(shown)} invoices to pay; the balance due could not be counted"
    summary = f"*More than {len(shown)} invoices to pay*\nBalance due: {balance}"
    blocks = _framed(listing, summary, shown, 0, today)
    context = f"Showing 1–{len(shown)} · Sorted by due date · `/invoices help`"
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=context)]).to_dict())
    blocks.append(_paging(listing, 0, last=1))
    return Message(fallback, blocks)


def _framed(listing: InvoiceListing, summary: str, shown: list[InvoiceRow], page: int,
            today: dt.date) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        HeaderBlock(text=_title(listing)).to_dict(),
        SectionBlock(text=MarkdownTextObject(text=clip(summary, _SECTION_LIMIT))).to_dict(),
        DividerBlock().to_dict(),
    ]
    for index, row in enumerate(shown):
        blocks.append(_row(row, index, today, listing.query.as_text, listing.locale,
                           scheduled=row.invoice.id in listing.scheduled))
    return blocks


def _paging(listing: InvoiceListing, page: int, *, last: int) -> dict[str, Any]:
    buttons = []
    if page > 0:
        buttons.append(ButtonElement(text="◀ Previous", action_id=f"{PAGE}:prev",
                                     value=_page_value(listing, page - 1)))
    if page < last:
        buttons.append(ButtonElement(text="Next ▶", action_id=f"{PAGE}:next",
                                     value=_page_value(listing, page + 1)))
    return ActionsBlock(block_id="paging", elements=buttons).to_dict()


def _title(listing: InvoiceListing) -> str:
    if listing.query.kind is QueryKind.OVERDUE:
        return "Overdue invoices"
    if listing.query.kind is QueryKind.SEARCH:
        return clip(f"Invoices matching “{listing.query.text}”", 150)
    return "Invoices to pay"


def _row(row: InvoiceRow, index: int, today: dt.date, query: str, locale: str, *,
         scheduled: bool = False) -> dict[str, Any]:
    invoice = row.invoice
    due = f"Due {day(invoice.due_on, locale)}"
    if row.overdue:
        late = (today - invoice.due_on).days
        due = (f":warning: *Overdue* · was due {day(invoice.due_on, locale)}"
               + (f" ({late} days ago)" if late > 0 else ""))
    partly = " · partly paid" if invoice.is_partly_paid else ""
    if scheduled:
        partly += " · :calendar: payment scheduled (`/invoices scheduled`)"
    text = (
        f"*{safe(invoice.number, 120)}* · {safe(row.profile_name, 200)}\n"
        f"{due}{partly}\n"
        f"Total {invoice.total_money.format(locale)} · Balance due *{invoice.balance.format(locale)}* "
        f"({invoice.currency})"
        f" · {link(invoice.pdf_url, 'PDF')}"
    )
    section: dict[str, Any] = SectionBlock(block_id=f"invoice:{index}",
                                           text=MarkdownTextObject(text=clip(text, _SECTION_LIMIT))).to_dict()
    value = json.dumps({"invoice": invoice.id, "q": query}, separators=(",", ":"))
    if len(value) <= _VALUE_LIMIT:
        section["accessory"] = ButtonElement(text="Pay Now", action_id=f"{PAY_NOW}:{index}", value=value,
                                             style="primary").to_dict()
    return section


def _page_value(listing: InvoiceListing, page: int) -> str:
    return json.dumps({"q": listing.query.as_text, "p": page}, separators=(",", ":"))


def parse_pay_value(value: str | None) -> tuple[str, str]:
    """(invoice id, list query) from a Pay Now button; the id is checked again on use."""
    try:
        data = json.loads(value or "")
        return str(data.get("invoice", ""))[:200], str(data.get("q", ""))[:200]
    except (ValueError, TypeError, AttributeError):
        return (value or "")[:200], ""


def parse_page_value(value: str | None) -> tuple[str, int]:
    """Paging buttons carry the query and page; both are re-checked on use."""
    try:
        data = json.loads(value or "{}")
        return str(data.get("q", ""))[:200], max(0, min(int(data.get("p", 0)), 10_000))
    except (ValueError, TypeError, AttributeError):
        return "", 0


def _when(moment: dt.datetime, locale: str) -> str:
    """A moment in each reader's own time zone (Slack's date token), UTC as the fallback."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    fallback = f"{day(moment.astimezone(dt.UTC).date(), locale)} at {moment.astimezone(dt.UTC):%H:%M} UTC"
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def _unpayable_text(match: UnpayableMatch, locale: str) -> str:
    invoice, last = match.invoice, match.last_payment
    name = f"*{safe(invoice.number, 120)}* · {safe(match.profile_name, 200)}"
    total = invoice.total_money.format(locale)
    paid_by = ""
    if last is not None:
        amount = Money.from_minor(last.amount_minor, last.currency).format(locale)
        paid_by = f"{amount} with {safe(last.method_label, 80)} by <@{last.user_id}>"
    if invoice.status == "paid":
        text = f":white_check_mark: {name} is *paid* (total {total}), nothing is left to pay."
        if last is not None:
            text += f"\nLast payment: {paid_by}, {_when(last.updated_at, locale)}."
        return text
    if invoice.status == "processing":
        text = (f":bank: {name} is being paid by a bank debit that hasn't cleared yet (*Processing*), "
                "so it can't be paid again meanwhile.")
        if last is not None:
            text += f"\nDebit: {paid_by}, started {_when(last.created_at, locale)}."
        return text
    if invoice.status == "canceled":
        return f":no_entry_sign: {name} was *canceled*: there is nothing to pay (total was {total})."
    if invoice.status == "proforma":
        return (f":page_facing_up: {name} is a *pro forma* invoice ({total}): it is for information only and "
                "can't be paid.")
    return f"{name} can't be paid (status: {safe(invoice.status.replace('_', ' '), 40)})."


def _empty(listing: InvoiceListing) -> Message:
    if listing.unpayable:
        text = "\n\n".join(_unpayable_text(match, listing.locale) for match in listing.unpayable[:5])
        text += f"\n{link(listing.unpayable[0].invoice.pdf_url, 'Invoice PDF')} · `/invoices` lists what is open."
        fallback = "; ".join(f"{m.invoice.number}: {m.invoice.status}" for m in listing.unpayable[:5])
        return Message(clip(fallback, 3000), [SectionBlock(text=MarkdownTextObject(
            text=clip(text, _SECTION_LIMIT))).to_dict()])
    if listing.query.kind is QueryKind.SEARCH:
        text = (f"No payable invoice matches “{safe(listing.query.text, 200)}”. Try a billing profile name, "
                "an invoice number, or plain `/invoices`.")
    elif listing.query.kind is QueryKind.OVERDUE:
        text = ":white_check_mark: Nothing is overdue. Nice work!"
    else:
        text = ":tada: Nothing to pay right now: no open, partly paid or past-due invoices on your billing profiles."
    return Message(text.replace("*", ""), [SectionBlock(text=MarkdownTextObject(text=text)).to_dict()])
