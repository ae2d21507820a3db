"""Notification routes: billing profile -> channel, per workspace."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import NotificationRoute, utcnow


class RouteRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def channel_for(self, team_id: str, billing_profile_id: str) -> str | None:
        async with self._sessions() as session:
            route = await session.get(NotificationRoute, (team_id, billing_profile_id))
            return route.channel_id if route else None

    async def set(self, team_id: str, profile_ids: Iterable[str], channel_id: str, set_by: str) -> None:
        profile_ids = list(profile_ids)
        async with self._sessions.begin() as session:
            await session.execute(delete(NotificationRoute).where(
                NotificationRoute.team_id == team_id, NotificationRoute.billing_profile_id.in_(profile_ids)))
            session.add_all(NotificationRoute(team_id=team_id, billing_profile_id=pid, channel_id=channel_id,
                                              set_by=set_by, set_at=utcnow()) for pid in profile_ids)

    async def for_profiles(self, team_id: str, profile_ids: Iterable[str]) -> dict[str, str]:
        async with self._sessions() as session:
            rows = await session.scalars(select(NotificationRoute).where(
                NotificationRoute.team_id == team_id,
                NotificationRoute.billing_profile_id.in_(list(profile_ids))))
            return {row.billing_profile_id: row.channel_id for row in rows}
