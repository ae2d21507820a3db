"""The Slack Web API client the bot uses, and the bot scopes it asks for (manifest.yml's,
checked by tests/unit/test_manifest.py). `invoicebot check` and the app build from here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler, AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

if TYPE_CHECKING:
    from bot.settings import Settings

BOT_SCOPES = ("commands", "chat:write", "chat:write.public", "users:read", "users:read.email", "channels:read",
              "groups:read")


def slack_client(settings: Settings, token: str | None, session: aiohttp.ClientSession | None = None) -> AsyncWebClient:
    """`session`: the process's one pooled aiohttp session (handlers/app.py opens it and
    closes it at shutdown), shared by every workspace's client; without one, slack_sdk
    opens and closes a session (and a TCP connection) for every call."""
    # Retries of 429 (after Retry-After) and connection errors happen only in calls made
    # after Slack has had its answer: every listener acks before calling the Web API.
    return AsyncWebClient(token=token, base_url=settings.slack_api_base, timeout=10, session=session, retry_handlers=[
        AsyncConnectionErrorRetryHandler(max_retry_count=1),
        AsyncRateLimitErrorRetryHandler(max_retry_count=1),
    ])
