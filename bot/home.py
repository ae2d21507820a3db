"""The App Home tab: what one person sees there, assembled from the existing services.

The view model is plain data; `blocks.home` turns it into Block Kit. Reads are bounded
whatever the number of invoices or the history (docs/home.md, "Reads"): a few listing
requests of the billing API (`InvoiceService.payable_summary`), and a page and a count of
each of the bot's own tables the tab shows (payments, approval requests, scheduled
payments), plus the admin's settings of at most `SETTINGS_SHOWN` profiles.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.approvals import ApprovalCard, ApprovalService, Rule
from bot.identity import AccessDenied, IdentityService, Viewer
from bot.invoices import InvoiceRow, InvoiceService
from bot.money import Money
from bot.reminders import ReminderRow, ReminderService
from bot.routing import RouteRow, RoutingService
from bot.scheduled_payments import ID_PREFIX as SCHEDULED_ID
from bot.scheduled_payments import KIND as SCHEDULED_PAYMENT
from bot.scheduled_payments import Scheduled, is_scheduled
from bot.summaries import PaymentSummary, payment_summary
from storage.jobs import JobRepository
from storage.models import IN_FLIGHT, PaymentStatus
from storage.payments import PaymentRepository

log = logging.getLogger(__name__)

SOONEST = 5  # invoices shown with Pay Now: the overdue first, then the soonest due
RECENT = 10  # recent payments shown; the rest are counted
IN_FLIGHT_SHOWN = 5
TO_DECIDE = 5  # requests waiting for the person's decision, each with Approve / Reject
WAITING_SHOWN = 3  # the person's own requests (Withdraw), and as many scheduled payments (Cancel)
SETTINGS_SHOWN = 20  # billing profiles whose settings an admin sees (the rest are counted)
INVOICE_PAGES = 5  # listing pages of 100 read per 40 profiles for the totals (then "at least")
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
    # False when there were more invoices than the tab reads: totals and counts are "at least".
    complete: bool = True
    overdue_complete: bool = True
    invoices: list[InvoiceRow] = field(default_factory=list)  # a handful, overdue first
    in_flight: list[PaymentSummary] = field(default_factory=list)
    recent: list[PaymentSummary] = field(default_factory=list)
    payment_count: int = 0  # all of the person's payments, shown or not
    to_decide: list[ApprovalCard] = field(default_factory=list)  # waiting for this approver's decision
    to_decide_count: int = 0
    my_requests: list[ApprovalCard] = field(default_factory=list)  # their own, waiting for approval
    my_request_count: int = 0
    scheduled: list[Scheduled] = field(default_factory=list)  # their own scheduled payments
    scheduled_count: int = 0
    routes: list[RouteRow] | None = None  # billing-profile admins only (the first SETTINGS_SHOWN)
    admin_profile_count: int = 0  # all of the admin's profiles, shown or not
    rules: dict[str, Rule] = field(default_factory=dict)  # by profile id, for the routes shown
    reminders: dict[str, ReminderRow] = field(default_factory=dict)  # by profile id, for the routes shown


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
        # The sections of features built after the payment itself, wired by the app once
        # they exist (handlers/app.py); a section whose source is None is not shown.
        self.approvals: ApprovalService | None = None
        self.jobs: JobRepository | None = None
        self.reminders: ReminderService | None = None

    async def view(self, team_id: str, user_id: str) -> HomeView:
        today = self._today()
        try:
            viewer = await self._identity.viewer(team_id, user_id)
        except Exception as exc:  # noqa: BLE001 - no access (or billing down): words, as /invoices gives
            return HomeView(locale="en_US", today=today, denied=self._explained(exc))
        try:
            due, (payments, count), (to_decide, to_decide_count), (mine, mine_count), (jobs, job_count), admin = \
                await asyncio.gather(
                    self._invoices.payable_summary(viewer, shown=SOONEST, max_pages=INVOICE_PAGES),
                    self._payments.of_person(team_id, user_id, limit=_PAYMENTS_READ),
                    self._to_decide(viewer), self._my_requests(viewer), self._scheduled(viewer),
                    self._settings(viewer))
        except Exception as exc:  # noqa: BLE001
            return HomeView(locale=viewer.locale, today=today, denied=self._explained(exc))
        waiting = {card.payment_id for card in mine}
        in_flight_states = {s.value for s in IN_FLIGHT} | {PaymentStatus.PROCESSING.value}
        # A scheduled payment not made yet (waiting for approval before its day, or approved
        # and waiting for it) is shown once: in "Your payments waiting", with its Cancel.
        not_yet = {PaymentStatus.AWAITING_APPROVAL.value, PaymentStatus.SCHEDULED.value}
        shown = [p for p in payments if p.id not in waiting and not (is_scheduled(p) and p.status in not_yet)]
        routes, rules, reminders = admin
        return HomeView(
            locale=viewer.locale, today=today, totals=due.totals, invoice_count=due.count,
            overdue_count=due.overdue_count, complete=due.complete, overdue_complete=due.overdue_complete,
            invoices=due.rows,
            in_flight=[payment_summary(p) for p in shown if p.status in in_flight_states][:IN_FLIGHT_SHOWN],
            recent=[payment_summary(p) for p in shown if p.status not in in_flight_states][:RECENT],
            payment_count=count, to_decide=to_decide, to_decide_count=to_decide_count, my_requests=mine,
            my_request_count=mine_count, scheduled=[Scheduled.of(job) for job in jobs], scheduled_count=job_count,
            routes=routes, admin_profile_count=len(set(viewer.access.billing_profile_ids)) if routes is not None
            else 0, rules=rules, reminders=reminders)

    async def _to_decide(self, viewer: Viewer) -> tuple[list[ApprovalCard], int]:
        if self.approvals is None:
            return [], 0
        return await self.approvals.waiting_for(viewer, limit=TO_DECIDE)

    async def _my_requests(self, viewer: Viewer) -> tuple[list[ApprovalCard], int]:
        if self.approvals is None:
            return [], 0
        # A scheduled payment's request is shown as the scheduled payment (Cancel ends both).
        return await self.approvals.waiting_of(viewer.team_id, viewer.user_id, limit=WAITING_SHOWN,
                                               not_prefixed=SCHEDULED_ID)

    async def _scheduled(self, viewer: Viewer) -> tuple[list, int]:
        if self.jobs is None:
            return [], 0
        jobs, total = await self.jobs.scheduled_by(SCHEDULED_PAYMENT, viewer.team_id, viewer.user_id,
                                                   limit=WAITING_SHOWN)
        # Shown only while the person may still see the profile (Cancel checks it again).
        return [job for job in jobs if viewer.access.may_see(str(job.payload.get("billing_profile_id", "")))], total

    async def _settings(self, viewer: Viewer) -> tuple[list[RouteRow] | None, dict[str, Rule],
                                                         dict[str, ReminderRow]]:
        """A billing-profile admin's settings of their first `SETTINGS_SHOWN` profiles."""
        if not viewer.access.is_profile_admin:
            return None, {}, {}
        routes = await self._routing.show(viewer, limit=SETTINGS_SHOWN)
        names = {row.profile_id: row.profile_name for row in routes}
        rules = await self.approvals.rules(viewer.team_id, names) if self.approvals is not None else []
        reminders = await self.reminders.rows(viewer.team_id, names) if self.reminders is not None else []
        return (routes, {rule.profile_id: rule for rule in rules},
                {row.profile_id: row for row in reminders})

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
