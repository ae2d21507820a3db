"""The notification outbox: claimed with a lease by a guarded update, so any number of
workers in any number of processes deliver each message once.

Per channel, messages go out in order, one at a time, and paced: only the oldest
undelivered message of a channel can be claimed, and delivering it pushes the next one
back by the pace (Slack allows about one message per second per channel)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import OutboxMessage, utcnow


def _claimable(now: dt.datetime, *, due: bool = True) -> ColumnElement[bool]:
    condition = and_(OutboxMessage.delivered_at.is_(None),
                     (OutboxMessage.locked_until.is_(None)) | (OutboxMessage.locked_until < now))
    return and_(condition, OutboxMessage.next_attempt_at <= now) if due else condition


class OutboxRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, lease: dt.timedelta = dt.timedelta(seconds=30)):
        self._sessions = sessions
        self._lease = lease

    async def claim_due(self, limit: int = 20, *, batch: int = 1) -> list[list[OutboxMessage]]:
        """Claim due messages, as batches of one channel's consecutive messages (oldest
        first, at most `batch` each), so a busy channel gets one digest, not a queue."""
        now = utcnow()
        older = aliased(OutboxMessage)
        async with self._sessions() as session:
            heads = list(await session.scalars(
                select(OutboxMessage)
                .where(
                    _claimable(now),
                    ~exists().where(and_(older.channel == OutboxMessage.channel, older.delivered_at.is_(None),
                                         older.id < OutboxMessage.id)),
                )
                .order_by(OutboxMessage.id)
                .limit(limit)
            ))
            followers: dict[int, list[int]] = {}
            for head in heads if batch > 1 else []:
                rows = await session.execute(
                    select(OutboxMessage.id, OutboxMessage.next_attempt_at, OutboxMessage.locked_until)
                    .where(OutboxMessage.channel == head.channel, OutboxMessage.delivered_at.is_(None),
                           OutboxMessage.id > head.id)
                    .order_by(OutboxMessage.id).limit(batch - 1))
                ids = []
                for message_id, due, locked in rows:
                    if due > now or (locked is not None and locked >= now):
                        break  # keep the channel's order: stop at the first that must wait
                    ids.append(message_id)
                followers[head.id] = ids
        batches: list[list[OutboxMessage]] = []
        for head in heads:
            claimed = [m for m in [await self._claim(head.id, now)] if m is not None]
            if not claimed:
                continue
            for message_id in followers.get(head.id, []):
                follower = await self._claim(message_id, now)
                if follower is None:
                    break
                claimed.append(follower)
            batches.append(claimed)
        return batches

    async def _claim(self, message_id: int, now: dt.datetime) -> OutboxMessage | None:
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id, _claimable(now, due=False))
                .values(locked_until=now + self._lease, attempts=OutboxMessage.attempts + 1)
            )
            return await session.get_one(OutboxMessage, message_id) if result.rowcount == 1 else None

    async def delivered(self, messages: list[OutboxMessage], *, pace: dt.timedelta = dt.timedelta(0)) -> None:
        """Mark one channel's batch delivered, and hold that channel's next message back by the pace."""
        now = utcnow()
        message = messages[0]
        async with self._sessions.begin() as session:
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id.in_([m.id for m in messages]))
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
