"""The Pay Now modal in all its states: loading, form, charging, receipt, problems."""

from __future__ import annotations

import datetime as dt
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock, ButtonElement, ContextBlock, DividerBlock, InputBlock, MarkdownTextObject, Option,
    PlainTextInputElement, PlainTextObject, SectionBlock, StaticSelectElement,
)
from slack_sdk.models.blocks.basic_components import DispatchActionConfig
from slack_sdk.models.views import View

from blocks.approvals import form_note
from blocks.text import clip, day, link, safe
from bot.billing import Invoice, WireInstructions
from bot.identity import DEFAULT_LOCALE
from bot.money import Money, MoneyError, format_amount_input, parse_amount
from bot.payments import AMOUNT, METHOD, FeeQuote, PayForm
from bot.summaries import PaymentStatus, PaymentSummary

CALLBACK_ID = "pay_invoice"
ADD_CARD = "add_card"
REFRESH_METHODS = "refresh_methods"
AUTHENTICATE = "authenticate"
FEE_BLOCK = "card_fee"
TITLE = "Pay invoice"
MAX_OPTIONS = 100  # Slack's limit for a static select


# The modal's block and action ids of its two inputs, and the form field (the domain's
# name, FieldProblem.field) each one stands for.
AMOUNT_FIELD = "amount"
METHOD_FIELD = "method"
_BLOCK_OF_FIELD = {AMOUNT: AMOUNT_FIELD, METHOD: METHOD_FIELD}


def block_for(field: str) -> str:
    """The block a problem with a pay form field is shown under (Slack's `errors` answer);
    another modal's field (the Home tab's route picker) names its block itself."""
    return _BLOCK_OF_FIELD.get(field, field)


def _view(blocks: list[Any], *, private_metadata: str = "", submit: str | None = None,
          close: str = "Close") -> dict[str, Any]:
    view = View(type="modal", callback_id=CALLBACK_ID, title=TITLE, close=close, submit=submit,
                private_metadata=private_metadata, blocks=blocks)
    return view.to_dict()


def _md(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, 3000)))


def loading_view() -> dict[str, Any]:
    return _view([_md(":hourglass_flowing_sand: Loading the invoice and your saved payment methods…")],
                 close="Cancel")


def message_view(title: str, text: str, *, private_metadata: str = "") -> dict[str, Any]:
    return _view([_md(f"*{safe(title, 150)}*\n{text}")], private_metadata=private_metadata)


def _invoice_summary(invoice: Invoice, profile_name: str, today: dt.date, locale: str) -> SectionBlock:
    due = day(invoice.due_on, locale)
    if invoice.is_overdue(today):
        due = f"{due} · :warning: *Overdue*"
    return SectionBlock(
        text=MarkdownTextObject(text=f"*{safe(invoice.number, 150)}* · {safe(profile_name, 200)}"),
        fields=[
            MarkdownTextObject(text=f"*Due*\n{due}"),
            MarkdownTextObject(text=f"*Status*\n{_status_words(invoice)}"),
            MarkdownTextObject(text=f"*Total*\n{invoice.total_money.format(locale)}"),
            MarkdownTextObject(text=f"*Balance due*\n{invoice.balance.format(locale)}"),
        ],
    )


def _status_words(invoice: Invoice) -> str:
    """What has been paid of it. Lateness is said once, beside the due date: the contract's
    `past_due` shown here as well read "Overdue" and "Past due" side by side."""
    if invoice.is_partly_paid:
        return "Partly paid"
    if invoice.status == "processing":
        return "Bank debit processing"
    return "Not paid yet" if invoice.is_payable else invoice.status.replace("_", " ").capitalize()


def _fee_text(percent_value: object, fee: Money, amount: Money, locale: str) -> str:
    percent = f"{percent_value.normalize():f}%" if hasattr(percent_value, "normalize") else f"{percent_value}%"
    return (f":information_source: A {percent} card fee of *{fee.format(locale)}* is billed separately for paying "
            f"*{amount.format(locale)}* by card (press Enter in the amount field to update it). "
            "Bank debits carry no fee.")


def _fee_block(text: str) -> ContextBlock:
    return ContextBlock(block_id=FEE_BLOCK, elements=[MarkdownTextObject(text=clip(text, 3000))])


def _typed_amount(text: str | None, currency: str, locale: str) -> Money | None:
    try:
        return parse_amount(text, currency, locale) if text else None
    except MoneyError:
        return None


def pay_form_view(form: PayForm, *, today: dt.date, notice: str | None = None,
                  amount_text: str | None = None, method_id: str | None = None) -> dict[str, Any]:
    invoice, profile, locale = form.invoice, form.profile, form.locale
    blocks: list[Any] = []
    if notice:
        blocks.append(_md(notice))
    blocks.append(_invoice_summary(invoice, profile.name, today, locale))
    if form.in_flight is not None:
        waiting = form.in_flight.status == "awaiting_approval"
        what = "is waiting for approval" if waiting else "is in progress"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f":hourglass: A payment on this invoice {what} (started by <@{form.in_flight.user_id}>). "
                 "Wait for its result before paying again.")]))
    if form.approval is not None:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=form_note(form.approval, locale))]))
    has_methods = bool(form.methods)
    if has_methods:
        options = [Option(text=clip(m.label, 75), value=m.id) for m in form.methods[:MAX_OPTIONS]]
        chosen = next((candidate for candidate in (method_id, form.new_method_id, form.default_method_id)
                       if candidate and any(m.id == candidate for m in form.methods)), None)
        initial = next((o for o in options if o.value == chosen), options[0])
        blocks.append(InputBlock(
            block_id=METHOD_FIELD, label="Pay with",
            element=StaticSelectElement(action_id=METHOD_FIELD, options=options, initial_option=initial,
                                        placeholder="Choose a saved card or bank account"),
        ))
        prefilled = format_amount_input(invoice.balance, locale, grouped=False)
        blocks.append(InputBlock(
            block_id=AMOUNT_FIELD, label=f"Amount ({invoice.currency})", dispatch_action=True,
            element=PlainTextInputElement(
                action_id=AMOUNT_FIELD, initial_value=clip(amount_text or prefilled, 150),
                placeholder=clip(prefilled, 150),
                dispatch_action_config=DispatchActionConfig(trigger_actions_on=["on_enter_pressed"])),
            hint=f"The balance due is {invoice.balance.format(locale)}. Enter less to pay part of it.",
        ))
        paying = _typed_amount(amount_text, invoice.currency, locale) or invoice.balance
        fee = form.card_fee(paying)
        if fee is not None:
            blocks.append(_fee_block(_fee_text(profile.card_fee_percent, fee, paying, locale)))
        from blocks.scheduling import when_blocks  # noqa: PLC0415 - it imports this module's neighbours

        blocks.extend(when_blocks(invoice, today=today, locale=locale))
    elif not profile.stripe_customer_id:
        # No Stripe customer: there is no page to add a card on and nothing to refresh, so
        # say so plainly and point at the one way that works.
        blocks.append(_md(f"*No saved card or bank account can be used for {safe(profile.name, 200)}.*\n"
                          "Cards and bank debits aren't set up for this billing profile. "
                          "Pay by wire transfer with the details below."))
    elif form.methods_unavailable:
        blocks.append(_md(":warning: Stripe isn't answering right now, so your saved cards can't be shown. "
                          "Nothing was charged. Press *Refresh* in a minute, or pay by wire transfer below."))
    else:
        blocks.append(_md(f"*No saved card for {safe(profile.name, 200)} yet.*\nAdd one on Stripe's secure page, "
                          "then press *Refresh*. Your card number is typed on Stripe's page only, never in Slack."))

    buttons = []
    if form.add_card_url:
        buttons.append(ButtonElement(text="Add a new card", action_id=ADD_CARD, url=form.add_card_url,
                                     style=None if has_methods else "primary"))
    if profile.stripe_customer_id:
        buttons.append(ButtonElement(text="Refresh", action_id=REFRESH_METHODS, value="refresh"))
    if buttons:
        blocks.append(ActionsBlock(block_id="card_actions", elements=buttons))
    blocks.append(DividerBlock())
    blocks.append(_md(_wire_text(invoice, profile.wire_instructions, only_way=not has_methods)))
    return _view(blocks, private_metadata=form.session_id, submit="Pay" if has_methods else None,
                 close="Cancel")


def _wire_text(invoice: Invoice, wire: WireInstructions | None, *, only_way: bool = False) -> str:
    # Offered as an alternative only when there is something to prefer it to.
    lines = ["*Pay by wire transfer*" if only_way else "*Prefer a wire transfer?*"]
    if wire is None:
        lines.append("Ask your account manager for the vendor's bank details.")
    else:
        for label, value in (("Beneficiary", wire.beneficiary), ("Bank", wire.bank_name), ("IBAN", wire.iban),
                             ("SWIFT/BIC", wire.swift), ("Account number", wire.account_number),
                             ("Routing number", wire.routing_number)):
            if value:
                lines.append(f"{label}: `{safe(value, 120)}`")
        if wire.reference:
            lines.append(f"_{safe(wire.reference, 300)}_")
    lines.append(f"Reference: `{safe(invoice.number, 150)}` · {link(invoice.pdf_url, 'Invoice PDF')}")
    return "\n".join(lines)


def fee_updated_view(view: dict[str, Any], quote: FeeQuote) -> dict[str, Any]:
    """The open form (as Slack sent it back) with the card fee for the amount now typed."""
    kept = ("type", "callback_id", "title", "submit", "close", "private_metadata", "notify_on_close")
    updated = {key: view[key] for key in kept if key in view}
    blocks = [block for block in view.get("blocks") or [] if block.get("block_id") != FEE_BLOCK]
    if quote.fee is not None:
        fee = _fee_block(_fee_text(quote.percent, quote.fee, quote.amount, quote.locale)).to_dict()
        at = next((i + 1 for i, block in enumerate(blocks) if block.get("block_id") == AMOUNT_FIELD), len(blocks))
        blocks.insert(at, fee)
    for block in blocks:
        if block.get("block_id") == AMOUNT_FIELD and isinstance(block.get("element"), dict):
            # Keep what the person typed (Slack keeps input state across views.update too).
            block["element"]["initial_value"] = clip(format_amount_input(quote.amount, quote.locale, grouped=False), 150)
    updated["blocks"] = blocks
    return updated


def amount_problem_view(view: dict[str, Any], typed: str, problem: str) -> dict[str, Any]:
    """The open form with what is wrong with the amount typed, said where the fee note was:
    Enter in the field gets an answer at once (not only Pay), and no fee stays on screen for
    an amount that is not the one in the field."""
    kept = ("type", "callback_id", "title", "submit", "close", "private_metadata", "notify_on_close")
    updated = {key: view[key] for key in kept if key in view}
    blocks = [block for block in view.get("blocks") or [] if block.get("block_id") != FEE_BLOCK]
    note = _fee_block(f":warning: {safe(problem, 2000)}").to_dict()
    at = next((i + 1 for i, block in enumerate(blocks) if block.get("block_id") == AMOUNT_FIELD), len(blocks))
    blocks.insert(at, note)
    for block in blocks:
        if block.get("block_id") == AMOUNT_FIELD and isinstance(block.get("element"), dict):
            block["element"]["initial_value"] = clip(typed, 150)  # what the person typed, to correct it
    updated["blocks"] = blocks
    return updated


def payment_view(payment: PaymentSummary, *, authenticate_url: str | None = None) -> dict[str, Any]:
    """Where a submitted payment stands, in words a payer understands (in the payer's locale).
    "Nothing was charged" is said only where it is known: no confirm was ever sent, or Stripe said no."""
    locale = payment.locale or DEFAULT_LOCALE
    amount = Money.from_minor(payment.amount_minor, payment.currency).format(locale)
    method = safe(payment.method_label, 80)
    number = safe(payment.invoice_number, 150)
    status = PaymentStatus(payment.status)
    if status is PaymentStatus.RECORDED:
        return _receipt(payment, amount, method, number, locale)
    if status is PaymentStatus.CREATED:
        if payment.attempts:
            # No PaymentIntent stored, so none was confirmed: the card cannot have been charged.
            text = (f":hourglass: Stripe didn't answer in time while we were starting the payment of *{amount}* "
                    f"with {method}. Your card has not been charged. We'll finish this automatically and "
                    "send you a direct message with the result.")
        else:
            text = f":hourglass_flowing_sand: Charging *{amount}* to {method} for invoice *{number}*…"
        return message_view("Payment in progress", text)
    if status is PaymentStatus.CONFIRMING:
        if payment.attempts:
            text = (f":hourglass: We couldn't get an answer from Stripe about charging *{amount}* to {method}. "
                    "We don't know yet whether it went through; it is still being confirmed with Stripe, "
                    "automatically, and you'll get a direct message with the result (it is also posted in "
                    "the finance channel). *Please don't pay this invoice again meanwhile.*")
        else:
            text = f":hourglass_flowing_sand: Charging *{amount}* to {method} for invoice *{number}*…"
        return message_view("Payment in progress", text)
    if status is PaymentStatus.APPROVED:
        return message_view("Approved, charging…", (
            f":white_check_mark: Approved by <@{payment.approved_by}>. :hourglass_flowing_sand: Charging *{amount}* "
            f"to {method} for invoice *{number}*…"))
    if status is PaymentStatus.CHARGED:
        return message_view("Charged, recording…", (
            f":white_check_mark: *{amount}* was charged to {method}.\n:hourglass: Recording the payment on "
            f"invoice *{number}* in the billing system… This is retried automatically; you'll get a direct "
            "message with the confirmation (it is also posted in the finance channel). *Don't pay again.*"))
    if status is PaymentStatus.NEEDS_ATTENTION and payment.attention_step == "confirm":
        return message_view("Stripe refused the payment", (
            f":rotating_light: Stripe refused to confirm the payment of *{amount}* with {method} for invoice "
            f"*{number}*. {safe(payment.failure_message or '', 500)}\nOur finance team has been told and will "
            "finish it or give the money back; you'll get a direct message when it's done. *Don't pay again.*"))
    if status is PaymentStatus.NEEDS_ATTENTION:
        return message_view("Charged, but not recorded", (
            f":rotating_light: *{amount}* was charged to {method}, but the billing system refused to record it on "
            f"invoice *{number}*. {safe(payment.failure_message or '', 500)}\nOur finance team has been told and "
            "will either record it or refund it; you'll get a direct message when it's done. *Don't pay again.*"))
    if status is PaymentStatus.REFUNDED:
        return message_view("Payment refunded", (
            f":leftwards_arrow_with_hook: {'Stripe refused to confirm' if payment.attention_step == 'confirm' else 'The billing system could not record'} "
            f"the payment of *{amount}* on invoice *{number}*, so it has been refunded to {method}. The invoice is "
            "still due."))
    if status in (PaymentStatus.DEBITING, PaymentStatus.PROCESSING):
        return message_view("Bank debit on its way", (
            f":bank: A bank debit of *{amount}* from {method} for invoice *{number}* is on its way. "
            "Bank debits take a few days to clear; the invoice shows *Processing* until then, and the finance channel "
            "will hear when it settles."))
    if status is PaymentStatus.REQUIRES_ACTION:
        where = link(payment.invoice_url, f"the invoice page of {payment.invoice_number}")
        if not authenticate_url:
            return message_view("Authentication needed", (
                f":lock: {method} needs 3-D Secure authentication by the cardholder, which can't happen in "
                f"Slack. Nothing has been charged yet. Finish paying *{amount}* on {where}, or close this and "
                "choose another card."))
        return _view([
            _md(f"*Authentication needed*\n:lock: {method} needs 3-D Secure authentication by the cardholder, "
                f"which can't happen in Slack. Nothing has been charged yet. Press *Authenticate on Stripe* to "
                f"confirm *{amount}* on Stripe's own page; the result shows here and in the finance channel. "
                f"(You can also pay on {where}, or close this and choose another card.)"),
            ActionsBlock(block_id="authenticate", elements=[ButtonElement(
                text="Authenticate on Stripe", action_id=AUTHENTICATE, url=authenticate_url, style="primary")]),
        ])
    # failed (declined, refused at the start, interrupted before the charge) or canceled:
    # Stripe said no, or no confirm was ever sent.
    return message_view("Payment not completed", (
        f":x: {safe(payment.failure_message or 'The payment failed.', 500)} Nothing was charged."))


def _receipt(payment: PaymentSummary, amount: str, method: str, number: str, locale: str) -> dict[str, Any]:
    balance = (Money.from_minor(payment.balance_after_minor, payment.currency).format(locale)
               if payment.balance_after_minor is not None else "—")
    paid_in_full = payment.invoice_status_after == "paid"
    status = "Paid" if paid_in_full else (payment.invoice_status_after or "").replace("_", " ").capitalize()
    blocks = [
        _md(f":white_check_mark: *Payment received.* {amount} paid on invoice *{number}* "
            f"({safe(payment.billing_profile_name, 200)})."),
        SectionBlock(fields=[
            MarkdownTextObject(text=f"*Paid*\n{amount}"),
            MarkdownTextObject(text=f"*Method*\n{method}"),
            MarkdownTextObject(text=f"*New balance*\n{balance}"),
            MarkdownTextObject(text=f"*Invoice status*\n{status}"),
        ]),
    ]
    if payment.card_fee_minor:
        fee = Money.from_minor(payment.card_fee_minor, payment.currency).format(locale)
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f":information_source: The card fee of *{fee}* is billed separately by the vendor.")]))
    blocks.append(ContextBlock(elements=[PlainTextObject(text=f"Payment reference {payment.id}")]))
    return _view(blocks)


def decline_notice(payment: PaymentSummary) -> str:
    return (f":x: *{safe(payment.method_label, 80)} was not charged.* "
            f"{safe(payment.failure_message or 'The payment was declined.', 500)} "
            "Choose another method, or add a new card.")
