"""Scheduled payments end to end: Pay Now's *when to pay*, the confirmation and DM with
Cancel, `/invoices scheduled`, and on the day (the bot's clock moved) one charge and one
record after checking the balance, access and method again."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest

from sandbox.processes import free_port
from tests.e2e.slack_user import SlackUser, texts
from tests.e2e.test_payment_outcomes import dms_about
from tests.e2e.world import Person, World
from tests.harness import Stack
from tests.harness import eventually as settled


def jobs(stack: Stack) -> list[dict[str, Any]]:
    return json.loads(stack.invoicebot("jobs", "--json", "--limit", "1000").stdout)


async def eventually(fetch: Any, keep: Any = None, timeout: float = 30.0, every: float = 0.3) -> Any:
    """`fetch()` (a coroutine) until it, or `keep` of it, is not empty (the harness's loop)."""
    async def check() -> Any:
        result = await fetch()
        result = keep(result) if keep is not None else result
        assert result, "never happened"
        return result
    return await settled(check, timeout=timeout, every=every)


def seconds_until(day: dt.date, *, after: int = 30) -> int:
    """From now to 09:00 UTC (DEFAULT_TIMEZONE in the test stack) on `day`, plus `after` s."""
    at = dt.datetime.combine(day, dt.time(9, 0), tzinfo=dt.UTC)
    return int((at - dt.datetime.now(dt.UTC)).total_seconds()) + after


async def schedule(world: World, person: Person, invoice: dict[str, Any], *, when: str = "due",
                   on: dt.date | None = None, amount: str | None = None) -> dict[str, Any]:
    """Pay Now, choose *when to pay*, submit; returns the modal once it shows how it ended."""
    user = SlackUser(world.slack, person.user_id)
    listing = await user.command(invoice["number"])
    modal = await user.pay_now(listing, invoice["id"])
    assert "When to pay" in texts(modal["view"]["blocks"])
    values: dict[str, Any] = {"pay_when": {"pay_when": when}}
    if on is not None:
        values["pay_on"] = {"pay_on": on.isoformat()}
    if amount is not None:
        values["amount"] = {"amount": amount}
    result = await world.slack.submit(person.user_id, modal["id"], values)
    assert result["status"] == 200, result
    return await user.wait_view(modal["id"], lambda v: "Scheduling your payment" not in texts(v["view"]["blocks"]))


async def record_wire(world: World, invoice: dict[str, Any], amount: str) -> None:
    """Someone pays (part of) the invoice by wire, outside the bot."""
    response = await world.billing.post(f"/v1/invoices/{invoice['id']}/payments", json={
        "payment_id": f"wire-{invoice['id']}", "amount": amount, "currency": invoice["currency"],
        "method": "bank_debit", "processor": "wire", "processor_payment_id": f"wire-{invoice['id']}",
        "status": "succeeded", "paid_by": "treasury@acme.example"})
    assert response.status_code in (200, 201), response.text


def due_on(invoice: dict[str, Any]) -> dt.date:
    return dt.date.fromisoformat(invoice["due_on"])


async def test_a_payment_scheduled_for_the_due_date_is_charged_once_on_the_day(world: World) -> None:
    profile = await world.profile(currency="EUR", cards=("visa",))
    person = await world.person([profile])
    invoice = await world.invoice(profile, "250.00", due_in_days=3)
    done = await schedule(world, person, invoice)
    shown = texts(done["view"]["blocks"])
    assert "Payment scheduled" in shown and "€250.00" in shown and invoice["number"] in shown
    assert "09:00 (UTC)" in shown and "Visa •••• 4242" in shown and "Cancel payment" in shown
    assert await world.intents(profile.customer_id or "") == []  # nothing charged yet

    dm = await eventually(lambda: dms_about(world, person.user_id, invoice))
    assert "You scheduled a payment" in dm[0]["text"] and "Cancel payment" in texts(dm[0]["blocks"])
    listed = texts((await SlackUser(world.slack, person.user_id).command("scheduled"))["blocks"])
    assert invoice["number"] in listed and "Cancel payment" in listed
    listing = texts((await SlackUser(world.slack, person.user_id).command(invoice["number"]))["blocks"])
    assert "payment scheduled" in listing
    waiting = [j for j in jobs(world.stack) if j["kind"] == "scheduled_payment" and j["state"] == "scheduled"]
    [mine] = [j for j in waiting if j["due_at"] == f"{invoice['due_on']} 09:00:00"
              and j["key"].startswith(f"payment:{done['id']}:")]

    world.stack.move_clock(seconds_until(due_on(invoice)))
    try:
        recorded = await eventually(lambda: world.recorded_payments(invoice["id"]))
        assert len(recorded) == 1 and recorded[0]["amount"] == "250.00" and recorded[0]["paid_by"] == person.email
        notice = await world.wait_for_channel_message(invoice["number"], timeout=30)
        assert "€250.00" in texts(notice["blocks"]) and "scheduled payment" in texts(notice["blocks"])
        went = await eventually(lambda: dms_about(world, person.user_id, invoice),
                                lambda ms: [m for m in ms if "went through" in m["text"]])
        assert len(went) == 1
        await asyncio.sleep(3)  # more scheduler passes change nothing
        assert len(await world.recorded_payments(invoice["id"])) == 1
        [intent] = await world.intents(profile.customer_id or "")
        assert intent["status"] == "succeeded" and intent["amount"] == 25000
        assert len(await world.notifications_about(invoice["number"])) == 1
        assert (await world.invoice_now(invoice["id"]))["status"] == "paid"
        [job] = [j for j in jobs(world.stack) if j["key"] == mine["key"]]
        assert job["state"] == "done" and job["attempts"] == 1 and "recorded" in (job["note"] or "")
    finally:
        world.stack.move_clock(0)


async def test_a_cancelled_scheduled_payment_charges_nothing(world: World) -> None:
    profile = await world.profile(currency="EUR", cards=("visa",))
    person = await world.person([profile])
    invoice = await world.invoice(profile, "99.00", due_in_days=5)
    chosen = dt.date.today() + dt.timedelta(days=2)
    done = await schedule(world, person, invoice, when="date", on=chosen)
    assert "Payment scheduled" in texts(done["view"]["blocks"])
    click = await world.slack.click(person.user_id, "cancel_scheduled_payment", view_id=done["id"])
    assert click["status"] == 200, click
    user = SlackUser(world.slack, person.user_id)
    cancelled = await user.wait_view(done["id"], lambda v: "Scheduled payment cancelled" in texts(v["view"]["blocks"]))
    assert "Nothing was charged" in texts(cancelled["view"]["blocks"])
    assert invoice["number"] not in texts((await user.command("scheduled"))["blocks"])

    world.stack.move_clock(seconds_until(chosen, after=60))
    try:
        await asyncio.sleep(4)
        assert await world.intents(profile.customer_id or "") == []
        assert await world.recorded_payments(invoice["id"]) == []
    finally:
        world.stack.move_clock(0)
    assert any("was cancelled" in m["text"] for m in await dms_about(world, person.user_id, invoice))
    audit = world.stack.invoicebot("audit", "--json", "--limit", "2000").stdout
    assert '"canceled"' in audit


async def test_on_the_day_the_balance_access_and_invoice_are_checked_again(world: World) -> None:
    profile = await world.profile(currency="EUR", cards=("visa",))
    payer = await world.person([profile])
    partly = await world.invoice(profile, "300.00", due_in_days=2)
    in_full = await world.invoice(profile, "120.00", due_in_days=2)
    other = await world.profile(currency="EUR", cards=("visa",))
    leaver = await world.person([other])
    no_access = await world.invoice(other, "75.00", due_in_days=2)
    for person, invoice in ((payer, partly), (payer, in_full), (leaver, no_access)):
        assert "Payment scheduled" in texts((await schedule(world, person, invoice))["view"]["blocks"])

    await record_wire(world, partly, "100.00")  # 200.00 left
    await record_wire(world, in_full, "120.00")  # nothing left
    response = await world.billing.post("/_sandbox/users", json={  # the leaver loses the profile
        "email": leaver.email, "permissions": ["invoice_viewer"], "billing_profile_ids": []})
    assert response.status_code in (200, 201), response.text

    world.stack.move_clock(seconds_until(due_on(partly)))
    try:
        paid = await eventually(lambda: world.recorded_payments(partly["id"]),
                                lambda ps: [p for p in ps if p["processor"] == "stripe"])
        assert [p["amount"] for p in paid] == ["200.00"]
        told = await eventually(lambda: dms_about(world, payer.user_id, partly),
                                lambda ms: [m for m in ms if "pays the balance" in m["text"]])
        assert "€200.00" in told[0]["text"]
        why = await eventually(lambda: dms_about(world, payer.user_id, in_full),
                               lambda ms: [m for m in ms if "nothing left to pay" in m["text"]])
        assert "Nothing was charged" in why[0]["text"] or "nothing was charged" in why[0]["text"]
        lost = await eventually(lambda: dms_about(world, leaver.user_id, no_access),
                                lambda ms: [m for m in ms if "no longer have access" in m["text"]])
        assert lost
        await asyncio.sleep(2)
        assert [p["processor"] for p in await world.recorded_payments(in_full["id"])] == ["wire"]
        assert await world.recorded_payments(no_access["id"]) == []
        assert await world.intents(other.customer_id or "") == []
        [intent] = await world.intents(profile.customer_id or "")
        assert intent["amount"] == 20000
    finally:
        world.stack.move_clock(0)


async def test_a_declined_scheduled_payment_tells_the_payer_with_pay_now(world: World) -> None:
    profile = await world.profile(currency="EUR", cards=("declines",), default="declines")
    person = await world.person([profile])
    invoice = await world.invoice(profile, "60.00", due_in_days=2)
    assert "Payment scheduled" in texts((await schedule(world, person, invoice))["view"]["blocks"])
    world.stack.move_clock(seconds_until(due_on(invoice)))
    try:
        told = await eventually(lambda: dms_about(world, person.user_id, invoice),
                                lambda ms: [m for m in ms if "was not made" in m["text"]])
        buttons = [e for b in told[0]["blocks"] if b["type"] == "actions" for e in b["elements"]]
        assert [b["text"]["text"] for b in buttons] == ["Pay Now"]
        assert json.loads(buttons[0]["value"])["invoice"] == invoice["id"]
        assert await world.recorded_payments(invoice["id"]) == []
        assert [pi["status"] for pi in await world.intents(profile.customer_id or "")] != ["succeeded"]
    finally:
        world.stack.move_clock(0)


async def test_a_payment_more_than_a_day_late_asks_the_payer_instead_of_charging(world: World) -> None:
    profile = await world.profile(currency="EUR", cards=("visa",))
    person = await world.person([profile])
    invoice = await world.invoice(profile, "45.00", due_in_days=2)
    # Every server is down over the day: the job is found two days late.
    world.stack.processes["app"].stop()
    try:
        world.stack.start_app()
        done = await schedule(world, person, invoice)
        assert "Payment scheduled" in texts(done["view"]["blocks"])
        world.stack.processes["app"].stop()
        world.stack.move_clock(seconds_until(due_on(invoice)) + 2 * 24 * 3600)
    finally:
        world.stack.start_app()
    try:
        told = await eventually(lambda: dms_about(world, person.user_id, invoice),
                                lambda ms: [m for m in ms if "could not run on its day" in m["text"]])
        assert "Pay Now" in texts(told[0]["blocks"])
        await asyncio.sleep(2)
        assert await world.intents(profile.customer_id or "") == []
        assert await world.recorded_payments(invoice["id"]) == []
        # The operator's view: the job ran once and chose not to charge (not failed, not retried).
        [job] = [j for j in jobs(world.stack) if j["kind"] == "scheduled_payment"
                 and j["key"].startswith(f"payment:{done['id']}:")]
        assert job["state"] == "skipped" and job["attempts"] == 1, job
        assert len([m for m in await dms_about(world, person.user_id, invoice) if "could not run" in m["text"]]) == 1
    finally:
        world.stack.move_clock(0)

async def test_a_server_killed_while_a_scheduled_payment_runs_another_finishes_it_once(world: World) -> None:
    profile = await world.profile(currency="EUR", cards=("visa",))
    person = await world.person([profile])
    invoice = await world.invoice(profile, "410.00", due_in_days=2)
    # The only server is the one that dies; its leases last 5 s.
    world.stack.processes["app"].stop()
    victim = world.stack.start_app(name="victim", port=world.stack.app_port, SCHEDULER_LEASE_SECONDS="5")
    survivor = None
    try:
        assert "Payment scheduled" in texts((await schedule(world, person, invoice))["view"]["blocks"])
        # Stripe takes its time with the confirmation: the job is mid-way when the server dies.
        await world.stripe_fault(r"^/v1/payment_intents/[^/]+/confirm$", "delay", delay_seconds=6)
        world.stack.move_clock(seconds_until(due_on(invoice)))
        await eventually(lambda: world.intents(profile.customer_id or ""))
        running = [j for j in jobs(world.stack) if j["kind"] == "scheduled_payment" and j["state"] == "running"]
        assert running, jobs(world.stack)
        victim.kill()
        assert await world.recorded_payments(invoice["id"]) == []

        survivor = world.stack.start_app()
        recorded = await eventually(lambda: world.recorded_payments(invoice["id"]), timeout=60)
        assert [p["amount"] for p in recorded] == ["410.00"]
        await eventually(lambda: dms_about(world, person.user_id, invoice),
                         lambda ms: [m for m in ms if "went through" in m["text"]])
        await world.wait_for_channel_message(invoice["number"], timeout=30)
        await asyncio.sleep(3)
        assert len(await world.recorded_payments(invoice["id"])) == 1
        assert [pi["status"] for pi in await world.intents(profile.customer_id or "")] == ["succeeded"]
        assert len(await world.notifications_about(invoice["number"])) == 1
        finished = [j for j in jobs(world.stack) if j["kind"] == "scheduled_payment" and j["key"] == running[0]["key"]]
        assert finished[0]["state"] == "done" and finished[0]["attempts"] == 2  # taken over after the lease
    finally:
        world.stack.move_clock(0)
        await world.clear_stripe_faults()
        victim.stop()
        if survivor is None:
            world.stack.start_app()


async def test_two_servers_on_postgresql_run_100_payments_due_the_same_minute_once_each(world: World) -> None:
    if not world.stack.database_url.startswith("postgresql"):
        pytest.skip("two servers sharing jobs is a PostgreSQL deployment (INVOICEBOT_TEST_POSTGRES)")
    profile = await world.profile(currency="EUR", cards=("visa",))
    payers = [await world.person([profile]) for _ in range(4)]
    invoices = [await world.invoice(profile, f"{10 + n}.00", due_in_days=2) for n in range(100)]
    second = world.stack.start_app(name="second", port=free_port())
    try:
        for start in range(0, 100, 4):
            views = await asyncio.gather(*(schedule(world, payers[n % 4], invoices[n])
                                           for n in range(start, start + 4)))
            assert all("Payment scheduled" in texts(v["view"]["blocks"]) for v in views)
        world.stack.move_clock(seconds_until(due_on(invoices[0]), after=5))

        async def recorded_all() -> bool:
            counts = await asyncio.gather(*(world.recorded_payments(i["id"]) for i in invoices))
            return all(counts)
        await eventually(recorded_all, timeout=180, every=1.0)
        await asyncio.sleep(3)
        for invoice in invoices:
            [payment] = await world.recorded_payments(invoice["id"])
            assert payment["amount"] == invoice["amount_due"]
        intents = await world.intents(profile.customer_id or "")
        assert len(intents) == 100 and all(pi["status"] == "succeeded" for pi in intents)

        async def announced() -> bool:
            body = texts([m["blocks"] for m in await world.channel_messages()])
            return all(i["number"] in body for i in invoices)
        await eventually(announced, timeout=120, every=1.0)
        for invoice in invoices:
            assert len(await world.notifications_about(invoice["number"])) == 1
        audit = json.loads(world.stack.invoicebot("audit", "--json", "--limit", "5000").stdout)
        ran = [e for e in audit if e["action"] == "job:scheduled_payment" and e["outcome"] == "ran"
               and e["invoice_id"] in {i["id"] for i in invoices}]
        assert len(ran) == 100, sorted({(e["action"], e["outcome"]) for e in audit})
        assert len({e["detail"]["worker"] for e in ran}) == 2  # both servers took a share
    finally:
        world.stack.move_clock(0)
        second.stop()


async def _approval_team(world: World, amount: str) -> tuple[Any, Person, Person, dict[str, Any]]:
    """A profile whose payments of EUR 100 or more need the admin's approval, a payer, an invoice."""
    profile = await world.profile(currency="EUR", cards=("visa",))
    admin = await world.person([profile], permissions=("invoice_viewer", "billing_profile_admin"))
    payer = await world.person([profile])
    boss = SlackUser(world.slack, admin.user_id)
    assert "100" in texts((await boss.command(f"approvals {profile.id} 100"))["blocks"])
    assert "Approvers changed" in texts((await boss.command(f"approvers {profile.id} <@{admin.user_id}>"))["blocks"])
    invoice = await world.invoice(profile, amount, due_in_days=3)
    return profile, admin, payer, invoice


async def _approver_dm(world: World, approver: Person, invoice: dict[str, Any], needle: str) -> dict[str, Any]:
    async def found() -> list[dict[str, Any]]:
        messages = await world.slack.messages(channel=approver.user_id)
        return [m for m in messages if not m["ephemeral"] and invoice["number"] in texts(m["blocks"])
                and needle in texts(m["blocks"])]
    return (await eventually(found))[0]


async def test_a_payment_needing_approval_is_approved_before_its_day_then_charged_once_on_it(world: World) -> None:
    profile, admin, payer, invoice = await _approval_team(world, "250.00")
    done = await schedule(world, payer, invoice)
    shown = texts(done["view"]["blocks"])
    assert "Payment scheduled" in shown and "Needs approval first" in shown and admin.user_id in shown, shown
    # The approver is asked now, with the day; nothing is charged.
    asked = await _approver_dm(world, admin, invoice, "approval_approve")
    body = texts(asked["blocks"])
    assert "Scheduled for" in body and "€250.00" in body and payer.user_id in body
    assert await world.intents(profile.customer_id or "") == []
    # While it waits, nobody can pay the same balance now.
    other = SlackUser(world.slack, admin.user_id)
    form = await other.pay_now(await other.command(invoice["number"]), invoice["id"])
    assert "A payment on this invoice is waiting for approval" in texts(form["view"]["blocks"])

    result = await world.slack.click(admin.user_id, "approval_approve", message_id=asked["id"])
    assert result["status"] == 200, result
    told = await eventually(lambda: dms_about(world, payer.user_id, invoice),
                            lambda ms: [m for m in ms if "approved your payment" in m["text"]])
    assert f"<@{admin.user_id}>" in told[0]["text"] and "will be charged" in told[0]["text"]
    await _approver_dm(world, admin, invoice, "will be charged")
    await asyncio.sleep(1.0)
    assert await world.intents(profile.customer_id or "") == []  # approved, still nothing before the day
    assert await world.recorded_payments(invoice["id"]) == []

    world.stack.move_clock(seconds_until(due_on(invoice)))
    try:
        recorded = await eventually(lambda: world.recorded_payments(invoice["id"]))
        assert [r["amount"] for r in recorded] == ["250.00"] and recorded[0]["paid_by"] == payer.email
        went = await eventually(lambda: dms_about(world, payer.user_id, invoice),
                                lambda ms: [m for m in ms if "went through" in m["text"]])
        assert f"Approved by <@{admin.user_id}>" in went[0]["text"] + texts(went[0]["blocks"])
        charged = await _approver_dm(world, admin, invoice, "and charged")
        assert "approval_approve" not in texts(charged["blocks"])
        notice = await world.wait_for_channel_message(invoice["number"], timeout=30)
        both = notice["text"] + texts(notice["blocks"])
        assert f"Approved by <@{admin.user_id}>" in both and "scheduled payment" in both
        await asyncio.sleep(2)
        assert len(await world.recorded_payments(invoice["id"])) == 1
        [intent] = await world.intents(profile.customer_id or "")
        assert intent["status"] == "succeeded" and intent["amount"] == 25000
    finally:
        world.stack.move_clock(0)


async def test_a_scheduled_payment_nobody_approved_by_its_day_charges_nothing(world: World) -> None:
    profile, admin, payer, invoice = await _approval_team(world, "180.00")
    assert "Needs approval first" in texts((await schedule(world, payer, invoice))["view"]["blocks"])
    await _approver_dm(world, admin, invoice, "approval_approve")
    # The approver never decides; the day comes (within APPROVAL_TTL_HOURS of the request).
    world.stack.move_clock(seconds_until(due_on(invoice)))
    try:
        told = await eventually(lambda: dms_about(world, payer.user_id, invoice),
                                lambda ms: [m for m in ms if "nobody approved it before its day" in m["text"]])
        assert "nothing was charged" in told[0]["text"].lower()
        ended = await _approver_dm(world, admin, invoice, "will not be made")
        assert "approval_approve" not in texts(ended["blocks"])  # no live buttons left
        await asyncio.sleep(2)
        assert await world.intents(profile.customer_id or "") == []
        assert await world.recorded_payments(invoice["id"]) == []
        assert "expired" in world.stack.invoicebot("payments", "--invoice", invoice["number"]).stdout
    finally:
        world.stack.move_clock(0)


async def test_cancelling_a_scheduled_payment_that_waits_for_approval_ends_its_request(world: World) -> None:
    profile, admin, payer, invoice = await _approval_team(world, "150.00")
    done = await schedule(world, payer, invoice)
    await _approver_dm(world, admin, invoice, "approval_approve")
    result = await world.slack.click(payer.user_id, "cancel_scheduled_payment", view_id=done["id"])
    assert result["status"] == 200, result
    ended = await _approver_dm(world, admin, invoice, "will not be made")
    assert "approval_approve" not in texts(ended["blocks"]) and "cancelled by" in texts(ended["blocks"])
    assert "withdrawn" in world.stack.invoicebot("payments", "--invoice", invoice["number"]).stdout
    # The invoice is free again: paying it now is not refused as waiting for approval.
    other = SlackUser(world.slack, payer.user_id)
    form = await other.pay_now(await other.command(invoice["number"]), invoice["id"])
    assert "Pay with" in texts(form["view"]["blocks"]) and "A payment on this invoice" not in texts(
        form["view"]["blocks"])
    assert await world.intents(profile.customer_id or "") == []
