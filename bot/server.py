"""The ASGI app: Slack's one Request URL, health and readiness, and the page Stripe returns to."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from bot.checks import Check, run_checks
from bot.edge import EdgeAnswer, SlackEdge
from bot.links import LinkInvalid
from bot.payments import PaymentService
from bot.processor import PaymentProcessor
from bot.settings import Settings
from bot.stripe_webhooks import StripeWebhooks
from storage.payments import PaymentRepository
from storage.schema import is_current

log = logging.getLogger(__name__)

class Served(Protocol):
    """What this server serves, built by the composition root (handlers/app.py `build_app`)."""

    engine: AsyncEngine
    webhooks: StripeWebhooks
    payments: PaymentService
    payments_repo: PaymentRepository
    processor: PaymentProcessor

    async def slack(self, request: Request) -> Response:
        """Slack's Request URL and OAuth pages (Bolt)."""
        ...

    def start_background(self) -> None: ...

    async def aclose(self) -> None: ...


Build = Callable[[Settings], Served]
CheckPayload = Callable[[dict[str, Any]], EdgeAnswer | None]


class Readiness:
    """The results of `invoicebot check`, run at start-up and again when /readyz asks for
    results older than `max_age` (one run at a time: a burst of probes costs one round)."""

    def __init__(self, settings: Settings, max_age: float = 30.0) -> None:
        self._settings = settings
        self._max_age = max_age
        self._lock = asyncio.Lock()
        self.results: list[Check] | None = None
        self._at = 0.0

    async def refresh(self, *, log_failures: bool = False) -> list[Check]:
        async with self._lock:
            if self.results is None or time.monotonic() - self._at > self._max_age:
                self.results = await run_checks(self._settings)
                self._at = time.monotonic()
                if log_failures:
                    for check in self.results:
                        if not check.passed:
                            log.warning("check failed: %s", check.line())
            return self.results

    async def at_start(self) -> None:
        # The app starts anyway: a passing outage of one service must not block a deploy.
        try:
            results = await self.refresh(log_failures=True)
        except Exception:  # noqa: BLE001 - checks report, they never stop the server
            log.warning("start-up checks could not be run", exc_info=True)
            return
        failed = sum(not c.passed for c in results)
        if failed:
            log.warning("%d of %d start-up checks failed: run `invoicebot check` for the fixes", failed, len(results))
        else:
            log.info("all %d start-up checks passed", len(results))


def create_web_app(settings: Settings, *, build: Build, check_payload: CheckPayload,
                   background: bool = True) -> ASGIApp:
    """The ASGI app around what `build(settings)` makes (when the server starts, not before);
    `check_payload` validates Slack payloads at the edge, after their signature."""
    state: dict[str, object] = {}
    readiness = Readiness(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        built = build(settings)
        state["services"] = built
        if background:
            built.start_background()
            state["checks"] = asyncio.create_task(readiness.at_start(), name="start-up checks")
        try:
            yield
        finally:
            checks = state.get("checks")
            if isinstance(checks, asyncio.Task):
                checks.cancel()
            await built.aclose()

    async def slack_events(request: Request) -> Response:
        built: Served = state["services"]  # type: ignore[assignment]
        response = await built.slack(request)
        if request.method == "POST" and response.status_code == 404:
            # Signed and well-formed (the edge saw to it), but no listener takes it: Slack
            # is told it arrived, rather than shown an error for something we ignore.
            return Response(status_code=200)
        return response

    async def healthz(_: Request) -> Response:
        built: Served = state["services"]  # type: ignore[assignment]
        try:
            async with built.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            current = await is_current(built.engine)
        except Exception as exc:  # noqa: BLE001 - health is a yes/no answer
            log.warning("health check failed: %s", type(exc).__name__)
            return JSONResponse({"ok": False, "database": "unreachable"}, status_code=503)
        body = {"ok": current, "database": "ok", "schema": "current" if current else "behind"}
        return JSONResponse(body, status_code=200 if current else 503)

    async def readyz(_: Request) -> Response:
        """Whether every service works (the checks of `invoicebot check`), for a load balancer
        or an operator: 200 when all pass, 503 otherwise, always with the checks."""
        try:
            results = await asyncio.wait_for(readiness.refresh(), 30)
        except Exception as exc:  # noqa: BLE001 - readiness is an answer, never a 500
            log.warning("readiness checks failed: %s", type(exc).__name__)
            return JSONResponse({"ready": False, "checks": [], "error": type(exc).__name__}, status_code=503)
        ready = all(c.passed for c in results)
        return JSONResponse({"ready": ready, "checks": [c.as_dict() for c in results]},
                            status_code=200 if ready else 503)

    async def stripe_webhook(request: Request) -> Response:
        built: Served = state["services"]  # type: ignore[assignment]
        answer = await built.webhooks.handle(await request.body(), request.headers.get("stripe-signature"))
        return JSONResponse(answer.body, status_code=answer.status)

    async def add_card(request: Request) -> Response:
        """The modal's "Add a new card" link: Stripe's page is created now, on the click."""
        built: Served = state["services"]  # type: ignore[assignment]
        try:
            url = await built.payments.add_card_page(request.path_params["session_id"], request.query_params.get("t"))
        except LinkInvalid:
            return _page("Link not valid", "This link is not valid any more. Press <b>Pay Now</b> in Slack again.", 404)
        except Exception as exc:  # noqa: BLE001 - a page, not a traceback
            log.info("add-card page refused: %s", type(exc).__name__)
            return _page("Can't add a card here", "This payment form has expired, or you no longer have access to "
                         "this billing profile. Press <b>Pay Now</b> in Slack again.", 409)
        return RedirectResponse(url, status_code=303)

    async def authenticate(request: Request) -> Response:
        """The modal's "Authenticate on Stripe" link: Stripe's 3-D Secure page for one payment."""
        built: Served = state["services"]  # type: ignore[assignment]
        try:
            url = await built.payments.authentication_page(request.path_params["payment_id"],
                                                           request.query_params.get("t"))
        except LinkInvalid:
            return _page("Link not valid", "This link is not valid any more. Look at the payment in Slack.", 404)
        except Exception as exc:  # noqa: BLE001
            log.warning("authentication page unavailable: %s", type(exc).__name__)
            return _page("Stripe isn't answering", "Stripe's page can't be opened right now. Nothing has been "
                         "charged yet; try the button again in a minute.", 503)
        if url is None:
            return _page("Nothing to authenticate", "This payment no longer waits for authentication. Its result "
                         "is shown in Slack.", 200)
        return RedirectResponse(url, status_code=303)

    async def authenticated(request: Request) -> Response:
        """Where Stripe sends the cardholder back; the webhook records the payment, and we
        ask Stripe once ourselves in case the webhook is late."""
        built: Served = state["services"]  # type: ignore[assignment]
        payment_id = request.path_params["payment_id"]
        try:
            payment = await built.payments_repo.get(payment_id)
            if payment is not None:
                await built.processor.refresh(payment)
        except Exception as exc:  # noqa: BLE001 - the webhook and the reconciler finish it anyway
            log.info("refresh after authentication failed: %s", type(exc).__name__)
        return _page("Back to Slack", "Authentication is finished. Go back to Slack: the payment's result shows in the "
                     "payment window and in the finance channel.", 200)

    async def card_saved(_: Request) -> Response:
        return HTMLResponse(
            "<!doctype html><meta charset=utf-8><title>Card saved</title>"
            "<body style='font-family:sans-serif;max-width:32em;margin:4em auto'>"
            "<h1>Card saved</h1><p>Your new card is saved with Stripe. Go back to Slack and press "
            "<b>Refresh</b> in the payment window to use it.</p></body>")

    app = Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            # Bolt's OAuth flow, when SLACK_CLIENT_ID is set (404 otherwise).
            Route("/slack/install", slack_events, methods=["GET"]),
            Route("/slack/oauth_redirect", slack_events, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/stripe/webhook", stripe_webhook, methods=["POST"]),
            Route("/card-saved", card_saved, methods=["GET"]),
            Route("/cards/new/{session_id}", add_card, methods=["GET"]),
            Route("/pay/authenticate/{payment_id}", authenticate, methods=["GET"]),
            Route("/pay/authenticated/{payment_id}", authenticated, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    # One guard in front of every route: body limit, and Slack's signature before any parsing.
    return SlackEdge(app, signing_secret=settings.slack_signing_secret.get_secret_value(),
                     check_payload=check_payload)


def _page(title: str, body_html: str, status: int) -> HTMLResponse:
    """A small page of our own (the texts are constants: nothing from the request is echoed)."""
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>{title}</title>"
        "<body style='font-family:sans-serif;max-width:32em;margin:4em auto'>"
        f"<h1>{title}</h1><p>{body_html}</p></body>", status_code=status)
