"""The one guard in front of everything: no request, however broken, reaches Bolt (or any
route) before it has been bounded, and no Slack request is parsed before its signature is
known to be Slack's.

Order, for every HTTP request:
1. the body is read whole, at most `max_body` bytes, declared or streamed (Slack signs the
   raw body, so it must be read before anything else; never an unbounded one): 413;
2. for Slack's Request URL (POST): the two signature headers parsed strictly, the
   timestamp within Slack's 5 minutes either way, and the signature checked with slack_sdk's
   `SignatureVerifier` on the raw bytes: 400 (malformed) or 401 (not Slack's);
3. only then the body is decoded and parsed, the way Bolt will parse it, into a JSON
   object: 400 otherwise; and a `SlackPayloadCheck` (handlers/requests.py) decides whether
   the signed payload is one the listeners can take. A malformed one is answered here with
   a 200 and what Slack can show (Slack has no use for a 4xx: it shows the person nothing);
4. the request goes on, with its body replayed, to the app.

Every refusal is one INFO line naming the reason, never a header value or the body, and a
short JSON error.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from slack_bolt.request.internals import parse_body
from slack_sdk.signature import SignatureVerifier
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import logs

log = logging.getLogger(__name__)

# Slack's largest payloads (a modal's view with 100 blocks) stay well below this.
MAX_BODY_BYTES = 1_000_000
# Slack's own replay window (https://docs.slack.dev/authentication/verifying-requests-from-slack/),
# applied both ways: a timestamp from the future is as suspect as a stale one.
SLACK_TOLERANCE_SECONDS = 300
SLACK_PATHS = frozenset({"/slack/events"})

_TIMESTAMP = re.compile(rb"[0-9]{1,12}")
_SIGNATURE = re.compile(rb"v0=[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class EdgeAnswer:
    """What the edge answers in place of the app: a status and a JSON body (None: empty)."""

    status: int
    body: dict[str, Any] | None
    reason: str  # for the log line: short, no payload content


# Given a signed, parsed payload: None to let it through, or the answer to give instead.
SlackPayloadCheck = Callable[[dict[str, Any]], EdgeAnswer | None]


class Refused(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


class SlackEdge:
    """ASGI middleware around the whole app (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, signing_secret: str, check_payload: SlackPayloadCheck,
                 max_body: int = MAX_BODY_BYTES, slack_paths: Iterable[str] = SLACK_PATHS,
                 clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.verifier = SignatureVerifier(signing_secret)
        self.check_payload = check_payload
        self.max_body = max_body
        self.slack_paths = frozenset(slack_paths)
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = logs.request_id.set(uuid.uuid4().hex[:12])
        try:
            await self._http(scope, receive, send)
        finally:
            logs.request_id.reset(token)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or [])
        try:
            body = await self._read_body(headers, receive)
            if scope.get("method") == "POST" and scope.get("path") in self.slack_paths:
                answer = self._check_slack(headers, body)
                if answer is not None:
                    log.info("slack request answered at the edge: %s", answer.reason)
                    await _json(answer.status, answer.body)(scope, receive, send)
                    return
        except Refused as refused:
            log.info("request refused at the edge: %s %s: %s", scope.get("method"), _route(scope), refused.error)
            await _json(refused.status, {"error": refused.error})(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, headers: list[tuple[bytes, bytes]], receive: Receive) -> bytes:
        declared = [value for name, value in headers if name == b"content-length"]
        if declared:
            if len(declared) > 1 or not declared[0].isdigit():
                raise Refused(400, "malformed Content-Length")
            if int(declared[0]) > self.max_body:
                raise Refused(413, "request body too large")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Refused(400, "client went away")  # nobody is listening for the answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                # Chunked, without a Content-Length: refused as soon as it is too big, unread.
                raise Refused(413, "request body too large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _check_slack(self, headers: list[tuple[bytes, bytes]], body: bytes) -> EdgeAnswer | None:
        timestamp = _one(headers, b"x-slack-request-timestamp")
        signature = _one(headers, b"x-slack-signature")
        if timestamp is None or signature is None:
            raise Refused(401, "missing Slack signature")
        if not _TIMESTAMP.fullmatch(timestamp):
            raise Refused(400, "malformed X-Slack-Request-Timestamp")
        if not _SIGNATURE.fullmatch(signature):
            raise Refused(400, "malformed X-Slack-Signature")
        if abs(self.clock() - int(timestamp)) > SLACK_TOLERANCE_SECONDS:
            raise Refused(401, "stale Slack request")
        try:
            # Slack sends UTF-8 only; the verifier decodes the bytes the same way (strictly).
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(400, "body is not UTF-8") from None
        # Both headers are ASCII now (checked above).
        if not self.verifier.is_valid(body=text, timestamp=timestamp.decode(), signature=signature.decode()):
            raise Refused(401, "invalid Slack signature")

        # Signed by Slack: now, and only now, the body is parsed, exactly as Bolt will parse it.
        try:
            payload = parse_body(text, _content_type(headers))
        except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; [[[[…]]]] recurses
            raise Refused(400, "unreadable Slack payload") from None
        if not isinstance(payload, dict):
            raise Refused(400, "unreadable Slack payload")
        return self.check_payload(payload)


def _one(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    values = [value for key, value in headers if key == name]
    if len(values) > 1:
        raise Refused(400, f"repeated {name.decode()}")
    return values[0] if values else None


def _content_type(headers: list[tuple[bytes, bytes]]) -> str | None:
    value = next((v for k, v in headers if k == b"content-type"), None)
    if value is None:
        return None
    # Bolt compares the bare media type; latin-1 never fails and an odd value is just "not JSON".
    return value.decode("latin-1").split(";")[0].strip()


def _route(scope: Scope) -> str:
    # The path only (never the query string: OAuth codes and states travel there).
    path = str(scope.get("path") or "")
    return path if len(path) <= 100 else path[:100] + "…"


def _json(status: int, body: dict[str, Any] | None) -> Response:
    if body is None:
        return Response(status_code=status)
    return JSONResponse(body, status_code=status)


def _replay(body: bytes, receive: Receive) -> Callable[[], Awaitable[Message]]:
    """The app's receive: the body already read, once, then the client's own messages
    (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
