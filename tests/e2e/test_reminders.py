"""Due-date digests end to end: an admin sets them with `/invoices reminders`, the bot's
clock is moved to the digest's time, and the profile's channel hears what is due, once;
a digest with nothing to say is not sent; Pay Now in it opens the payment modal."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

from tests.e2e.slack_user import SlackUser, texts
from tests.e2e.world import World
from tests.harness import Stack, eventually


def jobs(stack: Stack) -> list[dict[str, Any]]:
    return json.loads(stack.invoicebot("jobs", "--json", "--limit", "500").stdout)


async def wait_job(stack: Stack, key_part: str, states: set[str], timeout: float = 30.0) -> dict[str, Any]:
    async def found() -> dict[str, Any]:
        jobs_now = jobs(stack)
        matching = [j for j in jobs_now if key_part in j["key"] and j["state"] in states]
        assert matching, f"no job {key_part} in {states}: {jobs_now}"
        return matching[0]
    return await eventually(found, timeout=timeout, every=0.5)


def seconds_to_next_nine_utc() -> int:
    now = dt.datetime.now(dt.UTC)
    nine = now.replace(hour=9, minute=0, second=0, microsecond=0)
    if nine <= now + dt.timedelta(seconds=30):
        nine += dt.timedelta(days=1)
    return int((nine - now).total_seconds())


async def test_a_daily_digest_reaches_the_channel_once_and_an_empty_one_is_not_sent(world: World) -> None:
    busy = await world.profile(currency="EUR")
    quiet = await world.profile(currency="EUR")
    admin = await world.person([busy, quiet], permissions=("invoice_viewer", "billing_profile_admin"))
    soon = await world.invoice(busy, "120.00", due_in_days=3)
    overdue = await world.invoice(busy, "80.50", due_in_days=-2)
    later = await world.invoice(busy, "999.00", due_in_days=40)
    await world.invoice(quiet, "50.00", due_in_days=40)  # nothing due within 7 days
    user = SlackUser(world.slack, admin.user_id)

    reply = texts((await user.command(f"reminders {busy.name} daily 09:00"))["blocks"])
    assert "Reminders set" in reply and "every day at 09:00 (UTC)" in reply and busy.name in reply
    reply = texts((await user.command(f"reminders {quiet.name} daily"))["blocks"])
    assert "Reminders set" in reply and quiet.name in reply
    scheduled = await wait_job(world.stack, f":{busy.id}:", {"scheduled"})
    assert scheduled["kind"] == "reminder_digest" and scheduled["due_at"].endswith("09:00:00")

    world.stack.move_clock(seconds_to_next_nine_utc() + 20)
    try:
        digest = await world.wait_for_channel_message(f"Coming due: {busy.name}", timeout=30)
        body = texts(digest["blocks"])
        assert soon["number"] in body and overdue["number"] in body and later["number"] not in body
        assert "€200.50" in body and "Overdue" in body
        buttons = [b["accessory"] for b in digest["blocks"] if b.get("accessory", {}).get("text", {}).get(
            "text") == "Pay Now"]
        assert [json.loads(b["value"])["invoice"] for b in buttons] == [overdue["id"], soon["id"]]

        ran = await wait_job(world.stack, f":{busy.id}:", {"done"})
        skipped = await wait_job(world.stack, f":{quiet.id}:", {"skipped"})
        assert skipped["note"] == "nothing due or overdue"
        assert ran["key"] == scheduled["key"]
        # The series goes on: the next day's digests are scheduled.
        upcoming = [j for j in jobs(world.stack) if j["state"] == "scheduled" and busy.id in j["key"]]
        assert len(upcoming) == 1 and upcoming[0]["key"] != scheduled["key"]

        # Pay Now in the channel opens the payment modal for whoever clicks (their access checked).
        click = await user.click_in_message(digest, buttons[0]["action_id"])
        opened = await world.slack.wait_for_call(
            "views.open", lambda c: c["params"].get("trigger_id") == click["trigger_id"], timeout=5)
        modal = await user.wait_view(opened["response"]["view"]["id"],
                                     lambda v: "Loading" not in texts(v["view"]["blocks"]))
        assert overdue["number"] in texts(modal["view"]["blocks"]) and modal["view"]["submit"]["text"] == "Pay"

        await asyncio.sleep(3)  # a few more scheduler passes: still one digest, and none for the quiet profile
        messages = await world.channel_messages()
        assert len([m for m in messages if f"Coming due: {busy.name}" in texts(m["blocks"])]) == 1
        assert not [m for m in messages if quiet.name in texts(m["blocks"])]
    finally:
        world.stack.move_clock(0)

    audit = world.stack.invoicebot("audit", "--user", admin.user_id, "--json").stdout
    assert '"set_reminders"' in audit


async def test_only_billing_profile_admins_set_reminders(world: World) -> None:
    profile = await world.profile()
    viewer = await world.person([profile])
    user = SlackUser(world.slack, viewer.user_id)
    reply = texts((await user.command(f"reminders {profile.name} daily"))["blocks"])
    assert "Only billing-profile admins" in reply
    assert not [j for j in jobs(world.stack) if profile.id in j["key"]]
    shown = texts((await user.command("reminders"))["blocks"])
    assert profile.name in shown and "off" in shown


async def test_turning_reminders_off_and_on_again_or_moving_the_time_keeps_a_digest_coming(world: World) -> None:
    profile = await world.profile(currency="EUR")
    admin = await world.person([profile], permissions=("invoice_viewer", "billing_profile_admin"))
    user = SlackUser(world.slack, admin.user_id)

    assert "Reminders set" in texts((await user.command(f"reminders {profile.name} daily 09:00"))["blocks"])
    first = await wait_job(world.stack, f":{profile.id}:", {"scheduled"})
    await user.command(f"reminders {profile.name} off")
    await wait_job(world.stack, first["key"], {"canceled"})
    # On again for the same day: the same day's digest is scheduled again, not left cancelled.
    assert "Reminders set" in texts((await user.command(f"reminders {profile.name} daily 09:00"))["blocks"])
    again = await wait_job(world.stack, first["key"], {"scheduled"})
    assert again["due_at"].endswith("09:00:00")
    # A new time the same day: that day's digest at the new time.
    await user.command(f"reminders {profile.name} daily 10:30")
    moved = await wait_job(world.stack, f":{profile.id}:", {"scheduled"})
    assert moved["due_at"].endswith("10:30:00"), moved


async def test_an_admin_sets_the_weekday_the_days_ahead_and_the_profile_s_time_zone(world: World) -> None:
    profile = await world.profile(currency="EUR")
    admin = await world.person([profile], permissions=("invoice_viewer", "billing_profile_admin"))
    user = SlackUser(world.slack, admin.user_id)

    reply = texts((await user.command(f"reminders {profile.name} weekly friday 08:30 14 days America/New_York"))
                  ["blocks"])
    assert "Reminders set" in reply, reply
    assert "every Friday at 08:30 (America/New_York), invoices due within 14 days" in reply
    job = await wait_job(world.stack, f":{profile.id}:", {"scheduled"})
    due = dt.datetime.fromisoformat(job["due_at"]).replace(tzinfo=dt.UTC).astimezone(ZoneInfo("America/New_York"))
    assert (due.weekday(), due.hour, due.minute) == (4, 8, 30), due
    # The zone is the profile's: a time zone alone keeps the rest, and shows in the listing.
    await user.command(f"reminders {profile.name} Europe/Berlin")
    shown = texts((await user.command("reminders"))["blocks"])
    assert "every Friday at 08:30 (Europe/Berlin), invoices due within 14 days" in shown
    moved = await wait_job(world.stack, f":{profile.id}:", {"scheduled"})
    due = dt.datetime.fromisoformat(moved["due_at"]).replace(tzinfo=dt.UTC).astimezone(ZoneInfo("Europe/Berlin"))
    assert (due.weekday(), due.hour, due.minute) == (4, 8, 30), due
    # Out of range: said, nothing changed.
    refused = texts((await user.command(f"reminders {profile.name} weekly 90 days"))["blocks"])
    assert "1 to 60 days" in refused
    assert "within 14 days" in texts((await user.command("reminders"))["blocks"])
