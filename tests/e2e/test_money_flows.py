"""Money as people mean it, end to end: Stripe's own units per currency, amounts read in the
person's Slack locale, the card fee for the amount paid, 3-D Secure finished on Stripe's
page, and the "Add a new card" link that still works a day after the modal opened."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx

from tests.e2e.slack_user import SlackUser, texts
from tests.e2e.world import World
from tests.harness import eventually


def shown(blocks: list[dict[str, Any]]) -> str:
    """What a person reads: CLDR puts no-break spaces between a number and "€"."""
    return texts(blocks).replace("\u00a0", " ").replace("\u202f", " ")


def _block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["view"]["blocks"] if b.get("block_id") == block_id)


def _button(view: dict[str, Any], action_id: str) -> dict[str, Any]:
    return next(e for b in view["view"]["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e["action_id"] == action_id)


async def _pay_now(world: World, user: SlackUser, invoice: dict[str, Any]) -> dict[str, Any]:
    return await user.pay_now(await user.command(invoice["number"]), invoice["id"])


async def test_a_huf_invoice_reaches_stripe_in_stripe_s_units_and_billing_in_its_own(world: World) -> None:
    profile = await world.profile(currency="HUF")
    person = await world.person([profile])
    invoice = await world.invoice(profile, "150000.00")
    user = SlackUser(world.slack, person.user_id)

    done = await user.pay(await _pay_now(world, user, invoice))
    assert "Payment received" in texts(done["view"]["blocks"])

    [intent] = await world.intents(profile.customer_id)
    # Stripe reads HUF with two decimals: HUF 150,000.00 is 15,000,000 of its units.
    assert intent["currency"] == "huf" and intent["amount"] == 15_000_000 and intent["status"] == "succeeded"
    [recorded] = await world.recorded_payments(invoice["id"])
    assert Decimal(recorded["amount"]) == Decimal("150000") and recorded["currency"] == "HUF"
    assert (await world.invoice_now(invoice["id"]))["status"] == "paid"


async def test_an_isk_invoice_is_charged_in_whole_kronur_at_stripe_s_scale(world: World) -> None:
    profile = await world.profile(currency="ISK")
    person = await world.person([profile])
    invoice = await world.invoice(profile, "25000")
    user = SlackUser(world.slack, person.user_id)

    done = await user.pay(await _pay_now(world, user, invoice), amount="12000")
    assert "Payment received" in texts(done["view"]["blocks"])
    [intent] = await world.intents(profile.customer_id)
    assert intent["currency"] == "isk" and intent["amount"] == 1_200_000  # ISK: two decimals at Stripe, always 00
    [recorded] = await world.recorded_payments(invoice["id"])
    assert Decimal(recorded["amount"]) == Decimal("12000")


async def test_a_person_with_a_german_slack_locale_pays_100_comma_50(world: World) -> None:
    profile = await world.profile(currency="EUR")
    person = await world.person([profile], locale="de-DE")
    invoice = await world.invoice(profile, "1234.56")
    user = SlackUser(world.slack, person.user_id)

    listing = await user.command()
    assert "1.234,56 €" in shown(listing["blocks"])  # the list speaks German too
    modal = await user.pay_now(listing, invoice["id"])
    assert "1.234,56 €" in shown(modal["view"]["blocks"])
    prefilled = _block(modal, "amount")["element"]["initial_value"]
    assert prefilled in ("1234,56", "1.234,56")

    done = await user.pay(modal, amount="100,50")
    receipt = shown(done["view"]["blocks"])
    assert "Payment received" in receipt and "100,50 €" in receipt and "1.134,06 €" in receipt
    [intent] = await world.intents(profile.customer_id)
    assert intent["amount"] == 10050 and intent["currency"] == "eur"
    [recorded] = await world.recorded_payments(invoice["id"])
    assert recorded["amount"] == "100.50"


async def test_an_ambiguous_amount_is_asked_back_and_moves_nothing(world: World) -> None:
    profile = await world.profile(currency="EUR")
    person = await world.person([profile])  # en-US
    invoice = await world.invoice(profile, "5000.00")
    user = SlackUser(world.slack, person.user_id)
    modal = await _pay_now(world, user, invoice)

    result = await user.submit(modal, amount="1,500")
    assert result["status"] == 200 and result["applied"] == "errors", result
    error = (await user.view(modal["id"]))["errors"]["amount"]
    assert "1,500.00" in error and "1.50" in error, error  # both readings, in the person's format

    await asyncio.sleep(0.5)
    assert await world.intents(profile.customer_id) == []
    assert await world.recorded_payments(invoice["id"]) == []


async def test_the_card_fee_follows_the_amount_typed_and_shows_on_the_receipt(world: World) -> None:
    profile = await world.profile(currency="EUR", card_fee="2.9")
    person = await world.person([profile])
    invoice = await world.invoice(profile, "1200.00")
    user = SlackUser(world.slack, person.user_id)
    modal = await _pay_now(world, user, invoice)
    assert "A 2.9% card fee of *€34.80* is billed separately" in texts(modal["view"]["blocks"])

    # Enter in the amount field (dispatch_action): the fee is computed for what was typed.
    click = await world.slack.click(person.user_id, "amount", view_id=modal["id"], value="100")
    assert click["status"] == 200, click
    updated = await user.wait_view(modal["id"], lambda v: "€2.90" in texts(v["view"]["blocks"]))
    assert "€34.80" not in texts(updated["view"]["blocks"])

    done = await user.pay(updated, amount="100")
    receipt = texts(done["view"]["blocks"])
    assert "Payment received" in receipt and "card fee of *€2.90*" in receipt
    notice = await world.wait_for_channel_message(invoice["number"])
    assert "card fee of €2.90" in notice["text"]


async def test_enter_on_a_wrong_amount_says_what_is_wrong_at_once_and_shows_no_fee(world: World) -> None:
    profile = await world.profile(currency="EUR", card_fee="2.9")
    person = await world.person([profile])
    invoice = await world.invoice(profile, "845.50")
    user = SlackUser(world.slack, person.user_id)
    modal = await _pay_now(world, user, invoice)

    # Ambiguous: both readings, before Pay is pressed, and no fee for an amount not meant.
    click = await world.slack.click(person.user_id, "amount", view_id=modal["id"], value="1,500")
    assert click["status"] == 200, click
    updated = await user.wait_view(modal["id"], lambda v: "1.50" in texts(v["view"]["blocks"]))
    shown = texts(updated["view"]["blocks"])
    assert "1,500.00" in shown and "card fee" not in shown, shown

    # More than the balance: said on Enter too.
    click = await world.slack.click(person.user_id, "amount", view_id=modal["id"], value="900")
    assert click["status"] == 200, click
    updated = await user.wait_view(modal["id"], lambda v: "more than the balance" in texts(v["view"]["blocks"]))
    assert "€845.50" in texts(updated["view"]["blocks"]) and "card fee" not in texts(updated["view"]["blocks"])

    # A good amount brings the fee back; nothing was charged on the way.
    click = await world.slack.click(person.user_id, "amount", view_id=modal["id"], value="100")
    updated = await user.wait_view(modal["id"], lambda v: "€2.90" in texts(v["view"]["blocks"]))
    assert "more than the balance" not in texts(updated["view"]["blocks"])
    assert await world.intents(profile.customer_id) == []


async def test_3d_secure_is_finished_on_stripe_s_page_and_recorded_once(world: World) -> None:
    profile = await world.profile(currency="EUR", cards=("3ds",), default="3ds")
    person = await world.person([profile])
    invoice = await world.invoice(profile, "80.00")
    user = SlackUser(world.slack, person.user_id)

    done = await user.pay(await _pay_now(world, user, invoice))
    assert "3-D Secure" in texts(done["view"]["blocks"])
    button = _button(done, "authenticate")
    assert button["url"].startswith(f"{world.stack.app_url}/pay/authenticate/")
    assert await world.recorded_payments(invoice["id"]) == []

    async with httpx.AsyncClient() as browser:  # the cardholder's browser
        to_stripe = await browser.get(button["url"])
        assert to_stripe.status_code == 303, to_stripe.text
        challenge = to_stripe.headers["location"]
        assert challenge.startswith(f"{world.stack.stripe_url}/authenticate/")  # Stripe's page, not ours
        page = await browser.get(challenge)
        assert "Complete authentication" in page.text
        intent_id = challenge.split("/authenticate/")[1].split("?")[0]
        back = await browser.post(f"{world.stack.stripe_url}/authenticate/{intent_id}",
                                  data={"action": "complete", "return_url": _return_url(challenge)})
        # Stripe sends the cardholder back to the bot's own page.
        assert back.status_code == 303, back.text
        assert back.headers["location"].startswith(f"{world.stack.app_url}/pay/authenticated/")
        thanks = await browser.get(back.headers["location"])
        assert thanks.status_code == 200 and "Go back to Slack" in thanks.text
        # The same link again: nothing left to authenticate, nothing charged twice.
        again = await browser.get(button["url"])

    async def recorded_once() -> None:
        assert [p["amount"] for p in await world.recorded_payments(invoice["id"])] == ["80.00"]
        assert len([m for m in await world.notifications_about(invoice["number"]) if "paid" in m["text"]]) == 1
    await eventually(recorded_once)
    receipt = await user.wait_view(done["id"], lambda v: "Payment received" in texts(v["view"]["blocks"]))
    assert "€80.00" in texts(receipt["view"]["blocks"])
    assert again.status_code in (200, 303)
    [intent] = await world.intents(profile.customer_id)
    assert intent["status"] == "succeeded" and intent["amount"] == 8000
    await asyncio.sleep(1.0)
    await recorded_once()


def _return_url(challenge: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(challenge).query)["return_url"][0]


async def test_a_card_added_a_day_after_the_modal_opened_is_offered_on_refresh(world: World) -> None:
    profile = await world.profile(cards=("visa",))
    person = await world.person([profile])
    invoice = await world.invoice(profile, "64.00")
    user = SlackUser(world.slack, person.user_id)
    before = len(await world.stripe_checkout_sessions(profile.customer_id))
    modal = await _pay_now(world, user, invoice)
    # Opening the modal asks Stripe for no page: the link is the bot's own, made on the click.
    assert len(await world.stripe_checkout_sessions(profile.customer_id)) == before
    add = _button(modal, "add_card")
    assert add["url"].startswith(f"{world.stack.app_url}/cards/new/")

    world.stack.move_clock(24 * 3600 + 60)  # the modal stayed open for a day
    try:
        async with httpx.AsyncClient() as browser:
            to_stripe = await browser.get(add["url"])
            assert to_stripe.status_code == 303, to_stripe.text
            checkout = to_stripe.headers["location"]
            assert checkout.startswith(world.stack.stripe_url)  # card numbers go to Stripe's page only
            saved = await browser.post(checkout, data={"number": "5555 5555 5555 4444", "exp": "08/31",
                                                       "cvc": "123", "name": "Fiona Finance"})
            assert saved.status_code in (200, 303), saved.text

        await world.slack.click(person.user_id, "refresh_methods", view_id=modal["id"])
        refreshed = await user.wait_view(
            modal["id"], lambda v: "Mastercard •••• 4444, expires 08/31" in texts(v["view"]["blocks"]))
        select = _block(refreshed, "method")["element"]
        assert "4444" in select["initial_option"]["text"]["text"]  # the new card is preselected
        done = await user.pay(refreshed, method=select["initial_option"]["value"])
        assert "Payment received" in texts(done["view"]["blocks"])
    finally:
        world.stack.move_clock(0)


async def test_a_forged_or_altered_link_opens_nothing(world: World) -> None:
    profile = await world.profile(cards=("visa",))
    person = await world.person([profile])
    invoice = await world.invoice(profile, "10.00")
    user = SlackUser(world.slack, person.user_id)
    add = _button(await _pay_now(world, user, invoice), "add_card")["url"]
    before = len(await world.stripe_checkout_sessions(profile.customer_id))
    async with httpx.AsyncClient() as browser:
        for url in (add[:-2] + ("AA" if not add.endswith("AA") else "BB"), add.split("?")[0],
                    add.replace("/cards/new/", "/cards/new/x")):
            answer = await browser.get(url)
            assert answer.status_code == 404 and "Traceback" not in answer.text, url
    world.stack.move_clock(8 * 24 * 3600)  # past the link's life
    try:
        async with httpx.AsyncClient() as browser:
            assert (await browser.get(add)).status_code == 404
    finally:
        world.stack.move_clock(0)
    assert len(await world.stripe_checkout_sessions(profile.customer_id)) == before


async def test_the_same_card_saved_twice_is_offered_once(world: World) -> None:
    profile = await world.profile(cards=("visa", "mastercard"), default="mastercard")
    await world.add_card(profile, "visa")  # the same Visa again, as a person saving it twice would
    person = await world.person([profile])
    invoice = await world.invoice(profile, "10.00")
    user = SlackUser(world.slack, person.user_id)
    modal = await _pay_now(world, user, invoice)
    labels = [o["text"]["text"] for o in _block(modal, "method")["element"]["options"]]
    assert len([label for label in labels if "4242" in label]) == 1, labels
    assert len(labels) == 2, labels
