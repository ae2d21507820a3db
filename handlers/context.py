"""What every listener shares: the viewer of the request (resolved once, by a middleware)
and the one way to do work after the ack.

**The viewer.** A Bolt middleware puts a `ViewerLookup` in `context["viewer"]` for every
request that names a person. It looks the person up on first use and keeps the answer for
the rest of the request, so a listener and the functions it calls never ask the directory
and the billing API twice. The lookup is lazy on purpose: most listeners must ack (or open
a modal) within Slack's 3 seconds before any slow call may start.

**Work after the ack.** Slack has had its answer (`await ack()` came first); the rest of
the listener runs on. `after_ack(work, refused=...)` runs that work and turns any failure
into words through the one error table (handlers/errors.py), handed to `refused` to show
where this surface can show it (a modal, the response_url, a DM). A failure of `refused`
itself (Slack's API down) reaches the Bolt error handler (handlers/failures.py), which logs
it in one line. Payment work that must finish even when the server stops goes through
`Background.track` first (handlers/views.py).

The one wait before a `views.update`: a modal submission's own answer (`ack(response_action=
"update")`) is applied by Slack when it arrives, so a `views.update` that comes sooner would be
overwritten by it. Only that listener waits (`handlers/views.py: SETTLE_SECONDS`, 1 s after
its answer); every other update follows a `views.open` whose answer Slack has already applied.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import ClientSession
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.context.respond.internals import _build_message
from slack_sdk.webhook import WebhookResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.admission import LoopGate
from bot.identity import IdentityService, Viewer
from handlers.errors import Explanation, explanation_for, refusal_reason

T = TypeVar("T")
R = TypeVar("R")

VIEWER = "viewer"


class ViewerLookup:
    """The person of one request and their rights, looked up at most once (twice when a
    step that moves money or changes settings asks for a `fresh` look past the caches)."""

    def __init__(self, identity: IdentityService, team_id: str, user_id: str) -> None:
        self._identity = identity
        self.team_id = team_id
        self.user_id = user_id
        self._cached: Viewer | None = None
        self._fresh: Viewer | None = None

    async def __call__(self, *, fresh: bool = False) -> Viewer:
        if self._fresh is not None:
            return self._fresh
        if fresh:
            self._fresh = self._cached = await self._identity.viewer(self.team_id, self.user_id, fresh=True)
            return self._fresh
        if self._cached is None:
            self._cached = await self._identity.viewer(self.team_id, self.user_id)
        return self._cached


def viewer_of(context: dict[str, Any] | AsyncBoltContext) -> ViewerLookup:
    return context[VIEWER]  # type: ignore[no-any-return]


def install_viewer(app: AsyncApp, identity: IdentityService) -> None:
    @app.middleware
    async def resolve_viewer(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:  # noqa: A002
        if context.user_id:
            context[VIEWER] = ViewerLookup(identity, context.team_id or "", context.user_id)
        await next()


class PooledRespond(AsyncRespond):
    """Bolt's `respond()` through the process's pooled aiohttp session (the Web API client's,
    handlers/app.py). Bolt's own builds an `AsyncWebhookClient` without a session for every
    call, so slack_sdk opens a new session and TCP connection to post each message to a
    `response_url` (docs/performance.md, the `/invoices` flame graph). Same arguments."""

    def __init__(self, *, response_url: str | None, session: ClientSession | None, proxy: str | None = None,
                 ssl: Any = None) -> None:
        super().__init__(response_url=response_url, proxy=proxy, ssl=ssl)
        self.session = session

    async def __call__(self, text: str | dict[str, Any] = "", blocks: Any = None, attachments: Any = None,
                       response_type: str | None = None, replace_original: bool | None = None,
                       delete_original: bool | None = None, unfurl_links: bool | None = None,
                       unfurl_media: bool | None = None, thread_ts: str | None = None,
                       metadata: dict[str, Any] | None = None) -> WebhookResponse:
        if self.response_url is None:
            raise ValueError("respond is unsupported here as there is no response_url")
        client = AsyncWebhookClient(url=self.response_url, proxy=self.proxy, ssl=self.ssl, session=self.session)
        if isinstance(text, dict):  # the whole message, as Bolt allows
            return await client.send_dict(text)
        return await client.send_dict(_build_message(
            text=text, blocks=blocks, attachments=attachments, response_type=response_type,
            replace_original=replace_original, delete_original=delete_original, unfurl_links=unfurl_links,
            unfurl_media=unfurl_media, thread_ts=thread_ts, metadata=metadata))


def install_pooled_respond(app: AsyncApp) -> None:
    """Every listener's `respond` posts through the pooled session of the request's client."""

    @app.middleware
    async def pooled_respond(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:  # noqa: A002
        client = context.client
        session = getattr(client, "session", None)
        if context.response_url and session is not None:
            context["respond"] = PooledRespond(response_url=context.response_url, session=session,
                                               proxy=client.proxy, ssl=client.ssl)  # type: ignore[union-attr]
        await next()


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why work after the ack did not end well: the words for the person, the reason for
    the audit trail, and the error itself."""

    explanation: Explanation
    reason: str
    error: BaseException

    @property
    def title(self) -> str:
        return self.explanation.title

    @property
    def text(self) -> str:
        return self.explanation.text


async def after_ack(work: Awaitable[T], *, refused: Callable[[Refusal], Awaitable[R] | R]) -> T | R:
    """Run the work that follows the ack; any failure becomes words, never silence."""
    try:
        return await work
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure gets words; the table logs it
        shown = refused(Refusal(explanation_for(exc), refusal_reason(exc), exc))
        if asyncio.iscoroutine(shown) or isinstance(shown, asyncio.Future):
            return await shown  # type: ignore[no-any-return]
        return shown  # type: ignore[return-value]


class Background:
    """Work that must finish even if the server is asked to stop (a payment in flight):
    the composition root waits for it before letting go of the database. It starts when
    the gate (bot/admission.py) lets it in: at once while the event loop keeps up, later
    when the loop is busy, so that the acks of new requests are never queued behind it."""

    def __init__(self, gate: LoopGate | None = None) -> None:
        self._work: set[asyncio.Task[Any]] = set()
        self.gate = gate or LoopGate()

    def track(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(self.gate.run(work))
        self._work.add(task)
        task.add_done_callback(self._work.discard)
        return task

    async def drain(self, timeout: float) -> int:
        pending = set(self._work)
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        await self.gate.aclose()
        return len(pending)
