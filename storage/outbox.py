"""The notification outbox: claimed with a lease by a guarded update, so any number of
workers in any number of processes deliver each message once.

Per channel, messages go out in order, one at a time, and paced: only the oldest
undelivered message of a channel can be claimed, and delivering it pushes the next one
back by the pace (Slack allows about one message per second per channel)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import OutboxMessage, utcnow


class OutboxRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, lease: dt.timedelta = dt.timedelta(seconds=30)):
        self._sessions = sessions
        self._lease = lease

    async def claim_due(self, limit: int = 20) -> list[OutboxMessage]:
        now = utcnow()
        older = aliased(OutboxMessage)
        async with self._sessions() as session:
            candidates = list(await session.scalars(
                select(OutboxMessage.id)
                .where(
                    OutboxMessage.delivered_at.is_(None),
                    OutboxMessage.next_attempt_at <= now,
                    (OutboxMessage.locked_until.is_(None)) | (OutboxMessage.locked_until < now),
                    ~exists().where(and_(older.channel == OutboxMessage.channel, older.delivered_at.is_(None),
                                         older.id < OutboxMessage.id)),
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

    async def delivered(self, message: OutboxMessage, *, pace: dt.timedelta = dt.timedelta(0)) -> None:
        now = utcnow()
        async with self._sessions.begin() as session:
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == message.id)
                .values(delivered_at=now, locked_until=None, last_error=None)
            )
            if pace:
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.channel == message.channel, OutboxMessage.delivered_at.is_(None),
                           OutboxMessage.next_attempt_at < now + pace)
                    .values(next_attempt_at=now + pace)
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
