"""Events API: the Home tab is published when a person opens it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp


def register(app: AsyncApp, *, publish_home: Callable[[str, str], Awaitable[None]]) -> None:
    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any], context: dict[str, Any]) -> None:
        # Bolt acks events before this runs; the Messages tab needs nothing from us.
        if event.get("tab", "home") != "home" or not isinstance(event.get("user"), str):
            return
        team_id = str(context.get("team_id") or "")
        await publish_home(team_id, event["user"])
