"""The heart of the product, end to end over real HTTP: /invoices, Pay Now, Stripe charge,
billing record, receipt, channel notification."""

from __future__ import annotations

from decimal import Decimal

from tests.e2e.slack_user import SlackUser, texts
from tests.e2e.world import World


async def test_full_payment_with_the_default_card(world: World) -> None:
    profile = await world.profile(currency="EUR", cards=("visa", "mastercard"), default="visa", card_fee="2.9")
    person = await world.person([profile])
    invoice = await world.invoice(profile, "1200.00")
    user = SlackUser(world.slack, person.user_id)

    listing = await user.command()
    shown = texts(listing["blocks"])
    assert invoice["number"] in shown and "€1,200.00" in shown and profile.name in shown

    modal = await user.pay_now(listing, invoice["id"])
    form = texts(modal["view"]["blocks"])
    assert "Visa •••• 4242, expires 12/30" in form
    assert "A 2.9% card fee of *€34.80* is billed separately" in form
    assert modal["view"]["submit"]["text"] == "Pay"

    done = await user.pay(modal)  # the balance and the default card, as prefilled
    receipt = texts(done["view"]["blocks"])
    assert "Payment received" in receipt and "€1,200.00" in receipt and "Paid" in receipt

    after = await world.invoice_now(invoice["id"])
    assert after["status"] == "paid" and Decimal(after["amount_due"]) == 0
    [recorded] = await world.recorded_payments(invoice["id"])
    assert recorded["amount"] == "1200.00" and recorded["status"] == "succeeded"
    assert recorded["paid_by"] == person.email and recorded["method"] == "card"
    [intent] = await world.intents(profile.customer_id)
    assert intent["amount"] == 120000 and intent["currency"] == "eur" and intent["status"] == "succeeded"
    assert intent["payment_method"] == profile.methods["visa"]
    assert intent["id"] == recorded["processor_payment_id"]
    assert intent["metadata"]["invoice_id"] == invoice["id"]
    assert intent["metadata"]["payment_id"] == recorded["payment_id"]

    notice = await world.wait_for_channel_message(invoice["number"])
    assert f"<@{person.user_id}> paid *€1,200.00*" in notice["text"] or f"<@{person.user_id}> paid *€1,200.00*" in texts(notice["blocks"])
    assert "paid in full" in texts(notice["blocks"]) and "Visa •••• 4242" in texts(notice["blocks"])

    # The list the person clicked from no longer offers the paid invoice.
    refreshed = await user.wait_message_changed(listing)
    assert invoice["id"] not in texts(refreshed["blocks"])
