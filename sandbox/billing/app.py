"""The billing sandbox HTTP app: every endpoint of docs/billing-api.md plus
sandbox-only admin endpoints under /_sandbox/ (see admin.py)."""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import admin
from .documents import invoice_html, invoice_pdf
from .errors import ApiError, error_body, not_found, rejected
from .faults import FaultInjector, SandboxConfig
from .store import PAYMENT_METHODS, PAYMENT_REQUEST_STATUSES, PAYMENT_SETTLE_STATUSES, BillingStore, PaymentRequest
from .validation import optional_str, read_json_object, require_choice, require_str

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
# The version of docs/billing-api.md this sandbox follows, advertised at GET /v1/meta.
CONTRACT_VERSION = "1.1"


def create_app(store: BillingStore, token: str, *, latency_seconds: float = 0.0) -> Starlette:
    """Build the sandbox app around `store`. `token` is the one accepted bearer token."""
    if not token:
        raise ValueError("the sandbox needs a non-empty bearer token")
    config = SandboxConfig(latency_seconds=latency_seconds)
    faults = FaultInjector()
    routes = [
        Route("/v1/meta", get_meta, methods=["GET"]),
        Route("/v1/access", get_access, methods=["GET"]),
        Route("/v1/billing-profiles/{profile_id}", get_billing_profile, methods=["GET"]),
        Route("/v1/invoices", list_invoices, methods=["GET"]),
        Route("/v1/invoices/{invoice_id}", get_invoice, methods=["GET"]),
        Route("/v1/invoices/{invoice_id}/payments", post_payment, methods=["POST"]),
        Route("/v1/invoices/{invoice_id}/payments/{payment_id}", patch_payment, methods=["PATCH"]),
        # Documents are opened from Slack in a browser, which cannot send a bearer token.
        # The ".pdf" route must come first: "{invoice_id}" would also match "x.pdf".
        Route("/invoices/{invoice_id}.pdf", get_invoice_pdf, methods=["GET"]),
        Route("/invoices/{invoice_id}", get_invoice_page, methods=["GET"]),
        *admin.routes(),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SandboxMiddleware, token=token, config=config, faults=faults)],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
    )
    app.state.store = store
    app.state.config = config
    app.state.faults = faults
    return app


# -- middleware -------------------------------------------------------------------------


class SandboxMiddleware:
    """Per request, in this order: latency (/v1 only), bearer auth (/v1 and /_sandbox),
    then injected faults (anything but /_sandbox, so tests can always reach the admin).

    Auth runs before faults so a rejected request never consumes a fault.
    """

    def __init__(self, app: ASGIApp, *, token: str, config: SandboxConfig, faults: FaultInjector) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()
        self.config = config
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        is_api = path == "/v1" or path.startswith("/v1/")
        is_admin = path.startswith("/_sandbox/")

        if is_api and self.config.latency_seconds > 0:
            await asyncio.sleep(self.config.latency_seconds)  # never blocks other requests

        if (is_api or is_admin) and not self._authorized(scope):
            response: Response = JSONResponse(
                error_body("unauthorized", "missing or wrong bearer token"),
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return

        fault = None if is_admin else self.faults.take(scope["method"], path)
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.after_processing:
            # Simulate a lost response: the work is done, the client only sees the error.
            await self.app(scope, receive, _discard)
        await fault.response()(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                # The scheme is case-insensitive (RFC 7235); the token is not.
                scheme, _, credentials = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(
                    b"Bearer " + credentials.strip(), self.expected
                )
        return False


async def _discard(message: Message) -> None:
    return None


# -- error handlers ---------------------------------------------------------------------


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error in billing sandbox", exc_info=exc)
    return JSONResponse(error_body("internal_error", "unexpected sandbox error"), status_code=500)


# -- /v1 endpoints ----------------------------------------------------------------------


def _store(request: Request) -> BillingStore:
    return request.app.state.store  # type: ignore[no-any-return]


async def get_meta(_: Request) -> Response:
    return JSONResponse({"contract_version": CONTRACT_VERSION})


async def get_access(request: Request) -> Response:
    email = request.query_params.get("email", "").strip()
    if not email:
        raise rejected("email_required", "give the user's email as ?email=")
    user = await run_in_threadpool(_store(request).get_user, email)
    if user is None:
        raise not_found("user_not_found", "no user has that email")
    return JSONResponse(user)


async def get_billing_profile(request: Request) -> Response:
    profile_id = request.path_params["profile_id"]
    profile = await run_in_threadpool(_store(request).get_billing_profile, profile_id)
    if profile is None:
        raise not_found("billing_profile_not_found", f"no billing profile {profile_id!r}")
    return JSONResponse(profile)


async def list_invoices(request: Request) -> Response:
    params = request.query_params
    profile_ids = [value for value in params.getlist("billing_profile_id") if value]
    raw_limit = params.get("limit")
    try:
        limit = DEFAULT_PAGE_SIZE if raw_limit is None else int(raw_limit)
    except ValueError as exc:
        raise rejected("invalid_limit", "limit must be an integer between 1 and 100") from exc
    status = params.get("status") or None
    cursor = params.get("cursor") or None
    invoices, next_cursor = await run_in_threadpool(
        lambda: _store(request).list_invoices(profile_ids, status=status, limit=limit, cursor=cursor)
    )
    return JSONResponse({"data": invoices, "next_cursor": next_cursor})


async def get_invoice(request: Request) -> Response:
    return JSONResponse(await _invoice_or_404(request))


async def _invoice_or_404(request: Request) -> dict[str, Any]:
    invoice_id = request.path_params["invoice_id"]
    invoice = await run_in_threadpool(_store(request).get_invoice, invoice_id)
    if invoice is None:
        raise not_found("invoice_not_found", f"no invoice {invoice_id!r}")
    return invoice


async def post_payment(request: Request) -> Response:
    invoice_id = request.path_params["invoice_id"]
    await _invoice_or_404(request)  # an unknown invoice is a 404 even with a bad body
    body = await read_json_object(request)
    if "amount" not in body:
        raise rejected("invalid_request", "amount is required")
    payment = PaymentRequest(
        payment_id=require_str(body, "payment_id"),
        amount=body["amount"],  # type/precision are checked against the invoice currency
        currency=require_str(body, "currency", max_length=3),
        method=require_choice(body, "method", PAYMENT_METHODS),
        processor=require_str(body, "processor"),
        processor_payment_id=optional_str(body, "processor_payment_id", max_length=255),
        status=require_choice(body, "status", PAYMENT_REQUEST_STATUSES),
        paid_by=require_str(body, "paid_by"),
    )
    result, created = await run_in_threadpool(_store(request).record_payment, invoice_id, payment)
    return JSONResponse(result, status_code=201 if created else 200)


async def patch_payment(request: Request) -> Response:
    invoice_id = request.path_params["invoice_id"]
    payment_id = request.path_params["payment_id"]
    body = await read_json_object(request)
    status = require_choice(body, "status", PAYMENT_SETTLE_STATUSES)
    failure_reason = optional_str(body, "failure_reason")
    if status == "succeeded" and failure_reason is not None:
        raise rejected("invalid_request", "failure_reason is only allowed with status failed")
    result = await run_in_threadpool(_store(request).settle_payment, invoice_id, payment_id, status, failure_reason)
    return JSONResponse(result)


# -- documents --------------------------------------------------------------------------


async def _document_source(request: Request) -> tuple[dict[str, Any], str | None] | None:
    store = _store(request)
    invoice = await run_in_threadpool(store.get_invoice, request.path_params["invoice_id"])
    if invoice is None:
        return None
    profile = await run_in_threadpool(store.get_billing_profile, invoice["billing_profile_id"])
    return invoice, (profile or {}).get("name")


async def get_invoice_pdf(request: Request) -> Response:
    source = await _document_source(request)
    if source is None:
        return Response("invoice not found\n", status_code=404, media_type="text/plain")
    invoice, profile_name = source
    return Response(
        invoice_pdf(invoice, profile_name),
        media_type="application/pdf",
        # Header values must be Latin-1 and quote-free: keep the filename to safe characters.
        headers={"Content-Disposition": f'inline; filename="{re.sub(r"[^A-Za-z0-9._-]", "_", invoice["number"])}.pdf"'},
    )


async def get_invoice_page(request: Request) -> Response:
    source = await _document_source(request)
    if source is None:
        return HTMLResponse("<!doctype html><title>Not found</title><p>Invoice not found.</p>", status_code=404)
    return HTMLResponse(invoice_html(*source))
