"""Approvals end to end over real HTTP: an admin's rule, a payment above it waits for another
person's yes (nothing charged before it), the approver's DM and its updates in place, the
requester's DM, the channel notice naming both; every refusal; races; expiry; a crash between
the decision and the charge."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.slack_user import SlackUser, texts
from tests.e2e.test_payment_safety import exactly_once
from tests.harness import eventually
from tests.e2e.world import Person, Profile, World

pytestmark = pytest.mark.timeout(180) if hasattr(pytest.mark, "timeout") else []

ADMIN = ("invoice_viewer", "billing_profile_admin")


@dataclass
class Team:
    profile: Profile
    admin: SlackUser
    requester: SlackUser
    approver: SlackUser
    second: SlackUser  # the other approver
    outsider: SlackUser  # may see the invoices, not on the approver list


async def a_team(world: World, threshold: str = "1,000.00") -> Team:
    profile = await world.profile(currency="EUR")
    people: list[Person] = [await world.person([profile], permissions=ADMIN)]
    people += [await world.person([profile]) for _ in range(4)]
    admin, requester, approver, second, outsider = (SlackUser(world.slack, p.user_id) for p in people)
    reply = await admin.command(f"approvals {profile.name} {threshold}")
    assert "Approval rule changed" in texts(reply["blocks"]) and "€1,000.00" in texts(reply["blocks"]), reply
    reply = await admin.command(f"approvers {profile.name} <@{approver.user_id}> <@{second.user_id}>")
    assert "Approvers changed" in texts(reply["blocks"]), reply
    return Team(profile, admin, requester, approver, second, outsider)


async def dms(world: World, user_id: str) -> list[dict[str, Any]]:
    return [m for m in await world.slack.messages(channel=user_id) if not m["ephemeral"]]


async def wait_dm(world: World, user_id: str, needle: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        for message in await dms(world, user_id):
            if needle in message["text"] or needle in texts(message["blocks"]):
                return message
        assert time.monotonic() < deadline, (f"no DM to {user_id} with {needle!r}",
                                             [m["text"] for m in await dms(world, user_id)])
        await asyncio.sleep(0.05)


async def request_approval(world: World, team: Team, invoice: dict[str, Any],
                           amount: str | None = None) -> dict[str, Any]:
    """The requester pays above the threshold; returns the modal once it says who was asked."""
    modal = await team.requester.pay_now(await team.requester.command(), invoice["id"])
    form = texts(modal["view"]["blocks"])
    assert "€1,000.00* or more need approval by" in form, form
    assert team.approver.user_id in form and team.second.user_id in form
    result = await team.requester.submit(modal, **({"amount": amount} if amount else {}))
    assert result["status"] == 200, result
    return await team.requester.wait_view(modal["id"], lambda v: "Waiting for approval" in texts(v["view"]["blocks"]))


async def click(world: World, user: SlackUser, message: dict[str, Any], action_id: str) -> str:
    """Click a button of a DM; returns the words the clicker was answered with."""
    before = {m["id"] for m in await world.slack.messages(visible_to=user.user_id)}
    result = await world.slack.click(user.user_id, action_id, message_id=message["id"])
    assert result["status"] == 200, result
    deadline = time.monotonic() + 30
    while True:
        fresh = [m for m in await world.slack.messages(visible_to=user.user_id)
                 if m["id"] not in before and m["ephemeral"] and m["user_id"] == user.user_id]
        if fresh:
            return fresh[-1]["text"] + texts(fresh[-1]["blocks"])
        assert time.monotonic() < deadline, "the click got no answer"
        await asyncio.sleep(0.05)


def audit(world: World, user_id: str) -> str:
    return world.stack.invoicebot("audit", "--user", user_id, "--limit", "200").stdout


def has_buttons(message: dict[str, Any]) -> bool:
    return "approval_approve" in texts(message["blocks"])


async def test_below_the_threshold_pays_at_once_above_it_waits_then_is_charged_once(world: World) -> None:
    team = await a_team(world)
    # This profile's announcement (another test's rule change may be in the channel too).
    notice = await world.wait_for_channel_message(f"changed the approval rule of {team.profile.name}")
    assert team.profile.name in texts(notice["blocks"]) and team.admin.user_id in notice["text"]
    assert "SET_APPROVAL_THRESHOLD".lower() in audit(world, team.admin.user_id)

    small = await world.invoice(team.profile, "400.00")
    done = await team.requester.pay(await team.requester.pay_now(await team.requester.command(), small["id"]))
    assert "Payment received" in texts(done["view"]["blocks"])
    assert [p["amount"] for p in await world.recorded_payments(small["id"])] == ["400.00"]

    large = await world.invoice(team.profile, "1500.00")
    waiting = await request_approval(world, team, large)
    shown = texts(waiting["view"]["blocks"])
    assert "Nothing has been charged" in shown and team.approver.user_id in shown and team.second.user_id in shown
    assert all(pi["amount"] != 150000 for pi in await world.intents(team.profile.customer_id))
    assert await world.recorded_payments(large["id"]) == []
    listed = world.stack.invoicebot("payments", "--status", "awaiting_approval").stdout
    assert large["number"] in listed and "€1,500.00" in listed

    asked = await wait_dm(world, team.approver.user_id, large["number"])
    body = texts(asked["blocks"])
    assert "€1,500.00" in body and team.profile.name in body and "Visa •••• 4242" in body
    assert team.requester.user_id in body and has_buttons(asked) and "Due" in body and "Balance" in body
    other = await wait_dm(world, team.second.user_id, large["number"])
    assert has_buttons(other)
    await asyncio.sleep(1.0)
    assert all(pi["amount"] != 150000 for pi in await world.intents(team.profile.customer_id))  # still nothing

    answer = await click(world, team.approver, asked, "approval_approve")
    assert "Approved and charged" in answer, answer
    recorded = await eventually(lambda: _recorded(world, large["id"], ["1500.00"]))
    assert recorded[0]["paid_by"] == f"{team.requester.user_id.lower()}@acme.example"
    intents = [pi for pi in await world.intents(team.profile.customer_id) if pi["amount"] == 150000]
    assert len(intents) == 1 and intents[0]["status"] == "succeeded"

    told = await wait_dm(world, team.requester.user_id, "went through")
    assert f"Approved by <@{team.approver.user_id}>" in told["text"] + texts(told["blocks"])
    for user in (team.approver, team.second):
        updated = await eventually(lambda u=user: _updated(world, u.user_id, large["number"], "and charged"))
        assert not has_buttons(updated) and f"<@{team.approver.user_id}>" in texts(updated["blocks"])
    notice = await world.wait_for_channel_message(large["number"])
    both = notice["text"] + texts(notice["blocks"])
    assert f"<@{team.requester.user_id}> paid" in both and f"Approved by <@{team.approver.user_id}>" in both
    await asyncio.sleep(1.5)
    assert len(await world.recorded_payments(large["id"])) == 1
    trail = audit(world, team.approver.user_id)
    assert "approval" in trail and "approved" in trail


async def test_refusals_self_approval_outsider_lost_access_and_non_admin(world: World) -> None:
    team = await a_team(world)
    invoice = await world.invoice(team.profile, "2000.00")
    await request_approval(world, team, invoice)
    asked = await wait_dm(world, team.approver.user_id, invoice["number"])

    # The requester (a crafted click on an approver's message) and someone not on the list.
    assert "can't decide it yourself" in await click(world, team.requester, asked, "approval_approve")
    assert "not one of the approvers" in await click(world, team.outsider, asked, "approval_approve")
    # An approver who lost access since the request.
    await world.billing.post("/_sandbox/users", json={
        "email": f"{team.approver.user_id.lower()}@acme.example", "permissions": [],
        "billing_profile_ids": [team.profile.id]})
    assert "no longer have access" in await click(world, team.approver, asked, "approval_approve")

    await asyncio.sleep(0.5)
    assert await world.intents(team.profile.customer_id) == []
    assert await world.recorded_payments(invoice["id"]) == []
    assert "awaiting_approval" in world.stack.invoicebot("payments", "--invoice", invoice["number"]).stdout
    assert "self_approval" in audit(world, team.requester.user_id)
    assert "not_an_approver" in audit(world, team.outsider.user_id)
    assert "lost_access" in audit(world, team.approver.user_id)

    # A non-admin cannot change the rule.
    reply = await team.requester.command(f"approvals {team.profile.name} off")
    assert "Only billing-profile admins" in texts(reply["blocks"])
    reply = await team.requester.command(f"approvers {team.profile.name} <@{team.requester.user_id}>")
    assert "Only billing-profile admins" in texts(reply["blocks"])
    assert "not_billing_profile_admin" in audit(world, team.requester.user_id)
    shown = await team.admin.command("approvals")
    assert "€1,000.00" in texts(shown["blocks"]) and team.requester.user_id not in texts(shown["blocks"])


async def test_two_approvers_at_the_same_instant_one_decision_one_charge(world: World) -> None:
    await _race(world, ("approval_approve", "approval_approve"))


async def test_approve_and_reject_at_the_same_instant_one_decision(world: World) -> None:
    await _race(world, ("approval_approve", "approval_reject_now"))


async def _race(world: World, actions: tuple[str, str]) -> None:
    team = await a_team(world)
    invoice = await world.invoice(team.profile, "1200.00")
    await request_approval(world, team, invoice)
    first = await wait_dm(world, team.approver.user_id, invoice["number"])
    second = await wait_dm(world, team.second.user_id, invoice["number"])

    async def act(user: SlackUser, message: dict[str, Any], action: str) -> str:
        if action == "approval_approve":
            return await click(world, user, message, action)
        return await _reject(world, user, message, "Not this month")

    answers = await asyncio.gather(act(team.approver, first, actions[0]), act(team.second, second, actions[1]))
    decided = [a for a in answers if "already decided" not in a]
    assert len(decided) == 1, answers
    await asyncio.sleep(2.0)
    succeeded = [pi for pi in await world.intents(team.profile.customer_id) if pi["status"] == "succeeded"]
    recorded = await world.recorded_payments(invoice["id"])
    assert len(succeeded) <= 1 and len(recorded) == len(succeeded)
    trace = world.stack.invoicebot("payments", "--invoice", invoice["number"]).stdout
    assert ("recorded" in trace) != ("rejected" in trace), trace
    if "Approved" in decided[0]:
        await exactly_once(world, team.profile, invoice, "1200.00")


async def _reject(world: World, user: SlackUser, message: dict[str, Any], reason: str) -> str:
    result = await world.slack.click(user.user_id, "approval_reject", message_id=message["id"])
    assert result["status"] == 200, result
    opened = await world.slack.wait_for_call(
        "views.open", lambda c: c["params"].get("trigger_id") == result["trigger_id"], timeout=10)
    view_id = opened["response"]["view"]["id"]
    submitted = await world.slack.submit(user.user_id, view_id, {"reason": {"reason": reason}})
    assert submitted["status"] == 200, submitted
    view = await user.wait_view(view_id, lambda v: "Payment request" in texts(v["view"]["blocks"]), timeout=30)
    return texts(view["view"]["blocks"])


async def test_rejection_tells_the_requester_why_and_releases_the_invoice(world: World) -> None:
    team = await a_team(world)
    invoice = await world.invoice(team.profile, "1100.00")
    waiting = await request_approval(world, team, invoice)
    asked = await wait_dm(world, team.approver.user_id, invoice["number"])
    assert "Rejected" in await _reject(world, team.approver, asked, "Wrong cost centre")
    told = await wait_dm(world, team.requester.user_id, "rejected your payment")
    assert "Wrong cost centre" in told["text"] and team.approver.user_id in told["text"]
    # The requester's window, still open, no longer says "waiting" nor offers Withdraw.
    redrawn = await team.requester.wait_view(waiting["id"],
                                             lambda v: "Payment request rejected" in texts(v["view"]["blocks"]))
    assert "Wrong cost centre" in texts(redrawn["view"]["blocks"])
    assert "approval_withdraw" not in texts(redrawn["view"]["blocks"])
    for user in (team.approver, team.second):
        updated = await eventually(lambda u=user: _updated(world, u.user_id, invoice["number"], "Rejected by"))
        assert not has_buttons(updated)
    assert await world.intents(team.profile.customer_id) == []
    # Free again: the outsider pays part of it at once (below the threshold).
    done = await team.outsider.pay(await team.outsider.pay_now(await team.outsider.command(), invoice["id"]),
                                   amount="100.00")
    assert "Payment received" in texts(done["view"]["blocks"])


async def test_a_waiting_request_holds_the_invoice_until_it_expires(world: World) -> None:
    team = await a_team(world)
    invoice = await world.invoice(team.profile, "1300.00")
    waiting = await request_approval(world, team, invoice)
    await wait_dm(world, team.approver.user_id, invoice["number"])

    modal = await team.outsider.pay_now(await team.outsider.command(), invoice["id"])
    result = await team.outsider.submit(modal, amount="100.00")
    assert result["status"] == 200
    refused = await team.outsider.wait_view(modal["id"], lambda v: "Waiting for approval" in texts(v["view"]["blocks"]))
    assert "Nothing was charged" in texts(refused["view"]["blocks"])
    assert team.requester.user_id in texts(refused["view"]["blocks"])

    try:
        world.stack.move_clock(73 * 3600)  # past APPROVAL_TTL_HOURS (72)
        told = await wait_dm(world, team.requester.user_id, "expired", timeout=30)
        assert invoice["number"] in told["text"]
        await team.requester.wait_view(waiting["id"], lambda v: "Payment request expired" in texts(v["view"]["blocks"]))
        for user in (team.approver, team.second):
            updated = await eventually(lambda u=user: _updated(world, u.user_id, invoice["number"], "Expired"))
            assert not has_buttons(updated)
    finally:
        world.stack.move_clock(0)
    done = await team.outsider.pay(await team.outsider.pay_now(await team.outsider.command(), invoice["id"]),
                                   amount="100.00")
    assert "Payment received" in texts(done["view"]["blocks"])
    assert "expired" in world.stack.invoicebot("payments", "--invoice", invoice["number"]).stdout


async def test_the_requester_withdraws(world: World) -> None:
    team = await a_team(world)
    invoice = await world.invoice(team.profile, "1400.00")
    waiting = await request_approval(world, team, invoice)
    await wait_dm(world, team.approver.user_id, invoice["number"])
    result = await world.slack.click(team.requester.user_id, "approval_withdraw", view_id=waiting["id"])
    assert result["status"] == 200, result
    await team.requester.wait_view(waiting["id"], lambda v: "withdrawn" in texts(v["view"]["blocks"]))
    for user in (team.approver, team.second):
        updated = await eventually(lambda u=user: _updated(world, u.user_id, invoice["number"], "Withdrawn"))
        assert not has_buttons(updated)
    assert await world.intents(team.profile.customer_id) == []


async def test_approval_after_the_invoice_was_paid_by_other_means_charges_nothing(world: World) -> None:
    team = await a_team(world)
    invoice = await world.invoice(team.profile, "1600.00")
    await request_approval(world, team, invoice)
    asked = await wait_dm(world, team.approver.user_id, invoice["number"])
    wire = await world.billing.post(f"/v1/invoices/{invoice['id']}/payments", json={
        "payment_id": "wire_" + invoice["id"], "amount": "1600.00", "currency": "EUR", "method": "card",
        "processor": "wire", "processor_payment_id": "wire", "status": "succeeded", "paid_by": "ap@acme.example"})
    assert wire.status_code == 201, wire.text

    answer = await click(world, team.approver, asked, "approval_approve")
    assert "Not charged" in answer and "paid" in answer, answer
    told = await wait_dm(world, team.requester.user_id, "was not charged")
    assert "paid" in told["text"] and team.approver.user_id in told["text"]
    updated = await eventually(lambda: _updated(world, team.approver.user_id, invoice["number"], "Not charged"))
    assert not has_buttons(updated)
    assert await world.intents(team.profile.customer_id) == []
    assert [p["payment_id"] for p in await world.recorded_payments(invoice["id"])] == ["wire_" + invoice["id"]]


async def test_killed_between_the_approval_and_the_charge_then_reconcile_charges_once(world: World) -> None:
    team = await a_team(world)
    invoice = await world.invoice(team.profile, "1700.00")
    world.stack.processes["app"].stop()
    victim = world.stack.start_app(name="victim-approval", port=world.stack.app_port)
    try:
        await request_approval(world, team, invoice)
        asked = await wait_dm(world, team.approver.user_id, invoice["number"])
        # Stripe slow to create the PaymentIntent: the server dies with the payment approved.
        await world.stripe_fault(r"^/v1/payment_intents$", "delay", delay_seconds=12)
        clicked = time.monotonic()
        await world.slack.click(team.approver.user_id, "approval_approve", message_id=asked["id"])
        await eventually(lambda: _status(world, invoice["number"], "approved"))
        assert time.monotonic() - clicked < 10, "too slow to kill the server before the charge"
        victim.kill()
        await world.clear_stripe_faults()
        assert await world.recorded_payments(invoice["id"]) == []
        # Stripe may still be finishing the dead server's request: a retry with the same
        # idempotency key meanwhile is refused (and retried later); once it is done, the
        # reconciler's create returns that very PaymentIntent.
        await asyncio.sleep(max(0.0, clicked + 13 - time.monotonic()))
        reconciled = world.stack.invoicebot("reconcile")
        assert "approved -> recorded" in reconciled.stdout, reconciled.stdout + reconciled.stderr[-3000:]
        await exactly_once(world, team.profile, invoice, "1700.00")
        assert "changed 0" in world.stack.invoicebot("reconcile").stdout
    finally:
        victim.stop()
        world.stack.start_app()


@pytest.mark.postgres
async def test_two_approvers_at_once_on_two_workers_postgresql(world: World) -> None:
    if not world.stack.database_url.startswith("postgresql"):
        pytest.skip("needs INVOICEBOT_TEST_POSTGRES (PostgreSQL, two worker processes)")
    world.stack.processes["app"].stop()
    workers = world.stack.start_app(name="two-workers", port=world.stack.app_port, workers=2)
    try:
        await _race(world, ("approval_approve", "approval_approve"))
        await _race(world, ("approval_approve", "approval_reject_now"))
    finally:
        workers.stop()
        world.stack.start_app()


async def _recorded(world: World, invoice_id: str, amounts: list[str]) -> list[dict[str, Any]]:
    recorded = await world.recorded_payments(invoice_id)
    assert [p["amount"] for p in recorded] == amounts, recorded
    return recorded


async def _updated(world: World, user_id: str, number: str, needle: str) -> dict[str, Any]:
    mine = [m for m in await dms(world, user_id) if number in texts(m["blocks"])]
    assert mine and needle in texts(mine[0]["blocks"]), [texts(m["blocks"]) for m in mine]
    assert len(mine) == 1, "updated in place, not a second message"
    return mine[0]


async def _status(world: World, number: str, status: str) -> None:
    assert status in world.stack.invoicebot("payments", "--invoice", number).stdout


