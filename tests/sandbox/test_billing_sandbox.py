"""The billing sandbox over real HTTP: a uvicorn server on a free 127.0.0.1 port in a
background thread, exercised with httpx exactly as the bot's client will."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.billing import BillingStore, SandboxServer, seed_demo
from sandbox.billing import seed as demo

TOKEN = "test-token"


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    store = BillingStore(tmp_path_factory.mktemp("billing") / "sandbox.db")
    with SandboxServer(store, TOKEN) as server:
        yield server
    store.close()


@pytest.fixture
async def client(sandbox: SandboxServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=sandbox.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ) as http:
        # Every test starts from the demo data, no faults, no latency.
        assert (await http.post("/_sandbox/reset")).status_code == 200
        assert (await http.put("/_sandbox/config", json={"latency_seconds": 0})).status_code == 200
        seed_demo(sandbox.store, base_url=sandbox.url, stripe_customers={demo.BP_EU: "cus_eu", demo.BP_US: "cus_us"})
        yield http


def payment_body(amount: str, currency: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "payment_id": f"pay_{uuid.uuid4().hex}",
        "amount": amount,
        "currency": currency,
        "method": "card",
        "processor": "stripe",
        "processor_payment_id": f"pi_{uuid.uuid4().hex[:12]}",
        "status": "succeeded",
        "paid_by": demo.USER_FINANCE,
    }
    return body | overrides


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


async def list_all(client: httpx.AsyncClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    invoices: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = await client.get("/v1/invoices", params=params | ({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        page = response.json()
        invoices += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return invoices


async def new_invoice(client: httpx.AsyncClient, **spec: Any) -> dict[str, Any]:
    response = await client.post("/_sandbox/invoices", json={"billing_profile_id": demo.BP_EU} | spec)
    assert response.status_code == 201, response.text
    return response.json()


# -- transport and access ---------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
@pytest.mark.parametrize(
    "path", ["/v1/access?email=finance@acme.example", "/v1/invoices/inv_eu_open", "/_sandbox/config"]
)
async def test_wrong_or_missing_token_is_401(
    client: httpx.AsyncClient, sandbox: SandboxServer, headers: dict[str, str], path: str
) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url, headers=headers) as anonymous:
        response = await anonymous.get(path)
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_access(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/access", params={"email": "Finance@Acme.example"})
    assert response.status_code == 200
    assert response.json() == {
        "email": demo.USER_FINANCE,
        "permissions": ["invoice_viewer", "billing_profile_admin"],
        "billing_profile_ids": list(demo.DEMO_PROFILE_IDS),
    }
    assert (await client.get("/v1/access", params={"email": demo.USER_SALES})).json()["permissions"] == []
    assert_error(await client.get("/v1/access", params={"email": "nobody@acme.example"}), 404, "user_not_found")
    assert_error(await client.get("/v1/access"), 422, "email_required")


async def test_billing_profile(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1/billing-profiles/{demo.BP_EU}")
    assert response.status_code == 200
    assert response.json() == {
        "id": "bp_eu",
        "name": "Acme GmbH",
        "currency": "EUR",
        "country": "DE",
        "stripe_customer_id": "cus_eu",
        "card_fee_percent": "2.9",
        "wire_instructions": {
            "beneficiary": "Cloud Vendor Ltd",
            "bank_name": "Example Bank AG",
            "iban": "DE89370400440532013000",
            "swift": "COBADEFFXXX",
            "account_number": None,
            "routing_number": None,
            "reference": "Put the invoice number in the transfer reference",
        },
    }
    us = (await client.get(f"/v1/billing-profiles/{demo.BP_US}")).json()
    assert us["card_fee_percent"] is None and us["wire_instructions"]["routing_number"] == "110000000"
    assert (await client.get(f"/v1/billing-profiles/{demo.BP_KW}")).json()["stripe_customer_id"] is None
    assert_error(await client.get("/v1/billing-profiles/bp_nope"), 404, "billing_profile_not_found")


async def test_unknown_ids_and_routes_are_404_with_error_body(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/v1/invoices/inv_nope"), 404, "invoice_not_found")
    assert_error(
        await client.post("/v1/invoices/inv_nope/payments", json=payment_body("1.00", "EUR")), 404, "invoice_not_found"
    )
    assert_error(
        await client.patch(f"/v1/invoices/{demo.INV_EU_OPEN}/payments/pay_nope", json={"status": "succeeded"}),
        404,
        "payment_not_found",
    )
    assert_error(await client.get("/v1/nothing-here"), 404, "not_found")
    assert_error(await client.delete("/v1/invoices"), 405, "method_not_allowed")


# -- invoice listing --------------------------------------------------------------------


async def test_invoice_shape_and_currency_formatting(client: httpx.AsyncClient, sandbox: SandboxServer) -> None:
    invoice = (await client.get(f"/v1/invoices/{demo.INV_EU_OPEN}")).json()
    assert set(invoice) == {
        "id",
        "number",
        "billing_profile_id",
        "status",
        "currency",
        "total",
        "amount_due",
        "issued_on",
        "due_on",
        "pdf_url",
        "url",
    }
    assert (invoice["status"], invoice["total"], invoice["amount_due"]) == ("open", "1200.00", "1200.00")
    assert invoice["pdf_url"] == f"{sandbox.url}/invoices/{demo.INV_EU_OPEN}.pdf"
    assert date.fromisoformat(invoice["due_on"]) > date.fromisoformat(invoice["issued_on"])
    jp = (await client.get(f"/v1/invoices/{demo.INV_JP_OPEN}")).json()
    assert (jp["currency"], jp["total"], jp["amount_due"]) == ("JPY", "5000", "5000")
    kw = (await client.get(f"/v1/invoices/{demo.INV_KW_OPEN}")).json()
    assert (kw["currency"], kw["total"]) == ("KWD", "12.500")


async def test_list_validation(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/v1/invoices"), 422, "billing_profile_id_required")
    assert_error(await client.get("/v1/invoices", params={"status": "payable"}), 422, "billing_profile_id_required")
    for limit in ("0", "101", "-1", "ten", ""):
        assert_error(
            await client.get("/v1/invoices", params={"billing_profile_id": "bp_eu", "limit": limit}),
            422,
            "invalid_limit",
        )
    for limit in ("1", "100"):
        assert (
            await client.get("/v1/invoices", params={"billing_profile_id": "bp_eu", "limit": limit})
        ).status_code == 200
    assert_error(
        await client.get("/v1/invoices", params={"billing_profile_id": "bp_eu", "status": "unpaid"}),
        422,
        "invalid_status",
    )
    assert_error(
        await client.get("/v1/invoices", params={"billing_profile_id": "bp_eu", "cursor": "garbage!"}),
        422,
        "invalid_cursor",
    )
    # An unknown profile is not an error: it just has no invoices.
    assert (await client.get("/v1/invoices", params={"billing_profile_id": "bp_nope"})).json() == {
        "data": [],
        "next_cursor": None,
    }


async def test_list_order_and_status_filters(client: httpx.AsyncClient) -> None:
    everything = await list_all(client, {"billing_profile_id": list(demo.DEMO_PROFILE_IDS)})
    assert len(everything) == 17 + len(demo.LATER_INVOICE_IDS)
    keys = [(inv["due_on"], inv["number"]) for inv in everything]
    assert keys == sorted(keys)

    async def ids(status: str, profiles: list[str] | None = None) -> set[str]:
        params = {"billing_profile_id": profiles or list(demo.DEMO_PROFILE_IDS), "status": status}
        found = await list_all(client, params)
        if status != "payable":
            assert {inv["status"] for inv in found} <= {status}
        return {inv["id"] for inv in found}

    past_due = {
        demo.INV_EU_PAST_DUE,
        demo.INV_EU_PARTIAL_PAST_DUE,
        demo.INV_US_PAST_DUE,
        demo.INV_JP_PAST_DUE,
        demo.INV_KW_PAST_DUE,
    }
    open_ = {demo.INV_EU_OPEN, demo.INV_US_OPEN, demo.INV_US_OPEN_SMALL, demo.INV_JP_OPEN, demo.INV_KW_OPEN,
             *demo.LATER_INVOICE_IDS}
    partial = {demo.INV_EU_PARTIAL, demo.INV_JP_PARTIAL}
    assert await ids("past_due") == past_due
    assert await ids("open") == open_
    assert await ids("partially_paid") == partial
    assert await ids("payable") == past_due | open_ | partial
    assert await ids("paid") == {demo.INV_EU_PAID, demo.INV_US_PAID}
    assert await ids("canceled") == {demo.INV_EU_CANCELED}
    assert await ids("proforma") == {demo.INV_EU_PROFORMA}
    assert await ids("processing") == {demo.INV_EU_PROCESSING}
    assert await ids("payable", [demo.BP_EU]) == {
        demo.INV_EU_OPEN,
        demo.INV_EU_PAST_DUE,
        demo.INV_EU_PARTIAL,
        demo.INV_EU_PARTIAL_PAST_DUE,
        *(i for i in demo.LATER_INVOICE_IDS if i.startswith("inv_eu_")),
    }
    # More than one page of /invoices (20 a page) for someone who sees every profile, and
    # the later invoices all come after the others (the README's examples stay on page 1).
    payable = [inv for inv in everything if inv["id"] in past_due | open_ | partial]
    assert len(payable) > 20
    assert {inv["id"] for inv in payable[-len(demo.LATER_INVOICE_IDS):]} == set(demo.LATER_INVOICE_IDS)
    assert all(inv["issued_on"] <= date.today().isoformat() for inv in everything)


async def test_ties_on_due_on_are_ordered_by_number(client: httpx.AsyncClient) -> None:
    due_on = (date.today() + timedelta(days=400)).isoformat()
    for number in ("Z-3", "A-1", "M-2"):
        await new_invoice(client, number=number, total="10.00", due_on=due_on)
    later = await new_invoice(
        client, number="A-0", total="10.00", due_on=(date.today() + timedelta(days=401)).isoformat()
    )
    tail = (await list_all(client, {"billing_profile_id": "bp_eu"}))[-4:]
    assert [inv["number"] for inv in tail] == ["A-1", "M-2", "Z-3", "A-0"]
    assert tail[-1]["id"] == later["id"]


async def test_pagination_120_invoices(client: httpx.AsyncClient) -> None:
    await client.post("/_sandbox/reset")
    await client.post(
        "/_sandbox/billing-profiles", json={"id": "bp_many", "name": "Many", "currency": "EUR", "country": "DE"}
    )
    created = await client.post(
        "/_sandbox/invoices/bulk",
        json={
            "billing_profile_id": "bp_many",
            "count": 120,
            "total": "10.00",
            "due_on": date.today().isoformat(),
            "due_every_days": 0,
        },
    )
    assert created.status_code == 201 and created.json()["count"] == 120
    pages = []
    cursor = None
    while True:
        params = {"billing_profile_id": "bp_many", "limit": 50} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/invoices", params=params)).json()
        pages.append(page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str) and cursor
    assert [len(page) for page in pages] == [50, 50, 20]
    assert [inv["id"] for page in pages for inv in page] == created.json()["ids"]
    # Default page size is 50.
    assert len((await client.get("/v1/invoices", params={"billing_profile_id": "bp_many"})).json()["data"]) == 50
    # A last page that is exactly full still says next_cursor null (no empty extra page).
    first_20 = (await client.get("/v1/invoices", params={"billing_profile_id": "bp_many", "limit": 20})).json()
    last_100 = (
        await client.get(
            "/v1/invoices", params={"billing_profile_id": "bp_many", "limit": 100, "cursor": first_20["next_cursor"]}
        )
    ).json()
    assert len(last_100["data"]) == 100 and last_100["next_cursor"] is None


async def test_pagination_is_stable_while_invoices_get_paid(client: httpx.AsyncClient) -> None:
    await client.post("/_sandbox/reset")
    await client.post(
        "/_sandbox/billing-profiles", json={"id": "bp_many", "name": "Many", "currency": "JPY", "country": "JP"}
    )
    ids = (
        await client.post(
            "/_sandbox/invoices/bulk",
            json={"billing_profile_id": "bp_many", "count": 30, "total": "100", "due_every_days": 1},
        )
    ).json()["ids"]
    params = {"billing_profile_id": "bp_many", "status": "payable", "limit": 10}
    first = (await client.get("/v1/invoices", params=params)).json()
    for invoice_id in ids[:5]:  # pay invoices already seen on page 1
        assert (
            await client.post(f"/v1/invoices/{invoice_id}/payments", json=payment_body("100", "JPY"))
        ).status_code == 201
    rest = await list_all(client, params | {"cursor": first["next_cursor"]})
    assert [inv["id"] for inv in first["data"] + rest] == ids


async def test_pagination_10000_invoices(client: httpx.AsyncClient) -> None:
    await client.post("/_sandbox/reset")
    await client.post(
        "/_sandbox/billing-profiles", json={"id": "bp_big", "name": "Big", "currency": "USD", "country": "US"}
    )
    started = time.monotonic()
    created = await client.post(
        "/_sandbox/invoices/bulk",
        json={"billing_profile_id": "bp_big", "count": 10_000, "total": "5.00", "due_every_days": 1},
    )
    assert created.status_code == 201
    listed = await list_all(client, {"billing_profile_id": "bp_big", "limit": 100, "status": "payable"})
    assert [inv["id"] for inv in listed] == created.json()["ids"]
    assert time.monotonic() - started < 10


# -- payments ---------------------------------------------------------------------------


async def test_payment_then_idempotent_repeat(client: httpx.AsyncClient) -> None:
    body = payment_body("200.00", "EUR")
    first = await client.post(f"/v1/invoices/{demo.INV_EU_OPEN}/payments", json=body)
    assert first.status_code == 201, first.text
    result = first.json()
    assert set(result) == {"payment", "invoice"}
    payment = result["payment"]
    assert {k: payment[k] for k in body} == body
    assert payment["invoice_id"] == demo.INV_EU_OPEN and payment["failure_reason"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", payment["created_at"])
    assert (result["invoice"]["amount_due"], result["invoice"]["status"]) == ("1000.00", "partially_paid")

    again = await client.post(f"/v1/invoices/{demo.INV_EU_OPEN}/payments", json=body | {"amount": "200.0"})
    assert again.status_code == 200
    assert again.json() == result
    assert (await client.get(f"/v1/invoices/{demo.INV_EU_OPEN}")).json()["amount_due"] == "1000.00"
    recorded = (await client.get(f"/_sandbox/invoices/{demo.INV_EU_OPEN}/payments")).json()["data"]
    assert recorded == [payment]

    # Reusing a payment_id for a different payment is a conflict, not a replay.
    assert_error(
        await client.post(f"/v1/invoices/{demo.INV_EU_OPEN}/payments", json=body | {"amount": "300.00"}),
        409,
        "payment_id_conflict",
    )
    assert_error(
        await client.post(f"/v1/invoices/{demo.INV_EU_PARTIAL}/payments", json=body), 409, "payment_id_conflict"
    )

    rest = await client.post(f"/v1/invoices/{demo.INV_EU_OPEN}/payments", json=payment_body("1000.00", "EUR"))
    assert rest.status_code == 201
    assert (rest.json()["invoice"]["amount_due"], rest.json()["invoice"]["status"]) == ("0.00", "paid")


async def test_payment_rejections(client: httpx.AsyncClient) -> None:
    url = f"/v1/invoices/{demo.INV_EU_OPEN}/payments"
    assert_error(await client.post(url, json=payment_body("1200.01", "EUR")), 422, "amount_exceeds_balance")
    assert_error(await client.post(url, json=payment_body("0.00", "EUR")), 422, "amount_not_positive")
    assert_error(await client.post(url, json=payment_body("-5.00", "EUR")), 422, "amount_not_positive")
    assert_error(await client.post(url, json=payment_body("10.00", "USD")), 422, "currency_mismatch")
    assert_error(await client.post(url, json=payment_body("10.001", "EUR")), 422, "invalid_amount")
    assert_error(await client.post(url, json=payment_body(10.5, "EUR")), 422, "invalid_amount")  # type: ignore[arg-type]
    assert_error(await client.post(url, json=payment_body("1e3", "EUR")), 422, "invalid_amount")
    assert_error(await client.post(url, json=payment_body("10.00", "EUR", method="cash")), 422, "invalid_request")
    assert_error(await client.post(url, json=payment_body("10.00", "EUR", status="failed")), 422, "invalid_request")
    assert_error(await client.post(url, content=b"{nope"), 422, "invalid_json")
    assert_error(
        await client.post(f"/v1/invoices/{demo.INV_JP_OPEN}/payments", json=payment_body("4999.5", "JPY")),
        422,
        "invalid_amount",
    )
    for invoice_id, currency in [
        (demo.INV_EU_PAID, "EUR"),
        (demo.INV_EU_CANCELED, "EUR"),
        (demo.INV_EU_PROFORMA, "EUR"),
        (demo.INV_EU_PROCESSING, "EUR"),
    ]:
        assert_error(
            await client.post(f"/v1/invoices/{invoice_id}/payments", json=payment_body("1.00", currency)),
            422,
            "invoice_not_payable",
        )
    # Nothing was recorded and the balance is untouched.
    assert (await client.get(f"/_sandbox/invoices/{demo.INV_EU_OPEN}/payments")).json() == {"data": []}
    assert (await client.get(f"/v1/invoices/{demo.INV_EU_OPEN}")).json()["amount_due"] == "1200.00"


@pytest.mark.parametrize(
    ("currency", "total", "shown", "payments", "refused"),
    [
        # ISO 4217 digits, not CLDR's display digits: HUF and IDR have two decimals.
        ("HUF", "150000", "150000.00", ["100000", "49999.50", "0.5"], ["1.000", "1e3", "0.005"]),
        ("IDR", "1500000.00", "1500000.00", ["1000000.5", "499999.50"], ["1.001"]),
        ("ISK", "5000", "5000", ["4999", "1"], ["1.0", "0.5"]),
        ("CLF", "1.2345", "1.2345", ["1.2", "0.0345"], ["0.00001"]),
    ],
)
async def test_amounts_follow_iso_4217_digits(
    client: httpx.AsyncClient, currency: str, total: str, shown: str, payments: list[str], refused: list[str]
) -> None:
    profile = f"bp_{currency.lower()}"
    created = await client.post(
        "/_sandbox/billing-profiles", json={"id": profile, "name": currency, "currency": currency, "country": "DE"}
    )
    assert created.status_code in (200, 201), created.text
    invoice = await new_invoice(client, billing_profile_id=profile, total=total)
    assert (invoice["total"], invoice["amount_due"]) == (shown, shown)
    url = f"/v1/invoices/{invoice['id']}/payments"
    for amount in refused:
        assert_error(await client.post(url, json=payment_body(amount, currency)), 422, "invalid_amount")
    for amount in payments:  # trailing zeros may be left out
        response = await client.post(url, json=payment_body(amount, currency))
        assert response.status_code == 201, response.text
    after = (await client.get(f"/v1/invoices/{invoice['id']}")).json()
    assert after["status"] == "paid" and after["amount_due"] == ("0" if currency == "ISK" else "0." + "0" * (len(shown.partition(".")[2])))


async def test_amounts_are_plain_strings_without_a_trailing_newline(client: httpx.AsyncClient) -> None:
    url = f"/v1/invoices/{demo.INV_EU_OPEN}/payments"
    assert_error(await client.post(url, json=payment_body("10.00\n", "EUR")), 422, "invalid_amount")


async def test_jpy_and_kwd_amounts(client: httpx.AsyncClient) -> None:
    jp = await client.post(f"/v1/invoices/{demo.INV_JP_OPEN}/payments", json=payment_body("5000", "JPY"))
    assert jp.status_code == 201
    assert jp.json()["payment"]["amount"] == "5000"
    assert (jp.json()["invoice"]["amount_due"], jp.json()["invoice"]["status"]) == ("0", "paid")
    kw = await client.post(f"/v1/invoices/{demo.INV_KW_OPEN}/payments", json=payment_body("2.5", "KWD"))
    assert kw.status_code == 201
    assert (kw.json()["payment"]["amount"], kw.json()["invoice"]["amount_due"]) == ("2.500", "10.000")


async def test_partial_payment_on_past_due_invoice_stays_past_due(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/v1/invoices/{demo.INV_EU_PAST_DUE}/payments", json=payment_body("45.50", "EUR"))
    assert (response.json()["invoice"]["status"], response.json()["invoice"]["amount_due"]) == ("past_due", "800.00")
    listed = await list_all(client, {"billing_profile_id": "bp_eu", "status": "past_due"})
    assert demo.INV_EU_PAST_DUE in {inv["id"] for inv in listed}


async def test_processing_payment_settles_succeeded(client: httpx.AsyncClient) -> None:
    body = payment_body("1200.00", "EUR", method="bank_debit", status="processing")
    posted = (await client.post(f"/v1/invoices/{demo.INV_EU_OPEN}/payments", json=body)).json()
    assert (posted["payment"]["status"], posted["invoice"]["status"], posted["invoice"]["amount_due"]) == (
        "processing",
        "processing",
        "0.00",
    )
    payable = await list_all(client, {"billing_profile_id": "bp_eu", "status": "payable"})
    assert demo.INV_EU_OPEN not in {inv["id"] for inv in payable}

    settled = await client.patch(
        f"/v1/invoices/{demo.INV_EU_OPEN}/payments/{body['payment_id']}", json={"status": "succeeded"}
    )
    assert settled.status_code == 200
    assert (settled.json()["payment"]["status"], settled.json()["invoice"]["status"]) == ("succeeded", "paid")
    # Repeating the same settlement is a safe retry; the opposite one is a conflict.
    repeat = await client.patch(
        f"/v1/invoices/{demo.INV_EU_OPEN}/payments/{body['payment_id']}", json={"status": "succeeded"}
    )
    assert repeat.status_code == 200 and repeat.json() == settled.json()
    assert_error(
        await client.patch(f"/v1/invoices/{demo.INV_EU_OPEN}/payments/{body['payment_id']}", json={"status": "failed"}),
        409,
        "payment_not_processing",
    )
    # The POST replay still answers 200 after settlement (it now shows the settled state).
    replay = await client.post(f"/v1/invoices/{demo.INV_EU_OPEN}/payments", json=body)
    assert replay.status_code == 200 and replay.json()["payment"]["status"] == "succeeded"


async def test_processing_payment_fails_and_restores_balance_and_status(client: httpx.AsyncClient) -> None:
    body = payment_body("125.00", "EUR", method="bank_debit", status="processing")
    url = f"/v1/invoices/{demo.INV_EU_PARTIAL_PAST_DUE}/payments"
    assert (await client.post(url, json=body)).json()["invoice"]["status"] == "processing"
    failed = await client.patch(
        f"{url}/{body['payment_id']}", json={"status": "failed", "failure_reason": "insufficient_funds"}
    )
    assert failed.status_code == 200
    assert (failed.json()["payment"]["status"], failed.json()["payment"]["failure_reason"]) == (
        "failed",
        "insufficient_funds",
    )
    assert (failed.json()["invoice"]["status"], failed.json()["invoice"]["amount_due"]) == ("past_due", "125.00")
    # Back to payable.
    assert (await client.post(url, json=payment_body("125.00", "EUR"))).json()["invoice"]["status"] == "paid"

    # The seeded processing debit on a not-yet-due invoice goes back to `open`.
    seeded = await client.patch(
        f"/v1/invoices/{demo.INV_EU_PROCESSING}/payments/{demo.PAY_EU_PROCESSING}",
        json={"status": "failed", "failure_reason": "account_closed"},
    )
    assert (seeded.json()["invoice"]["status"], seeded.json()["invoice"]["amount_due"]) == ("open", "640.00")
    assert_error(
        await client.patch(
            f"/v1/invoices/{demo.INV_EU_PROCESSING}/payments/{demo.PAY_EU_PROCESSING}", json={"status": "processing"}
        ),
        422,
        "invalid_request",
    )


async def test_concurrent_payments_never_overdraw(client: httpx.AsyncClient) -> None:
    invoice = await new_invoice(client, total="1000.00")
    url = f"/v1/invoices/{invoice['id']}/payments"
    # Latency holds all 50 requests in flight so they reach the store together.
    await client.put("/_sandbox/config", json={"latency_seconds": 0.2})
    responses = await asyncio.gather(*(client.post(url, json=payment_body("30.00", "EUR")) for _ in range(50)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 33 + [422] * 17  # 33 x 30.00 = 990.00 fits, the 34th would not
    for response in responses:
        if response.status_code == 422:
            assert_error(response, 422, "amount_exceeds_balance")
    assert (await client.get(f"/v1/invoices/{invoice['id']}")).json()["amount_due"] == "10.00"
    assert len((await client.get(f"/_sandbox/invoices/{invoice['id']}/payments")).json()["data"]) == 33


async def test_concurrent_retries_of_one_payment_record_it_once(client: httpx.AsyncClient) -> None:
    body = payment_body("100.00", "EUR")
    responses = await asyncio.gather(
        *(client.post(f"/v1/invoices/{demo.INV_EU_OPEN}/payments", json=body) for _ in range(10))
    )
    assert sorted(response.status_code for response in responses) == [200] * 9 + [201]
    assert (await client.get(f"/v1/invoices/{demo.INV_EU_OPEN}")).json()["amount_due"] == "1100.00"


# -- knobs: faults and latency ----------------------------------------------------------


async def test_fault_before_processing(client: httpx.AsyncClient) -> None:
    fault = await client.post(
        "/_sandbox/faults",
        json={
            "method": "POST",
            "path_regex": r"^/v1/invoices/[^/]+/payments$",
            "status": 503,
            "count": 1,
            "retry_after": 2,
        },
    )
    assert fault.status_code == 201
    body = payment_body("10.00", "EUR")
    url = f"/v1/invoices/{demo.INV_EU_OPEN}/payments"
    # A GET does not match the method: unaffected.
    assert (await client.get(f"/v1/invoices/{demo.INV_EU_OPEN}")).status_code == 200
    failed = await client.post(url, json=body)
    assert_error(failed, 503, "service_unavailable")
    assert failed.headers["Retry-After"] == "2"
    assert (await client.get(f"/_sandbox/invoices/{demo.INV_EU_OPEN}/payments")).json()["data"] == []
    assert (await client.post(url, json=body)).status_code == 201  # count was 1


async def test_fault_after_processing_simulates_a_lost_response(client: httpx.AsyncClient) -> None:
    await client.post(
        "/_sandbox/faults",
        json={
            "method": "POST",
            "path_regex": r"^/v1/invoices/[^/]+/payments$",
            "status": 504,
            "count": 1,
            "after_processing": True,
        },
    )
    body = payment_body("10.00", "EUR")
    url = f"/v1/invoices/{demo.INV_EU_OPEN}/payments"
    assert_error(await client.post(url, json=body), 504, "gateway_timeout")
    recorded = (await client.get(f"/_sandbox/invoices/{demo.INV_EU_OPEN}/payments")).json()["data"]
    assert [payment["payment_id"] for payment in recorded] == [body["payment_id"]]
    retry = await client.post(url, json=body)
    assert retry.status_code == 200 and retry.json()["invoice"]["amount_due"] == "1190.00"


async def test_fault_429_has_retry_after_and_faults_can_be_cleared(client: httpx.AsyncClient) -> None:
    await client.post("/_sandbox/faults", json={"path_regex": "^/v1/access$", "status": 429, "count": None})
    for _ in range(3):
        response = await client.get("/v1/access", params={"email": demo.USER_FINANCE})
        assert_error(response, 429, "rate_limited")
        assert response.headers["Retry-After"] == "1"
    assert len((await client.get("/_sandbox/faults")).json()["data"]) == 1
    assert (await client.delete("/_sandbox/faults")).json() == {"cleared": 1}
    assert (await client.get("/v1/access", params={"email": demo.USER_FINANCE})).status_code == 200
    assert_error(await client.post("/_sandbox/faults", json={"path_regex": "(", "status": 503}), 422, "invalid_request")


async def test_latency_applies_per_request_without_blocking_others(client: httpx.AsyncClient) -> None:
    assert (await client.put("/_sandbox/config", json={"latency_seconds": 0.5})).json() == {"latency_seconds": 0.5}
    started = time.monotonic()
    responses = await asyncio.gather(*(client.get(f"/v1/invoices/{demo.INV_EU_OPEN}") for _ in range(50)))
    elapsed = time.monotonic() - started
    assert all(response.status_code == 200 for response in responses)
    assert 0.5 <= elapsed < 2.0
    # Admin endpoints are not slowed down.
    started = time.monotonic()
    await client.get("/_sandbox/config")
    assert time.monotonic() - started < 0.4


# -- admin and documents ----------------------------------------------------------------


async def test_admin_created_invoice_links_serve_pdf_and_html(
    client: httpx.AsyncClient, sandbox: SandboxServer
) -> None:
    invoice = await new_invoice(
        client, total="99.90", amount_due="49.90", due_on=(date.today() + timedelta(days=5)).isoformat()
    )
    assert invoice["id"].startswith("inv_") and invoice["number"].startswith("SBX-")
    assert (invoice["status"], invoice["currency"], invoice["amount_due"]) == ("partially_paid", "EUR", "49.90")
    assert invoice["pdf_url"] == f"{sandbox.url}/invoices/{invoice['id']}.pdf"
    async with httpx.AsyncClient() as browser:  # documents need no bearer token
        pdf = await browser.get(invoice["pdf_url"])
        page = await browser.get(invoice["url"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    data = pdf.content
    assert data.startswith(b"%PDF-1.") and data.rstrip().endswith(b"%%EOF")
    xref_at = int(data.rsplit(b"startxref", 1)[1].split()[0])
    assert data[xref_at:].startswith(b"xref")
    for number, entry in enumerate(re.findall(rb"(\d{10}) 00000 n", data), start=1):
        assert data[int(entry) :].startswith(b"%d 0 obj" % number)
    assert page.status_code == 200 and invoice["number"] in page.text

    assert_error(
        await client.post(
            "/_sandbox/invoices", json={"billing_profile_id": "bp_eu", "number": invoice["number"], "total": "1.00"}
        ),
        409,
        "duplicate_invoice_number",
    )
    assert_error(
        await client.post("/_sandbox/invoices", json={"billing_profile_id": "bp_eu", "total": "1.001"}),
        422,
        "invalid_amount",
    )
    assert_error(
        await client.post("/_sandbox/invoices", json={"billing_profile_id": "bp_nope", "total": "1.00"}),
        422,
        "unknown_billing_profile",
    )
    past = await new_invoice(
        client, total="5.00", status="past_due", due_on=(date.today() - timedelta(days=1)).isoformat()
    )
    assert past["status"] == "past_due"


async def test_admin_users_profiles_and_reset(client: httpx.AsyncClient) -> None:
    profile = await client.post(
        "/_sandbox/billing-profiles",
        json={
            "name": "Acme SARL",
            "currency": "EUR",
            "country": "FR",
            "wire_instructions": {"iban": "FR7630006000011234567890189"},
        },
    )
    assert profile.status_code == 200
    created = profile.json()
    assert created["id"].startswith("bp_") and created["wire_instructions"]["swift"] is None
    user = await client.post(
        "/_sandbox/users",
        json={"email": "ops@acme.example", "permissions": ["invoice_viewer"], "billing_profile_ids": [created["id"]]},
    )
    assert user.status_code == 200
    assert (await client.get("/v1/access", params={"email": "ops@acme.example"})).json()["billing_profile_ids"] == [
        created["id"]
    ]
    assert_error(
        await client.post("/_sandbox/billing-profiles", json={"name": "X", "currency": "XYZ", "country": "FR"}),
        422,
        "invalid_request",
    )

    assert (await client.post("/_sandbox/reset")).json() == {"reset": True}
    assert_error(await client.get(f"/v1/invoices/{demo.INV_EU_OPEN}"), 404, "invoice_not_found")
    assert_error(await client.get("/v1/access", params={"email": demo.USER_FINANCE}), 404, "user_not_found")


async def test_seed_is_idempotent_and_keeps_payments(client: httpx.AsyncClient, sandbox: SandboxServer) -> None:
    await client.post(f"/v1/invoices/{demo.INV_US_OPEN}/payments", json=payment_body("1000.00", "USD"))
    seed_demo(sandbox.store, base_url="http://127.0.0.1:1", stripe_customers={demo.BP_US: "cus_new"})
    invoice = (await client.get(f"/v1/invoices/{demo.INV_US_OPEN}")).json()
    assert invoice["amount_due"] == "14000.00"
    assert invoice["pdf_url"] == f"http://127.0.0.1:1/invoices/{demo.INV_US_OPEN}.pdf"
    assert (await client.get(f"/v1/billing-profiles/{demo.BP_US}")).json()["stripe_customer_id"] == "cus_new"
    assert (await client.get(f"/v1/billing-profiles/{demo.BP_EU}")).json()["stripe_customer_id"] is None


def test_cli_serves_seeded_data_and_prints_its_url(tmp_path: Path) -> None:
    repo_root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.billing",
            "--port",
            "0",
            "--db",
            str(tmp_path / "cli.db"),
            "--token",
            "cli-token",
            "--stripe-customer",
            "bp_eu=cus_cli",
        ],
        cwd=repo_root,
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(repo_root)},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"Billing sandbox ready at (http://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        headers = {"Authorization": "Bearer cli-token"}
        profile = httpx.get(f"{match[1]}/v1/billing-profiles/{demo.BP_EU}", headers=headers).json()
        assert profile["stripe_customer_id"] == "cus_cli"
        invoice = httpx.get(f"{match[1]}/v1/invoices/{demo.INV_EU_OPEN}", headers=headers).json()
        assert invoice["pdf_url"] == f"{match[1]}/invoices/{demo.INV_EU_OPEN}.pdf"
    finally:
        process.terminate()
        process.wait(timeout=10)
