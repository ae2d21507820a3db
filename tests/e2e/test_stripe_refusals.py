"""A confirm Stripe refuses (not a decline, not an outage) ends in a state a person sees and
resolves, told once and in words that claim no charge: the real server, the fake Stripe
answering the confirm with a 400, the operator's `payments resolve`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.slack_user import SlackUser, texts
from tests.e2e.test_payment_outcomes import _one, audit_text, dms_about
from tests.e2e.test_payment_safety import exactly_once, open_modal
from tests.e2e.world import Profile, World

pytestmark = pytest.mark.timeout(180) if hasattr(pytest.mark, "timeout") else []

CONFIRM_PATH = r"^/v1/payment_intents/[^/]+/confirm$"


async def _refused(world: World, total: str) -> tuple[Profile, dict[str, Any], SlackUser, dict[str, Any], str]:
    profile = await world.profile()
    invoice = await world.invoice(profile, total)
    user, modal = await open_modal(world, profile, invoice)
    await world.stripe_fault(CONFIRM_PATH, "error400")
    done = await user.pay(modal)
    body = texts(done["view"]["blocks"])
    assert "Stripe refused to confirm" in body and "it was not charged" in body, body
    assert "was charged" not in body and "Charged" not in body, body
    # Told once, in the profile's channel and to the payer, without a word of a charge.
    notice = await _one(world, lambda: world.notifications_about(invoice["number"]), "Needs attention")
    assert "Stripe refused to confirm" in notice["text"] and "was charged" not in notice["text"].replace(
        "(if it was charged)", ""), notice["text"]
    await _one(world, lambda: dms_about(world, user.user_id, invoice), "Stripe refused to confirm")
    trace = world.stack.invoicebot("payments", "--status", "needs_attention", "--invoice", invoice["number"]).stdout
    [row] = [line for line in trace.splitlines() if invoice["number"][:18] in line]
    payment_id = next(word for word in row.split() if word.startswith("pay_"))
    [intent] = await world.intents(profile.customer_id)
    assert intent["status"] == "requires_confirmation"  # Stripe's own word: nothing charged
    assert await world.recorded_payments(invoice["id"]) == []
    return profile, invoice, user, modal, payment_id


async def test_a_refused_confirm_needs_attention_and_is_recorded_once_when_tried_again(world: World) -> None:
    profile, invoice, user, modal, payment_id = await _refused(world, "48.00")
    # A reconcile pass leaves it alone: it waits for a person, not on a retry loop.
    assert payment_id not in world.stack.invoicebot("reconcile").stdout
    trace = world.stack.invoicebot("payments", "--invoice", invoice["number"]).stdout
    assert "needs_attention" in trace, trace
    [intent] = await world.intents(profile.customer_id)
    assert intent["status"] == "requires_confirmation"

    fixed = world.stack.invoicebot("payments", "resolve", payment_id, "--record", "--by", "ops-cara")
    assert "needs_attention -> recorded" in fixed.stdout, fixed.stdout + fixed.stderr
    twice = world.stack.invoicebot("payments", "resolve", payment_id, "--record")
    assert "already recorded" in twice.stdout, twice.stdout
    await exactly_once(world, profile, invoice, "48.00")
    await _one(world, lambda: dms_about(world, user.user_id, invoice), "went through")
    receipt = await user.wait_view(modal["id"], lambda v: "Payment received" in texts(v["view"]["blocks"]))
    assert "€48.00" in texts(receipt["view"]["blocks"])
    audit = audit_text(world, "--invoice", invoice["id"])
    assert "resolve_payment" in audit and "ops-cara" in audit and '"via": "operator"' in audit


async def test_a_refused_confirm_canceled_by_the_operator_ends_failed_and_charges_nothing(world: World) -> None:
    profile, invoice, user, modal, payment_id = await _refused(world, "52.00")
    refund = world.stack.invoicebot("payments", "resolve", payment_id, "--refund", check=False)
    assert refund.returncode == 1 and "nothing to refund" in refund.stdout + refund.stderr, refund.stdout

    canceled = world.stack.invoicebot("payments", "resolve", payment_id, "--cancel", "--by", "ops-dan")
    assert "needs_attention -> failed" in canceled.stdout, canceled.stdout + canceled.stderr
    [intent] = await world.intents(profile.customer_id)
    assert intent["status"] == "canceled"  # it can never charge now
    await _one(world, lambda: dms_about(world, user.user_id, invoice), "did not go through")
    await _one(world, lambda: world.notifications_about(invoice["number"]), "did not go through")
    assert await world.recorded_payments(invoice["id"]) == []
    # The invoice is free to be paid again.
    _user, again = await open_modal(world, profile, invoice)
    done = await _user.pay(again)
    assert "Payment received" in texts(done["view"]["blocks"]), texts(done["view"]["blocks"])
