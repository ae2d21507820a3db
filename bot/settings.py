"""Settings from the environment and an optional `.env` file (see `.env.example`).

Two layers, so that every command asks only for what it uses: `DatabaseSettings` (the
database and logging: enough for `db upgrade`, `payments`, `audit`) and `Settings` (the
services too: Slack, Stripe, the billing API). Every missing or malformed setting is
reported at once, one line each, naming the variable and what it expects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# What each setting expects, in the words an operator needs to find it.
EXPECTS: dict[str, str] = {
    "SLACK_BOT_TOKEN": "the Bot User OAuth Token (xoxb-...) from your Slack app's Install App page "
                       "(or set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET to serve many workspaces)",
    "SLACK_CLIENT_ID": "the Client ID from your Slack app's Basic Information page",
    "SLACK_CLIENT_SECRET": "the Client Secret from your Slack app's Basic Information page",
    "SLACK_OAUTH_AUTHORIZE_URL": "an http(s) URL, normally https://slack.com/oauth/v2/authorize",
    "SLACK_SIGNING_SECRET": "the signing secret from your Slack app's Basic Information page",
    "SLACK_APP_TOKEN": "an app-level token (xapp-...) with connections:write, for Socket Mode",
    "SLACK_API_URL": "an http(s) URL, normally https://slack.com/api/",
    "STRIPE_API_KEY": "a Stripe secret key (sk_test_... or sk_live_...) from https://dashboard.stripe.com/apikeys",
    "STRIPE_API_BASE": "an http(s) URL, normally https://api.stripe.com",
    "STRIPE_WEBHOOK_SECRET": "the signing secret (whsec_...) of the webhook endpoint PUBLIC_URL/stripe/webhook",
    "BILLING_API_URL": "the billing backend's base URL, e.g. https://billing.example.com "
                       "(the contract: docs/billing-api.md)",
    "BILLING_API_TOKEN": "the bearer token the billing backend issued for invoicebot",
    "DATABASE_URL": "sqlite:///path/to/invoicebot.db or postgresql://user:password@host:5432/dbname",
    "NOTIFY_CHANNEL": "the channel for payment notifications: an id like C0123ABCD or a name like #billing",
    "SLACK_CHANNEL_PACE_SECONDS": "seconds between two messages to one channel (a number, e.g. 1.0)",
    "SUBMISSION_DEADLINE_SECONDS": "seconds a submission may take before the modal says where the payment stands "
                                   "and the reconciler takes over (a number from 1 to 600, e.g. 25)",
    "RECONCILE_INTERVAL_SECONDS": "seconds between two looks for payments left half-way (a number above 0, e.g. 30)",
    "APPROVAL_TTL_HOURS": "hours an approval request waits for a decision before it expires (a number above 0, e.g. 72)",
    "DEFAULT_LOCALE": "the locale of channel notices, like en-US or de-DE",
    "DEFAULT_TIMEZONE": "the IANA time zone of digests and scheduled payments, like Europe/Berlin or "
                        "America/New_York, for profiles whose admins set none (the billing API's carry none)",
    "SCHEDULER_POLL_SECONDS": "seconds between two looks for due jobs in each server process (a number above 0, "
                              "e.g. 5)",
    "SCHEDULER_LEASE_SECONDS": "seconds a server holds a job it runs before another may take it over if it died "
                               "(a number from 5 to 3600, e.g. 120)",
    "CLOCK_OFFSET_FILE": "tests and the demo only: a file holding seconds to add to the clock (leave unset)",
    "PUBLIC_URL": "this app's public https base URL, e.g. https://invoicebot.example.com",
    "LOG_FORMAT": "text or json",
    "LOG_LEVEL": "DEBUG, INFO, WARNING or ERROR",
}


class SettingsError(SystemExit):
    """Start-up stops with one line per missing or malformed setting."""

    def __init__(self, *problems: str) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(f"invoicebot: {p}" for p in problems))


# Empty values count as unset: `.env.example` leaves optional settings empty (`PUBLIC_URL=`).
_CONFIG = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True)


class DatabaseSettings(BaseSettings):
    """What commands that only touch the bot's own database need."""

    model_config = _CONFIG

    database_url: str = Field(default_factory=lambda: f"sqlite:///{Path.cwd() / 'invoicebot.db'}")
    log_format: str = "text"  # "json" in production: one JSON object per line
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        value = value.strip()
        scheme, _, rest = value.partition(":")
        backend, plus, driver = scheme.partition("+")
        if backend == "postgres":  # what Heroku and many hosts hand out; SQLAlchemy wants postgresql
            return f"postgresql{plus}{driver}:{rest}"
        if backend not in {"sqlite", "postgresql"} or not rest:
            raise ValueError("must start with sqlite:/// or postgresql:// (postgres:// is accepted too)")
        return value

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value not in {"text", "json"}:
            raise ValueError("must be text or json")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value.upper()


def _slack_authorization_problem(bot_token: object, client_id: object, client_secret: object) -> str | None:
    """One workspace (a bot token) or many (OAuth client id and secret): exactly one way."""
    if client_id or client_secret:
        if not (client_id and client_secret):
            return "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET go together: set both (or neither, and SLACK_BOT_TOKEN)"
        return None
    if bot_token is None:
        return f"SLACK_BOT_TOKEN is missing: {EXPECTS['SLACK_BOT_TOKEN']}"
    return None


class _SlackAuthorization(BaseSettings):
    """The three settings of the rule above alone: checked even when other settings fail."""

    model_config = _CONFIG

    slack_bot_token: SecretStr | None = None
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None


class Settings(DatabaseSettings):
    """Everything `serve`, `socket`, `reconcile` and `check` need."""

    # One workspace: its bot token. Many workspaces: the app's OAuth client id and secret
    # instead (installations are stored in the database, one bot token per workspace).
    slack_bot_token: SecretStr | None = None
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    slack_oauth_authorize_url: AnyHttpUrl = AnyHttpUrl("https://slack.com/oauth/v2/authorize")
    slack_signing_secret: SecretStr
    slack_app_token: SecretStr | None = None
    slack_api_url: AnyHttpUrl = AnyHttpUrl("https://slack.com/api/")

    stripe_api_key: SecretStr
    stripe_api_base: AnyHttpUrl = AnyHttpUrl("https://api.stripe.com")
    stripe_webhook_secret: SecretStr | None = None

    billing_api_url: AnyHttpUrl
    billing_api_token: SecretStr

    notify_channel: str

    # Slack allows one chat.postMessage per second per channel.
    slack_channel_pace_seconds: float = 1.0
    # How often each server process looks for payments left half-way (docs/deploy.md).
    reconcile_interval_seconds: float = Field(default=30.0, gt=0)
    # A payment waiting for an approver's yes expires after this long (docs/payments.md).
    approval_ttl_hours: float = Field(default=72.0, gt=0)

    # One overall deadline for a submission (checks, charge, record): past it the modal
    # says where the payment stands, the reconciler takes over and the payer gets a DM.
    submission_deadline_seconds: float = Field(default=25.0, gt=0, le=600)

    # Where people are sent back after saving a card on Stripe's hosted page.
    public_url: AnyHttpUrl | None = None

    # Channel notices are read by many people: they use the workspace's locale, not one
    # person's (amounts and dates to a person use that person's Slack locale).
    default_locale: str = "en-US"
    # Digests and scheduled payments run at a local time of day in this zone: the billing
    # API's profiles carry no time zone of their own (docs/billing-api.md).
    default_timezone: str = "UTC"
    # The scheduler (bot/scheduler.py): how often each process looks for due jobs, and how
    # long a job's lease lasts (renewed while it runs; a dead process's job is taken over after it).
    scheduler_poll_seconds: float = Field(default=5.0, gt=0)
    scheduler_lease_seconds: float = Field(default=120.0, ge=5, le=3600)
    # Tests and the demo only: a file holding seconds to add to the clock (unset in production).
    clock_offset_file: Path | None = None

    @field_validator("default_locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        from babel import Locale, UnknownLocaleError  # noqa: PLC0415

        try:
            Locale.parse(value.strip().replace("-", "_"))
        except (UnknownLocaleError, ValueError) as exc:
            raise ValueError("must be a locale like en-US or de-DE") from exc
        return value.strip()

    @field_validator("default_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415

        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("must be an IANA time zone like Europe/Berlin") from exc
        return value.strip()

    @field_validator("notify_channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must name a channel (an id like C0123 or #billing)")
        return value

    @model_validator(mode="after")
    def _one_way_to_authorize(self) -> Settings:
        problem = _slack_authorization_problem(self.slack_bot_token, self.slack_client_id, self.slack_client_secret)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def multi_workspace(self) -> bool:
        return bool(self.slack_client_id)

    @property
    def slack_api_base(self) -> str:
        url = str(self.slack_api_url)
        return url if url.endswith("/") else url + "/"


S = TypeVar("S", bound=BaseSettings)


def _problems(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        if not error["loc"]:  # a rule across settings: its message names them
            problems.append(str(error["msg"]).removeprefix("Value error, "))
            continue
        name = str(error["loc"][0]).upper()
        expects = EXPECTS.get(name, "see .env.example")
        if error["type"] == "missing":
            problems.append(f"{name} is missing: {expects}")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{name} is malformed ({message}): {expects}")
    return list(dict.fromkeys(problems))  # a field can fail several ways; one line is enough


def _load(model: type[S], overrides: dict[str, Any]) -> S:
    try:
        return model(**overrides)
    except ValidationError as exc:
        problems = _problems(exc)
    if issubclass(model, Settings):
        # pydantic skips model rules when a field failed: evaluate the Slack rule on its own
        # fields, so that one run names every problem.
        keys = _SlackAuthorization.model_fields
        slack = _SlackAuthorization(**{k: v for k, v in overrides.items() if k in keys})
        problem = _slack_authorization_problem(slack.slack_bot_token, slack.slack_client_id,
                                               slack.slack_client_secret)
        if problem and problem not in problems:
            problems.append(problem)
    raise SettingsError(*problems)


def load_settings(**overrides: object) -> Settings:
    """All settings, or a SettingsError with one line per missing or malformed setting."""
    return _load(Settings, overrides)


def load_database_settings(**overrides: object) -> DatabaseSettings:
    """Only DATABASE_URL and the logging settings: for commands that only touch the database."""
    return _load(DatabaseSettings, overrides)
