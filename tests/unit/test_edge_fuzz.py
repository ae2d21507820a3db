"""Fuzzing the signed-payload parsers: arbitrary JSON in place of any field of a slash
command, a block_actions click, a view submission, an event or a Stripe webhook event never
makes anything raise, and never yields a 500.

In process, through the real pieces: `SlackEdge` (the signature, then `check_slack_payload`)
in front of a real Bolt `AsyncApp` behind Bolt's Starlette adapter, as in bot/server.py, with
listeners on the same routes as ours that parse the same typed requests (CommandRequest, …)
and raise if they can't. Bolt runs listeners before answering here (process_before_response),
so a listener or Bolt middleware that crashes on a payload shows up as the 500 it would be.
The over-HTTP sample against the real bot is in tests/e2e/test_edge.py.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.authorization import AuthorizeResult
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from blocks.invoices import PAGE, PAY_NOW
from blocks.pay_modal import ADD_CARD, CALLBACK_ID, REFRESH_METHODS
from bot.edge import SlackEdge
from bot.stripe_gateway import intent_result
from bot.stripe_webhooks import INTENT_EVENTS, StripeWebhooks, parse_event
from handlers.requests import ActionRequest, CommandRequest, SubmitRequest, check_slack_payload

SECRET = "fuzz-signing-secret"
TEAM, USER = "T_FUZZ", "U_FUZZ"

COMMAND = {"token": "x", "team_id": TEAM, "team_domain": "acme", "channel_id": "C1", "channel_name": "billing",
           "user_id": USER, "user_name": "fuzz", "command": "/invoices", "text": "overdue", "api_app_id": "A1",
           "is_enterprise_install": "false", "response_url": "https://hooks.slack.com/commands/1/2/3",
           "trigger_id": "1.2.3"}
_ENVELOPE = {"user": {"id": USER, "username": "fuzz", "name": "fuzz", "team_id": TEAM},
             "team": {"id": TEAM, "domain": "acme"}, "api_app_id": "A1", "token": "x", "trigger_id": "1.2.3",
             "enterprise": None, "is_enterprise_install": False}
BLOCK_ACTIONS = {"type": "block_actions", **_ENVELOPE,
                 "container": {"type": "message", "message_ts": "1.2", "channel_id": "C1"},
                 "channel": {"id": "C1", "name": "billing"},
                 "message": {"type": "message", "user": "UBOT", "ts": "1.2", "text": "x", "blocks": []},
                 "state": {"values": {}}, "response_url": "https://hooks.slack.com/actions/1/2/3",
                 "actions": [{"type": "button", "action_id": f"{PAY_NOW}:0", "block_id": "b1",
                              "value": json.dumps({"invoice": "inv_1", "q": ""}), "action_ts": "1.3"}]}
VIEW_SUBMISSION = {"type": "view_submission", **_ENVELOPE, "response_urls": [], "view": {
    "id": "V1", "team_id": TEAM, "type": "modal", "callback_id": CALLBACK_ID, "hash": "1.abc",
    "private_metadata": "ps_1", "app_installed_team_id": TEAM, "blocks": [],
    "state": {"values": {"amount": {"amount": {"type": "plain_text_input", "value": "10.00"}},
                         "method": {"method": {"type": "static_select",
                                               "selected_option": {"value": "pm_1", "text": {"type": "plain_text",
                                                                                             "text": "Visa"}}}}}}}}
EVENT = {"type": "event_callback", "token": "x", "team_id": TEAM, "api_app_id": "A1", "event_id": "Ev1",
         "event_time": 1, "authorizations": [{"enterprise_id": None, "team_id": TEAM, "user_id": "UBOT",
                                               "is_bot": True, "is_enterprise_install": False}],
         "event": {"type": "app_home_opened", "user": USER, "channel": "D1", "tab": "home", "event_ts": "1.2"}}
STRIPE_EVENT = {"id": "evt_1", "object": "event", "type": "payment_intent.payment_failed", "created": 1,
                "api_version": "2024-06-20", "livemode": False, "data": {"object": {
                    "id": "pi_1", "object": "payment_intent", "status": "requires_payment_method",
                    "last_payment_error": {"message": "declined", "code": "card_declined"},
                    "metadata": {"payment_id": "pay_1"}, "mode": "setup"}}}

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)
MISSING = object()


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every field of a payload (dict keys and list items, at every depth)."""
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, child in items:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


def replaced(template: dict[str, Any], path: tuple[Any, ...], new: Any) -> dict[str, Any]:
    body = copy.deepcopy(template)
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    if new is MISSING:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return body


def mutated(template: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The template with one to three fields replaced by arbitrary JSON (or left out)."""
    def one(body: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        return st.tuples(st.sampled_from(paths(body)), JSON | st.just(MISSING)).map(
            lambda change: replaced(body, *change))
    return one(template).flatmap(lambda b: st.one_of(st.just(b), one(b) if paths(b) else st.just(b)))


# -- the app under test -------------------------------------------------------------------
class ListenerCrash(AssertionError):
    pass


def bolt_app() -> AsyncApp:
    async def authorize(**_: Any) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=None, team_id=TEAM, bot_token="xoxb-fuzz", bot_id="B1",
                               bot_user_id="UBOT")

    # Answers after the listeners ran, so a listener that raises is a 500 in this test.
    app = AsyncApp(signing_secret=SECRET, authorize=authorize, process_before_response=True,
                   raise_error_for_unhandled_request=False)

    @app.command("/invoices")
    async def command(ack: AsyncAck, body: dict[str, Any]) -> None:
        CommandRequest.parse(body)
        await ack()

    @app.action(re.compile(rf"^{PAY_NOW}(:\d+)?$"))
    @app.action(re.compile(rf"^{PAGE}:(prev|next)$"))
    @app.action(REFRESH_METHODS)
    async def action(ack: AsyncAck, body: dict[str, Any]) -> None:
        ActionRequest.parse(body)
        await ack()

    @app.action(ADD_CARD)
    async def add_card(ack: AsyncAck) -> None:
        await ack()

    @app.view(CALLBACK_ID)
    async def submit(ack: AsyncAck, body: dict[str, Any]) -> None:
        SubmitRequest.parse(body)
        await ack()

    @app.event("app_home_opened")
    async def home() -> None:
        return None

    @app.error
    async def crashed(error: Exception) -> None:
        raise ListenerCrash(f"{type(error).__name__}: {error}")

    return app


def web_app() -> SlackEdge:
    handler = AsyncSlackRequestHandler(bolt_app())

    async def events(request: Request) -> Response:
        response = await handler.handle(request)
        return Response(status_code=200) if response.status_code == 404 else response  # as bot/server.py

    return SlackEdge(Starlette(routes=[Route("/slack/events", events, methods=["POST"])]),
                     signing_secret=SECRET, check_payload=check_slack_payload)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(web_app(), raise_server_exceptions=True) as running:  # one event loop for all examples
        yield running


def post(client: TestClient, body: bytes, content_type: str) -> Any:
    at = str(int(time.time()))
    signature = "v0=" + hmac.new(SECRET.encode(), f"v0:{at}:".encode() + body, hashlib.sha256).hexdigest()
    return client.post("/slack/events", content=body, headers={
        "Content-Type": content_type, "X-Slack-Request-Timestamp": at, "X-Slack-Signature": signature})


def assert_clean(answer: Any) -> None:
    assert answer.status_code in (200, 400), (answer.status_code, answer.text[:300])
    assert "Traceback" not in answer.text
    if answer.status_code == 200 and answer.content:
        json.loads(answer.content)  # what Slack shows: JSON, never a stack trace


FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(mutated(COMMAND))
def test_a_command_as_json_with_any_field_replaced(client: TestClient, body: dict[str, Any]) -> None:
    assert_clean(post(client, json.dumps(body).encode(), "application/json"))


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(COMMAND)), st.text(max_size=5000), max_size=len(COMMAND)))
def test_a_command_form_with_any_text_in_any_field(client: TestClient, fields: dict[str, str]) -> None:
    assert_clean(post(client, urlencode(COMMAND | fields).encode(), "application/x-www-form-urlencoded"))


@FUZZ
@given(mutated(BLOCK_ACTIONS))
def test_a_button_click_with_any_field_replaced(client: TestClient, body: dict[str, Any]) -> None:
    assert_clean(post(client, urlencode({"payload": json.dumps(body)}).encode(), "application/x-www-form-urlencoded"))


@FUZZ
@given(mutated(VIEW_SUBMISSION))
# Found by this test: two response_urls made Bolt itself raise before any listener ran.
@example(body={**VIEW_SUBMISSION, "response_urls": [{}, {}]})
def test_a_view_submission_with_any_field_replaced(client: TestClient, body: dict[str, Any]) -> None:
    answer = post(client, urlencode({"payload": json.dumps(body)}).encode(), "application/x-www-form-urlencoded")
    assert_clean(answer)
    if answer.content:
        assert set(answer.json()) <= {"response_action", "view", "errors"}


@FUZZ
@given(mutated(EVENT))
def test_an_event_with_any_field_replaced(client: TestClient, body: dict[str, Any]) -> None:
    assert_clean(post(client, json.dumps(body).encode(), "application/json"))


@FUZZ
@given(JSON)
def test_any_json_as_the_whole_payload(client: TestClient, body: Any) -> None:
    assert_clean(post(client, urlencode({"payload": json.dumps(body)}).encode(), "application/x-www-form-urlencoded"))
    assert_clean(post(client, json.dumps(body).encode(), "application/json"))


@FUZZ
@given(mutated(BLOCK_ACTIONS) | mutated(VIEW_SUBMISSION) | mutated(EVENT) | mutated(COMMAND))
def test_the_edge_check_itself_never_raises(body: dict[str, Any]) -> None:
    answer = check_slack_payload(body)
    assert answer is None or answer.status == 200


# -- Stripe webhook events ----------------------------------------------------------------
class _Recorder:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    async def on_intent(self, intent_id: str, result: Any) -> None:
        self.calls.append((intent_id, result))

    async def card_saved(self, metadata: dict[str, str]) -> None:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
        self.calls.append(metadata)


@FUZZ
@given(mutated(STRIPE_EVENT), st.sampled_from(sorted(INTENT_EVENTS | {"checkout.session.completed", "x"})))
def test_a_webhook_event_with_any_field_replaced(event: dict[str, Any], event_type: str) -> None:
    if isinstance(event.get("type"), str):
        event["type"] = event_type
    try:
        parsed = parse_event(json.dumps(event).encode())
    except ValueError:
        return  # a 400: refused, never stored
    assert parsed.id and isinstance(parsed.id, str)
    recorder = _Recorder()
    webhooks = StripeWebhooks("whsec_x", recorder, None, recorder.card_saved)  # type: ignore[arg-type]
    # What the handler does with a parsed event: it must take any event that parses.
    asyncio.run(webhooks._dispatch(parsed.type, parsed.data.object.model_dump()))
    if parsed.type in INTENT_EVENTS and parsed.data.object.id:
        intent_result(parsed.data.object.model_dump())
