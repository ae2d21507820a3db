"""Every notice ends: delivered, or given up after one try when Slack's refusal is
permanent, listed by `invoicebot outbox --failed` and sent again by `invoicebot outbox
retry`; transient refusals are retried with backoff; one workspace's trouble never holds
up another's notices.

Notices are queued as the processor queues them (an outbox row); the bot's own server
delivers them through the Slack stand-in, whose faults play Slack's refusals."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.postgres import temporary_database_sync as temporary_database
from storage.db import create_engine, session_factory
from storage.models import OutboxMessage, utcnow
from storage.outbox import OutboxRepository
from storage.payments import PaymentRepository
from tests.e2e.test_workspaces import CLIENT_ID, CLIENT_SECRET, install
from tests.e2e.world import World
from tests.harness import TEAM_ID, Stack, eventually, free_port, unique

pytestmark = pytest.mark.timeout(180) if hasattr(pytest.mark, "timeout") else []


@pytest.fixture(scope="module")
def default_channel(stack: Stack) -> Iterator[str]:
    """The bot's server for this module, with a default channel of its own, so that no
    other test's notice meets the faults injected here."""
    channel = unique("C").upper()
    httpx.post(f"{stack.slack_url}/_standin/channels", json={"id": channel, "name": channel.lower(),
                                                             "is_private": False, "bot_is_member": True}
               ).raise_for_status()
    stack.processes["app"].stop()
    app = stack.start_app(name="outbox-app", NOTIFY_CHANNEL=channel)
    try:
        yield channel
    finally:
        app.stop()
        stack.start_app()


@contextlib.asynccontextmanager
async def outbox_of(database_url: str) -> AsyncIterator[tuple[PaymentRepository, OutboxRepository]]:
    engine = create_engine(database_url)
    try:
        yield PaymentRepository(session_factory(engine)), OutboxRepository(session_factory(engine))
    finally:
        await engine.dispose()


async def notify(database_url: str, channel: str, text: str, *, team: str = TEAM_ID) -> int:
    """Queue a notice as the processor does; returns its outbox id."""
    key = unique("e2e-notice:")
    async with outbox_of(database_url) as (payments, outbox):
        await payments.add_outbox([OutboxMessage(dedupe_key=key, team_id=team, channel=channel,
                                                 payload={"text": text}, attempts=0, next_attempt_at=utcnow())])
        return next(m.id for m in await outbox.recent() if m.dedupe_key == key)


async def message(database_url: str, message_id: int) -> OutboxMessage:
    async with outbox_of(database_url) as (_, outbox):
        found = await outbox.get(message_id)
    assert found is not None
    return found


async def posts(world: World, channel: str, text: str) -> list[dict[str, Any]]:
    return [c for c in await world.slack.calls("chat.postMessage")
            if c["params"].get("channel") == channel and text in str(c["params"].get("text"))]


def row_of(listing: str, message_id: int) -> list[str]:
    return next(line.split() for line in listing.splitlines() if line.split()[:1] == [str(message_id)])


PERMANENT = ["channel_not_found", "not_in_channel", "is_archived", "channel_is_archived", "account_inactive",
             "invalid_auth", "token_revoked", "not_authed", "missing_scope", "invalid_blocks", "msg_too_long",
             "no_text", "invalid_arguments"]


@pytest.mark.parametrize("error", PERMANENT)
async def test_a_permanent_refusal_is_a_dead_letter_after_one_try_until_the_operator_retries_it(
        world: World, default_channel: str, error: str) -> None:
    stack = world.stack
    await world.slack.set_faults("chat.postMessage", error=error, count=1000, channel=default_channel)
    text = unique(f"paid ({error}) ")
    message_id = await notify(stack.database_url, default_channel, text)

    async def given_up() -> OutboxMessage:
        found = await message(stack.database_url, message_id)
        assert found.failed_at is not None
        return found

    failed = await eventually(given_up)
    assert failed.last_error == error and failed.delivered_at is None

    listing = stack.invoicebot("outbox", "--failed").stdout  # (meanwhile, any retry would have happened)
    row = row_of(listing, message_id)
    assert row[1] == "failed" and row[3] == TEAM_ID and row[4] == default_channel[:14] and row[5] == "1"
    assert row[6] == error[:30]
    tries = await posts(world, default_channel, text)
    assert len(tries) == 1 and tries[0]["error"] == error  # exactly one try

    await world.slack.clear_faults()  # the cause is fixed
    retried = stack.invoicebot("outbox", "retry", str(message_id))
    assert f"message {message_id} queued" in retried.stdout

    async def delivered() -> None:
        assert [c["ok"] for c in await posts(world, default_channel, text)] == [False, True]
        assert (await message(stack.database_url, message_id)).delivered_at is not None

    await eventually(delivered)
    assert str(message_id) not in [line.split()[0] for line in
                                   stack.invoicebot("outbox", "--failed").stdout.splitlines()]


async def test_a_routed_channel_refusing_still_sends_the_notice_to_the_default_channel_first(
        world: World, default_channel: str) -> None:
    routed = unique("C").upper()
    await world.slack.add_channel(routed, routed.lower(), is_private=False, bot_is_member=True)
    await world.slack.set_faults("chat.postMessage", error="is_archived", count=1000, channel=routed)
    text = unique("paid (routed) ")
    message_id = await notify(world.stack.database_url, routed, text)

    async def rerouted() -> None:
        found = await posts(world, default_channel, text)
        assert len(found) == 1 and found[0]["ok"] and f"Meant for <#{routed}>" in found[0]["params"]["text"]

    await eventually(rerouted)
    found = await message(world.stack.database_url, message_id)
    assert found.delivered_at is not None and found.failed_at is None
    assert len(await posts(world, routed, text)) == 1


@pytest.mark.parametrize("error", ["internal_error", "fatal_error", "service_unavailable", "request_timeout"])
async def test_a_transient_refusal_is_retried_with_backoff_and_delivered_once_it_clears(
        world: World, default_channel: str, error: str) -> None:
    await world.slack.set_faults("chat.postMessage", error=error, count=2, channel=default_channel)
    text = unique(f"paid ({error}) ")
    message_id = await notify(world.stack.database_url, default_channel, text)

    async def delivered() -> list[dict[str, Any]]:
        tries = await posts(world, default_channel, text)
        assert [c["ok"] for c in tries] == [False, False, True]
        return tries

    tries = await eventually(delivered)
    # Backed off: at least 1 s, then at least 2 s (plus up to 10 % jitter and a second of polling).
    first, second = (b["monotonic"] - a["monotonic"] for a, b in zip(tries, tries[1:]))
    assert first >= 0.95 and second >= 1.95

    async def recorded() -> None:
        # The worker marks the row right after Slack's answer, which the stand-in logged first.
        found = await message(world.stack.database_url, message_id)
        assert found.delivered_at is not None and found.attempts == 3

    await eventually(recorded, timeout=5)


@pytest.fixture
def own_database(tmp_path: Path, stack: Stack) -> Iterator[str]:
    """A database for a second, OAuth-installed server alone (the test stack's main server,
    single-workspace, would otherwise deliver its notices with the default token)."""
    server = os.environ.get("INVOICEBOT_TEST_POSTGRES")
    with (temporary_database(server) if server else contextlib.nullcontext(
            f"sqlite:///{tmp_path / 'workspaces.db'}")) as url:
        stack.invoicebot("db", "upgrade", DATABASE_URL=url)
        yield url


async def test_an_uninstalled_workspace_does_not_delay_another_workspaces_notices(
        world: World, own_database: str) -> None:
    stack = world.stack
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    team_a, team_b = unique("T").upper(), unique("T").upper()
    channels = {}
    for team in (team_a, team_b):
        await world.slack.add_team(team, team.lower())
        channels[team] = unique("C").upper()
        await world.slack.add_channel(channels[team], "billing", is_private=False, bot_is_member=True, team_id=team)
    await world.slack.configure_oauth(CLIENT_ID, CLIENT_SECRET, f"{app_url}/slack/oauth_redirect")
    await world.slack.configure(request_url=f"{app_url}/slack/events")
    app = stack.start_app(name="workspaces-app", port=port, SLACK_BOT_TOKEN="", SLACK_CLIENT_ID=CLIENT_ID,
                          SLACK_CLIENT_SECRET=CLIENT_SECRET, PUBLIC_URL=app_url, DATABASE_URL=own_database,
                          NOTIFY_CHANNEL="#billing", SLACK_OAUTH_AUTHORIZE_URL=f"{stack.slack_url}/oauth/v2/authorize")
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            await install(http, app_url, team_a)
            await install(http, app_url, team_b)
        uninstalled = await world.slack.uninstall(team_b)
        assert [d["status"] for d in uninstalled["deliveries"]] == [200, 200]

        # Workspace B's notices are older: they come first in the queue, for a channel of the same name.
        gone = [await notify(own_database, "#billing", unique("for B "), team=team_b) for _ in range(3)]
        queued = time.monotonic()
        text = unique("for A ")
        await notify(own_database, "#billing", text, team=team_a)

        async def arrived() -> None:
            assert text in [m["text"] for m in await world.slack.messages(channel=channels[team_a])]

        await eventually(arrived, timeout=15)
        assert time.monotonic() - queued < 8  # the worker's next pass or two, not after B's retries

        for message_id in gone:
            found = await message(own_database, message_id)
            assert found.failed_at is not None and found.last_error == "not_installed" and found.attempts == 1
        assert await world.slack.messages(channel=channels[team_b]) == []
        listing = stack.invoicebot("outbox", "--failed", DATABASE_URL=own_database).stdout
        for message_id in gone:
            row = row_of(listing, message_id)
            assert row[1] == "failed" and row[3] == team_b[:12] and row[6] == "not_installed"
        everything = stack.invoicebot("outbox", DATABASE_URL=own_database).stdout
        assert [row_of(everything, i)[1] for i in gone] == ["failed"] * 3
        assert "delivered" in next(line for line in everything.splitlines() if text in line)
    finally:
        await world.slack.configure(request_url=f"{stack.app_url}/slack/events")
        app.stop()
