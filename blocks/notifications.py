"""Messages for the finance channel."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

from blocks.text import clip, safe
from bot.money import Money
from storage.models import Payment


def payment_notice(payment: Payment, event: str, *, locale: str = "en_US") -> dict[str, Any]:
    """A channel notice, in the workspace's locale (many people read it)."""
    amount = Money.from_minor(payment.amount_minor, payment.currency).format(locale)
    who = f"<@{payment.user_id}>"
    invoice = f"*{safe(payment.invoice_number, 150)}* ({safe(payment.billing_profile_name, 200)})"
    method = safe(payment.method_label, 80)
    remaining = (Money.from_minor(payment.balance_after_minor, payment.currency)
                 if payment.balance_after_minor is not None else None)
    if event in ("paid", "settled"):
        if payment.invoice_status_after == "paid" or (remaining is not None and remaining.amount == 0):
            after = "The invoice is now *paid in full*."
        elif remaining is not None:
            after = f"*{remaining.format(locale)}* remains due."
        else:
            after = ""
        if event == "paid":
            fee = ""
            if payment.card_fee_minor:
                fee = (f" A card fee of {Money.from_minor(payment.card_fee_minor, payment.currency).format(locale)} "
                       "is billed separately.")
            head = f":white_check_mark: {who} paid *{amount}* on invoice {invoice} with {method}. {after}{fee}"
        else:
            head = (f":white_check_mark: The bank debit of *{amount}* by {who} on invoice {invoice} from {method} "
                    f"has cleared. {after}")
    elif event == "processing":
        head = (f":bank: {who} started a bank debit of *{amount}* on invoice {invoice} from {method}. "
                "It takes a few days to clear; the invoice shows *Processing* until then.")
    elif event == "debit_failed":
        head = (f":x: The bank debit of *{amount}* by {who} on invoice {invoice} from {method} failed: "
                f"{safe(payment.failure_message or 'no reason given', 300)}. The balance is due again.")
    elif event == "failed":
        head = (f":x: The payment of *{amount}* by {who} on invoice {invoice} with {method} did not go through: "
                f"{safe(payment.failure_message or 'no reason given', 300)}")
    elif event == "attention":
        head = (f":rotating_light: *Needs attention:* {who} was charged *{amount}* on invoice {invoice} with "
                f"{method}, but the billing system refused to record it: "
                f"{safe(payment.failure_message or '', 300)} Please record it by hand or refund it.")
    else:  # pragma: no cover - every event is listed above
        raise ValueError(event)
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=clip(head, 3000))).to_dict(),
        ContextBlock(elements=[MarkdownTextObject(text=f"Payment {payment.id} · Stripe {payment.stripe_payment_intent_id or '—'}")]).to_dict(),
    ]
    fallback = clip(head.replace("*", ""), 3000)
    return {"text": fallback, "blocks": blocks}


def digest(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """Several notices due for one channel at once, as one message (Slack allows one message
    per second per channel; a month-end burst would otherwise take minutes)."""
    if len(payloads) == 1:
        return payloads[0]
    blocks: list[dict[str, Any]] = []
    for index, payload in enumerate(payloads):
        if index:
            blocks.append({"type": "divider"})
        blocks.extend(payload.get("blocks") or [
            SectionBlock(text=MarkdownTextObject(text=clip(str(payload.get("text", "")), 3000))).to_dict()])
    text = "\n".join(str(payload.get("text", "")) for payload in payloads)
    return {"text": clip(text, 39_000), "blocks": blocks}


# Notices are two blocks each (plus a divider between): ten stay well inside 50 blocks.
DIGEST_SIZE = 10
