"""What an operator does with the outbox: see what is waiting or given up, and send again.

Pure functions over the repository, so any CLI front end (argparse today) wires them in a
few lines: `outbox_rows` + `format_outbox` for the listing, `retry_outbox` for the retry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from storage.models import OutboxMessage, utcnow
from storage.outbox import OutboxRepository


def state_of(message: OutboxMessage) -> str:
    if message.delivered_at is not None:
        return "delivered"
    if message.failed_at is not None:
        return "failed"
    return "retrying" if message.attempts and message.last_error else "pending"


async def outbox_rows(repo: OutboxRepository, *, failed: bool = False, limit: int = 50) -> list[OutboxMessage]:
    """The dead letters (`failed`), or the latest messages in any state."""
    return await (repo.failed(limit) if failed else repo.recent(limit))


def age(since: dt.datetime, now: dt.datetime) -> str:
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def format_outbox(rows: Sequence[OutboxMessage], *, failed: bool = False, now: dt.datetime | None = None) -> str:
    """A table, one message a line: id, state, age, workspace, channel, tries, error, text."""
    now = now or utcnow()
    if not rows:
        return "no failed messages" if failed else "the outbox is empty"
    lines = [f"{'id':>6}  {'state':<9} {'age':>5}  {'team':<12} {'channel':<14} {'tries':>5}  {'error':<30} text"]
    for m in rows:
        since = (m.failed_at if failed and m.failed_at else m.created_at)
        text = " ".join(str(m.payload.get("text") or "").split())
        lines.append(f"{m.id:>6}  {state_of(m):<9} {age(since, now):>5}  {(m.team_id or '-')[:12]:<12} "
                     f"{m.channel[:14]:<14} {m.attempts:>5}  {(m.last_error or '-')[:30]:<30} {text[:60]}")
    return "\n".join(lines)


@dataclass(frozen=True)
class RetryResult:
    queued: list[int]  # put back to be delivered now
    unknown: list[int]  # no such message
    delivered: list[int]  # already delivered: nothing to do


async def retry_outbox(repo: OutboxRepository, ids: Sequence[int] = (), *, all_failed: bool = False) -> RetryResult:
    """Put messages back to be delivered now (a running server sends them within seconds)."""
    unknown: list[int] = []
    delivered: list[int] = []
    for message_id in ids:
        message = await repo.get(message_id)
        if message is None:
            unknown.append(message_id)
        elif message.delivered_at is not None:
            delivered.append(message_id)
    wanted = [i for i in ids if i not in unknown and i not in delivered]
    queued = await repo.retry_now(wanted, all_failed=all_failed) if (wanted or all_failed) else []
    return RetryResult(queued=queued, unknown=unknown, delivered=delivered)


def format_retry(result: RetryResult) -> str:
    lines = [f"message {i} queued to be sent now" for i in result.queued]
    lines += [f"message {i} was delivered already" for i in result.delivered]
    lines += [f"no outbox message {i}" for i in result.unknown]
    return "\n".join(lines) or "no failed messages to retry"
