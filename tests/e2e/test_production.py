"""Running it in production: several workers sharing the outbox, Slack's pace per channel."""

from __future__ import annotations

import asyncio
import time

from storage.db import create_engine, session_factory
from storage.models import OutboxMessage, utcnow
from storage.payments import PaymentRepository
from tests.e2e.world import World
from tests.harness import TEAM_ID, unique


async def test_a_burst_of_200_notifications_into_one_channel_arrives_complete_in_order_once(world: World) -> None:
    channel = unique("C").upper()
    await world.slack.add_channel(channel, channel.lower(), is_private=False, bot_is_member=True)
    # Slack's limit, one message per second per channel, on a clock 20 times faster.
    await world.slack.configure(channel_rate_limit=True, clock_speed=20.0)
    stack = world.stack
    stack.processes["app"].stop()
    workers = stack.start_app(name="two-workers", workers=2, SLACK_CHANNEL_PACE_SECONDS="0.05")
    engine = create_engine(stack.database_url)
    try:
        await PaymentRepository(session_factory(engine)).add_outbox([
            OutboxMessage(dedupe_key=f"burst:{channel}:{i}", team_id=TEAM_ID, channel=channel,
                          payload={"text": f"burst {i:03d}"}, attempts=0, next_attempt_at=utcnow())
            for i in range(200)])
        deadline = time.monotonic() + 90
        while True:
            lines = [line for m in await world.slack.messages(channel=channel) for line in m["text"].splitlines()]
            if len(lines) >= 200 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)  # anything sent twice would show now
        messages = await world.slack.messages(channel=channel)
        lines = [line for m in messages for line in m["text"].splitlines()]
        assert lines == [f"burst {i:03d}" for i in range(200)]  # all, in order, once
        # Due together, they went out as digests: far fewer than 200 posts at one per second.
        assert len(messages) < 200
        calls = [c for c in await world.slack.calls("chat.postMessage") if c["params"].get("channel") == channel]
        assert len([c for c in calls if c["ok"]]) == len(messages)
    finally:
        await engine.dispose()
        await world.slack.configure(channel_rate_limit=False, clock_speed=1.0)
        workers.stop()
        stack.start_app()


async def test_sigterm_finishes_the_payment_in_flight_before_exiting(world: World) -> None:
    from tests.e2e.slack_user import SlackUser
    from tests.e2e.test_payment_safety import exactly_once
    from tests.harness import eventually

    profile = await world.profile()
    invoice = await world.invoice(profile, "88.00")
    person = await world.person([profile])
    user = SlackUser(world.slack, person.user_id)
    modal = await user.pay_now(await user.command(), invoice["id"])
    stack = world.stack
    stack.processes["app"].stop()
    server = stack.start_app(name="draining")
    try:
        await world.stripe_fault(r"^/v1/payment_intents/[^/]+/confirm$", "delay", delay_seconds=4)
        result = await user.submit(modal)
        assert result["status"] == 200  # answered "working on it" while Stripe takes its time

        async def confirming() -> None:
            assert await world.intents(profile.customer_id)
        await eventually(confirming)
        stopped = time.monotonic()
        server.stop()  # SIGTERM, then wait
        # uvicorn ends by re-raising the signal it was stopped with, after a clean shutdown.
        assert server.popen is not None and server.popen.returncode in (0, -15)
        assert "Application shutdown complete" in server.tail()
        assert time.monotonic() - stopped > 1.0  # it waited for Stripe rather than dropping the payment
        # Recorded, and notified, by the server that was asked to stop, before it exited.
        await exactly_once(world, profile, invoice, "88.00")
    finally:
        stack.start_app()
