"""Slack payloads parsed into small typed requests. Everything here is untrusted input:
ids are looked up again, amounts re-validated, and a malformed payload is refused.

Two layers, one set of models:
- `check_slack_payload` runs at the edge (bot/edge.py), after the signature and before
  Bolt: it validates every field Bolt itself reads to route a request (its `extract_*`
  helpers and listener matchers index into `team`, `user`, `event`, `actions[0]`,
  `view.callback_id`… and crash on a wrong type) and every field the listeners use, with
  Slack's limits. A malformed payload is answered there with a 200 and what Slack can show;
  payload types no listener takes are acknowledged and ignored.
- `CommandRequest.parse` & co. build the listeners' requests from the same models, so a
  listener can never meet a shape the edge would have refused (Socket Mode included).

Slack's limits used (docs.slack.dev): private_metadata 3,000 characters, a button's value
2,000, action_id / block_id / callback_id 255, a plain-text input's value 3,000, an
option's value 150. A slash command's text has no documented limit; /invoices takes a
search of at most 4,000 characters.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from blocks.pay_modal import AMOUNT_FIELD, METHOD_FIELD, message_view
from bot.edge import EdgeAnswer
from bot.payments import Submission
from storage.slack_links import submission_key

COMMAND_TEXT_MAX = 4000

SlackId = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Name = Annotated[str, StringConstraints(max_length=255)]
Url = Annotated[str, StringConstraints(max_length=3000)]
Metadata = Annotated[str, StringConstraints(max_length=3000)]
InputValue = Annotated[str, StringConstraints(max_length=3000)]
OptionValue = Annotated[str, StringConstraints(max_length=150)]
CommandText = Annotated[str, StringConstraints(max_length=COMMAND_TEXT_MAX)]
# Anything else Slack sends (token, api_app_id, blocks…) is kept but not looked at.


class BadPayload(ValueError):
    pass


class _Shape(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")


class _Ref(_Shape):
    """{"id": …} objects Bolt reads an id (and a team or enterprise id) from."""

    id: Name | None = None
    team_id: Name | None = None
    enterprise_id: Name | None = None


class _Authorization(_Shape):
    enterprise_id: Name | None = None
    team_id: Name | None = None
    user_id: Name | None = None
    is_enterprise_install: bool | None = None


class _ResponseUrl(_Shape):
    response_url: Url | None = None


class _FunctionData(_Shape):
    execution_id: Name | None = None
    inputs: dict[str, Any] | None = None


class _ViewRef(_Shape):
    id: Name | None = None
    team_id: Name | None = None
    app_installed_team_id: Name | None = None
    callback_id: Name | None = None
    type: Name | None = None
    hash: Name | None = None
    private_metadata: Metadata | None = None


class _BoltReads(_Shape):
    """Every field slack_bolt's request internals and matchers read, typed as Slack sends
    them; also the shape of `event`, `message`, `item`… which Bolt reads the same way."""

    type: Name | None = None
    enterprise: _Ref | Name | None = None
    enterprise_id: Name | None = None
    authorizations: list[_Authorization] | None = None
    is_enterprise_install: bool | Literal["true", "false"] | None = None
    is_ext_shared_channel: bool | None = None
    context_team_id: Name | None = None
    context_enterprise_id: Name | None = None
    team: _Ref | Name | None = None
    team_id: Name | None = None
    user: _Ref | Name | None = None
    user_id: Name | None = None
    user_team: Name | None = None
    channel: _Ref | Name | None = None
    channel_id: Name | None = None
    thread_ts: Name | None = None
    bot_id: Name | None = None
    subtype: Name | None = None
    channel_type: Name | None = None
    tab: Name | None = None
    message: _BoltReads | None = None
    previous_message: _BoltReads | None = None
    item: _BoltReads | None = None
    assistant_thread: _BoltReads | None = None
    view: _ViewRef | None = None
    function_execution_id: Name | None = None
    function_data: _FunctionData | None = None
    bot_access_token: Name | None = None
    inputs: dict[str, Any] | None = None
    workflow_step: dict[str, Any] | None = None
    response_url: Url | None = None
    # Bolt takes len() of it when the key is present: a list, or left out (never null). At most
    # one: with two, Bolt logs through a context that has no logger yet and raises (slack_bolt
    # request/async_internals.py); our modals ask for no response_url, so two are not ours.
    response_urls: list[_ResponseUrl] = Field(default=[], max_length=1)
    trigger_id: Name | None = None


class _User(_Ref):
    id: SlackId


class _Team(_Ref):
    id: SlackId


class _Interaction(_BoltReads):
    """An interaction payload: who (a user with an id) and where (a workspace id)."""

    user: _User  # type: ignore[assignment]
    team: _Team | None = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _has_a_workspace(self) -> _Interaction:
        if self.workspace_id is None:
            raise ValueError("no workspace (team.id or user.team_id)")
        return self

    @property
    def workspace_id(self) -> str | None:
        return (self.team.id if self.team else None) or self.user.team_id


# -- slash commands -----------------------------------------------------------------------
class CommandPayload(_BoltReads):
    command: Name
    type: None = None  # type: ignore[assignment]  # a command has none: anything else is ambiguous to Bolt
    team_id: SlackId  # type: ignore[assignment]
    user_id: SlackId  # type: ignore[assignment]
    text: CommandText = ""
    # Slack always sends one: the list is answered through it, after the ack.
    response_url: Url  # type: ignore[assignment]


# -- buttons ------------------------------------------------------------------------------
class _Action(_Shape):
    action_id: SlackId
    block_id: Name | None = None
    type: Name | None = None
    # A button's value (2,000) or a dispatched plain-text input's (3,000).
    value: InputValue | None = None


class _ActionView(_ViewRef):
    pass


class BlockActionsPayload(_Interaction):
    type: Literal["block_actions"]  # type: ignore[assignment]
    # Slack sends the one element that was used; Bolt routes on actions[0].
    actions: Annotated[list[_Action], Field(min_length=1, max_length=25)]
    view: _ActionView | None = None  # type: ignore[assignment]


# -- modal submissions --------------------------------------------------------------------
class _SelectedOption(_Shape):
    value: OptionValue


class _InputState(_Shape):
    type: Name | None = None
    value: InputValue | None = None
    selected_option: _SelectedOption | None = None


class _ViewState(_Shape):
    values: dict[Name, dict[Name, _InputState]] = {}


class _SubmittedView(_ViewRef):
    id: SlackId
    type: Name  # Bolt compares view.type (workflow steps) without looking first
    callback_id: Name
    hash: Name = ""
    private_metadata: Metadata = ""
    state: _ViewState = _ViewState()


class ViewSubmissionPayload(_Interaction):
    type: Literal["view_submission"]  # type: ignore[assignment]
    view: _SubmittedView  # type: ignore[assignment]


class _ClosedView(_ViewRef):
    type: Name
    callback_id: Name


class ViewClosedPayload(_Interaction):
    type: Literal["view_closed"]  # type: ignore[assignment]
    view: _ClosedView  # type: ignore[assignment]


# -- Events API ---------------------------------------------------------------------------
class _Event(_BoltReads):
    type: SlackId  # type: ignore[assignment]


class EventPayload(_BoltReads):
    type: Literal["event_callback"]  # type: ignore[assignment]
    event: _Event


class UrlVerificationPayload(_BoltReads):
    type: Literal["url_verification"]  # type: ignore[assignment]
    challenge: Annotated[str, StringConstraints(min_length=1, max_length=255)]


_MODELS: dict[str, type[_BoltReads]] = {
    "command": CommandPayload,
    "block_actions": BlockActionsPayload,
    "view_submission": ViewSubmissionPayload,
    "view_closed": ViewClosedPayload,
    "event_callback": EventPayload,
    "url_verification": UrlVerificationPayload,
}
# Validated, then acknowledged with an empty 200 here: no listener takes them.
_IGNORED = {"view_closed"}

UNREADABLE_COMMAND = ("Slack sent this command without everything I need to answer it (who you are and "
                      "which workspace you're in), so I did nothing. Try `/invoices` again.")
TOO_LONG_COMMAND = (f"That's too long for me: `/invoices` takes at most {COMMAND_TEXT_MAX:,} characters "
                    "after the command. Try a shorter search, or `/invoices help`.")
UNREADABLE_FORM = ("Can't read this form",
                   "Slack sent this form in a shape I can't read, so it was not submitted. Close this window and "
                   "press *Pay Now* again.")


def payload_kind(body: dict[str, Any]) -> str:
    """What Bolt will take this payload for (a slash command has no `type`, only `command`)."""
    if "command" in body:
        return "command"
    kind = body.get("type")
    if isinstance(kind, str) and len(kind) <= 100:
        return kind
    if "ssl_check" in body:
        return "ssl_check"
    return "unknown"


def check_slack_payload(body: dict[str, Any]) -> EdgeAnswer | None:
    """The edge's check of a signed payload (see the module docstring): None lets it
    through to Bolt; otherwise the answer to give instead, always a 200."""
    kind = payload_kind(body)
    model = _MODELS.get(kind)
    if model is None:
        # Slack's ssl_check, shortcuts, options… and any type we have never heard of: no
        # listener takes them, and Bolt would answer 404 (Slack shows an error then).
        return EdgeAnswer(200, None, f"{_safe_kind(kind)} payloads are not used")
    try:
        model.model_validate(body)
    except (ValidationError, RecursionError) as exc:
        return _refusal(kind, body, exc)
    if kind in _IGNORED:
        return EdgeAnswer(200, None, f"{kind} is acknowledged only")
    return None


def _refusal(kind: str, body: dict[str, Any], exc: Exception) -> EdgeAnswer:
    where = _fields(exc)
    reason = f"malformed {kind} ({where})"
    if kind == "command":
        text = body.get("text")
        too_long = isinstance(text, str) and len(text) > COMMAND_TEXT_MAX
        return EdgeAnswer(200, {"response_type": "ephemeral", "text": TOO_LONG_COMMAND if too_long
                                else UNREADABLE_COMMAND}, reason)
    if kind == "view_submission":
        # An error under a field needs a block the view has; this view can't be trusted to
        # have any, so the modal is replaced by words (Slack shows them in place).
        return EdgeAnswer(200, {"response_action": "update", "view": message_view(*UNREADABLE_FORM)}, reason)
    return EdgeAnswer(200, None, reason)  # buttons, events: nothing Slack could show


def _fields(exc: Exception) -> str:
    """Where a payload was malformed, by field names only (never values: they are input)."""
    if not isinstance(exc, ValidationError):
        return "nested too deep"
    names = []
    for error in exc.errors()[:5]:
        path = ".".join(str(part) for part in error["loc"] if isinstance(part, (str, int)))
        names.append(_safe_kind(path or "payload"))
    return ", ".join(dict.fromkeys(names))


def _safe_kind(text: str) -> str:
    # Field names and types come from the payload too: short, printable, no format tricks.
    cleaned = "".join(ch if ch.isalnum() or ch in "._-" else "?" for ch in text[:60])
    return cleaned or "?"


# -- what the listeners get ---------------------------------------------------------------
class _Request(BaseModel):
    model_config = ConfigDict(frozen=True)


class CommandRequest(_Request):
    team_id: str
    user_id: str
    text: str = ""
    response_url: str | None = None
    trigger_id: str | None = None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> CommandRequest:
        payload = _validated(CommandPayload, body)
        return cls(team_id=payload.team_id, user_id=payload.user_id, text=payload.text,
                   response_url=payload.response_url, trigger_id=payload.trigger_id)


class ActionRequest(_Request):
    team_id: str
    user_id: str
    trigger_id: str | None = None
    action_id: str
    value: str | None = None
    response_url: str | None = None
    view_id: str | None = None
    view_type: str | None = None  # "modal", or "home" for a click on the Home tab
    private_metadata: str = ""

    @classmethod
    def parse(cls, body: dict[str, Any]) -> ActionRequest:
        payload = _validated(BlockActionsPayload, body)
        action, view = payload.actions[0], payload.view
        return cls(team_id=payload.workspace_id or "", user_id=payload.user.id, trigger_id=payload.trigger_id,
                   action_id=action.action_id, value=action.value, response_url=payload.response_url,
                   view_id=view.id if view else None, view_type=view.type if view else None,
                   private_metadata=(view.private_metadata if view else None) or "")

    @property
    def on_home(self) -> bool:
        """Clicked on the Home tab: no response_url, and the view is the tab, not a modal to update."""
        return self.view_type == "home"


class SubmitRequest(_Request):
    team_id: str
    user_id: str
    view_id: str
    view_hash: str
    private_metadata: str
    amount_text: str | None = None
    method_id: str | None = None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> SubmitRequest:
        payload = _validated(ViewSubmissionPayload, body)
        view = payload.view
        values = view.state.values
        amount = values.get(AMOUNT_FIELD, {}).get(AMOUNT_FIELD)
        method = values.get(METHOD_FIELD, {}).get(METHOD_FIELD)
        return cls(team_id=payload.workspace_id or "", user_id=payload.user.id, view_id=view.id,
                   view_hash=view.hash, private_metadata=view.private_metadata,
                   amount_text=amount.value if amount else None,
                   method_id=method.selected_option.value if method and method.selected_option else None)

    def submission(self) -> Submission:
        return Submission(team_id=self.team_id, user_id=self.user_id, session_id=self.private_metadata,
                          key=submission_key(self.view_id, self.view_hash), view_id=self.view_id,
                          amount_text=self.amount_text,
                          method_id=self.method_id)


def _validated(model: type[_BoltReads], body: dict[str, Any]) -> Any:
    try:
        return model.model_validate(body)
    except (ValidationError, RecursionError) as exc:
        raise BadPayload(f"malformed Slack payload ({_fields(exc)})") from None


class RouteSubmitRequest(_Request):
    """The Home tab's "where notices go" modal: a profile id and the channel picked."""

    team_id: str
    user_id: str
    profile_id: str
    channel_id: str

    @classmethod
    def parse(cls, body: dict[str, Any]) -> RouteSubmitRequest:
        payload = _validated(ViewSubmissionPayload, body)
        state = payload.view.state.values.get("route_channel", {}).get("channel")
        extra = (state.model_extra or {}) if state is not None else {}
        channel = extra.get("selected_conversation") or extra.get("selected_channel") or ""
        return cls(team_id=payload.workspace_id or "", user_id=payload.user.id,
                   profile_id=payload.view.private_metadata[:200], channel_id=str(channel)[:40])


class FormSubmitRequest(_Request):
    """A Home tab settings modal (approval rule, reminders): the profile id it is about and
    each input's state by block id."""

    team_id: str
    user_id: str
    view_id: str
    profile_id: str
    fields: dict[str, dict[str, Any]]

    @classmethod
    def parse(cls, body: dict[str, Any]) -> FormSubmitRequest:
        payload = _validated(ViewSubmissionPayload, body)
        fields: dict[str, dict[str, Any]] = {}
        for block_id, by_action in payload.view.state.values.items():
            for state in by_action.values():  # one input per block
                fields[block_id] = {**(state.model_extra or {}), "value": state.value,
                                    "selected_option": state.selected_option.value if state.selected_option else None}
        return cls(team_id=payload.workspace_id or "", user_id=payload.user.id, view_id=payload.view.id,
                   profile_id=payload.view.private_metadata[:200], fields=fields)

    def text(self, block_id: str) -> str:
        return str(self.fields.get(block_id, {}).get("value") or "")[:3000]

    def option(self, block_id: str) -> str:
        return str(self.fields.get(block_id, {}).get("selected_option") or "")[:150]

    def users(self, block_id: str) -> list[str]:
        chosen = self.fields.get(block_id, {}).get("selected_users") or []
        return [str(u)[:40] for u in chosen if isinstance(u, str)][:100] if isinstance(chosen, list) else []

    def time(self, block_id: str) -> str:
        return str(self.fields.get(block_id, {}).get("selected_time") or "")[:10]
