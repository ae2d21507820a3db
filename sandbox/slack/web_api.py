"""Slack Web API methods as the stand-in implements them.

Each method takes the parsed params and the caller's token (which decides the
team: a token only sees its own workspace) and returns the success body or raises
`SlackApiFailure` with the error code Slack would use. Auth, scopes, faults, rate
limits and recording are handled once in `call_method`. `oauth.v2.access` takes
client credentials instead of a token.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .limits import validate_message, validate_view
from .state import (
    MAX_VIEW_STACK,
    OAUTH_CODE_TTL_S,
    TRIGGER_TTL_S,
    Channel,
    RecordedCall,
    StandInState,
    Token,
    View,
    assign_block_ids,
)


class SlackApiFailure(Exception):
    def __init__(self, error: str, messages: list[str] | None = None, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []
        self.extra = extra


@dataclass
class ApiResult:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    team_id: str | None = None  # the team the call acted in (recorded with the call)


# --- param helpers ---------------------------------------------------------------


def _json_param(params: dict[str, Any], key: str, format_error: str) -> Any:
    """Form-encoded calls carry blocks/view as JSON strings; JSON calls as objects."""
    value = params.get(key)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise SlackApiFailure(format_error) from None
        params[key] = value  # record the decoded form
    return value


def _require_channel(state: StandInState, params: dict[str, Any], tok: Token) -> Channel:
    channel = state.resolve_channel(params.get("channel"), team_id=tok.team_id)
    if channel is None:
        raise SlackApiFailure("channel_not_found")
    return channel


def _message_content(params: dict[str, Any], *, require: bool) -> tuple[str, list[dict[str, Any]] | None]:
    blocks = _json_param(params, "blocks", "invalid_blocks_format")
    text = params.get("text")
    if blocks is not None and not isinstance(blocks, list):
        raise SlackApiFailure("invalid_blocks_format")
    if require and not text and not blocks and not params.get("attachments"):
        raise SlackApiFailure("no_text")
    problems = validate_message(text if isinstance(text, str) else None, None)
    if problems:
        raise SlackApiFailure("msg_too_long", problems)
    if blocks is not None:
        problems = validate_message(None, blocks)
        if problems:
            raise SlackApiFailure("invalid_blocks", problems)
    return (text or ""), blocks


# --- methods ----------------------------------------------------------------------


def auth_test(state: StandInState, params: dict[str, Any], tok: Token) -> dict[str, Any]:
    team = state.team(tok.team_id)
    user = state.users.get(tok.user_id)
    body: dict[str, Any] = {
        "url": f"https://{team.domain}.slack.com/",
        "team": team.name,
        "user": "invoicebot" if tok.kind == "bot" else (user.name if user else tok.user_id),
        "team_id": team.id,
        "user_id": tok.user_id,
    }
    if tok.kind == "bot":
        body["bot_id"] = team.bot_id
    return body | {"is_enterprise_install": False}


def _user_of_team(state: StandInState, user_id: str | None, tok: Token) -> Any:
    """A user the token's team can see (users of other workspaces do not exist for it)."""
    user = state.users.get(user_id or "")
    if user is None or user.team_id != tok.team_id:
        raise SlackApiFailure("user_not_found")
    return user


def users_info(state: StandInState, params: dict[str, Any], tok: Token) -> dict[str, Any]:
    include_locale = str(params.get("include_locale", "")).lower() in ("true", "1")
    user = _user_of_team(state, params.get("user"), tok).to_api(include_locale=include_locale)
    if not tok.has_scope("users:read.email"):  # Slack leaves the email out without this scope
        user["profile"].pop("email", None)
    return {"user": user}


def conversations_info(state: StandInState, params: dict[str, Any], tok: Token) -> dict[str, Any]:
    channel = _require_channel(state, params, tok)
    # A private channel the bot is not in is invisible to it.
    if channel.is_private and not channel.bot_is_member:
        raise SlackApiFailure("channel_not_found")
    return {"channel": channel.to_api()}


def conversations_list(state: StandInState, params: dict[str, Any], tok: Token) -> dict[str, Any]:
    """The token's team's channels, in pages (`limit` 1..1000, default 100; `cursor`): public
    ones, and private ones only if the bot is in them, as Slack lists them for a bot token."""
    types = {t.strip() for t in str(params.get("types") or "public_channel").split(",") if t.strip()}
    if types - {"public_channel", "private_channel", "im", "mpim"}:
        raise SlackApiFailure("invalid_types")
    if "public_channel" in types and not tok.has_scope("channels:read") or \
            "private_channel" in types and not tok.has_scope("groups:read"):
        raise SlackApiFailure("missing_scope", needed="channels:read" if "public_channel" in types
                              and not tok.has_scope("channels:read") else "groups:read", provided=tok.scopes)
    try:
        limit = int(params.get("limit") or 100)
        start = int(params.get("cursor") or 0)
    except ValueError:
        raise SlackApiFailure("invalid_cursor") from None
    if not 1 <= limit <= 1000 or start < 0:
        raise SlackApiFailure("invalid_limit" if not 1 <= limit <= 1000 else "invalid_cursor")
    visible = [c for c in state.channels.values() if c.team_id == tok.team_id and not c.is_im and (
        ("private_channel" in types and c.is_private and c.bot_is_member)
        or ("public_channel" in types and not c.is_private))]
    page = visible[start:start + limit]
    next_cursor = str(start + limit) if start + limit < len(visible) else ""
    return {"channels": [c.to_api() for c in page], "response_metadata": {"next_cursor": next_cursor}}


def chat_post_message(state: StandInState, params: dict[str, Any], tok: Token) -> dict[str, Any]:
    channel = _require_channel(state, params, tok)
    if channel.is_private and not channel.bot_is_member:
        raise SlackApiFailure("not_in_channel")
    text, blocks = _message_content(params, require=True)
    _check_channel_rate(state, channel.id)
    msg = state.add_message(
        channel=channel.id, text=text, blocks=blocks or [], source="chat.postMessage", ephemeral=False,
        user_id=channel.im_user, thread_ts=params.get("thread_ts"),
    )
    return {"channel": channel.id, "ts": msg.ts, "message": msg.to_slack(state)}


def chat_post_ephemeral(state: StandInState, params: dict[str, Any], tok: Token) -> dict[str, Any]:
    channel = _require_channel(state, params, tok)
    user = _user_of_team(state, params.get("user"), tok)
    if channel.is_private and not channel.bot_is_member:
        raise SlackApiFailure("not_in_channel")
    if not channel.has_member(user.id):
        raise SlackApiFailure("user_not_in_channel")
    text, blocks = _message_content(params, require=True)
    msg = state.add_message(
        channel=channel.id, text=text, blocks=blocks or [], source="chat.postEphemeral", ephemeral=True,
        user_id=user.id, thread_ts=params.get("thread_ts"),
    )
    return {"message_ts": msg.ts}


def chat_update(state: StandInState, params: dict[str, Any], tok: Token) -> dict[str, Any]:
    channel = _require_channel(state, params, tok)
    msg = next(
        (m for m in state.messages if m.ts == params.get("ts") and m.channel == channel.id and not m.deleted),
        None,
    )
    if msg is None or msg.ephemeral:  # ephemeral messages can only change via response_url
        raise SlackApiFailure("message_not_found")
    if not msg.bot_posted:
        raise SlackApiFailure("cant_update_message")
    text, blocks = _message_content(params, require=False)
    if "text" in params:
        msg.text = text
    if blocks is not None:  # omitted blocks are kept; [] removes them (Slack semantics)
        msg.blocks = assign_block_ids(blocks)
    msg.edited_count += 1
    return {"channel": channel.id, "ts": msg.ts, "text": msg.text, "message": msg.to_slack(state)}


def _consume_trigger(state: StandInState, trigger_id: str | None, tok: Token) -> str:
    """Validate a trigger_id and mark it used; returns the user it belongs to."""
    if not trigger_id:
        raise SlackApiFailure("invalid_arguments", ["[ERROR] missing required field: trigger_id"])
    trigger = state.triggers.get(trigger_id)
    if trigger is None or state.team_of_user(trigger.user_id).id != tok.team_id:
        raise SlackApiFailure("invalid_trigger_id")
    if trigger.used:
        raise SlackApiFailure("trigger_exchanged")
    if state.clock.now() - trigger.issued_at > TRIGGER_TTL_S:
        raise SlackApiFailure("expired_trigger_id")
    trigger.used = True
    return trigger.user_id


def _view_param(params: dict[str, Any]) -> dict[str, Any]:
    view = _json_param(params, "view", "invalid_arguments")
    if view is None:
        raise SlackApiFailure("invalid_arguments", ["[ERROR] missing required field: view"])
    problems = validate_view(view)
    if problems:
        raise SlackApiFailure("invalid_arguments", problems)
    if view.get("type") != "modal":
        raise SlackApiFailure("invalid_arguments", ["[ERROR] must be modal [json-pointer:/view/type]"])
    return view


def views_publish(state: StandInState, params: dict[str, Any], tok: Token) -> dict[str, Any]:
    """The Home tab of one user; like Slack, at most 100 blocks and a `home` type."""
    view_def = _json_param(params, "view", "invalid_arguments")
    if view_def is None:
        raise SlackApiFailure("invalid_arguments", ["[ERROR] missing required field: view"])
    problems = validate_view(view_def)
    if problems:
        raise SlackApiFailure("invalid_arguments", problems)
    if view_def.get("type") != "home":
        raise SlackApiFailure("invalid_arguments", ["[ERROR] must be home [json-pointer:/view/type]"])
    user_id = params.get("user_id")
    user = state.users.get(str(user_id or ""))
    if user is None or state.team_of_user(user.id).id != tok.team_id:
        raise SlackApiFailure("user_not_found")
    home = state.home_views.get(user.id)
    if params.get("hash") and home and params["hash"] != state.views[home].hash:
        raise SlackApiFailure("hash_conflict")
    view = state.publish_home(user.id, view_def)
    return {"view": view.to_api(state)}


def _check_external_id_free(state: StandInState, view: dict[str, Any], tok: Token,
                            exclude: View | None = None) -> None:
    ext = view.get("external_id")
    if ext and state.find_view(external_id=ext, team_id=tok.team_id) not in (None, exclude):
        raise SlackApiFailure("duplicate_external_id")


def views_open(state: StandInState, params: dict[str, Any], tok: Token) -> dict[str, Any]:
    view_def = _view_param(params)
    _check_external_id_free(state, view_def, tok)
    user_id = _consume_trigger(state, params.get("trigger_id"), tok)
    view = state.open_view(user_id, view_def)
    return {"view": view.to_api(state)}


def views_push(state: StandInState, params: dict[str, Any], tok: Token) -> dict[str, Any]:
    view_def = _view_param(params)
    _check_external_id_free(state, view_def, tok)
    trigger = state.triggers.get(params.get("trigger_id") or "")
    if trigger and len(state.view_stacks.get(trigger.user_id) or []) >= MAX_VIEW_STACK:
        raise SlackApiFailure("push_limit_reached")
    user_id = _consume_trigger(state, params.get("trigger_id"), tok)
    # Lenient: with no modal open, push behaves like open.
    view = state.open_view(user_id, view_def, push=bool(state.view_stacks.get(user_id)))
    return {"view": view.to_api(state)}


def views_update(state: StandInState, params: dict[str, Any], tok: Token) -> dict[str, Any]:
    if not params.get("view_id") and not params.get("external_id"):
        raise SlackApiFailure("invalid_arguments", ["[ERROR] one of view_id or external_id is required"])
    view_def = _view_param(params)
    view = state.find_view(view_id=params.get("view_id"), external_id=params.get("external_id"),
                           team_id=tok.team_id)
    if view is None or not view.is_open:
        raise SlackApiFailure("not_found")
    if params.get("hash") and params["hash"] != view.hash:
        raise SlackApiFailure("hash_conflict")
    _check_external_id_free(state, view_def, tok, exclude=view)
    state.update_view(view, view_def)
    return {"view": view.to_api(state)}


def oauth_v2_access(state: StandInState, params: dict[str, Any]) -> dict[str, Any]:
    """Exchange an authorize-step code for tokens (client credentials as form params or
    HTTP Basic auth, which the HTTP layer turns into client_id/client_secret params)."""
    if not params.get("client_id") or params["client_id"] != state.oauth_client_id:
        raise SlackApiFailure("invalid_client_id")
    if params.get("client_secret") != state.oauth_client_secret:
        raise SlackApiFailure("bad_client_secret")
    if params.get("grant_type") not in (None, "", "authorization_code"):
        raise SlackApiFailure("invalid_grant_type")  # token rotation is not modelled
    grant = state.oauth_codes.get(params.get("code") or "")
    if (grant is None or grant.used or grant.client_id != params["client_id"]
            or state.clock.now() - grant.issued_at > OAUTH_CODE_TTL_S):
        raise SlackApiFailure("invalid_code")
    # redirect_uri must match the one sent to the authorize step (if one was sent).
    sent = params.get("redirect_uri") or None
    if grant.redirect_uri is not None and sent != grant.redirect_uri:
        raise SlackApiFailure("bad_redirect_uri")
    if grant.redirect_uri is None and sent is not None and sent != state.oauth_redirect_uri:
        raise SlackApiFailure("bad_redirect_uri")
    grant.used = True
    team = state.team(grant.team_id)
    bot, user = state.install(grant)
    body: dict[str, Any] = {}
    if bot is not None:
        body |= {"access_token": bot.token, "token_type": "bot", "scope": bot.scopes,
                 "bot_user_id": team.bot_user_id}
    authed_user: dict[str, Any] = {"id": grant.user_id}
    if user is not None:
        authed_user |= {"scope": user.scopes, "access_token": user.token, "token_type": "user"}
    return body | {
        "app_id": state.api_app_id,
        "team": {"id": team.id, "name": team.name},
        "enterprise": None,
        "is_enterprise_install": False,
        "authed_user": authed_user,
    }


METHODS: dict[str, Callable[[StandInState, dict[str, Any], Token], dict[str, Any]]] = {
    "auth.test": auth_test,
    "users.info": users_info,
    "conversations.info": conversations_info,
    "conversations.list": conversations_list,
    "chat.postMessage": chat_post_message,
    "chat.postEphemeral": chat_post_ephemeral,
    "chat.update": chat_update,
    "views.open": views_open,
    "views.push": views_push,
    "views.update": views_update,
    "views.publish": views_publish,
}

# Methods called with client credentials instead of a token.
NO_TOKEN_METHODS: dict[str, Callable[[StandInState, dict[str, Any]], dict[str, Any]]] = {
    "oauth.v2.access": oauth_v2_access,
}

# Scopes a token needs per method (any one of them); views.* need none.
REQUIRED_SCOPES: dict[str, tuple[str, ...]] = {
    "users.info": ("users:read",),
    "conversations.info": ("channels:read", "groups:read", "im:read", "mpim:read"),
    "conversations.list": ("channels:read", "groups:read", "im:read", "mpim:read"),
    "chat.postMessage": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "chat.update": ("chat:write",),
}


# --- rate limits & faults -------------------------------------------------------------


class RateLimited(Exception):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__("ratelimited")
        self.retry_after_s = retry_after_s


def _check_channel_rate(state: StandInState, channel_id: str) -> None:
    """Slack allows ~1 chat.postMessage per second per channel."""
    if not state.config.channel_rate_limit:
        return
    now = state.clock.now()
    last = state.last_post_by_channel.get(channel_id)
    if last is not None and now - last < 1.0:
        raise RateLimited(1.0 - (now - last))
    state.last_post_by_channel[channel_id] = now


def _rate_limited_result(state: StandInState, retry_after_s: float) -> ApiResult:
    # Retry-After is whole seconds on the stand-in clock, like Slack; the real
    # wall-clock equivalent is exposed for tests running a sped-up clock.
    header = max(1, math.ceil(retry_after_s))
    return ApiResult(
        429,
        {"ok": False, "error": "ratelimited"},
        {"Retry-After": str(header), "X-Standin-Retry-After-Real": f"{retry_after_s / state.clock.speed:.3f}"},
    )


_FAULT_ERRORS = {429: "ratelimited", 500: "internal_error", 503: "service_unavailable"}


def _take_fault(state: StandInState, method: str, params: dict[str, Any] | None = None) -> ApiResult | None:
    fault = state.faults.get(method)
    if fault is None or fault.count <= 0:
        return None
    if fault.channel is not None and (params or {}).get("channel") != fault.channel:
        return None
    fault.count -= 1
    if fault.count == 0:
        del state.faults[method]
    headers = {"Retry-After": str(fault.retry_after)} if fault.status == 429 else {}
    error = fault.error or _FAULT_ERRORS.get(fault.status, "fatal_error")
    return ApiResult(fault.status, {"ok": False, "error": error}, headers)


# --- entry point ---------------------------------------------------------------------------


def call_method(state: StandInState, method: str, params: dict[str, Any], token: str | None) -> ApiResult:
    """Run one Web API call the way Slack would, and record it (with the team it acted in)."""
    result = _dispatch(state, method, params, token)
    if "client_secret" in params:
        params = {**params, "client_secret": "(redacted)"}
    record_call(state, method, params, result.status, result.body, team_id=result.team_id)
    return result


def record_call(state: StandInState, method: str, params: dict[str, Any], status: int, body: dict[str, Any],
                *, team_id: str | None = None) -> None:
    """Record a call, accepted or rejected, with both clocks and the stand-in time."""
    state.calls.append(
        RecordedCall(
            seq=state.next_seq(),
            method=method,
            params=params,
            ok=bool(body.get("ok")),
            error=body.get("error"),
            http_status=status,
            response=body,
            monotonic=time.monotonic(),
            wall_time=time.time(),
            standin_time=state.clock.now(),
            team_id=team_id,
        )
    )


def _dispatch(state: StandInState, method: str, params: dict[str, Any], token: str | None) -> ApiResult:
    if method in NO_TOKEN_METHODS:
        result = _call_or_fault(state, method, lambda: NO_TOKEN_METHODS[method](state, params), params)
        if result.body.get("ok") and isinstance(result.body.get("team"), dict):
            result.team_id = result.body["team"]["id"]  # the team the app just got installed in
        return result
    handler = METHODS.get(method)
    if handler is None:
        return ApiResult(200, {"ok": False, "error": "unknown_method"})
    if not token:
        return ApiResult(200, {"ok": False, "error": "not_authed"})
    tok = state.tokens.get(token)
    if tok is None:
        return ApiResult(200, {"ok": False, "error": "invalid_auth"})
    if tok.revoked:
        return ApiResult(200, {"ok": False, "error": "token_revoked"}, team_id=tok.team_id)
    needed = REQUIRED_SCOPES.get(method)
    if needed and not any(tok.has_scope(s) for s in needed):
        return ApiResult(200, {"ok": False, "error": "missing_scope", "needed": needed[0], "provided": tok.scopes},
                         {"X-OAuth-Scopes": tok.scopes}, tok.team_id)
    result = _call_or_fault(state, method, lambda: handler(state, params, tok), params)
    result.team_id = tok.team_id
    result.headers.setdefault("X-OAuth-Scopes", tok.scopes)
    return result


def _call_or_fault(state: StandInState, method: str, call: Callable[[], dict[str, Any]],
                   params: dict[str, Any] | None = None) -> ApiResult:
    """An injected fault, else the method itself."""
    fault = _take_fault(state, method, params)
    if fault is not None:
        return fault
    try:
        return ApiResult(200, {"ok": True, **call()})
    except RateLimited as exc:
        return _rate_limited_result(state, exc.retry_after_s)
    except SlackApiFailure as exc:
        body: dict[str, Any] = {"ok": False, "error": exc.error, **exc.extra}
        if exc.messages:
            body["response_metadata"] = {"messages": exc.messages}
        return ApiResult(200, body)
