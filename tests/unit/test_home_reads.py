"""The Home tab's read of the invoices to pay is bounded: a few listing requests of all the
person's profiles at once, whatever the number of invoices; beyond the pages read, totals
and counts say "at least", and the overdue count stays exact while the pages reach today."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

from bot.billing import Access, BillingProfile, Invoice, InvoicePage
from bot.identity import Viewer
from bot.invoices import InvoiceService

TODAY = dt.date(2026, 12, 7)


class PagingBilling:
    """The contract's listing: every given profile at once, due date then number, `limit` a page."""

    def __init__(self, invoices: list[Invoice]) -> None:
        self.invoices = sorted(invoices, key=lambda inv: (inv.due_on, inv.number))
        self.calls: Counter[str] = Counter()
        self.profile_ids_per_request: list[int] = []

    async def list_invoices_page(self, profile_ids: Sequence[str], *, status: str = "payable", limit: int = 100,
                                 cursor: str | None = None) -> InvoicePage:
        assert status == "payable" and 1 <= limit <= 100
        self.calls["list"] += 1
        self.profile_ids_per_request.append(len(profile_ids))
        wanted = [inv for inv in self.invoices if inv.billing_profile_id in set(profile_ids)]
        start = int(cursor or 0)
        rest = wanted[start:start + limit]
        return InvoicePage(data=rest, next_cursor=str(start + limit) if start + limit < len(wanted) else None)

    async def get_billing_profile(self, profile_id: str) -> BillingProfile:
        self.calls["profile"] += 1
        return BillingProfile(id=profile_id, name=f"Profile {profile_id}", currency="EUR")


def invoice(i: int, *, days: int, profile: str = "bp_0", currency: str = "EUR") -> Invoice:
    return Invoice(id=f"inv_{i}", number=f"INV-{i:05d}", billing_profile_id=profile, status="open",
                   currency=currency, total=Decimal("10.00"), amount_due=Decimal("10.00"),
                   issued_on=TODAY - dt.timedelta(days=60), due_on=TODAY + dt.timedelta(days=days))


class Clock:
    def now(self) -> dt.datetime:
        return dt.datetime.combine(TODAY, dt.time(12), tzinfo=dt.UTC)


def viewer(profiles: list[str]) -> Viewer:
    return Viewer("T1", "U1", "u@acme.example", Access(email="u@acme.example", permissions=["invoice_viewer"],
                                                      billing_profile_ids=profiles))


async def test_few_invoices_one_request_exact_totals() -> None:
    billing = PagingBilling([invoice(1, days=-3), invoice(2, days=5, currency="USD"), invoice(3, days=1)])
    service = InvoiceService(billing, clock=Clock())  # type: ignore[arg-type]
    summary = await service.payable_summary(viewer(["bp_0"]), shown=2)
    assert billing.calls["list"] == 1
    assert summary.complete and summary.overdue_complete and summary.count == 3 and summary.overdue_count == 1
    assert [str(m.amount) for m in summary.totals] == ["20.00", "10.00"]
    assert [row.invoice.id for row in summary.rows] == ["inv_1", "inv_3"] and summary.rows[0].overdue
    assert summary.rows[0].profile_name == "Profile bp_0"


async def test_5000_invoices_on_300_profiles_cost_a_bounded_number_of_requests() -> None:
    # 300 profiles, 5,000 invoices: 1,200 overdue (due before today), the rest later.
    invoices = [invoice(i, days=-3000 + i if i < 1200 else i, profile=f"bp_{i % 300}") for i in range(5000)]
    billing = PagingBilling(invoices)
    service = InvoiceService(billing, clock=Clock())  # type: ignore[arg-type]
    summary = await service.payable_summary(viewer([f"bp_{i}" for i in range(300)]), shown=5, max_pages=5)
    groups = -(-300 // 40)
    assert billing.calls["list"] <= groups * 5 and max(billing.profile_ids_per_request) <= 40
    assert billing.calls["profile"] <= 5  # only the shown rows' profiles are named
    assert not summary.complete and 4000 > summary.count > 3000  # "at least": the invoices read
    assert summary.overdue_complete and summary.overdue_count == 1200  # the pages reach today in each group
    assert [row.invoice.id for row in summary.rows] == [f"inv_{i}" for i in range(5)]

    # All overdue beyond the pages read: the overdue count is "at least" too.
    billing = PagingBilling([invoice(i, days=-5000 + i) for i in range(5000)])
    summary = await InvoiceService(billing, clock=Clock()).payable_summary(  # type: ignore[arg-type]
        viewer(["bp_0"]), shown=5, max_pages=5)
    assert billing.calls["list"] == 5 and summary.count == summary.overdue_count == 500
    assert not summary.complete and not summary.overdue_complete

    # Few overdue: the pages read reach today's date, so the overdue count is exact.
    invoices = [invoice(i, days=-10 if i < 30 else i) for i in range(5000)]
    billing = PagingBilling(invoices)
    summary = await InvoiceService(billing, clock=Clock()).payable_summary(  # type: ignore[arg-type]
        viewer(["bp_0"]), shown=5, max_pages=3)
    assert billing.calls["list"] == 3 and summary.count == 300 and not summary.complete
    assert summary.overdue_complete and summary.overdue_count == 30
