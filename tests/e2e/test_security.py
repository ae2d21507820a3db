"""Request security, injection, secrets in logs, audit, and notification routing."""

from __future__ import annotations

import asyncio
import json
import re

import httpx

from tests.e2e.slack_user import SlackUser, texts
from tests.e2e.world import World
from tests.harness import BILLING_TOKEN, BOT_TOKEN, SIGNING_SECRET, STRIPE_KEY, WEBHOOK_SECRET, unique

EVIL = "Evil <!channel> <https://evil.example|click> & Co"


async def test_slack_formatting_from_the_billing_backend_is_shown_as_text(world: World) -> None:
    profile = await world.profile(name=EVIL)
    person = await world.person([profile])
    invoice = await world.invoice(profile, "10.00", number=f"<!here>-{unique('')}")
    user = SlackUser(world.slack, person.user_id)
    listing = await user.command()
    modal = await user.pay_now(listing, invoice["id"])
    done = await user.pay(modal)
    notice = await world.wait_for_channel_message(invoice["number"].replace("<", "&lt;").replace(">", "&gt;"))
    for blocks in (listing["blocks"], modal["view"]["blocks"], done["view"]["blocks"], notice["blocks"]):
        shown = texts(blocks)
        assert "<!channel>" not in shown and "<!here>" not in shown and "<https://evil" not in shown
        assert "&lt;!channel&gt;" in shown or "&lt;!here&gt;" in shown


async def test_oversized_requests_are_refused_before_any_work(world: World) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{world.stack.app_url}/slack/events", content=b"x" * 2_000_000,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413


async def test_an_amount_in_another_currency_is_refused(world: World) -> None:
    profile = await world.profile(currency="EUR")
    person = await world.person([profile])
    invoice = await world.invoice(profile, "100.00")
    user = SlackUser(world.slack, person.user_id)
    modal = await user.pay_now(await user.command(), invoice["id"])
    result = await user.submit(modal, amount="USD 50")
    assert result["applied"] == "errors"
    assert "is not a number" in (await user.view(modal["id"]))["errors"]["amount"]
    assert await world.intents(profile.customer_id) == []


async def test_a_full_payment_leaves_no_secret_card_number_or_email_in_the_logs(world: World) -> None:
    profile = await world.profile(cards=("visa",))
    person = await world.person([profile])
    invoice = await world.invoice(profile, "19.00")
    user = SlackUser(world.slack, person.user_id)
    done = await user.pay(await user.pay_now(await user.command(), invoice["id"]))
    assert "Payment received" in texts(done["view"]["blocks"])
    await world.wait_for_channel_message(invoice["number"])
    await asyncio.sleep(0.5)
    log = (world.stack.workdir / "app.log").read_text()
    assert log.strip(), "the app logged nothing at all"
    for line in log.splitlines():
        json.loads(line)  # structured: one JSON object per line
    for secret in (BOT_TOKEN, SIGNING_SECRET, STRIPE_KEY, BILLING_TOKEN, WEBHOOK_SECRET, "4242424242424242",
                   person.email):
        assert secret not in log, f"{secret[:6]}… found in the app log"
    assert not re.search(r"[A-Za-z0-9._%+-]+@acme\.example", log)


async def test_the_audit_trail_tells_who_did_what(world: World) -> None:
    profile = await world.profile(cards=("mastercard",), default="mastercard")
    person = await world.person([profile])
    invoice = await world.invoice(profile, "25.00")
    user = SlackUser(world.slack, person.user_id)
    await user.pay(await user.pay_now(await user.command(), invoice["id"]), amount="20")
    audit = world.stack.invoicebot("audit", "--invoice", invoice["id"]).stdout
    assert "open_pay_now" in audit and "submit_payment" in audit and "payment_result" in audit
    assert "Mastercard •••• 4444" in audit and '"amount": "20.00"' in audit and "recorded" in audit
    assert person.user_id in audit
    listed = world.stack.invoicebot("audit", "--user", person.user_id).stdout
    assert "list_invoices" in listed


async def test_admins_route_a_profile_s_notifications_to_its_own_channel(world: World) -> None:
    alpha, beta = await world.profile(name=unique("Alpha ")), await world.profile(name=unique("Beta "))
    channel = unique("C").upper()
    await world.slack.add_channel(channel, channel.lower(), is_private=False, bot_is_member=False)
    admin = await world.person([alpha, beta], permissions=("invoice_viewer", "billing_profile_admin"))
    clerk = await world.person([alpha, beta])
    admin_user, clerk_user = SlackUser(world.slack, admin.user_id), SlackUser(world.slack, clerk.user_id)

    refused = texts((await clerk_user.command(f"notify <#{channel}|x> {alpha.name}"))["blocks"])
    assert "Only billing-profile admins" in refused
    done = texts((await admin_user.command(f"notify <#{channel}|{channel.lower()}> {alpha.name}"))["blocks"])
    assert f"now go to <#{channel}>" in done and alpha.name in done and beta.name not in done
    shown = texts((await clerk_user.command("notify"))["blocks"])
    assert f"{alpha.name}: <#{channel}>" in shown and f"{beta.name}: <#C_BILLING> (default)" in shown

    invoice_a, invoice_b = await world.invoice(alpha, "11.00"), await world.invoice(beta, "12.00")
    for invoice in (invoice_a, invoice_b):
        await clerk_user.pay(await clerk_user.pay_now(await clerk_user.command(), invoice["id"]))

    async def delivered() -> None:
        routed = [m for m in await world.slack.messages(channel=channel) if not m["ephemeral"]]
        assert [invoice_a["number"] in m["text"] for m in routed] == [True]
        assert await world.notifications_about(invoice_b["number"])
        assert not await world.notifications_about(invoice_a["number"])
    from tests.harness import eventually
    await eventually(delivered)


async def test_a_private_channel_the_bot_is_not_in_is_refused_with_a_reason(world: World) -> None:
    profile = await world.profile()
    admin = await world.person([profile], permissions=("invoice_viewer", "billing_profile_admin"))
    reply = texts((await SlackUser(world.slack, admin.user_id).command("notify <#C_PRIVATE|finance-private>"))["blocks"])
    assert "invite me" in reply.lower() or "Invite me" in reply


async def test_a_channel_typed_as_text_is_linked_by_slack_and_a_private_one_works_after_invite(world: World) -> None:
    profile = await world.profile(name=unique("Gamma "))
    channel = unique("C").upper()
    name = channel.lower()
    admin = await world.person([profile], permissions=("invoice_viewer", "billing_profile_admin"))
    await world.slack.add_channel(channel, name, is_private=True, bot_is_member=False, members=[admin.user_id])
    user = SlackUser(world.slack, admin.user_id)

    public = texts((await user.command("notify #billing"))["blocks"])  # as typed; /invoices has should_escape
    assert "now go to <#C_BILLING>" in public
    refused = texts((await user.command(f"notify #{name}"))["blocks"])
    assert "invite me first" in refused.lower()
    invited = await world.slack.invite(admin.user_id, channel, "@invoicebot")
    assert invited["ok"]
    done = texts((await user.command(f"notify #{name}"))["blocks"])
    assert f"now go to <#{channel}>" in done and profile.name in done
