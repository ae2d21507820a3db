"""The Slack stand-in's workspaces, OAuth v2 install and uninstall over real HTTP.

A tiny Starlette app plays the bot side the way Bolt's OAuth flow does: its
/slack/oauth_redirect exchanges the code with slack_sdk's AsyncWebClient
(oauth.v2.access, client credentials as HTTP Basic auth) and keeps the bot token
per team; its /slack/events verifies Slack signatures and records event callbacks.
"""

from __future__ import annotations

import json
import secrets
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store import FileInstallationStore
from slack_sdk.oauth.state_store import FileOAuthStateStore
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sandbox.slack import ServerThread, StandInClient, StandInError, StandInState, start_standin

pytestmark = pytest.mark.asyncio(loop_scope="session")

BOT_TOKEN = "xoxb-default-team"
SIGNING_SECRET = "oauth-test-signing-secret"
CLIENT_ID = "1234.5678"
CLIENT_SECRET = "s3cr3t"
SCOPES = "commands,chat:write,users:read,users:read.email,channels:read"
OAUTH_KEYS = {"ok", "access_token", "token_type", "scope", "bot_user_id", "app_id", "team", "enterprise",
              "is_enterprise_install", "authed_user"}


class BotSide:
    """What Bolt does with OAuth: exchange the code, keep one installation per team."""

    def __init__(self) -> None:
        self.verifier = SignatureVerifier(SIGNING_SECRET)
        self.api_url = ""
        self.url = ""
        self.installations: dict[str, dict[str, Any]] = {}  # team id -> oauth.v2.access answer
        self.states: set[str] = set()
        self.events: list[dict[str, Any]] = []
        self.echo_challenge = True

    async def oauth_redirect(self, request: Request) -> Response:
        q = request.query_params
        if q.get("state") not in self.states:
            return PlainTextResponse("bad state", status_code=400)
        self.states.discard(q["state"])
        if "error" in q:
            return PlainTextResponse(q["error"], status_code=403)
        client = AsyncWebClient(base_url=self.api_url)
        try:
            answer = await client.oauth_v2_access(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=q["code"],
                                                  redirect_uri=f"{self.url}/slack/oauth_redirect")
            auth = await client.auth_test(token=answer["access_token"])  # Bolt does this to learn bot_id
        except SlackApiError as exc:
            return PlainTextResponse(exc.response["error"], status_code=400)
        self.installations[answer["team"]["id"]] = {**answer.data, "bot_id": auth["bot_id"]}
        return PlainTextResponse("installed")

    async def events_endpoint(self, request: Request) -> Response:
        raw = (await request.body()).decode()
        headers = request.headers
        valid = self.verifier.is_valid(raw, headers.get("x-slack-request-timestamp"),
                                       headers.get("x-slack-signature"))
        if "json" not in headers.get("content-type", ""):
            return Response(status_code=200)  # slash commands / interactivity: just ack
        body = json.loads(raw)
        self.events.append({"valid": valid, "content_type": headers.get("content-type"), "body": body})
        if not valid:
            return PlainTextResponse("invalid signature", status_code=401)
        if body.get("type") == "url_verification":
            return JSONResponse({"challenge": body["challenge"] if self.echo_challenge else "nope"})
        return Response(status_code=200)

    def asgi(self) -> Starlette:
        return Starlette(routes=[
            Route("/slack/oauth_redirect", self.oauth_redirect, methods=["GET"]),
            Route("/slack/events", self.events_endpoint, methods=["POST"]),
        ])


@pytest.fixture(scope="module")
def bot_side() -> Iterator[BotSide]:
    bot = BotSide()
    with ServerThread(bot.asgi()) as server:
        bot.url = server.url
        yield bot


@pytest.fixture(scope="module")
def standin_url(bot_side: BotSide) -> Iterator[str]:
    state = StandInState.with_demo_data(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET,
                                        request_url=f"{bot_side.url}/slack/events")
    server = start_standin(state)
    bot_side.api_url = f"{server.url}/api/"
    yield server.url
    server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def slack(standin_url: str, bot_side: BotSide) -> AsyncIterator[StandInClient]:
    async with StandInClient(standin_url) as client:
        await client.reset()
        await client.configure(request_url=f"{bot_side.url}/slack/events")
        await client.configure_oauth(CLIENT_ID, CLIENT_SECRET, f"{bot_side.url}/slack/oauth_redirect")
        bot_side.installations.clear()
        bot_side.events.clear()
        bot_side.echo_challenge = True
        yield client


async def add_globex(slack: StandInClient) -> None:
    """A second workspace with its own people and a #billing of its own."""
    await slack.add_team("T0002", "globex")
    await slack.add_user("U_G_FIN", "g.finance", "finance@globex.example", team_id="T0002")
    await slack.add_channel("C_G_BILLING", "billing", team_id="T0002")


async def install_via_bot(slack: StandInClient, bot: BotSide, team_id: str, **kwargs: Any) -> dict[str, Any]:
    """Browser side of the flow: Allow on the stand-in, follow the redirect to the bot."""
    state = secrets.token_urlsafe(8)
    bot.states.add(state)
    location = await slack.authorize(team_id, CLIENT_ID, SCOPES, state, **kwargs)
    async with httpx.AsyncClient() as browser:
        resp = await browser.get(location)
    assert resp.status_code == 200, resp.text
    return bot.installations[team_id]


def query(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


# --- install -----------------------------------------------------------------------------


async def test_oauth_install_issues_a_team_scoped_bot_token(slack: StandInClient, bot_side: BotSide) -> None:
    await add_globex(slack)
    location = await slack.authorize("T0002", CLIENT_ID, SCOPES, "st-1")
    assert location.startswith(f"{bot_side.url}/slack/oauth_redirect?")  # the configured Redirect URL
    assert query(location)["state"] == "st-1" and query(location)["code"]

    inst = await install_via_bot(slack, bot_side, "T0002")
    assert set(inst) - {"bot_id"} == OAUTH_KEYS
    assert inst["access_token"].startswith("xoxb-T0002-") and inst["access_token"] != BOT_TOKEN
    assert inst["token_type"] == "bot" and inst["scope"] == SCOPES
    assert inst["team"] == {"id": "T0002", "name": "Globex"}
    assert inst["enterprise"] is None and inst["is_enterprise_install"] is False
    assert inst["app_id"] == "A0INVOICEBOT" and inst["bot_user_id"] == "U0BOT0002" and inst["bot_id"] == "B0BOT0002"
    assert inst["authed_user"] == {"id": "U_G_FIN"}  # no user scopes -> no user token

    web = AsyncWebClient(token=inst["access_token"], base_url=slack.api_url)
    auth = await web.auth_test()
    assert (auth["team_id"], auth["user_id"], auth["bot_id"]) == ("T0002", "U0BOT0002", "B0BOT0002")
    assert auth.headers["x-oauth-scopes"] == SCOPES  # Bolt reads bot scopes from this header
    assert (await web.users_info(user="U_G_FIN"))["user"]["profile"]["email"] == "finance@globex.example"

    exchange = (await slack.calls("oauth.v2.access"))[-1]
    assert exchange["ok"] and exchange["team_id"] == "T0002"
    assert exchange["params"]["client_id"] == CLIENT_ID  # came as HTTP Basic auth from slack_sdk
    assert exchange["params"]["client_secret"] == "(redacted)"
    team = await slack.team("T0002")
    assert team["installed"] and team["bot_token"] == inst["access_token"]


async def test_oauth_errors_secret_code_reuse_redirect_and_expiry(slack: StandInClient) -> None:
    await add_globex(slack)
    code = query(await slack.authorize("T0002", CLIENT_ID, SCOPES, "x"))["code"]
    async with httpx.AsyncClient(base_url=slack.api_url) as raw:
        async def exchange(**form: str) -> dict[str, Any]:
            return (await raw.post("oauth.v2.access", data=form)).json()

        assert (await exchange(client_id=CLIENT_ID, client_secret="wrong", code=code))["error"] == "bad_client_secret"
        assert (await exchange(client_id="9.9", client_secret=CLIENT_SECRET, code=code))["error"] == "invalid_client_id"
        unknown = await exchange(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code="nope")
        assert unknown["error"] == "invalid_code"
        bad_uri = await exchange(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=code,
                                 redirect_uri="http://evil.example/cb")
        assert bad_uri["error"] == "bad_redirect_uri"
        # Refused attempts do not burn the code; form params work as well as Basic auth.
        first = await exchange(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=code)
        assert first["ok"] and first["team"]["id"] == "T0002"
        assert (await exchange(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=code))["error"] == "invalid_code"

        # A redirect_uri sent to the authorize step must be sent again, identically.
        explicit = "http://127.0.0.1:1/slack/oauth_redirect"
        await slack.configure_oauth(redirect_uri="")  # nothing configured: any redirect_uri is accepted
        code2 = query(await slack.authorize("T0002", CLIENT_ID, SCOPES, "y", explicit))["code"]
        assert (await exchange(client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                               code=code2))["error"] == "bad_redirect_uri"
        # Codes live ten minutes (stand-in clock).
        code3 = query(await slack.authorize("T0002", CLIENT_ID, SCOPES, "z", explicit))["code"]
        await slack.advance_clock(601)
        assert (await exchange(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=code3,
                               redirect_uri=explicit))["error"] == "invalid_code"

    with pytest.raises(StandInError) as err:
        await slack.authorize("T0002", "9.9", SCOPES, "x")
    assert err.value.status == 400 and err.value.message == "invalid_client_id"
    with pytest.raises(StandInError) as err:
        await slack.authorize("T0002", CLIENT_ID, SCOPES, "x")  # no redirect_uri, none configured any more
    assert err.value.message == "bad_redirect_uri"
    with pytest.raises(StandInError) as err:
        await slack.authorize("T9999", CLIENT_ID, SCOPES, "x", explicit)
    assert err.value.message == "invalid_team"


async def test_reinstall_replaces_the_token_and_user_scopes_get_a_user_token(
    slack: StandInClient, bot_side: BotSide
) -> None:
    # Reinstalling into the default team replaces the configured token.
    inst = await install_via_bot(slack, bot_side, "T0001", user_scope="users:read")
    assert inst["team"] == {"id": "T0001", "name": "Acme"} and inst["bot_user_id"] == "U0BOT"
    assert inst["authed_user"]["id"] == "U_FINANCE"
    assert inst["authed_user"]["token_type"] == "user" and inst["authed_user"]["scope"] == "users:read"
    assert inst["authed_user"]["access_token"].startswith("xoxp-T0001-")
    with pytest.raises(SlackApiError) as err:
        await AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url).auth_test()
    assert err.value.response["error"] == "token_revoked"
    as_user = await AsyncWebClient(token=inst["authed_user"]["access_token"], base_url=slack.api_url).auth_test()
    assert as_user["user_id"] == "U_FINANCE" and "bot_id" not in as_user

    # A token only does what its scopes allow.
    narrow = await slack.install("T0001", "commands,chat:write,users:read")
    web = AsyncWebClient(token=narrow["access_token"], base_url=slack.api_url)
    assert "email" not in (await web.users_info(user="U_FINANCE"))["user"]["profile"]  # no users:read.email
    with pytest.raises(SlackApiError) as err:
        await web.conversations_info(channel="C_BILLING")
    assert err.value.response["error"] == "missing_scope" and err.value.response["needed"] == "channels:read"


# --- several workspaces ------------------------------------------------------------------


async def test_each_token_sees_only_its_own_workspace(slack: StandInClient) -> None:
    await add_globex(slack)
    globex_token = (await slack.install("T0002", SCOPES))["access_token"]
    acme = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    globex = AsyncWebClient(token=globex_token, base_url=slack.api_url)

    for web, user in ((acme, "U_G_FIN"), (globex, "U_FINANCE")):
        with pytest.raises(SlackApiError) as err:
            await web.users_info(user=user)
        assert err.value.response["error"] == "user_not_found"
    for web, channel in ((acme, "C_G_BILLING"), (globex, "C_BILLING"), (globex, "U_FINANCE")):
        with pytest.raises(SlackApiError) as err:
            await web.chat_postMessage(channel=channel, text="hi")
        assert err.value.response["error"] == "channel_not_found"
    # "#billing" is each workspace's own channel.
    assert (await acme.chat_postMessage(channel="#billing", text="acme"))["channel"] == "C_BILLING"
    posted = await globex.chat_postMessage(channel="#billing", text="globex")
    assert posted["channel"] == "C_G_BILLING"
    assert posted["message"]["team"] == "T0002" and posted["message"]["bot_id"] == "B0BOT0002"

    since = (await slack.calls())[-1]["seq"]
    await acme.auth_test()
    await globex.auth_test()
    answered = [(c["team_id"], c["response"]["team_id"]) for c in await slack.calls("auth.test", since=since)]
    assert answered == [("T0001", "T0001"), ("T0002", "T0002")]  # each request answered with its own token

    # Triggers and views belong to the workspace of the user who made them.
    cmd = await slack.command("U_G_FIN", "list")
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Pay"}, "blocks": []}
    with pytest.raises(SlackApiError) as err:
        await acme.views_open(trigger_id=cmd["trigger_id"], view=modal)
    assert err.value.response["error"] == "invalid_trigger_id"
    view = (await globex.views_open(trigger_id=cmd["trigger_id"], view=modal))["view"]
    assert (view["team_id"], view["app_installed_team_id"], view["bot_id"]) == ("T0002", "T0002", "B0BOT0002")
    with pytest.raises(SlackApiError) as err:
        await acme.views_update(view_id=view["id"], view=modal)
    assert err.value.response["error"] == "not_found"


async def test_payloads_carry_the_acting_users_workspace(slack: StandInClient, bot_side: BotSide) -> None:
    await add_globex(slack)
    globex = AsyncWebClient(token=(await slack.install("T0002", SCOPES))["access_token"], base_url=slack.api_url)

    cmd = await slack.command("U_G_FIN", "list")
    assert cmd["payload"]["team_id"] == "T0002" and cmd["payload"]["team_domain"] == "globex"
    assert cmd["payload"]["channel_id"] == "C_G_BILLING" and cmd["payload"]["api_app_id"] == "A0INVOICEBOT"
    assert (await slack.deliveries())[-1]["team_id"] == "T0002"
    acme_cmd = await slack.command("U_FINANCE", "list")
    assert acme_cmd["payload"]["team_id"] == "T0001" and acme_cmd["payload"]["channel_id"] == "C_BILLING"
    with pytest.raises(StandInError) as err:  # another workspace's channel
        await slack.command("U_G_FIN", "list", channel_id="C_BILLING")
    assert err.value.status == 404

    button = {"type": "actions", "block_id": "b", "elements": [
        {"type": "button", "action_id": "pay", "text": {"type": "plain_text", "text": "Pay"}, "value": "inv"}]}
    posted = await globex.chat_postMessage(channel="C_G_BILLING", text="inv", blocks=[button])
    msg = (await slack.messages("C_G_BILLING"))[-1]
    assert msg["ts"] == posted["ts"]
    click = (await slack.click("U_G_FIN", "pay", message_id=msg["id"]))["payload"]
    assert click["team"] == {"id": "T0002", "domain": "globex"} and click["user"]["team_id"] == "T0002"
    assert click["message"]["team"] == "T0002" and click["api_app_id"] == "A0INVOICEBOT"

    modal = {"type": "modal", "callback_id": "c", "title": {"type": "plain_text", "text": "Pay"},
             "submit": {"type": "plain_text", "text": "Pay"}, "blocks": [
                 {"type": "input", "block_id": "amount", "label": {"type": "plain_text", "text": "Amount"},
                  "element": {"type": "plain_text_input", "action_id": "v"}}]}
    cmd = await slack.command("U_G_FIN", "pay")
    view = (await globex.views_open(trigger_id=cmd["trigger_id"], view=modal))["view"]
    submit = (await slack.submit("U_G_FIN", view["id"], {"amount": {"v": "12"}}))["payload"]
    assert submit["team"]["id"] == "T0002" and submit["user"]["team_id"] == "T0002"
    assert submit["view"]["team_id"] == "T0002" and submit["view"]["app_installed_team_id"] == "T0002"

    await slack.add_team("T0003", "initech")  # a workspace without the app sends nothing
    await slack.add_user("U_I_1", "ini", team_id="T0003")
    with pytest.raises(StandInError) as err:
        await slack.command("U_I_1", "list")
    assert err.value.status == 409


# --- uninstall & url_verification ------------------------------------------------------------


async def test_uninstall_revokes_tokens_and_sends_signed_events(slack: StandInClient, bot_side: BotSide) -> None:
    await add_globex(slack)
    inst = await install_via_bot(slack, bot_side, "T0002", user_scope="users:read")
    result = await slack.uninstall("T0002")
    assert result["revoked"] == {"oauth": ["U_G_FIN"], "bot": ["U0BOT0002"]}
    assert [d["status"] for d in result["deliveries"]] == [200, 200]

    assert [e["valid"] for e in bot_side.events] == [True, True]  # slack_sdk SignatureVerifier
    assert {e["content_type"] for e in bot_side.events} == {"application/json"}
    revoked, uninstalled = (e["body"] for e in bot_side.events)
    for body in (revoked, uninstalled):
        assert body["type"] == "event_callback" and body["team_id"] == "T0002"
        assert body["api_app_id"] == "A0INVOICEBOT" and body["token"] == "standin-verification-token"
        assert body["event_id"].startswith("Ev") and isinstance(body["event_time"], int)
    assert revoked["event"]["type"] == "tokens_revoked"
    assert revoked["event"]["tokens"] == {"oauth": ["U_G_FIN"], "bot": ["U0BOT0002"]}
    assert uninstalled["event"]["type"] == "app_uninstalled"
    assert revoked["event_id"] != uninstalled["event_id"]
    assert [d["kind"] for d in (await slack.deliveries())[-2:]] == ["tokens_revoked", "app_uninstalled"]

    for token in (inst["access_token"], inst["authed_user"]["access_token"]):
        with pytest.raises(SlackApiError) as err:
            await AsyncWebClient(token=token, base_url=slack.api_url).auth_test()
        assert err.value.response["error"] == "token_revoked"
    assert (await AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url).auth_test())["team_id"] == "T0001"
    assert not (await slack.team("T0002"))["installed"]
    with pytest.raises(StandInError) as err:
        await slack.uninstall("T0002")
    assert err.value.status == 409
    with pytest.raises(StandInError) as err:
        await slack.command("U_G_FIN", "list")
    assert err.value.status == 409

    again = await install_via_bot(slack, bot_side, "T0002")  # can be installed again
    assert again["access_token"] != inst["access_token"]


async def test_url_verification(slack: StandInClient, bot_side: BotSide) -> None:
    ok = await slack.url_verification("chal-123")
    assert ok["verified"] is True and ok["status"] == 200 and ok["body"] == {"challenge": "chal-123"}
    sent = bot_side.events[-1]
    assert sent["valid"] and sent["body"] == {"token": "standin-verification-token", "challenge": "chal-123",
                                              "type": "url_verification"}
    bot_side.echo_challenge = False
    assert (await slack.url_verification())["verified"] is False


async def test_consent_page_for_browsers(slack: StandInClient, bot_side: BotSide) -> None:
    await add_globex(slack)
    params = {"client_id": CLIENT_ID, "scope": SCOPES, "user_scope": "", "state": "st"}
    async with httpx.AsyncClient(base_url=slack.base_url) as browser:
        page = await browser.get("/oauth/v2/authorize", params=params, headers={"Accept": "text/html"})
        assert page.status_code == 200 and "Allow" in page.text and 'value="T0002"' in page.text
        allow = await browser.post("/oauth/v2/authorize", data={**params, "team": "T0002", "decision": "allow"})
        assert allow.status_code == 302 and query(allow.headers["location"])["code"].startswith("T0002.")
        deny = await browser.post("/oauth/v2/authorize", data={**params, "decision": "deny"})
        assert query(deny.headers["location"]) == {"error": "access_denied", "state": "st"}
    authorize_calls = await slack.calls("oauth/v2/authorize")
    assert [(c["team_id"], c["ok"]) for c in authorize_calls] == [("T0002", True), ("T0001", False)]


# --- the real thing: Bolt's own OAuth flow -----------------------------------------------------


async def test_bolt_oauth_flow_installs_serves_and_forgets_a_workspace(
    slack: StandInClient, tmp_path: Any
) -> None:
    """slack_bolt's AsyncApp with OAuth settings pointed at the stand-in: /slack/install,
    Allow, /slack/oauth_redirect, a command answered with the team's own token, uninstall."""
    bolt_handler: dict[str, AsyncSlackRequestHandler] = {}

    async def endpoint(request: Request) -> Response:
        return await bolt_handler["handler"].handle(request)

    server = ServerThread(Starlette(routes=[Route("/slack/events", endpoint, methods=["POST"]),
                                            Route("/slack/install", endpoint, methods=["GET"]),
                                            Route("/slack/oauth_redirect", endpoint, methods=["GET"])]))
    store = FileInstallationStore(base_dir=str(tmp_path / "installations"), client_id=CLIENT_ID)
    app = AsyncApp(signing_secret=SIGNING_SECRET, client=AsyncWebClient(base_url=slack.api_url),
                   oauth_settings=AsyncOAuthSettings(
                       client_id=CLIENT_ID, client_secret=CLIENT_SECRET, scopes=SCOPES.split(","),
                       installation_store=store, install_page_rendering_enabled=False,
                       state_store=FileOAuthStateStore(expiration_seconds=600, base_dir=str(tmp_path / "states")),
                       authorization_url=f"{slack.base_url}/oauth/v2/authorize",
                       redirect_uri=f"{server.url}/slack/oauth_redirect"))
    app.enable_token_revocation_listeners()

    @app.command("/invoices")
    async def invoices(ack: Any, context: Any) -> None:
        await ack(f"hello {context.team_id}")

    bolt_handler["handler"] = AsyncSlackRequestHandler(app)
    await add_globex(slack)
    with server:
        await slack.configure(request_url=f"{server.url}/slack/events")
        await slack.configure_oauth(redirect_uri=f"{server.url}/slack/oauth_redirect")
        async with httpx.AsyncClient() as browser:
            install = await browser.get(f"{server.url}/slack/install", params={"team": "T0002"})
            assert install.status_code == 302
            allow = await browser.get(install.headers["location"])
            assert allow.status_code == 302
            # Bolt's state cookie is `Secure`: httpx will not send it over http, a browser on
            # localhost would. Hand it over like the browser.
            state = query(allow.headers["location"])["state"]
            done = await browser.get(allow.headers["location"],
                                     headers={"Cookie": f"slack-app-oauth-state={state}"})
            assert done.status_code == 200 and "Thank you" in done.text
        bot = store.find_bot(enterprise_id=None, team_id="T0002")
        assert bot is not None and bot.bot_token.startswith("xoxb-T0002-") and bot.bot_id == "B0BOT0002"

        answer = await slack.command("U_G_FIN", "list")
        assert answer["status"] == 200 and answer["message"]["text"] == "hello T0002"
        assert (await slack.calls("auth.test"))[-1]["team_id"] == "T0002"  # Bolt checked the team's token

        result = await slack.uninstall("T0002")
        assert [(d["kind"], d["status"]) for d in result["deliveries"]] == [("tokens_revoked", 200),
                                                                           ("app_uninstalled", 200)]
        assert store.find_bot(enterprise_id=None, team_id="T0002") is None
