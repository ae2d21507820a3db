"""Approval policies (per workspace and billing profile) and approval requests (one per
payment that waits for a yes). The payment's own status is the state; a request keeps the
rule it was made under."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import String, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import (
    ApprovalPolicy, ApprovalRequest, AuditEvent, OutboxMessage, Payment, PaymentStatus, utcnow,
)


class ApprovalRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # -- policies ----------------------------------------------------------------------
    async def policy(self, team_id: str, billing_profile_id: str) -> ApprovalPolicy | None:
        async with self._sessions() as session:
            return await session.get(ApprovalPolicy, (team_id, billing_profile_id))

    async def policies(self, team_id: str, profile_ids: Iterable[str]) -> dict[str, ApprovalPolicy]:
        async with self._sessions() as session:
            rows = await session.scalars(select(ApprovalPolicy).where(
                ApprovalPolicy.team_id == team_id, ApprovalPolicy.billing_profile_id.in_(list(profile_ids))))
            return {row.billing_profile_id: row for row in rows}

    async def save_policy(self, team_id: str, billing_profile_id: str, *, set_by: str,
                          threshold: tuple[int, str] | None | bool = False,
                          approvers: Sequence[str] | None = None,
                          outbox: Sequence[OutboxMessage] = (), audit: Sequence[AuditEvent] = ()) -> ApprovalPolicy:
        """Change the threshold (`(minor, currency)`, or None for off; False keeps it) and/or the
        approvers, with the announcement and the audit row in the same transaction."""
        async with self._sessions.begin() as session:
            row = await session.get(ApprovalPolicy, (team_id, billing_profile_id), with_for_update=True)
            if row is None:
                row = ApprovalPolicy(team_id=team_id, billing_profile_id=billing_profile_id, approvers=[],
                                     set_by=set_by, set_at=utcnow())
                session.add(row)
            if threshold is None:
                row.threshold_minor, row.currency = None, None
            elif threshold is not False:
                assert isinstance(threshold, tuple)
                row.threshold_minor, row.currency = threshold
            if approvers is not None:
                row.approvers = list(approvers)
            row.set_by, row.set_at = set_by, utcnow()
            session.add_all(outbox)
            session.add_all(audit)
        return row

    # -- requests ----------------------------------------------------------------------
    async def request(self, payment_id: str) -> ApprovalRequest | None:
        async with self._sessions() as session:
            return await session.get(ApprovalRequest, payment_id)

    async def decide(self, payment_id: str, *, decided_by: str | None, reason: str | None = None) -> None:
        """Who decided and why (written after the payment's guarded move won)."""
        async with self._sessions.begin() as session:
            await session.execute(update(ApprovalRequest).where(ApprovalRequest.payment_id == payment_id)
                                  .values(decided_by=decided_by, decided_at=utcnow(), reason=reason))

    async def due_to_expire(self, now: dt.datetime, limit: int = 100) -> list[tuple[ApprovalRequest, Payment]]:
        """Requests past their expiry whose payment still waits."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(ApprovalRequest, Payment).join(Payment, Payment.id == ApprovalRequest.payment_id)
                .where(ApprovalRequest.expires_at <= now,
                       Payment.status == PaymentStatus.AWAITING_APPROVAL.value)
                .order_by(ApprovalRequest.expires_at).limit(limit))
            return [(request, payment) for request, payment in rows.tuples()]

    async def waiting(self, team_id: str, *, now: dt.datetime, approver: str | None = None,
                      requester: str | None = None, profile_ids: Iterable[str] | None = None,
                      not_prefixed: str | None = None,
                      limit: int) -> tuple[list[tuple[ApprovalRequest, Payment]], int]:
        """Requests still waiting for a decision (not past their expiry) in a workspace: those
        naming `approver`, or made by `requester`, of `profile_ids`, whose payment id does not
        start with `not_prefixed`; the soonest to expire
        first, at most `limit`, and how many there are. Two bounded queries (the Home tab)."""
        where = [ApprovalRequest.team_id == team_id, ApprovalRequest.expires_at > now,
                 Payment.status == PaymentStatus.AWAITING_APPROVAL.value]
        if approver is not None:
            # `approvers` is a JSON list of Slack ids ([A-Z0-9]): its text holds "<id>" in quotes,
            # on SQLite and PostgreSQL alike.
            needle = approver.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append(cast(ApprovalRequest.approvers, String).like(f'%"{needle}"%', escape="\\"))
            where.append(ApprovalRequest.requester_id != approver)
        if requester is not None:
            where.append(ApprovalRequest.requester_id == requester)
        if profile_ids is not None:
            where.append(ApprovalRequest.billing_profile_id.in_(list(profile_ids)))
        if not_prefixed is not None:  # e.g. leave out scheduled payments' requests
            where.append(~ApprovalRequest.payment_id.startswith(not_prefixed, autoescape=True))
        joined = select(ApprovalRequest, Payment).join(Payment, Payment.id == ApprovalRequest.payment_id)
        async with self._sessions() as session:
            rows = await session.execute(joined.where(*where).order_by(ApprovalRequest.expires_at,
                                                                       ApprovalRequest.payment_id).limit(limit))
            pairs = [(request, payment) for request, payment in rows]
            total = int(await session.scalar(
                select(func.count()).select_from(ApprovalRequest)
                .join(Payment, Payment.id == ApprovalRequest.payment_id).where(*where)) or 0)
        return pairs, total
