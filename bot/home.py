"""The App Home tab: what one person sees there, assembled from the existing services.

The view model is plain data; `blocks.home` turns it into Block Kit. Reads are bounded:
one payable-invoice listing per billing profile (the same as `/invoices`), two queries of
the bot's own payments table, and the admin's routes (one query), whatever the history.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.identity import AccessDenied, IdentityService
from bot.invoices import InvoiceRow, InvoiceService, ListQuery
from bot.money import Money
from bot.routing import RouteRow, RoutingService
from bot.summaries import PaymentSummary, payment_summary
from storage.models import IN_FLIGHT, PaymentStatus
from storage.payments import PaymentRepository

log = logging.getLogger(__name__)

SOONEST = 5  # invoices shown with Pay Now: the overdue first, then the soonest due
RECENT = 10  # recent payments shown; the rest are counted
IN_FLIGHT_SHOWN = 5
_PAYMENTS_READ = 50  # newest payments read from our table for the two payment sections


class Denial(Protocol):
    """Why the tab shows nothing but words: a title and a text, as the Slack side's error
    table gives them (handlers/errors.py: `explain` is handed to HomeService)."""

    @property
    def title(self) -> str: ...

    @property
    def text(self) -> str: ...


@dataclass(frozen=True, slots=True)
class HomeView:
    """Everything the Home tab shows one person; `denied` replaces all of it."""

    locale: str
    today: dt.date
    denied: Denial | None = None
    totals: list[Money] = field(default_factory=list)
    invoice_count: int = 0
    overdue_count: int = 0
    invoices: list[InvoiceRow] = field(default_factory=list)  # a handful, overdue first
    in_flight: list[PaymentSummary] = field(default_factory=list)
    recent: list[PaymentSummary] = field(default_factory=list)
    payment_count: int = 0  # all of the person's payments, shown or not
    routes: list[RouteRow] | None = None  # billing-profile admins only


class HomeService:
    def __init__(self, identity: IdentityService, invoices: InvoiceService, payments: PaymentRepository,
                 routing: RoutingService, today: Callable[[], dt.date],
                 explain: Callable[[BaseException], Denial]) -> None:
        self._explain = explain
        self._identity = identity
        self._invoices = invoices
        self._payments = payments
        self._routing = routing
        self._today = today

    async def view(self, team_id: str, user_id: str) -> HomeView:
        today = self._today()
        try:
            viewer = await self._identity.viewer(team_id, user_id)
        except Exception as exc:  # noqa: BLE001 - no access (or billing down): words, as /invoices gives
            return HomeView(locale="en_US", today=today, denied=self._explained(exc))
        try:
            listing, (payments, count) = await asyncio.gather(
                self._invoices.list_payable(viewer, ListQuery.parse("")),
                self._payments.of_person(team_id, user_id, limit=_PAYMENTS_READ))
            routes = await self._routing.show(viewer) if viewer.access.is_profile_admin else None
        except Exception as exc:  # noqa: BLE001
            return HomeView(locale=viewer.locale, today=today, denied=self._explained(exc))
        rows = listing.rows  # sorted by due date: the overdue come first
        in_flight_states = {s.value for s in IN_FLIGHT} | {PaymentStatus.PROCESSING.value}
        return HomeView(
            locale=viewer.locale, today=today, totals=sorted(listing.totals, key=lambda m: m.currency),
            invoice_count=len(rows), overdue_count=sum(1 for row in rows if row.overdue), invoices=rows[:SOONEST],
            in_flight=[payment_summary(p) for p in payments if p.status in in_flight_states][:IN_FLIGHT_SHOWN],
            recent=[payment_summary(p) for p in payments if p.status not in in_flight_states][:RECENT],
            payment_count=count, routes=routes)


    def _explained(self, exc: BaseException) -> Denial:
        """The error-to-words table of `/invoices` (given as `explain`); the unexpected is logged."""
        if isinstance(exc, AccessDenied):
            log.info("home tab: access refused (%s)", exc.problem.value)
        else:
            log.warning("home tab built without data: %s", type(exc).__name__, exc_info=exc)
        return self._explain(exc)


class HomeRefresher:
    """Publish a person's Home tab again after something it shows changed, at most once per
    `every` seconds per person: a burst (50 payments) coalesces into a few publishes, far
    below views.publish's rate limit. The publish reads fresh data when it runs."""

    def __init__(self, publish: Callable[[str, str], Awaitable[None]], *, every: float = 3.0) -> None:
        self._publish = publish
        self._every = every
        self._pending: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._last: dict[tuple[str, str], float] = {}

    def request(self, team_id: str, user_id: str) -> None:
        key = (team_id, user_id)
        if key in self._pending:
            return  # a publish is already scheduled; it will show this change too
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last.get(key, -1e9) + self._every - loop.time())
        self._pending[key] = asyncio.ensure_future(self._later(key, delay))

    async def _later(self, key: tuple[str, str], delay: float) -> None:
        try:
            await asyncio.sleep(delay)
        finally:
            self._pending.pop(key, None)
        self._last[key] = asyncio.get_running_loop().time()
        try:
            await self._publish(*key)
        except Exception as exc:  # noqa: BLE001 - the next open publishes it anyway
            log.info("home tab not refreshed: %s", type(exc).__name__)

    async def aclose(self) -> None:
        for task in list(self._pending.values()):
            task.cancel()
