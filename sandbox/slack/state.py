"""In-memory world of the Slack stand-in: workspace directory, messages, views,
trigger ids, response URLs, recorded Web API calls, faults and the clock.

Everything lives in one `StandInState` owned by the stand-in's event loop; the
Starlette handlers are the only writers, so no locking is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .limits import iter_elements

TRIGGER_TTL_S = 3.0  # Slack: trigger_ids expire after 3 seconds
RESPONSE_URL_MAX_USES = 5  # Slack: up to 5 responses ...
RESPONSE_URL_TTL_S = 30 * 60  # ... within 30 minutes
MAX_VIEW_STACK = 3  # Slack: at most 3 views in a modal stack
OAUTH_CODE_TTL_S = 10 * 60  # Slack: OAuth authorization codes expire after ten minutes
# What the configured bot token of the default team (and a team added with a bot_token) may do.
DEFAULT_BOT_SCOPES = "commands,chat:write,chat:write.public,users:read,users:read.email,channels:read,groups:read,im:read"


class StandInClock:
    """Monotonic clock that can run faster than real time or be jumped forward.

    Slack's time-based rules (trigger expiry, response_url lifetime, per-channel
    rate limit) all read this clock so tests need not sleep for real.
    Signing timestamps deliberately use the real wall clock (Bolt checks them).
    """

    def __init__(self, speed: float = 1.0) -> None:
        self._anchor_real = time.monotonic()
        self._anchor_value = 0.0
        self._speed = speed

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        return self._anchor_value + (time.monotonic() - self._anchor_real) * self._speed

    def set_speed(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError("clock_speed must be > 0")
        self._anchor_value, self._anchor_real = self.now(), time.monotonic()
        self._speed = speed

    def advance(self, seconds: float) -> None:
        self._anchor_value += seconds


@dataclass
class Team:
    """A workspace and the app's installation in it (bot_token None: not installed)."""

    id: str
    domain: str
    name: str
    bot_user_id: str
    bot_id: str
    bot_token: str | None = None
    bot_scopes: str = ""  # comma-separated, as oauth.v2.access reports them
    user_tokens: dict[str, str] = field(default_factory=dict)  # user id -> xoxp token (user scopes)

    @property
    def installed(self) -> bool:
        return self.bot_token is not None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "domain": self.domain, "installed": self.installed,
                "bot_user_id": self.bot_user_id, "bot_id": self.bot_id, "bot_token": self.bot_token,
                "bot_scopes": self.bot_scopes, "user_tokens": dict(self.user_tokens)}


@dataclass
class Token:
    """An access token the Web API accepts: which team it acts in, and as whom."""

    token: str
    team_id: str
    kind: Literal["bot", "user"]
    user_id: str  # the bot user (bot tokens) or the user who authorized (user tokens)
    scopes: str
    revoked: bool = False

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes.split(",")


@dataclass
class OAuthCode:
    """A one-time code from the authorize ("Allow") step, for oauth.v2.access."""

    code: str
    client_id: str
    team_id: str
    user_id: str  # who pressed Allow (authed_user)
    scope: str
    user_scope: str
    redirect_uri: str | None  # as passed to /oauth/v2/authorize; None: the configured one was used
    issued_at: float  # stand-in clock
    used: bool = False


@dataclass
class User:
    id: str
    name: str
    email: str | None = None
    team_id: str = "T0001"
    real_name: str | None = None
    is_bot: bool = False
    tz: str = "Europe/Berlin"
    locale: str = "en-US"  # Slack's `locale` (IETF tag), sent by users.info with include_locale

    def to_api(self, *, include_locale: bool = False) -> dict[str, Any]:
        """users.info `user` object; `profile.email` only exists when the user has one."""
        real_name = self.real_name or self.name
        profile: dict[str, Any] = {"real_name": real_name, "display_name": self.name}
        if self.email:
            profile["email"] = self.email
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "real_name": real_name,
            "deleted": False,
            "is_bot": self.is_bot,
            "tz": self.tz,
            "profile": profile,
            **({"locale": self.locale} if include_locale else {}),
        }


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool = False
    bot_is_member: bool = True
    members: list[str] | None = None  # None: every workspace user is a member
    is_im: bool = False
    im_user: str | None = None  # DM channels: the human on the other side
    team_id: str | None = None  # None: the default team (filled in by StandInState.add_channel)

    def has_member(self, user_id: str) -> bool:
        return self.members is None or user_id in self.members

    def to_api(self) -> dict[str, Any]:
        if self.is_im:
            return {"id": self.id, "is_im": True, "user": self.im_user, "is_open": True}
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_private": self.is_private,
            "is_member": self.bot_is_member,
            "is_archived": False,
        }


MessageSource = Literal[
    "chat.postMessage", "chat.postEphemeral", "command_response", "response_url", "slack_error",
    "channel_join",  # Slack's own "X was added to #channel" line after /invite
]


@dataclass
class Message:
    id: str  # stand-in id; act/click also accepts the ts
    ts: str
    channel: str
    text: str
    blocks: list[dict[str, Any]]
    source: MessageSource
    ephemeral: bool
    user_id: str | None = None  # who sees it (ephemeral) / who triggered it
    thread_ts: str | None = None
    bot_posted: bool = True
    deleted: bool = False
    edited_count: int = 0
    state_values: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_slack(self, state: StandInState) -> dict[str, Any]:
        """The `message` object as Slack embeds it in block_actions payloads."""
        team = state.team_of_channel(self.channel)
        msg: dict[str, Any] = {
            "type": "message",
            "text": self.text,
            "ts": self.ts,
            "team": team.id,
            "blocks": copy.deepcopy(self.blocks),
        }
        if self.bot_posted:
            msg |= {"subtype": "bot_message", "bot_id": team.bot_id, "user": team.bot_user_id,
                    "app_id": state.api_app_id}
        if self.thread_ts:
            msg["thread_ts"] = self.thread_ts
        return msg

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class View:
    id: str
    user_id: str
    definition: dict[str, Any]  # the view as the app sent it
    hash: str
    state_values: dict[str, dict[str, Any]]
    user_set: set[tuple[str, str]] = field(default_factory=set)  # inputs the user touched
    errors: dict[str, str] | None = None  # from the last response_action=errors
    last_response_error: str | None = None  # what the user saw when the app's answer was unusable
    root_view_id: str | None = None
    previous_view_id: str | None = None
    is_open: bool = True
    closed_reason: str | None = None
    # Every version of the view's blocks the user was shown, oldest first (views.open,
    # views.update, a response_action=update), so tests can check each one told the truth.
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def external_id(self) -> str | None:
        return self.definition.get("external_id")

    def to_api(self, state: StandInState) -> dict[str, Any]:
        """The view object as Slack returns/sends it (views.* responses, payloads)."""
        d = self.definition
        team = state.team_of_user(self.user_id)
        view: dict[str, Any] = {
            "id": self.id,
            "team_id": team.id,
            "type": d.get("type", "modal"),
            "blocks": copy.deepcopy(d.get("blocks", [])),
            "private_metadata": d.get("private_metadata", ""),
            "callback_id": d.get("callback_id", ""),
            "state": {"values": copy.deepcopy(self.state_values)},
            "hash": self.hash,
            "title": d.get("title"),
            "clear_on_close": bool(d.get("clear_on_close", False)),
            "notify_on_close": bool(d.get("notify_on_close", False)),
            "close": d.get("close"),
            "submit": d.get("submit"),
            "previous_view_id": self.previous_view_id,
            "root_view_id": self.root_view_id or self.id,
            "app_id": state.api_app_id,
            "external_id": d.get("external_id", ""),
            "app_installed_team_id": team.id,
            "bot_id": team.bot_id,
        }
        return view

    def to_json(self, state: StandInState) -> dict[str, Any]:
        """Introspection shape: Slack's view object plus what the user sees."""
        return {
            "view": self.to_api(state),
            "id": self.id,
            "hash": self.hash,
            "user_id": self.user_id,
            "is_open": self.is_open,
            "closed_reason": self.closed_reason,
            "errors": self.errors,
            "last_response_error": self.last_response_error,
            "stack": state.view_stacks.get(self.user_id, []) if self.is_open else [],
            "history": copy.deepcopy(self.history),
        }


@dataclass
class Trigger:
    id: str
    user_id: str
    issued_at: float  # stand-in clock
    view_id: str | None = None  # set when issued from inside a modal
    used: bool = False


@dataclass
class ResponseUrl:
    token: str
    user_id: str
    channel_id: str
    origin: Literal["command", "block_actions"]
    created_at: float  # stand-in clock
    message_id: str | None = None  # the message replace_/delete_original act on
    uses: int = 0


@dataclass
class Fault:
    method: str
    status: int
    count: int
    retry_after: int = 1
    # HTTP 200 with `{"ok": false, "error": error}`: one of Slack's own refusals
    # (channel_not_found, invalid_auth, ...) rather than an HTTP failure.
    error: str | None = None
    channel: str | None = None  # only calls naming this channel (others pass untouched)


@dataclass
class RecordedCall:
    seq: int
    method: str
    params: dict[str, Any]
    ok: bool
    error: str | None
    http_status: int
    response: dict[str, Any]
    monotonic: float
    wall_time: float
    standin_time: float
    team_id: str | None = None  # the team the call acted in (its token's); None when unauthenticated


@dataclass
class StandInConfig:
    channel_rate_limit: bool = False  # 1 chat.postMessage per second per channel
    app_timeout_s: float = 3.0  # how long "Slack" waits for the app's HTTP answer
    # Slash commands created with `should_escape: true` (as in manifest.yml): Slack sends
    # their `#channel` and `@user` mentions as <#C123|name> and <@U123|name> links.
    escaped_commands: list[str] = field(default_factory=lambda: ["/invoices"])


def _stateful_entry(el: dict[str, Any]) -> dict[str, Any] | None:
    """state.values entry for an element's initial value (None: no state)."""
    kind = el["type"]
    if kind in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
        return {"type": kind, "value": el.get("initial_value")}
    if kind in ("static_select", "external_select", "radio_buttons"):
        return {"type": kind, "selected_option": copy.deepcopy(el.get("initial_option"))}
    if kind in ("multi_static_select", "multi_external_select", "checkboxes"):
        return {"type": kind, "selected_options": copy.deepcopy(el.get("initial_options", []))}
    if kind == "datepicker":
        return {"type": kind, "selected_date": el.get("initial_date")}
    if kind == "timepicker":
        return {"type": kind, "selected_time": el.get("initial_time")}
    if kind == "datetimepicker":
        return {"type": kind, "selected_date_time": el.get("initial_date_time")}
    if kind == "users_select":
        return {"type": kind, "selected_user": el.get("initial_user")}
    if kind == "multi_users_select":
        return {"type": kind, "selected_users": el.get("initial_users", [])}
    if kind == "conversations_select":
        return {"type": kind, "selected_conversation": el.get("initial_conversation")}
    if kind == "channels_select":
        return {"type": kind, "selected_channel": el.get("initial_channel")}
    if kind == "rich_text_input":
        return {"type": kind, "rich_text_value": el.get("initial_value")}
    return None


def assign_block_ids(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copy of `blocks` where every block has a block_id: Slack generates a short
    random one for blocks sent without, and payloads/state.values use it."""
    out = copy.deepcopy(blocks)
    for block in out:
        if isinstance(block, dict) and "block_id" not in block:
            block["block_id"] = secrets.token_urlsafe(3)
    return out


def initial_state_values(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """state.values derived from initial_* values.

    Input-block elements always appear (value null when empty), as in real
    view_submission payloads; selects elsewhere appear only once they hold a value.
    """
    values: dict[str, dict[str, Any]] = {}
    for block, el in iter_elements(blocks):
        entry = _stateful_entry(el)
        if entry is None or "action_id" not in el:
            continue
        has_value = any(v not in (None, []) for k, v in entry.items() if k != "type")
        if block.get("type") == "input" or has_value:
            values.setdefault(block.get("block_id", ""), {})[el["action_id"]] = entry
    return values


class StandInState:
    """Everything the stand-in knows; see module docstring."""

    def __init__(
        self,
        *,
        bot_token: str,
        signing_secret: str,
        request_url: str,
        team_id: str = "T0001",
        team_domain: str = "acme",
        api_app_id: str = "A0INVOICEBOT",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        verification_token: str = "standin-verification-token",
        public_url: str = "http://127.0.0.1:8310",
        bot_scopes: str = DEFAULT_BOT_SCOPES,
        oauth_client_id: str = "standin-client-id",
        oauth_client_secret: str = "standin-client-secret",
        oauth_redirect_uri: str | None = None,
    ) -> None:
        self.signing_secret = signing_secret
        self.request_url = request_url
        self.team_id = team_id  # the default team: users/channels without a team_id belong to it
        self.api_app_id = api_app_id
        self.bot_user_id = bot_user_id  # the default team's bot; other teams have their own
        self.bot_id = bot_id
        self.bot_name = "invoicebot"  # the app's bot user, as `@invoicebot` names it in every team
        self.verification_token = verification_token
        self.public_url = public_url.rstrip("/")  # base of response_urls handed to the app
        # The app's OAuth credentials and its configured Redirect URL (like on api.slack.com).
        self.oauth_client_id = oauth_client_id
        self.oauth_client_secret = oauth_client_secret
        self.oauth_redirect_uri = oauth_redirect_uri
        self.clock = StandInClock()
        self.config = StandInConfig()
        # Workspaces; the default one has the app installed with the configured bot token.
        self.teams: dict[str, Team] = {}
        self.tokens: dict[str, Token] = {}  # every token ever issued (revoked ones stay, marked)
        self._seed_teams: dict[str, Team] = {}
        self.add_team(team_id, team_domain, bot_token=bot_token, bot_scopes=bot_scopes, seed=True,
                      bot_user_id=bot_user_id, bot_id=bot_id)
        self._seed_users: dict[str, User] = {}
        self._seed_channels: dict[str, Channel] = {}
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        # Bumped on every change (never reset), so a watcher (the web page's long-poll)
        # can ask "anything new since version N?".
        self.version = 0
        self._watchers: set[asyncio.Future[int]] = set()
        self._clear_activity()

    def _clear_activity(self) -> None:
        self.messages: list[Message] = []
        self.views: dict[str, View] = {}
        self.view_stacks: dict[str, list[str]] = {}  # user_id -> open modal stack, bottom first
        self.home_views: dict[str, str] = {}  # user_id -> the app's published Home tab view
        self.triggers: dict[str, Trigger] = {}
        self.response_urls: dict[str, ResponseUrl] = {}
        self.calls: list[RecordedCall] = []
        self.deliveries: list[dict[str, Any]] = []  # requests "Slack" sent to the app
        self.faults: dict[str, Fault] = {}
        self.last_post_by_channel: dict[str, float] = {}
        self.oauth_codes: dict[str, OAuthCode] = {}
        self._seq = itertools.count(1)
        self._ts_seq = itertools.count(1)

    # --- setup ----------------------------------------------------------------

    @classmethod
    def with_demo_data(
        cls,
        *,
        bot_token: str = "xoxb-standin",
        signing_secret: str = "standin-signing-secret",
        request_url: str = "http://127.0.0.1:3000/slack/events",
        **kwargs: Any,
    ) -> StandInState:
        state = cls(bot_token=bot_token, signing_secret=signing_secret, request_url=request_url, **kwargs)
        t = state.team_id
        for user in (
            User("U_FINANCE", "finance", "finance@acme.example", t, "Fiona Finance"),
            User("U_EU", "eu.accountant", "eu.accountant@acme.example", t, "Emil Accountant"),
            User("U_SALES", "sales", "sales@acme.example", t, "Sam Sales"),
            User("U_NEWHIRE", "newhire", "newhire@acme.example", t, "Nina Newhire"),
            User("U_NOEMAIL", "noemail", None, t, "Nobody Email"),
            # Reads and types amounts the German way (Slack locale de-DE): 1.234,56 €.
            User("U_DE", "buchhaltung", "buchhaltung@acme.example", t, "Greta Buchhaltung", locale="de-DE"),
        ):
            state.add_user(user, seed=True)
        state.add_channel(Channel("C_BILLING", "billing", is_private=False, bot_is_member=True), seed=True)
        state.add_channel(
            Channel("C_PRIVATE", "finance-private", is_private=True, bot_is_member=False, members=["U_FINANCE"]),
            seed=True,
        )
        return state

    def add_user(self, user: User, *, seed: bool = False) -> None:
        self.ensure_team(user.team_id)
        self.users[user.id] = user
        if seed:
            self._seed_users[user.id] = copy.deepcopy(user)

    def add_channel(self, channel: Channel, *, seed: bool = False) -> None:
        if channel.team_id is None:
            channel.team_id = self.team_id
        self.ensure_team(channel.team_id)
        self.channels[channel.id] = channel
        if seed:
            self._seed_channels[channel.id] = copy.deepcopy(channel)

    def reset(self) -> None:
        """Back to the seeded directory with no activity, default config and clock."""
        self.teams = copy.deepcopy(self._seed_teams)
        self.tokens = {}
        for team in self.teams.values():
            self._register_team_tokens(team)
        self.users = copy.deepcopy(self._seed_users)
        self.channels = copy.deepcopy(self._seed_channels)
        self.clock = StandInClock()
        self.config = StandInConfig()
        self._clear_activity()

    # --- teams, tokens & installations ------------------------------------------

    @property
    def bot_token(self) -> str | None:
        """The default team's current bot token (None once the app is uninstalled there)."""
        return self.teams[self.team_id].bot_token

    @property
    def team_domain(self) -> str:
        return self.teams[self.team_id].domain

    def add_team(
        self, team_id: str, domain: str | None = None, name: str | None = None, *,
        bot_token: str | None = None, bot_scopes: str | None = None, bot_user_id: str | None = None,
        bot_id: str | None = None, seed: bool = False,
    ) -> Team:
        """Register a workspace (again: updates name/domain). With `bot_token` the app
        counts as installed there with that token; otherwise install it through OAuth."""
        team = self.teams.get(team_id)
        if team is None:
            suffix = team_id[1:] if team_id.startswith("T") else team_id
            team = Team(id=team_id, domain=domain or team_id.lower(), name=name or "",
                        bot_user_id=bot_user_id or f"U0BOT{suffix}", bot_id=bot_id or f"B0BOT{suffix}")
            self.teams[team_id] = team
        if domain:
            team.domain = domain
        team.name = name or team.name or team.domain.title()
        if bot_token:
            self._set_bot_token(team, bot_token, bot_scopes or DEFAULT_BOT_SCOPES)
        if seed:
            self._seed_teams[team_id] = copy.deepcopy(team)
        return team

    def ensure_team(self, team_id: str) -> Team:
        return self.teams.get(team_id) or self.add_team(team_id)

    def team(self, team_id: str | None = None) -> Team:
        """A registered team (the default team for None); KeyError if unknown."""
        return self.teams[team_id or self.team_id]

    def team_of_user(self, user_id: str | None) -> Team:
        user = self.users.get(user_id or "")
        return self.teams.get(user.team_id, self.teams[self.team_id]) if user else self.teams[self.team_id]

    def team_of_channel(self, channel_id: str | None) -> Team:
        channel = self.channels.get(channel_id or "")
        team_id = channel.team_id if channel and channel.team_id else self.team_id
        return self.teams.get(team_id, self.teams[self.team_id])

    def _register_team_tokens(self, team: Team) -> None:
        # Seeded teams only ever hold a configured bot token (user tokens come from OAuth).
        if team.bot_token:
            self.tokens[team.bot_token] = Token(team.bot_token, team.id, "bot", team.bot_user_id, team.bot_scopes)

    def _set_bot_token(self, team: Team, token: str, scopes: str) -> None:
        if team.bot_token and team.bot_token in self.tokens:
            self.tokens[team.bot_token].revoked = True  # replaced: the old token stops working
        team.bot_token, team.bot_scopes = token, scopes
        self.tokens[token] = Token(token, team.id, "bot", team.bot_user_id, scopes)

    def issue_oauth_code(self, *, client_id: str, team_id: str, user_id: str, scope: str, user_scope: str,
                         redirect_uri: str | None) -> OAuthCode:
        code = f"{team_id}.{self.next_seq()}.{secrets.token_hex(16)}"
        self.oauth_codes[code] = OAuthCode(code, client_id, team_id, user_id, scope, user_scope, redirect_uri,
                                           self.clock.now())
        return self.oauth_codes[code]

    def install(self, grant: OAuthCode) -> tuple[Token | None, Token | None]:
        """The app gets installed (again) in a team: a NEW bot token replaces any previous
        one; user scopes get the authorizing user a user token. Returns (bot, user) tokens."""
        team = self.teams[grant.team_id]
        bot = user = None
        if grant.scope:
            self._set_bot_token(team, f"xoxb-{team.id}-{secrets.token_hex(12)}", grant.scope)
            bot = self.tokens[team.bot_token]  # type: ignore[index]
        if grant.user_scope:
            previous = team.user_tokens.get(grant.user_id)
            if previous in self.tokens:
                self.tokens[previous].revoked = True  # type: ignore[index]
            token = f"xoxp-{team.id}-{secrets.token_hex(12)}"
            team.user_tokens[grant.user_id] = token
            user = self.tokens[token] = Token(token, team.id, "user", grant.user_id, grant.user_scope)
        return bot, user

    def uninstall(self, team_id: str) -> dict[str, list[str]]:
        """Revoke every token of the app in a team. Returns what tokens_revoked reports:
        {"oauth": [user ids with user tokens], "bot": [bot user id]}."""
        team = self.teams[team_id]
        revoked: dict[str, list[str]] = {"oauth": sorted(team.user_tokens), "bot": []}
        if team.bot_token:
            revoked["bot"].append(team.bot_user_id)
        for token in [team.bot_token, *team.user_tokens.values()]:
            if token in self.tokens:
                self.tokens[token].revoked = True  # type: ignore[index]
        team.bot_token, team.bot_scopes, team.user_tokens = None, "", {}
        return revoked

    # --- ids ------------------------------------------------------------------

    def next_seq(self) -> int:
        self.changed()
        return next(self._seq)

    # --- change notification ------------------------------------------------------

    def changed(self) -> None:
        """Something a person could see may have changed: wake the watchers."""
        self.version += 1
        watchers, self._watchers = self._watchers, set()
        for watcher in watchers:
            if not watcher.done():
                with contextlib.suppress(RuntimeError):  # its event loop is gone
                    watcher.set_result(self.version)

    async def wait_for_change(self, since: int, timeout: float) -> int:
        """The current version once it is past `since`, or after `timeout` seconds. A `since`
        from the future (the stand-in restarted) is answered at once."""
        if self.version != since:
            return self.version
        watcher: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._watchers.add(watcher)
        try:
            await asyncio.wait_for(asyncio.shield(watcher), timeout)
        except TimeoutError:
            pass
        finally:
            self._watchers.discard(watcher)
        return self.version

    def new_ts(self) -> str:
        # Slack ts: "<unix seconds>.<6 digits>", unique per message.
        return f"{int(time.time())}.{next(self._ts_seq):06d}"

    def new_view_hash(self) -> str:
        return f"{int(time.time())}.{secrets.token_hex(4)}"

    def new_view_id(self) -> str:
        return f"V{self.next_seq():08d}"

    # --- directory ---------------------------------------------------------------

    def dm_channel_for(self, user_id: str) -> Channel:
        """The app's DM with a user (posting to a user id opens it, like Slack)."""
        cid = "D" + (user_id[1:] if user_id.startswith("U") else user_id)
        if cid not in self.channels:
            self.channels[cid] = Channel(cid, "directmessage", is_private=True, bot_is_member=True,
                                         members=[user_id], is_im=True, im_user=user_id,
                                         team_id=self.team_of_user(user_id).id)
        return self.channels[cid]

    def resolve_channel(self, ref: str | None, team_id: str | None = None) -> Channel | None:
        """Channel by id, `#name`/name, or user id (-> DM); with `team_id`, only that
        team's channels and users (what a token of that team can see)."""
        if not ref:
            return None
        if ref in self.channels:
            channel = self.channels[ref]
            return channel if team_id is None or channel.team_id == team_id else None
        if ref in self.users:
            if team_id is not None and self.users[ref].team_id != team_id:
                return None
            return self.dm_channel_for(ref)
        name = ref.removeprefix("#")
        return next((c for c in self.channels.values()
                     if c.name == name and not c.is_im and (team_id is None or c.team_id == team_id)), None)

    # --- triggers & response URLs ----------------------------------------------

    def issue_trigger(self, user_id: str, view_id: str | None = None) -> Trigger:
        tid = f"{self.next_seq()}.{int(time.time())}.{secrets.token_hex(16)}"
        trigger = Trigger(tid, user_id, self.clock.now(), view_id)
        self.triggers[tid] = trigger
        return trigger

    def issue_response_url(
        self, user_id: str, channel_id: str, origin: Literal["command", "block_actions"],
        message_id: str | None = None,
    ) -> str:
        token = f"{self.team_of_user(user_id).id}-{self.next_seq()}-{secrets.token_hex(12)}"
        self.response_urls[token] = ResponseUrl(token, user_id, channel_id, origin, self.clock.now(), message_id)
        return f"{self.public_url}/response/{token}"

    # --- messages ---------------------------------------------------------------

    def add_message(self, *, blocks: list[dict[str, Any]], **fields: Any) -> Message:
        msg = Message(id=f"M{self.next_seq():08d}", ts=self.new_ts(), blocks=assign_block_ids(blocks), **fields)
        self.messages.append(msg)
        return msg

    def find_message(self, ref: str) -> Message | None:
        return next((m for m in self.messages if ref in (m.id, m.ts)), None)

    # --- views ------------------------------------------------------------------

    def open_view(self, user_id: str, definition: dict[str, Any], *, push: bool = False) -> View:
        stack = self.view_stacks.setdefault(user_id, [])
        if not push:
            self.close_stack(user_id, reason="replaced")
            stack = self.view_stacks.setdefault(user_id, [])
        definition = {**definition, "blocks": assign_block_ids(definition.get("blocks", []))}
        view = View(
            id=self.new_view_id(),
            user_id=user_id,
            definition=definition,
            hash=self.new_view_hash(),
            state_values=initial_state_values(definition.get("blocks", [])),
            root_view_id=stack[0] if stack else None,
            previous_view_id=stack[-1] if stack else None,
        )
        view.history.append({"source": "open", "blocks": copy.deepcopy(definition.get("blocks", [])),
                             "standin_time": self.clock.now()})
        self.views[view.id] = view
        stack.append(view.id)
        return view

    def update_view(self, view: View, definition: dict[str, Any]) -> None:
        """Replace a view's content; keep what the user typed into inputs whose
        block_id/action_id survive (Slack ignores initial_value for those)."""
        definition = {**definition, "blocks": assign_block_ids(definition.get("blocks", []))}
        fresh = initial_state_values(definition["blocks"])
        kept: set[tuple[str, str]] = set()
        for block_id, action_id in view.user_set:
            old = view.state_values.get(block_id, {}).get(action_id)
            new = fresh.get(block_id, {}).get(action_id)
            if old is not None and new is not None and old.get("type") == new.get("type"):
                fresh[block_id][action_id] = old
                kept.add((block_id, action_id))
        view.definition = definition
        view.state_values = fresh
        view.user_set = kept
        view.hash = self.new_view_hash()
        view.errors = None
        view.history.append({"source": "update", "blocks": copy.deepcopy(definition["blocks"]),
                             "standin_time": self.clock.now()})

    def find_view(self, *, view_id: str | None = None, external_id: str | None = None,
                  team_id: str | None = None) -> View | None:
        """A view by id or (open views only) external_id; with `team_id`, only that team's."""
        if view_id:
            view = self.views.get(view_id)
        elif external_id:
            view = next((v for v in self.views.values() if v.is_open and v.external_id == external_id
                         and (team_id is None or self.team_of_user(v.user_id).id == team_id)), None)
        else:
            view = None
        if view is not None and team_id is not None and self.team_of_user(view.user_id).id != team_id:
            return None
        return view

    def publish_home(self, user_id: str, definition: dict[str, Any]) -> View:
        """views.publish: the person's Home tab, one per user, replaced on every publish
        (it lives outside the modal stack and is never closed)."""
        view = self.views.get(self.home_views.get(user_id, ""))
        if view is None:
            definition = {**definition, "blocks": assign_block_ids(definition.get("blocks", []))}
            view = View(id=self.new_view_id(), user_id=user_id, definition=definition, hash=self.new_view_hash(),
                        state_values=initial_state_values(definition.get("blocks", [])))
            view.history.append({"source": "publish", "blocks": copy.deepcopy(definition.get("blocks", [])),
                                 "standin_time": self.clock.now()})
            self.views[view.id] = view
            self.home_views[user_id] = view.id
        else:
            self.update_view(view, definition)
        return view

    def top_view(self, user_id: str) -> View | None:
        stack = self.view_stacks.get(user_id) or []
        return self.views[stack[-1]] if stack else None

    def pop_view(self, user_id: str, reason: str) -> None:
        stack = self.view_stacks.get(user_id) or []
        if stack:
            view = self.views[stack.pop()]
            view.is_open, view.closed_reason = False, reason

    def close_stack(self, user_id: str, reason: str) -> None:
        while self.view_stacks.get(user_id):
            self.pop_view(user_id, reason)
