"""The outbox worker and its Slack sender against an in-memory Slack (a fake client) and the real repository on
a SQLite file: every delivery ends, delivered or given up, and one message's trouble never
holds up another's."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.outbox_worker import Delivered, OutboxWorker, Refused, RetryLater, Undeliverable
from bot.retry import Backoff
from handlers.slack_io import NOT_INSTALLED, PERMANENT, SlackSender
from storage.db import create_engine, session_factory
from storage.models import Base, OutboxMessage, utcnow
from storage.outbox import OutboxRepository
from storage.payments import PaymentRepository
from tests.unit.test_links_and_clock import FixedClock

FAST = Backoff(base=0.05, cap=0.1, jitter=0.0, max_attempts=4)
_keys = itertools.count()


def slack_error(error: str, status: int = 200, headers: dict[str, str] | None = None) -> SlackApiError:
    response = AsyncSlackResponse(client=None, http_verb="POST", api_url="chat.postMessage", req_args={},  # type: ignore[arg-type]
                                  data={"ok": False, "error": error}, headers=headers or {}, status_code=status)
    return SlackApiError(error, response)


class FakeSlack:
    """chat.postMessage that records every call and fails as told, per channel."""

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, str, str]] = []  # (team, channel, text)
        self.failures: dict[str, list[BaseException]] = {}  # channel -> next failures, in order
        self.always: dict[str, BaseException] = {}  # channel -> fails every time
        self.refused_text: dict[str, BaseException] = {}  # any message containing this text fails

    def client(self, team: str | None) -> Any:
        fake = self

        class Client:
            async def chat_postMessage(self, *, channel: str, text: str, **_: Any) -> dict[str, Any]:  # noqa: N802
                fake.calls.append((team, channel, text))
                if channel in fake.always:
                    raise fake.always[channel]
                if fake.failures.get(channel):
                    raise fake.failures[channel].pop(0)
                for needle, error in fake.refused_text.items():
                    if needle in text:
                        raise error
                return {"ok": True}

        return Client()

    def posted(self, channel: str) -> list[str]:
        return [text for _, c, text in self.calls if c == channel]


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[OutboxRepository]:
    engine = create_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    repository = OutboxRepository(session_factory(engine))
    repository.queue = PaymentRepository(session_factory(engine)).add_outbox  # type: ignore[attr-defined]
    yield repository
    await engine.dispose()


async def queue(repo: OutboxRepository, channel: str, text: str, *, team: str = "T1") -> int:
    key = f"test:{next(_keys)}"
    await repo.queue([OutboxMessage(dedupe_key=key, team_id=team, channel=channel, payload={"text": text},  # type: ignore[attr-defined]
                                    attempts=0, next_attempt_at=utcnow())])
    return next(m.id for m in await repo.recent() if m.dedupe_key == key)


def worker(repo: OutboxRepository, slack: FakeSlack, *, uninstalled: frozenset[str] = frozenset(),
           fallback: str | None = None, backoff: Backoff = FAST) -> OutboxWorker:
    async def client_for(team: str) -> Any:
        if team in uninstalled:
            raise LookupError(f"invoicebot is not installed in workspace {team}")
        return slack.client(team)

    return OutboxWorker(repo, SlackSender(client_for), fallback_channel=fallback, pace_seconds=0,
                        backoff=backoff)


async def waiting(repo: OutboxRepository) -> list[OutboxMessage]:
    """Messages neither delivered nor given up."""
    return [m for m in await repo.recent(limit=10_000) if m.delivered_at is None and m.failed_at is None]


async def drain(outbox: OutboxWorker, repo: OutboxRepository, seconds: float = 3.0) -> None:
    """Passes until nothing is waiting (or time is up): what the running worker does."""
    deadline = asyncio.get_running_loop().time() + seconds
    while await waiting(repo) and asyncio.get_running_loop().time() < deadline:
        await outbox.deliver_due()
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("error", sorted(PERMANENT - {NOT_INSTALLED}))
async def test_a_permanent_error_is_given_up_after_one_try_and_sent_again_on_retry(
        repo: OutboxRepository, error: str, caplog: pytest.LogCaptureFixture) -> None:
    slack = FakeSlack()
    slack.always["C_ROUTED"] = slack_error(error)
    outbox = worker(repo, slack)  # no default channel to fall back on
    message_id = await queue(repo, "C_ROUTED", "paid INV-1")
    with caplog.at_level(logging.INFO, logger="bot.outbox_worker"):
        await drain(outbox, repo)
        await asyncio.sleep(FAST.cap * 2)
        await outbox.deliver_due()
    assert slack.posted("C_ROUTED") == ["paid INV-1"]  # exactly one try
    message = await repo.get(message_id)
    assert message is not None and message.failed_at is not None and message.delivered_at is None
    assert message.last_error == error
    said = [r for r in caplog.records if str(message_id) in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.ERROR and error in said[0].getMessage()

    del slack.always["C_ROUTED"]  # the cause is fixed (the bot invited, the token renewed...)
    assert await repo.retry_now([message_id]) == [message_id]
    await drain(outbox, repo)
    assert slack.posted("C_ROUTED") == ["paid INV-1", "paid INV-1"]
    message = await repo.get(message_id)
    assert message is not None and message.delivered_at is not None and message.failed_at is None


@pytest.mark.parametrize("failure", [slack_error("service_unavailable", 503), slack_error("internal_error", 500),
                                     slack_error("ratelimited", 429, {"Retry-After": "1"}),
                                     slack_error("fatal_error"), slack_error("request_timeout"),
                                     ConnectionResetError(), asyncio.TimeoutError()],
                         ids=lambda f: type(f).__name__ + ":" + str(getattr(f, "response", {}).get("error", "")))
async def test_a_transient_error_is_retried_with_backoff_and_delivered_once_it_clears(
        repo: OutboxRepository, failure: BaseException) -> None:
    slack = FakeSlack()
    slack.failures["C1"] = [failure, failure]
    outbox = worker(repo, slack, backoff=Backoff(base=0.1, cap=1.0, jitter=0.0, max_attempts=5))
    message_id = await queue(repo, "C1", "paid INV-2")
    started = asyncio.get_running_loop().time()
    await drain(outbox, repo, seconds=6.0)
    took = asyncio.get_running_loop().time() - started
    assert slack.posted("C1") == ["paid INV-2"] * 3
    message = await repo.get(message_id)
    assert message is not None and message.delivered_at is not None and message.attempts == 3
    # Waited between tries: 0.1 s then 0.2 s on this curve (a 429 waits its Retry-After, 1 s).
    assert took >= 0.28


async def test_transient_errors_end_too_after_the_last_try(repo: OutboxRepository) -> None:
    slack = FakeSlack()
    slack.always["C1"] = slack_error("service_unavailable", 503)
    outbox = worker(repo, slack)
    message_id = await queue(repo, "C1", "paid INV-3")
    await drain(outbox, repo)
    assert len(slack.posted("C1")) == FAST.max_attempts
    message = await repo.get(message_id)
    assert message is not None and message.failed_at is not None
    assert message.last_error == f"service_unavailable (after {FAST.max_attempts} tries)"


async def test_an_uninstalled_workspace_is_given_up_and_the_pass_goes_on(repo: OutboxRepository) -> None:
    slack = FakeSlack()
    outbox = worker(repo, slack, uninstalled=frozenset({"T_GONE"}))
    gone = [await queue(repo, "#billing", f"gone {i}", team="T_GONE") for i in range(3)]
    await queue(repo, "#billing", "for the other workspace", team="T_HERE")
    delivered = await outbox.deliver_due()  # one pass
    assert delivered == 1
    assert slack.calls == [("T_HERE", "#billing", "for the other workspace")]
    for message_id in gone:
        message = await repo.get(message_id)
        assert message is not None and message.failed_at is not None and message.last_error == NOT_INSTALLED
        assert message.attempts == 1


async def test_an_unexpected_exception_stays_with_its_message(repo: OutboxRepository,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    slack = FakeSlack()
    slack.failures["C_BUGGY"] = [RuntimeError("a bug"), RuntimeError("a bug")]
    outbox = worker(repo, slack)
    buggy = await queue(repo, "C_BUGGY", "one")
    await queue(repo, "C_FINE", "two")
    with caplog.at_level(logging.INFO, logger="bot.outbox_worker"):
        assert await outbox.deliver_due() == 1  # the other channel's message went out in the same pass
        await drain(outbox, repo)
    assert slack.posted("C_FINE") == ["two"]
    assert slack.posted("C_BUGGY") == ["one"] * 3
    message = await repo.get(buggy)
    assert message is not None and message.delivered_at is not None
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1  # the traceback once, not on every try


async def test_a_channel_notice_is_rerouted_first_but_a_direct_message_never_is(repo: OutboxRepository) -> None:
    slack = FakeSlack()
    slack.always["C_ROUTED"] = slack_error("not_in_channel")
    slack.always["U_PAYER"] = slack_error("channel_not_found")
    outbox = worker(repo, slack, fallback="C_DEFAULT")
    notice = await queue(repo, "C_ROUTED", "paid INV-4")
    direct = await queue(repo, "U_PAYER", "your payment went through")
    await drain(outbox, repo)
    [rerouted] = slack.posted("C_DEFAULT")
    assert rerouted.startswith("paid INV-4") and "Meant for <#C_ROUTED>" in rerouted
    assert (await repo.get(notice)).delivered_at is not None  # type: ignore[union-attr]
    assert slack.posted("U_PAYER") == ["your payment went through"]
    assert (await repo.get(direct)).failed_at is not None  # type: ignore[union-attr]
    assert "your payment" not in " ".join(slack.posted("C_DEFAULT"))


async def test_the_default_channel_failing_too_ends_in_the_dead_letters(repo: OutboxRepository) -> None:
    slack = FakeSlack()
    slack.always["C_DEFAULT"] = slack_error("is_archived")
    outbox = worker(repo, slack, fallback="C_DEFAULT")
    message_id = await queue(repo, "C_DEFAULT", "paid INV-5")
    await drain(outbox, repo)
    assert slack.posted("C_DEFAULT") == ["paid INV-5"]
    assert (await repo.get(message_id)).last_error == "is_archived"  # type: ignore[union-attr]


async def test_a_dead_letter_does_not_hold_back_its_channel(repo: OutboxRepository) -> None:
    slack = FakeSlack()
    slack.failures["C1"] = [slack_error("invalid_blocks")]
    outbox = worker(repo, slack)
    refused = await queue(repo, "C1", "refused")
    await drain(outbox, repo)
    assert (await repo.get(refused)).failed_at is not None  # type: ignore[union-attr]
    await queue(repo, "C1", "next one")
    assert await outbox.deliver_due() == 1
    assert slack.posted("C1") == ["refused", "next one"]


async def test_one_bad_notice_in_a_digest_does_not_take_the_others_with_it(repo: OutboxRepository) -> None:
    slack = FakeSlack()
    slack.refused_text["BAD"] = slack_error("invalid_blocks")
    outbox = worker(repo, slack)
    ids = [await queue(repo, "C1", text) for text in ("paid INV-6", "BAD notice", "paid INV-7")]
    assert await outbox.deliver_due() == 2
    assert slack.posted("C1") == ["paid INV-6\nBAD notice\npaid INV-7", "paid INV-6", "BAD notice", "paid INV-7"]
    first, bad, last = [await repo.get(i) for i in ids]
    assert first.delivered_at and last.delivered_at and not bad.delivered_at  # type: ignore[union-attr]
    assert bad.failed_at is not None and bad.last_error == "invalid_blocks"  # type: ignore[union-attr]


async def test_same_channel_name_in_two_workspaces_are_two_queues(repo: OutboxRepository) -> None:
    slack = FakeSlack()
    slack.always["#billing"] = slack_error("service_unavailable", 503)
    outbox = worker(repo, slack, backoff=Backoff(base=30.0, cap=60.0, jitter=0.0, max_attempts=5))
    await queue(repo, "#billing", "A waits", team="TA")
    await outbox.deliver_due()
    assert slack.calls == [("TA", "#billing", "A waits")]
    del slack.always["#billing"]
    await queue(repo, "#billing", "B goes now", team="TB")
    assert await outbox.deliver_due() == 1  # not behind A's retry, 30 s away
    assert slack.calls[-1] == ("TB", "#billing", "B goes now")


async def test_retry_all_failed_and_what_retry_refuses(repo: OutboxRepository) -> None:
    slack = FakeSlack()
    slack.always["C1"] = slack_error("account_inactive")
    outbox = worker(repo, slack)
    first = await queue(repo, "C1", "one", team="T1")
    second = await queue(repo, "C1", "two", team="T2")
    await drain(outbox, repo)
    assert {m.id for m in await repo.failed()} == {first, second}
    del slack.always["C1"]
    assert await repo.retry_now(all_failed=True) == [first, second]
    await drain(outbox, repo)
    assert await repo.failed() == []
    assert await repo.retry_now([first]) == []  # delivered: nothing to send again


def test_failed_messages_are_listed_for_the_operator() -> None:
    from bot.operator import format_outbox

    now = utcnow()
    message = OutboxMessage(id=7, team_id="T1", channel="C_ROUTED", payload={"text": "paid\nINV-1"}, attempts=1,
                            created_at=now - dt.timedelta(hours=2), failed_at=now - dt.timedelta(minutes=5),
                            last_error="channel_not_found")
    table = format_outbox([message], failed=True, now=now)
    header, row = table.splitlines()
    assert header.split()[:7] == ["id", "state", "age", "team", "channel", "tries", "error"]
    assert row.split()[:7] == ["7", "failed", "5m", "T1", "C_ROUTED", "1", "channel_not_found"]
    assert format_outbox([], failed=True) == "no failed messages"


async def test_the_operator_retry_says_what_it_did_with_each_id(repo: OutboxRepository) -> None:
    from bot.operator import format_outbox, format_retry, outbox_rows, retry_outbox

    slack = FakeSlack()
    slack.always["C1"] = slack_error("token_revoked")
    outbox = worker(repo, slack)
    failed = await queue(repo, "C1", "refused")
    fine = await queue(repo, "C2", "went out")
    await drain(outbox, repo)
    listing = format_outbox(await outbox_rows(repo), failed=False)
    states = {int(line.split()[0]): line.split()[1] for line in listing.splitlines()[1:]}
    assert states == {failed: "failed", fine: "delivered"}

    result = await retry_outbox(repo, [failed, fine, 999])
    assert (result.queued, result.delivered, result.unknown) == ([failed], [fine], [999])
    assert format_retry(result).splitlines() == [f"message {failed} queued to be sent now",
                                                 f"message {fine} was delivered already", "no outbox message 999"]
    assert (await repo.get(failed)).failed_at is None  # type: ignore[union-attr]
    assert format_retry(await retry_outbox(repo, all_failed=True)) == "no failed messages to retry"


async def test_retry_times_are_the_injected_clock_plus_the_curve_or_retry_after(repo: OutboxRepository) -> None:
    slack = FakeSlack()
    curve = Backoff(base=30.0, cap=60.0, jitter=0.0, max_attempts=5)
    at = utcnow().replace(microsecond=0)

    async def client_for(team: str) -> Any:
        return slack.client(team)

    outbox = OutboxWorker(repo, SlackSender(client_for), pace_seconds=0, backoff=curve, clock=FixedClock(at))
    slack.always["C1"] = slack_error("service_unavailable", 503)
    first = await queue(repo, "C1", "waits on the curve")
    await outbox.deliver_due()
    assert (await repo.get(first)).next_attempt_at == at + dt.timedelta(seconds=30)  # type: ignore[union-attr]
    slack.always["C2"] = slack_error("ratelimited", 429, {"Retry-After": "7"})
    second = await queue(repo, "C2", "waits as Slack says")
    await outbox.deliver_due()
    assert (await repo.get(second)).next_attempt_at == at + dt.timedelta(seconds=7)  # type: ignore[union-attr]


async def test_what_is_due_is_asked_of_the_repository_s_injected_clock(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'clocked.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    clock = FixedClock(utcnow().replace(microsecond=0))
    repo = OutboxRepository(session_factory(engine), now=clock.now)
    try:
        await PaymentRepository(session_factory(engine)).add_outbox([OutboxMessage(
            dedupe_key="later", team_id="T1", channel="C1", payload={"text": "in a minute"}, attempts=0,
            next_attempt_at=clock.at + dt.timedelta(seconds=60))])
        assert await repo.claim_due() == []
        clock.at += dt.timedelta(seconds=61)
        [[claimed]] = await repo.claim_due()
        assert claimed.dedupe_key == "later" and claimed.locked_until == clock.at + dt.timedelta(seconds=30)
    finally:
        await engine.dispose()


class ScriptedSender:
    """The worker's port without Slack: answers as scripted, per channel, and records calls."""

    batch_size = 5

    def __init__(self, answers: dict[str, list[Any]]) -> None:
        self.answers = answers
        self.sent: list[tuple[str, list[str]]] = []

    async def send(self, team_id: str, channel: str, payloads: list[dict[str, Any]]) -> Any:
        self.sent.append((channel, [p["text"] for p in payloads]))
        answers = self.answers.get(channel) or []
        return answers.pop(0) if answers else Delivered()

    def rerouted(self, payload: dict[str, Any], channel: str, error: str) -> dict[str, Any]:
        return {**payload, "text": f"{payload['text']} (for {channel}: {error})"}

    def is_person(self, channel: str) -> bool:
        return channel.startswith("person:")


async def test_the_worker_follows_its_senders_word_without_knowing_slack(repo: OutboxRepository) -> None:
    sender = ScriptedSender({"later": [RetryLater("busy", after=30.0)],
                             "gone": [Undeliverable("no such place", Refused.CHANNEL)],
                             "person:ann": [Undeliverable("no such place", Refused.CHANNEL)]})
    outbox = OutboxWorker(repo, sender, fallback_channel="default", pace_seconds=0, backoff=FAST)
    later = await queue(repo, "later", "waits")
    gone = await queue(repo, "gone", "rerouted")
    ann = await queue(repo, "person:ann", "only for Ann")
    before = utcnow()
    await drain(outbox, repo, seconds=1.0)
    waiting = await repo.get(later)
    assert waiting is not None and waiting.delivered_at is None and waiting.failed_at is None
    assert waiting.last_error == "busy"
    next_at = waiting.next_attempt_at if waiting.next_attempt_at.tzinfo else waiting.next_attempt_at.replace(tzinfo=dt.UTC)
    assert next_at >= before + dt.timedelta(seconds=29)  # the sender's wait, not the 0.05 s curve
    assert ("default", ["rerouted (for gone: no such place)"]) in sender.sent
    assert (await repo.get(gone)).delivered_at is not None  # type: ignore[union-attr]
    person = await repo.get(ann)
    assert person is not None and person.failed_at is not None and person.last_error == "no such place"
    assert all(channel != "default" or "Ann" not in texts[0] for channel, texts in sender.sent)
