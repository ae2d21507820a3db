"""Run the stand-in (or any ASGI app) with uvicorn, blocking or in a thread."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from .app import create_app
from .state import StandInState

GRACEFUL_SHUTDOWN_S = 2


def _public_url(host: str, port: int) -> str:
    # A wildcard bind is still reached by the app over loopback.
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"


def serve(host: str, port: int, state: StandInState, *, public_url: str | None = None,
          log_level: str = "info") -> None:
    """Serve the stand-in until interrupted (used by `python -m sandbox.slack`)."""
    state.public_url = (public_url or _public_url(host, port)).rstrip("/")
    # Open long-polls from the web page (GET /_standin/wait) must not hold up a shutdown.
    uvicorn.run(create_app(state), host=host, port=port, log_level=log_level,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)


class ServerThread:
    """An ASGI app served by uvicorn on a background thread (tests, demos).

    The listening socket is bound before the thread starts, so `port=0` gets a
    free port without a race and `url` is known immediately.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = host, self._sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on",
                                                     timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"uvicorn:{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return _public_url(self.host, self.port)

    def start(self, timeout: float = 10.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def start_standin(state: StandInState, host: str = "127.0.0.1", port: int = 0) -> ServerThread:
    """Start the stand-in on a background thread; its response_urls point at it."""
    server = ServerThread(create_app(state), host, port)
    state.public_url = server.url
    return server.start()
