"""Slack's side of the Events/Interactivity API: build the requests Slack sends
to the app's Request URL, sign them, deliver them with Slack's 3 s patience,
and apply the app's answer the way the Slack client would.

Payload shapes follow docs.slack.dev (slash commands, block_actions,
view_submission, view_closed interaction payloads; Events API event_callback
and url_verification). Every payload carries the acting user's own workspace.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httpx

from .limits import iter_elements, validate_message, validate_view
from .state import (
    MAX_VIEW_STACK,
    RESPONSE_URL_MAX_USES,
    RESPONSE_URL_TTL_S,
    Channel,
    Message,
    StandInState,
    Team,
    User,
    View,
    assign_block_ids,
)

USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
TROUBLE_CONNECTING = "We had some trouble connecting. Try again?"  # what a modal shows


class ActError(Exception):
    """A bad act request (the test asked for something a user could not do)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def sign(secret: str, timestamp: str, body: str) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Overrides:
    """Per-request knobs for security/retry tests."""

    sign: bool = True
    signature: str | None = None
    timestamp: int | None = None
    retry_num: int | None = None
    retry_reason: str | None = None
    raw_payload: dict[str, Any] | None = None
    raw_body: str | None = None

    @classmethod
    def from_request(cls, req: dict[str, Any]) -> Overrides:
        return cls(
            sign=bool(req.get("sign", True)),
            signature=req.get("signature"),
            timestamp=req.get("timestamp"),
            retry_num=req.get("retry_num"),
            retry_reason=req.get("retry_reason"),
            raw_payload=req.get("raw_payload"),
            raw_body=req.get("raw_body"),
        )


@dataclass
class Delivery:
    status: int | None
    body: Any
    elapsed_ms: float
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "body": self.body, "elapsed_ms": round(self.elapsed_ms, 1)}
        if self.error:
            out["error"] = self.error
        return out


async def deliver(
    state: StandInState, http: httpx.AsyncClient, kind: str, body: str, ov: Overrides, *,
    content_type: str = "application/x-www-form-urlencoded", team_id: str | None = None,
) -> Delivery:
    """POST a signed body to the app's Request URL, waiting at most app_timeout_s.
    `team_id` (the workspace the request comes from) is kept in the delivery record."""
    if ov.raw_body is not None:
        body = ov.raw_body
    timestamp = str(ov.timestamp if ov.timestamp is not None else int(time.time()))
    headers = {
        "Content-Type": content_type,
        "User-Agent": USER_AGENT,
        "X-Slack-Request-Timestamp": timestamp,
    }
    if ov.signature is not None:
        headers["X-Slack-Signature"] = ov.signature
    elif ov.sign:
        headers["X-Slack-Signature"] = sign(state.signing_secret, timestamp, body)
    if ov.retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(ov.retry_num)
    if ov.retry_reason is not None:
        headers["X-Slack-Retry-Reason"] = ov.retry_reason

    started = time.monotonic()
    try:
        resp = await http.post(
            state.request_url, content=body.encode(), headers=headers, timeout=state.config.app_timeout_s
        )
        delivery = Delivery(resp.status_code, _parse_body(resp), (time.monotonic() - started) * 1000)
    except httpx.TimeoutException:
        delivery = Delivery(None, None, (time.monotonic() - started) * 1000, "timeout")
    except httpx.HTTPError as exc:
        delivery = Delivery(None, None, (time.monotonic() - started) * 1000, f"connection_error: {exc}")
    state.deliveries.append({
        "seq": state.next_seq(), "kind": kind, "wall_time": time.time(), "team_id": team_id, "headers": headers,
        "body": body, **delivery.to_json(),
    })
    return delivery


def _parse_body(resp: httpx.Response) -> Any:
    text = resp.text
    if not text.strip():
        return ""
    if "json" in resp.headers.get("content-type", "") or text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


# --- shared payload pieces -------------------------------------------------------


def _user(state: StandInState, user_id: str) -> User:
    user = state.users.get(user_id)
    if user is None:
        raise ActError(404, f"unknown user {user_id!r}")
    if not state.team_of_user(user.id).installed:  # Slack only sends requests from workspaces with the app
        raise ActError(409, f"the app is not installed in {user.team_id} ({user.id}'s workspace)")
    return user


def _user_obj(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.name, "name": user.name, "team_id": user.team_id}


def _team(state: StandInState, user: User) -> dict[str, Any]:
    team = state.team_of_user(user.id)
    return {"id": team.id, "domain": team.domain}


def _envelope(state: StandInState, kind: str, user: User, trigger_id: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": kind,
        "user": _user_obj(user),
        "api_app_id": state.api_app_id,
        "token": state.verification_token,
    }
    if trigger_id:
        payload["trigger_id"] = trigger_id
    return payload | {"team": _team(state, user), "enterprise": None, "is_enterprise_install": False}


def _form_payload(payload: dict[str, Any]) -> str:
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


def _slack_error_message(state: StandInState, user_id: str, channel_id: str, text: str) -> None:
    state.add_message(channel=channel_id, text=text, blocks=[], source="slack_error", ephemeral=True,
                      user_id=user_id, bot_posted=False)


# --- slash commands ----------------------------------------------------------------

# What the Slack client recognises as a mention in typed text: `#name` (channel names are
# lower case letters, digits, `-` and `_`) and `@name` (user names may also hold dots), not
# inside a word and not inside a link that is already formed (`<#C123|name>`).
_CHANNEL_MENTION = re.compile(r"(?<![\w<|#@])#([a-z0-9][a-z0-9_-]*)", re.IGNORECASE)
_USER_MENTION = re.compile(r"(?<![\w<|#@])@([a-z0-9][a-z0-9._-]*[a-z0-9_-]|[a-z0-9])", re.IGNORECASE)


def mentioned_user(state: StandInState, team_id: str, name: str) -> tuple[str, str] | None:
    """(user id, name) of `@name` in a team: the app's bot user or a person, by user name."""
    wanted = name.casefold()
    if wanted == state.bot_name.casefold():
        return state.team(team_id).bot_user_id, state.bot_name
    for user in state.users.values():
        if user.team_id == team_id and user.name.casefold() == wanted:
            return user.id, user.name
    return None


def escape_mentions(state: StandInState, user: User, text: str) -> str:
    """Typed `#channel` and `@user` as Slack sends them for a `should_escape` command:
    `<#C123|name>` and `<@U123|name>`. Names Slack does not know stay plain text, as do
    links the client already formed (a mention picked from its autocomplete)."""

    def channel(match: re.Match[str]) -> str:
        found = state.resolve_channel("#" + match.group(1).lower(), team_id=user.team_id)
        if found is None or found.is_im or not found.has_member(user.id):
            return match.group(0)  # a private channel you are not in is not yours to name
        return f"<#{found.id}|{found.name}>"

    def person(match: re.Match[str]) -> str:
        found = mentioned_user(state, user.team_id, match.group(1))
        return f"<@{found[0]}|{found[1]}>" if found else match.group(0)

    return _USER_MENTION.sub(person, _CHANNEL_MENTION.sub(channel, text))



def _command_channel(state: StandInState, user: User, channel_id: str | None) -> Channel:
    if channel_id:
        channel = state.resolve_channel(channel_id, team_id=user.team_id)
        if channel is None:
            raise ActError(404, f"unknown channel {channel_id!r} (in {user.team_id})")
        return channel
    # Default: C_BILLING, else a #billing of the user's workspace, else the user's DM with the app.
    return (state.resolve_channel("C_BILLING", team_id=user.team_id)
            or state.resolve_channel("#billing", team_id=user.team_id) or state.dm_channel_for(user.id))


async def act_command(state: StandInState, http: httpx.AsyncClient, req: dict[str, Any]) -> dict[str, Any]:
    user = _user(state, req.get("user_id", ""))
    channel = _command_channel(state, user, req.get("channel_id"))
    command = req.get("command", "/invoices")
    ov = Overrides.from_request(req)
    trigger = state.issue_trigger(user.id)
    response_url = state.issue_response_url(user.id, channel.id, "command")
    # Field order as Slack sends it.
    form: dict[str, Any] = {
        "token": state.verification_token,
        "team_id": state.team_of_user(user.id).id,
        "team_domain": state.team_of_user(user.id).domain,
        "channel_id": channel.id,
        "channel_name": "directmessage" if channel.is_im else channel.name,
        "user_id": user.id,
        "user_name": user.name,
        "command": command,
        "text": (escape_mentions(state, user, req.get("text", "")) if command in state.config.escaped_commands
                 else req.get("text", "")),
        "api_app_id": state.api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger.id,
    }
    if ov.raw_payload is not None:
        form = ov.raw_payload
    delivery = await deliver(state, http, "slash_command", urllib.parse.urlencode(form), ov, team_id=user.team_id)
    shown = _apply_command_response(state, user, channel, command, response_url, delivery)
    return delivery.to_json() | {
        "trigger_id": trigger.id,
        "response_url": response_url,
        "payload": form,
        "message": shown.to_json() if shown else None,
    }


_LINKED_USER = re.compile(r"<@([UW][A-Z0-9_]+)(?:\|[^>]*)?>")


async def act_invite(state: StandInState, http: httpx.AsyncClient, req: dict[str, Any]) -> dict[str, Any]:
    """Slack's built-in `/invite @name` in a channel: the named people (or the app's bot
    user) become members, and the channel shows who added them. Slack answers problems
    with a Slackbot line only the inviter sees; the app hears nothing either way."""
    user = _user(state, req.get("user_id", ""))
    channel = _command_channel(state, user, req.get("channel_id"))
    text = escape_mentions(state, user, str(req.get("text", "")))
    if channel.is_im:
        _slack_error_message(state, user.id, channel.id, "/invite only works in channels.")
        return {"ok": False, "error": "not_a_channel", "invited": []}
    if not channel.has_member(user.id):
        raise ActError(403, f"{user.id} is not a member of {channel.id}")
    team = state.team_of_user(user.id)
    wanted = _LINKED_USER.findall(text)
    if not wanted:
        _slack_error_message(state, user.id, channel.id,
                             "Name who to invite, e.g. `/invite @invoicebot` (I couldn't find anyone in "
                             f"“{str(req.get('text', '')).strip()[:80]}”).")
        return {"ok": False, "error": "no_user", "invited": []}
    invited: list[str] = []
    for user_id in wanted:
        if user_id == team.bot_user_id:
            if channel.bot_is_member:
                _slack_error_message(state, user.id, channel.id, f"@{state.bot_name} is already in this channel.")
                continue
            channel.bot_is_member = True
            name = state.bot_name
        else:
            member = state.users.get(user_id)
            if member is None or member.team_id != team.id:
                continue
            if channel.has_member(user_id):
                _slack_error_message(state, user.id, channel.id, f"@{member.name} is already in this channel.")
                continue
            if channel.members is not None:
                channel.members.append(user_id)
            name = member.name
        invited.append(user_id)
        state.add_message(channel=channel.id, text=f"<@{user_id}|{name}> was added to <#{channel.id}|{channel.name}> "
                          f"by <@{user.id}|{user.name}>.", blocks=[], source="channel_join", ephemeral=False,
                          user_id=user.id, bot_posted=False)
    return {"ok": bool(invited), "invited": invited, "channel": channel.to_api()}


def _apply_command_response(
    state: StandInState, user: User, channel: Channel, command: str, response_url: str, d: Delivery
) -> Message | None:
    """What the user sees right after the command: the app's immediate answer or Slack's error."""
    if d.error == "timeout":
        _slack_error_message(state, user.id, channel.id, f'{command} failed with the error "operation_timeout"')
        return None
    if d.status is None:
        _slack_error_message(state, user.id, channel.id, f'{command} failed with the error "dispatch_failed"')
        return None
    if d.status != 200:
        _slack_error_message(state, user.id, channel.id, f'{command} failed with the error "http_service_error"')
        return None
    if d.body == "":
        return None
    if isinstance(d.body, dict):
        text, blocks = d.body.get("text"), d.body.get("blocks")
        if not text and not blocks:
            return None
        if validate_message(text, blocks if isinstance(blocks, list) else None) or (
            blocks is not None and not isinstance(blocks, list)
        ):
            _slack_error_message(state, user.id, channel.id,
                                 f'{command} failed with the error "invalid_command_response"')
            return None
        in_channel = d.body.get("response_type") == "in_channel"
        msg = state.add_message(channel=channel.id, text=text or "", blocks=blocks or [],
                                source="command_response", ephemeral=not in_channel, user_id=user.id)
    else:
        msg = state.add_message(channel=channel.id, text=str(d.body), blocks=[], source="command_response",
                                ephemeral=True, user_id=user.id)
    token = response_url.rsplit("/", 1)[-1]
    state.response_urls[token].message_id = msg.id
    return msg


# --- element lookup & state shapes -------------------------------------------------------


def _all_options(el: dict[str, Any]) -> list[dict[str, Any]]:
    opts = list(el.get("options") or [])
    for group in el.get("option_groups") or []:
        opts += group.get("options") or []
    return opts


def _option(el: dict[str, Any], wanted: Any) -> dict[str, Any]:
    value = wanted.get("value") if isinstance(wanted, dict) else wanted
    for opt in _all_options(el):
        if opt.get("value") == value:
            return copy.deepcopy(opt)
    raise ActError(400, f"element {el.get('action_id')!r} has no option with value {value!r}")


def _find_element(
    blocks: list[dict[str, Any]], action_id: str, block_id: str | None, value: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    found = [
        (b, el) for b, el in iter_elements(blocks)
        if el.get("action_id") == action_id and (block_id is None or b.get("block_id") == block_id)
    ]
    if len(found) > 1 and value is not None:
        found = [(b, el) for b, el in found if el.get("value") == value] or found
    if not found:
        where = f" in block {block_id!r}" if block_id else ""
        raise ActError(404, f"no element with action_id {action_id!r}{where}")
    if len(found) > 1:
        raise ActError(400, f"action_id {action_id!r} is in several blocks; pass block_id (or a distinguishing value)")
    return found[0]


def _selection(el: dict[str, Any], given: Any) -> dict[str, Any]:
    """The value-bearing fields of an element (as in actions[] and state.values)."""
    kind = el["type"]
    if isinstance(given, dict) and given.get("type") == kind:
        return {k: v for k, v in given.items() if k != "type"}  # pre-shaped state entry, verbatim
    if kind in ("static_select", "external_select", "radio_buttons", "overflow"):
        return {"selected_option": None if given is None else _option(el, given)}
    if kind in ("multi_static_select", "multi_external_select", "checkboxes"):
        return {"selected_options": [_option(el, g) for g in (given or [])]}
    if kind == "datepicker":
        return {"selected_date": given}
    if kind == "timepicker":
        return {"selected_time": given}
    if kind == "datetimepicker":
        return {"selected_date_time": given}
    if kind == "users_select":
        return {"selected_user": given}
    if kind == "multi_users_select":
        return {"selected_users": given or []}
    if kind == "conversations_select":
        return {"selected_conversation": given}
    if kind == "multi_conversations_select":
        return {"selected_conversations": given or []}
    if kind == "channels_select":
        return {"selected_channel": given}
    if kind == "multi_channels_select":
        return {"selected_channels": given or []}
    if kind == "rich_text_input":
        return {"rich_text_value": given}
    return {"value": None if given is None else str(given)}


def _action(
    block: dict[str, Any], el: dict[str, Any], req: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """actions[0] of a block_actions payload, plus the state.values entry it implies."""
    kind = el["type"]
    action: dict[str, Any] = {"action_id": el.get("action_id"), "block_id": block.get("block_id")}
    entry: dict[str, Any] | None = None
    if kind == "button":
        action["text"] = el.get("text")
        for key in ("value", "style", "url"):
            if key in el:
                action[key] = el[key]
    else:
        given = next((req[k] for k in ("selected_option", "selected_options", "value") if k in req), None)
        selection = _selection(el, given)
        action |= selection
        if "placeholder" in el:
            action["placeholder"] = el["placeholder"]
        if kind != "overflow":  # overflow menus hold no state
            entry = {"type": kind, **selection}
    action |= {"type": kind, "action_ts": f"{time.time():.6f}"}
    return action, entry


# --- block_actions ------------------------------------------------------------------------


def _age_trigger(trigger: Any, req: dict[str, Any]) -> None:
    """`trigger_age_s`: the click reaches the app that many seconds after it was made (a
    slow network), so its trigger_id may already be past Slack's 3 seconds."""
    age = req.get("trigger_age_s")
    if age is not None:
        if not isinstance(age, (int, float)) or isinstance(age, bool) or not 0 <= age <= 3600:
            raise ActError(400, "trigger_age_s must be a number of seconds between 0 and 3600")
        trigger.issued_at -= float(age)


async def act_click(state: StandInState, http: httpx.AsyncClient, req: dict[str, Any]) -> dict[str, Any]:
    user = _user(state, req.get("user_id", ""))
    action_id = req.get("action_id")
    if not action_id:
        raise ActError(400, "action_id is required")
    ov = Overrides.from_request(req)
    response_url: str | None = None

    if req.get("view_id"):
        view = _open_view_of(state, user, req["view_id"])
        block, el = _find_element(view.definition.get("blocks", []), action_id, req.get("block_id"), req.get("value"))
        if block.get("type") == "input" and not block.get("dispatch_action"):
            # Slack sends nothing for typing in an input unless the block dispatches actions.
            raise ActError(409, f"input {block.get('block_id')} does not dispatch actions")
        action, entry = _action(block, el, req)
        if entry is not None:
            view.state_values.setdefault(block["block_id"], {})[action_id] = entry
            view.user_set.add((block["block_id"], action_id))
        trigger = state.issue_trigger(user.id, view.id)
        _age_trigger(trigger, req)
        payload = _envelope(state, "block_actions", user, trigger.id)
        payload |= {
            "container": {"type": "view", "view_id": view.id},
            "view": view.to_api(state),
            "actions": [action],
        }
    elif req.get("message_id"):
        msg = state.find_message(req["message_id"])
        if msg is None or msg.deleted:
            raise ActError(404, f"unknown message {req['message_id']!r}")
        if msg.ephemeral and msg.user_id != user.id:
            raise ActError(403, f"{user.id} cannot see ephemeral message {msg.id}")
        block, el = _find_element(msg.blocks, action_id, req.get("block_id"), req.get("value"))
        action, entry = _action(block, el, req)
        if entry is not None:
            msg.state_values.setdefault(block["block_id"], {})[action_id] = entry
        channel = state.channels[msg.channel]
        trigger = state.issue_trigger(user.id)
        response_url = state.issue_response_url(user.id, msg.channel, "block_actions", msg.id)
        _age_trigger(trigger, req)
        payload = _envelope(state, "block_actions", user, trigger.id)
        payload["container"] = {"type": "message", "message_ts": msg.ts, "channel_id": msg.channel,
                                "is_ephemeral": msg.ephemeral}
        payload["channel"] = {"id": channel.id, "name": "directmessage" if channel.is_im else channel.name}
        if not msg.ephemeral:  # Slack leaves `message` out for ephemeral messages
            payload["message"] = msg.to_slack(state)
        payload |= {"state": {"values": copy.deepcopy(msg.state_values)}, "response_url": response_url,
                    "actions": [action]}
    else:
        raise ActError(400, "message_id or view_id is required")

    if "tamper_value" in req:  # a payload whose button value was altered on the way (security tests)
        payload["actions"][0]["value"] = req["tamper_value"]
    if ov.raw_payload is not None:
        payload = ov.raw_payload
    delivery = await deliver(state, http, "block_actions", _form_payload(payload), ov, team_id=user.team_id)
    return delivery.to_json() | {"trigger_id": trigger.id, "response_url": response_url, "payload": payload}


def _open_view_of(state: StandInState, user: User, view_id: str) -> View:
    view = state.views.get(view_id)
    if view is None:
        raise ActError(404, f"unknown view {view_id!r}")
    if view.user_id != user.id:
        raise ActError(403, f"view {view_id} belongs to {view.user_id}")
    if not view.is_open:
        raise ActError(409, f"view {view_id} is closed ({view.closed_reason})")
    if state.home_views.get(user.id) == view.id:
        return view  # the Home tab is always there to click in, whatever modal is open
    top = state.top_view(user.id)
    if top is None or top.id != view.id:
        raise ActError(409, f"view {view_id} is not the top of the modal stack")
    return view


# --- view_submission ------------------------------------------------------------------------


def _input_elements(view: View) -> dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]]:
    return {
        (b["block_id"], el["action_id"]): (b, el)
        for b, el in iter_elements(view.definition.get("blocks", []))
        if b.get("type") == "input" and "action_id" in el
    }


def _is_empty(entry: dict[str, Any]) -> bool:
    return all(v in (None, "", []) for k, v in entry.items() if k != "type")


def _client_side_errors(view: View) -> dict[str, str]:
    """Checks the Slack client makes before it lets the user submit at all."""
    errors: dict[str, str] = {}
    for (block_id, action_id), (block, el) in _input_elements(view).items():
        entry = view.state_values.get(block_id, {}).get(action_id) or {"type": el["type"]}
        if _is_empty(entry):
            if not block.get("optional", False):
                errors[block_id] = "Please complete this required field."
            continue
        value = entry.get("value")
        kind = el["type"]
        if kind == "plain_text_input" and isinstance(value, str):
            if "min_length" in el and len(value) < el["min_length"]:
                errors[block_id] = f"Must be at least {el['min_length']} characters."
            if "max_length" in el and len(value) > el["max_length"]:
                errors[block_id] = f"Must be at most {el['max_length']} characters."
        elif kind == "number_input":
            pattern = r"-?\d+(\.\d+)?" if el.get("is_decimal_allowed") else r"-?\d+"
            if not re.fullmatch(pattern, str(value)):
                errors[block_id] = "Please enter a valid number."
            elif "min_value" in el and float(value) < float(el["min_value"]):
                errors[block_id] = f"Must be at least {el['min_value']}."
            elif "max_value" in el and float(value) > float(el["max_value"]):
                errors[block_id] = f"Must be at most {el['max_value']}."
        elif kind == "email_text_input" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", str(value)):
            errors[block_id] = "Please enter a valid email address."
        elif kind == "url_text_input" and not re.match(r"https?://", str(value)):
            errors[block_id] = "Please enter a valid URL."
    return errors


async def act_submit(state: StandInState, http: httpx.AsyncClient, req: dict[str, Any]) -> dict[str, Any]:
    user = _user(state, req.get("user_id", ""))
    view = _open_view_of(state, user, req.get("view_id", ""))
    inputs = _input_elements(view)
    for block_id, by_action in (req.get("values") or {}).items():
        for action_id, given in by_action.items():
            if (block_id, action_id) not in inputs:
                raise ActError(404, f"view {view.id} has no input {block_id}/{action_id}")
            _, el = inputs[(block_id, action_id)]
            view.state_values.setdefault(block_id, {})[action_id] = {"type": el["type"], **_selection(el, given)}
            view.user_set.add((block_id, action_id))
    ov = Overrides.from_request(req)

    client_errors = _client_side_errors(view)
    if client_errors and ov.raw_payload is None:
        # The Slack client refuses to send the submission; the app hears nothing.
        return {"status": None, "error": "client_validation", "client_errors": client_errors,
                "elapsed_ms": 0.0, "view": view.to_json(state)}

    trigger = state.issue_trigger(user.id, view.id)
    payload = _envelope(state, "view_submission", user, trigger.id)
    payload |= {"view": view.to_api(state), "response_urls": []}
    if ov.raw_payload is not None:
        payload = ov.raw_payload
    delivery = await deliver(state, http, "view_submission", _form_payload(payload), ov, team_id=user.team_id)
    applied, problems = _apply_submission_response(state, view, delivery)
    top = state.top_view(user.id)
    return delivery.to_json() | {
        "trigger_id": trigger.id,
        "payload": payload,
        "applied": applied,
        "problems": problems,
        "view": view.to_json(state),
        "top_view_id": top.id if top else None,
    }


def _apply_submission_response(state: StandInState, view: View, d: Delivery) -> tuple[str, list[str]]:
    """Apply the app's answer to a view_submission; returns (what happened, problems)."""
    view.last_response_error = None

    def trouble(reason: str, problems: list[str] | None = None) -> tuple[str, list[str]]:
        view.last_response_error = TROUBLE_CONNECTING
        return reason, problems or []

    if not view.is_open:  # the app closed/replaced it meanwhile via the Web API
        return "none", []
    if d.status != 200:
        return trouble("error")
    body = d.body
    if body == "" or (isinstance(body, dict) and "response_action" not in body):
        state.pop_view(view.user_id, "submitted")
        return "close", []
    if not isinstance(body, dict):
        return trouble("invalid", ["response body is neither empty nor a JSON object"])

    action = body.get("response_action")
    if action == "errors":
        errors = body.get("errors")
        input_ids = {b for b, _ in _input_elements(view)}
        if not isinstance(errors, dict) or not errors:
            return trouble("invalid", ["errors must be a non-empty object"])
        # Errors may only name input blocks of this view; anything else makes
        # the whole response unusable (the user sees "trouble connecting").
        bad = [k for k in errors if k not in input_ids]
        if bad:
            return trouble("invalid", [f"errors refer to unknown input block_id(s): {', '.join(bad)}"])
        view.errors = {k: str(v) for k, v in errors.items()}
        return "errors", []
    if action in ("update", "push"):
        new_view = body.get("view")
        problems = validate_view(new_view)
        if problems:
            return trouble("invalid", problems)
        if new_view.get("type") != "modal":
            return trouble("invalid", ["view.type must be modal"])
        if action == "update":
            state.update_view(view, new_view)
        else:
            if len(state.view_stacks.get(view.user_id, [])) >= MAX_VIEW_STACK:
                return trouble("invalid", ["push_limit_reached"])
            state.open_view(view.user_id, new_view, push=True)
        return action, []
    if action == "clear":
        state.close_stack(view.user_id, "cleared")
        return "clear", []
    return trouble("invalid", [f"unknown response_action {action!r}"])


# --- view_closed -----------------------------------------------------------------------------


async def act_close(state: StandInState, http: httpx.AsyncClient, req: dict[str, Any]) -> dict[str, Any]:
    """The user presses the modal's close button (X / Cancel)."""
    user = _user(state, req.get("user_id", ""))
    view = _open_view_of(state, user, req.get("view_id", ""))
    snapshot = view.to_api(state)
    cleared = bool(view.definition.get("clear_on_close"))
    if cleared:
        state.close_stack(user.id, "closed")
    else:
        state.pop_view(user.id, "closed")
    if not view.definition.get("notify_on_close"):
        return {"status": None, "notified": False}
    payload = _envelope(state, "view_closed", user, None) | {"view": snapshot, "is_cleared": cleared}
    ov = Overrides.from_request(req)
    delivery = await deliver(state, http, "view_closed", _form_payload(ov.raw_payload or payload), ov,
                             team_id=user.team_id)
    return delivery.to_json() | {"notified": True, "payload": payload}


# --- Events API: event_callback, url_verification ---------------------------------------------


def _event_callback(state: StandInState, team: Team, event: dict[str, Any]) -> dict[str, Any]:
    """The Events API envelope around `event` (JSON body, signed like everything else)."""
    now = time.time()
    return {
        "token": state.verification_token,
        "team_id": team.id,
        "api_app_id": state.api_app_id,
        "event": {**event, "event_ts": f"{now:.6f}"},
        "type": "event_callback",
        "event_id": f"Ev{state.next_seq():06d}{secrets.token_hex(4).upper()}",
        "event_time": int(now),
        "authorizations": [{"enterprise_id": None, "team_id": team.id, "user_id": team.bot_user_id,
                            "is_bot": True, "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
    }


async def act_open_home(state: StandInState, http: httpx.AsyncClient, req: dict[str, Any]) -> dict[str, Any]:
    """Someone opens the app's Home tab: the app hears `app_home_opened` (tab `home`),
    with the view it published for them last, if any."""
    user = _user(state, req.get("user_id", ""))
    team = state.team_of_user(user.id)
    event: dict[str, Any] = {"type": "app_home_opened", "user": user.id,
                             "channel": state.dm_channel_for(user.id).id, "tab": req.get("tab") or "home"}
    home = state.views.get(state.home_views.get(user.id, ""))
    if home is not None:
        event["view"] = home.to_api(state)
    payload = _event_callback(state, team, event)
    delivery = await deliver(state, http, "app_home_opened", json.dumps(payload), Overrides.from_request(req),
                             content_type="application/json", team_id=team.id)
    return delivery.to_json() | {"payload": payload}


async def act_uninstall(state: StandInState, http: httpx.AsyncClient, req: dict[str, Any]) -> dict[str, Any]:
    """Someone removes the app from a workspace: every token of the app there is revoked,
    then the app hears `tokens_revoked` and `app_uninstalled` (in that order)."""
    team_id = req.get("team_id") or state.team_id
    team = state.teams.get(team_id)
    if team is None:
        raise ActError(404, f"unknown team {team_id!r}")
    if not team.installed and not team.user_tokens:
        raise ActError(409, f"the app is not installed in {team_id}")
    revoked = state.uninstall(team.id)
    ov = Overrides.from_request(req)
    deliveries = []
    for event in ({"type": "tokens_revoked", "tokens": revoked}, {"type": "app_uninstalled"}):
        payload = _event_callback(state, team, event)
        delivery = await deliver(state, http, event["type"], json.dumps(payload), ov,
                                 content_type="application/json", team_id=team.id)
        deliveries.append({"kind": event["type"], **delivery.to_json(), "payload": payload})
    return {"ok": True, "team_id": team.id, "revoked": revoked, "deliveries": deliveries}


async def act_url_verification(state: StandInState, http: httpx.AsyncClient, req: dict[str, Any]) -> dict[str, Any]:
    """Slack checks a new Events Request URL: the app must echo the challenge (as plain
    text, form-encoded or JSON `{"challenge": ...}`)."""
    challenge = str(req.get("challenge") or secrets.token_urlsafe(24))
    ov = Overrides.from_request(req)
    payload = ov.raw_payload or {"token": state.verification_token, "challenge": challenge,
                                 "type": "url_verification"}
    delivery = await deliver(state, http, "url_verification", json.dumps(payload), ov,
                             content_type="application/json")
    body = delivery.body
    echoed = delivery.status == 200 and (
        body == challenge
        or (isinstance(body, dict) and body.get("challenge") == challenge)
        or (isinstance(body, str) and urllib.parse.parse_qs(body).get("challenge") == [challenge])
    )
    return delivery.to_json() | {"verified": echoed, "challenge": challenge, "payload": payload}


# --- response_url ------------------------------------------------------------------------------


def post_to_response_url(state: StandInState, token: str, body: Any) -> tuple[int, dict[str, Any]]:
    """Slack's response_url receiver: at most 5 uses within 30 minutes."""
    ru = state.response_urls.get(token)
    if ru is None:
        return 404, {"ok": False, "error": "invalid_url"}
    if state.clock.now() - ru.created_at > RESPONSE_URL_TTL_S:
        return 404, {"ok": False, "error": "expired_url"}
    if ru.uses >= RESPONSE_URL_MAX_USES:
        return 404, {"ok": False, "error": "used_url"}
    if not isinstance(body, dict):
        return 400, {"ok": False, "error": "invalid_payload"}
    text, blocks = body.get("text"), body.get("blocks")
    if blocks is not None and not isinstance(blocks, list):
        return 400, {"ok": False, "error": "invalid_blocks"}
    problems = validate_message(text, blocks)
    if problems:
        error = "invalid_blocks" if any("/blocks" in p for p in problems) else "msg_too_long"
        return 400, {"ok": False, "error": error, "response_metadata": {"messages": problems}}
    ru.uses += 1

    original = state.find_message(ru.message_id) if ru.message_id else None
    if original is not None and not original.deleted and _truthy(body.get("delete_original")):
        original.deleted = True
        return 200, {"ok": True}
    if original is not None and not original.deleted and _truthy(body.get("replace_original")):
        # A replacement is a whole new message body (no merging with the old one).
        original.text = text or ""
        original.blocks = assign_block_ids(blocks or [])
        original.edited_count += 1
        return 200, {"ok": True}
    if not text and not blocks:
        return 400, {"ok": False, "error": "no_text"}
    in_channel = body.get("response_type") == "in_channel"
    msg = state.add_message(channel=ru.channel_id, text=text or "", blocks=blocks or [], source="response_url",
                            ephemeral=not in_channel, user_id=ru.user_id, thread_ts=body.get("thread_ts"))
    if ru.message_id is None:
        ru.message_id = msg.id
    return 200, {"ok": True}


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")
