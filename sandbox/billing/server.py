"""Running the sandbox: `serve` (blocking, for the CLI) and `SandboxServer` (a
background thread, for tests and the demo)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Mapping
from types import TracebackType

import uvicorn

from .app import create_app
from .seed import seed_demo
from .store import BillingStore


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before starting uvicorn: port 0 then yields a real port we know up front
    (needed for the seeded document links), and a busy port fails before seeding."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be spelled out: asyncio only sets TCP_NODELAY on accepted sockets whose
    # proto is IPPROTO_TCP, and without it keep-alive requests stall ~40 ms (Nagle +
    # delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def url_for(host: str, port: int) -> str:
    # A wildcard bind is reachable on loopback; links must name a concrete host.
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _uvicorn_server(store: BillingStore, token: str, latency_seconds: float) -> uvicorn.Server:
    app = create_app(store, token, latency_seconds=latency_seconds)
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))


def serve(
    host: str,
    port: int,
    db_path: str,
    token: str,
    latency_seconds: float = 0.0,
    seed: bool = True,
    stripe_customers: Mapping[str, str | None] | None = None,
    *,
    fresh: bool = False,
) -> None:
    """Run the sandbox until Ctrl-C. Prints one line with the URL once it accepts requests.

    `fresh` empties the database first; `seed` then (re)creates the demo data (see
    seed.py: idempotent, keeps earlier payments when not fresh).
    """
    store = BillingStore(db_path)
    try:
        if fresh:
            store.reset()
        sock = bind_socket(host, port)
        url = url_for(host, sock.getsockname()[1])
        if seed:
            seed_demo(store, base_url=url, stripe_customers=stripe_customers or {})
        asyncio.run(_serve_announcing(_uvicorn_server(store, token, latency_seconds), sock, url))
    finally:
        store.close()


async def _serve_announcing(server: uvicorn.Server, sock: socket.socket, url: str) -> None:
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    if server.started:
        print(f"Billing sandbox ready at {url}", flush=True)
    await task


class SandboxServer:
    """The sandbox on a real socket in a background thread.

    with SandboxServer(BillingStore(":memory:"), "t") as sandbox:
        httpx.get(f"{sandbox.url}/v1/access?email=...", headers=...)
    """

    def __init__(
        self, store: BillingStore, token: str, *, host: str = "127.0.0.1", port: int = 0, latency_seconds: float = 0.0
    ) -> None:
        self.store = store
        self.token = token
        self._sock = bind_socket(host, port)
        self.url = url_for(host, self._sock.getsockname()[1])
        self._server = _uvicorn_server(store, token, latency_seconds)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="billing-sandbox", daemon=True
        )

    def start(self, timeout: float = 10.0) -> SandboxServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the billing sandbox did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
