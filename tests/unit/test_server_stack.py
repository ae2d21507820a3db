"""The server stack: `invoicebot serve` runs on uvloop and httptools (uvicorn[standard], a
runtime dependency; uvicorn would otherwise fall back, silently, to asyncio's loop and h11),
and the app keeps one pooled HTTP session per backend for the life of the process."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bot.commands import SERVER_STACK
from bot.settings import load_settings
from handlers.app import build_app
from handlers.slack_io import WorkspaceClients


async def _app(scope: dict, receive: object, send: object) -> None:  # pragma: no cover - never called
    raise AssertionError("not served")


def test_serve_runs_on_uvloop_and_httptools() -> None:
    import uvloop

    config = uvicorn.Config(_app, **SERVER_STACK)
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol
    factory = config.get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


class _Installations:
    """Two workspaces, each with its own bot token (what the OAuth install stores)."""

    async def async_find_bot(self, *, enterprise_id: object, team_id: str) -> object:
        class Bot:
            bot_token = f"xoxb-{team_id}"

        return Bot()


async def test_one_pooled_http_session_per_backend_for_the_life_of_the_process(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("SLACK_", "STRIPE_", "BILLING_", "DATABASE_", "NOTIFY_", "PUBLIC_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    settings = load_settings(slack_bot_token="xoxb-x", slack_signing_secret="s" * 32, stripe_api_key="sk_test_x",
                             billing_api_url="http://127.0.0.1:9", billing_api_token="t", notify_channel="C1",
                             database_url=f"sqlite:///{tmp_path / 'app.db'}")
    built = build_app(settings)
    session = built.bolt.client.session
    assert isinstance(session, aiohttp.ClientSession) and not session.closed
    # Every workspace's client (many workspaces, OAuth) rides on the same session.
    clients = WorkspaceClients(settings, built.bolt.client, _Installations())  # type: ignore[arg-type]
    first, second = await clients("T1"), await clients("T2")
    assert first.token == "xoxb-T1" and second.token == "xoxb-T2"
    assert first.session is session and second.session is session
    stripe_http = built.stripe._http  # noqa: SLF001
    assert stripe_http is not None
    await built.aclose()
    assert session.closed
    assert stripe_http._client_async.is_closed  # noqa: SLF001 - stripe's httpx client, closed at shutdown
