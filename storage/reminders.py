"""Each billing profile's due-date digest settings, per workspace (`/invoices reminders`),
and with them the profile's time zone (the billing API's profiles carry none)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import ReminderSetting, utcnow


class ReminderRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, team_id: str, billing_profile_id: str) -> ReminderSetting | None:
        async with self._sessions() as session:
            return await session.get(ReminderSetting, (team_id, billing_profile_id))

    async def time_zone(self, team_id: str, billing_profile_id: str) -> str | None:
        """The zone an admin set for the profile (None: the deployment's default applies)."""
        setting = await self.get(team_id, billing_profile_id)
        return setting.time_zone if setting is not None else None

    async def put(self, setting: ReminderSetting) -> ReminderSetting:
        """Create or replace one profile's setting."""
        setting.set_at = utcnow()
        async with self._sessions.begin() as session:
            return await session.merge(setting)

    async def for_team(self, team_id: str) -> list[ReminderSetting]:
        async with self._sessions() as session:
            return list(await session.scalars(
                select(ReminderSetting).where(ReminderSetting.team_id == team_id)
                .order_by(ReminderSetting.billing_profile_id)))
