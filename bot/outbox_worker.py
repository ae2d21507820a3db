"""Delivers queued Slack messages: once each, in order, honouring Slack's Retry-After.

Every delivery ends: delivered, or given up (a dead letter an operator can list and send
again with `invoicebot outbox`). Permanent errors (the channel, the token, the message
itself) are given up after one try; transient ones (rate limits, Slack's 5xx, the
network) are retried on the `bot.retry.SLACK_DELIVERY` curve, up to its last try. Whatever
goes wrong with one message (an uninstalled workspace, an unexpected exception) stays with
that message: the pass goes on with the others.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock, SystemClock
from bot.retry import SLACK_DELIVERY, Backoff, retry_after
from storage.models import OutboxMessage
from storage.outbox import OutboxRepository

log = logging.getLogger(__name__)

# What `last_error` says when the message's workspace has no installation (any more).
NOT_INSTALLED = "not_installed"

# Slack's own errors that may go away by waiting (docs.slack.dev, chat.postMessage and the
# common errors): rate limits, its own outages, a workspace in the middle of a migration.
# Any HTTP 429 or 5xx counts too. Every other `ok: false` error is about the request, the
# token or the channel, and waiting will not change it.
TRANSIENT = frozenset({"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
                       "request_timeout", "team_added_to_org", "org_login_required"})
# The permanent ones we know of, for the docs and the tests (anything not transient is permanent).
PERMANENT = frozenset({"channel_not_found", "not_in_channel", "is_archived", "channel_is_archived",
                       "account_inactive", "invalid_auth", "token_revoked", "not_authed", "missing_scope",
                       "invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "invalid_arguments",
                       "too_many_attachments", "restricted_action", "restricted_action_read_only_channel",
                       "no_permission", "ekm_access_denied", NOT_INSTALLED})
# The message itself is the problem: in a digest, it may be just one of its notices (or
# the digest's length), so each is then sent on its own.
MESSAGE_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "invalid_arguments",
                            "too_many_attachments", "invalid_attachments"})
# The channel itself is the problem: another channel would do.
UNREACHABLE = frozenset({"channel_not_found", "not_in_channel", "is_archived", "channel_is_archived",
                         "restricted_action_read_only_channel"})


class MessageFormat(Protocol):
    """How queued payloads become one Slack message (the Slack side's, handlers/slack_io.py):
    at most `batch_size` due messages of a channel go out as one."""

    batch_size: int

    def combine(self, payloads: list[dict[str, Any]]) -> dict[str, Any]: ...

    def rerouted(self, payload: dict[str, Any], channel: str, error: str) -> dict[str, Any]:
        """The payload sent to the default channel instead, saying where it was meant to go."""
        ...


class Outcome(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    REROUTED = "rerouted"
    DEAD = "dead"
    SPLIT = "split"  # the digest was refused for its content: try its notices one by one


def is_transient(error: str, status: int | None = None) -> bool:
    return error in TRANSIENT or (status is not None and (status == 429 or status >= 500))


def is_channel_notice(message: OutboxMessage) -> bool:
    """A notice for a channel, not a person: user ids (U…, W…) and DMs (D…) are people,
    and a message meant for one person is never sent to a channel instead."""
    return not message.channel.startswith(("U", "W", "D"))


class OutboxWorker:
    def __init__(self, repo: OutboxRepository, client_for: Callable[[str], Awaitable[AsyncWebClient]], *,
                 messages: MessageFormat, fallback_channel: str | None = None, pace_seconds: float = 1.0,
                 poll_seconds: float = 2.0, backoff: Backoff = SLACK_DELIVERY, clock: Clock | None = None) -> None:
        self._repo = repo
        self._messages = messages
        # The wall clock, not the app's test-movable one: retry times are compared in SQL with
        # the repository's (storage.models.utcnow), and must not jump when a test moves time.
        self._clock = clock or SystemClock()
        self._pace = dt.timedelta(seconds=pace_seconds)
        self._fallback = fallback_channel
        self._client_for = client_for
        self._poll = poll_seconds
        self._backoff = backoff
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """Deliver now rather than at the next poll (called after a payment is recorded)."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the pass under way (and deliver what is due now), then return. Cancelling
        mid-delivery could leave a message posted but not marked, to be posted again."""
        self._stopping = True
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            stopping = self._stopping
            try:
                await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the worker must outlive any one failure
                log.exception("outbox pass failed")
            if stopping:
                return
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=min(self._poll, max(self._pace.total_seconds(), 0.05)))
            except TimeoutError:
                pass
            self._wake.clear()

    async def deliver_due(self) -> int:
        """Deliver what is due now, pass after pass, until nothing is (paced messages of a
        busy channel wait for a later call)."""
        delivered = 0
        while batches := await self._repo.claim_due(batch=self._messages.batch_size):
            for batch in batches:
                delivered += await self._deliver_counted(batch)
        return delivered

    async def _deliver_counted(self, batch: list[OutboxMessage]) -> int:
        outcome = await self._deliver(batch)
        if outcome is Outcome.SPLIT:
            # One refused digest: each of its notices on its own, so that one bad notice
            # (or the digest's length) does not take the others with it.
            delivered = 0
            for index, each in enumerate(batch):
                if index:
                    await asyncio.sleep(self._pace.total_seconds())  # Slack's pace per channel
                delivered += await self._deliver_counted([each])
            return delivered
        return len(batch) if outcome is Outcome.DELIVERED else 0

    async def _deliver(self, batch: list[OutboxMessage]) -> Outcome:
        """Post one channel's due messages as one message; all of them succeed or wait."""
        message = batch[0]
        try:
            client = await self._client_for(message.team_id or "")
        except LookupError:
            # Uninstalled (or never installed): no token will come by waiting.
            return await self._give_up(batch, NOT_INSTALLED)
        except Exception as exc:  # noqa: BLE001 - e.g. the installations table unreachable
            return await self._unexpected(batch, exc)
        payload = self._messages.combine([m.payload for m in batch])
        try:
            await client.chat_postMessage(channel=message.channel, text=payload.get("text", ""),
                                          blocks=payload.get("blocks"), unfurl_links=False, unfurl_media=False)
        except SlackApiError as exc:
            status = exc.response.status_code
            error = str(exc.response.get("error") or status)
            if status == 429:
                headers = exc.response.headers
                # At least a second, whatever the header says (or when it says nothing).
                wait = max(1.0, retry_after(headers.get("Retry-After") or headers.get("retry-after"),
                                            cap=3600.0) or 1.0)
                return await self._retry(batch, error, at=self._clock.now() + dt.timedelta(seconds=wait))
            if is_transient(error, status):
                return await self._retry(batch, error)
            if error in MESSAGE_ERRORS and len(batch) > 1:
                return Outcome.SPLIT
            if error in UNREACHABLE and is_channel_notice(message) and self._fallback \
                    and message.channel != self._fallback:
                return await self._reroute(batch, error)
            return await self._give_up(batch, error)
        except (OSError, asyncio.TimeoutError, aiohttp.ClientError) as exc:
            return await self._retry(batch, type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - one message's bug must not stop the others
            return await self._unexpected(batch, exc)
        await self._repo.delivered(batch, pace=self._pace)
        return Outcome.DELIVERED

    async def _retry(self, batch: list[OutboxMessage], error: str, *, at: dt.datetime | None = None) -> Outcome:
        attempts = max(m.attempts for m in batch)
        if self._backoff.exhausted(attempts):
            return await self._give_up(batch, f"{error} (after {attempts} tries)")
        at = at or self._clock.now() + self._backoff.delay(attempts)
        log.info("outbox messages %s to %s: %s, try %d; next at %s", _ids(batch), batch[0].channel, error,
                 attempts, f"{at:%H:%M:%S}")
        for each in batch:
            await self._repo.retry_later(each.id, at=at, error=error)
        return Outcome.RETRY

    async def _unexpected(self, batch: list[OutboxMessage], exc: Exception) -> Outcome:
        error = f"unexpected: {type(exc).__name__}"
        if batch[0].attempts <= 1:
            # The traceback once, on the first try; later tries say the error in one line.
            log.warning("outbox messages %s to %s failed unexpectedly; retrying later", _ids(batch),
                        batch[0].channel, exc_info=exc)
        return await self._retry(batch, error)

    async def _reroute(self, batch: list[OutboxMessage], error: str) -> Outcome:
        # A routed channel we may not post in: never lose the notice, send it to the
        # default channel with a word on why.
        message = batch[0]
        assert self._fallback is not None
        log.warning("outbox messages %s: %s in %s; sending to the default channel", _ids(batch), error,
                    message.channel)
        for each in batch:
            await self._repo.reroute(each.id, self._fallback,
                                     self._messages.rerouted(each.payload, message.channel, error))
        return Outcome.REROUTED

    async def _give_up(self, batch: list[OutboxMessage], error: str) -> Outcome:
        message = batch[0]
        # One line for the operator, naming what to run once the cause is fixed.
        log.error("outbox messages %s to %s in workspace %s not delivered (%s): kept as failed; "
                  "`invoicebot outbox retry %s` sends again", _ids(batch), message.channel,
                  message.team_id or "-", error, " ".join(str(m.id) for m in batch))
        for each in batch:
            await self._repo.dead_letter(each.id, error=error)
        return Outcome.DEAD


def _ids(batch: list[OutboxMessage]) -> str:
    return ",".join(str(m.id) for m in batch)
