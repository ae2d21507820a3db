"""Events API: nothing the bot must react to yet beyond keeping Slack happy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt.async_app import AsyncApp

if TYPE_CHECKING:
    from bot.app import Services


def register(app: AsyncApp, services: Services) -> None:
    @app.event("app_home_opened")
    async def ignore_home_opened() -> None:
        return None
