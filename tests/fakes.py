"""In-memory fakes of the payment core's ports (`bot/ports.py`), for fast unit tests.

* `FakeBilling` is a `BillingApi`: invoices and their payment records, idempotent on the
  payment id as the contract says (docs/billing-api.md), with faults.
* `FakeStripe` is a `PaymentIntents`: PaymentIntents as Stripe-shaped dicts, idempotent on
  the keys; what a confirm does is chosen by the payment method (`CARD`, `DECLINED`,
  `THREE_D_SECURE`, `BANK_DEBIT`); it counts charges and refunds; 3-D Secure and bank debits
  finish later (`authenticate`, `settle_debit`), returning the webhook object Stripe would send.
* `FakeNotifier` is a `PaymentNotifier`: it builds outbox messages with the real adapter's
  dedupe keys (so "told once" is checked by the database, as in production) and records
  every live update.
* `FakeClock` is a `Clock` that stands still until the test moves it (`move`): the
  processor, the reconciler and the repository read it, so "a retry comes due after five
  minutes" is a step of a test, not a wait.
* `Faults` arms a failure at a named point, before or after the call reaches the fake:
  a crash (`Crash`, raised out of whatever is running, as a process dying there would), a
  timeout (Stripe: `StripeUnavailable`; billing: no answer), billing down (503) or billing
  refusing for good (422 on a record, 409 on a settle), or a call that hangs (before or
  after it took effect) until whoever waits on it gives up (the submission's deadline).

The real `storage` repositories run on an in-memory SQLite database (`memory_database`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import hmac
import itertools
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateIndex, CreateTable

from bot.billing import BillingError, BillingNotFound, Invoice, PaymentRecord, RecordedPayment
from bot.money import Money
from bot.stripe_gateway import IntentResult, StripeRejected, StripeUnavailable, intent_result
from storage.models import Base, OutboxMessage, Payment

T = TypeVar("T")

# Payment methods: what confirming an intent with them does.
CARD = "pm_card_visa"
DECLINED = "pm_card_declined"
THREE_D_SECURE = "pm_card_3ds"
BANK_DEBIT = "pm_sepa_debit"

Point = Literal["stripe.create", "stripe.confirm", "stripe.retrieve", "stripe.refund", "stripe.cancel",
                "billing.record", "billing.settle", "billing.get_invoice"]
How = Literal["crash_before", "crash_after", "timeout_before", "timeout_after", "hang_before", "hang_after", "down",
              "refuse", "refuse_for_now"]


class Crash(Exception):  # noqa: N818 - it is what it simulates
    """The process died here. Raised out of the code under test; what runs after a restart
    (the reconciler, the next advance) is then run by the test."""


class FakeClock:
    """A `bot.clock.Clock` that moves only when told to."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        return self._now

    def move(self, **delta: float) -> None:
        self._now += dt.timedelta(**delta)


@dataclass
class Faults:
    armed: dict[str, list[How]] = field(default_factory=dict)
    # Set once a call hangs at an armed point: a test's deadline then passes exactly there.
    hanging: asyncio.Event = field(default_factory=asyncio.Event)

    def arm(self, point: Point, how: How, *, times: int = 1) -> None:
        self.armed.setdefault(point, []).extend([how] * times)

    def clear(self) -> None:
        self.armed.clear()

    def _take(self, point: str, when: Literal["before", "after"]) -> How | None:
        queue = self.armed.get(point) or []
        at_once = ("down", "refuse", "refuse_for_now")  # these never reach the fake
        if queue and (queue[0].endswith("_" + when) or (when == "before" and queue[0] in at_once)):
            return queue.pop(0)
        return None

    async def around(self, point: str, call: Callable[[], Awaitable[T]]) -> T:
        how = self._take(point, "before")
        if how is not None:
            await self._hang_or_raise(point, how)
        result = await call()
        how = self._take(point, "after")
        if how is not None:
            await self._hang_or_raise(point, how)
        return result

    async def _hang_or_raise(self, point: str, how: How) -> None:
        if how.startswith("hang"):
            self.hanging.set()
            await asyncio.Event().wait()  # never set: only a timeout or a cancel ends this
        raise _fault(point, how)


def _fault(point: str, how: How) -> Exception:
    if how.startswith("crash"):
        return Crash(f"{how} {point}")
    if point.startswith("stripe."):
        if how == "refuse":  # the request itself is wrong: asking again cannot help
            return StripeRejected(f"InvalidRequestError: {point} refused", http_status=400, code="parameter_invalid")
        if how == "refuse_for_now":  # the same idempotency key still in use: may pass
            return StripeRejected(f"IdempotencyError: {point} refused", http_status=409, code="idempotency_key_in_use")
        return StripeUnavailable("APIConnectionError")
    if how == "refuse":
        if point == "billing.settle":
            return BillingError(409, "conflict", "The payment is not processing.")
        return BillingError(422, "amount_exceeds_balance", "The amount exceeds the balance due.")
    if how == "down":
        return BillingError(503, "unavailable", "The billing API is down.")
    return BillingError(None, "timeout", "The billing API did not answer.")


# -- billing -----------------------------------------------------------------------------
class FakeBilling:
    """The billing API's invoices and payments (docs/billing-api.md), in memory."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.invoices: dict[str, dict[str, Any]] = {}
        self.records: dict[str, dict[str, Any]] = {}  # payment_id -> the record
        self.calls: Counter[str] = Counter()

    def add_invoice(self, invoice_id: str, amount_due: str, currency: str = "EUR", *,
                    profile: str = "bp_1") -> dict[str, Any]:
        self.invoices[invoice_id] = {
            "id": invoice_id, "number": f"INV-{invoice_id}", "billing_profile_id": profile, "status": "open",
            "currency": currency, "total": amount_due, "amount_due": amount_due, "due_on": "2026-12-31"}
        return self.invoices[invoice_id]

    def _invoice(self, invoice_id: str) -> Invoice:
        if invoice_id not in self.invoices:
            raise BillingNotFound(404, "not_found", f"No invoice {invoice_id}.")
        return Invoice.model_validate(self.invoices[invoice_id])

    def _answer(self, invoice_id: str, payment_id: str) -> RecordedPayment:
        return RecordedPayment(payment=dict(self.records[payment_id]), invoice=self._invoice(invoice_id))

    def _due(self, invoice: dict[str, Any]) -> Money:
        return Money.from_api(invoice["amount_due"], invoice["currency"])

    async def get_invoice(self, invoice_id: str) -> Invoice:
        self.calls["get_invoice"] += 1
        return await self.faults.around("billing.get_invoice", lambda: _now(self._invoice(invoice_id)))

    async def record_payment(self, invoice_id: str, record: PaymentRecord) -> RecordedPayment:
        self.calls["record"] += 1

        async def call() -> RecordedPayment:
            if record.payment_id in self.records:  # the same payment_id again: the first answer
                return self._answer(invoice_id, record.payment_id)
            invoice = self.invoices[invoice_id]
            amount = Money.from_api(record.amount, record.currency)
            if amount > self._due(invoice):
                raise BillingError(422, "amount_exceeds_balance", "The amount exceeds the balance due.")
            left = self._due(invoice) - amount
            invoice["amount_due"] = left.api_string()
            invoice["status"] = ("processing" if record.status == "processing"
                                 else "paid" if left.amount == 0 else "partially_paid")
            self.records[record.payment_id] = {**record.model_dump(), "invoice_id": invoice_id}
            return self._answer(invoice_id, record.payment_id)

        return await self.faults.around("billing.record", call)

    async def settle_payment(self, invoice_id: str, payment_id: str, *, succeeded: bool,
                             failure_reason: str | None = None) -> RecordedPayment:
        self.calls["settle"] += 1

        async def call() -> RecordedPayment:
            record = self.records.get(payment_id)
            wanted = "succeeded" if succeeded else "failed"
            if record is not None and record["status"] == wanted:
                return self._answer(invoice_id, payment_id)  # settled before: the same answer
            if record is None or record["status"] != "processing":
                raise BillingError(409, "conflict", "The payment is not processing.")
            invoice = self.invoices[invoice_id]
            record["status"] = wanted
            if succeeded:
                invoice["status"] = "paid" if self._due(invoice).amount == 0 else "partially_paid"
            else:
                record["failure_reason"] = failure_reason
                back = self._due(invoice) + Money.from_api(record["amount"], record["currency"])
                invoice["amount_due"] = back.api_string()
                invoice["status"] = "open"
            return self._answer(invoice_id, payment_id)

        return await self.faults.around("billing.settle", call)

    def recorded(self, status: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.records.values() if status is None or r["status"] == status]


async def _now(value: T) -> T:
    return value


# -- Stripe ------------------------------------------------------------------------------
class FakeStripe:
    """PaymentIntents in memory. A charge is an intent that reached `succeeded` or
    `processing` (money moved, or a bank debit on its way)."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, str] = {}  # idempotency key -> refund id
        self.calls: Counter[str] = Counter()
        self._keys: dict[str, IntentResult] = {}
        self._ids = itertools.count(1)

    @property
    def charges(self) -> int:
        return sum(1 for i in self.intents.values() if i.get("charged"))

    async def create_intent(self, *, stripe_amount: int, currency: str, customer_id: str, payment_method_id: str,
                            payment_method_type: str, metadata: dict[str, str],
                            idempotency_key: str) -> IntentResult:
        self.calls["create"] += 1

        async def call() -> IntentResult:
            if idempotency_key not in self._keys:
                intent_id = f"pi_fake_{next(self._ids)}"
                self.intents[intent_id] = {
                    "id": intent_id, "object": "payment_intent", "status": "requires_confirmation",
                    "amount": stripe_amount, "currency": currency.lower(), "customer": customer_id,
                    "payment_method": payment_method_id, "metadata": dict(metadata), "charged": False}
                self._keys[idempotency_key] = intent_result(self.intents[intent_id])
            return self._keys[idempotency_key]

        return await self.faults.around("stripe.create", call)

    async def confirm_intent(self, intent_id: str, *, idempotency_key: str) -> IntentResult:
        self.calls["confirm"] += 1

        async def call() -> IntentResult:
            if idempotency_key in self._keys:
                return self._keys[idempotency_key]
            intent = self.intents[intent_id]
            if intent["status"] != "requires_confirmation":
                raise StripeRejected("InvalidRequestError: payment_intent_unexpected_state", http_status=400,
                                     code="payment_intent_unexpected_state")
            method = intent["payment_method"]
            if method == DECLINED:
                intent["status"] = "requires_payment_method"
                intent["last_payment_error"] = {"code": "card_declined", "message": "Your card was declined."}
            elif method == THREE_D_SECURE:
                intent["status"] = "requires_action"
            elif method == BANK_DEBIT:
                intent.update(status="processing", charged=True)
            else:
                intent.update(status="succeeded", charged=True)
            self._keys[idempotency_key] = intent_result(intent)
            return self._keys[idempotency_key]

        return await self.faults.around("stripe.confirm", call)

    async def retrieve_intent(self, intent_id: str) -> IntentResult:
        self.calls["retrieve"] += 1
        return await self.faults.around("stripe.retrieve", lambda: _now(intent_result(self.intents[intent_id])))

    async def cancel_intent(self, intent_id: str) -> IntentResult:
        self.calls["cancel"] += 1

        async def call() -> IntentResult:
            intent = self.intents[intent_id]
            if intent["status"] in ("requires_action", "requires_confirmation", "requires_payment_method"):
                intent["status"] = "canceled"
            return intent_result(intent)

        return await self.faults.around("stripe.cancel", call)

    async def refund_intent(self, intent_id: str, *, idempotency_key: str) -> str:
        self.calls["refund"] += 1

        async def call() -> str:
            if idempotency_key not in self.refunds:
                if self.intents[intent_id]["status"] != "succeeded":
                    raise StripeRejected("InvalidRequestError: charge not refundable", http_status=400,
                                         code="charge_not_refundable")
                self.refunds[idempotency_key] = f"re_fake_{next(self._ids)}"
                self.intents[intent_id]["refunded"] = True
            return self.refunds[idempotency_key]

        return await self.faults.around("stripe.refund", call)

    # What happens at Stripe later, without us: each returns the webhook's `data.object`.
    def authenticate(self, intent_id: str, *, ok: bool = True) -> dict[str, Any]:
        """The cardholder finished (or failed) 3-D Secure on Stripe's page."""
        intent = self.intents[intent_id]
        if ok:
            intent.update(status="succeeded", charged=True)
        else:
            intent.update(status="requires_payment_method", last_payment_error={
                "code": "payment_intent_authentication_failure", "message": "Authentication failed."})
        return self.object(intent_id)

    def settle_debit(self, intent_id: str, *, ok: bool = True) -> dict[str, Any]:
        """The bank debit cleared, or bounced (the money came back)."""
        intent = self.intents[intent_id]
        if ok:
            intent["status"] = "succeeded"
        else:
            intent.update(status="requires_payment_method", charged=False, last_payment_error={
                "code": "debit_failed", "message": "The bank refused the debit."})
        return self.object(intent_id)

    def object(self, intent_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.intents[intent_id].items() if k not in ("charged", "refunded")}


def webhook(secret: str, event_id: str, event_type: str, obj: dict[str, Any]) -> tuple[bytes, str]:
    """A Stripe event body and its Stripe-Signature header, signed as Stripe signs."""
    payload = json.dumps({"id": event_id, "object": "event", "type": event_type,
                          "data": {"object": obj}}).encode()
    stamp = int(time.time())
    signature = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, f"t={stamp},v1={signature}"


# -- notifier ----------------------------------------------------------------------------
class FakeNotifier:
    """Builds the messages the real adapter would (same dedupe keys), records live updates."""

    def __init__(self) -> None:
        self.changed_calls: list[tuple[str, str, bool]] = []  # (payment, status, update_modal)

    async def notices(self, payment: Payment, event: str) -> list[OutboxMessage]:
        return [OutboxMessage(dedupe_key=f"{payment.id}:{event}", team_id=payment.team_id, channel="#payments",
                              payload={"event": event, "status": payment.status}, attempts=0,
                              next_attempt_at=dt.datetime.now(dt.UTC))]

    async def direct(self, payment: Payment) -> list[OutboxMessage]:
        return [OutboxMessage(dedupe_key=f"{payment.id}:dm:{payment.status}", team_id=payment.team_id,
                              channel=payment.user_id, payload={"dm": payment.status}, attempts=0,
                              next_attempt_at=dt.datetime.now(dt.UTC))]

    async def changed(self, payment: Payment, *, update_modal: bool) -> None:
        self.changed_calls.append((payment.id, payment.status, update_modal))


# -- storage -----------------------------------------------------------------------------
@functools.cache
def _schema_ddl() -> tuple[str, ...]:
    """The real schema's CREATE statements for SQLite, compiled once per process: `create_all`
    on every fresh database inspected and compiled the schema again each time, which was a
    third of the state machine table's CPU."""
    dialect = sqlite.dialect()
    statements: list[str] = []
    for table in Base.metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)))
        statements.extend(str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes)
    return tuple(statements)


@asynccontextmanager
async def memory_database() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The real schema on an in-memory SQLite database, one connection shared by all sessions."""
    engine = create_async_engine("sqlite+aiosqlite://", poolclass=StaticPool)
    async with engine.begin() as connection:
        for statement in _schema_ddl():
            await connection.exec_driver_sql(statement)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


def new_payment(invoice: dict[str, Any], method: str = CARD, *, amount: str | None = None,
                payment_id: str = "pay_01TEST") -> Payment:
    """A payment row as `PaymentService.submit` writes it (status `created`)."""
    kind = "bank_debit" if method == BANK_DEBIT else "card"
    currency = invoice["currency"]
    return Payment(
        id=payment_id, team_id="T1", user_id="U_PAYER", paid_by="ap@acme.example", invoice_id=invoice["id"],
        invoice_number=invoice["number"], billing_profile_id=invoice["billing_profile_id"],
        billing_profile_name="Acme EU", invoice_url=None,
        amount_minor=Money.from_api(amount or invoice["amount_due"], currency).minor, currency=currency,
        method_kind=kind, payment_method_id=method,
        payment_method_type="sepa_debit" if kind == "bank_debit" else "card",
        method_label="SEPA •••• 3000" if kind == "bank_debit" else "Visa •••• 4242",
        stripe_customer_id="cus_1", status="created", attempts=0, locale="en_IE")


__all__ = ["BANK_DEBIT", "CARD", "DECLINED", "THREE_D_SECURE", "Crash", "FakeBilling", "FakeClock", "FakeNotifier",
           "FakeStripe", "Faults", "memory_database", "new_payment", "webhook"]
