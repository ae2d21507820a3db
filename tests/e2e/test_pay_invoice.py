"""The heart of the product, end to end over real HTTP: /invoices, Pay Now, Stripe charge,
billing record, receipt, channel notification."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.e2e.slack_user import SlackUser, pay_buttons, texts
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


async def test_two_partial_payments_then_the_invoice_is_paid(world: World) -> None:
    profile = await world.profile(currency="EUR")
    person = await world.person([profile])
    invoice = await world.invoice(profile, "1000.00")
    user = SlackUser(world.slack, person.user_id)

    listing = await user.command()
    done = await user.pay(await user.pay_now(listing, invoice["id"]), amount="600")
    receipt = texts(done["view"]["blocks"])
    assert "€600.00" in receipt and "€400.00" in receipt and "Partially paid" in receipt
    assert (await world.invoice_now(invoice["id"]))["status"] == "partially_paid"
    notice = texts((await world.wait_for_channel_message(invoice["number"]))["blocks"])
    assert "*€400.00* remains due" in notice

    listing = await user.command()
    assert "€400.00" in texts(listing["blocks"]) and "partly paid" in texts(listing["blocks"])
    modal = await user.pay_now(listing, invoice["id"])
    amount = next(b for b in modal["view"]["blocks"] if b.get("block_id") == "amount")
    assert amount["element"]["initial_value"] == "400.00"
    done = await user.pay(modal)
    assert "Paid" in texts(done["view"]["blocks"])

    after = await world.invoice_now(invoice["id"])
    assert after["status"] == "paid" and Decimal(after["amount_due"]) == 0
    assert sorted(p["amount"] for p in await world.recorded_payments(invoice["id"])) == ["400.00", "600.00"]
    assert sorted(pi["amount"] for pi in await world.intents(profile.customer_id)) == [40000, 60000]


async def test_yen_are_charged_without_decimals(world: World) -> None:
    profile = await world.profile(currency="JPY")
    person = await world.person([profile])
    invoice = await world.invoice(profile, "5000")
    user = SlackUser(world.slack, person.user_id)

    listing = await user.command()
    assert "¥5,000" in texts(listing["blocks"])
    modal = await user.pay_now(listing, invoice["id"])
    done = await user.pay(modal, amount="3000")
    assert "¥3,000" in texts(done["view"]["blocks"]) and "¥2,000" in texts(done["view"]["blocks"])
    [intent] = await world.intents(profile.customer_id)
    assert intent["amount"] == 3000 and intent["currency"] == "jpy"
    [recorded] = await world.recorded_payments(invoice["id"])
    assert recorded["amount"] == "3000"


async def test_every_invalid_amount_is_refused_under_the_field_and_nothing_is_charged(world: World) -> None:
    profile = await world.profile(currency="EUR")
    person = await world.person([profile])
    invoice = await world.invoice(profile, "100.00")
    user = SlackUser(world.slack, person.user_id)
    modal = await user.pay_now(await user.command(), invoice["id"])

    cases = {
        "ten euros": "is not a number",
        "0": "more than zero",
        "-5": "more than zero",
        "100.01": "more than the balance due of €100.00",
        "12.345": "at most 2 decimals",
        "0.20": "smallest card payment in EUR is €0.50",
    }
    for amount, message in cases.items():
        result = await user.submit(modal, amount=amount)
        assert result["status"] == 200 and result["applied"] == "errors", (amount, result)
        view = await user.view(modal["id"])
        assert message in view["errors"]["amount"], (amount, view["errors"])
        assert view["is_open"]

    assert await world.intents(profile.customer_id) == []
    assert await world.recorded_payments(invoice["id"]) == []
    assert Decimal((await world.invoice_now(invoice["id"]))["amount_due"]) == Decimal("100.00")


async def test_a_declined_card_says_why_and_another_card_can_be_chosen(world: World) -> None:
    profile = await world.profile(currency="USD", cards=("declines", "visa"), default="declines")
    person = await world.person([profile])
    invoice = await world.invoice(profile, "250.00")
    user = SlackUser(world.slack, person.user_id)
    modal = await user.pay_now(await user.command(), invoice["id"])

    declined = await user.pay(modal)
    body = texts(declined["view"]["blocks"])
    assert "was not charged" in body and "declined" in body.lower()
    assert declined["view"].get("submit"), "the form is offered again"
    assert await world.recorded_payments(invoice["id"]) == []
    assert (await world.invoice_now(invoice["id"]))["status"] == "open"

    done = await user.pay(declined, method=profile.methods["visa"])
    assert "Payment received" in texts(done["view"]["blocks"])
    [recorded] = await world.recorded_payments(invoice["id"])
    assert recorded["amount"] == "250.00"
    statuses = sorted(pi["status"] for pi in await world.intents(profile.customer_id))
    assert statuses == ["requires_payment_method", "succeeded"]  # the decline moved no money


async def test_a_card_that_needs_3d_secure_sends_the_user_to_the_invoice_page(world: World) -> None:
    profile = await world.profile(currency="EUR", cards=("3ds",), default="3ds")
    person = await world.person([profile])
    invoice = await world.invoice(profile, "80.00")
    user = SlackUser(world.slack, person.user_id)
    modal = await user.pay_now(await user.command(), invoice["id"])

    done = await user.pay(modal)
    body = texts(done["view"]["blocks"])
    assert "3-D Secure" in body and "Nothing has been charged yet" in body and invoice["url"] in body
    assert await world.recorded_payments(invoice["id"]) == []
    [intent] = await world.intents(profile.customer_id)
    assert intent["status"] == "requires_action"


async def test_expired_cards_are_not_offered_and_the_default_comes_first(world: World) -> None:
    profile = await world.profile(cards=("expired", "visa", "mastercard"), default="mastercard")
    person = await world.person([profile])
    invoice = await world.invoice(profile, "10.00")
    user = SlackUser(world.slack, person.user_id)
    modal = await user.pay_now(await user.command(), invoice["id"])
    select = next(b for b in modal["view"]["blocks"] if b.get("block_id") == "method")["element"]
    offered = [o["value"] for o in select["options"]]
    assert profile.methods["expired"] not in offered
    assert offered[0] == profile.methods["mastercard"] == select["initial_option"]["value"]
    assert "Mastercard •••• 4444" in texts(select["options"])


async def test_without_a_saved_card_adding_one_on_stripe_s_page_is_the_way(world: World) -> None:
    profile = await world.profile(cards=())
    person = await world.person([profile])
    invoice = await world.invoice(profile, "10.00")
    user = SlackUser(world.slack, person.user_id)
    modal = await user.pay_now(await user.command(), invoice["id"])
    assert not modal["view"].get("submit")
    body = texts(modal["view"]["blocks"])
    assert "No saved card" in body and "DE89370400440532013000" in body and invoice["number"] in body
    # (the profile has no Stripe customer, so there is no page to add a card to)


async def test_paging_through_120_invoices(world: World) -> None:
    profile = await world.profile()
    person = await world.person([profile])
    ids = await world.bulk_invoices(profile, 120)
    user = SlackUser(world.slack, person.user_id)
    message = await user.command()
    assert "120 invoices to pay" in texts(message["blocks"])
    seen: list[str] = []
    for _ in range(10):
        seen += list(pay_buttons(message).values())
        nxt = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
               if e["action_id"].endswith(":next")]
        if not nxt:
            break
        await user.click_in_message(message, nxt[0]["action_id"])
        message = await user.wait_message_changed(message)
    assert seen == ids  # every invoice once, in due-date order

    prev = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
            if e["action_id"].endswith(":prev")]
    await user.click_in_message(message, prev[0]["action_id"])
    back = await user.wait_message_changed(message)
    assert "Showing 81–100 of 120" in texts(back["blocks"])


async def test_filters_overdue_profile_and_invoice_number_and_help(world: World) -> None:
    world_name = f"Zeta {id(world)} GmbH"
    eu = await world.profile(name=world_name)
    us = await world.profile(currency="USD")
    person = await world.person([eu, us])
    late = await world.invoice(eu, "10.00", due_in_days=-5)
    soon = await world.invoice(us, "20.00", due_in_days=5)
    user = SlackUser(world.slack, person.user_id)

    everything = texts((await user.command())["blocks"])
    assert late["number"] in everything and soon["number"] in everything
    assert everything.index(late["number"]) < everything.index(soon["number"])  # soonest due first
    assert "€10.00" in everything and "$20.00" in everything

    overdue = texts((await user.command("overdue"))["blocks"])
    assert late["number"] in overdue and soon["number"] not in overdue and "Overdue" in overdue

    by_profile = texts((await user.command(world_name.split()[1]))["blocks"])
    assert late["number"] in by_profile and soon["number"] not in by_profile

    by_number = texts((await user.command(soon["number"].lower()))["blocks"])
    assert soon["number"] in by_number and late["number"] not in by_number

    nothing = texts((await user.command("no-such-thing"))["blocks"])
    assert "No payable invoice matches" in nothing

    help_text = texts((await user.command("help"))["blocks"])
    assert "/invoices overdue" in help_text


async def test_a_card_added_on_stripe_s_page_is_announced_and_offered(world: World) -> None:
    profile = await world.profile(cards=("visa",))
    person = await world.person([profile])
    invoice = await world.invoice(profile, "64.00")
    user = SlackUser(world.slack, person.user_id)
    modal = await user.pay_now(await user.command(), invoice["id"])
    add = next(e for b in modal["view"]["blocks"] if b["type"] == "actions" for e in b["elements"]
               if e["action_id"] == "add_card")
    import httpx  # the person's browser, on the hosted page

    async with httpx.AsyncClient() as browser:
        # The button is the bot's own short link; it sends the browser on to Stripe's page.
        to_stripe = await browser.get(add["url"])
        assert to_stripe.status_code == 303, to_stripe.text
        hosted = to_stripe.headers["location"]
        assert hosted.startswith(world.stack.stripe_url)  # Stripe's own page, not ours, not Slack
        saved = await browser.post(hosted, data={"number": "5555 5555 5555 4444", "exp": "08/31", "cvc": "123",
                                                  "name": "Fiona Finance"})
        assert saved.status_code in (200, 303), saved.text
        if saved.status_code == 303:
            assert saved.headers["location"].startswith(f"{world.stack.app_url}/card-saved")

    # The webhook tells the person, and the open modal now offers the new card.
    dm = await world.slack.wait_for_call(
        "chat.postMessage", lambda c: c["ok"] and c["params"].get("channel") == person.user_id, timeout=15)
    assert "new card is saved" in dm["params"]["text"]
    refreshed = await user.wait_view(modal["id"], lambda v: "Mastercard •••• 4444, expires 08/31" in texts(v["view"]["blocks"]))
    done = await user.pay(refreshed, method=next(
        o["value"] for b in refreshed["view"]["blocks"] if b.get("block_id") == "method"
        for o in b["element"]["options"] if "4444" in o["text"]["text"]))
    assert "Mastercard •••• 4444" in texts(done["view"]["blocks"])


async def test_an_invoice_found_by_number_that_is_not_payable_says_what_it_is(world: World) -> None:
    profile = await world.profile(currency="USD")
    person = await world.person([profile])
    invoice = await world.invoice(profile, "89.99")
    user = SlackUser(world.slack, person.user_id)
    await user.pay(await user.pay_now(await user.command(), invoice["id"]))
    assert (await world.invoice_now(invoice["id"]))["status"] == "paid"

    paid = texts((await user.command(invoice["number"]))["blocks"])
    assert f"*{invoice['number']}* · {profile.name} is *paid*" in paid and "No payable invoice" not in paid
    # When: the payment made here, in each reader's time zone (Slack's date token).
    assert f"Last payment: $89.99 with Visa •••• 4242 by <@{person.user_id}>, <!date^" in paid
    assert " UTC>" in paid

    canceled = await world._post("/_sandbox/invoices", {"billing_profile_id": profile.id, "total": "10.00",
                                                         "status": "canceled"})
    proforma = await world._post("/_sandbox/invoices", {"billing_profile_id": profile.id, "total": "20.00",
                                                         "status": "proforma"})
    assert "was *canceled*" in texts((await user.command(canceled["number"].lower()))["blocks"])
    assert "is a *pro forma* invoice ($20.00)" in texts((await user.command(proforma["number"]))["blocks"])

    # Someone else's paid invoice stays invisible.
    stranger = SlackUser(world.slack, (await world.person([await world.profile()])).user_id)
    assert "No payable invoice matches" in texts((await stranger.command(invoice["number"]))["blocks"])


async def test_the_balance_due_header_lists_currencies_in_a_stable_order(world: World) -> None:
    """By currency code, whatever is due first: the header reads the same after a payment."""
    usd, eur, jpy = (await world.profile(currency="USD"), await world.profile(currency="EUR"),
                     await world.profile(currency="JPY"))
    person = await world.person([usd, eur, jpy])
    first = await world.invoice(usd, "10.00", due_in_days=1)
    await world.invoice(usd, "30.00", due_in_days=30)
    await world.invoice(jpy, "500", due_in_days=5)
    await world.invoice(eur, "20.00", due_in_days=9)
    user = SlackUser(world.slack, person.user_id)

    def header(message: dict[str, Any]) -> str:
        return next(b["text"]["text"] for b in message["blocks"] if "Balance due:" in str(b)).split("\n")[-1]

    listing = await user.command()
    assert header(listing) == "Balance due: *€20.00 · ¥500 · $40.00*"
    await user.pay(await user.pay_now(listing, first["id"]))
    assert header(await user.command()) == "Balance due: *€20.00 · ¥500 · $30.00*"
