"""The edge: every broken request we know of (issue 12, defects 1, 2 and 5) gets its
expected 4xx or polite 200, a body without a traceback, no ERROR line in the bot's log,
and the bot keeps answering /healthz. Real HTTP to the running bot; "signed" rows are
signed with the stack's own secrets, as Slack and Stripe would sign them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.test_payment_safety import stripe_signature
from tests.unit import test_edge_fuzz as fuzz
from tests.e2e.world import World
from tests.harness import SIGNING_SECRET, TEAM_ID, Stack, free_port, unique

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


# -- how a row is sent --------------------------------------------------------------------
def slack_headers(body: bytes, *, signing: str = "signed", timestamp: str | None = None,
                  content_type: str = FORM) -> dict[str, Any]:
    """Headers as Slack sends them. signing: "signed" (the stack's secret), "forged"
    (well-formed, wrong secret) or "unsigned" (no signature headers at all)."""
    at = timestamp if timestamp is not None else str(int(time.time()))
    headers: dict[str, Any] = {"Content-Type": content_type}
    if signing == "unsigned":
        return headers
    secret = SIGNING_SECRET if signing == "signed" else "not-the-signing-secret"
    digest = hmac.new(secret.encode(), b"v0:" + at.encode() + b":" + body, hashlib.sha256).hexdigest()
    return headers | {"X-Slack-Request-Timestamp": at, "X-Slack-Signature": f"v0={digest}"}


def form_payload(payload: Any) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def command_form(**fields: str) -> bytes:
    base = {"token": "x", "team_id": TEAM_ID, "team_domain": "acme", "channel_id": "C_BILLING",
            "channel_name": "billing", "user_id": "U_EDGE", "user_name": "edge", "command": "/invoices",
            "text": "", "api_app_id": "A1", "is_enterprise_install": "false",
            "response_url": "http://127.0.0.1:9/commands/x", "trigger_id": "1.2.3"}
    return urlencode({k: v for k, v in (base | fields).items() if v is not None}).encode()


def envelope(kind: str, **fields: Any) -> dict[str, Any]:
    base = {"type": kind, "user": {"id": "U_EDGE", "username": "edge", "team_id": TEAM_ID},
            "team": {"id": TEAM_ID, "domain": "acme"}, "api_app_id": "A1", "token": "x",
            "trigger_id": "1.2.3", "enterprise": None, "is_enterprise_install": False}
    return {k: v for k, v in (base | fields).items() if v is not ...}


def pay_button(**fields: Any) -> dict[str, Any]:
    button = {"type": "button", "action_id": "pay_now:0", "block_id": "b",
              "value": json.dumps({"invoice": "inv_x", "q": ""})}
    return envelope("block_actions", **({"actions": [button], "container": {"type": "message"},
                                         "response_url": "http://127.0.0.1:9/actions/x"} | fields))


def submission(values: Any, **view: Any) -> dict[str, Any]:
    return envelope("view_submission", response_urls=[], view={
        "id": "V_EDGE", "type": "modal", "callback_id": "pay_invoice", "hash": "1.abc",
        "private_metadata": "ps_x", "state": {"values": values}} | view)


def stripe_event(**fields: Any) -> dict[str, Any]:
    base = {"id": unique("evt_edge_"), "object": "event", "type": "payment_intent.succeeded",
            "created": int(time.time()), "api_version": "2024-06-20", "livemode": False,
            "data": {"object": {"id": unique("pi_edge_"), "object": "payment_intent", "status": "succeeded"}}}
    return {k: v for k, v in (base | fields).items() if v is not ...}


@dataclass
class Row:
    id: str
    body: bytes | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    path: str = "/slack/events"
    method: str = "POST"
    chunks: int = 0  # > 0: the body is sent chunked (no Content-Length), this many times
    status: int = 200
    json: Any = ...  # the expected JSON body (... = not checked; None = an empty body)
    fast: bool = True  # answered at once (not after Bolt's 3 seconds)


def slack(id: str, body: bytes, signing: str = "signed", *, timestamp: str | None = None,
          content_type: str = FORM, **expect: Any) -> Row:
    return Row(id, body, slack_headers(body, signing=signing, timestamp=timestamp, content_type=content_type),
               **expect)


def webhook(id: str, payload: Any, *, at: int | None = None, raw: bytes | None = None, **expect: Any) -> Row:
    body = raw if raw is not None else json.dumps(payload).encode()
    return Row(id, body, {"Content-Type": JSON, "Stripe-Signature": stripe_signature(body, at=at)},
               path="/stripe/webhook", **expect)


# -- defect 1: unsigned, badly signed and unreadable requests -------------------------------
GARBAGE = {
    "form-payload-not-json": (b"payload=%7Bnot", FORM),
    "form-payload-list": (b"payload=[1]", FORM),
    "form-payload-number": (b"payload=42", FORM),
    "json-not-json": (b"{bad", JSON),
    "json-list": (b"[1]", JSON),
    "invalid-utf8": (b"payload=\xff\xfe%7B\xc3(", FORM),
    "json-nested-too-deep": (b"[" * 50_000, JSON),
}
REFUSED_GARBAGE = {"unsigned": 401, "forged": 401, "signed": 400}
# Not UTF-8: no signature can be checked over it (Slack signs text), so it is malformed first.
NOT_TEXT = {"unsigned": 401, "forged": 400, "signed": 400}

ROWS: list[Row] = [
    slack(f"{name}-{signing}", body, signing, content_type=ctype, status=status)
    for name, (body, ctype) in GARBAGE.items()
    for signing, status in (NOT_TEXT if name == "invalid-utf8" else REFUSED_GARBAGE).items()
] + [
    slack("timestamp-abc", command_form(), timestamp="abc", status=400,
          json={"error": "malformed X-Slack-Request-Timestamp"}),
    slack("timestamp-1e3", command_form(), timestamp="1e3", status=400,
          json={"error": "malformed X-Slack-Request-Timestamp"}),
    slack("timestamp-stale", command_form(), timestamp=str(int(time.time()) - 6 * 60), status=401,
          json={"error": "stale Slack request"}),
    slack("timestamp-future", command_form(), timestamp=str(int(time.time()) + 10 * 60), status=401,
          json={"error": "stale Slack request"}),
    Row("signature-non-ascii", command_form(),
        {"Content-Type": FORM, "X-Slack-Request-Timestamp": str(int(time.time())),
         "X-Slack-Signature": "v0=".encode() + "é".encode() * 32}, status=400,
        json={"error": "malformed X-Slack-Signature"}),
    Row("signature-not-v0-hex", command_form(),
        {"Content-Type": FORM, "X-Slack-Request-Timestamp": str(int(time.time())),
         "X-Slack-Signature": "v1=" + "Z" * 64}, status=400, json={"error": "malformed X-Slack-Signature"}),
    Row("chunked-over-1mb", b"payload=" + b"x" * 65_536, {"Content-Type": FORM}, chunks=24, status=413,
        json={"error": "request body too large"}),
    Row("chunked-over-1mb-webhook", b"x" * 65_536, {"Content-Type": JSON}, path="/stripe/webhook", chunks=24,
        status=413, json={"error": "request body too large"}),
    Row("declared-over-1mb", b"x" * 1_000_001, {"Content-Type": FORM}, status=413,
        json={"error": "request body too large"}),
] + [
    # -- defect 2: signed by Slack, but not a payload the listeners can take ----------------
    slack("command-text-over-4000", command_form(text="x" * 4001),
          json={"response_type": "ephemeral", "text": "That's too long for me: `/invoices` takes at most 4,000 "
                "characters after the command. Try a shorter search, or `/invoices help`."}),
    slack("command-without-team-id", command_form(team_id=None),
          json={"response_type": "ephemeral", "text": "Slack sent this command without everything I need to answer "
                "it (who you are and which workspace you're in), so I did nothing. Try `/invoices` again."}),
    slack("command-without-user-id", command_form(user_id=None),
          json={"response_type": "ephemeral", "text": "Slack sent this command without everything I need to answer "
                "it (who you are and which workspace you're in), so I did nothing. Try `/invoices` again."}),
    slack("command-as-json-with-a-list-user", json.dumps({"command": "/invoices", "team_id": TEAM_ID,
                                                          "user_id": [1], "text": ""}).encode(),
          content_type=JSON, json={"response_type": "ephemeral", "text": ...}),
    slack("actions-empty", form_payload(pay_button(actions=[])), json=None),
    slack("actions-not-a-list", form_payload(pay_button(actions={"action_id": "pay_now:0"})), json=None),
    slack("action-id-a-number", form_payload(pay_button(actions=[{"action_id": 7}])), json=None),
    slack("block-actions-without-user", form_payload(pay_button(user=...)), json=None),
    slack("block-actions-without-team", form_payload(pay_button(team=..., user={"id": "U_EDGE"})), json=None),
    slack("block-actions-user-id-an-object", form_payload(pay_button(user={"id": {"id": "U_EDGE"}})), json=None),
    slack("block-actions-user-a-number", form_payload(pay_button(user=5)), json=None),
    slack("block-actions-team-a-list", form_payload(pay_button(team=[TEAM_ID])), json=None),
    slack("view-submission-view-null", form_payload(envelope("view_submission", view=None)),
          json={"response_action": "update", "view": ...}),
    slack("view-submission-values-a-list", form_payload(submission([1])),
          json={"response_action": "update", "view": ...}),
    slack("view-submission-values-strings", form_payload(submission({"amount": "ten"})),
          json={"response_action": "update", "view": ...}),
    slack("view-submission-amount-a-number", form_payload(submission({"amount": {"amount": {"value": 10}}})),
          json={"response_action": "update", "view": ...}),
    slack("view-submission-option-a-list", form_payload(submission(
        {"method": {"method": {"type": "static_select", "selected_option": [1]}}})),
        json={"response_action": "update", "view": ...}),
    slack("view-submission-metadata-over-3000", form_payload(submission({}, private_metadata="x" * 3001)),
          json={"response_action": "update", "view": ...}),
    slack("event-a-list", json.dumps(envelope("event_callback", event=[1], team_id=TEAM_ID)).encode(),
          content_type=JSON, json=None),
    slack("event-without-type", json.dumps(envelope("event_callback", event={"user": "U1"})).encode(),
          content_type=JSON, json=None),
    slack("event-user-a-number", json.dumps(envelope("event_callback", event={"type": "app_home_opened",
                                                                              "user": 5})).encode(),
          content_type=JSON, json=None),
    slack("authorizations-not-a-list", json.dumps(envelope("event_callback", event={"type": "app_home_opened"},
                                                           authorizations={"team_id": 1})).encode(),
          content_type=JSON, json=None),
    slack("unknown-payload-type", form_payload(envelope("message_action", callback_id="x")), json=None),
    slack("type-a-list", json.dumps({"type": ["block_actions"]}).encode(), content_type=JSON, json=None),
    slack("view-closed", form_payload(envelope("view_closed", view={"id": "V1", "type": "modal",
                                                                "callback_id": "pay_invoice"})),
          json=None),
    slack("unhandled-event", json.dumps(envelope("event_callback", event={"type": "reaction_added"})).encode(),
          content_type=JSON, json=None),
] + [
    # -- defect 5: Stripe webhooks, validly signed but not Stripe events ------------------
    webhook("webhook-a-list", [1], status=400, json={"error": "not a Stripe event"}),
    webhook("webhook-a-number", 42, status=400, json={"error": "not a Stripe event"}),
    webhook("webhook-a-string", "evt", status=400, json={"error": "not a Stripe event"}),
    webhook("webhook-not-json", None, raw=b"{bad", status=400, json={"error": "not a Stripe event"}),
    webhook("webhook-invalid-utf8", None, raw=b'{"id": "\xff"}', status=400,
            json={"error": "invalid signature or payload"}),
    webhook("webhook-data-object-a-list", stripe_event(data={"object": [1]}), status=400,
            json={"error": "not a Stripe event"}),
    webhook("webhook-data-a-string", stripe_event(data="x"), status=400, json={"error": "not a Stripe event"}),
    webhook("webhook-metadata-a-list", stripe_event(
        type="checkout.session.completed",
        data={"object": {"id": "cs_1", "mode": "setup", "metadata": ["slack_user_id"]}}),
        status=400, json={"error": "not a Stripe event"}),
    webhook("webhook-metadata-not-strings", stripe_event(
        type="checkout.session.completed",
        data={"object": {"id": "cs_1", "mode": "setup", "metadata": {"slack_user_id": {"id": "U1"}}}}),
        status=400, json={"error": "not a Stripe event"}),
    webhook("webhook-without-id", stripe_event(id=...), status=400, json={"error": "not a Stripe event"}),
    webhook("webhook-id-null", stripe_event(id=None), status=400, json={"error": "not a Stripe event"}),
    webhook("webhook-id-empty", stripe_event(id=""), status=400, json={"error": "not a Stripe event"}),
    webhook("webhook-type-a-number", stripe_event(type=5), status=400, json={"error": "not a Stripe event"}),
    webhook("webhook-10-minutes-in-the-future", stripe_event(), at=int(time.time()) + 600, status=400,
            json={"error": "invalid signature or payload"}),
    webhook("webhook-10-minutes-old", stripe_event(), at=int(time.time()) - 600, status=400,
            json={"error": "invalid signature or payload"}),
    Row("webhook-signature-garbage", b"{}", {"Content-Type": JSON, "Stripe-Signature": "t=abc,v1=é".encode()},
        path="/stripe/webhook", status=400, json={"error": "invalid signature or payload"}),
]


# -- the checks every row gets ------------------------------------------------------------
class BotLog:
    """The bot's log file (tests/harness.py: <workdir>/<name>.log), read from a mark."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mark = path.stat().st_size

    def since_mark(self) -> list[str]:
        with self.path.open("rb") as log:
            log.seek(self.mark)
            return log.read().decode("utf-8", "replace").splitlines()


def error_lines(lines: list[str]) -> list[str]:
    bad = []
    for line in lines:
        try:
            level = json.loads(line).get("level", "")
        except (ValueError, AttributeError):
            level = "error" if "Traceback" in line or "ERROR" in line else ""
        if level in ("error", "critical") or "Traceback" in line:
            bad.append(line)
    return bad


async def send(http: httpx.AsyncClient, app_url: str, row: Row) -> httpx.Response:
    url = f"{app_url}{row.path}"
    if row.chunks:
        async def chunked() -> AsyncIterator[bytes]:
            for _ in range(row.chunks):
                yield row.body or b""
        try:
            return await http.request(row.method, url, content=chunked(), headers=row.headers)
        except httpx.WriteError:
            pytest.fail("the server hung up instead of answering 413")
    return await http.request(row.method, url, content=row.body, headers=row.headers)


def assert_no_traceback(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text and "Exception" not in text, text[:500]


def matches(expected: Any, actual: Any) -> bool:
    """`...` in the expected JSON matches anything (a view whose exact blocks don't matter)."""
    if expected is ...:
        return True
    if isinstance(expected, dict):
        return isinstance(actual, dict) and expected.keys() == actual.keys() and all(
            matches(v, actual[k]) for k, v in expected.items())
    return bool(expected == actual)


@pytest.fixture(scope="module")
def log_path(stack: Stack) -> Iterator[Path]:
    yield stack.workdir / "app.log"


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
async def test_a_broken_request_is_answered_cleanly(stack: Stack, log_path: Path, row: Row) -> None:
    log = BotLog(log_path)
    async with httpx.AsyncClient(timeout=10) as http:
        started = time.monotonic()
        answer = await send(http, stack.app_url, row)
        elapsed = time.monotonic() - started
        assert answer.status_code == row.status, answer.text[:300]
        assert_no_traceback(answer.text)
        if row.json is None:
            assert answer.content == b""
        elif row.json is not ...:
            assert matches(row.json, answer.json()), answer.text[:500]
        if row.fast:
            assert elapsed < 1.5, f"answered after {elapsed:.1f} s"
        await asyncio.sleep(0.2)  # anything the request set off has had time to log
        health = await http.get(f"{stack.app_url}/healthz")
        assert health.status_code == 200, health.text

    lines = log.since_mark()
    assert error_lines(lines) == []
    logged = "\n".join(lines)
    for name, value in row.headers.items():
        shown = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        if name.lower() != "content-type" and len(shown) >= 8:
            assert shown not in logged, f"{name} echoed into the log"
    if row.body and len(row.body) >= 12:
        assert row.body[:200].decode("utf-8", "replace") not in logged, "the body was echoed into the log"


async def test_a_webhook_without_an_id_is_never_stored_as_a_duplicate(stack: Stack) -> None:
    """Before: every event without an id was remembered as "None", and the next one (a
    different event) was answered `duplicate: true` without being looked at."""
    async with httpx.AsyncClient(timeout=10) as http:
        for kind in ("payment_intent.canceled", "customer.created"):
            body = json.dumps(stripe_event(id=..., type=kind)).encode()
            answer = await http.post(f"{stack.app_url}/stripe/webhook", content=body,
                                     headers={"Stripe-Signature": stripe_signature(body)})
            assert answer.status_code == 400 and "duplicate" not in answer.text
        # A real event (one no handler takes) is received once and then known as a duplicate.
        body = json.dumps(stripe_event(type="customer.created", data={"object": {"id": "cus_1"}})).encode()
        answers = [await http.post(f"{stack.app_url}/stripe/webhook", content=body,
                                   headers={"Stripe-Signature": stripe_signature(body)}) for _ in range(2)]
        assert [a.json() for a in answers] == [{"received": True}, {"received": True, "duplicate": True}]


OAUTH_GARBAGE = [
    "/slack/install?%ff%fe=%zz",
    "/slack/install?" + "a=" + "x" * 5000,
    "/slack/oauth_redirect",
    "/slack/oauth_redirect?code=%00&state=%5B1%5D",
    "/slack/oauth_redirect?code=abc&state=" + quote("é" * 50),
    "/slack/oauth_redirect?error=%ff%fe&state=x",
    "/slack/oauth_redirect?code=[1]&code=2&state=",
]


async def test_oauth_pages_answer_garbage_query_strings_without_a_500(world: World) -> None:
    """The install pages are GETs Slack does not sign: Bolt handles them, with whatever
    query string a browser (or anyone) sends."""
    stack = world.stack
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    app = stack.start_app(name="edge-oauth-app", port=port, SLACK_BOT_TOKEN="", SLACK_CLIENT_ID="1234.5678",
                          SLACK_CLIENT_SECRET="edge-oauth-secret", PUBLIC_URL=app_url,
                          SLACK_OAUTH_AUTHORIZE_URL=f"{stack.slack_url}/oauth/v2/authorize")
    try:
        log = BotLog(stack.workdir / "edge-oauth-app.log")
        async with httpx.AsyncClient(timeout=10) as http:
            for path in OAUTH_GARBAGE:
                answer = await http.get(f"{app_url}{path}", headers={"Cookie": "slack-app-oauth-state=%ff[1]"})
                assert answer.status_code < 500, (path, answer.status_code)
                assert_no_traceback(answer.text)
            assert (await http.get(f"{app_url}/healthz")).status_code == 200
        assert error_lines(log.since_mark()) == []
    finally:
        app.stop()


# -- a fuzzed sample over HTTP (the full fuzz runs in process: tests/unit/test_edge_fuzz.py) --
def _local(template: dict[str, Any]) -> dict[str, Any]:
    """A fuzz template whose response URLs lead nowhere (a closed local port), not to Slack."""
    text = json.dumps(template).replace("https://hooks.slack.com/", "http://127.0.0.1:9/")
    return json.loads(text)


SAMPLE = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))


def _sample_check(stack: Stack, path: str, body: bytes, headers: dict[str, str]) -> None:
    mark = BotLog(stack.workdir / "app.log")
    with httpx.Client(timeout=10) as http:
        answer = http.post(f"{stack.app_url}{path}", content=body, headers=headers)
        assert answer.status_code < 500, answer.text[:300]
        assert_no_traceback(answer.text)
        assert http.get(f"{stack.app_url}/healthz").status_code == 200
    # What reaches the listeners may fail there (a made-up trigger, a response_url that leads
    # nowhere): a WARNING naming the dependency (handlers/failures.py), never an ERROR.
    time.sleep(0.2)
    assert error_lines(mark.since_mark()) == []


@SAMPLE
@given(st.sampled_from(["command", "block_actions", "view_submission", "event"]).flatmap(
    lambda kind: st.tuples(st.just(kind), fuzz.mutated(_local({
        "command": fuzz.COMMAND, "block_actions": fuzz.BLOCK_ACTIONS, "view_submission": fuzz.VIEW_SUBMISSION,
        "event": fuzz.EVENT}[kind])))))
def test_fuzzed_signed_slack_payloads_over_http_never_500(stack: Stack, case: tuple[str, dict[str, Any]]) -> None:
    kind, payload = case
    if kind in ("command", "event"):
        body, ctype = json.dumps(payload).encode(), JSON
    else:
        body, ctype = form_payload(payload), FORM
    _sample_check(stack, "/slack/events", body, slack_headers(body, content_type=ctype))


@SAMPLE
@given(fuzz.mutated(fuzz.STRIPE_EVENT))
def test_fuzzed_signed_webhooks_over_http_never_500(stack: Stack, event: dict[str, Any]) -> None:
    body = json.dumps(event).encode()
    _sample_check(stack, "/stripe/webhook", body, {"Content-Type": JSON, "Stripe-Signature": stripe_signature(body)})
