"""SQLite storage for the billing sandbox.

One connection, guarded by a `threading.Lock`: every public method holds the lock for
one short transaction, so calls from the web server's thread pool are serialised and
each multi-step operation (e.g. "check the balance, then record the payment") is atomic.
SQLite serialises writers anyway, so one connection costs nothing and removes any
`database is locked` surprises. WAL mode lets other processes (e.g. `sqlite3` in a
terminal) read the file while the sandbox runs.

Money is stored as integer minor units; the wire format is produced by `money.py`.
Business rules whose checks must sit in the same transaction as the write (payments)
live here and raise `ApiError` with the contract's codes.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from .errors import ApiError, conflict, not_found, rejected
from .money import currency_exponent, format_minor, parse_decimal, to_minor

# Statuses as stored. `past_due` is never stored: it is derived at read time from an
# `open`/`partially_paid` invoice whose `due_on` is before today (UTC), so it can never
# go stale and filtering by it is consistent with what is reported.
STORED_STATUSES = ("open", "partially_paid", "processing", "paid", "canceled", "proforma")
REPORTED_STATUSES = (*STORED_STATUSES, "past_due")
# `status=payable` in the listing, and what POST /payments accepts.
PAYABLE_STORED_STATUSES = ("open", "partially_paid")
LIST_STATUS_FILTERS = (*REPORTED_STATUSES, "payable")

PAYMENT_METHODS = ("card", "bank_debit")
PAYMENT_REQUEST_STATUSES = ("succeeded", "processing")
PAYMENT_SETTLE_STATUSES = ("succeeded", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    email               TEXT PRIMARY KEY,   -- lower-cased: look-ups are case-insensitive
    permissions         TEXT NOT NULL,      -- JSON array of strings
    billing_profile_ids TEXT NOT NULL       -- JSON array of strings
);
CREATE TABLE IF NOT EXISTS billing_profiles (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    currency           TEXT NOT NULL,
    country            TEXT NOT NULL,
    stripe_customer_id TEXT,
    card_fee_percent   TEXT,               -- decimal string as given, or NULL
    wire_instructions  TEXT                -- JSON object, or NULL
);
CREATE TABLE IF NOT EXISTS invoices (
    id                 TEXT PRIMARY KEY,
    number             TEXT NOT NULL UNIQUE,
    billing_profile_id TEXT NOT NULL REFERENCES billing_profiles(id),
    status             TEXT NOT NULL,      -- one of STORED_STATUSES
    currency           TEXT NOT NULL,
    total_minor        INTEGER NOT NULL,
    amount_due_minor   INTEGER NOT NULL CHECK (amount_due_minor >= 0),
    issued_on          TEXT NOT NULL,      -- YYYY-MM-DD (sorts like a date)
    due_on             TEXT NOT NULL,
    pdf_url            TEXT NOT NULL,
    url                TEXT NOT NULL,
    created_at         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS invoices_order ON invoices (due_on, number, id);
CREATE INDEX IF NOT EXISTS invoices_profile ON invoices (billing_profile_id);
CREATE TABLE IF NOT EXISTS payments (
    payment_id           TEXT PRIMARY KEY,
    invoice_id           TEXT NOT NULL REFERENCES invoices(id),
    amount_minor         INTEGER NOT NULL,
    currency             TEXT NOT NULL,
    method               TEXT NOT NULL,
    processor            TEXT NOT NULL,
    processor_payment_id TEXT,
    requested_status     TEXT NOT NULL,    -- as POSTed; idempotent replays compare to it
    status               TEXT NOT NULL,    -- succeeded | processing | failed
    paid_by              TEXT NOT NULL,
    failure_reason       TEXT,
    restore_status       TEXT NOT NULL,    -- invoice's stored status before this payment
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS payments_invoice ON payments (invoice_id);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

WIRE_INSTRUCTION_FIELDS = (
    "beneficiary",
    "bank_name",
    "iban",
    "swift",
    "account_number",
    "routing_number",
    "reference",
)


def utc_today() -> date:
    return datetime.now(UTC).date()


def utc_timestamp() -> str:
    """RFC 3339, UTC, millisecond precision."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


@dataclass(frozen=True, slots=True)
class NewInvoice:
    """A fully validated invoice to insert. `number=None` draws the next `SBX-000001`."""

    id: str
    billing_profile_id: str
    status: str  # a STORED_STATUSES value
    currency: str
    total_minor: int
    amount_due_minor: int
    issued_on: date
    due_on: date
    pdf_url: str
    url: str
    number: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """The body of POST /v1/invoices/{id}/payments, shape-checked but not yet against the
    invoice (amount stays the raw string: its precision depends on the invoice currency)."""

    payment_id: str
    amount: str
    currency: str
    method: str
    processor: str
    processor_payment_id: str | None
    status: str
    paid_by: str


class BillingStore:
    """Thread-safe SQLite store. `path` may be a file or ":memory:"."""

    def __init__(self, path: str | os.PathLike[str], *, today: Callable[[], date] = utc_today) -> None:
        self.path = os.fspath(path)
        self._today = today
        self._lock = threading.Lock()
        # isolation_level=None: we issue BEGIN/COMMIT ourselves (see _transaction).
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA busy_timeout=5000")  # other processes on the file
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def today(self) -> date:
        return self._today()

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        with self._lock:
            # IMMEDIATE takes the write lock up front, so a read-check-write sequence can't
            # be interleaved with another process's writer either.
            self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- admin -------------------------------------------------------------------------

    def reset(self) -> None:
        with self._transaction(write=True) as db:
            for table in ("payments", "invoices", "billing_profiles", "users", "counters"):
                db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names

    # -- users -------------------------------------------------------------------------

    def upsert_user(self, email: str, permissions: Sequence[str], billing_profile_ids: Sequence[str]) -> dict[str, Any]:
        with self._transaction(write=True) as db:
            db.execute(
                "INSERT INTO users (email, permissions, billing_profile_ids) VALUES (?, ?, ?) "
                "ON CONFLICT(email) DO UPDATE SET permissions = excluded.permissions, "
                "billing_profile_ids = excluded.billing_profile_ids",
                (email.lower(), json.dumps(list(permissions)), json.dumps(list(billing_profile_ids))),
            )
        return {
            "email": email.lower(),
            "permissions": list(permissions),
            "billing_profile_ids": list(billing_profile_ids),
        }

    def get_user(self, email: str) -> dict[str, Any] | None:
        with self._transaction(write=False) as db:
            row = db.execute("SELECT * FROM users WHERE email = ?", (email.lower(),)).fetchone()
        if row is None:
            return None
        return {
            "email": row["email"],
            "permissions": json.loads(row["permissions"]),
            "billing_profile_ids": json.loads(row["billing_profile_ids"]),
        }

    # -- billing profiles --------------------------------------------------------------

    def upsert_billing_profile(self, profile: dict[str, Any]) -> dict[str, Any]:
        """`profile` must already be validated and in wire shape (see admin.py)."""
        wire = profile.get("wire_instructions")
        with self._transaction(write=True) as db:
            db.execute(
                "INSERT INTO billing_profiles (id, name, currency, country, stripe_customer_id, "
                "card_fee_percent, wire_instructions) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET name = excluded.name, currency = excluded.currency, "
                "country = excluded.country, stripe_customer_id = excluded.stripe_customer_id, "
                "card_fee_percent = excluded.card_fee_percent, wire_instructions = excluded.wire_instructions",
                (
                    profile["id"],
                    profile["name"],
                    profile["currency"],
                    profile["country"],
                    profile.get("stripe_customer_id"),
                    profile.get("card_fee_percent"),
                    None if wire is None else json.dumps(wire),
                ),
            )
            row = db.execute("SELECT * FROM billing_profiles WHERE id = ?", (profile["id"],)).fetchone()
        return _profile_out(row)

    def get_billing_profile(self, profile_id: str) -> dict[str, Any] | None:
        with self._transaction(write=False) as db:
            row = db.execute("SELECT * FROM billing_profiles WHERE id = ?", (profile_id,)).fetchone()
        return None if row is None else _profile_out(row)

    # -- invoices ----------------------------------------------------------------------

    def insert_invoices(self, invoices: Sequence[NewInvoice], *, keep_existing: bool = False) -> None:
        """Insert all invoices in one transaction (fast enough for 10,000 at once).

        A duplicate id or number is a 409. With `keep_existing` (the idempotent demo
        seed) an invoice whose id exists keeps its state and only gets the new document
        links, so links follow the sandbox to a new port.
        """
        on_conflict = (
            " ON CONFLICT(id) DO UPDATE SET pdf_url = excluded.pdf_url, url = excluded.url" if keep_existing else ""
        )
        with self._transaction(write=True) as db:
            numbers = self._draw_numbers(db, sum(1 for inv in invoices if inv.number is None))
            created_at = utc_timestamp()
            rows = [
                (
                    inv.id,
                    inv.number if inv.number is not None else next(numbers),
                    inv.billing_profile_id,
                    inv.status,
                    inv.currency,
                    inv.total_minor,
                    inv.amount_due_minor,
                    inv.issued_on.isoformat(),
                    inv.due_on.isoformat(),
                    inv.pdf_url,
                    inv.url,
                    created_at,
                )
                for inv in invoices
            ]
            try:
                db.executemany(
                    "INSERT INTO invoices (id, number, billing_profile_id, status, currency, total_minor, "
                    "amount_due_minor, issued_on, due_on, pdf_url, url, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" + on_conflict,
                    rows,
                )
            except sqlite3.IntegrityError as exc:
                text = str(exc)
                if "invoices.number" in text:
                    raise conflict("duplicate_invoice_number", "an invoice with that number already exists") from exc
                if "invoices.id" in text:
                    raise conflict("duplicate_invoice_id", "an invoice with that id already exists") from exc
                if "FOREIGN KEY" in text:
                    raise rejected("unknown_billing_profile", "billing_profile_id does not exist") from exc
                raise

    @staticmethod
    def _draw_numbers(db: sqlite3.Connection, count: int) -> Iterator[str]:
        if count == 0:
            return iter(())
        db.execute("INSERT OR IGNORE INTO counters (name, value) VALUES ('invoice_number', 0)")
        (last,) = db.execute(
            "UPDATE counters SET value = value + ? WHERE name = 'invoice_number' RETURNING value", (count,)
        ).fetchone()
        # Zero-padded so that text order (the contract's tie-breaker) equals numeric order.
        return (f"SBX-{n:06d}" for n in range(last - count + 1, last + 1))

    def get_invoice(self, invoice_id: str) -> dict[str, Any] | None:
        with self._transaction(write=False) as db:
            row = db.execute("SELECT * FROM invoices WHERE id = ?", (invoice_id,)).fetchone()
        return None if row is None else self._invoice_out(row)

    def list_invoices(
        self, billing_profile_ids: Sequence[str], *, status: str | None, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page ordered by (due_on, number, id), keyset-paginated.

        Keyset (not offset) cursors keep pages stable while invoices are paid or added
        between page requests: nothing is skipped or repeated.
        """
        if not billing_profile_ids:
            raise rejected("billing_profile_id_required", "give at least one billing_profile_id")
        if status is not None and status not in LIST_STATUS_FILTERS:
            raise rejected("invalid_status", f"status must be one of {', '.join(LIST_STATUS_FILTERS)}")
        if not 1 <= limit <= 100:
            raise rejected("invalid_limit", "limit must be between 1 and 100")

        today = self.today().isoformat()
        where = [f"billing_profile_id IN ({', '.join('?' * len(billing_profile_ids))})"]
        params: list[Any] = list(billing_profile_ids)
        status_sql, status_params = _status_filter(status, today)
        if status_sql:
            where.append(status_sql)
            params += status_params
        if cursor is not None:
            where.append("(due_on, number, id) > (?, ?, ?)")
            params += _decode_cursor(cursor)
        sql = f"SELECT * FROM invoices WHERE {' AND '.join(where)} ORDER BY due_on, number, id LIMIT ?"  # noqa: S608
        params.append(limit + 1)  # one extra row tells us whether another page exists
        with self._transaction(write=False) as db:
            rows = db.execute(sql, params).fetchall()
        page = rows[:limit]
        next_cursor = _encode_cursor(page[-1]) if len(rows) > limit else None
        return [self._invoice_out(row, today) for row in page], next_cursor

    # -- payments ----------------------------------------------------------------------

    def record_payment(self, invoice_id: str, req: PaymentRequest) -> tuple[dict[str, Any], bool]:
        """Record a payment. Returns ({"payment", "invoice"}, created).

        The balance check and the insert share one IMMEDIATE transaction, so concurrent
        payments can never together exceed `amount_due`.
        """
        with self._transaction(write=True) as db:
            invoice = db.execute("SELECT * FROM invoices WHERE id = ?", (invoice_id,)).fetchone()
            if invoice is None:
                raise not_found("invoice_not_found", f"no invoice {invoice_id!r}")

            existing = db.execute("SELECT * FROM payments WHERE payment_id = ?", (req.payment_id,)).fetchone()
            if existing is not None:
                # Safe retry: same payment_id + same request -> the recorded result, no change.
                differing = _replay_mismatches(existing, invoice_id, req)
                if differing:
                    raise conflict(
                        "payment_id_conflict",
                        f"payment_id {req.payment_id!r} was already used with a different {', '.join(differing)}",
                    )
                return self._payment_result(db, existing["payment_id"]), False

            amount = parse_decimal(req.amount)
            if amount <= 0:
                raise rejected("amount_not_positive", "amount must be greater than zero")
            if req.currency != invoice["currency"]:
                raise rejected(
                    "currency_mismatch",
                    f"payment currency {req.currency!r} differs from the invoice currency {invoice['currency']!r}",
                )
            amount_minor = to_minor(amount, invoice["currency"])
            if invoice["status"] not in PAYABLE_STORED_STATUSES:
                raise rejected("invoice_not_payable", f"the invoice is {invoice['status']} and cannot be paid")
            if amount_minor > invoice["amount_due_minor"]:
                due = format_minor(invoice["amount_due_minor"], invoice["currency"])
                raise rejected(
                    "amount_exceeds_balance",
                    f"amount {format_minor(amount_minor, invoice['currency'])} exceeds amount_due {due}",
                )

            new_due = invoice["amount_due_minor"] - amount_minor
            if req.status == "processing":
                new_status = "processing"
            else:
                new_status = "paid" if new_due == 0 else "partially_paid"
            now = utc_timestamp()
            db.execute(
                "INSERT INTO payments (payment_id, invoice_id, amount_minor, currency, method, processor, "
                "processor_payment_id, requested_status, status, paid_by, failure_reason, restore_status, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
                (
                    req.payment_id,
                    invoice_id,
                    amount_minor,
                    invoice["currency"],
                    req.method,
                    req.processor,
                    req.processor_payment_id,
                    req.status,
                    req.status,
                    req.paid_by,
                    invoice["status"],
                    now,
                    now,
                ),
            )
            db.execute(
                "UPDATE invoices SET amount_due_minor = ?, status = ? WHERE id = ?",
                (new_due, new_status, invoice_id),
            )
            return self._payment_result(db, req.payment_id), True

    def settle_payment(
        self, invoice_id: str, payment_id: str, status: str, failure_reason: str | None
    ) -> dict[str, Any]:
        """Settle a processing payment as succeeded or failed.

        Repeating a settlement that already happened answers the current state (a safe
        retry); settling to the *other* outcome, or settling a payment that never was
        processing, is a 409.
        """
        with self._transaction(write=True) as db:
            invoice = db.execute("SELECT * FROM invoices WHERE id = ?", (invoice_id,)).fetchone()
            if invoice is None:
                raise not_found("invoice_not_found", f"no invoice {invoice_id!r}")
            payment = db.execute(
                "SELECT * FROM payments WHERE payment_id = ? AND invoice_id = ?", (payment_id, invoice_id)
            ).fetchone()
            if payment is None:
                raise not_found("payment_not_found", f"no payment {payment_id!r} on invoice {invoice_id!r}")
            if payment["status"] == status:
                return self._payment_result(db, payment_id)
            if payment["status"] != "processing":
                raise conflict(
                    "payment_not_processing",
                    f"payment {payment_id!r} is {payment['status']}; only processing payments can be settled",
                )

            now = utc_timestamp()
            due = invoice["amount_due_minor"]
            # Only touch the invoice status if it still reflects this payment (an operator
            # may have canceled the invoice meanwhile).
            still_processing = invoice["status"] == "processing"
            if status == "succeeded":
                new_status = ("paid" if due == 0 else "partially_paid") if still_processing else invoice["status"]
            else:
                due += payment["amount_minor"]  # a failed debit gives its amount back
                new_status = payment["restore_status"] if still_processing else invoice["status"]
            db.execute(
                "UPDATE payments SET status = ?, failure_reason = ?, updated_at = ? WHERE payment_id = ?",
                (status, failure_reason if status == "failed" else None, now, payment_id),
            )
            db.execute(
                "UPDATE invoices SET amount_due_minor = ?, status = ? WHERE id = ?", (due, new_status, invoice_id)
            )
            return self._payment_result(db, payment_id)

    def list_payments(self, invoice_id: str) -> list[dict[str, Any]]:
        with self._transaction(write=False) as db:
            if db.execute("SELECT 1 FROM invoices WHERE id = ?", (invoice_id,)).fetchone() is None:
                raise not_found("invoice_not_found", f"no invoice {invoice_id!r}")
            rows = db.execute("SELECT * FROM payments WHERE invoice_id = ? ORDER BY rowid", (invoice_id,)).fetchall()
        return [_payment_out(row) for row in rows]

    # -- rendering ---------------------------------------------------------------------

    def _payment_result(self, db: sqlite3.Connection, payment_id: str) -> dict[str, Any]:
        payment = db.execute("SELECT * FROM payments WHERE payment_id = ?", (payment_id,)).fetchone()
        invoice = db.execute("SELECT * FROM invoices WHERE id = ?", (payment["invoice_id"],)).fetchone()
        return {"payment": _payment_out(payment), "invoice": self._invoice_out(invoice)}

    def _invoice_out(self, row: sqlite3.Row, today: str | None = None) -> dict[str, Any]:
        today = today or self.today().isoformat()
        status = row["status"]
        if status in PAYABLE_STORED_STATUSES and row["due_on"] < today:
            status = "past_due"  # still overdue after a partial payment, by design
        return {
            "id": row["id"],
            "number": row["number"],
            "billing_profile_id": row["billing_profile_id"],
            "status": status,
            "currency": row["currency"],
            "total": format_minor(row["total_minor"], row["currency"]),
            "amount_due": format_minor(row["amount_due_minor"], row["currency"]),
            "issued_on": row["issued_on"],
            "due_on": row["due_on"],
            "pdf_url": row["pdf_url"],
            "url": row["url"],
        }


def _status_filter(status: str | None, today: str) -> tuple[str, list[Any]]:
    """SQL for a `status` query value, mirroring how `_invoice_out` reports status."""
    if status is None:
        return "", []
    if status == "payable":
        return "status IN ('open', 'partially_paid')", []
    if status == "past_due":
        return "status IN ('open', 'partially_paid') AND due_on < ?", [today]
    if status in PAYABLE_STORED_STATUSES:
        return "status = ? AND due_on >= ?", [status, today]
    return "status = ?", [status]


def _encode_cursor(row: sqlite3.Row) -> str:
    raw = json.dumps([row["due_on"], row["number"], row["id"]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise rejected("invalid_cursor", "cursor is not one this API returned") from exc
    if not (isinstance(key, list) and len(key) == 3 and all(isinstance(part, str) for part in key)):
        raise rejected("invalid_cursor", "cursor is not one this API returned")
    return key


def _replay_mismatches(existing: sqlite3.Row, invoice_id: str, req: PaymentRequest) -> list[str]:
    """Fields in which a repeated POST differs from the recorded one (amounts by value)."""
    differing = []
    if existing["invoice_id"] != invoice_id:
        differing.append("invoice")
    try:
        same_amount = parse_decimal(req.amount) == Decimal(existing["amount_minor"]).scaleb(
            -currency_exponent(existing["currency"])
        )
    except ApiError:
        same_amount = False
    if not same_amount:
        differing.append("amount")
    recorded = {
        "currency": existing["currency"],
        "method": existing["method"],
        "processor": existing["processor"],
        "processor_payment_id": existing["processor_payment_id"],
        "status": existing["requested_status"],
        "paid_by": existing["paid_by"],
    }
    differing += [name for name, value in recorded.items() if getattr(req, name) != value]
    return differing


def _profile_out(row: sqlite3.Row) -> dict[str, Any]:
    wire = row["wire_instructions"]
    return {
        "id": row["id"],
        "name": row["name"],
        "currency": row["currency"],
        "country": row["country"],
        "stripe_customer_id": row["stripe_customer_id"],
        "card_fee_percent": row["card_fee_percent"],
        "wire_instructions": None if wire is None else json.loads(wire),
    }


def _payment_out(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "payment_id": row["payment_id"],
        "invoice_id": row["invoice_id"],
        "amount": format_minor(row["amount_minor"], row["currency"]),
        "currency": row["currency"],
        "method": row["method"],
        "processor": row["processor"],
        "processor_payment_id": row["processor_payment_id"],
        "status": row["status"],
        "failure_reason": row["failure_reason"],
        "paid_by": row["paid_by"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
