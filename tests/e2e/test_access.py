"""Who may see and pay what: checked on the server at every step, whatever the payload says."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from tests.e2e.slack_user import SlackUser, texts
from tests.e2e.world import World


@pytest.mark.parametrize(("setup", "expected"), [
    ({"permissions": ()}, "You can't view invoices"),
    ({"in_billing": False}, "You're not set up in billing yet"),
    ({"has_email": False}, "We can't tell who you are"),
    ({"no_profiles": True}, "No billing profiles assigned"),
])
async def test_each_access_problem_gets_its_own_explanation(world: World, setup: dict, expected: str) -> None:
    profile = await world.profile()
    await world.invoice(profile, "10.00")
    profiles = [] if setup.pop("no_profiles", False) else [profile]
    person = await world.person(profiles, **setup)
    reply = texts((await SlackUser(world.slack, person.user_id).command())["blocks"])
    assert expected in reply
    assert "Traceback" not in reply and profile.name not in reply


async def test_someone_else_s_invoice_by_a_crafted_button_is_refused_and_audited(world: World) -> None:
    mine, theirs = await world.profile(), await world.profile()
    person = await world.person([mine])
    await world.invoice(mine, "10.00")
    foreign = await world.invoice(theirs, "999.00")
    user = SlackUser(world.slack, person.user_id)
    listing = await user.command()
    action_id = next(b["accessory"]["action_id"] for b in listing["blocks"] if "accessory" in b)

    click = await user.click_in_message(listing, action_id,
                                        tamper_value=json.dumps({"invoice": foreign["id"], "q": ""}))
    opened = await world.slack.wait_for_call("views.open", lambda c: c["params"].get("trigger_id") == click["trigger_id"])
    view_id = opened["response"]["view"]["id"]
    view = await user.wait_view(view_id, lambda v: "Loading" not in texts(v["view"]["blocks"]))
    body = texts(view["view"]["blocks"])
    assert "You can't pay this invoice" in body and "999" not in body and theirs.name not in body
    assert not view["view"].get("submit")
    assert await world.intents(theirs.customer_id) == []

    audit = world.stack.invoicebot("audit", "--user", person.user_id).stdout
    assert "open_pay_now" in audit and "denied" in audit and foreign["id"] in audit


async def test_a_submission_with_someone_else_s_form_is_refused(world: World) -> None:
    profile = await world.profile()
    victim, attacker = await world.person([profile]), await world.person([profile])
    invoice = await world.invoice(profile, "300.00")
    victim_modal = await SlackUser(world.slack, victim.user_id).pay_now(
        await SlackUser(world.slack, victim.user_id).command(), invoice["id"])
    attacker_user = SlackUser(world.slack, attacker.user_id)
    attacker_modal = await attacker_user.pay_now(await attacker_user.command(), invoice["id"])

    # The attacker's own submission, with the victim's form session pasted in.
    probe = await attacker_user.submit(attacker_modal, amount="not a number")
    payload = probe["payload"]
    payload["view"]["private_metadata"] = victim_modal["view"]["private_metadata"]
    result = await attacker_user.submit(attacker_modal, raw_payload=payload)
    assert result["status"] == 200
    assert "This form has expired" in json.dumps(result["body"])
    assert await world.intents(profile.customer_id) == []
    assert await world.recorded_payments(invoice["id"]) == []


async def test_an_invoice_paid_meanwhile_is_not_charged_again(world: World) -> None:
    profile = await world.profile()
    person = await world.person([profile])
    invoice = await world.invoice(profile, "70.00")
    user = SlackUser(world.slack, person.user_id)
    modal = await user.pay_now(await user.command(), invoice["id"])

    wire = await world.billing.post(f"/v1/invoices/{invoice['id']}/payments", json={
        "payment_id": "wire_1_" + invoice["id"], "amount": "70.00", "currency": "EUR", "method": "card",
        "processor": "wire", "processor_payment_id": "wire", "status": "succeeded", "paid_by": "ap@acme.example"})
    assert wire.status_code == 201

    result = await user.submit(modal)
    assert result["status"] == 200
    view = await user.wait_view(modal["id"], lambda v: "Nothing to pay on this invoice" in texts(v["view"]["blocks"]))
    assert "Nothing was charged" in texts(view["view"]["blocks"])
    assert await world.intents(profile.customer_id) == []


async def test_an_amount_above_a_balance_lowered_meanwhile_is_refused(world: World) -> None:
    profile = await world.profile()
    person = await world.person([profile])
    invoice = await world.invoice(profile, "500.00")
    user = SlackUser(world.slack, person.user_id)
    modal = await user.pay_now(await user.command(), invoice["id"])
    await world.billing.post(f"/v1/invoices/{invoice['id']}/payments", json={
        "payment_id": "wire_2_" + invoice["id"], "amount": "200.00", "currency": "EUR", "method": "card",
        "processor": "wire", "processor_payment_id": "wire", "status": "succeeded", "paid_by": "ap@acme.example"})

    result = await user.submit(modal)  # the prefilled 500.00, stale now
    assert result["status"] == 200
    # Only the fresh read knows: the form comes back saying why, with the amount kept.
    view = await user.wait_view(modal["id"], lambda v: "€300.00" in texts(v["view"]["blocks"]))
    shown = texts(view["view"]["blocks"])
    assert "more than the balance due of €300.00" in shown and "Nothing was charged" in shown
    assert view["view"].get("submit")
    assert await world.intents(profile.customer_id) == []
    assert Decimal((await world.invoice_now(invoice["id"]))["amount_due"]) == Decimal("300.00")


@pytest.mark.parametrize("tamper", ["forged", "missing", "stale"])
async def test_requests_not_signed_by_slack_are_refused_and_do_nothing(world: World, tamper: str) -> None:
    profile = await world.profile()
    person = await world.person([profile])
    before = max((c["seq"] for c in await world.slack.calls()), default=0)
    overrides = {"forged": {"signature": "v0=" + "0" * 64},
                 "missing": {"sign": False},
                 "stale": {"timestamp": int(time.time()) - 6 * 60}}[tamper]
    result = await world.slack.command(person.user_id, "", **overrides)
    assert result["status"] == 401
    assert [c for c in await world.slack.calls() if c["seq"] > before] == []
