"""Who is asking, and what the billing backend lets them see."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from babel import Locale, UnknownLocaleError

from bot.billing import Access, BillingClient, BillingNotFound
from bot.cache import TTLCache

DEFAULT_LOCALE = "en_US"


class AccessProblem(enum.StrEnum):
    NO_EMAIL = "no_email"
    UNKNOWN_USER = "unknown_user"
    NOT_VIEWER = "not_invoice_viewer"
    NO_PROFILES = "no_billing_profiles"
    PROFILE_NOT_ALLOWED = "billing_profile_not_allowed"
    NOT_ADMIN = "not_billing_profile_admin"


class AccessDenied(Exception):
    def __init__(self, problem: AccessProblem, detail: str = "") -> None:
        super().__init__(problem.value)
        self.problem = problem
        self.detail = detail


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    email: str | None
    locale: str | None  # as the chat service names it, e.g. "de-DE"


class Directory(Protocol):
    """Where a chat user's verified email and language come from (Slack's users.info)."""

    async def person(self, team_id: str, user_id: str) -> DirectoryEntry: ...


def babel_locale(tag: str | None, default: str = DEFAULT_LOCALE) -> str:
    """Slack's "de-DE" as Babel's "de_DE"; a tag Babel does not know falls back to `default`."""
    if not tag:
        return default
    try:
        return str(Locale.parse(tag.replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        return default


@dataclass(frozen=True, slots=True)
class Viewer:
    team_id: str
    user_id: str
    email: str
    access: Access
    locale: str = DEFAULT_LOCALE  # Babel's form ("de_DE"): amounts are read and shown in it

    def require(self, billing_profile_id: str) -> None:
        if not self.access.may_see(billing_profile_id):
            raise AccessDenied(AccessProblem.PROFILE_NOT_ALLOWED, billing_profile_id)


class IdentityService:
    def __init__(self, directory: Directory, billing: BillingClient, *, ttl_seconds: float = 60.0,
                 default_locale: str = DEFAULT_LOCALE) -> None:
        self._directory = directory
        self._billing = billing
        self._default_locale = babel_locale(default_locale)
        self._people: TTLCache[tuple[str, str], DirectoryEntry] = TTLCache(ttl_seconds)
        self._access: TTLCache[str, Access] = TTLCache(ttl_seconds)

    async def viewer(self, team_id: str, user_id: str, *, fresh: bool = False) -> Viewer:
        """The user's rights; `fresh` bypasses the caches (used before money moves)."""
        entry = None if fresh else self._people.get((team_id, user_id))
        if entry is None:
            entry = await self._directory.person(team_id, user_id)
            if not entry.email:
                raise AccessDenied(AccessProblem.NO_EMAIL)
            self._people.put((team_id, user_id), entry)
        email = entry.email
        assert email is not None

        async def load() -> Access:
            try:
                return await self._billing.get_access(email)
            except BillingNotFound:
                raise AccessDenied(AccessProblem.UNKNOWN_USER) from None

        access = await self._access.get_or_load(email.lower(), load, fresh=fresh)
        if not access.is_invoice_viewer:
            raise AccessDenied(AccessProblem.NOT_VIEWER)
        if not access.billing_profile_ids:
            raise AccessDenied(AccessProblem.NO_PROFILES)
        return Viewer(team_id, user_id, email, access, babel_locale(entry.locale, self._default_locale))
