"""The notification outbox: claimed with a lease by a guarded update, so any number of
workers in any number of processes deliver each message once.

Per channel of a workspace, messages go out in order, one at a time, and paced: only the
oldest waiting message of a (workspace, channel) can be claimed, and delivering it pushes
the next one back by the pace (Slack allows about one message per second per channel).
Workspaces never share a queue, even when their channels have the same name (`#billing`).

A message whose delivery was given up is a dead letter (`failed_at` set, `last_error`
kept): it is never claimed again, it no longer holds back its channel, and an operator
lists it and sends it again (`failed`, `retry_now`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import OutboxMessage, utcnow


def _waiting() -> ColumnElement[bool]:
    """Neither delivered nor given up."""
    return and_(OutboxMessage.delivered_at.is_(None), OutboxMessage.failed_at.is_(None))


def _claimable(now: dt.datetime, *, due: bool = True) -> ColumnElement[bool]:
    condition = and_(_waiting(), (OutboxMessage.locked_until.is_(None)) | (OutboxMessage.locked_until < now))
    return and_(condition, OutboxMessage.next_attempt_at <= now) if due else condition


def _same_queue(message: type[OutboxMessage] | OutboxMessage, team_id: object, channel: object) -> ColumnElement[bool]:
    # team_id may be NULL (single-workspace installs of old): NULL matches NULL here.
    return and_(message.channel == channel, message.team_id.is_not_distinct_from(team_id))  # type: ignore[union-attr]


class OutboxRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, lease: dt.timedelta = dt.timedelta(seconds=30),
                 now: Callable[[], dt.datetime] = utcnow):
        self._sessions = sessions
        self._lease = lease
        # The wall clock by default (see storage.models.utcnow): due times, leases and the
        # pace are compared with what other processes wrote.
        self._now = now

    async def claim_due(self, limit: int = 20, *, batch: int = 1) -> list[list[OutboxMessage]]:
        """Claim due messages, as batches of one workspace channel's consecutive messages
        (oldest first, at most `batch` each), so a busy channel gets one digest, not a queue."""
        now = self._now()
        older = aliased(OutboxMessage)
        async with self._sessions() as session:
            heads = list(await session.scalars(
                select(OutboxMessage)
                .where(
                    _claimable(now),
                    ~exists().where(and_(_same_queue(older, OutboxMessage.team_id, OutboxMessage.channel),
                                         older.delivered_at.is_(None), older.failed_at.is_(None),
                                         older.id < OutboxMessage.id)),
                )
                .order_by(OutboxMessage.id)
                .limit(limit)
            ))
            followers: dict[int, list[int]] = {}
            for head in heads if batch > 1 else []:
                rows = await session.execute(
                    select(OutboxMessage.id, OutboxMessage.next_attempt_at, OutboxMessage.locked_until)
                    .where(_same_queue(OutboxMessage, head.team_id, head.channel), _waiting(),
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

    async def delivered(self, messages: list[OutboxMessage], *, pace: dt.timedelta = dt.timedelta(0),
                        posted: tuple[str, str] | None = None) -> None:
        """Mark one channel's batch delivered, and hold that channel's next message back by the pace.
        `posted`: Slack's (channel, ts) of a message sent alone, so it can be updated later."""
        now = self._now()
        message = messages[0]
        where_posted = ({"posted_channel": posted[0], "posted_ts": posted[1]}
                        if posted is not None and len(messages) == 1 else {})
        async with self._sessions.begin() as session:
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id.in_([m.id for m in messages]))
                .values(delivered_at=now, locked_until=None, last_error=None, **where_posted)
            )
            if pace:
                await session.execute(
                    update(OutboxMessage)
                    .where(_same_queue(OutboxMessage, message.team_id, message.channel), _waiting(),
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
                .values(channel=channel, payload=payload, locked_until=None, next_attempt_at=self._now())
            )

    async def dead_letter(self, message_id: int, *, error: str) -> None:
        """Give up delivering: keep the message and why, out of every queue."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == message_id, OutboxMessage.delivered_at.is_(None))
                .values(failed_at=self._now(), locked_until=None, last_error=error[:500])
            )

    async def retry_now(self, message_ids: Sequence[int] = (), *, all_failed: bool = False) -> list[int]:
        """Put undelivered messages (dead letters, or ones waiting for a retry) back to be
        delivered now, with a fresh allowance of tries; returns the ids that were."""
        if not message_ids and not all_failed:
            return []
        condition = OutboxMessage.failed_at.is_not(None) if all_failed else OutboxMessage.id.in_(list(message_ids))
        async with self._sessions.begin() as session:
            ids = list(await session.scalars(
                select(OutboxMessage.id).where(condition, OutboxMessage.delivered_at.is_(None))
                .order_by(OutboxMessage.id)))
            if ids:
                await session.execute(
                    update(OutboxMessage).where(OutboxMessage.id.in_(ids), OutboxMessage.delivered_at.is_(None))
                    .values(failed_at=None, attempts=0, next_attempt_at=self._now(), locked_until=None)
                )
        return ids

    async def posted(self, dedupe_key: str) -> tuple[str, str] | None:
        """Where Slack put the message with this dedupe key: (channel, ts), once delivered."""
        async with self._sessions() as session:
            row = (await session.execute(
                select(OutboxMessage.posted_channel, OutboxMessage.posted_ts)
                .where(OutboxMessage.dedupe_key == dedupe_key))).first()
        if row is None or not row[0] or not row[1]:
            return None
        return row[0], row[1]

    async def get(self, message_id: int) -> OutboxMessage | None:
        async with self._sessions() as session:
            return await session.get(OutboxMessage, message_id)

    async def failed(self, limit: int = 100) -> list[OutboxMessage]:
        """Dead letters, most recent first."""
        async with self._sessions() as session:
            return list(await session.scalars(
                select(OutboxMessage).where(OutboxMessage.failed_at.is_not(None), OutboxMessage.delivered_at.is_(None))
                .order_by(OutboxMessage.failed_at.desc(), OutboxMessage.id.desc()).limit(limit)))

    async def recent(self, limit: int = 50) -> list[OutboxMessage]:
        """The latest messages, whatever their state, most recent first."""
        async with self._sessions() as session:
            return list(await session.scalars(
                select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)))
