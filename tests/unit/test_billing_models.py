"""The billing API's invoices are read exactly as the contract writes them, or refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from bot.billing import Invoice

BASE = {"id": "inv_1", "number": "INV-1", "billing_profile_id": "bp_1", "status": "open",
        "due_on": "2026-12-31"}


@pytest.mark.parametrize(("currency", "total", "expected"), [
    ("EUR", "1200.00", Decimal("1200.00")), ("EUR", "1200", Decimal("1200")), ("HUF", "150000.00", Decimal("150000")),
    ("HUF", "150000", Decimal("150000")), ("JPY", "5000", Decimal("5000")), ("KWD", "12.345", Decimal("12.345")),
])
def test_contract_amounts_are_read_exactly(currency: str, total: str, expected: Decimal) -> None:
    invoice = Invoice.model_validate({**BASE, "currency": currency, "total": total, "amount_due": total})
    assert invoice.total == expected and invoice.balance.amount == expected


@pytest.mark.parametrize(("currency", "total"), [
    ("EUR", 1200.5), ("EUR", 1200), ("EUR", "12.345"), ("JPY", "5000.5"), ("EUR", "1e3"), ("EUR", " 5"),
    ("EUR", "1,200.00"), ("XXQ", "10"),
])
def test_anything_else_is_refused_not_approximated(currency: str, total: object) -> None:
    with pytest.raises(ValidationError):
        Invoice.model_validate({**BASE, "currency": currency, "total": total, "amount_due": total})
