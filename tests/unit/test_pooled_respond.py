"""`respond()` posts through the pooled aiohttp session: one TCP connection for several posts
to response_urls (Bolt's own respond opens a session and a connection for each)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.context.respond.async_respond import AsyncRespond

from handlers.context import PooledRespond


async def _server() -> tuple[web.AppRunner, str, list[dict[str, Any]]]:
    posts: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        posts.append(json.loads(await request.text()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/response/{token}", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/response/T1", posts


def _counting_session() -> tuple[aiohttp.ClientSession, list[int]]:
    connections: list[int] = []
    trace = aiohttp.TraceConfig()

    async def created(*_: Any) -> None:
        connections.append(1)

    trace.on_connection_create_end.append(created)
    return aiohttp.ClientSession(trace_configs=[trace]), connections


async def test_respond_reuses_the_pooled_connection_and_sends_what_bolt_sends() -> None:
    runner, url, posts = await _server()
    session, connections = _counting_session()
    try:
        respond = PooledRespond(response_url=url, session=session)
        first = await respond(text="First page", blocks=[{"type": "divider"}], response_type="ephemeral",
                              replace_original=False)
        second = await respond(text="Totals", response_type="ephemeral", replace_original=True)
        whole = await respond({"text": "As a dict", "replace_original": True})
        assert [r.status_code for r in (first, second, whole)] == [200, 200, 200]
        assert posts == [
            {"text": "First page", "blocks": [{"type": "divider"}], "response_type": "ephemeral",
             "replace_original": False},
            {"text": "Totals", "response_type": "ephemeral", "replace_original": True},
            {"text": "As a dict", "replace_original": True},
        ]
        assert len(connections) == 1 and not session.closed  # one connection, the session stays open

        # What it replaces: Bolt's respond, with a session of its own for every post.
        bolt = AsyncRespond(response_url=url)
        await bolt(text="First page", blocks=[{"type": "divider"}], response_type="ephemeral",
                   replace_original=False)
        assert posts[-1] == posts[0]
    finally:
        await session.close()
        await runner.cleanup()
