"""Listing what a person may pay: every payable invoice of their billing profiles.

`list_payable` reads every payable invoice (for the count, the totals, search and paging);
`first_page` reads only what the first page of plain `/invoices` shows, from one bounded
request, so that page costs the same with 10 invoices as with 10,000 (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import html
import datetime as dt
import enum
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.billing import BillingClient, BillingError, BillingProfile, Invoice
from bot.cache import TTLCache
from bot.clock import Clock, SystemClock, today
from bot.identity import Viewer
from bot.money import Money, totals_by_currency
from storage.models import Payment, PaymentStatus

log = logging.getLogger(__name__)

# The statuses an invoice found by its number can have when it is not payable (the
# contract's list), looked up only when no payable invoice has that number.
UNPAYABLE_STATUSES = ("paid", "processing", "canceled", "proforma")
# Invoice numbers have a digit and no spaces; profile names that look like one cost a few
# extra look-ups, nothing more.
_LOOKS_LIKE_NUMBER = re.compile(r"^(?=\S*\d)\S{3,}$")

# The first read of plain `/invoices` (InvoiceService.first_page): the contract's largest
# page. A list of up to this many invoices is then one request and one final message; a
# longer one shows its first page from it while the rest is counted. Either way the cost
# of the first page does not grow with the number of invoices.
FIRST_READ = 100

# Profiles are listed in parallel, a few at a time, so a user with 100 profiles does not
# wait for 100 round trips in a row.
_PROFILE_CONCURRENCY = 8


class QueryKind(enum.StrEnum):
    ALL = "all"
    OVERDUE = "overdue"
    SEARCH = "search"
    HELP = "help"


@dataclass(frozen=True, slots=True)
class ListQuery:
    kind: QueryKind
    text: str = ""

    @classmethod
    def parse(cls, text: str | None) -> ListQuery:
        # Slack escapes &, < and > in command text.
        words = html.unescape(text or "").strip()
        lowered = words.lower()
        if not words:
            return cls(QueryKind.ALL)
        if lowered in {"help", "?", "-h", "--help"}:
            return cls(QueryKind.HELP)
        if lowered in {"overdue", "past due", "past_due", "late"}:
            return cls(QueryKind.OVERDUE)
        return cls(QueryKind.SEARCH, words[:200])

    @property
    def as_text(self) -> str:
        return {QueryKind.ALL: "", QueryKind.OVERDUE: "overdue", QueryKind.HELP: "help"}.get(self.kind, self.text)


class Totals(enum.StrEnum):
    """How much of the list an `InvoiceListing` holds."""

    EXACT = "exact"  # every row: the count, the overdue count and the totals are right
    COUNTING = "counting"  # the first page only; the count and totals are being worked out
    UNAVAILABLE = "unavailable"  # the first page only; working out the totals failed


@dataclass(frozen=True, slots=True)
class InvoiceRow:
    invoice: Invoice
    profile_name: str
    overdue: bool


@dataclass(frozen=True, slots=True)
class UnpayableMatch:
    """An invoice the person asked for by number that is not payable: paid, being paid by
    a bank debit, canceled or pro forma; with the newest payment we made on it, if any."""

    invoice: Invoice
    profile_name: str
    last_payment: Payment | None = None


@dataclass(frozen=True, slots=True)
class InvoiceListing:
    query: ListQuery
    rows: list[InvoiceRow]
    totals: list[Money] = field(default_factory=list)
    matched_number: bool = False  # the search found an invoice by its number
    locale: str = "en_US"  # the viewer's: amounts and dates are shown in it
    unpayable: list[UnpayableMatch] = field(default_factory=list)  # found by number, not payable
    scheduled: frozenset[str] = frozenset()  # ids of the invoices with a scheduled payment
    # Not EXACT: `rows` is the first page only, more invoices follow, `totals` is empty and
    # must not be shown as a sum (it would be a partial one).
    totals_state: Totals = Totals.EXACT

    @property
    def complete(self) -> bool:
        return self.totals_state is Totals.EXACT


class PaymentHistory(Protocol):
    async def latest_for_invoice(self, invoice_id: str, statuses: Sequence[PaymentStatus]) -> Payment | None: ...


class ProfileNameProblem(Exception):
    """A billing profile named in a command matches none, or several, of the person's; the
    message is for the person (each command says it under its own title)."""


class InvoiceService:
    def __init__(self, billing: BillingClient, *, clock: Clock | None = None, profile_ttl_seconds: float = 60.0,
                 payments: PaymentHistory | None = None) -> None:
        self._billing = billing
        self._clock = clock or SystemClock()
        self._profiles: TTLCache[str, BillingProfile] = TTLCache(profile_ttl_seconds)
        self._payments = payments
        # The invoice ids with a scheduled payment in a workspace (bot/scheduled_payments.py),
        # wired by the app once the scheduler exists.
        self.scheduled_for: Callable[[str], Awaitable[frozenset[str]]] | None = None

    def today(self) -> dt.date:
        return today(self._clock)

    async def profile(self, profile_id: str, *, fresh: bool = False) -> BillingProfile:
        return await self._profiles.get_or_load(profile_id, lambda: self._billing.get_billing_profile(profile_id),
                                                fresh=fresh)

    async def profiles_named(self, viewer: Viewer, text: str, *, listed_by: str) -> list[str]:
        """The person's billing profiles that `text` names, the one way every command reads a
        profile's name: no text, all of them; its id or its whole name (any case), that one;
        else the only one whose name contains it. `listed_by`: the command that shows them,
        for the words of a ProfileNameProblem."""
        ids = sorted(viewer.access.billing_profile_ids)
        needle = text.strip().casefold()
        if not needle:
            return ids
        profiles = await self._profiles_by_id(ids)
        exact = [pid for pid in ids if pid.casefold() == needle or profiles[pid].name.casefold() == needle]
        matches = exact or [pid for pid in ids if needle in profiles[pid].name.casefold()]
        if len(matches) == 1:
            return matches
        if not matches:
            raise ProfileNameProblem(f"None of your billing profiles is called “{text.strip()[:100]}”. "
                                     f"Run `{listed_by}` to see them.")
        raise ProfileNameProblem(f"“{text.strip()[:100]}” matches several of your billing profiles; use its full "
                                 f"name or id (see `{listed_by}`).")

    async def list_payable(self, viewer: Viewer, query: ListQuery) -> InvoiceListing:
        profile_ids = sorted(set(viewer.access.billing_profile_ids))
        profiles = await self._profiles_by_id(profile_ids)
        if query.kind is QueryKind.SEARCH:
            needle = query.text.casefold()
            wanted = [pid for pid in profile_ids
                      if pid.casefold() == needle or needle in profiles[pid].name.casefold()]
        else:
            wanted = profile_ids

        invoices = await self._payable_invoices(profile_ids if query.kind is QueryKind.SEARCH else wanted)
        matched_number = False
        if query.kind is QueryKind.SEARCH:
            by_number = [inv for inv in invoices if inv.number.casefold() == query.text.casefold()]
            if by_number:
                invoices, matched_number = by_number, True
            else:
                allowed = set(wanted)
                invoices = [inv for inv in invoices if inv.billing_profile_id in allowed]

        today = self.today()
        # The backend filters by profile, but a person must never see another profile's
        # invoice even if it did not: filter again on our side.
        rows = [
            InvoiceRow(inv, profiles[inv.billing_profile_id].name, inv.is_overdue(today))
            for inv in invoices
            if viewer.access.may_see(inv.billing_profile_id) and inv.is_payable
        ]
        if query.kind is QueryKind.OVERDUE:
            rows = [row for row in rows if row.overdue]
        rows.sort(key=lambda row: (row.invoice.due_on, row.invoice.number, row.invoice.id))
        unpayable: list[UnpayableMatch] = []
        if query.kind is QueryKind.SEARCH and not rows and _LOOKS_LIKE_NUMBER.match(query.text):
            unpayable = await self._unpayable_by_number(viewer, profile_ids, profiles, query.text)
        scheduled = await self.scheduled_for(viewer.team_id) if self.scheduled_for and rows else frozenset()
        return InvoiceListing(query, rows, totals_by_currency([row.invoice.balance for row in rows]), matched_number,
                              viewer.locale, unpayable, scheduled)

    async def first_page(self, viewer: Viewer, query: ListQuery, size: int) -> InvoiceListing:
        """The first `size` rows of `list_payable(viewer, query)` from one request to the
        billing API (`limit=FIRST_READ` across the person's profiles, which the backend
        sorts by due date and number) and the profiles of the rows shown only. A list that
        fits in that one read is complete (count and totals exact: nothing more to do).
        When more invoices follow, the listing says so (`Totals.COUNTING`) and carries no
        totals: the caller counts them with `list_payable`. A search or `overdue` needs
        every invoice (a number, a profile name, a past-due status anywhere in the list):
        those are read whole, as before."""
        profile_ids = sorted(set(viewer.access.billing_profile_ids))
        if query.kind is not QueryKind.ALL or not profile_ids:
            return await self.list_payable(viewer, query)
        page = await self._billing.list_invoices_page(profile_ids, status="payable", limit=FIRST_READ)
        # As in list_payable: never another profile's invoice, never an unpayable one.
        invoices = [inv for inv in page.data if viewer.access.may_see(inv.billing_profile_id) and inv.is_payable]
        complete = not page.next_cursor
        invoices.sort(key=lambda inv: (inv.due_on, inv.number, inv.id))
        if not complete:
            invoices = invoices[:size]
        profiles = await self._profiles_by_id(sorted({inv.billing_profile_id for inv in invoices}))
        today = self.today()
        rows = [InvoiceRow(inv, profiles[inv.billing_profile_id].name, inv.is_overdue(today)) for inv in invoices]
        scheduled = await self.scheduled_for(viewer.team_id) if self.scheduled_for and rows else frozenset()
        if complete:
            return InvoiceListing(query, rows, totals_by_currency([row.invoice.balance for row in rows]),
                                  locale=viewer.locale, scheduled=scheduled)
        return InvoiceListing(query, rows, [], locale=viewer.locale, scheduled=scheduled,
                              totals_state=Totals.COUNTING)

    async def _unpayable_by_number(self, viewer: Viewer, profile_ids: list[str],
                                   profiles: dict[str, BillingProfile], number: str) -> list[UnpayableMatch]:
        """`/invoices INV-…` for an invoice that is no longer (or never was) payable: say what
        it is rather than "no payable invoice matches". Only the viewer's own profiles."""
        limit = asyncio.Semaphore(_PROFILE_CONCURRENCY)

        async def one(status: str) -> list[Invoice]:
            async with limit:
                return [inv async for inv in self._billing.iter_invoices(profile_ids, status=status)
                        if inv.number.casefold() == number.casefold()]

        try:
            per_status = await asyncio.gather(*(one(status) for status in UNPAYABLE_STATUSES))
        except BillingError as exc:  # a nicety: without it the answer is "no payable invoice matches"
            log.warning("looking up a non-payable invoice by number failed: %s", exc)
            return []
        found = [inv for invoices in per_status for inv in invoices if viewer.access.may_see(inv.billing_profile_id)]
        matches = []
        for inv in found:
            last = None
            if self._payments is not None:
                wanted = ((PaymentStatus.PROCESSING, PaymentStatus.DEBITING) if inv.status == "processing"
                          else (PaymentStatus.RECORDED,))
                last = await self._payments.latest_for_invoice(inv.id, wanted)
            matches.append(UnpayableMatch(inv, profiles[inv.billing_profile_id].name, last))
        return matches

    async def _profiles_by_id(self, profile_ids: list[str]) -> dict[str, BillingProfile]:
        limit = asyncio.Semaphore(_PROFILE_CONCURRENCY)

        async def one(pid: str) -> BillingProfile:
            async with limit:
                return await self.profile(pid)

        loaded = await asyncio.gather(*(one(pid) for pid in profile_ids))
        return {profile.id: profile for profile in loaded}

    async def _payable_invoices(self, profile_ids: list[str]) -> list[Invoice]:
        limit = asyncio.Semaphore(_PROFILE_CONCURRENCY)

        async def one(pid: str) -> list[Invoice]:
            async with limit:
                return [inv async for inv in self._billing.iter_invoices([pid], status="payable")]

        per_profile = await asyncio.gather(*(one(pid) for pid in profile_ids))
        return [inv for invoices in per_profile for inv in invoices]

    async def payable_summary(self, viewer: Viewer, *, shown: int, max_pages: int = 5,
                              page_size: int = 100) -> PayableSummary:
        """What the Home tab says of the invoices to pay, from bounded reads: the listing of
        all the person's profiles at once (the contract takes the profile id repeated), in the
        contract's order (due date first: the overdue come first), at most `max_pages` pages
        of `page_size` per group of `_PROFILES_PER_REQUEST` profiles. The contract gives no
        totals, so with more invoices than that the totals and counts are of the invoices read
        (`complete` False: "at least"); the overdue count is still exact when the pages read
        reach today's date. The first `shown` rows carry their profile's name."""
        profile_ids = sorted(set(viewer.access.billing_profile_ids))
        groups = [profile_ids[i:i + _PROFILES_PER_REQUEST]
                  for i in range(0, len(profile_ids), _PROFILES_PER_REQUEST)]
        limit = asyncio.Semaphore(_PROFILE_CONCURRENCY)

        async def read(group: list[str]) -> tuple[list[Invoice], bool]:
            invoices: list[Invoice] = []
            cursor: str | None = None
            async with limit:
                for _ in range(max_pages):
                    page = await self._billing.list_invoices_page(group, limit=page_size, cursor=cursor)
                    invoices += page.data
                    cursor = page.next_cursor
                    if not cursor:
                        return invoices, True
            return invoices, False

        per_group = await asyncio.gather(*(read(group) for group in groups))
        today = self.today()
        # Filtered again on our side: never another profile's invoice, even if the backend sent one.
        invoices = [inv for invoices, _ in per_group for inv in invoices
                    if viewer.access.may_see(inv.billing_profile_id) and inv.is_payable]
        complete = all(done for _, done in per_group)
        # Each group is read in due-date order: its overdue invoices are all read once its last
        # invoice read is due today or later.
        overdue_complete = all(done or (not invs or invs[-1].due_on >= today) for invs, done in per_group)
        invoices.sort(key=lambda inv: (inv.due_on, inv.number, inv.id))
        first = invoices[:shown]
        names = await self._profiles_by_id(sorted({inv.billing_profile_id for inv in first}))
        rows = [InvoiceRow(inv, names[inv.billing_profile_id].name, inv.is_overdue(today)) for inv in first]
        return PayableSummary(rows, totals_by_currency(inv.balance for inv in invoices), len(invoices),
                              sum(1 for inv in invoices if inv.is_overdue(today)), complete, overdue_complete)


# Profile ids per listing request of the Home tab: the query string stays far below the
# 8 KB that servers commonly accept (ids of up to 64 characters).
_PROFILES_PER_REQUEST = 40


@dataclass(frozen=True, slots=True)
class PayableSummary:
    """The invoices to pay as the Home tab shows them (bounded reads, see `payable_summary`)."""

    rows: list[InvoiceRow]  # the first few, overdue first (due-date order)
    totals: list[Money]  # per currency, sorted by code: of every invoice read
    count: int  # invoices read
    overdue_count: int
    complete: bool = True  # every payable invoice was read: the totals and count are exact
    overdue_complete: bool = True  # every overdue invoice was read: the overdue count is exact
