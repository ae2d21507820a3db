"""Due-date digests: each billing profile's notification channel hears, daily or weekly at a
local time, what is due within the next days and what is overdue.

Billing-profile admins set it: `/invoices reminders <profile> daily|weekly|off [HH:MM]`
(default: weekly, Mondays at 09:00, 7 days ahead). The time is local to the profile's time
zone: the billing API's profiles carry none (docs/billing-api.md), so it is the deployment's
`DEFAULT_TIMEZONE`. Times are computed with `zoneinfo` from the local date and time each
time, so a daylight-saving change never moves the digest's local time (09:00 stays 09:00).

Each digest is one scheduler job (kind `reminder_digest`) keyed by workspace, profile and
local date; running it schedules the next one first, then queues the message in the outbox
under the job's key, so a job run twice (a crash, a lease taken over) posts once. A digest
with nothing to say is not sent (the job is skipped, and says so).
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import re
import zoneinfo
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from bot.billing import BillingClient, Invoice
from bot.clock import Clock
from bot.identity import Viewer
from bot.invoices import InvoiceService, ProfileNameProblem
from bot.money import Money, totals_by_currency
from bot.routing import NotificationRouter
from bot.scheduler import JobContext, JobResult, Scheduler
from storage.audit import AuditLog
from storage.models import Job, JobStatus, OutboxMessage, ReminderSetting, utcnow
from storage.reminders import ReminderRepository

log = logging.getLogger(__name__)

DIGEST = "reminder_digest"
CADENCES = ("daily", "weekly", "off")
DEFAULT_CADENCE = "weekly"
DEFAULT_TIME = "09:00"
DEFAULT_WEEKDAY = 0  # Monday
DEFAULT_DAYS_AHEAD = 7
_TIME = re.compile(r"^([01]?\d|2[0-3])[:.h]([0-5]\d)$")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class ReminderProblem(Exception):
    """A reminders command that cannot be carried out; the message is for the user."""


@dataclass(frozen=True, slots=True)
class ReminderCommand:
    """`reminders [<profile> [daily|weekly|off] [<weekday>] [HH:MM] [<N> days] [<time zone>]]`
    (the words after `/invoices`; the options in any order after the profile's name)."""

    profile: str = ""
    cadence: str | None = None  # None with no other option: show the settings
    local_time: str | None = None
    weekday: int | None = None  # 0 = Monday
    days_ahead: int | None = None
    time_zone: str | None = None  # an IANA name, e.g. Europe/Berlin

    @property
    def is_change(self) -> bool:
        return any(v is not None for v in (self.cadence, self.local_time, self.weekday, self.days_ahead,
                                           self.time_zone))

    @classmethod
    def parse(cls, text: str) -> ReminderCommand:
        words = html.unescape(text or "").split()
        if words and words[0].lower() in {"reminders", "reminder"}:
            words = words[1:]
        found: dict[str, object] = {}
        # Options are read from the end; the first word that is none of them ends the
        # profile's name (so a profile called "Acme Monday" needs its id, as the docs say).
        while words:
            word, lower = words[-1], words[-1].lower()
            if "local_time" not in found and _TIME.match(word):
                hours, minutes = _TIME.match(word).groups()  # type: ignore[union-attr]
                found["local_time"] = f"{int(hours):02d}:{minutes}"
            elif "cadence" not in found and lower in CADENCES:
                found["cadence"] = lower
            elif "weekday" not in found and _weekday(lower) is not None:
                found["weekday"] = _weekday(lower)
            elif "days_ahead" not in found and lower in {"day", "days"} and len(words) >= 2 \
                    and words[-2].isdigit():
                found["days_ahead"] = _days(words[-2])
                words = words[:-1]
            elif "days_ahead" not in found and _DAYS.match(lower):
                found["days_ahead"] = _days(_DAYS.match(lower).group(1))  # type: ignore[union-attr]
            elif "time_zone" not in found and _zone(word) is not None:
                found["time_zone"] = _zone(word)
            else:
                break
            words = words[:-1]
        cadence = found.get("cadence")
        if cadence is None and ("local_time" in found or "weekday" in found):
            cadence = "weekly" if "weekday" in found else DEFAULT_CADENCE
        return cls(" ".join(words)[:200], cadence, found.get("local_time"), found.get("weekday"),  # type: ignore[arg-type]
                   found.get("days_ahead"), found.get("time_zone"))  # type: ignore[arg-type]


MAX_DAYS_AHEAD = 60
_DAYS = re.compile(r"^(\d{1,3})d$")


def _days(text: str) -> int:
    days = int(text)
    if not 1 <= days <= MAX_DAYS_AHEAD:
        raise ReminderProblem(f"A digest looks from 1 to {MAX_DAYS_AHEAD} days ahead; {days} is outside that.")
    return days


def _weekday(word: str) -> int | None:
    for number, name in enumerate(_WEEKDAYS):
        if len(word) >= 3 and name.lower().startswith(word):
            return number
    return None


def _zone(word: str) -> str | None:
    """An IANA time zone name as zoneinfo knows it (case as given, or found case-blind)."""
    if "/" not in word and word.upper() != "UTC":
        return None
    names = {name.casefold(): name for name in zoneinfo.available_timezones()}
    return names.get(word.casefold()) or ("UTC" if word.upper() == "UTC" else None)


@dataclass(frozen=True, slots=True)
class ReminderRow:
    profile_id: str
    profile_name: str
    cadence: str  # daily | weekly | off
    local_time: str
    weekday: int
    days_ahead: int
    time_zone: str
    next_at: dt.datetime | None  # UTC

    @property
    def weekday_name(self) -> str:
        return _WEEKDAYS[self.weekday % 7]

    def describe(self) -> str:
        if self.cadence == "off":
            return f"off (time zone {self.time_zone})"
        when = "every day" if self.cadence == "daily" else f"every {self.weekday_name}"
        return f"{when} at {self.local_time} ({self.time_zone}), invoices due within {self.days_ahead} days"


@dataclass(frozen=True, slots=True)
class DigestLine:
    invoice: Invoice
    overdue: bool
    scheduled: bool = False  # a payment of it is scheduled


@dataclass(frozen=True, slots=True)
class Digest:
    """What a digest says: the view model `blocks/reminders.py` draws."""

    profile_name: str
    today: dt.date  # in the profile's time zone
    days_ahead: int
    lines: list[DigestLine]  # overdue first, then by due date
    totals: list[Money]
    overdue_totals: list[Money]
    locale: str
    cadence: str = DEFAULT_CADENCE

    @property
    def overdue_count(self) -> int:
        return sum(1 for line in self.lines if line.overdue)


def next_occurrence(setting: ReminderSetting, after: dt.datetime) -> dt.datetime | None:
    """The first digest time strictly after `after` (UTC), at the local time in the
    setting's zone: worked out from the local date each time, so DST never shifts it."""
    if setting.cadence == "off":
        return None
    zone = ZoneInfo(setting.time_zone)
    hours, minutes = (int(part) for part in setting.local_time.split(":"))
    start = after.astimezone(zone).date()
    for offset in range(0, 9):
        day = start + dt.timedelta(days=offset)
        if setting.cadence == "weekly" and day.weekday() != setting.weekday:
            continue
        at = dt.datetime.combine(day, dt.time(hours, minutes), tzinfo=zone).astimezone(dt.UTC)
        if at > after:
            return at
    raise AssertionError("a day of the week always comes within 8 days")  # pragma: no cover


def _first(*values: int | None) -> int:
    return next(v for v in values if v is not None)


def digest_key(team_id: str, profile_id: str, at: dt.datetime, zone: str) -> str:
    return f"digest:{team_id}:{profile_id}:{at.astimezone(ZoneInfo(zone)).date().isoformat()}"


def build_digest(profile_name: str, invoices: Sequence[Invoice], *, today: dt.date, days_ahead: int, locale: str,
                 scheduled: frozenset[str] = frozenset(), cadence: str = DEFAULT_CADENCE) -> Digest:
    """The overdue invoices and those due within `days_ahead` days of `today`."""
    horizon = today + dt.timedelta(days=days_ahead)
    lines = [DigestLine(inv, inv.is_overdue(today), inv.id in scheduled) for inv in invoices
             if inv.is_payable and (inv.is_overdue(today) or inv.due_on <= horizon)]
    lines.sort(key=lambda line: (not line.overdue, line.invoice.due_on, line.invoice.number))
    return Digest(profile_name, today, days_ahead, lines,
                  totals_by_currency(line.invoice.balance for line in lines),
                  totals_by_currency(line.invoice.balance for line in lines if line.overdue), locale, cadence)


Render = Callable[[Digest], dict]
ScheduledInvoices = Callable[[str, str], Awaitable[frozenset[str]]]  # (team, profile) -> invoice ids


async def _nothing_scheduled(team_id: str, profile_id: str) -> frozenset[str]:
    return frozenset()


@dataclass
class ReminderService:
    repo: ReminderRepository
    scheduler: Scheduler
    invoices: InvoiceService
    billing: BillingClient
    router: NotificationRouter
    audit: AuditLog
    clock: Clock
    render: Render
    queue: Callable[[list[OutboxMessage]], Awaitable[None]]  # writes to the outbox and wakes it
    default_timezone: str = "UTC"
    locale: str = "en_US"  # channel notices use the workspace's locale
    scheduled_invoices: ScheduledInvoices = field(default=_nothing_scheduled)
    # callables (team_id, user_id): a person changed reminders (their Home tab shows them)
    on_changed: list = field(default_factory=list)

    # -- the command -----------------------------------------------------------------------
    async def show(self, viewer: Viewer) -> list[ReminderRow]:
        rows = []
        for pid in sorted(viewer.access.billing_profile_ids):
            rows.append(await self._row(viewer.team_id, pid))
        return rows

    async def rows(self, team_id: str, names: dict[str, str]) -> list[ReminderRow]:
        """The settings of these profiles (id -> name, in that order) with their next digest:
        two queries whatever the number of profiles (the Home tab)."""
        settings = {s.billing_profile_id: s for s in await self.repo.for_team(team_id)}
        upcoming = await self.scheduler.jobs.upcoming(kinds=[DIGEST], key_prefix=f"digest:{team_id}:",
                                                      limit=max(100, 3 * len(settings)))
        next_at: dict[str, dt.datetime] = {}
        for job in upcoming:  # soonest first
            next_at.setdefault(str(job.payload.get("billing_profile_id", "")), job.due_at)
        rows = []
        for pid, name in names.items():
            setting = settings.get(pid)
            if setting is None:
                rows.append(ReminderRow(pid, name, "off", DEFAULT_TIME, DEFAULT_WEEKDAY, DEFAULT_DAYS_AHEAD,
                                        self.default_timezone, None))
            else:
                rows.append(ReminderRow(pid, name, setting.cadence, setting.local_time, setting.weekday,
                                        setting.days_ahead, setting.time_zone, next_at.get(pid)))
        return rows

    async def configure(self, viewer: Viewer, command: ReminderCommand) -> list[ReminderRow]:
        """Set (or turn off) one profile's digest; returns its row. Admins only, audited."""
        if not viewer.access.is_profile_admin:
            await self.audit.record("set_reminders", "denied", team_id=viewer.team_id, user_id=viewer.user_id,
                                    reason="not_billing_profile_admin")
            raise ReminderProblem("Only billing-profile admins can change reminders (the *Billing Profile Admin* "
                                  "permission in the billing console).")
        assert command.is_change
        changed = []
        for pid in await self._profiles_named(viewer, command.profile):
            current = await self.repo.get(viewer.team_id, pid)
            # What the command does not name stays as it was (a time zone alone keeps a
            # digest that is off, off).
            setting = ReminderSetting(
                team_id=viewer.team_id, billing_profile_id=pid,
                cadence=command.cadence or (current.cadence if current else "off"),
                local_time=command.local_time or (current.local_time if current else DEFAULT_TIME),
                weekday=_first(command.weekday, current.weekday if current else None, DEFAULT_WEEKDAY),
                days_ahead=_first(command.days_ahead, current.days_ahead if current else None, DEFAULT_DAYS_AHEAD),
                time_zone=command.time_zone or (current.time_zone if current else self.default_timezone),
                set_by=viewer.user_id)
            await self.repo.put(setting)
            await self._reschedule(setting, by=viewer.user_id)
            await self.audit.record("set_reminders", "ok", team_id=viewer.team_id, user_id=viewer.user_id,
                                    billing_profile_id=pid, cadence=setting.cadence, local_time=setting.local_time,
                                    weekday=setting.weekday, days_ahead=setting.days_ahead,
                                    time_zone=setting.time_zone)
            changed.append(await self._row(viewer.team_id, pid))
        for told in self.on_changed:
            told(viewer.team_id, viewer.user_id)
        return changed

    async def _reschedule(self, setting: ReminderSetting, *, by: str | None) -> None:
        prefix = f"digest:{setting.team_id}:{setting.billing_profile_id}:"
        for job in await self.scheduler.jobs.upcoming(kinds=[DIGEST], key_prefix=prefix):
            if job.status == JobStatus.SCHEDULED:
                await self.scheduler.cancel(job.key, by=by, reason="reminders changed")
        await self._schedule_next(setting, after=self.clock.now(), by=by)

    async def _schedule_next(self, setting: ReminderSetting, *, after: dt.datetime, by: str | None = None) -> None:
        # A digest's key is its local day, so a day's key may be taken already: by a digest
        # cancelled before it ran (turned off, or its time changed: scheduled again), or by
        # one that ran today (then the next one is the one after it). Never a dead series.
        for _ in range(3):
            at = next_occurrence(setting, after)
            if at is None:
                return
            key = digest_key(setting.team_id, setting.billing_profile_id, at, setting.time_zone)
            job = await self.scheduler.schedule(DIGEST, key, at, {"billing_profile_id": setting.billing_profile_id},
                                                team_id=setting.team_id, by=by)
            if job.status in (JobStatus.SCHEDULED, JobStatus.RUNNING):
                return
            if job.status == JobStatus.CANCELED and await self.scheduler.jobs.revive(key, at, by=by):
                self.scheduler.wake()
                return
            after = max(after, at)

    async def _row(self, team_id: str, pid: str) -> ReminderRow:
        profile = await self.invoices.profile(pid)
        setting = await self.repo.get(team_id, pid)
        if setting is None:
            return ReminderRow(pid, profile.name, "off", DEFAULT_TIME, DEFAULT_WEEKDAY, DEFAULT_DAYS_AHEAD,
                               self.default_timezone, None)
        upcoming = await self.scheduler.jobs.upcoming(kinds=[DIGEST], key_prefix=f"digest:{team_id}:{pid}:", limit=1)
        return ReminderRow(pid, profile.name, setting.cadence, setting.local_time, setting.weekday,
                           setting.days_ahead, setting.time_zone, upcoming[0].due_at if upcoming else None)

    async def _profiles_named(self, viewer: Viewer, text: str) -> list[str]:
        try:
            return await self.invoices.profiles_named(viewer, text, listed_by="/invoices reminders")
        except ProfileNameProblem as exc:
            raise ReminderProblem(str(exc)) from None

    # -- the job ---------------------------------------------------------------------------
    async def run_digest(self, job: Job, ctx: JobContext) -> JobResult:
        team_id, pid = job.team_id or "", str(job.payload.get("billing_profile_id", ""))
        setting = await self.repo.get(team_id, pid)
        if setting is None or setting.cadence == "off":
            return JobResult.skip("reminders are off")
        # The next one first: whatever happens to this one, the series goes on (same key: once).
        await self._schedule_next(setting, after=max(job.due_at, ctx.now))
        zone = ZoneInfo(setting.time_zone)
        today = max(job.due_at, ctx.now).astimezone(zone).date()
        profile = await self.invoices.profile(pid, fresh=True)
        invoices = [invoice async for invoice in self.billing.iter_invoices([pid])]
        digest = build_digest(profile.name, invoices, today=today, days_ahead=setting.days_ahead,
                              locale=self.locale, scheduled=await self.scheduled_invoices(team_id, pid),
                              cadence=setting.cadence)
        if not digest.lines:
            return JobResult.skip("nothing due or overdue")
        channel = await self.router.channel_for(team_id, pid)
        await self.queue([OutboxMessage(dedupe_key=f"job:{job.key}", team_id=team_id or None, channel=channel,
                                        payload=self.render(digest), attempts=0, next_attempt_at=utcnow())])
        return JobResult.done(f"{len(digest.lines)} invoices to {channel}", invoices=len(digest.lines),
                              channel=channel)
