"""The `invoicebot` command: bot/cli.py's commands, given the app they run.

`python -m handlers.entry ...` is the same as `invoicebot ...`. The CLI lives in bot/ and
knows nothing of Slack's listeners; this entry point hands it the composition root
(handlers/app.py) and the edge's payload check (handlers/requests.py).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from starlette.types import ASGIApp

from bot import cli, logs
from bot.server import create_web_app
from bot.settings import Settings
from handlers.app import build_app, running
from handlers.requests import check_slack_payload


class Wiring:
    """What bot/commands.py needs from the top layer (bot.commands.Wiring)."""

    # uvicorn's factory for `serve --workers N` (each worker builds its own app).
    factory = "handlers.entry:app_from_environment"
    build = staticmethod(build_app)
    running = staticmethod(running)

    @staticmethod
    def web_app(settings: Settings) -> ASGIApp:
        return web_app(settings)


def web_app(settings: Settings, *, background: bool = True) -> ASGIApp:
    return create_web_app(settings, build=build_app, check_payload=check_slack_payload, background=background)


def app_from_environment() -> ASGIApp:
    """uvicorn's factory for `serve --workers N`: settings and logging per worker process."""
    from bot.settings import load_settings  # noqa: PLC0415

    settings = load_settings()
    logs.configure(settings.log_format, settings.log_level)
    return web_app(settings)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(argv, wiring=Wiring())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
