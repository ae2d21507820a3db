"""aiohttp middlewares around localstripe: request log, faults, errors, idempotency.

Order in `create_app()` (outermost first) and why:

1. `request_log_middleware` -- records every API request (method, path, idempotency key,
   status, replayed?, delivered?, fault) for `GET /_requests`; adds `Request-Id`.
2. `edge_fault_middleware` -- faults that happen "on the network", outside Stripe's
   idempotency layer: `error500`/`error503` (and `error400`, Stripe refusing the request)
   answer before anything is processed (nothing
   is stored under the idempotency key, so a retry really runs), `reset` closes the
   connection before processing, `lost_response` processes the request and then drops the
   answer (the result *is* stored under the key, so a retry with the key is replayed).
3. `error_middleware` -- localstripe's `UserError`s and unexpected exceptions become
   Stripe-shaped JSON errors (402s get `type: card_error`, 404s `code: resource_missing`).
4. the authentication middleware (localstripe's, with our public pages exempted).
5. `idempotency_middleware` -- Stripe's idempotent requests for POSTs with an
   `Idempotency-Key` header (https://docs.stripe.com/api/idempotent_requests).
6. `delay_fault_middleware` -- `delay` sleeps *inside* the idempotency window, like a slow
   Stripe: the key is "in progress" meanwhile, so a client that timed out and retried
   gets 409 until the first request finishes, then the replay.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import re
import secrets
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from localstripe import server as ls_server
from localstripe.errors import UserError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Paths of our control endpoints: never logged, faulted or idempotency-checked.
CONTROL_PREFIXES: tuple[str, ...] = ("/_faults", "/_requests", "/_stats", "/_config/")

FAULT_MODES: tuple[str, ...] = ("error500", "error503", "error400", "delay", "reset", "lost_response")
EDGE_FAULT_MODES = frozenset({"error500", "error503", "error400", "reset", "lost_response"})
DELAY_FAULT_MODES = frozenset({"delay"})

IDEMPOTENCY_TTL_SECONDS = 24 * 3600.0
MAX_IDEMPOTENCY_KEY_LENGTH = 255

_RECORD = "sandbox_stripe.request_record"


def _is_control(request: web.Request) -> bool:
    return request.path.startswith(CONTROL_PREFIXES)


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(8)


# -- errors -------------------------------------------------------------------------------
def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON like localstripe's (indented, sorted keys)."""
    return web.json_response(
        data, status=status, dumps=lambda value: json.dumps(value, indent=2, sort_keys=True) + "\n"
    )


def stripe_error(status: int, type_: str, message: str, **fields: Any) -> web.Response:
    """A JSON error in Stripe's shape: {"error": {"type", "message", ...}}."""
    return json_response({"error": {"type": type_, "message": message, **fields}}, status=status)


def user_error_response(exc: UserError) -> web.Response:
    """localstripe's UserError as Stripe would phrase it."""
    body = json.loads(json.dumps(exc.body, default=str))
    error = body.setdefault("error", {})
    if exc.code == 402:
        error["type"] = "card_error"
        code = error.get("code")
        if code == "card_declined":
            error.setdefault("decline_code", "generic_decline")
        elif code in ("expired_card", "insufficient_funds"):
            error.setdefault("decline_code", code)
    elif exc.code == 404 and error.get("message") == "Not Found":
        error.setdefault("code", "resource_missing")
    if error.get("code"):
        error.setdefault(
            "doc_url", "https://docs.stripe.com/error-codes/" + str(error["code"]).replace("_", "-")
        )
    return json_response(body, status=int(exc.code))


def unexpected_error_response(exc: BaseException) -> web.Response:
    return stripe_error(
        500, "api_error", f"An unexpected error occurred in the Stripe sandbox ({type(exc).__name__}: {exc})."
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except UserError as exc:
        return user_error_response(exc)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        if request.path.startswith("/v1/"):
            return stripe_error(
                404,
                "invalid_request_error",
                f"Unrecognized request URL ({request.method}: {request.path}). "
                "The Stripe sandbox (localstripe) does not implement this endpoint.",
            )
        raise
    except web.HTTPException:
        raise
    except Exception as exc:  # a localstripe bug: answer like Stripe's 500s
        log.exception("unhandled error in %s %s", request.method, request.path)
        return unexpected_error_response(exc)


# -- request log --------------------------------------------------------------------------
@dataclass
class RequestRecord:
    id: str
    time: float
    method: str
    path: str
    query: str
    idempotency_key: str | None
    status: int | None = None  # what the server produced (None: nothing, e.g. `reset`)
    delivered: bool = True  # False when a fault kept the answer from the client
    replayed: bool = False  # answered from the idempotency store
    fault: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "idempotency_key": self.idempotency_key,
            "status": self.status,
            "delivered": self.delivered,
            "replayed": self.replayed,
            "fault": self.fault,
        }


class RequestLog:
    """The most recent API requests (bounded), for `GET /_requests`."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self._records: collections.deque[RequestRecord] = collections.deque(maxlen=maxlen)

    def start(self, request: web.Request) -> RequestRecord:
        record = RequestRecord(
            id=_new_id("req_"),
            time=time.time(),
            method=request.method,
            path=request.path,
            query=request.query_string,
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
        self._records.append(record)
        return record

    def records(
        self, *, method: str | None = None, path_regex: str | None = None, idempotency_key: str | None = None
    ) -> list[RequestRecord]:
        pattern = re.compile(path_regex) if path_regex else None
        return [
            r
            for r in self._records
            if (method is None or r.method == method.upper())
            and (pattern is None or pattern.search(r.path))
            and (idempotency_key is None or r.idempotency_key == idempotency_key)
        ]

    def clear(self) -> None:
        self._records.clear()

    def __len__(self) -> int:
        return len(self._records)


REQUEST_LOG = web.AppKey("sandbox_stripe.request_log", RequestLog)


def _record(request: web.Request) -> RequestRecord | None:
    record = request.get(_RECORD)
    return record if isinstance(record, RequestRecord) else None


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _is_control(request):
        return await handler(request)
    record = request.app[REQUEST_LOG].start(request)
    request[_RECORD] = record
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if record.delivered:
            record.status = exc.status
        exc.headers["Request-Id"] = record.id
        raise
    if record.delivered:
        record.status = response.status
    if not response.prepared:
        response.headers.setdefault("Request-Id", record.id)
    return response


# -- faults -------------------------------------------------------------------------------
@dataclass
class FaultRule:
    id: str
    method: str | None  # None: any method
    path_regex: re.Pattern[str]
    mode: str
    remaining: int
    delay_seconds: float
    lost_as: str  # lost_response only: "reset" (drop the connection) or "error500"

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and self.path_regex.search(path) is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "path_regex": self.path_regex.pattern,
            "mode": self.mode,
            "count": self.remaining,
            "delay_seconds": self.delay_seconds,
            "lost_as": self.lost_as,
        }


class FaultInjector:
    """Rules for the next N matching requests; see `POST /_faults`."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []

    def add(self, spec: Any) -> FaultRule:
        """Add a rule from its JSON form; ValueError names what is wrong."""
        if not isinstance(spec, dict):
            raise ValueError("body must be a JSON object")
        unknown = set(spec) - {"method", "path_regex", "mode", "count", "delay_seconds", "lost_as"}
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
        mode = spec.get("mode")
        if mode not in FAULT_MODES:
            raise ValueError(f"mode must be one of {', '.join(FAULT_MODES)}")
        method = spec.get("method")
        if method is not None and (not isinstance(method, str) or not method):
            raise ValueError("method must be an HTTP method (or omitted for any)")
        try:
            pattern = re.compile(str(spec.get("path_regex", ".*")))
        except re.error as exc:
            raise ValueError(f"path_regex: {exc}") from None
        count = spec.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError("count must be a positive integer")
        delay = spec.get("delay_seconds", 5)
        if not isinstance(delay, int | float) or isinstance(delay, bool) or not 0 <= delay <= 600:
            raise ValueError("delay_seconds must be a number between 0 and 600")
        lost_as = spec.get("lost_as", "reset")
        if lost_as not in ("reset", "error500"):
            raise ValueError("lost_as must be reset or error500")
        rule = FaultRule(
            id=_new_id("flt_"),
            method=None if method in (None, "*") else method.upper(),
            path_regex=pattern,
            mode=mode,
            remaining=count,
            delay_seconds=float(delay),
            lost_as=lost_as,
        )
        self._rules.append(rule)
        return rule

    def take(self, method: str, path: str, modes: Iterable[str]) -> FaultRule | None:
        """Consume one use of the first matching rule whose mode is in `modes`."""
        wanted = frozenset(modes)
        for rule in self._rules:
            if rule.mode in wanted and rule.matches(method, path):
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._rules.remove(rule)
                return rule
        return None

    def rules(self) -> list[FaultRule]:
        return list(self._rules)

    def clear(self) -> int:
        count = len(self._rules)
        self._rules.clear()
        return count


FAULTS = web.AppKey("sandbox_stripe.faults", FaultInjector)


def drop_connection(request: web.Request) -> None:
    """Close the client's connection with a TCP RST and no HTTP answer."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


@web.middleware
async def edge_fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _is_control(request):
        return await handler(request)
    rule = request.app[FAULTS].take(request.method, request.path, EDGE_FAULT_MODES)
    if rule is None:
        return await handler(request)
    record = _record(request)
    if record is not None:
        record.fault = rule.mode
    if rule.mode == "error400":
        # Stripe refusing the request itself (not a decline, not an outage): nothing done.
        return stripe_error(400, "invalid_request_error",
                            "Injected fault (error400): the request was refused and not processed.",
                            code="parameter_invalid")
    if rule.mode in ("error500", "error503"):
        status = 500 if rule.mode == "error500" else 503
        return stripe_error(
            status, "api_error", f"Injected fault ({rule.mode}): the request was not processed. Please retry."
        )
    if rule.mode == "reset":
        if record is not None:
            record.delivered = False
            record.status = None
        drop_connection(request)
        return web.Response(status=500)  # never reaches the client
    # lost_response: the request is processed (and its result stored under its
    # idempotency key), but the client never sees the answer.
    response = await handler(request)
    if record is not None:
        record.status = response.status
        record.delivered = False
    if rule.lost_as == "error500":
        return stripe_error(
            500, "api_error", "Injected fault (lost_response): the answer was lost. Please retry."
        )
    drop_connection(request)
    return response


@web.middleware
async def delay_fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not _is_control(request):
        rule = request.app[FAULTS].take(request.method, request.path, DELAY_FAULT_MODES)
        if rule is not None:
            record = _record(request)
            if record is not None:
                record.fault = rule.mode
            await asyncio.sleep(rule.delay_seconds)
    return await handler(request)


# -- idempotency --------------------------------------------------------------------------
@dataclass
class StoredResponse:
    status: int
    body: bytes
    content_type: str
    charset: str | None

    def replay(self, key: str) -> web.Response:
        response = web.Response(status=self.status, body=self.body, content_type=self.content_type)
        if self.charset:
            response.charset = self.charset
        response.headers["Idempotent-Replayed"] = "true"
        response.headers["Idempotency-Key"] = key
        return response


@dataclass
class IdempotencyEntry:
    method: str
    path: str
    params: str  # canonical JSON of the request's parameters
    created: float
    response: StoredResponse | None = None  # None while the first request is in flight


class IdempotencyStore:
    """Results of keyed POSTs by (API key, Idempotency-Key); keys expire after `ttl` s."""

    def __init__(
        self, ttl: float = IDEMPOTENCY_TTL_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[tuple[str, str], IdempotencyEntry] = {}

    def _purge(self) -> None:
        now = self._clock()
        # Insertion order is creation order, so expired entries are at the front.
        while self._entries:
            scope_key, entry = next(iter(self._entries.items()))
            if now - entry.created < self.ttl or entry.response is None:
                break
            del self._entries[scope_key]

    def get(self, scope: str, key: str) -> IdempotencyEntry | None:
        self._purge()
        entry = self._entries.get((scope, key))
        if entry is not None and entry.response is not None and self._clock() - entry.created >= self.ttl:
            del self._entries[(scope, key)]
            return None
        return entry

    def reserve(self, scope: str, key: str, method: str, path: str, params: str) -> IdempotencyEntry:
        entry = IdempotencyEntry(method=method, path=path, params=params, created=self._clock())
        self._entries[(scope, key)] = entry
        return entry

    def complete(self, scope: str, key: str, entry: IdempotencyEntry, response: web.Response) -> None:
        body = response.body
        if isinstance(body, bytes):
            entry.response = StoredResponse(response.status, body, response.content_type, response.charset)
        else:  # not replayable: forget the key
            self._entries.pop((scope, key), None)

    def release(self, scope: str, key: str, entry: IdempotencyEntry) -> None:
        if self._entries.get((scope, key)) is entry:
            del self._entries[(scope, key)]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


IDEMPOTENCY = web.AppKey("sandbox_stripe.idempotency", IdempotencyStore)


def _stored(status: int) -> bool:
    """Stripe saves a result once the endpoint started executing -- including 402s and
    500s -- but not validation failures or conflicts (here: any other 4xx)."""
    return status < 400 or status == 402 or status >= 500


async def _canonical_params(request: web.Request) -> str:
    data = await ls_server.get_post_data(request, remove_auth=False)
    params = dict(data) if data else {}
    return json.dumps(params, sort_keys=True, default=str)


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key or not request.path.startswith("/v1/"):
        return await handler(request)
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        return stripe_error(
            400,
            "invalid_request_error",
            f"Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters long.",
        )
    store = request.app[IDEMPOTENCY]
    scope = ls_server.get_api_key(request) or ""
    params = await _canonical_params(request)

    entry = store.get(scope, key)
    if entry is not None:
        if entry.response is None:
            return stripe_error(
                409,
                "idempotency_error",
                "There is currently another in-progress request using this Idempotent Key (that probably "
                f"means you submitted twice, and the other request is still going through): '{key}'. "
                "Please try again later.",
            )
        if (entry.method, entry.path) != (request.method, request.path):
            return stripe_error(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used for the same endpoint they were first used "
                f"for ('{entry.method} {entry.path}' vs '{request.method} {request.path}'). Try using a key "
                f"other than '{key}' if you meant to execute a different request.",
            )
        if entry.params != params:
            return stripe_error(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they were first used "
                f"with. Try using a key other than '{key}' if you meant to execute a different request.",
            )
        record = _record(request)
        if record is not None:
            record.replayed = True
        return entry.response.replay(key)

    entry = store.reserve(scope, key, request.method, request.path, params)
    try:
        response = await handler(request)
    except UserError as exc:
        response = user_error_response(exc)
    except web.HTTPException:
        store.release(scope, key, entry)
        raise
    except Exception as exc:
        log.exception("unhandled error in %s %s", request.method, request.path)
        response = unexpected_error_response(exc)
    except BaseException:
        store.release(scope, key, entry)
        raise
    if isinstance(response, web.Response) and _stored(response.status):
        store.complete(scope, key, entry, response)
    else:
        store.release(scope, key, entry)
    response.headers["Idempotency-Key"] = key
    return response
