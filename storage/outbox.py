"""The notification outbox: claimed with a lease by a guarded update, so any number of
workers in any number of processes deliver each message once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import OutboxMessage, utcnow


class OutboxRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, lease: dt.timedelta = dt.timedelta(seconds=60)):
        self._sessions = sessions
        self._lease = lease

    async def claim_due(self, limit: int = 20) -> list[OutboxMessage]:
        now = utcnow()
        async with self._sessions() as session:
            candidates = list(await session.scalars(
                select(OutboxMessage.id)
                .where(
                    OutboxMessage.delivered_at.is_(None),
                    OutboxMessage.next_attempt_at <= now,
                    (OutboxMessage.locked_until.is_(None)) | (OutboxMessage.locked_until < now),
                )
                .order_by(OutboxMessage.id)
                .limit(limit)
            ))
        claimed: list[OutboxMessage] = []
        for message_id in candidates:
            async with self._sessions.begin() as session:
                result = await session.execute(
                    update(OutboxMessage)
                    .where(
                        OutboxMessage.id == message_id,
                        OutboxMessage.delivered_at.is_(None),
                        (OutboxMessage.locked_until.is_(None)) | (OutboxMessage.locked_until < now),
                    )
                    .values(locked_until=now + self._lease, attempts=OutboxMessage.attempts + 1)
                )
                if result.rowcount == 1:
                    claimed.append(await session.get_one(OutboxMessage, message_id))
        return claimed

    async def delivered(self, message_id: int) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == message_id)
                .values(delivered_at=utcnow(), locked_until=None, last_error=None)
            )

    async def retry_later(self, message_id: int, *, at: dt.datetime, error: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == message_id)
                .values(next_attempt_at=at, locked_until=None, last_error=error[:500])
            )

    async def reroute(self, message_id: int, channel: str, payload: dict) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == message_id)
                .values(channel=channel, payload=payload, locked_until=None, next_attempt_at=utcnow())
            )

    async def pending(self) -> list[OutboxMessage]:
        async with self._sessions() as session:
            return list(await session.scalars(
                select(OutboxMessage).where(OutboxMessage.delivered_at.is_(None)).order_by(OutboxMessage.id)))
