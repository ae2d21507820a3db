"""Messages for the finance channel."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

from blocks.text import clip, safe
from bot.identity import DEFAULT_LOCALE
from bot.money import Money
from bot.summaries import PaymentSummary


def _scheduled(payment: PaymentSummary) -> str:
    from bot.scheduled_payments import is_scheduled  # noqa: PLC0415 - a scheduled payment says so

    return " · :calendar: scheduled payment" if is_scheduled(payment) else ""


def payment_notice(payment: PaymentSummary, event: str, *, locale: str = "en_US") -> dict[str, Any]:
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
    elif event == "attention" and payment.attention_step == "confirm":
        # Stripe refused to confirm: no word that money moved (the reason says what is known).
        head = (f":rotating_light: *Needs attention:* Stripe refused to confirm the payment of *{amount}* by {who} "
                f"on invoice {invoice} with {method}. {safe(payment.failure_message or '', 300)} An operator checks "
                f"it in Stripe and resolves it with `invoicebot payments resolve {payment.id} --record` (tries the "
                "confirm again, records it if charged) or `--refund` (if it was charged).")
    elif event == "attention":
        head = (f":rotating_light: *Needs attention:* {who} was charged *{amount}* on invoice {invoice} with "
                f"{method}, but the billing system refused to record it: "
                f"{safe(payment.failure_message or '', 300)} An operator resolves it with "
                f"`invoicebot payments resolve {payment.id} --record` (once billing is fixed) or `--refund`.")
    elif event == "refunded":
        why = ("which Stripe had refused to confirm" if payment.attention_step == "confirm"
               else "which the billing system would not record")
        head = (f":leftwards_arrow_with_hook: The payment of *{amount}* by {who} on invoice {invoice} with {method}, "
                f"{why}, has been *refunded*. The invoice's balance is unchanged.")
    else:  # pragma: no cover - every event is listed above
        raise ValueError(event)
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=clip(head, 3000))).to_dict(),
        ContextBlock(elements=[MarkdownTextObject(text=f"Payment {payment.id}{_scheduled(payment)} · Stripe {payment.stripe_payment_intent_id or '—'}")]).to_dict(),
    ]
    fallback = clip(head.replace("*", ""), 3000)
    return {"text": fallback, "blocks": blocks}


def payer_message(payment: PaymentSummary) -> dict[str, Any]:
    """The payer's direct message: how their payment ended (or where it waits), when they
    did not see it in the payment window. In the payer's own locale, like the modal."""
    locale = payment.locale or DEFAULT_LOCALE
    amount = Money.from_minor(payment.amount_minor, payment.currency).format(locale)
    invoice = f"*{safe(payment.invoice_number, 150)}* ({safe(payment.billing_profile_name, 200)})"
    method = safe(payment.method_label, 80)
    reason = safe(payment.failure_message or "", 300)
    status = payment.status
    if status == "recorded":
        remaining = (Money.from_minor(payment.balance_after_minor, payment.currency)
                     if payment.balance_after_minor is not None else None)
        after = ("The invoice is now *paid in full*." if payment.invoice_status_after == "paid"
                 else f"*{remaining.format(locale)}* remains due." if remaining is not None else "")
        head = f":white_check_mark: Your payment of *{amount}* on invoice {invoice} with {method} went through. {after}"
    elif status == "processing":
        head = (f":bank: Your bank debit of *{amount}* on invoice {invoice} from {method} is on its way; it takes a "
                "few days to clear. You'll hear here when it does.")
    elif status == "requires_action":
        head = (f":lock: Your payment of *{amount}* on invoice {invoice} needs 3-D Secure authentication by the "
                f"cardholder; {method} has not been charged. Finish it on the invoice page, or pay again with "
                "another method.")
    elif status == "needs_attention" and payment.attention_step == "confirm":
        head = (f":rotating_light: Stripe refused to confirm your payment of *{amount}* on invoice {invoice} with "
                f"{method}. {reason} Our finance team has been told and will finish it or give the money back; "
                "you'll hear here. *Please don't pay this invoice again.*")
    elif status == "needs_attention":
        head = (f":rotating_light: Your payment of *{amount}* on invoice {invoice} was charged to {method}, but the "
                f"billing system refused to record it. {reason} Our finance team has been told and will either "
                "record it or refund it; you'll hear here. *Please don't pay this invoice again.*")
    elif status == "refunded":
        why = ("was refused by Stripe" if payment.attention_step == "confirm"
               else "could not be recorded by the billing system")
        head = (f":leftwards_arrow_with_hook: Your payment of *{amount}* on invoice {invoice} with {method} {why} "
                "and has been *refunded* to it. The invoice is still due.")
    else:  # failed
        head = (f":x: Your payment of *{amount}* on invoice {invoice} with {method} did not go through: "
                f"{reason or 'no reason given.'} Nothing was charged; press *Pay Now* to try again.")
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=clip(head, 3000))).to_dict(),
        ContextBlock(elements=[MarkdownTextObject(text=f"Payment reference {payment.id}")]).to_dict(),
    ]
    return {"text": clip(head.replace("*", ""), 3000), "blocks": blocks}


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


def card_saved_message() -> dict[str, Any]:
    """The DM after a card was saved on Stripe's page (bot/cards.py tells it)."""
    return {"text": ":credit_card: Your new card is saved with Stripe. Press *Refresh* in the payment "
                    "window (or *Pay Now* again) to pay with it."}
