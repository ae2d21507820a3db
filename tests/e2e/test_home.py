"""The App Home tab end to end: opening it publishes the person's dashboard through the
stand-in (which rejects what Slack rejects: over 100 blocks, text over its limits), Pay
Now on it opens the same modal as the list, admins route notices, change the approval rule
and the reminders from it, an approver approves from it (the DM's own action: one charge),
a requester withdraws and a payer cancels a scheduled payment from it, receipts open from
it, and a burst of payments refreshes it a bounded number of times (and a tab never
opened not at all)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from storage.db import create_engine, session_factory
from storage.models import Payment, utcnow
from tests.e2e.slack_user import SlackUser, texts
from tests.e2e.test_approvals import ADMIN, a_team, request_approval, wait_dm
from tests.e2e.test_scheduled_payments import _approval_team, jobs, schedule
from tests.e2e.world import World
from tests.harness import TEAM_ID, eventually, unique


async def open_home(world: World, user_id: str, *, since_publishes: int | None = None) -> dict[str, Any]:
    """Open the Home tab and return the view the bot published for it."""
    since = len(await world.slack.calls("views.publish")) if since_publishes is None else since_publishes
    result = await world.slack.open_home(user_id)
    assert result["status"] == 200, result
    deadline = time.monotonic() + 20
    while True:
        mine = [c for c in (await world.slack.calls("views.publish"))[since:]
                if c["params"].get("user_id") == user_id]
        if mine:
            assert mine[-1]["ok"], mine[-1]
            home = await world.slack.home(user_id)
            assert home is not None
            return home
        assert time.monotonic() < deadline, "the Home tab was never published"
        await asyncio.sleep(0.05)


async def publishes_for(world: World, user_id: str) -> list[dict[str, Any]]:
    return [c for c in await world.slack.calls("views.publish") if c["params"].get("user_id") == user_id]


async def wait_home(world: World, user_id: str, predicate: Any, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        home = await world.slack.home(user_id)
        if home is not None and predicate(texts(home["view"]["blocks"])):
            return home
        assert time.monotonic() < deadline, f"the Home tab never showed it: {home and texts(home['view']['blocks'])}"
        await asyncio.sleep(0.1)


def button(home: dict[str, Any], prefix: str, needle: str = "") -> str:
    for block in home["view"]["blocks"]:
        accessory = block.get("accessory") or {}
        if accessory.get("action_id", "").startswith(prefix) and needle in texts([block]):
            return str(accessory["action_id"])
    raise AssertionError(f"no {prefix} button for {needle!r} on the Home tab")


def element(home: dict[str, Any], prefix: str, needle: str = "") -> tuple[str, str, str]:
    """(action_id, block_id, value) of the first button whose action id starts with `prefix`,
    as an accessory of a block mentioning `needle` or in the actions block right after one."""
    last = ""
    for block in home["view"]["blocks"]:
        elements = [block["accessory"]] if block.get("accessory") else list(block.get("elements") or [])
        if block.get("type") == "section":
            last = texts([block])
        for el in elements:
            if str(el.get("action_id", "")).startswith(prefix) and needle in last:
                return str(el["action_id"]), str(block["block_id"]), str(el.get("value", ""))
    raise AssertionError(f"no {prefix} button for {needle!r} on the Home tab")


async def click_home(world: World, user_id: str, home: dict[str, Any], prefix: str, needle: str = "",
                     **kw: Any) -> dict[str, Any]:
    """Click a button on the Home tab; returns the modal the bot opened for that click."""
    action_id, block_id, _value = element(home, prefix, needle)
    click = await world.slack.click(user_id, action_id, view_id=home["id"], block_id=block_id, **kw)
    assert click["status"] == 200, click
    opened = await world.slack.wait_for_call(
        "views.open", lambda c: c["params"].get("trigger_id") == click["trigger_id"], timeout=5)
    assert opened["ok"], opened
    return opened


async def pay_from_home(world: World, user: SlackUser, home: dict[str, Any], invoice: dict[str, Any]) -> dict:
    action_id = button(home, "pay_now", invoice["number"])
    click = await world.slack.click(user.user_id, action_id, view_id=home["id"])
    assert click["status"] == 200, click
    opened = await world.slack.wait_for_call(
        "views.open", lambda c: c["params"].get("trigger_id") == click["trigger_id"], timeout=5)
    assert opened["ok"], opened
    return await user.wait_view(opened["response"]["view"]["id"],
                                lambda v: "Loading" not in texts(v["view"]["blocks"]))


async def test_a_payer_sees_balance_overdue_soonest_and_payments(world: World) -> None:
    eur, usd = await world.profile(currency="EUR"), await world.profile(currency="USD")
    person = await world.person([eur, usd])
    late = await world.invoice(eur, "300.00", due_in_days=-5)
    soon = await world.invoice(usd, "120.50", due_in_days=3)
    await world.invoice(eur, "50.00", due_in_days=40)

    body = texts((await open_home(world, person.user_id))["view"]["blocks"])
    assert "3 invoices to pay" in body and "1 overdue" in body
    assert body.index("€350.00") < body.index("$120.50")  # per currency, sorted by code
    assert late["number"] in body and soon["number"] in body and "Overdue" in body
    assert body.index(late["number"]) < body.index(soon["number"])  # the overdue first
    assert "Pay Now" in body and "home_see_all" in body
    assert "Recent payments" in body and "Where payment notices go" not in body  # not an admin


async def test_an_admin_sees_where_notices_go_and_a_person_without_access_an_explanation(world: World) -> None:
    profile = await world.profile()
    admin = await world.person([profile], permissions=("invoice_viewer", "billing_profile_admin"))
    body = texts((await open_home(world, admin.user_id))["view"]["blocks"])
    assert "Where payment notices go" in body and profile.name in body and "(default)" in body
    assert "home_route" in body

    outsider = await world.person([profile], permissions=())
    body = texts((await open_home(world, outsider.user_id))["view"]["blocks"])
    assert "You can't view invoices" in body and "Invoice Viewer" in body
    assert profile.name not in body and "Pay Now" not in body and "Traceback" not in body
    stranger = await world.person([], in_billing=False)
    assert "You're not set up in billing yet" in texts((await open_home(world, stranger.user_id))["view"]["blocks"])


async def test_paying_from_home_gives_a_receipt_and_refreshes_the_tab(world: World) -> None:
    profile = await world.profile(currency="EUR")
    person = await world.person([profile])
    invoice = await world.invoice(profile, "80.00")
    user = SlackUser(world.slack, person.user_id)
    home = await open_home(world, person.user_id)
    assert invoice["number"] in texts(home["view"]["blocks"]) and "€80.00" in texts(home["view"]["blocks"])

    modal = await pay_from_home(world, user, home, invoice)
    done = await user.pay(modal)
    assert "Payment received" in texts(done["view"]["blocks"])
    assert (await world.invoice_now(invoice["id"]))["status"] == "paid"

    refreshed = await wait_home(world, person.user_id, lambda body: "Paid" in body and "Nothing to pay" in body)
    body = texts(refreshed["view"]["blocks"])
    assert invoice["number"] in body and "€80.00" in body and "Pay Now" not in body


async def test_a_payer_who_never_opened_home_gets_no_publish_until_they_do(world: World) -> None:
    profile = await world.profile(currency="EUR")
    person = await world.person([profile])
    invoice = await world.invoice(profile, "45.00")
    user = SlackUser(world.slack, person.user_id)
    done = await user.pay(await user.pay_now(await user.command(invoice["number"]), invoice["id"]))
    assert "Payment received" in texts(done["view"]["blocks"])
    await asyncio.sleep(4)  # past the refresh's debounce: a publish would have landed by now
    assert await publishes_for(world, person.user_id) == []  # no tab in Slack: nothing to refresh

    home = await open_home(world, person.user_id)  # the tab, built when opened, shows the payment
    body = texts(home["view"]["blocks"])
    assert invoice["number"] in body and "Paid" in body and "Nothing to pay" in body


async def test_see_all_sends_the_full_list_by_dm(world: World) -> None:
    profile = await world.profile()
    person = await world.person([profile])
    numbers = [(await world.invoice(profile, "10.00", due_in_days=day))["number"] for day in range(1, 9)]
    home = await open_home(world, person.user_id)
    assert "See all 8" in texts(home["view"]["blocks"]) and numbers[-1] not in texts(home["view"]["blocks"])
    click = await world.slack.click(person.user_id, "home_see_all", view_id=home["id"])
    assert click["status"] == 200, click
    dm = await world.slack.wait_for_call(
        "chat.postMessage", lambda c: c["params"].get("channel") == person.user_id and numbers[-1] in str(c["params"]))
    assert dm["ok"] and all(number in str(dm["params"]) for number in numbers)


async def test_an_admin_changes_the_channel_from_home_and_the_next_notice_goes_there(world: World) -> None:
    profile = await world.profile()
    admin = await world.person([profile], permissions=("invoice_viewer", "billing_profile_admin"))
    channel = unique("C").upper()
    await world.slack.add_channel(channel, channel.lower(), is_private=False, bot_is_member=True)
    home = await open_home(world, admin.user_id)

    click = await world.slack.click(admin.user_id, button(home, "home_route", profile.name), view_id=home["id"])
    opened = await world.slack.wait_for_call(
        "views.open", lambda c: c["params"].get("trigger_id") == click["trigger_id"], timeout=5)
    assert opened["ok"], opened
    modal_id = opened["response"]["view"]["id"]
    saved = await world.slack.submit(admin.user_id, modal_id, {"route_channel": {"channel": channel}})
    assert saved["status"] == 200, saved
    assert "Payment notices now go to" in texts((await world.slack.view(modal_id))["view"]["blocks"])
    await wait_home(world, admin.user_id, lambda body: f"<#{channel}>" in body)

    invoice = await world.invoice(profile, "25.00")
    user = SlackUser(world.slack, admin.user_id)
    await user.pay(await user.pay_now(await user.command(), invoice["id"]))
    deadline = time.monotonic() + 15
    while not [m for m in await world.slack.messages(channel=channel) if invoice["number"] in str(m["blocks"])]:
        assert time.monotonic() < deadline, "the notice did not reach the new channel"
        await asyncio.sleep(0.1)
    assert not await world.notifications_about(invoice["number"])  # not the default channel


async def test_a_route_button_for_someone_else_s_profile_is_refused_on_the_server(world: World) -> None:
    mine, theirs = await world.profile(), await world.profile()
    admin = await world.person([mine], permissions=("invoice_viewer", "billing_profile_admin"))
    home = await open_home(world, admin.user_id)
    click = await world.slack.click(admin.user_id, button(home, "home_route", mine.name), view_id=home["id"],
                                    tamper_value=theirs.id)
    opened = await world.slack.wait_for_call(
        "views.open", lambda c: c["params"].get("trigger_id") == click["trigger_id"], timeout=5)
    body = str(opened["params"]["view"])
    assert theirs.name not in body and "route_channel" not in body
    audit = world.stack.invoicebot("audit", "--user", admin.user_id).stdout
    assert "set_notify_route" in audit and "denied" in audit


async def add_payments(database_url: str, user_id: str, profile_id: str, count: int) -> None:
    """History written as the processor writes it (the bot's own table)."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine).begin() as session:
            for index in range(count):
                status = ("recorded", "failed", "refunded", "needs_attention", "processing")[index % 5]
                session.add(Payment(
                    id=uuid.uuid4().hex, team_id=TEAM_ID, user_id=user_id, paid_by=f"{user_id}@acme.example",
                    invoice_id=unique("inv_"), invoice_number=f"INV-H-{index:04d}-" + "x" * 100,
                    billing_profile_id=profile_id, billing_profile_name="Acme " + "y" * 200, invoice_url=None,
                    amount_minor=12345 + index, currency="EUR", method_kind="card", payment_method_id="pm_x",
                    payment_method_type="card", method_label="Visa •••• 4242 " + "z" * 100,
                    stripe_customer_id="cus_x", status=status, created_at=utcnow(), updated_at=utcnow()))
    finally:
        await engine.dispose()


async def test_5000_invoices_and_200_payments_stay_within_slack_s_limits(world: World) -> None:
    profile = await world.profile(name="Big " + "N" * 200)
    admin = await world.person([profile], permissions=("invoice_viewer", "billing_profile_admin"))
    await world.bulk_invoices(profile, 5000, total="9999999.99")
    await add_payments(world.stack.database_url, admin.user_id, profile.id, 200)

    home = await open_home(world, admin.user_id)  # the stand-in refuses a view Slack would refuse
    blocks = home["view"]["blocks"]
    body = texts(blocks)
    assert len(blocks) <= 100
    # The tab reads at most 5 pages of 100 (docs/home.md, "Reads"): beyond them it says "at least".
    assert "At least 500 invoices to pay" in body and "See all" in body and "newest of 200 payments" in body
    assert "the tab counts the first 500 invoices" in body
    [publish] = (await publishes_for(world, admin.user_id))[-1:]
    assert publish["ok"], publish


async def test_a_burst_of_50_payments_refreshes_the_tab_a_bounded_number_of_times(world: World) -> None:
    profile = await world.profile(currency="EUR")
    person = await world.person([profile])
    ids = await world.bulk_invoices(profile, 50, total="10.00")
    user = SlackUser(world.slack, person.user_id)
    await open_home(world, person.user_id)
    before = len(await publishes_for(world, person.user_id))
    started = time.monotonic()

    # One after the other, as fast as the stand-in goes: Slack shows a person one modal at a time.
    for invoice_id in ids:
        number = (await world.invoice_now(invoice_id))["number"]
        done = await user.pay(await user.pay_now(await user.command(number), invoice_id))
        assert "Payment received" in texts(done["view"]["blocks"])
    await wait_home(world, person.user_id, lambda body: "Nothing to pay" in body)
    elapsed = time.monotonic() - started
    await asyncio.sleep(4)  # a publish still scheduled would land meanwhile
    refreshes = len(await publishes_for(world, person.user_id)) - before
    # Debounced to one per 3 s per person: never one per payment state change (100+ here).
    assert 1 <= refreshes <= elapsed / 3 + 2, (refreshes, elapsed)


async def test_an_approver_approves_from_home_and_it_is_charged_once(world: World) -> None:
    team = await a_team(world)
    invoice = await world.invoice(team.profile, "1500.00")
    await open_home(world, team.approver.user_id)
    await open_home(world, team.second.user_id)  # both approvers have a tab, so both are refreshed
    waiting = await request_approval(world, team, invoice)
    assert "Waiting for approval" in texts(waiting["view"]["blocks"])

    # Refreshed when the request was made: the approver sees it, with the DM's own buttons.
    home = await wait_home(world, team.approver.user_id,
                           lambda body: "Waiting for your decision" in body and invoice["number"] in body)
    body = texts(home["view"]["blocks"])
    assert "€1,500.00" in body and team.requester.user_id in body and "approval_reject" in body
    asked = await wait_dm(world, team.approver.user_id, invoice["number"])
    _, _, value = element(home, "approval_approve", invoice["number"])
    assert value in texts(asked["blocks"])  # the same action and value as the DM's button
    # The requester is not asked to decide their own request, and sees it waiting, with Withdraw.
    mine = texts((await open_home(world, team.requester.user_id))["view"]["blocks"])
    assert "Waiting for your decision" not in mine and "approval_withdraw" in mine and invoice["number"] in mine

    opened = await click_home(world, team.approver.user_id, home, "approval_approve", invoice["number"])
    answer = await team.approver.wait_view(opened["response"]["view"]["id"],
                                           lambda v: "Approving" not in texts(v["view"]["blocks"]))
    assert "Approved and charged" in texts(answer["view"]["blocks"])
    recorded = await eventually(lambda: world.recorded_payments(invoice["id"]))
    assert [p["amount"] for p in recorded] == ["1500.00"]
    assert len([pi for pi in await world.intents(team.profile.customer_id) if pi["amount"] == 150000]) == 1
    await wait_home(world, team.approver.user_id, lambda body: "Waiting for your decision" not in body)
    await wait_home(world, team.requester.user_id, lambda body: "approval_withdraw" not in body
                    and "Paid" in body and invoice["number"] in body)

    # The other approver's tab no longer offers it either, and more time charges nothing more.
    await wait_home(world, team.second.user_id, lambda body: invoice["number"] not in body
                    or "Waiting for your decision" not in body)
    await asyncio.sleep(1)
    assert len(await world.recorded_payments(invoice["id"])) == 1


async def test_an_approver_rejects_from_home_with_a_reason(world: World) -> None:
    team = await a_team(world)
    invoice = await world.invoice(team.profile, "1200.00")
    await request_approval(world, team, invoice)
    home = await open_home(world, team.approver.user_id)
    opened = await click_home(world, team.approver.user_id, home, "approval_reject", invoice["number"])
    view_id = opened["response"]["view"]["id"]
    submitted = await world.slack.submit(team.approver.user_id, view_id, {"reason": {"reason": "Wrong vendor"}})
    assert submitted["status"] == 200, submitted
    answer = await team.approver.wait_view(view_id, lambda v: "Rejecting" not in texts(v["view"]["blocks"]),
                                           timeout=30)
    assert "Rejected" in texts(answer["view"]["blocks"])
    told = await wait_dm(world, team.requester.user_id, "Wrong vendor")
    assert invoice["number"] in told["text"] + texts(told["blocks"])
    await wait_home(world, team.approver.user_id, lambda body: invoice["number"] not in body
                    or "Waiting for your decision" not in body)
    assert await world.recorded_payments(invoice["id"]) == []


async def test_a_requester_withdraws_from_home(world: World) -> None:
    team = await a_team(world)
    invoice = await world.invoice(team.profile, "2000.00")
    await request_approval(world, team, invoice)
    home = await open_home(world, team.requester.user_id)
    assert "Your payments waiting" in texts(home["view"]["blocks"])
    opened = await click_home(world, team.requester.user_id, home, "approval_withdraw", invoice["number"])
    assert "Withdrawn" in str(opened["params"]["view"])
    await wait_home(world, team.requester.user_id, lambda body: "approval_withdraw" not in body)
    listed = world.stack.invoicebot("payments", "--status", "withdrawn").stdout
    assert invoice["number"] in listed
    assert await world.recorded_payments(invoice["id"]) == []


async def test_an_admin_changes_the_approval_rule_from_home_and_the_command_shows_it(world: World) -> None:
    profile = await world.profile(currency="EUR")
    admin = await world.person([profile], permissions=ADMIN)
    approver = await world.person([profile])
    home = await open_home(world, admin.user_id)
    assert "no approval needed" in texts(home["view"]["blocks"])

    opened = await click_home(world, admin.user_id, home, "home_rule", profile.name)
    modal_id = opened["response"]["view"]["id"]
    user = SlackUser(world.slack, admin.user_id)
    # An amount the locale can't read: the form again with the service's words; nothing is saved.
    bad = await world.slack.submit(admin.user_id, modal_id, {"rule_threshold": {"value": "lots"},
                                                             "rule_approvers": {"users": [approver.user_id]}})
    assert bad["status"] == 200, bad
    again = await user.wait_view(modal_id, lambda v: "Not saved" in texts(v["view"]["blocks"]))
    assert "is not a number" in texts(again["view"]["blocks"]) and "rule_threshold" in texts(again["view"]["blocks"])
    assert "no approval needed" in texts((await user.command("approvals"))["blocks"])
    saved = await world.slack.submit(admin.user_id, modal_id, {"rule_threshold": {"value": "2500"},
                                                               "rule_approvers": {"users": [approver.user_id]}})
    assert saved["status"] == 200, saved
    await user.wait_view(modal_id, lambda v: "€2,500.00" in texts(v["view"]["blocks"]))

    rules = texts((await user.command("approvals"))["blocks"])
    assert "€2,500.00" in rules and approver.user_id in rules
    notice = await world.wait_for_channel_message(profile.name)  # a new profile: only its rule's notices
    assert "changed the approval rule" in notice["text"] + texts(notice["blocks"])
    await wait_home(world, admin.user_id, lambda body: "€2,500.00" in body and approver.user_id in body)
    audit = world.stack.invoicebot("audit", "--user", admin.user_id).stdout
    assert "set_approval_threshold" in audit and "set_approvers" in audit


async def test_settings_buttons_for_someone_else_s_profile_are_refused_on_the_server(world: World) -> None:
    mine, theirs = await world.profile(), await world.profile()
    admin = await world.person([mine], permissions=ADMIN)
    home = await open_home(world, admin.user_id)
    for prefix in ("home_rule", "home_reminders"):
        opened = await click_home(world, admin.user_id, home, prefix, mine.name, tamper_value=theirs.id)
        body = str(opened["params"]["view"])
        assert theirs.name not in body and "rule_threshold" not in body and "reminder_cadence" not in body


async def test_an_admin_sets_reminders_from_home_and_the_command_shows_them(world: World) -> None:
    profile = await world.profile(currency="EUR")
    admin = await world.person([profile], permissions=ADMIN)
    home = await open_home(world, admin.user_id)
    assert "Reminders: off" in texts(home["view"]["blocks"])
    opened = await click_home(world, admin.user_id, home, "home_reminders", profile.name)
    modal_id = opened["response"]["view"]["id"]
    saved = await world.slack.submit(admin.user_id, modal_id, {"reminder_cadence": {"cadence": "daily"},
                                                               "reminder_time": {"time": "08:30"}})
    assert saved["status"] == 200, saved
    await SlackUser(world.slack, admin.user_id).wait_view(
        modal_id, lambda v: "every day at 08:30" in texts(v["view"]["blocks"]))
    shown = texts((await SlackUser(world.slack, admin.user_id).command("reminders"))["blocks"])
    assert profile.name in shown and "every day at 08:30" in shown
    await wait_home(world, admin.user_id, lambda body: "every day at 08:30" in body)
    # Changed with the subcommand instead: the admin's tab is refreshed too.
    await SlackUser(world.slack, admin.user_id).command(f"reminders {profile.name} weekly 07:15")
    await wait_home(world, admin.user_id, lambda body: "every Monday at 07:15" in body)


async def test_a_scheduled_payment_shows_on_home_and_cancel_there_cancels_it(world: World) -> None:
    profile = await world.profile(currency="EUR", cards=("visa",))
    person = await world.person([profile])
    invoice = await world.invoice(profile, "99.00", due_in_days=5)
    await open_home(world, person.user_id)
    done = await schedule(world, person, invoice)
    assert "Payment scheduled" in texts(done["view"]["blocks"])
    home = await wait_home(world, person.user_id, lambda body: "Scheduled" in body and invoice["number"] in body)
    assert "cancel_scheduled_payment" in texts(home["view"]["blocks"])

    opened = await click_home(world, person.user_id, home, "cancel_scheduled_payment", invoice["number"])
    assert "Scheduled payment cancelled" in str(opened["params"]["view"])
    assert invoice["number"] not in texts((await SlackUser(world.slack, person.user_id).command("scheduled"))["blocks"])
    await wait_home(world, person.user_id, lambda body: "cancel_scheduled_payment" not in body)
    assert [j["state"] for j in jobs(world.stack)
            if j["kind"] == "scheduled_payment" and j["key"].startswith(f"payment:{done['id']}:")] == ["canceled"]
    assert await world.intents(profile.customer_id or "") == []


async def test_a_receipt_opens_from_home_only_for_one_s_own_payment(world: World) -> None:
    profile = await world.profile(currency="EUR")
    person, other = await world.person([profile]), await world.person([profile])
    mine, theirs = await world.invoice(profile, "42.00"), await world.invoice(profile, "17.00")
    for who, invoice in ((person, mine), (other, theirs)):
        user = SlackUser(world.slack, who.user_id)
        await user.pay(await user.pay_now(await user.command(invoice["number"]), invoice["id"]))
    home = await open_home(world, person.user_id)
    opened = await click_home(world, person.user_id, home, "home_receipt")
    receipt = str(opened["params"]["view"])
    assert "Payment received" in receipt and "€42.00" in receipt and mine["number"] in receipt

    # The other payer's button carrying this payment's id: no receipt, and the refusal is audited.
    _, _, payment_id = element(home, "home_receipt")
    opened = await click_home(world, other.user_id, await open_home(world, other.user_id), "home_receipt",
                              tamper_value=payment_id)
    refused = str(opened["params"]["view"])
    assert "No receipt" in refused and "€42.00" not in refused and mine["number"] not in refused
    assert "show_receipt" in world.stack.invoicebot("audit", "--user", other.user_id).stdout


async def test_a_scheduled_payment_needing_approval_shows_once_and_the_approver_decides_from_home(
        world: World) -> None:
    profile, admin, payer, invoice = await _approval_team(world, "250.00")
    done = await schedule(world, payer, invoice)
    assert "Needs approval first" in texts(done["view"]["blocks"])
    # The payer's tab: once, as the scheduled payment with its Cancel (which ends the request too).
    home = texts((await open_home(world, payer.user_id))["view"]["blocks"])
    assert "Scheduled*" in home and "cancel_scheduled_payment" in home
    assert "approval_withdraw" not in home and "Waiting for approval" not in home and "Payments in flight" not in home
    # The approver's tab: the request, with Approve; approved, it waits for its day: nothing charged.
    boss = await open_home(world, admin.user_id)
    opened = await click_home(world, admin.user_id, boss, "approval_approve", invoice["number"])
    answer = await SlackUser(world.slack, admin.user_id).wait_view(
        opened["response"]["view"]["id"], lambda v: "Approving" not in texts(v["view"]["blocks"]))
    assert "already decided" not in texts(answer["view"]["blocks"])
    await wait_home(world, admin.user_id, lambda body: "Waiting for your decision" not in body)
    home = texts((await open_home(world, payer.user_id))["view"]["blocks"])
    assert "cancel_scheduled_payment" in home and "Approved, waiting for its day" not in home
    assert await world.intents(profile.customer_id or "") == []
