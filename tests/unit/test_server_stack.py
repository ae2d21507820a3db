"""`invoicebot serve` runs on uvloop and httptools (uvicorn[standard], a runtime dependency):
uvicorn would otherwise fall back, silently, to asyncio's loop and h11."""

from __future__ import annotations

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bot.commands import SERVER_STACK


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
