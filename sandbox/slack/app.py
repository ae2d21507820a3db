"""HTTP surface of the Slack stand-in.

* ``/api/{method}``      – the Slack Web API the bot's slack_sdk client calls
* ``/response/{token}``  – Slack's response_url receiver
* ``/_standin/...``      – control, introspection and "act as a Slack user" (JSON)
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .acting import ActError, act_click, act_close, act_command, act_submit, post_to_response_url
from .state import Channel, Fault, StandInState, User
from .web_api import call_method, record_call

_ALLOWED_FAULT_STATUSES = {429, 500, 502, 503, 504}


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
        record_call(state, "response_url", {"token": token, **(body if isinstance(body, dict) else {})},
                    status, answer)
        return JSONResponse(answer, status_code=status)

    # --- directory ------------------------------------------------------------------

    async def add_user(request: Request) -> Response:
        data = await _json_body(request)
        if not data.get("id") or not data.get("name"):
            return _bad_request("id and name are required")
        user = User(id=data["id"], name=data["name"], email=data.get("email"),
                    team_id=data.get("team_id", state.team_id), real_name=data.get("real_name"))
        state.add_user(user)
        return JSONResponse({"ok": True, "user": user.to_api()})

    async def list_users(request: Request) -> Response:
        return JSONResponse({"users": [u.to_api() for u in state.users.values()]})

    async def add_channel(request: Request) -> Response:
        data = await _json_body(request)
        if not data.get("id") or not data.get("name"):
            return _bad_request("id and name are required")
        channel = Channel(id=data["id"], name=data["name"].removeprefix("#"),
                          is_private=bool(data.get("is_private", False)),
                          bot_is_member=bool(data.get("bot_is_member", True)), members=data.get("members"))
        state.add_channel(channel)
        return JSONResponse({"ok": True, "channel": channel.to_api()})

    async def list_channels(request: Request) -> Response:
        return JSONResponse({"channels": [c.to_api() for c in state.channels.values()]})

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
            status = int(data.get("status", 429))
            if not data.get("method") or status not in _ALLOWED_FAULT_STATUSES:
                return _bad_request(f"method and status in {sorted(_ALLOWED_FAULT_STATUSES)} are required")
            state.faults[data["method"]] = Fault(data["method"], status, int(data.get("count", 1)),
                                                 int(data.get("retry_after", 1)))
        return JSONResponse(faults_json())

    def config_json() -> dict[str, Any]:
        return {**state.config.__dict__, "clock_speed": state.clock.speed, "clock": state.clock.now(),
                "request_url": state.request_url}

    async def config(request: Request) -> Response:
        if request.method == "PUT":
            data = await _json_body(request)
            if "channel_rate_limit" in data:
                state.config.channel_rate_limit = bool(data["channel_rate_limit"])
            if "app_timeout_s" in data:
                state.config.app_timeout_s = float(data["app_timeout_s"])
            if "request_url" in data:
                state.request_url = str(data["request_url"])
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
        return JSONResponse({"ok": True})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "team_id": state.team_id, "request_url": state.request_url})

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
        return endpoint

    routes = [
        Route("/api/{method}", web_api, methods=["GET", "POST"]),
        Route("/response/{token}", response_url, methods=["POST"]),
        Route("/_standin/health", health, methods=["GET"]),
        Route("/_standin/users", add_user, methods=["POST"]),
        Route("/_standin/users", list_users, methods=["GET"]),
        Route("/_standin/channels", add_channel, methods=["POST"]),
        Route("/_standin/channels", list_channels, methods=["GET"]),
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
        Route("/_standin/act/command", act(act_command), methods=["POST"]),
        Route("/_standin/act/click", act(act_click), methods=["POST"]),
        Route("/_standin/act/submit", act(act_submit), methods=["POST"]),
        Route("/_standin/act/close", act(act_close), methods=["POST"]),
    ]
    async def bad_input(request: Request, exc: Exception) -> Response:
        return _bad_request(f"{type(exc).__name__}: {exc}")

    # Malformed control requests (bad JSON, non-numeric params) are the caller's fault.
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={ValueError: bad_input, KeyError: bad_input, TypeError: bad_input})
    app.state.standin = state
    return app
