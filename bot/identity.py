"""Who is asking, and what the billing backend lets them see."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from bot.billing import Access, BillingClient, BillingNotFound
from bot.cache import TTLCache


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


class Directory(Protocol):
    """Where a chat user's verified email comes from (Slack's users.info)."""

    async def email_of(self, team_id: str, user_id: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Viewer:
    team_id: str
    user_id: str
    email: str
    access: Access

    def require(self, billing_profile_id: str) -> None:
        if not self.access.may_see(billing_profile_id):
            raise AccessDenied(AccessProblem.PROFILE_NOT_ALLOWED, billing_profile_id)


class IdentityService:
    def __init__(self, directory: Directory, billing: BillingClient, *, ttl_seconds: float = 60.0) -> None:
        self._directory = directory
        self._billing = billing
        self._emails: TTLCache[tuple[str, str], str] = TTLCache(ttl_seconds)
        self._access: TTLCache[str, Access] = TTLCache(ttl_seconds)

    async def viewer(self, team_id: str, user_id: str, *, fresh: bool = False) -> Viewer:
        """The user's rights; `fresh` bypasses the caches (used before money moves)."""
        email = None if fresh else self._emails.get((team_id, user_id))
        if email is None:
            email = await self._directory.email_of(team_id, user_id)
            if not email:
                raise AccessDenied(AccessProblem.NO_EMAIL)
            self._emails.put((team_id, user_id), email)

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
        return Viewer(team_id, user_id, email, access)
