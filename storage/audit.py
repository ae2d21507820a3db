"""Append-only audit trail: inserts and reads, never updates or deletes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import AuditEvent, Payment


class AuditLog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record(self, action: str, outcome: str, *, team_id: str | None = None, user_id: str | None = None,
                     invoice_id: str | None = None, billing_profile_id: str | None = None,
                     payment_id: str | None = None, **detail: Any) -> None:
        async with self._sessions.begin() as session:
            session.add(self.event(action, outcome, team_id=team_id, user_id=user_id, invoice_id=invoice_id,
                                   billing_profile_id=billing_profile_id, payment_id=payment_id, **detail))

    @staticmethod
    def event(action: str, outcome: str, *, team_id: str | None = None, user_id: str | None = None,
              invoice_id: str | None = None, billing_profile_id: str | None = None,
              payment_id: str | None = None, **detail: Any) -> AuditEvent:
        """The row `record` writes, for a caller that writes it with its own change."""
        return AuditEvent(action=action, outcome=outcome, team_id=team_id, user_id=user_id, invoice_id=invoice_id,
                          billing_profile_id=billing_profile_id, payment_id=payment_id, detail=detail)

    async def events(self, *, user_id: str | None = None, invoice: str | None = None,
                     limit: int = 100) -> list[AuditEvent]:
        """Newest first; `invoice` is an invoice id or number."""
        async with self._sessions() as session:
            query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
            if user_id:
                query = query.where(AuditEvent.user_id == user_id)
            if invoice:
                # An invoice id, or its number (INV-...): audit rows keep the id, payments both.
                numbered = select(Payment.invoice_id).where(Payment.invoice_number == invoice)
                query = query.where((AuditEvent.invoice_id == invoice) | AuditEvent.invoice_id.in_(numbered))
            return list(await session.scalars(query))
