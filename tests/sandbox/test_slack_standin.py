"""The Slack stand-in over real HTTP: a real stand-in server, a tiny fake app
that verifies Slack signatures, and slack_sdk's AsyncWebClient as the bot."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.slack import ServerThread, StandInClient, StandInError, StandInState, start_standin

pytestmark = pytest.mark.asyncio(loop_scope="session")

BOT_TOKEN = "xoxb-test-token"
SIGNING_SECRET = "test-signing-secret"

Responder = Callable[[dict[str, Any]], Response | Awaitable[Response]]


class FakeSlackApp:
    """Stands in for invoicebot's `/slack/events`: checks the signature like Bolt
    does (slack_sdk's SignatureVerifier) and answers with whatever a test set."""

    def __init__(self, secret: str) -> None:
        self.verifier = SignatureVerifier(secret)
        self.requests: list[dict[str, Any]] = []
        self.respond: Responder | None = None

    async def handle(self, request: Request) -> Response:
        body = (await request.body()).decode()
        valid = self.verifier.is_valid(
            body, request.headers.get("x-slack-request-timestamp"), request.headers.get("x-slack-signature")
        )
        form = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        payload = json.loads(form["payload"]) if "payload" in form else form
        record = {"valid": valid, "headers": dict(request.headers), "raw": body, "payload": payload,
                  "type": payload.get("type", "slash_command") if isinstance(payload, dict) else None}
        self.requests.append(record)
        if not valid:
            return Response("invalid signature", status_code=401)
        if self.respond is None:
            return Response(status_code=200)
        result = self.respond(record)
        return await result if inspect.isawaitable(result) else result

    def asgi(self) -> Starlette:
        return Starlette(routes=[Route("/slack/events", self.handle, methods=["POST"])])


@pytest.fixture(scope="session")
def fake_app() -> Iterator[FakeSlackApp]:
    app = FakeSlackApp(SIGNING_SECRET)
    with ServerThread(app.asgi()) as server:
        app.url = server.url  # type: ignore[attr-defined]
        yield app


@pytest.fixture(scope="session")
def standin_url(fake_app: FakeSlackApp) -> Iterator[str]:
    state = StandInState.with_demo_data(
        bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET,
        request_url=f"{fake_app.url}/slack/events",  # type: ignore[attr-defined]
    )
    server = start_standin(state)
    yield server.url
    server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def slack(standin_url: str, fake_app: FakeSlackApp) -> AsyncIterator[StandInClient]:
    async with StandInClient(standin_url) as client:
        await client.reset()
        fake_app.requests.clear()
        fake_app.respond = None
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def web(slack: StandInClient) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)


def section(text: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if block_id:
        block["block_id"] = block_id
    return block


def pay_buttons(invoice: str) -> dict[str, Any]:
    return {"type": "actions", "block_id": f"inv_{invoice}", "elements": [
        {"type": "button", "action_id": "pay", "text": {"type": "plain_text", "text": "Pay"},
         "value": invoice, "style": "primary"},
    ]}


METHOD_OPTIONS = [
    {"text": {"type": "plain_text", "text": "Card"}, "value": "card"},
    {"text": {"type": "plain_text", "text": "SEPA debit"}, "value": "sepa"},
]


def pay_modal(title: str = "Pay invoice", **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal", "callback_id": "pay_invoice", "private_metadata": "inv_42",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Pay"},
        "blocks": [
            section("Invoice *INV-42*: €120.00", "summary"),
            {"type": "input", "block_id": "amount", "label": {"type": "plain_text", "text": "Amount"},
             "element": {"type": "plain_text_input", "action_id": "value", "initial_value": "120.00"}},
            {"type": "input", "block_id": "method", "label": {"type": "plain_text", "text": "Method"},
             "element": {"type": "static_select", "action_id": "choice", "options": METHOD_OPTIONS}},
            {"type": "input", "block_id": "note", "optional": True, "label": {"type": "plain_text", "text": "Note"},
             "element": {"type": "plain_text_input", "action_id": "text"}},
        ],
        **extra,
    }


async def open_modal(slack: StandInClient, web: AsyncWebClient, user: str = "U_FINANCE",
                     view: dict[str, Any] | None = None) -> dict[str, Any]:
    cmd = await slack.command(user, "pay INV-42")
    resp = await web.views_open(trigger_id=cmd["trigger_id"], view=view or pay_modal())
    return resp["view"]


# --- Web API: auth & directory --------------------------------------------------------------


async def test_token_checks_and_unknown_method(slack: StandInClient, web: AsyncWebClient) -> None:
    async with httpx.AsyncClient(base_url=slack.api_url) as raw:
        assert (await raw.post("auth.test")).json() == {"ok": False, "error": "not_authed"}
        wrong = await raw.post("auth.test", headers={"Authorization": "Bearer xoxb-wrong"})
        assert wrong.json()["error"] == "invalid_auth"
        form_token = await raw.post("auth.test", data={"token": BOT_TOKEN})
        assert form_token.json()["ok"] is True
        unknown = await raw.post("chat.frobnicate", headers={"Authorization": f"Bearer {BOT_TOKEN}"})
        assert unknown.json()["error"] == "unknown_method"

    auth = await web.auth_test()
    assert auth["team_id"] == "T0001" and auth["user_id"]

    calls = await slack.calls()
    assert [(c["method"], c["error"]) for c in calls] == [
        ("auth.test", "not_authed"), ("auth.test", "invalid_auth"), ("auth.test", None),
        ("chat.frobnicate", "unknown_method"), ("auth.test", None),
    ]
    assert all(c["wall_time"] > 1e9 and c["monotonic"] > 0 for c in calls)


async def test_users_info_emails_and_added_users(slack: StandInClient, web: AsyncWebClient) -> None:
    finance = await web.users_info(user="U_FINANCE")
    assert finance["user"]["profile"]["email"] == "finance@acme.example"
    no_email = await web.users_info(user="U_NOEMAIL")
    assert "email" not in no_email["user"]["profile"]
    with pytest.raises(SlackApiError) as err:
        await web.users_info(user="U_GHOST")
    assert err.value.response["error"] == "user_not_found"

    await slack.add_user("U_AUDITOR", "auditor", "auditor@acme.example")
    assert (await web.users_info(user="U_AUDITOR"))["user"]["profile"]["email"] == "auditor@acme.example"


async def test_post_message_channel_rules(slack: StandInClient, web: AsyncWebClient) -> None:
    by_name = await web.chat_postMessage(channel="#billing", text="Invoice INV-1 is due")
    assert by_name["channel"] == "C_BILLING" and by_name["ts"]
    with pytest.raises(SlackApiError) as err:
        await web.chat_postMessage(channel="C_PRIVATE", text="secret")
    assert err.value.response["error"] == "not_in_channel"
    with pytest.raises(SlackApiError) as err:
        await web.chat_postMessage(channel="C_NOPE", text="hi")
    assert err.value.response["error"] == "channel_not_found"

    await slack.add_channel("C_OPEN", "random", is_private=False, bot_is_member=False)
    await web.chat_postMessage(channel="C_OPEN", text="public channels need no membership")
    dm = await web.chat_postMessage(channel="U_SALES", text="Your invoice is paid")
    assert dm["channel"].startswith("D")

    info = await web.conversations_info(channel="C_BILLING")
    assert info["channel"]["name"] == "billing" and info["channel"]["is_private"] is False

    updated = await web.chat_update(channel="C_BILLING", ts=by_name["ts"], text="INV-1 paid")
    assert updated["text"] == "INV-1 paid"
    billing = await slack.messages(channel="C_BILLING")
    assert [m["text"] for m in billing] == ["INV-1 paid"]
    assert [m["text"] for m in await slack.messages(user_id="U_SALES")] == ["Your invoice is paid"]


# --- Block Kit limits --------------------------------------------------------------------------


async def test_message_block_limits(slack: StandInClient, web: AsyncWebClient) -> None:
    ok = await web.chat_postMessage(channel="C_BILLING", text="50 blocks", blocks=[section("x")] * 50)
    assert ok["ok"]

    with pytest.raises(SlackApiError) as err:
        await web.chat_postMessage(channel="C_BILLING", text="51 blocks", blocks=[section("x")] * 51)
    assert err.value.response["error"] == "invalid_blocks"
    assert any("at most 50 blocks" in m for m in err.value.response["response_metadata"]["messages"])

    with pytest.raises(SlackApiError) as err:
        await web.chat_postMessage(channel="C_BILLING", text="long", blocks=[section("x" * 3001)])
    assert err.value.response["response_metadata"]["messages"] == [
        "[ERROR] must be at most 3000 characters (got 3001) [json-pointer:/blocks/0/text/text]"
    ]

    with pytest.raises(SlackApiError) as err:  # header text must be plain_text
        await web.chat_postMessage(channel="C_BILLING", text="h",
                                   blocks=[{"type": "header", "text": {"type": "mrkdwn", "text": "*Invoices*"}}])
    assert err.value.response["error"] == "invalid_blocks"

    # One "Pay" action_id per invoice row is fine: uniqueness is per block.
    rows = await web.chat_postMessage(channel="C_BILLING", text="rows", blocks=[pay_buttons("1"), pay_buttons("2")])
    assert rows["ok"]

    rejected = [c for c in await slack.calls("chat.postMessage") if not c["ok"]]
    assert len(rejected) == 3  # rejected calls are recorded too


async def test_modal_limits(slack: StandInClient, web: AsyncWebClient) -> None:
    cmd = await slack.command("U_FINANCE", "pay")
    too_many = {"type": "modal", "title": {"type": "plain_text", "text": "Invoices"},
                "blocks": [section("x")] * 101}
    with pytest.raises(SlackApiError) as err:
        await web.views_open(trigger_id=cmd["trigger_id"], view=too_many)
    assert err.value.response["error"] == "invalid_arguments"
    assert any("at most 100 blocks" in m for m in err.value.response["response_metadata"]["messages"])

    no_submit = pay_modal()
    del no_submit["submit"]
    long_title = pay_modal(title="Pay the invoice right now!")  # 26 chars > 24
    for view in (no_submit, long_title):
        with pytest.raises(SlackApiError) as err:
            await web.views_open(trigger_id=cmd["trigger_id"], view=view)
        assert err.value.response["error"] == "invalid_arguments"

    # Rejected views did not use up the trigger.
    opened = await web.views_open(trigger_id=cmd["trigger_id"], view={**too_many, "blocks": [section("x")] * 100})
    assert opened["view"]["id"].startswith("V")


# --- trigger ids, views ---------------------------------------------------------------------


async def test_trigger_id_single_use_and_three_second_expiry(slack: StandInClient, web: AsyncWebClient) -> None:
    first = await slack.command("U_FINANCE", "pay")
    await web.views_open(trigger_id=first["trigger_id"], view=pay_modal())
    with pytest.raises(SlackApiError) as err:
        await web.views_open(trigger_id=first["trigger_id"], view=pay_modal())
    assert err.value.response["error"] == "trigger_exchanged"

    late = await slack.command("U_FINANCE", "pay")
    await slack.advance_clock(3.1)
    with pytest.raises(SlackApiError) as err:
        await web.views_open(trigger_id=late["trigger_id"], view=pay_modal())
    assert err.value.response["error"] == "expired_trigger_id"

    with pytest.raises(SlackApiError) as err:
        await web.views_open(trigger_id="123.456.made-up", view=pay_modal())
    assert err.value.response["error"] == "invalid_trigger_id"


async def test_minted_triggers_and_response_urls_for_load_generators(
    slack: StandInClient, web: AsyncWebClient
) -> None:
    minted = await slack.issue_triggers([{"user_id": "U_FINANCE", "response_url": "command"},
                                         {"user_id": "U_SALES", "response_url": None}])
    assert [m["user_id"] for m in minted] == ["U_FINANCE", "U_SALES"]
    assert minted[0]["channel_id"] == "C_BILLING" and minted[1]["response_url"] is None
    opened = await web.views_open(trigger_id=minted[0]["trigger_id"], view=pay_modal())
    assert (await slack.view(opened["view"]["id"]))["user_id"] == "U_FINANCE"
    with pytest.raises(SlackApiError) as err:  # single use, like any trigger
        await web.views_open(trigger_id=minted[0]["trigger_id"], view=pay_modal())
    assert err.value.response["error"] == "trigger_exchanged"
    await slack.advance_clock(3.1)
    with pytest.raises(SlackApiError) as err:
        await web.views_open(trigger_id=minted[1]["trigger_id"], view=pay_modal())
    assert err.value.response["error"] == "expired_trigger_id"

    async with httpx.AsyncClient() as http:
        posted = await http.post(minted[0]["response_url"], json={"text": "Invoices to pay"})
    assert posted.json() == {"ok": True}
    [message] = await slack.messages(user_id="U_FINANCE")
    assert message["source"] == "response_url" and message["ephemeral"] and message["channel"] == "C_BILLING"

    with pytest.raises(StandInError) as refused:
        await slack.issue_triggers([{"user_id": "U_NOBODY"}])
    assert refused.value.status == 404
    with pytest.raises(StandInError) as refused:
        await slack.issue_triggers([{"user_id": "U_FINANCE", "response_url": "elsewhere"}])
    assert refused.value.status == 400


async def test_views_update_hash_and_external_id(slack: StandInClient, web: AsyncWebClient) -> None:
    view = await open_modal(slack, web, view=pay_modal(external_id="pay-INV-42"))
    assert view["state"]["values"]["amount"]["value"] == {"type": "plain_text_input", "value": "120.00"}
    assert view["state"]["values"]["method"]["choice"] == {"type": "static_select", "selected_option": None}

    renamed = pay_modal(title="Pay INV-42", external_id="pay-INV-42")
    updated = await web.views_update(view_id=view["id"], hash=view["hash"], view=renamed)
    assert updated["view"]["hash"] != view["hash"] and updated["view"]["id"] == view["id"]

    with pytest.raises(SlackApiError) as err:  # stale hash: someone updated it meanwhile
        await web.views_update(view_id=view["id"], hash=view["hash"], view=pay_modal())
    assert err.value.response["error"] == "hash_conflict"

    by_ext = await web.views_update(external_id="pay-INV-42", view=pay_modal(title="Paying…", external_id="pay-INV-42"))
    assert by_ext["view"]["title"]["text"] == "Paying…"
    for kwargs in ({"view_id": "V_UNKNOWN"}, {"external_id": "nope"}):
        with pytest.raises(SlackApiError) as err:
            await web.views_update(view=pay_modal(), **kwargs)
        assert err.value.response["error"] == "not_found"

    current = await slack.view(view["id"])
    assert current["hash"] == by_ext["view"]["hash"] and current["is_open"]


# --- response_url ----------------------------------------------------------------------------------


async def test_response_url_replace_original_and_five_use_limit(
    slack: StandInClient, fake_app: FakeSlackApp
) -> None:
    fake_app.respond = lambda req: JSONResponse(
        {"text": "Open invoices", "blocks": [section("INV-42 €120", "summary"), pay_buttons("42")]}
    )
    cmd = await slack.command("U_FINANCE", "list")
    assert cmd["status"] == 200 and cmd["message"]["ephemeral"] is True
    ephemeral = (await slack.messages(user_id="U_FINANCE"))[0]
    assert ephemeral["source"] == "command_response" and ephemeral["blocks"][1]["block_id"] == "inv_42"

    fake_app.respond = None
    click = await slack.click("U_FINANCE", "pay", message_id=ephemeral["id"])
    assert click["status"] == 200
    payload = fake_app.requests[-1]["payload"]
    assert payload["container"] == {"type": "message", "message_ts": ephemeral["ts"], "channel_id": "C_BILLING",
                                    "is_ephemeral": True}
    assert "message" not in payload  # Slack omits it for ephemeral messages
    assert payload["actions"][0] | {"action_ts": None} == {
        "action_id": "pay", "block_id": "inv_42", "text": {"type": "plain_text", "text": "Pay"},
        "value": "42", "style": "primary", "type": "button", "action_ts": None,
    }

    async with httpx.AsyncClient() as http:
        url = click["response_url"]
        first = await http.post(url, json={"replace_original": True, "text": "INV-42 paid ✅"})
        assert first.status_code == 200 and first.json() == {"ok": True}
        replaced = await slack.messages(user_id="U_FINANCE")
        assert [(m["id"], m["text"], m["blocks"]) for m in replaced] == [(ephemeral["id"], "INV-42 paid ✅", [])]

        bad = await http.post(url, json={"blocks": [section("x" * 3001)]})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_blocks"  # not counted as a use
        for _ in range(4):
            assert (await http.post(url, json={"text": "update"})).status_code == 200
        used = await http.post(url, json={"text": "sixth"})
        assert used.status_code == 404 and used.json()["error"] == "used_url"

        await slack.advance_clock(30 * 60 + 1)
        expired = await http.post(cmd["response_url"], json={"text": "too late"})
        assert expired.status_code == 404 and expired.json()["error"] == "expired_url"
    assert len([c for c in await slack.calls("response_url") if c["ok"]]) == 5


# --- signatures, retries, timeouts ---------------------------------------------------------------


async def test_requests_are_signed_like_slack(slack: StandInClient, fake_app: FakeSlackApp) -> None:
    ok = await slack.command("U_EU", "list", channel_id="C_PRIVATE")
    form = fake_app.requests[-1]
    assert ok["status"] == 200 and form["valid"]
    assert list(form["payload"]) == [
        "token", "team_id", "team_domain", "channel_id", "channel_name", "user_id", "user_name", "command",
        "text", "api_app_id", "is_enterprise_install", "response_url", "trigger_id",
    ]
    assert form["payload"]["channel_name"] == "finance-private" and form["payload"]["command"] == "/invoices"
    assert form["headers"]["content-type"] == "application/x-www-form-urlencoded"

    unsigned = await slack.command("U_EU", "list", sign=False)
    forged = await slack.command("U_EU", "list", signature="v0=" + "0" * 64)
    stale = await slack.command("U_EU", "list", timestamp=int(time.time()) - 600)
    assert [r["status"] for r in (unsigned, forged, stale)] == [401, 401, 401]
    assert [r["valid"] for r in fake_app.requests[-3:]] == [False, False, False]

    retried = await slack.command("U_EU", "list", retry_num=1, retry_reason="http_timeout")
    headers = fake_app.requests[-1]["headers"]
    assert retried["status"] == 200
    assert headers["x-slack-retry-num"] == "1" and headers["x-slack-retry-reason"] == "http_timeout"

    # raw_payload goes out verbatim (and correctly signed) for security tests.
    raw = await slack.command("U_EU", raw_payload={"command": "/invoices", "user_id": "U_EVIL"})
    assert fake_app.requests[-1]["payload"] == {"command": "/invoices", "user_id": "U_EVIL"}
    assert raw["status"] == 200 and fake_app.requests[-1]["valid"]


async def test_slow_app_times_out_like_slack(slack: StandInClient, fake_app: FakeSlackApp) -> None:
    assert (await slack.configure())["app_timeout_s"] == 3.0  # Slack's real patience
    await slack.configure(app_timeout_s=0.3)  # keep the test fast

    async def slow(_: dict[str, Any]) -> Response:
        await asyncio.sleep(0.6)
        return Response(status_code=200)

    fake_app.respond = slow
    result = await slack.command("U_FINANCE", "list")
    assert result["status"] is None and result["error"] == "timeout"
    assert 250 < result["elapsed_ms"] < 600
    shown = await slack.messages(user_id="U_FINANCE")
    assert shown[-1]["source"] == "slack_error" and "operation_timeout" in shown[-1]["text"]


# --- view submissions ----------------------------------------------------------------------------


async def test_submit_payload_errors_update_and_close(
    slack: StandInClient, web: AsyncWebClient, fake_app: FakeSlackApp
) -> None:
    view = await open_modal(slack, web)
    fake_app.respond = lambda req: JSONResponse(
        {"response_action": "errors", "errors": {"amount": "Amount exceeds the open balance"}}
    )
    result = await slack.submit("U_FINANCE", view["id"], {"amount": {"value": "999"}, "method": {"choice": "sepa"}})
    sent = fake_app.requests[-1]["payload"]
    assert sent["type"] == "view_submission" and sent["view"]["id"] == view["id"]
    assert sent["view"]["hash"] == view["hash"] and sent["view"]["private_metadata"] == "inv_42"
    assert sent["view"]["state"]["values"] == {
        "amount": {"value": {"type": "plain_text_input", "value": "999"}},
        "method": {"choice": {"type": "static_select", "selected_option": METHOD_OPTIONS[1]}},
        "note": {"text": {"type": "plain_text_input", "value": None}},
    }
    assert result["applied"] == "errors"
    assert (await slack.view(view["id"]))["errors"] == {"amount": "Amount exceeds the open balance"}

    # Errors naming a non-input block make the whole response unusable.
    fake_app.respond = lambda req: JSONResponse({"response_action": "errors", "errors": {"summary": "nope"}})
    bad = await slack.submit("U_FINANCE", view["id"])
    assert bad["applied"] == "invalid" and bad["view"]["last_response_error"]

    fake_app.respond = lambda req: JSONResponse({"response_action": "update", "view": pay_modal(title="Confirm")})
    updated = await slack.submit("U_FINANCE", view["id"])
    assert updated["applied"] == "update"
    state = await slack.view(view["id"])
    assert state["view"]["title"]["text"] == "Confirm" and state["hash"] != view["hash"]
    # What the user typed survives an update with the same block_id/action_id.
    assert state["view"]["state"]["values"]["amount"]["value"]["value"] == "999"

    fake_app.respond = None  # empty 200 closes the modal
    closed = await slack.submit("U_FINANCE", view["id"])
    assert closed["applied"] == "close" and closed["top_view_id"] is None
    assert (await slack.view(view["id"]))["is_open"] is False
    with pytest.raises(StandInError):
        await slack.submit("U_FINANCE", view["id"])


async def test_submit_push_clear_and_client_side_validation(
    slack: StandInClient, web: AsyncWebClient, fake_app: FakeSlackApp
) -> None:
    view = await open_modal(slack, web)
    before = len(fake_app.requests)
    blocked = await slack.submit("U_FINANCE", view["id"], {"amount": {"value": ""}})
    assert blocked["error"] == "client_validation" and set(blocked["client_errors"]) == {"amount", "method"}
    assert len(fake_app.requests) == before  # the Slack client never sent it

    confirm = {"type": "modal", "title": {"type": "plain_text", "text": "Done"}, "blocks": [section("Paid")]}
    fake_app.respond = lambda req: JSONResponse({"response_action": "push", "view": confirm})
    pushed = await slack.submit("U_FINANCE", view["id"], {"amount": {"value": "120"}, "method": {"choice": "card"}})
    assert pushed["applied"] == "push" and pushed["top_view_id"] != view["id"]
    top = await slack.view(pushed["top_view_id"])
    assert top["view"]["previous_view_id"] == view["id"] and top["stack"] == [view["id"], top["id"]]

    fake_app.respond = lambda req: JSONResponse({"response_action": "clear"})
    cleared = await slack.submit("U_FINANCE", top["id"])
    assert cleared["applied"] == "clear" and cleared["top_view_id"] is None


async def test_click_in_modal_carries_view_and_state(
    slack: StandInClient, web: AsyncWebClient, fake_app: FakeSlackApp
) -> None:
    modal = pay_modal()
    modal["blocks"].append({"type": "actions", "block_id": "tools", "elements": [
        {"type": "static_select", "action_id": "currency", "placeholder": {"type": "plain_text", "text": "Currency"},
         "options": [{"text": {"type": "plain_text", "text": "EUR"}, "value": "EUR"},
                     {"text": {"type": "plain_text", "text": "USD"}, "value": "USD"}]},
    ]})
    view = await open_modal(slack, web, view=modal)
    click = await slack.click("U_FINANCE", "currency", view_id=view["id"], selected_option="USD")
    payload = fake_app.requests[-1]["payload"]
    assert click["status"] == 200 and click["response_url"] is None
    assert payload["container"] == {"type": "view", "view_id": view["id"]}
    assert "response_url" not in payload and "message" not in payload
    assert payload["actions"][0]["selected_option"]["value"] == "USD"
    assert payload["view"]["state"]["values"]["tools"]["currency"]["selected_option"]["value"] == "USD"

    # A trigger from inside the modal can push a view onto it.
    pushed = await web.views_push(trigger_id=click["trigger_id"], view={
        "type": "modal", "title": {"type": "plain_text", "text": "FX"}, "blocks": [section("1 EUR = 1.08 USD")]})
    assert pushed["view"]["root_view_id"] == view["id"]


async def test_click_on_channel_message(slack: StandInClient, web: AsyncWebClient, fake_app: FakeSlackApp) -> None:
    posted = await web.chat_postMessage(channel="C_BILLING", text="INV-7 due", blocks=[pay_buttons("7")])
    msg = (await slack.messages(channel="C_BILLING"))[0]
    assert msg["ts"] == posted["ts"]
    await slack.click("U_SALES", "pay", message_id=posted["ts"])
    payload = fake_app.requests[-1]["payload"]
    assert payload["channel"] == {"id": "C_BILLING", "name": "billing"}
    assert payload["message"]["ts"] == posted["ts"] and payload["message"]["blocks"] == msg["blocks"]
    assert payload["user"]["id"] == "U_SALES" and payload["api_app_id"] and payload["trigger_id"]

    with pytest.raises(StandInError) as err:  # users can't click what they can't see
        eph = await web.chat_postEphemeral(channel="C_BILLING", user="U_FINANCE", text="x", blocks=[pay_buttons("8")])
        await slack.click("U_SALES", "pay", message_id=eph["message_ts"])
    assert err.value.status == 403


async def test_app_calls_web_api_while_handling_and_gets_view_closed(
    slack: StandInClient, fake_app: FakeSlackApp
) -> None:
    async def open_from_handler(req: dict[str, Any]) -> Response:
        # Like a Bolt handler: use the trigger before acking (within Slack's 3 s).
        bot = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
        await bot.views_open(trigger_id=req["payload"]["trigger_id"], view=pay_modal(notify_on_close=True))
        return Response(status_code=200)

    fake_app.respond = open_from_handler
    cmd = await slack.command("U_FINANCE", "pay INV-42")
    assert cmd["status"] == 200 and cmd["message"] is None
    [view] = await slack.views("U_FINANCE", open_only=True)

    fake_app.respond = None
    closed = await slack.close("U_FINANCE", view["id"])
    assert closed["notified"] and fake_app.requests[-1]["type"] == "view_closed"
    assert fake_app.requests[-1]["payload"]["view"]["id"] == view["id"]
    assert (await slack.view(view["id"]))["closed_reason"] == "closed"


# --- faults & rate limits ------------------------------------------------------------------------------


async def test_fault_injection_429_with_retry_after(slack: StandInClient, web: AsyncWebClient) -> None:
    await slack.set_faults("chat.postMessage", status=429, count=2, retry_after=7)
    for _ in range(2):
        with pytest.raises(SlackApiError) as err:
            await web.chat_postMessage(channel="C_BILLING", text="hi")
        assert err.value.response.status_code == 429
        assert err.value.response["error"] == "ratelimited"
        assert err.value.response.headers["retry-after"] in ("7", ["7"])
    assert (await web.chat_postMessage(channel="C_BILLING", text="hi"))["ok"]

    await slack.set_faults("views.open", status=503, count=1)
    cmd = await slack.command("U_FINANCE", "pay")
    with pytest.raises(SlackApiError) as err:
        await web.views_open(trigger_id=cmd["trigger_id"], view=pay_modal())
    assert err.value.response.status_code == 503
    await slack.clear_faults()
    statuses = [c["http_status"] for c in await slack.calls("chat.postMessage")]
    assert statuses == [429, 429, 200]


async def test_channel_rate_limit_with_sped_up_clock(slack: StandInClient, web: AsyncWebClient) -> None:
    config = await slack.configure(channel_rate_limit=True, clock_speed=10.0)
    assert config["clock_speed"] == 10.0
    await web.chat_postMessage(channel="C_BILLING", text="first")
    with pytest.raises(SlackApiError) as err:
        await web.chat_postMessage(channel="C_BILLING", text="second")
    assert err.value.response.status_code == 429
    real_wait = float(err.value.response.headers["x-standin-retry-after-real"])
    assert int(err.value.response.headers["retry-after"]) == 1 and real_wait <= 0.1
    assert (await web.chat_postMessage(channel="U_FINANCE", text="other channel"))["ok"]

    await asyncio.sleep(0.12)  # 1.2 s on the stand-in clock
    assert (await web.chat_postMessage(channel="C_BILLING", text="second, later"))["ok"]


async def test_should_escape_commands_get_channel_and_user_links_like_slack(
    slack: StandInClient, fake_app: FakeSlackApp
) -> None:
    await slack.add_user("U_OTHER_TEAM", "eu.accountant", "x@other.example", team_id="T0002")
    typed = "notify #billing @eu.accountant, #finance-private @invoicebot #nowhere @nobody x#y a@b.c <#C_BILLING|b>"
    await slack.command("U_FINANCE", typed)
    sent = fake_app.requests[-1]["payload"]["text"]
    assert sent == ("notify <#C_BILLING|billing> <@U_EU|eu.accountant>, <#C_PRIVATE|finance-private> "
                    "<@U0BOT|invoicebot> #nowhere @nobody x#y a@b.c <#C_BILLING|b>")

    # A private channel is only linked for its members (U_EU is not in #finance-private).
    await slack.command("U_EU", "notify #finance-private")
    assert fake_app.requests[-1]["payload"]["text"] == "notify #finance-private"

    # A command without should_escape gets the text as typed.
    await slack.configure(escaped_commands=[])
    await slack.command("U_FINANCE", "notify #billing @invoicebot")
    assert fake_app.requests[-1]["payload"]["text"] == "notify #billing @invoicebot"


async def test_invite_adds_the_app_to_a_channel(slack: StandInClient, web: AsyncWebClient,
                                                fake_app: FakeSlackApp) -> None:
    with pytest.raises(SlackApiError, match="not_in_channel"):
        await web.chat_postMessage(channel="C_PRIVATE", text="before")
    with pytest.raises(SlackApiError, match="channel_not_found"):  # a private channel the bot is not in
        await web.conversations_info(channel="C_PRIVATE")

    invited = await slack.invite("U_FINANCE", "C_PRIVATE", "@invoicebot")
    assert invited["ok"] and invited["invited"] == ["U0BOT"]
    assert (await web.conversations_info(channel="C_PRIVATE"))["channel"]["is_member"] is True
    assert (await web.chat_postMessage(channel="C_PRIVATE", text="after"))["ok"]
    [joined] = [m for m in await slack.messages(channel="C_PRIVATE") if m["source"] == "channel_join"]
    assert joined["text"] == ("<@U0BOT|invoicebot> was added to <#C_PRIVATE|finance-private> "
                              "by <@U_FINANCE|finance>.") and not joined["ephemeral"]

    again = await slack.invite("U_FINANCE", "C_PRIVATE", "<@U0BOT>")  # a link from the autocomplete
    assert not again["ok"]
    nobody = await slack.invite("U_FINANCE", "C_BILLING", "@nobody")
    assert not nobody["ok"] and nobody["error"] == "no_user"
    notes = [m["text"] for m in await slack.messages(visible_to="U_FINANCE") if m["source"] == "slack_error"]
    assert notes[0] == "@invoicebot is already in this channel." and "/invite @invoicebot" in notes[1]
    assert not [r for r in fake_app.requests if "invite" in r["raw"]]  # a Slack feature: the app hears nothing
    with pytest.raises(StandInError, match="not a member"):
        await slack.invite("U_EU", "C_PRIVATE", "@invoicebot")
