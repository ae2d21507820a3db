"""Every submission has one outcome, told truthfully to the person who made it: copies of
one submission, a charge the billing API will not record (resolved by an operator), an
expired click, a server killed mid-payment, a refusal at submit time."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.e2e.slack_user import SlackUser, pay_buttons, texts
from tests.e2e.test_payment_safety import _charged, exactly_once, open_modal, signed, submission_payload
from tests.e2e.world import Person, Profile, World
from tests.harness import eventually

pytestmark = pytest.mark.timeout(180) if hasattr(pytest.mark, "timeout") else []

RECORD_PATH = r"^/v1/invoices/[^/]+/payments$"


async def dms(world: World, user_id: str) -> list[dict[str, Any]]:
    """The bot's direct messages to this person."""
    return [m for m in await world.slack.messages(channel="D" + user_id.removeprefix("U")) if not m["ephemeral"]]


async def dms_about(world: World, user_id: str, invoice: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in await dms(world, user_id) if invoice["number"] in m["text"]]


def shown_in(history: list[dict[str, Any]]) -> list[str]:
    return [texts(version["blocks"]) for version in history]


async def billing_refuses(world: World, status: int = 422, code: str = "amount_exceeds_balance") -> None:
    response = await world.billing.post("/_sandbox/faults", json={
        "method": "POST", "path_regex": RECORD_PATH, "status": status, "count": 1000, "code": code,
        "message": "The amount exceeds the invoice's balance due."})
    assert response.status_code in (200, 201), response.text


# -- one outcome per submission ----------------------------------------------------------
async def test_twenty_copies_of_one_submission_make_one_payment_and_every_view_tells_the_truth(world: World) -> None:
    profile = await world.profile()
    invoice = await world.invoice(profile, "275.00")
    user, modal = await open_modal(world, profile, invoice)
    payload = await submission_payload(user, modal, "275.00")
    body = urlencode({"payload": json.dumps(payload)})

    async with httpx.AsyncClient(timeout=10) as http:
        answers = await asyncio.gather(*(
            http.post(f"{world.stack.app_url}/slack/events", content=body,
                      headers={**signed(body), **({"X-Slack-Retry-Num": str(i)} if i else {})})
            for i in range(20)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    # What each copy answered Slack at once is a view too: none may claim nothing was charged.
    for answer in answers:
        if answer.content:
            assert "nothing was charged" not in answer.text.lower(), answer.text

    await exactly_once(world, profile, invoice, "275.00")
    intents = await world.intents(profile.customer_id)
    assert len(intents) == 1 and intents[0]["status"] == "succeeded", intents

    async def settled_view() -> dict[str, Any]:
        view = await user.view(modal["id"])
        assert "Payment received" in texts(view["history"][-1]["blocks"]), shown_in(view["history"])[-1]
        return view

    view = await eventually(settled_view)
    await asyncio.sleep(2.0)  # every copy has had its chance to update the view
    view = await settled_view()
    history = view["history"]
    after_submit = [i for i, v in enumerate(history) if v["source"] == "update" and "Loading" not in texts(v["blocks"])
                    and "Pay with" not in texts(v["blocks"])]
    assert after_submit, shown_in(history)
    for shown in shown_in(history[after_submit[0]:]):
        assert "nothing was charged" not in shown.lower(), shown
        assert "could not be started" not in shown.lower(), shown
    # Once the receipt is shown, nothing but the receipt follows it.
    first_receipt = next(i for i, v in enumerate(history) if "Payment received" in texts(v["blocks"]))
    assert all("Payment received" in shown for shown in shown_in(history[first_receipt:])), shown_in(history)
    assert "€275.00" in texts(history[-1]["blocks"])
    # The payer watched it happen: the result is in the modal, not also in a DM.
    assert await dms_about(world, user.user_id, invoice) == []


# -- charged, but the billing API refuses the record for good -------------------------------
async def _needs_attention(world: World, total: str) -> tuple[Profile, dict[str, Any], SlackUser, dict[str, Any], str]:
    profile = await world.profile()
    invoice = await world.invoice(profile, total)
    user, modal = await open_modal(world, profile, invoice)
    await billing_refuses(world)
    done = await user.pay(modal)
    body = texts(done["view"]["blocks"])
    assert "Charged, but not recorded" in body and "was charged" in body, body
    assert "nothing was charged" not in body.lower()
    trace = world.stack.invoicebot("payments", "--status", "needs_attention", "--invoice", invoice["number"]).stdout
    [row] = [line for line in trace.splitlines() if invoice["number"][:18] in line]
    assert "needs_attention" in row and "billing system refused" in row, trace
    payment_id = next(word for word in row.split() if word.startswith("pay_"))
    return profile, invoice, user, modal, payment_id


async def _one(world: World, fetch: Any, needle: str) -> dict[str, Any]:
    async def found() -> dict[str, Any]:
        matching = [m for m in await fetch() if needle in m["text"]]
        assert len(matching) == 1, [m["text"] for m in await fetch()]
        return matching[0]
    return await eventually(found)


async def test_a_record_refused_for_good_needs_attention_and_a_refund_resolves_it_once(world: World) -> None:
    profile, invoice, user, modal, payment_id = await _needs_attention(world, "140.00")
    assert await world.recorded_payments(invoice["id"]) == []
    # Told once: the profile's channel and the payer; and no retry loop hammers billing.
    await _one(world, lambda: world.notifications_about(invoice["number"]), "Needs attention")
    await _one(world, lambda: dms_about(world, user.user_id, invoice), "refused to record")
    [intent] = await world.intents(profile.customer_id)
    assert intent["status"] == "succeeded"

    first = world.stack.invoicebot("payments", "resolve", payment_id, "--refund", "--by", "ops-anna")
    assert "needs_attention -> refunded" in first.stdout, first.stdout + first.stderr
    second = world.stack.invoicebot("payments", "resolve", payment_id, "--refund", "--by", "ops-anna")
    assert "already refunded" in second.stdout, second.stdout + second.stderr
    refunds = (await world.stripe.v1.refunds.list_async(params={"payment_intent": intent["id"]})).data
    assert len(refunds) == 1 and refunds[0].amount == 14000, refunds

    await _one(world, lambda: world.notifications_about(invoice["number"]), "refunded")
    await _one(world, lambda: dms_about(world, user.user_id, invoice), "refunded")
    refunded = await user.wait_view(modal["id"], lambda v: "Payment refunded" in texts(v["view"]["blocks"]))
    assert "€140.00" in texts(refunded["view"]["blocks"])
    assert await world.recorded_payments(invoice["id"]) == []
    trace = world.stack.invoicebot("payments", "--invoice", invoice["number"]).stdout
    assert "refunded" in trace
    audit = audit_text(world, "--invoice", invoice["id"])
    assert "resolve_payment" in audit and "ops-anna" in audit and '"how": "refund"' in audit
    assert [line for line in audit.splitlines() if "payment_result" in line and "refunded" in line]
    assert [line for line in audit.splitlines() if "payment_result" in line and "needs_attention" in line]
    await world.clear_billing_faults()


async def test_a_record_refused_for_good_is_recorded_once_when_billing_is_fixed(world: World) -> None:
    profile, invoice, user, modal, payment_id = await _needs_attention(world, "65.00")

    # Still refused: it stays where it is, with the new reason, and says so.
    again = world.stack.invoicebot("payments", "resolve", payment_id, "--record", check=False)
    assert again.returncode == 1 and "still needs attention" in again.stdout, again.stdout + again.stderr

    await world.clear_billing_faults()
    fixed = world.stack.invoicebot("payments", "resolve", payment_id, "--record", "--by", "ops-ben")
    assert "needs_attention -> recorded" in fixed.stdout, fixed.stdout + fixed.stderr
    twice = world.stack.invoicebot("payments", "resolve", payment_id, "--record")
    assert "already recorded" in twice.stdout
    await exactly_once(world, profile, invoice, "65.00")
    await _one(world, lambda: dms_about(world, user.user_id, invoice), "went through")
    receipt = await user.wait_view(modal["id"], lambda v: "Payment received" in texts(v["view"]["blocks"]))
    assert "€65.00" in texts(receipt["view"]["blocks"])
    audit = audit_text(world, "--invoice", invoice["id"])
    assert "resolve_payment" in audit and "ops-ben" in audit and '"via": "operator"' in audit


# -- an expired click is explained -------------------------------------------------------
async def _pay_now_click(world: World, user: SlackUser, listing: dict[str, Any], invoice_id: str,
                         **kw: Any) -> dict[str, Any]:
    action_id = next(a for a, i in pay_buttons(listing).items() if i == invoice_id)
    return await user.click_in_message(listing, action_id, **kw)


async def test_pay_now_with_an_expired_trigger_tells_the_person_to_press_again(world: World) -> None:
    profile = await world.profile()
    person = await world.person([profile])
    invoice = await world.invoice(profile, "18.00")
    user = SlackUser(world.slack, person.user_id)
    listing = await user.command()
    before = {m["id"] for m in await user._my_messages()}

    click = await _pay_now_click(world, user, listing, invoice["id"], trigger_age_s=5)  # a slow network
    assert click["status"] == 200
    refused = await world.slack.wait_for_call(
        "views.open", lambda c: c["params"].get("trigger_id") == click["trigger_id"], timeout=5)
    assert not refused["ok"] and refused["error"] == "expired_trigger_id"
    notice = await user.wait_new_message(before)
    assert "couldn't open in time" in notice["text"] and "Pay Now" in notice["text"]
    assert await world.slack.views(person.user_id, open_only=True) == []
    # Explained, not crashed: the app logged the refusal as a plain line, no traceback.
    lines = [json.loads(line) for line in (world.stack.workdir / "app.log").read_text().splitlines()
             if "expired_trigger_id" in line and line.startswith("{")]
    assert lines and all(e["level"] == "info" and "error" not in e for e in lines), lines


async def test_a_retried_pay_now_click_after_the_modal_opened_does_nothing_more(world: World) -> None:
    profile = await world.profile()
    person = await world.person([profile])
    invoice = await world.invoice(profile, "19.00")
    user = SlackUser(world.slack, person.user_id)
    listing = await user.command()

    click = await _pay_now_click(world, user, listing, invoice["id"])
    opened = await world.slack.wait_for_call(
        "views.open", lambda c: c["params"].get("trigger_id") == click["trigger_id"], timeout=5)
    assert opened["ok"]
    view_id = opened["response"]["view"]["id"]
    await user.wait_view(view_id, lambda v: invoice["number"] in texts(v["view"]["blocks"]))
    before = {m["id"] for m in await user._my_messages()}

    retry = await _pay_now_click(world, user, listing, invoice["id"], raw_payload=click["payload"], retry_num=1,
                                 retry_reason="http_timeout")
    assert retry["status"] == 200
    await asyncio.sleep(2.0)
    opens = [c for c in await world.slack.calls("views.open") if c["params"].get("trigger_id") == click["trigger_id"]]
    assert [c["ok"] for c in opens] == [True, False], opens
    assert [v["id"] for v in await world.slack.views(person.user_id, open_only=True)] == [view_id]
    assert {m["id"] for m in await user._my_messages()} == before  # no word, no second modal
    assert invoice["number"] in texts((await user.view(view_id))["view"]["blocks"])


# -- the result always reaches the person ---------------------------------------------------
async def _stripe_requests(world: World, path_regex: str) -> int:
    async with httpx.AsyncClient(base_url=world.stack.stripe_url) as http:
        return len((await http.get("/_requests", params={"path_regex": path_regex})).json()["data"])


@pytest.mark.parametrize("point", ["creating", "confirming", "recording"])
async def test_a_server_killed_mid_payment_tells_the_payer_by_dm_once_and_updates_the_modal(
        world: World, point: str) -> None:
    profile = await world.profile()
    invoice = await world.invoice(profile, "88.00")
    world.stack.processes["app"].stop()
    victim = world.stack.start_app(name=f"victim-{point}", port=world.stack.app_port)
    try:
        user, modal = await open_modal(world, profile, invoice)
        create, confirm = r"^/v1/payment_intents$", r"^/v1/payment_intents/[^/]+/confirm$"
        if point == "creating":
            await world.stripe_fault(create, "delay", delay_seconds=3)
        elif point == "confirming":
            await world.stripe_fault(confirm, "delay", delay_seconds=3)
        else:
            await world.billing_fault(RECORD_PATH, 503, count=1000)
        watched = {"creating": create, "confirming": confirm, "recording": confirm}[point]
        earlier = await _stripe_requests(world, watched)
        submitted = await user.submit(modal)
        assert submitted["status"] == 200

        async def reached() -> None:
            assert await _stripe_requests(world, watched) > earlier
        await eventually(reached)
        if point == "recording":
            await eventually(lambda: _charged(world, profile))
        await asyncio.sleep(0.3)
        victim.kill()
    finally:
        victim.stop()
        await world.clear_billing_faults()
        world.stack.start_app()
    await asyncio.sleep(3.5)  # a delayed Stripe request has been answered (to no one) by now

    # Whoever looks first finishes it: this reconcile, or Stripe's webhook for the delayed
    # confirm reaching the restarted server.
    world.stack.invoicebot("reconcile")
    outcome = "did not go through" if point == "creating" else "went through"
    await _one(world, lambda: dms_about(world, user.user_id, invoice), outcome)
    if point == "creating":
        shown = await user.wait_view(modal["id"], lambda v: "Payment not completed" in texts(v["view"]["blocks"]))
        assert "interrupted before the card was charged" in texts(shown["view"]["blocks"])
        assert [pi["status"] for pi in await world.intents(profile.customer_id)] in ([], ["requires_confirmation"])
        assert await world.recorded_payments(invoice["id"]) == []
    else:
        await user.wait_view(modal["id"], lambda v: "Payment received" in texts(v["view"]["blocks"]))
        await exactly_once(world, profile, invoice, "88.00")

    # Once, whoever looks again: the CLI and the restarted server's own loop.
    world.stack.invoicebot("reconcile")
    await asyncio.sleep(2.0)
    assert len(await dms_about(world, user.user_id, invoice)) == 1


# -- every refusal is audited ----------------------------------------------------------------
async def _set_access(world: World, person: Person, profiles: list[Profile]) -> None:
    response = await world.billing.post("/_sandbox/users", json={
        "email": person.email, "permissions": ["invoice_viewer"], "billing_profile_ids": [p.id for p in profiles]})
    assert response.status_code in (200, 201), response.text


@pytest.mark.parametrize("change", ["access_removed", "moved_to_another_profile"])
async def test_a_submission_refused_at_submit_time_is_audited_with_its_reason(world: World, change: str) -> None:
    profile = await world.profile()
    person = await world.person([profile])
    invoice = await world.invoice(profile, "52.00")
    user = SlackUser(world.slack, person.user_id)
    modal = await user.pay_now(await user.command(), invoice["id"])

    if change == "access_removed":
        response = await world.billing.post("/_sandbox/users", json={
            "email": person.email, "permissions": [], "billing_profile_ids": [profile.id]})
        assert response.status_code in (200, 201), response.text
        reason = "not_invoice_viewer"
    else:
        # The person now sees another profile only, as when the invoice moved away from theirs.
        await _set_access(world, person, [await world.profile()])
        reason = "billing_profile_not_allowed"
    result = await user.submit(modal)
    assert result["status"] == 200
    view = await user.wait_view(modal["id"], lambda v: "You can't" in texts(v["view"]["blocks"]))
    assert "Working on your payment" not in texts(view["view"]["blocks"])
    assert await world.intents(profile.customer_id) == []

    audit = audit_text(world, "--user", person.user_id)
    refused = [line for line in audit.splitlines() if "submit_payment" in line and "denied" in line]
    assert len(refused) == 1 and f'"reason": "{reason}"' in refused[0], audit
    if change == "moved_to_another_profile":
        assert invoice["id"] in refused[0]


async def test_an_outcome_reached_in_the_background_is_audited_by_the_processor_and_sent_by_dm(world: World) -> None:
    profile = await world.profile()
    invoice = await world.invoice(profile, "29.00")
    user, modal = await open_modal(world, profile, invoice)
    await world.billing_fault(RECORD_PATH, 503, count=1000)
    done = await user.pay(modal)
    assert "Charged, recording" in texts(done["view"]["blocks"])
    await world.clear_billing_faults()
    await exactly_once(world, profile, invoice, "29.00")

    async def audited() -> None:
        audit = audit_text(world, "--invoice", invoice["id"])
        results = [line for line in audit.splitlines() if "payment_result" in line]
        # Finished in the background (the server's retry loop, or Stripe's webhook nudging it).
        assert any("recorded" in line and ('"via": "reconciler"' in line or '"via": "webhook"' in line)
                   for line in results), audit
        assert any("charged" in line and '"via": "live"' in line for line in results), audit
    await eventually(audited)
    # Recorded by the server's loop, after the modal had moved on: the payer hears by DM.
    await _one(world, lambda: dms_about(world, user.user_id, invoice), "went through")


async def test_past_the_submission_deadline_the_modal_says_where_it_stands_and_the_dm_brings_the_end(
        world: World) -> None:
    profile = await world.profile()
    invoice = await world.invoice(profile, "47.00")
    world.stack.processes["app"].stop()
    hurried = world.stack.start_app(name="hurried", port=world.stack.app_port, SUBMISSION_DEADLINE_SECONDS="3",
                                    RECONCILE_INTERVAL_SECONDS="2")
    try:
        user, modal = await open_modal(world, profile, invoice)
        await world.stripe_fault(r"^/v1/payment_intents/[^/]+/confirm$", "delay", delay_seconds=6)
        assert (await user.submit(modal))["status"] == 200
        pending = await user.wait_view(modal["id"], lambda v: "still being confirmed" in texts(v["view"]["blocks"]))
        body = texts(pending["view"]["blocks"])
        assert "direct message" in body and "nothing was charged" not in body.lower()
        # The server's own reconciler takes over: the receipt in the modal, the result by DM.
        await user.wait_view(modal["id"], lambda v: "Payment received" in texts(v["view"]["blocks"]), timeout=30)
        await _one(world, lambda: dms_about(world, user.user_id, invoice), "went through")
        await exactly_once(world, profile, invoice, "47.00")
        assert len(await dms_about(world, user.user_id, invoice)) == 1
    finally:
        hurried.stop()
        world.stack.start_app()


def audit_text(world: World, *args: str) -> str:
    """The audit rows for a filter, one JSON object a line (`audit --json`: a table wraps long
    details for people; the assertions read every field whole)."""
    rows = json.loads(world.stack.invoicebot("audit", *args, "--json").stdout)
    return "\n".join(json.dumps(row, sort_keys=True, ensure_ascii=False) for row in rows)
