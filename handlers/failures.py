"""The one Bolt error handler (`@app.error`): a listener that raises gets words, never a
500 (Slack would show the person "didn't respond" or an error), and a log line that tells a
refusal from a failing dependency (Slack's API, a response_url that can't be reached) and
from a bug in our code.

Before the ack, the answer itself carries the words: a command's ephemeral text; a modal
submission's error under the field (a `FieldProblem`) or the modal replaced by the words of
the error table (handlers/errors.py). After the ack, Slack has had its answer: the work
after the ack (handlers/context.py `after_ack`) has shown its words already, and what still
reaches here is logged.
"""

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

from blocks.pay_modal import block_for, message_view
from bot.errors import FieldProblem
from handlers.errors import explain, is_known

log = logging.getLogger("invoicebot.handlers")

# A network or a Slack answer we could not use: the dependency's fault, said in one line.
_OUTSIDE = (SlackApiError, SlackClientError, aiohttp.ClientError, httpx.HTTPError, asyncio.TimeoutError)

SOMETHING_WENT_WRONG = "Something went wrong on my side, so I couldn't answer that. Try again in a minute."


def answer_for(kind: str, error: Exception) -> Any:
    """The body of the 200 that acknowledges a request whose listener raised before its ack."""
    if kind == "command":
        return {"response_type": "ephemeral", "text": SOMETHING_WENT_WRONG}
    if kind == "view_submission":
        if isinstance(error, FieldProblem):
            return {"response_action": "errors", "errors": {block_for(error.field): error.message}}
        explanation = explain(error)
        return {"response_action": "update", "view": message_view(explanation.title, explanation.text)}
    return ""


def register(app: AsyncApp) -> None:
    @app.error
    async def listener_failed(error: Exception, request: AsyncBoltRequest,
                              response: BoltResponse | None) -> BoltResponse | None:
        kind = str(request.body.get("type") or ("command" if "command" in request.body else "request"))[:40]
        if isinstance(error, SlackApiError):
            log.warning("a %s listener stopped: Slack answered %s", kind, error.response.get("error"))
        elif isinstance(error, _OUTSIDE):
            log.warning("a %s listener stopped: %s", kind, type(error).__name__)
        elif is_known(error):
            log.info("a %s listener refused: %s", kind, type(error).__name__)
        else:
            log.error("a %s listener failed", kind, exc_info=error)  # a bug: keep its (masked) traceback
        if response is None:  # already acknowledged: Slack has had its answer
            return None
        # Not acknowledged yet: acknowledge now, with words where Slack can show them.
        return BoltResponse(status=200, body=answer_for(kind, error))
