"""The operator's side, against the real stand-ins: `invoicebot check` says what works and
what to fix, `serve` warns about what does not and `/readyz` reports it, and the CLI's
listings are tables for people and JSON for scripts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import httpx

from sandbox.processes import free_port
from tests.e2e.slack_user import SlackUser
from tests.e2e.world import World
from tests.harness import Stack, unique


async def invoicebot(stack: Stack, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # In a thread: the stand-ins answer the command while this test's loop waits.
    return await asyncio.to_thread(stack.invoicebot, *args, check=False, **env)


def line_of(output: str, prefix: str) -> str:
    """The one line of `check` about `prefix` (e.g. "slack token"), without its symbol."""
    [line] = [line for line in output.splitlines() if line[2:].startswith(prefix + ":")]
    return line


async def test_check_passes_every_line_against_the_sandboxes(world: World) -> None:
    result = await invoicebot(world.stack, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "all checks passed"
    checks = lines[:-1]
    assert all(line.startswith("✓ ") for line in checks), result.stdout
    for prefix in ("slack signing secret", "slack token", "slack scopes", "slack notify channel", "stripe key",
                   "stripe webhook secret", "billing API", "billing token", "billing contract",
                   "database connection", "database schema"):
        line_of(result.stdout, prefix)
    assert "test mode" in line_of(result.stdout, "stripe key")
    assert "version 1.1" in line_of(result.stdout, "billing contract")
    assert "the bot is a member" in line_of(result.stdout, "slack notify channel")
    assert result.stderr == ""  # quiet: no log lines, no library warnings

    as_json = await invoicebot(world.stack, "check", "--json")
    report = json.loads(as_json.stdout)
    assert as_json.returncode == 0 and report["ok"] is True
    assert {c["service"] for c in report["checks"]} == {"slack", "stripe", "billing", "database"}
    assert all(c["status"] == "ok" and c["passed"] for c in report["checks"])


async def test_a_wrong_slack_token_fails_with_its_fix(world: World) -> None:
    result = await invoicebot(world.stack, "check", SLACK_BOT_TOKEN="xoxb-not-the-token")
    assert result.returncode == 1
    line = line_of(result.stdout, "slack token")
    assert line.startswith("✗ ") and "invalid_auth" in line and "Install App" in line
    assert line_of(result.stdout, "stripe key").startswith("✓ ")  # the other services still checked


async def test_a_token_missing_scopes_fails_naming_them(world: World) -> None:
    team, token = unique("T").upper(), f"xoxb-{unique('few')}"
    await world.slack.add_team(team, bot_token=token, bot_scopes="commands,chat:write,users:read,channels:read")
    channel = unique("C").upper()
    await world.slack.add_channel(channel, channel.lower(), bot_is_member=True, team_id=team)
    result = await invoicebot(world.stack, "check", SLACK_BOT_TOKEN=token, NOTIFY_CHANNEL=channel)
    assert result.returncode == 1
    line = line_of(result.stdout, "slack scopes")
    assert line.startswith("✗ ") and "chat:write.public, users:read.email, groups:read" in line
    assert "reinstall" in line
    assert line_of(result.stdout, "slack token").startswith("✓ ")
    assert line_of(result.stdout, "slack notify channel").startswith("✓ ")


async def test_a_notify_channel_without_the_bot_fails_with_the_invite(world: World) -> None:
    # #finance-private: private, and the bot is not in it, so Slack does not show it to the bot.
    for channel in ("C_PRIVATE", "#finance-private"):
        result = await invoicebot(world.stack, "check", NOTIFY_CHANNEL=channel)
        assert result.returncode == 1
        line = line_of(result.stdout, "slack notify channel")
        assert line.startswith("✗ ") and "/invite @invoicebot" in line, line

    # A public channel the bot is not in still works (chat:write.public): said, not failed.
    public = unique("C").upper()
    await world.slack.add_channel(public, public.lower(), bot_is_member=False)
    result = await invoicebot(world.stack, "check", NOTIFY_CHANNEL=f"#{public.lower()}")
    assert result.returncode == 0, result.stdout
    line = line_of(result.stdout, "slack notify channel")
    assert line.startswith("! ") and "not a member" in line and "/invite @invoicebot" in line


async def test_a_wrong_billing_token_or_address_fails_with_its_fix(world: World) -> None:
    result = await invoicebot(world.stack, "check", BILLING_API_TOKEN="not-the-token")
    assert result.returncode == 1
    assert line_of(result.stdout, "billing API").startswith("✓ ")
    line = line_of(result.stdout, "billing token")
    assert line.startswith("✗ ") and "401" in line and "set BILLING_API_TOKEN" in line

    result = await invoicebot(world.stack, "check", BILLING_API_URL=f"http://127.0.0.1:{free_port()}")
    line = line_of(result.stdout, "billing API")
    assert result.returncode == 1 and line.startswith("✗ ") and "cannot reach" in line and "BILLING_API_URL" in line


async def test_a_wrong_stripe_key_fails_with_its_fix(world: World) -> None:
    result = await invoicebot(world.stack, "check", STRIPE_API_KEY="mk_test_typo")  # Stripe refuses it
    assert result.returncode == 1
    line = line_of(result.stdout, "stripe key")
    assert line.startswith("✗ ") and "refused" in line and "dashboard.stripe.com/apikeys" in line

    result = await invoicebot(world.stack, "check", STRIPE_API_KEY="pk_test_publishable")
    line = line_of(result.stdout, "stripe key")
    assert result.returncode == 1 and line.startswith("✗ ") and "publishable" in line

    # PUBLIC_URL set: Stripe sends events, which cannot be verified without the secret.
    result = await invoicebot(world.stack, "check", STRIPE_WEBHOOK_SECRET="")
    line = line_of(result.stdout, "stripe webhook secret")
    assert result.returncode == 1 and line.startswith("✗ ") and "/stripe/webhook" in line


async def test_readyz_reports_the_checks_and_serve_warns_at_start(world: World) -> None:
    stack = world.stack
    async with httpx.AsyncClient(timeout=30) as http:
        ready = await http.get(f"{stack.app_url}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["ready"] is True and len(ready.json()["checks"]) >= 10

        # Placeholders: the server still starts (an outage must not block a deploy), but says so.
        port = free_port()
        name = unique("app-misconfigured-")
        bad = stack.start_app(name=name, port=port, BILLING_API_TOKEN="not-the-token")
        try:
            answer = await http.get(f"http://127.0.0.1:{port}/readyz")
            assert answer.status_code == 503
            failed = [c for c in answer.json()["checks"] if not c["passed"]]
            assert [(c["service"], c["name"]) for c in failed] == [("billing", "token")]
            assert "BILLING_API_TOKEN" in failed[0]["fix"]
            deadline = time.monotonic() + 20
            log = stack.workdir / f"{name}.log"
            while "check failed" not in log.read_text() and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            warnings = [json.loads(line) for line in log.read_text().splitlines()
                        if line.startswith("{") and "check failed" in line]
            assert [w["level"] for w in warnings] == ["warning"]
            assert "billing token" in warnings[0]["message"]
            assert "will be unused" not in log.read_text()  # no library warnings at start
        finally:
            bad.stop()


async def test_cli_listings_find_an_invoice_by_its_number_as_tables_and_json(world: World) -> None:
    profile = await world.profile(currency="EUR")
    person = await world.person([profile])
    invoice = await world.invoice(profile, "250.00", number=unique("INV-US-2026-"))
    user = SlackUser(world.slack, person.user_id)
    await user.pay(await user.pay_now(await user.command(), invoice["id"]))
    stack = world.stack

    audit = await invoicebot(stack, "audit", "--invoice", invoice["number"], "--json")
    assert audit.returncode == 0, audit.stderr
    rows = json.loads(audit.stdout)
    assert {r["invoice_id"] for r in rows} == {invoice["id"]}
    assert {"open_pay_now", "submit_payment", "payment_result"} <= {r["action"] for r in rows}
    assert all(r["user_id"] == person.user_id for r in rows)

    table = await invoicebot(stack, "audit", "--invoice", invoice["number"])
    assert table.returncode == 0 and "action" in table.stdout and "outcome" in table.stdout  # headers
    assert "submit_payment" in table.stdout and table.stderr == ""

    payments = await invoicebot(stack, "payments", "--invoice", invoice["number"], "--json")
    [payment] = json.loads(payments.stdout)
    assert payment["amount"] == "250.00" and payment["currency"] == "EUR" and payment["status"] == "recorded"

    nothing = await invoicebot(stack, "audit", "--invoice", "INV-NOBODY-0000")
    assert nothing.returncode == 0 and nothing.stdout.startswith("no audit events for invoice INV-NOBODY-0000")
    assert json.loads((await invoicebot(stack, "payments", "--invoice", "INV-NOBODY-0000", "--json")).stdout) == []

    bogus = await invoicebot(stack, "payments", "--status", "bogus")
    assert bogus.returncode != 0 and "bogus" in bogus.stderr
    assert all(status in bogus.stderr for status in ("created", "recorded", "failed", "processing"))
