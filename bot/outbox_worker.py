"""Delivers queued Slack messages: once each, in order, honouring Slack's Retry-After."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from blocks.notifications import DIGEST_SIZE, digest
from storage.models import OutboxMessage
from storage.outbox import OutboxRepository

log = logging.getLogger(__name__)

def retry_delay(attempts: int) -> dt.timedelta:
    """1 s, 2 s, 4 s, ... up to 5 minutes: a Slack hiccup is usually over in seconds."""
    return dt.timedelta(seconds=min(300, 2 ** max(0, attempts - 1)))


# The channel itself is the problem: another channel would do.
_UNREACHABLE = {"channel_not_found", "not_in_channel", "is_archived"}
# Errors that will not go away by waiting a few seconds.
_PERMANENT = {"channel_not_found", "not_in_channel", "is_archived", "invalid_blocks", "invalid_auth",
              "account_inactive", "token_revoked", "msg_too_long", "no_text", "invalid_arguments"}


class OutboxWorker:
    def __init__(self, repo: OutboxRepository, client_for: Callable[[str], Awaitable[AsyncWebClient]], *,
                 fallback_channel: str | None = None, pace_seconds: float = 1.0, poll_seconds: float = 2.0) -> None:
        self._repo = repo
        self._pace = dt.timedelta(seconds=pace_seconds)
        self._fallback = fallback_channel
        self._client_for = client_for
        self._poll = poll_seconds
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
        while batches := await self._repo.claim_due(batch=DIGEST_SIZE):
            for batch in batches:
                if await self._deliver(batch):
                    delivered += len(batch)
        return delivered

    async def _deliver(self, batch: list[OutboxMessage]) -> bool:
        """Post one channel's due messages as one message; all of them succeed or wait."""
        message = batch[0]
        payload = digest([m.payload for m in batch])
        try:
            client = await self._client_for(message.team_id or "")
            await client.chat_postMessage(channel=message.channel, text=payload.get("text", ""),
                                          blocks=payload.get("blocks"), unfurl_links=False, unfurl_media=False)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or exc.response.status_code)
            if exc.response.status_code == 429:
                wait = float(exc.response.headers.get("Retry-After", "1") or 1)
                at = _now() + dt.timedelta(seconds=max(wait, 1.0))
            elif error in _UNREACHABLE and self._fallback and message.channel != self._fallback:
                # A routed channel we may not post in: never lose the notice, send it to the
                # default channel with a word on why.
                log.warning("outbox message %s: %s in %s; sending to the default channel", message.id, error,
                            message.channel)
                note = (f"_(Meant for <#{message.channel}>, where I can't post ({error}): invite me there, "
                        "or change the route with `/invoices notify`.)_")
                for each in batch:
                    await self._repo.reroute(each.id, self._fallback, {
                        **each.payload, "text": f"{each.payload.get('text', '')}\n{note}",
                        "blocks": [*(each.payload.get("blocks") or []),
                                   {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}]})
                return False
            elif error in _PERMANENT:
                log.error("outbox message %s to %s failed for good: %s", message.id, message.channel, error)
                at = _now() + dt.timedelta(hours=1)
            else:
                at = _now() + retry_delay(message.attempts)
            for each in batch:
                await self._repo.retry_later(each.id, at=at, error=error)
            return False
        except (OSError, asyncio.TimeoutError) as exc:
            for each in batch:
                await self._repo.retry_later(each.id, at=_now() + retry_delay(message.attempts),
                                             error=type(exc).__name__)
            return False
        await self._repo.delivered(batch, pace=self._pace)
        return True


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
