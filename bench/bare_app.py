"""The floor: a bare slack-bolt AsyncApp on the same server stack as invoicebot (Bolt's
Starlette adapter under uvicorn, the same worker count, the same Web API client setup and
`process_before_response=False`), whose listeners only ack. Whatever latency this shows
is Bolt + Starlette + uvicorn + the loopback network on this machine; invoicebot's ack
latency is reported as a ratio to it.

    SLACK_BOT_TOKEN=... SLACK_SIGNING_SECRET=... SLACK_API_URL=http://127.0.0.1:8310/api/ \\
        python -m bench.bare_app --port 3100 --workers 2
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def create_bolt_app() -> AsyncApp:
    client = AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"],
                            base_url=os.environ.get("SLACK_API_URL", "https://slack.com/api/"), timeout=10)
    app = AsyncApp(client=client, signing_secret=os.environ["SLACK_SIGNING_SECRET"],
                   process_before_response=False, raise_error_for_unhandled_request=False)

    # The same three entry points as invoicebot; each only acknowledges.
    @app.command("/invoices")
    async def invoices(ack: AsyncAck) -> None:
        await ack()

    @app.action(re.compile(r"^pay_now(:\d+)?$"))
    async def pay_now(ack: AsyncAck) -> None:
        await ack()

    @app.view("pay_invoice")
    async def submit(ack: AsyncAck) -> None:
        await ack()

    return app


def create_web_app() -> Starlette:
    handler = AsyncSlackRequestHandler(create_bolt_app())

    async def slack_events(request: Request) -> Response:
        return await handler.handle(request)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/slack/events", slack_events, methods=["POST"]),
                             Route("/healthz", healthz, methods=["GET"])])


def app_from_environment() -> Starlette:
    """uvicorn's factory for --workers N (each worker builds its own app)."""
    return create_web_app()


def main(argv: list[str] | None = None) -> int:
    import uvicorn  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m bench.bare_app", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3100)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    # Exactly what `invoicebot serve` does (bot/commands.py), minus the app.
    if args.workers > 1:
        uvicorn.run("bench.bare_app:app_from_environment", factory=True, host=args.host, port=args.port,
                    workers=args.workers, log_config=None, access_log=False, timeout_graceful_shutdown=20)
    else:
        uvicorn.run(create_web_app(), host=args.host, port=args.port, log_config=None, access_log=False,
                    timeout_graceful_shutdown=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
