"""Slack's clock: an answer within 3 seconds, a modal inside the trigger's 3 seconds, even
when the billing API is slow."""

from __future__ import annotations

from tests.e2e.slack_user import SlackUser, texts
from tests.e2e.world import World


async def test_pay_now_opens_the_modal_in_time_with_a_2_second_billing_api(world: World) -> None:
    profile = await world.profile()
    person = await world.person([profile])
    invoice = await world.invoice(profile, "42.00")
    user = SlackUser(world.slack, person.user_id)
    listing = await user.command()

    await world.set_billing_latency(2.0)
    modal = await user.pay_now(listing, invoice["id"])  # the stand-in refuses a trigger older than 3 s
    assert invoice["number"] in texts(modal["view"]["blocks"])
    [delivery] = [d for d in await world.slack.deliveries() if d["kind"] == "block_actions"][-1:]
    assert delivery["status"] == 200 and delivery["elapsed_ms"] < 1000

    result = await user.submit(modal)
    assert result["status"] == 200 and result["elapsed_ms"] < 3000
    done = await user.wait_view(modal["id"], lambda v: "Payment received" in texts(v["view"]["blocks"]))
    assert "€42.00" in texts(done["view"]["blocks"])


async def test_invoices_answers_at_once_and_lists_when_the_backend_answers(world: World) -> None:
    profile = await world.profile()
    person = await world.person([profile])
    invoice = await world.invoice(profile, "5.00")
    await world.set_billing_latency(2.0)
    user = SlackUser(world.slack, person.user_id)
    result = await world.slack.command(person.user_id, "")
    assert result["status"] == 200 and result["elapsed_ms"] < 1000
    message = await user.wait_new_message(set())
    assert invoice["number"] in texts(message["blocks"])
