"""Client of the billing backend's HTTP contract (`docs/billing-api.md`).

One `httpx.AsyncClient` per backend with timeouts; 429/502/503/504 are retried with
`Retry-After` (or exponential backoff), everything else surfaces as a `BillingError`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.money import Money, MoneyError
from bot.retry import BILLING_CALL, Backoff, retry_after

log = logging.getLogger(__name__)

# The version of docs/billing-api.md this client follows (`invoicebot check` compares it
# with what the backend advertises at GET /v1/meta).
CONTRACT_VERSION = "1.1"

PAYABLE_STATUSES = frozenset({"open", "partially_paid", "past_due"})
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


# -- models ------------------------------------------------------------------------------
class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Access(_Model):
    email: str
    permissions: list[str] = Field(default_factory=list)
    billing_profile_ids: list[str] = Field(default_factory=list)

    @property
    def is_invoice_viewer(self) -> bool:
        return "invoice_viewer" in self.permissions

    @property
    def is_profile_admin(self) -> bool:
        return "billing_profile_admin" in self.permissions

    def may_see(self, billing_profile_id: str) -> bool:
        return self.is_invoice_viewer and billing_profile_id in self.billing_profile_ids


class WireInstructions(_Model):
    beneficiary: str | None = None
    bank_name: str | None = None
    iban: str | None = None
    swift: str | None = None
    account_number: str | None = None
    routing_number: str | None = None
    reference: str | None = None


class BillingProfile(_Model):
    id: str
    name: str
    currency: str
    country: str | None = None
    stripe_customer_id: str | None = None
    card_fee_percent: Decimal | None = None
    wire_instructions: WireInstructions | None = None


class Invoice(_Model):
    id: str
    number: str
    billing_profile_id: str
    status: str
    currency: str
    total: Decimal
    amount_due: Decimal
    issued_on: dt.date | None = None
    due_on: dt.date
    pdf_url: str | None = None
    url: str | None = None

    @property
    def total_money(self) -> Money:
        return Money(self.total, self.currency)

    @property
    def balance(self) -> Money:
        return Money(self.amount_due, self.currency)

    @property
    def is_payable(self) -> bool:
        return self.status in PAYABLE_STATUSES and self.amount_due > 0

    @property
    def is_partly_paid(self) -> bool:
        """Something was paid and a balance is left, whatever the status says: a past-due
        invoice can be partly paid too, and the contract's status then says only `past_due`."""
        return self.status == "partially_paid" or (self.is_payable and 0 < self.amount_due < self.total)

    def is_overdue(self, today: dt.date) -> bool:
        return self.status == "past_due" or (self.is_payable and self.due_on < today)

    @model_validator(mode="before")
    @classmethod
    def _amounts_as_the_contract_says(cls, data: Any) -> Any:
        """Decimal strings in major units with at most ISO 4217's digits, never floats: an
        invoice that breaks this is refused whole rather than read approximately."""
        if isinstance(data, dict):
            currency = data.get("currency")
            for name in ("total", "amount_due"):
                value = data.get(name)
                # JSON gives strings (the contract) or numbers (refused); a Decimal comes only
                # from our own code, already exact, and must still fit the currency's digits.
                if not isinstance(value, (str, Decimal)) or not isinstance(currency, str):
                    raise ValueError(f"{name} must be a decimal string")
                try:
                    text = value if isinstance(value, str) else Money(value, currency).api_string()
                    data = {**data, name: Money.from_api(text, currency).amount}
                except MoneyError as exc:
                    raise ValueError(f"{name}: {exc}") from None
        return data


class InvoicePage(_Model):
    data: list[Invoice]
    next_cursor: str | None = None


class PaymentRecord(_Model):
    payment_id: str
    amount: str
    currency: str
    method: Literal["card", "bank_debit"]
    processor: str = "stripe"
    processor_payment_id: str
    status: Literal["succeeded", "processing"]
    paid_by: str


class RecordedPayment(_Model):
    payment: dict[str, Any]
    invoice: Invoice


# -- errors ------------------------------------------------------------------------------
class BillingError(Exception):
    """A non-2xx answer or no answer; `code` is the contract's snake_case code."""

    def __init__(self, status: int | None, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @property
    def transient(self) -> bool:
        """Worth trying again later, per the contract: no answer at all, or 429/502/503/504.
        Everything else (a 409 conflict, a 422, a 500 bug) will answer the same next time."""
        return self.status is None or self.status in RETRYABLE_STATUSES


class BillingNotFound(BillingError):
    pass


# -- client ------------------------------------------------------------------------------
class BillingClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        backoff: Backoff = BILLING_CALL,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            transport=transport,
        )
        self._backoff = backoff
        # The wait between tries is injected so tests count waits without patching
        # asyncio.sleep for every task on the loop.
        self._sleep = sleep

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                # Only idempotent requests are retried after a network error; POST of a
                # payment is idempotent by payment_id, so it qualifies too.
                if self._backoff.exhausted(attempt):
                    raise BillingError(None, "unreachable", f"billing API unreachable ({type(exc).__name__})") from exc
                delay = self._backoff.delay(attempt).total_seconds()
            else:
                if response.is_success:
                    return response.json()
                error = _error_of(response)
                if response.status_code not in RETRYABLE_STATUSES or self._backoff.exhausted(attempt):
                    raise error
                # The server's Retry-After when it sends one (never sooner), else the curve.
                delay = retry_after(response.headers.get("Retry-After"), cap=30.0) or \
                    self._backoff.delay(attempt).total_seconds()
            await self._sleep(delay)

    async def get_access(self, email: str) -> Access:
        return Access.model_validate(await self._request("GET", "/v1/access", params={"email": email}))

    async def get_billing_profile(self, profile_id: str) -> BillingProfile:
        return BillingProfile.model_validate(await self._request("GET", f"/v1/billing-profiles/{_seg(profile_id)}"))

    async def get_invoice(self, invoice_id: str) -> Invoice:
        return Invoice.model_validate(await self._request("GET", f"/v1/invoices/{_seg(invoice_id)}"))

    async def list_invoices_page(
        self, profile_ids: Sequence[str], *, status: str = "payable", limit: int = 100, cursor: str | None = None
    ) -> InvoicePage:
        params: list[tuple[str, str]] = [("billing_profile_id", pid) for pid in profile_ids]
        params += [("status", status), ("limit", str(limit))]
        if cursor:
            params.append(("cursor", cursor))
        return InvoicePage.model_validate(await self._request("GET", "/v1/invoices", params=params))

    async def iter_invoices(self, profile_ids: Sequence[str], *, status: str = "payable") -> AsyncIterator[Invoice]:
        cursor: str | None = None
        while True:
            page = await self.list_invoices_page(profile_ids, status=status, cursor=cursor)
            for invoice in page.data:
                yield invoice
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def record_payment(self, invoice_id: str, record: PaymentRecord) -> RecordedPayment:
        body = await self._request("POST", f"/v1/invoices/{_seg(invoice_id)}/payments", json=record.model_dump())
        return RecordedPayment.model_validate(body)

    async def settle_payment(
        self, invoice_id: str, payment_id: str, *, succeeded: bool, failure_reason: str | None = None
    ) -> RecordedPayment:
        body: dict[str, str] = {"status": "succeeded"} if succeeded else {
            "status": "failed", "failure_reason": failure_reason or "payment failed"}
        data = await self._request("PATCH", f"/v1/invoices/{_seg(invoice_id)}/payments/{_seg(payment_id)}", json=body)
        return RecordedPayment.model_validate(data)


def _seg(value: str) -> str:
    """Ids go into paths; never let one carry a slash or dot-segment."""
    from urllib.parse import quote

    return quote(value, safe="")


def _error_of(response: httpx.Response) -> BillingError:
    code, message = f"http_{response.status_code}", response.reason_phrase
    try:
        error = response.json().get("error") or {}
        code = str(error.get("code") or code)
        message = str(error.get("message") or message)
    except (ValueError, AttributeError):
        pass
    cls = BillingNotFound if response.status_code == 404 else BillingError
    return cls(response.status_code, code, message)
