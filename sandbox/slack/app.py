"""HTTP surface of the Slack stand-in.

* ``/api/{method}``      – the Slack Web API the bot's slack_sdk client calls
* ``/response/{token}``  – Slack's response_url receiver
* ``/oauth/v2/authorize`` – the "Add to Slack" / Allow step of OAuth v2 (oauth.py)
* ``/_standin/...``      – control, introspection and "act as a Slack user" (JSON)
* ``/`` and ``/web/...`` – a small Slack-like web page over the above (the demo's UI)
"""

from __future__ import annotations

import base64
import contextlib
import json
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .acting import (
    ActError,
    _command_channel,
    act_click,
    act_close,
    act_command,
    act_invite,
    act_open_home,
    act_submit,
    act_uninstall,
    act_url_verification,
    post_to_response_url,
)
from .oauth import AUTHORIZE_PATH, authorize_endpoint
from .state import Channel, Fault, StandInState, User
from .web_api import call_method, record_call

_ALLOWED_FAULT_STATUSES = {200, 429, 500, 502, 503, 504}
WEB_DIR = Path(__file__).parent / "web"
MAX_WAIT_S = 25.0  # long-poll ceiling for GET /_standin/wait
_NO_CACHE = {"Cache-Control": "no-store"}


def _bad_request(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def create_app(state: StandInState) -> Starlette:
    http: dict[str, httpx.AsyncClient] = {}  # the client "Slack" uses toward the app

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient() as client:
            http["client"] = client
            yield

    def client() -> httpx.AsyncClient:
        if "client" not in http:  # e.g. mounted without lifespan (ASGITransport)
            http["client"] = httpx.AsyncClient()
        return http["client"]

    # --- Web API --------------------------------------------------------------------

    async def web_api(request: Request) -> Response:
        method = request.path_params["method"]
        params: dict[str, Any] = dict(request.query_params)
        body = await request.body()
        ctype = request.headers.get("content-type", "")
        if "application/json" in ctype and body.strip():
            try:
                data = json.loads(body)
            except ValueError:
                return JSONResponse({"ok": False, "error": "invalid_json"})
            if not isinstance(data, dict):
                return JSONResponse({"ok": False, "error": "invalid_json"})
            data.pop("token", None)  # Slack ignores tokens inside JSON bodies
            params.update(data)
        elif body:
            params.update(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        token = params.pop("token", None)
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip() or token
        elif auth.lower().startswith("basic "):  # oauth.v2.access client credentials (preferred by Slack)
            with contextlib.suppress(ValueError):
                client_id, _, client_secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
                params.update(client_id=urllib.parse.unquote(client_id),
                              client_secret=urllib.parse.unquote(client_secret))
        result = call_method(state, method, params, token)
        return JSONResponse(result.body, status_code=result.status, headers=result.headers)

    async def response_url(request: Request) -> Response:
        try:
            body: Any = json.loads(await request.body() or b"null")
        except ValueError:
            body = None
        status, answer = post_to_response_url(state, request.path_params["token"], body)
        # Recorded alongside Web API calls so tests can wait for it the same way.
        token = request.path_params["token"]
        bound = state.response_urls.get(token)
        record_call(state, "response_url", {"token": token, **(body if isinstance(body, dict) else {})},
                    status, answer, team_id=state.team_of_user(bound.user_id).id if bound else None)
        return JSONResponse(answer, status_code=status)

    # --- directory ------------------------------------------------------------------

    async def add_user(request: Request) -> Response:
        data = await _json_body(request)
        if not data.get("id") or not data.get("name"):
            return _bad_request("id and name are required")
        user = User(id=data["id"], name=data["name"], email=data.get("email"),
                    team_id=data.get("team_id", state.team_id), real_name=data.get("real_name"),
                    locale=str(data.get("locale") or "en-US"))
        state.add_user(user)
        state.changed()
        return JSONResponse({"ok": True, "user": user.to_api()})

    async def list_users(request: Request) -> Response:
        return JSONResponse({"users": [u.to_api() for u in state.users.values()]})

    async def add_channel(request: Request) -> Response:
        data = await _json_body(request)
        if not data.get("id") or not data.get("name"):
            return _bad_request("id and name are required")
        channel = Channel(id=data["id"], name=data["name"].removeprefix("#"),
                          is_private=bool(data.get("is_private", False)),
                          bot_is_member=bool(data.get("bot_is_member", True)), members=data.get("members"),
                          team_id=data.get("team_id") or None)
        state.add_channel(channel)
        state.changed()
        return JSONResponse({"ok": True, "channel": channel.to_api()})

    async def list_channels(request: Request) -> Response:
        # Control API only: also who is in it (None: everyone), which the web page needs.
        return JSONResponse({"channels": [{**c.to_api(), "members": c.members, "team_id": c.team_id}
                                          for c in state.channels.values()]})

    # --- workspaces & installations -------------------------------------------------

    async def add_team(request: Request) -> Response:
        data = await _json_body(request)
        team_id = data.get("team_id") or data.get("id")
        if not team_id:
            return _bad_request("team_id is required")
        team = state.add_team(str(team_id), data.get("domain"), data.get("name"), bot_token=data.get("bot_token"),
                              bot_scopes=data.get("bot_scopes"))
        state.changed()
        return JSONResponse({"ok": True, "team": team.to_json()})

    async def list_teams(request: Request) -> Response:
        return JSONResponse({"teams": [t.to_json() for t in state.teams.values()], "default_team_id": state.team_id})

    async def uninstall(request: Request) -> Response:
        try:
            return JSONResponse(await act_uninstall(state, client(), {
                **(await _json_body(request)), "team_id": request.path_params["team_id"]}))
        except ActError as exc:
            return _bad_request(exc.message, exc.status)
        finally:
            state.changed()

    # --- introspection --------------------------------------------------------------

    async def list_calls(request: Request) -> Response:
        method = request.query_params.get("method")
        since = int(request.query_params.get("since", "0"))
        calls = [c.__dict__ for c in state.calls if (not method or c.method == method) and c.seq > since]
        return JSONResponse({"calls": calls})

    async def get_view(request: Request) -> Response:
        view = state.views.get(request.path_params["view_id"])
        if view is None:
            return _bad_request("view not found", 404)
        return JSONResponse(view.to_json(state))

    async def list_views(request: Request) -> Response:
        user_id = request.query_params.get("user_id")
        only_open = request.query_params.get("open") in ("1", "true")
        views = [v.to_json(state) for v in state.views.values()
                 if (not user_id or v.user_id == user_id) and (v.is_open or not only_open)]
        return JSONResponse({"views": views, "stacks": state.view_stacks})

    async def list_messages(request: Request) -> Response:
        q = request.query_params
        channel = state.resolve_channel(q["channel"]) if q.get("channel") else None
        if q.get("channel") and channel is None:
            return JSONResponse({"messages": []})
        include_deleted = q.get("include_deleted") in ("1", "true")
        visible_to = q.get("visible_to")
        out = []
        for m in state.messages:
            if (m.deleted and not include_deleted) or (channel and m.channel != channel.id):
                continue
            if q.get("user_id") and m.user_id != q["user_id"]:
                continue
            if visible_to and m.ephemeral and m.user_id != visible_to:
                continue
            out.append(m.to_json())
        return JSONResponse({"messages": out})

    async def get_message(request: Request) -> Response:
        msg = state.find_message(request.path_params["message_id"])
        return JSONResponse(msg.to_json()) if msg else _bad_request("message not found", 404)

    async def list_deliveries(request: Request) -> Response:
        return JSONResponse({"deliveries": state.deliveries})

    # --- faults, config, clock, reset ---------------------------------------------

    def faults_json() -> dict[str, Any]:
        return {"faults": [f.__dict__ for f in state.faults.values()]}

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            state.faults.clear()
        elif request.method == "POST":
            data = await _json_body(request)
            error = data.get("error")
            status = int(data.get("status", 200 if error else 429))
            if not data.get("method") or status not in _ALLOWED_FAULT_STATUSES or (status == 200 and not error):
                return _bad_request(f"method and status in {sorted(_ALLOWED_FAULT_STATUSES)} are required "
                                    "(200 with an error: one of Slack's ok:false answers)")
            if error is not None and not (isinstance(error, str) and error.replace("_", "").isalnum()):
                return _bad_request("error must be a Slack error code like channel_not_found")
            channel = data.get("channel")
            state.faults[data["method"]] = Fault(data["method"], status, int(data.get("count", 1)),
                                                 int(data.get("retry_after", 1)), error,
                                                 channel if isinstance(channel, str) else None)
        return JSONResponse(faults_json())

    def config_json() -> dict[str, Any]:
        return {**state.config.__dict__, "clock_speed": state.clock.speed, "clock": state.clock.now(),
                "request_url": state.request_url, "oauth_client_id": state.oauth_client_id,
                "oauth_client_secret": state.oauth_client_secret, "oauth_redirect_uri": state.oauth_redirect_uri}

    async def config(request: Request) -> Response:
        if request.method == "PUT":
            data = await _json_body(request)
            if "channel_rate_limit" in data:
                state.config.channel_rate_limit = bool(data["channel_rate_limit"])
            if "app_timeout_s" in data:
                state.config.app_timeout_s = float(data["app_timeout_s"])
            if "escaped_commands" in data:
                state.config.escaped_commands = [str(c) for c in data["escaped_commands"] or []]
            if "request_url" in data:
                state.request_url = str(data["request_url"])
            for key in ("oauth_client_id", "oauth_client_secret"):
                if key in data:
                    setattr(state, key, str(data[key]))
            if "oauth_redirect_uri" in data:
                state.oauth_redirect_uri = str(data["oauth_redirect_uri"]) if data["oauth_redirect_uri"] else None
            if "clock_speed" in data:
                try:
                    state.clock.set_speed(float(data["clock_speed"]))
                except ValueError as exc:
                    return _bad_request(str(exc))
        return JSONResponse(config_json())

    async def advance_clock(request: Request) -> Response:
        data = await _json_body(request)
        state.clock.advance(float(data.get("seconds", 0)))
        return JSONResponse(config_json())

    async def reset(request: Request) -> Response:
        state.reset()
        state.changed()
        return JSONResponse({"ok": True})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "team_id": state.team_id, "request_url": state.request_url})

    # --- minting interaction ids (for load generators) ---------------------------------

    async def issue_triggers(request: Request) -> Response:
        """Mint what Slack mints when a user interacts: a trigger_id (3 s to live) and,
        on request, a response_url. For a load generator that builds, signs and sends the
        interaction requests itself (so only the app is timed, not the stand-in).

        Body: {"user_id": "U1", "response_url": "command" | "block_actions" | null,
        "channel_id": "C..."} or {"requests": [that, ...]} (at most 1000)."""
        data = await _json_body(request)
        wanted = data["requests"] if "requests" in data else [data]
        if not isinstance(wanted, list) or not 1 <= len(wanted) <= 1000:
            return _bad_request("requests must be a list of 1 to 1000 objects")
        plans = []
        for item in wanted:
            if not isinstance(item, dict):
                return _bad_request("each request must be an object")
            user = state.users.get(str(item.get("user_id", "")))
            if user is None:
                return _bad_request(f"unknown user {item.get('user_id')!r}", 404)
            origin = item.get("response_url")
            if origin not in (None, "command", "block_actions"):
                return _bad_request("response_url must be command, block_actions or null")
            try:
                channel = _command_channel(state, user, item.get("channel_id"))
            except ActError as exc:
                return _bad_request(exc.message, exc.status)
            plans.append((user, origin, channel))
        issued = []
        for user, origin, channel in plans:
            trigger = state.issue_trigger(user.id)
            response_url = state.issue_response_url(user.id, channel.id, origin) if origin else None
            issued.append({"trigger_id": trigger.id, "user_id": user.id, "channel_id": channel.id,
                           "channel_name": "directmessage" if channel.is_im else channel.name,
                           "response_url": response_url})
        return JSONResponse({"ok": True, "triggers": issued})

    # --- acting as Slack --------------------------------------------------------------

    def act(fn: Callable[[StandInState, httpx.AsyncClient, dict[str, Any]], Awaitable[dict[str, Any]]]):
        async def endpoint(request: Request) -> Response:
            try:
                data = await _json_body(request)
                return JSONResponse(await fn(state, client(), data))
            except ActError as exc:
                return _bad_request(exc.message, exc.status)
            except ValueError as exc:
                return _bad_request(str(exc))
            finally:
                state.changed()  # e.g. a closed modal changes what the user sees
        return endpoint

    # --- the web page -----------------------------------------------------------------

    async def wait(request: Request) -> Response:
        """Long-poll: answers `{version}` as soon as anything changed after `since`
        (or after `timeout` seconds, at most MAX_WAIT_S)."""
        since = int(request.query_params.get("since", "-1"))
        timeout = min(max(float(request.query_params.get("timeout", "20")), 0.0), MAX_WAIT_S)
        version = await state.wait_for_change(since, timeout)
        return JSONResponse({"version": version}, headers=_NO_CACHE)

    async def get_home(request: Request) -> Response:
        """The Home tab the app published for a user (404 before the first views.publish)."""
        view = state.views.get(state.home_views.get(request.path_params["user_id"], ""))
        if view is None:
            return JSONResponse({"ok": False, "error": "no home view published"}, status_code=404)
        return JSONResponse(view.to_json(state), headers=_NO_CACHE)

    async def page(request: Request) -> Response:
        return FileResponse(WEB_DIR / "index.html", headers=_NO_CACHE)

    routes = [
        Route("/api/{method}", web_api, methods=["GET", "POST"]),
        Route("/response/{token}", response_url, methods=["POST"]),
        Route("/_standin/health", health, methods=["GET"]),
        Route("/_standin/users", add_user, methods=["POST"]),
        Route("/_standin/users", list_users, methods=["GET"]),
        Route("/_standin/channels", add_channel, methods=["POST"]),
        Route("/_standin/channels", list_channels, methods=["GET"]),
        Route("/_standin/teams", add_team, methods=["POST"]),
        Route("/_standin/teams", list_teams, methods=["GET"]),
        Route("/_standin/teams/{team_id}/uninstall", uninstall, methods=["POST"]),
        Route(AUTHORIZE_PATH, authorize_endpoint(state), methods=["GET", "POST"]),
        Route("/_standin/calls", list_calls, methods=["GET"]),
        Route("/_standin/views", list_views, methods=["GET"]),
        Route("/_standin/views/{view_id}", get_view, methods=["GET"]),
        Route("/_standin/messages", list_messages, methods=["GET"]),
        Route("/_standin/messages/{message_id}", get_message, methods=["GET"]),
        Route("/_standin/deliveries", list_deliveries, methods=["GET"]),
        Route("/_standin/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/_standin/config", config, methods=["GET", "PUT"]),
        Route("/_standin/clock/advance", advance_clock, methods=["POST"]),
        Route("/_standin/reset", reset, methods=["POST"]),
        Route("/_standin/triggers", issue_triggers, methods=["POST"]),
        Route("/_standin/act/command", act(act_command), methods=["POST"]),
        Route("/_standin/act/invite", act(act_invite), methods=["POST"]),
        Route("/_standin/act/click", act(act_click), methods=["POST"]),
        Route("/_standin/act/submit", act(act_submit), methods=["POST"]),
        Route("/_standin/act/close", act(act_close), methods=["POST"]),
        Route("/_standin/act/open_home", act(act_open_home), methods=["POST"]),
        Route("/_standin/home/{user_id}", get_home, methods=["GET"]),
        Route("/_standin/act/url_verification", act(act_url_verification), methods=["POST"]),
        Route("/_standin/wait", wait, methods=["GET"]),
        Route("/", page, methods=["GET"]),
        Mount("/web", app=StaticFiles(directory=WEB_DIR), name="web"),
    ]
    async def bad_input(request: Request, exc: Exception) -> Response:
        return _bad_request(f"{type(exc).__name__}: {exc}")

    # Malformed control requests (bad JSON, non-numeric params) are the caller's fault.
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={ValueError: bad_input, KeyError: bad_input, TypeError: bad_input})
    app.state.standin = state
    return app
