"""Settings from the environment and an optional `.env` file (see `.env.example`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(SystemExit):
    """Start-up stops with one line naming the missing or malformed setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    slack_bot_token: SecretStr
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

    # Where people are sent back after saving a card on Stripe's hosted page.
    public_url: AnyHttpUrl | None = None
    log_format: str = "text"  # "json" in production: one JSON object per line
    log_level: str = "INFO"

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

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value not in {"text", "json"}:
            raise ValueError("must be text or json")
        return value

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
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        if error["type"] == "missing":
            raise SettingsError(f"invoicebot: setting {name} is missing (see .env.example)") from None
        raise SettingsError(f"invoicebot: setting {name} is malformed: {error['msg']}") from None
