"""Delivers queued messages: once each, in order, at the chat service's pace.

Every delivery ends: delivered, or given up (a dead letter an operator can list and send
again with `invoicebot outbox`). What the chat service said is sorted by the sender (the
port below; Slack's is handlers/slack_io.py: SlackSender): refusals that waiting will not
change are given up after one try (a refused digest first split into its notices, a
channel notice first sent to the default channel); the rest are retried on the
`bot.retry.SLACK_DELIVERY` curve, up to its last try, or after the wait the service asked
for. Whatever goes wrong with one message (an uninstalled workspace, an unexpected
exception) stays with that message: the pass goes on with the others.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from bot.clock import Clock, SystemClock
from bot.retry import SLACK_DELIVERY, Backoff
from storage.models import OutboxMessage
from storage.outbox import OutboxRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivered:
    """Sent; `where`: Slack's (channel, ts) of a message sent alone (`alone` in its payload),
    kept so that a later message can update it in place (`update_of`)."""

    where: tuple[str, str] | None = None


@dataclass(frozen=True)
class RetryLater:
    """Waiting may help (rate limits, outages, the network): `after` seconds if the service
    said how long, else the backoff curve's."""

    error: str
    after: float | None = None


class Refused(Enum):
    MESSAGE = "message"  # the message itself (a digest may be just one of its notices)
    CHANNEL = "channel"  # the channel: another channel would do
    OTHER = "other"  # the token, the workspace, a permission: nothing the worker can change


@dataclass(frozen=True)
class Undeliverable:
    error: str  # what `last_error` and the operator's listing say
    refused: Refused = Refused.OTHER


Sent = Delivered | RetryLater | Undeliverable


class MessageSender(Protocol):
    """Posts queued payloads to a channel or a person (the Slack side's, handlers/slack_io.py):
    at most `batch_size` due messages of a channel go out as one. Anything `send` raises
    is unexpected: retried on the curve, its traceback logged once."""

    batch_size: int

    async def send(self, team_id: str, channel: str, payloads: list[dict[str, Any]]) -> Sent: ...

    def rerouted(self, payload: dict[str, Any], channel: str, error: str) -> dict[str, Any]:
        """The payload sent to the default channel instead, saying where it was meant to go."""
        ...

    def is_person(self, channel: str) -> bool:
        """A message meant for one person is never sent to a channel instead."""
        ...


class Outcome(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    REROUTED = "rerouted"
    DEAD = "dead"
    SPLIT = "split"  # the digest was refused for its content: try its notices one by one


class OutboxWorker:
    def __init__(self, repo: OutboxRepository, sender: MessageSender, *, fallback_channel: str | None = None,
                 pace_seconds: float = 1.0, poll_seconds: float = 2.0, backoff: Backoff = SLACK_DELIVERY,
                 clock: Clock | None = None) -> None:
        self._repo = repo
        self._sender = sender
        # The wall clock, not the app's test-movable one: retry times are compared in SQL with
        # the repository's (storage.models.utcnow), and must not jump when a test moves time.
        self._clock = clock or SystemClock()
        self._pace = dt.timedelta(seconds=pace_seconds)
        self._fallback = fallback_channel
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
        while batches := await self._repo.claim_due(batch=self._sender.batch_size):
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
                    await asyncio.sleep(self._pace.total_seconds())  # the chat service's pace per channel
                delivered += await self._deliver_counted([each])
            return delivered
        return len(batch) if outcome is Outcome.DELIVERED else 0

    async def _deliver(self, batch: list[OutboxMessage]) -> Outcome:
        """Post one channel's due messages as one message; all of them succeed or wait."""
        message = batch[0]
        if len(batch) > 1 and any(m.payload.get("alone") or m.payload.get("update_of") for m in batch):
            # A message updated in place later (approval requests), or an update itself, is
            # never part of a digest: each goes out on its own, in the channel's order.
            return Outcome.SPLIT
        try:
            payloads = [m.payload for m in batch]
            if payloads[0].get("update_of"):
                # An update in place of an earlier message (approval requests): Slack's channel
                # and ts of that message, kept when it was delivered (same queue, so sent first).
                where = await self._repo.posted(str(payloads[0]["update_of"]))
                if where is None:
                    return await self._retry(batch, "original_not_posted")
                payloads = [{**payloads[0], "update_at": list(where)}]
            sent = await self._sender.send(message.team_id or "", message.channel, payloads)
        except Exception as exc:  # noqa: BLE001 - one message's bug must not stop the others
            return await self._unexpected(batch, exc)
        if isinstance(sent, Delivered):
            await self._repo.delivered(batch, pace=self._pace, posted=sent.where)
            return Outcome.DELIVERED
        if isinstance(sent, RetryLater):
            at = None if sent.after is None else self._clock.now() + dt.timedelta(seconds=sent.after)
            return await self._retry(batch, sent.error, at=at)
        if sent.refused is Refused.MESSAGE and len(batch) > 1:
            return Outcome.SPLIT
        if sent.refused is Refused.CHANNEL and self._fallback and message.channel != self._fallback \
                and not self._sender.is_person(message.channel):
            return await self._reroute(batch, sent.error)
        return await self._give_up(batch, sent.error)

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
                                     self._sender.rerouted(each.payload, message.channel, error))
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
