"""Bolt's last resort, when a listener raises anyway: never a 500 to Slack (Slack would
show the person "didn't respond" or an error), and a log line that tells a failing
dependency (Slack's API, a response_url that can't be reached) from a bug in our code."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import httpx
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError, SlackClientError

log = logging.getLogger("invoicebot.handlers")

# A network or a Slack answer we could not use: the dependency's fault, said in one line.
_OUTSIDE = (SlackApiError, SlackClientError, aiohttp.ClientError, httpx.HTTPError, asyncio.TimeoutError)

SOMETHING_WENT_WRONG = "Something went wrong on my side, so I couldn't answer that. Try again in a minute."


def register(app: AsyncApp) -> None:
    @app.error
    async def listener_failed(error: Exception, request: AsyncBoltRequest,
                              response: BoltResponse | None) -> BoltResponse | None:
        kind = str(request.body.get("type") or ("command" if "command" in request.body else "request"))[:40]
        if isinstance(error, SlackApiError):
            log.warning("a %s listener stopped: Slack answered %s", kind, error.response.get("error"))
        elif isinstance(error, _OUTSIDE):
            log.warning("a %s listener stopped: %s", kind, type(error).__name__)
        else:
            log.error("a %s listener failed", kind, exc_info=error)  # a bug: keep its (masked) traceback
        if response is None:  # already acknowledged: Slack has had its answer
            return None
        # Not acknowledged yet: acknowledge now, with words where Slack can show them.
        body: Any = {"response_type": "ephemeral", "text": SOMETHING_WENT_WRONG} if kind == "command" else ""
        return BoltResponse(status=200, body=body)
