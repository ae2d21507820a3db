"""Sandbox-only admin endpoints under /_sandbox/ (same bearer token as /v1).

They exist for tests and the demo: create users, profiles and invoices, read back the
payments the bot recorded, and turn latency and fault knobs at runtime.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .errors import rejected
from .faults import Fault, FaultInjector, SandboxConfig
from .money import is_known_currency, parse_minor
from .store import (
    PAYABLE_STORED_STATUSES,
    REPORTED_STATUSES,
    WIRE_INSTRUCTION_FIELDS,
    BillingStore,
    NewInvoice,
    new_id,
)
from .validation import optional_date, optional_int, optional_str, read_json_object, require_str, str_list

MAX_BULK_INVOICES = 50_000
DEFAULT_DUE_IN_DAYS = 30
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
_PERCENT_RE = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def routes() -> list[BaseRoute]:
    return [
        Route("/_sandbox/users", upsert_user, methods=["POST"]),
        Route("/_sandbox/billing-profiles", upsert_billing_profile, methods=["POST"]),
        Route("/_sandbox/invoices", create_invoice, methods=["POST"]),
        Route("/_sandbox/invoices/bulk", create_invoices_bulk, methods=["POST"]),
        Route("/_sandbox/invoices/{invoice_id}/payments", list_payments, methods=["GET"]),
        Route("/_sandbox/config", get_config, methods=["GET"]),
        Route("/_sandbox/config", put_config, methods=["PUT"]),
        Route("/_sandbox/faults", list_faults, methods=["GET"]),
        Route("/_sandbox/faults", add_fault, methods=["POST"]),
        Route("/_sandbox/faults", clear_faults, methods=["DELETE"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
    ]


def _store(request: Request) -> BillingStore:
    return request.app.state.store  # type: ignore[no-any-return]


def _faults(request: Request) -> FaultInjector:
    return request.app.state.faults  # type: ignore[no-any-return]


def _config(request: Request) -> SandboxConfig:
    return request.app.state.config  # type: ignore[no-any-return]


def base_url(request: Request) -> str:
    """The URL the client reached us on, so generated document links work for it."""
    return str(request.base_url).rstrip("/")


# -- users and profiles -----------------------------------------------------------------


async def upsert_user(request: Request) -> Response:
    body = await read_json_object(request)
    email = require_str(body, "email")
    if "@" not in email:
        raise rejected("invalid_request", "email must be an email address")
    user = await run_in_threadpool(
        _store(request).upsert_user, email, str_list(body, "permissions"), str_list(body, "billing_profile_ids")
    )
    return JSONResponse(user)


def validate_billing_profile(body: dict[str, Any]) -> dict[str, Any]:
    """Validate an admin/seed profile and return it in the contract's wire shape."""
    currency = body.get("currency")
    if not is_known_currency(currency):
        raise rejected("invalid_request", "currency must be an upper-case ISO 4217 code")
    country = body.get("country")
    if not isinstance(country, str) or not _COUNTRY_RE.match(country):
        raise rejected("invalid_request", "country must be an upper-case ISO 3166-1 alpha-2 code")
    fee = body.get("card_fee_percent")
    if fee is not None and (not isinstance(fee, str) or not _PERCENT_RE.match(fee)):
        raise rejected("invalid_request", "card_fee_percent must be a non-negative decimal string or null")
    wire = body.get("wire_instructions")
    if wire is not None:
        if not isinstance(wire, dict) or set(wire) - set(WIRE_INSTRUCTION_FIELDS):
            raise rejected(
                "invalid_request",
                f"wire_instructions must be null or an object with keys {', '.join(WIRE_INSTRUCTION_FIELDS)}",
            )
        if not all(value is None or isinstance(value, str) for value in wire.values()):
            raise rejected("invalid_request", "wire_instructions values must be strings or null")
        wire = {key: wire.get(key) for key in WIRE_INSTRUCTION_FIELDS}  # missing keys -> null
    profile_id = body.get("id") or new_id("bp")
    if not isinstance(profile_id, str):
        raise rejected("invalid_request", "id must be a string")
    return {
        "id": profile_id,
        "name": require_str(body, "name"),
        "currency": currency,
        "country": country,
        "stripe_customer_id": optional_str(body, "stripe_customer_id", max_length=255),
        "card_fee_percent": fee,
        "wire_instructions": wire,
    }


async def upsert_billing_profile(request: Request) -> Response:
    profile = validate_billing_profile(await read_json_object(request))
    return JSONResponse(await run_in_threadpool(_store(request).upsert_billing_profile, profile))


# -- invoices ---------------------------------------------------------------------------


def build_invoice(
    body: dict[str, Any],
    profile: dict[str, Any],
    *,
    base: str,
    today: date,
    invoice_id: str | None = None,
    due_on: date | None = None,
) -> NewInvoice:
    """Validate one admin invoice spec and fill in the defaults."""
    currency = body.get("currency") or profile["currency"]
    if not is_known_currency(currency):
        raise rejected("invalid_request", "currency must be an upper-case ISO 4217 code")
    total = parse_minor(body.get("total", "100"), currency, "total")
    amount_due = parse_minor(body["amount_due"], currency, "amount_due") if "amount_due" in body else total
    if total < 0 or not 0 <= amount_due <= total:
        raise rejected("invalid_amount", "need total >= 0 and 0 <= amount_due <= total")

    due_on = due_on or optional_date(body, "due_on") or today + timedelta(days=DEFAULT_DUE_IN_DAYS)
    issued_on = optional_date(body, "issued_on") or due_on - timedelta(days=30)

    # Default status follows the amounts. `past_due` is derived, never stored: accept it
    # as a request for an overdue open/partially paid invoice.
    by_amount = "paid" if amount_due == 0 else "open" if amount_due == total else "partially_paid"
    status = body.get("status") or by_amount
    if status not in REPORTED_STATUSES:
        raise rejected("invalid_request", f"status must be one of {', '.join(REPORTED_STATUSES)}")
    if status == "past_due":
        if due_on >= today:
            raise rejected("invalid_request", "a past_due invoice needs a due_on before today (UTC)")
        status = by_amount if by_amount in PAYABLE_STORED_STATUSES else "open"

    invoice_id = invoice_id or optional_str(body, "id", max_length=64) or new_id("inv")
    number = optional_str(body, "number", max_length=64)
    return NewInvoice(
        id=invoice_id,
        number=number,
        billing_profile_id=profile["id"],
        status=status,
        currency=currency,
        total_minor=total,
        amount_due_minor=amount_due,
        issued_on=issued_on,
        due_on=due_on,
        pdf_url=optional_str(body, "pdf_url") or f"{base}/invoices/{invoice_id}.pdf",
        url=optional_str(body, "url") or f"{base}/invoices/{invoice_id}",
    )


async def _profile_for(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    profile_id = require_str(body, "billing_profile_id")
    profile = await run_in_threadpool(_store(request).get_billing_profile, profile_id)
    if profile is None:
        raise rejected("unknown_billing_profile", f"no billing profile {profile_id!r}")
    return profile


async def create_invoice(request: Request) -> Response:
    body = await read_json_object(request)
    store = _store(request)
    invoice = build_invoice(body, await _profile_for(request, body), base=base_url(request), today=store.today())
    await run_in_threadpool(store.insert_invoices, [invoice])
    return JSONResponse(await run_in_threadpool(store.get_invoice, invoice.id), status_code=201)


async def create_invoices_bulk(request: Request) -> Response:
    """`count` invoices from one spec; `due_every_days` spreads their due dates.

    Numbers are drawn in order, so with equal due dates the listing order equals the
    creation order (the returned `ids` order).
    """
    body = await read_json_object(request)
    if "id" in body or "number" in body:
        raise rejected("invalid_request", "id and number are generated in bulk")
    store = _store(request)
    profile = await _profile_for(request, body)
    count = optional_int(body, "count", 1, minimum=1, maximum=MAX_BULK_INVOICES)
    step = optional_int(body, "due_every_days", 0, minimum=0, maximum=3650)
    today = store.today()
    base = base_url(request)
    first = build_invoice(body, profile, base=base, today=today)  # validates the spec once
    invoices = [
        build_invoice(body, profile, base=base, today=today, due_on=first.due_on + timedelta(days=i * step))
        for i in range(count)
    ]
    await run_in_threadpool(store.insert_invoices, invoices)
    return JSONResponse({"count": count, "ids": [invoice.id for invoice in invoices]}, status_code=201)


async def list_payments(request: Request) -> Response:
    payments = await run_in_threadpool(_store(request).list_payments, request.path_params["invoice_id"])
    return JSONResponse({"data": payments})


# -- knobs ------------------------------------------------------------------------------


async def get_config(request: Request) -> Response:
    return JSONResponse({"latency_seconds": _config(request).latency_seconds})


async def put_config(request: Request) -> Response:
    body = await read_json_object(request)
    latency = body.get("latency_seconds", _config(request).latency_seconds)
    # A duration, not money: a JSON number is the natural type here.
    if not isinstance(latency, int | float) or isinstance(latency, bool) or not 0 <= latency <= 600:
        raise rejected("invalid_request", "latency_seconds must be a number from 0 to 600")
    _config(request).latency_seconds = float(latency)
    return await get_config(request)


async def list_faults(request: Request) -> Response:
    return JSONResponse({"data": [fault.to_json() for fault in _faults(request).faults]})


async def add_fault(request: Request) -> Response:
    fault = Fault.from_json(await read_json_object(request))
    _faults(request).add(fault)
    return JSONResponse(fault.to_json(), status_code=201)


async def clear_faults(request: Request) -> Response:
    return JSONResponse({"cleared": _faults(request).clear()})


async def reset(request: Request) -> Response:
    """Empty every table and disarm all faults; latency is left as configured."""
    await run_in_threadpool(_store(request).reset)
    _faults(request).clear()
    return JSONResponse({"reset": True})
