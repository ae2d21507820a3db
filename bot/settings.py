"""Settings from the environment and an optional `.env` file (see `.env.example`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(SystemExit):
    """Start-up stops with one line naming the missing or malformed setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

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

    database_url: str = Field(default_factory=lambda: f"sqlite:///{Path.cwd() / 'invoicebot.db'}")
    notify_channel: str

    # Slack allows one chat.postMessage per second per channel.
    slack_channel_pace_seconds: float = 1.0
    # How often each server process looks for payments left half-way (docs/deploy.md).
    reconcile_interval_seconds: float = Field(default=30.0, gt=0)

    # One overall deadline for a submission (checks, charge, record): past it the modal
    # says where the payment stands, the reconciler takes over and the payer gets a DM.
    submission_deadline_seconds: float = Field(default=25.0, gt=0, le=600)

    # Where people are sent back after saving a card on Stripe's hosted page.
    public_url: AnyHttpUrl | None = None
    log_format: str = "text"  # "json" in production: one JSON object per line
    log_level: str = "INFO"

    # Channel notices are read by many people: they use the workspace's locale, not one
    # person's (amounts and dates to a person use that person's Slack locale).
    default_locale: str = "en-US"
    # Tests and the demo only: a file holding seconds to add to the clock (unset in production).
    clock_offset_file: Path | None = None

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.split(":", 1)[0].split("+", 1)[0] in {"sqlite", "postgresql", "postgres"}:
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("notify_channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must name a channel (an id like C0123 or #billing)")
        return value

    @field_validator("default_locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        from babel import Locale, UnknownLocaleError  # noqa: PLC0415

        try:
            Locale.parse(value.strip().replace("-", "_"))
        except (UnknownLocaleError, ValueError) as exc:
            raise ValueError("must be a locale like en-US or de-DE") from exc
        return value.strip()

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value not in {"text", "json"}:
            raise ValueError("must be text or json")
        return value

    @model_validator(mode="after")
    def _one_way_to_authorize(self) -> Settings:
        if self.slack_client_id or self.slack_client_secret:
            if not (self.slack_client_id and self.slack_client_secret):
                raise ValueError("SLACK_CLIENT_ID and SLACK_CLIENT_SECRET go together")
        elif self.slack_bot_token is None:
            raise ValueError("SLACK_BOT_TOKEN is missing (or set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET)")
        return self

    @property
    def multi_workspace(self) -> bool:
        return bool(self.slack_client_id)

    @property
    def slack_api_base(self) -> str:
        url = str(self.slack_api_url)
        return url if url.endswith("/") else url + "/"


def load_settings(**overrides: object) -> Settings:
    """Settings or a one-line SettingsError naming the first bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        if not error["loc"]:  # a rule across settings: its message names them
            raise SettingsError(f"invoicebot: {str(error['msg']).removeprefix('Value error, ')}") from None
        name = str(error["loc"][0]).upper()
        if error["type"] == "missing":
            raise SettingsError(f"invoicebot: setting {name} is missing (see .env.example)") from None
        raise SettingsError(f"invoicebot: setting {name} is malformed: {error['msg']}") from None
