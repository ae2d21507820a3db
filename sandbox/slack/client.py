"""Async client for the stand-in's control/act API (`/_standin/...`), for tests."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Callable
from types import TracebackType
from typing import Any

import httpx

from .state import DEFAULT_BOT_SCOPES


class StandInError(Exception):
    """The stand-in refused a control/act request (bad ids, closed view, ...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class StandInClient:
    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        # Above Slack's 3 s app timeout, so act calls report timeouts themselves.
        # Idle connections are dropped before the server's own 5 s keep-alive runs out, so a
        # request never goes out on a connection the server is closing at that moment.
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout,
                                       limits=httpx.Limits(keepalive_expiry=2.0))

    async def __aenter__(self) -> StandInClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def api_url(self) -> str:
        """`base_url` for slack_sdk's (Async)WebClient."""
        return f"{self.base_url}/api/"

    async def _req(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = await self._http.request(method, f"/_standin{path}", **kwargs)
        if resp.status_code >= 400:
            try:
                message = resp.json().get("error", resp.text)
            except ValueError:
                message = resp.text
            raise StandInError(resp.status_code, message)
        return resp.json()

    # --- directory ----------------------------------------------------------------

    async def add_user(self, id: str, name: str, email: str | None = None, team_id: str | None = None,
                       real_name: str | None = None, locale: str | None = None) -> dict[str, Any]:
        body = {"id": id, "name": name, "email": email, "real_name": real_name}
        if locale:
            body["locale"] = locale
        if team_id:
            body["team_id"] = team_id
        return (await self._req("POST", "/users", json=body))["user"]

    async def add_channel(self, id: str, name: str, *, is_private: bool = False, bot_is_member: bool = True,
                          members: list[str] | None = None, team_id: str | None = None) -> dict[str, Any]:
        body = {"id": id, "name": name, "is_private": is_private, "bot_is_member": bot_is_member,
                "members": members}
        if team_id:
            body["team_id"] = team_id
        return (await self._req("POST", "/channels", json=body))["channel"]

    # --- workspaces, OAuth install, uninstall ---------------------------------------

    async def add_team(self, team_id: str, domain: str | None = None, name: str | None = None, *,
                       bot_token: str | None = None, bot_scopes: str | None = None) -> dict[str, Any]:
        """Register a workspace (not installed unless `bot_token` is given; install it with
        `install()` or the app's own OAuth flow)."""
        body = {k: v for k, v in {"team_id": team_id, "domain": domain, "name": name, "bot_token": bot_token,
                                  "bot_scopes": bot_scopes}.items() if v is not None}
        return (await self._req("POST", "/teams", json=body))["team"]

    async def teams(self) -> list[dict[str, Any]]:
        """[{id, name, domain, installed, bot_user_id, bot_id, bot_token, bot_scopes, user_tokens}]"""
        return (await self._req("GET", "/teams"))["teams"]

    async def team(self, team_id: str) -> dict[str, Any]:
        return next(t for t in await self.teams() if t["id"] == team_id)

    async def configure_oauth(self, client_id: str | None = None, client_secret: str | None = None,
                              redirect_uri: str | None = None) -> dict[str, Any]:
        """The app's client id/secret and its configured Redirect URL."""
        body = {k: v for k, v in {"oauth_client_id": client_id, "oauth_client_secret": client_secret,
                                  "oauth_redirect_uri": redirect_uri}.items() if v is not None}
        return await self.configure(**body)

    async def authorize(self, team_id: str | None = None, client_id: str | None = None,
                        scope: str = DEFAULT_BOT_SCOPES, state: str = "", redirect_uri: str | None = None, *,
                        user_scope: str = "", user_id: str | None = None) -> str:
        """The user presses Allow on /oauth/v2/authorize: returns the redirect Location
        (`redirect_uri?code=...&state=...`). client_id defaults to the configured one."""
        if client_id is None:
            client_id = (await self._req("GET", "/config"))["oauth_client_id"]
        params = {"client_id": client_id, "scope": scope, "user_scope": user_scope, "state": state}
        params |= {k: v for k, v in {"redirect_uri": redirect_uri, "team": team_id, "user": user_id}.items() if v}
        resp = await self._http.get("/oauth/v2/authorize", params=params, headers={"Accept": "application/json"})
        if resp.status_code != 302:
            raise StandInError(resp.status_code, resp.json().get("error", resp.text))
        return resp.headers["location"]

    async def install(self, team_id: str | None = None, scope: str = DEFAULT_BOT_SCOPES, *,
                      user_scope: str = "", redirect_uri: str | None = None) -> dict[str, Any]:
        """The whole OAuth dance without an app (authorize, then oauth.v2.access with the
        configured client credentials): returns the oauth.v2.access answer (access_token, ...)."""
        config = await self._req("GET", "/config")
        location = await self.authorize(team_id, config["oauth_client_id"], scope, "standin-install", redirect_uri,
                                        user_scope=user_scope)
        code = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]
        resp = await self._http.post("/api/oauth.v2.access", data={"code": code, **(
            {"redirect_uri": redirect_uri} if redirect_uri else {})},
            auth=(config["oauth_client_id"], config["oauth_client_secret"]))
        body = resp.json()
        if not body.get("ok"):
            raise StandInError(resp.status_code, body.get("error", resp.text))
        return body

    async def uninstall(self, team_id: str, **overrides: Any) -> dict[str, Any]:
        """Remove the app from a workspace: its tokens are revoked and the app gets signed
        `tokens_revoked` + `app_uninstalled` event callbacks. Returns {revoked, deliveries}."""
        return await self._req("POST", f"/teams/{team_id}/uninstall", json=overrides)

    async def url_verification(self, challenge: str | None = None, **overrides: Any) -> dict[str, Any]:
        """Slack's Request URL check; the answer's `verified` says whether the app echoed it."""
        body = {"challenge": challenge, **overrides} if challenge else overrides
        return await self._req("POST", "/act/url_verification", json=body)

    # --- introspection ---------------------------------------------------------------

    async def calls(self, method: str | None = None, *, since: int = 0) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"since": since}
        if method:
            params["method"] = method
        return (await self._req("GET", "/calls", params=params))["calls"]

    async def view(self, view_id: str) -> dict[str, Any]:
        return await self._req("GET", f"/views/{view_id}")

    async def views(self, user_id: str | None = None, *, open_only: bool = False) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"user_id": user_id, "open": "1" if open_only else None}.items() if v}
        return (await self._req("GET", "/views", params=params))["views"]

    async def messages(self, channel: str | None = None, user_id: str | None = None, *,
                       visible_to: str | None = None, include_deleted: bool = False) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"channel": channel, "user_id": user_id, "visible_to": visible_to,
                                    "include_deleted": "1" if include_deleted else None}.items() if v}
        return (await self._req("GET", "/messages", params=params))["messages"]

    async def deliveries(self) -> list[dict[str, Any]]:
        return (await self._req("GET", "/deliveries"))["deliveries"]

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 5.0,
        *,
        since: int = 0,
    ) -> dict[str, Any]:
        """Poll until a recorded call of `method` matches `predicate` (e.g. the
        bot's async follow-up after acking). Returns that call."""
        deadline = time.monotonic() + timeout
        while True:
            for call in await self.calls(method, since=since):
                if predicate is None or predicate(call):
                    return call
            if time.monotonic() >= deadline:
                seen = [(c["method"], c["error"]) for c in await self.calls(since=since)]
                raise TimeoutError(f"no matching {method} call within {timeout}s; recorded: {seen}")
            await asyncio.sleep(0.02)

    # --- acting as a Slack user ---------------------------------------------------------

    async def issue_triggers(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Fresh trigger_ids (and response_urls when asked for), as Slack mints them on an
        interaction: [{"user_id": ..., "response_url": "command"|"block_actions"|None}]."""
        return (await self._req("POST", "/triggers", json={"requests": requests}))["triggers"]

    async def command(self, user_id: str, text: str = "", *, command: str = "/invoices",
                      channel_id: str | None = None, **overrides: Any) -> dict[str, Any]:
        body = {"user_id": user_id, "command": command, "text": text, **overrides}
        if channel_id:
            body["channel_id"] = channel_id
        return await self._req("POST", "/act/command", json=body)

    async def invite(self, user_id: str, channel_id: str, text: str) -> dict[str, Any]:
        """Slack's own `/invite @name` typed in a channel (`@invoicebot` adds the app)."""
        return await self._req("POST", "/act/invite", json={"user_id": user_id, "channel_id": channel_id,
                                                             "text": text})

    async def click(self, user_id: str, action_id: str, *, message_id: str | None = None,
                    view_id: str | None = None, block_id: str | None = None, value: Any = None,
                    selected_option: Any = None, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"user_id": user_id, "action_id": action_id, **overrides}
        for key, val in (("message_id", message_id), ("view_id", view_id), ("block_id", block_id),
                         ("value", value), ("selected_option", selected_option)):
            if val is not None:
                body[key] = val
        return await self._req("POST", "/act/click", json=body)

    async def open_home(self, user_id: str, **overrides: Any) -> dict[str, Any]:
        """The person opens the app's Home tab (the app hears app_home_opened)."""
        return await self._req("POST", "/act/open_home", json={"user_id": user_id, **overrides})

    async def home(self, user_id: str) -> dict[str, Any] | None:
        """The Home tab published for a user, or None before the first views.publish."""
        try:
            return await self._req("GET", f"/home/{user_id}")
        except StandInError as exc:
            if exc.status == 404:
                return None
            raise

    async def submit(self, user_id: str, view_id: str, values: dict[str, dict[str, Any]] | None = None,
                     **overrides: Any) -> dict[str, Any]:
        body = {"user_id": user_id, "view_id": view_id, "values": values or {}, **overrides}
        return await self._req("POST", "/act/submit", json=body)

    async def close(self, user_id: str, view_id: str, **overrides: Any) -> dict[str, Any]:
        return await self._req("POST", "/act/close", json={"user_id": user_id, "view_id": view_id, **overrides})

    # --- faults, config, clock, reset -----------------------------------------------------

    async def set_faults(self, method: str, status: int | None = None, count: int = 1, retry_after: int = 1, *,
                         error: str | None = None, channel: str | None = None) -> list[dict[str, Any]]:
        """The next `count` calls of `method` fail: with an HTTP `status` (429 by default), or
        with `error` as Slack's `ok: false` answer (HTTP 200); only calls naming `channel`
        when given."""
        body: dict[str, Any] = {"method": method, "status": status if status is not None else (200 if error else 429),
                                "count": count, "retry_after": retry_after}
        if error is not None:
            body["error"] = error
        if channel is not None:
            body["channel"] = channel
        return (await self._req("POST", "/faults", json=body))["faults"]

    async def clear_faults(self) -> None:
        await self._req("DELETE", "/faults")

    async def configure(self, **config: Any) -> dict[str, Any]:
        """channel_rate_limit, clock_speed, app_timeout_s, escaped_commands, request_url,
        oauth_client_id, oauth_client_secret, oauth_redirect_uri."""
        return await self._req("PUT", "/config", json=config)

    async def advance_clock(self, seconds: float) -> dict[str, Any]:
        return await self._req("POST", "/clock/advance", json={"seconds": seconds})

    async def reset(self) -> None:
        await self._req("POST", "/reset")
