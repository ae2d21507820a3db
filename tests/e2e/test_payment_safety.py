"""No double charge, no lost payment: duplicates, faults at every step, crashes, webhooks,
bank debits. Each ends in one charge, one billing record and one notification."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import stripe

from tests.e2e.slack_user import SlackUser, texts
from tests.e2e.world import Profile, World
from tests.harness import SIGNING_SECRET, WEBHOOK_SECRET, eventually, free_port

pytestmark = pytest.mark.timeout(120) if hasattr(pytest.mark, "timeout") else []


async def exactly_once(world: World, profile: Profile, invoice: dict[str, Any], amount: str,
                       *, event_word: str = "paid") -> None:
    """One succeeded charge, one billing record, one channel notification: and it stays so."""
    async def settled() -> None:
        succeeded = [pi for pi in await world.intents(profile.customer_id) if pi["status"] == "succeeded"]
        assert len(succeeded) == 1, succeeded
        recorded = await world.recorded_payments(invoice["id"])
        assert [p["amount"] for p in recorded] == [amount], recorded
        assert recorded[0]["processor_payment_id"] == succeeded[0]["id"]
        notices = [m for m in await world.notifications_about(invoice["number"]) if event_word in m["text"]]
        assert len(notices) == 1, notices

    await eventually(settled)
    await asyncio.sleep(1.5)  # retries and workers that might deliver twice have had their chance
    await settled()


async def open_modal(world: World, profile: Profile, invoice: dict[str, Any]) -> tuple[SlackUser, dict[str, Any]]:
    person = await world.person([profile])
    user = SlackUser(world.slack, person.user_id)
    return user, await user.pay_now(await user.command(), invoice["id"])


# -- duplicates ---------------------------------------------------------------------------
def signed(body: str) -> dict[str, str]:
    import hashlib
    import hmac

    timestamp = str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}",
            "Content-Type": "application/x-www-form-urlencoded"}


async def submission_payload(user: SlackUser, modal: dict[str, Any], amount: str) -> dict[str, Any]:
    """The exact view_submission Slack would send, captured from a harmless invalid submit."""
    probe = await user.submit(modal, amount="not a number")
    assert probe["applied"] == "errors"
    payload = probe["payload"]
    payload["view"]["state"]["values"]["amount"]["amount"]["value"] = amount
    return payload


@pytest.fixture
def second_app(world: World):  # noqa: ANN201
    """Another server process on the same database, as behind a load balancer."""
    port = free_port()
    process = world.stack.start_app(name=f"app-{port}", port=port)
    yield f"http://127.0.0.1:{port}"
    process.stop()


async def test_twenty_identical_submissions_at_once_on_two_servers_charge_once(world: World, second_app: str) -> None:
    profile = await world.profile()
    invoice = await world.invoice(profile, "320.00")
    user, modal = await open_modal(world, profile, invoice)
    payload = await submission_payload(user, modal, "320.00")
    body = urlencode({"payload": json.dumps(payload)})
    servers = [world.stack.app_url, second_app]

    async with httpx.AsyncClient(timeout=10) as http:
        answers = await asyncio.gather(*(
            http.post(f"{servers[i % 2]}/slack/events", content=body,
                      headers={**signed(body), **({"X-Slack-Retry-Num": str(i)} if i else {})})
            for i in range(20)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    await exactly_once(world, profile, invoice, "320.00")
    assert len(await world.intents(profile.customer_id)) == 1


async def test_two_people_paying_the_same_invoice_at_once_charge_once(world: World, second_app: str) -> None:
    profile = await world.profile()
    invoice = await world.invoice(profile, "90.00")
    first, first_modal = await open_modal(world, profile, invoice)
    second, second_modal = await open_modal(world, profile, invoice)
    bodies = [urlencode({"payload": json.dumps(await submission_payload(u, m, "90.00"))})
              for u, m in ((first, first_modal), (second, second_modal))]

    async with httpx.AsyncClient(timeout=10) as http:
        answers = await asyncio.gather(*(
            http.post(f"{server}/slack/events", content=body, headers=signed(body))
            for server, body in zip([world.stack.app_url, second_app], bodies, strict=True)))
    assert [a.status_code for a in answers] == [200, 200]
    await exactly_once(world, profile, invoice, "90.00")
    views = [await first.view(first_modal["id"]), await second.view(second_modal["id"])]
    shown = texts([v["view"]["blocks"] for v in views]) + json.dumps([a.json() for a in answers if a.content])
    assert "already in progress" in shown or "Nothing to pay on this invoice" in shown


# -- Stripe faults -----------------------------------------------------------------------
@pytest.mark.parametrize(("path", "mode"), [
    (r"^/v1/payment_intents$", "lost_response"),
    (r"^/v1/payment_intents$", "reset"),
    (r"^/v1/payment_intents/[^/]+/confirm$", "lost_response"),
    (r"^/v1/payment_intents/[^/]+/confirm$", "error503"),
    (r"^/v1/payment_intents/[^/]+/confirm$", "reset"),
])
async def test_stripe_faults_are_retried_with_the_same_idempotency_key(world: World, path: str, mode: str) -> None:
    profile = await world.profile()
    invoice = await world.invoice(profile, "45.00")
    user, modal = await open_modal(world, profile, invoice)
    await world.stripe_fault(path, mode)
    done = await user.pay(modal)
    assert "Payment received" in texts(done["view"]["blocks"])
    await exactly_once(world, profile, invoice, "45.00")
    assert len(await world.intents(profile.customer_id)) == 1


async def test_stripe_down_at_confirm_leaves_an_honest_status_and_reconcile_finishes(world: World) -> None:
    profile = await world.profile()
    invoice = await world.invoice(profile, "61.00")
    user, modal = await open_modal(world, profile, invoice)
    await world.stripe_fault(r"^/v1/payment_intents/[^/]+/confirm$", "error503", count=10)
    done = await user.pay(modal)
    body = texts(done["view"]["blocks"])
    assert "don't know yet" in body and "don't pay this invoice again" in body
    assert await world.recorded_payments(invoice["id"]) == []

    await world.clear_stripe_faults()
    report = world.stack.invoicebot("reconcile").stdout
    assert "confirming -> recorded" in report
    await exactly_once(world, profile, invoice, "61.00")
    assert "examined 0" in world.stack.invoicebot("reconcile").stdout or \
        "changed 0" in world.stack.invoicebot("reconcile").stdout


# -- billing faults after the charge -----------------------------------------------------
async def test_billing_down_after_the_charge_says_charged_and_records_later(world: World) -> None:
    profile = await world.profile()
    invoice = await world.invoice(profile, "77.00")
    user, modal = await open_modal(world, profile, invoice)
    await world.billing_fault(r"^/v1/invoices/[^/]+/payments$", 503, count=50)
    done = await user.pay(modal)
    body = texts(done["view"]["blocks"])
    assert "Charged, recording" in body and "€77.00* was charged" in body and "Don't pay again" in body

    await world.clear_billing_faults()
    # The server's own retry loop records it, without anyone running anything.
    await exactly_once(world, profile, invoice, "77.00")
    receipt = await user.wait_view(modal["id"], lambda v: "Payment received" in texts(v["view"]["blocks"]))
    assert "€77.00" in texts(receipt["view"]["blocks"])


async def test_a_lost_answer_from_billing_records_the_payment_once(world: World) -> None:
    profile = await world.profile()
    invoice = await world.invoice(profile, "12.00")
    user, modal = await open_modal(world, profile, invoice)
    await world.billing_fault(r"^/v1/invoices/[^/]+/payments$", 502, after_processing=True)
    done = await user.pay(modal)
    assert "Payment received" in texts(done["view"]["blocks"])
    await exactly_once(world, profile, invoice, "12.00")


async def test_the_server_killed_between_charge_and_record_then_reconcile(world: World) -> None:
    profile = await world.profile()
    invoice = await world.invoice(profile, "230.00")
    # The only server is the one that dies, so nothing but `invoicebot reconcile` can finish the job.
    world.stack.processes["app"].stop()
    victim = world.stack.start_app(name="victim", port=world.stack.app_port)
    try:
        user, modal = await open_modal(world, profile, invoice)
        await world.billing_fault(r"^/v1/invoices/[^/]+/payments$", 503, count=1000)
        await user.submit(modal)
        await eventually(lambda: _charged(world, profile))
        await asyncio.sleep(0.3)
        victim.kill()
        assert await world.recorded_payments(invoice["id"]) == []
        await world.clear_billing_faults()

        reconciled = world.stack.invoicebot("reconcile")
        assert "-> recorded" in reconciled.stdout, reconciled.stdout + reconciled.stderr[-3000:]
        await exactly_once(world, profile, invoice, "230.00")
        assert "changed 0" in world.stack.invoicebot("reconcile").stdout  # idempotent
        trace = world.stack.invoicebot("payments", "--invoice", invoice["number"]).stdout
        assert "recorded" in trace and "€230.00" in trace
    finally:
        victim.stop()
        world.stack.start_app()


async def _charged(world: World, profile: Profile) -> None:
    assert [pi for pi in await world.intents(profile.customer_id) if pi["status"] == "succeeded"]


# -- Slack faults on the notification ---------------------------------------------------
@pytest.mark.parametrize("status", [429, 500, 503])
async def test_slack_refusing_the_notification_delivers_it_later_exactly_once(world: World, status: int) -> None:
    profile = await world.profile()
    invoice = await world.invoice(profile, "33.00")
    user, modal = await open_modal(world, profile, invoice)
    await world.slack.set_faults("chat.postMessage", status=status, count=2, retry_after=1)
    done = await user.pay(modal)
    assert "Payment received" in texts(done["view"]["blocks"])
    await exactly_once(world, profile, invoice, "33.00")
    refused = [c for c in await world.slack.calls("chat.postMessage") if not c["ok"]]
    assert len(refused) >= 2


# -- 3-D Secure and bank debits, settled by webhooks -------------------------------------
async def test_3d_secure_completed_later_is_recorded_and_notified_once(world: World) -> None:
    profile = await world.profile(cards=("3ds",), default="3ds")
    invoice = await world.invoice(profile, "80.00")
    user, modal = await open_modal(world, profile, invoice)
    done = await user.pay(modal)
    assert "3-D Secure" in texts(done["view"]["blocks"])
    [intent] = await world.intents(profile.customer_id)
    async with httpx.AsyncClient(base_url=world.stack.stripe_url) as http:
        page = await http.post(f"/authenticate/{intent['id']}", data={"action": "complete"})
        assert page.status_code in (200, 303)
    await exactly_once(world, profile, invoice, "80.00")
    assert (await world.invoice_now(invoice["id"]))["status"] == "paid"


async def test_bank_debit_processing_then_succeeded(world: World) -> None:
    profile = await world.profile(cards=("sepa",), default=None)
    invoice = await world.invoice(profile, "400.00")
    user, modal = await open_modal(world, profile, invoice)
    select = next(b for b in modal["view"]["blocks"] if b.get("block_id") == "method")["element"]
    assert "(bank debit)" in texts(select["options"])
    done = await user.pay(modal, method=profile.methods["sepa"])
    assert "Bank debit on its way" in texts(done["view"]["blocks"])

    async def paid() -> None:
        assert (await world.invoice_now(invoice["id"]))["status"] == "paid"
    await eventually(paid)
    [recorded] = await world.recorded_payments(invoice["id"])
    assert recorded["method"] == "bank_debit" and recorded["status"] == "succeeded"
    await eventually(lambda: _two_notices(world, invoice, "started a bank debit", "has cleared"))


async def test_bank_debit_processing_then_failed_restores_the_balance(world: World) -> None:
    profile = await world.profile(cards=("sepa_failing",), default=None)
    invoice = await world.invoice(profile, "150.00")
    user, modal = await open_modal(world, profile, invoice)
    await user.pay(modal, method=profile.methods["sepa_failing"])

    async def failed() -> None:
        recorded = await world.recorded_payments(invoice["id"])
        assert [p["status"] for p in recorded] == ["failed"], recorded
    await eventually(failed)
    after = await world.invoice_now(invoice["id"])
    assert after["status"] == "open" and Decimal(after["amount_due"]) == Decimal("150.00")
    await eventually(lambda: _two_notices(world, invoice, "started a bank debit", "failed"))


async def _two_notices(world: World, invoice: dict[str, Any], first: str, second: str) -> None:
    notices = [m["text"] for m in await world.notifications_about(invoice["number"])]
    assert len(notices) == 2, notices
    assert first in notices[0] and second in notices[1], notices


# -- the webhook endpoint ----------------------------------------------------------------
def stripe_event(event_type: str, obj: dict[str, Any], *, event_id: str) -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": event_type, "created": int(time.time()),
                       "data": {"object": obj}, "api_version": "2024-06-20", "livemode": False}).encode()


def stripe_signature(payload: bytes, *, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    import hashlib
    import hmac

    timestamp = at or int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@pytest.mark.parametrize("case", ["forged", "stale", "missing"])
async def test_webhooks_without_a_valid_signature_are_refused(world: World, case: str) -> None:
    profile = await world.profile(cards=("3ds",), default="3ds")
    invoice = await world.invoice(profile, "20.00")
    user, modal = await open_modal(world, profile, invoice)
    await user.pay(modal)
    [intent] = await world.intents(profile.customer_id)
    forged = {**intent, "status": "succeeded"}
    payload = stripe_event("payment_intent.succeeded", forged, event_id=f"evt_{case}_{intent['id']}")
    headers = {"forged": {"Stripe-Signature": stripe_signature(payload, secret="whsec_attacker")},
               "stale": {"Stripe-Signature": stripe_signature(payload, at=int(time.time()) - 600)},
               "missing": {}}[case]
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{world.stack.app_url}/stripe/webhook", content=payload, headers=headers)
    assert answer.status_code == 400
    await asyncio.sleep(0.5)
    assert await world.recorded_payments(invoice["id"]) == []
    assert "payments" not in texts(await world.notifications_about(invoice["number"]))


async def test_the_same_webhook_twice_and_out_of_order_act_once(world: World) -> None:
    profile = await world.profile(cards=("3ds",), default="3ds")
    invoice = await world.invoice(profile, "55.00")
    user, modal = await open_modal(world, profile, invoice)
    await user.pay(modal)
    [intent] = await world.intents(profile.customer_id)
    succeeded = stripe_event("payment_intent.succeeded", {**intent, "status": "succeeded"},
                             event_id=f"evt_ok_{intent['id']}")
    late = stripe_event("payment_intent.requires_action", {**intent, "status": "requires_action"},
                        event_id=f"evt_late_{intent['id']}")
    async with httpx.AsyncClient() as http:
        for payload in (succeeded, succeeded, late, succeeded):
            answer = await http.post(f"{world.stack.app_url}/stripe/webhook", content=payload,
                                     headers={"Stripe-Signature": stripe_signature(payload)})
            assert answer.status_code == 200, answer.text

    async def one_record() -> None:
        assert [p["amount"] for p in await world.recorded_payments(invoice["id"])] == ["55.00"]
        assert len([m for m in await world.notifications_about(invoice["number"]) if "paid" in m["text"]]) == 1
    await eventually(one_record)
    await asyncio.sleep(1.0)
    await one_record()


def test_stripe_python_verifies_what_the_tests_sign() -> None:
    payload = stripe_event("payment_intent.succeeded", {"id": "pi_x"}, event_id="evt_x")
    event = stripe.Webhook.construct_event(payload.decode(), stripe_signature(payload), WEBHOOK_SECRET)
    assert event.id == "evt_x"
