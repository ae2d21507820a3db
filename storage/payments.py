"""Payments: inserts that enforce one in-flight payment per invoice, and guarded
(compare-and-set) state transitions, never read-then-write."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import IN_FLIGHT, AuditEvent, OutboxMessage, Payment, PaymentStatus, PaySession, utcnow
from storage.slack_links import link_for_new_payment, payment_id_by_submission


class DuplicateSubmission(Exception):
    """The same modal state was submitted before; `payment` is the first one."""

    def __init__(self, payment: Payment) -> None:
        super().__init__(payment.id)
        self.payment = payment


class PaymentInFlight(Exception):
    """Another payment for this invoice has not finished yet."""

    def __init__(self, payment: Payment | None) -> None:
        super().__init__(payment.id if payment else "unknown")
        self.payment = payment


class PaymentRepository:
    """`now` is the app's one clock (`bot.clock.Clock.now`, handed in by the app factory):
    a row's times (created, moved, touched) and the "due a look" queries read it, never the
    database's now nor the system's, so they agree with the processor's retry times."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], now: Callable[[], dt.datetime] = utcnow) -> None:
        self._sessions = sessions
        self._now = now

    async def create(self, payment: Payment, *, submission_key: str | None = None, view_id: str | None = None,
                     pay_session_id: str | None = None, also: Sequence[Any] = ()) -> Payment:
        """Write a new payment and, in the same transaction, its Slack link (whose unique
        `submission_key` refuses a second payment for the same submission) and `also`: rows
        written with it (its approval request)."""
        now = self._now()
        payment.created_at = payment.created_at or now
        payment.updated_at = payment.updated_at or now
        async with self._sessions.begin() as session:
            session.add(payment)
            session.add_all(also)
            try:
                await session.flush()
                if submission_key is not None:
                    session.add(await link_for_new_payment(session, payment.id, submission_key=submission_key,
                                                           view_id=view_id, pay_session_id=pay_session_id))
                    await session.flush()
            except IntegrityError:
                await session.rollback()
                raise await self._conflict_for(payment, submission_key) from None
        return payment

    async def _conflict_for(self, payment: Payment, submission_key: str | None) -> Exception:
        async with self._sessions() as session:
            if submission_key is not None:
                first = await session.scalar(
                    select(Payment).where(Payment.id.in_(payment_id_by_submission(submission_key))))
                if first is not None:
                    return DuplicateSubmission(first)
            other = await session.scalar(
                select(Payment).where(Payment.invoice_id == payment.invoice_id, Payment.status.in_(IN_FLIGHT))
            )
            return PaymentInFlight(other)

    async def get(self, payment_id: str) -> Payment | None:
        async with self._sessions() as session:
            return await session.get(Payment, payment_id)

    async def by_submission(self, submission_key: str) -> Payment | None:
        async with self._sessions() as session:
            return await session.scalar(select(Payment).where(Payment.id.in_(payment_id_by_submission(submission_key))))

    async def submission_look(self, submission_key: str, pay_session_id: str) -> tuple[Payment | None, PaySession | None]:
        """An earlier copy's payment and the form's session, in one session (one connection
        checkout and transaction: a submission reads both before Slack's answer)."""
        async with self._sessions() as session:
            payment = await session.scalar(
                select(Payment).where(Payment.id.in_(payment_id_by_submission(submission_key))))
            pay_session = await session.get(PaySession, pay_session_id) if pay_session_id else None
        return payment, pay_session

    async def by_intent(self, intent_id: str) -> Payment | None:
        async with self._sessions() as session:
            return await session.scalar(select(Payment).where(Payment.stripe_payment_intent_id == intent_id))

    async def transition(
        self,
        payment_id: str,
        from_states: Iterable[PaymentStatus],
        to_state: PaymentStatus,
        *,
        outbox: Sequence[OutboxMessage] = (),
        audit: Sequence[AuditEvent] = (),
        **fields: Any,
    ) -> Payment | None:
        """Move the payment to `to_state` only if it is still in one of `from_states`.

        Returns the updated payment, or None when another worker moved it first. Outbox
        messages and audit events are written in the same transaction, so a state change,
        the notification it calls for and its audit row are never separated.
        """
        try:
            return await self._transition(payment_id, from_states, to_state, outbox=outbox, audit=audit, **fields)
        except IntegrityError:
            if to_state not in IN_FLIGHT:
                raise
            # Moving into an in-flight state while another payment of the invoice is in flight
            # (a scheduled payment's day): the partial unique index refuses it.
            raise PaymentInFlight(None) from None

    async def _transition(self, payment_id: str, from_states: Iterable[PaymentStatus], to_state: PaymentStatus, *,
                          outbox: Sequence[OutboxMessage], audit: Sequence[AuditEvent], **fields: Any) -> Payment | None:
        # One statement both moves the row and reads it back (UPDATE ... RETURNING: SQLite
        # 3.35+, PostgreSQL): no second session to learn what was written.
        async with self._sessions.begin() as session:
            moved = await session.scalar(
                update(Payment)
                .where(Payment.id == payment_id, Payment.status.in_([s.value for s in from_states]))
                .values(status=to_state.value, updated_at=self._now(), **fields)
                .returning(Payment)
                .execution_options(synchronize_session=False)
            )
            if moved is None:
                return None
            session.add_all(outbox)
            session.add_all(audit)
        return moved

    async def touch(self, payment_id: str, **fields: Any) -> None:
        """Update bookkeeping fields that carry no state (attempt counters, retry times)."""
        fields.setdefault("updated_at", self._now())  # not the column's own (system) onupdate
        async with self._sessions.begin() as session:
            await session.execute(update(Payment).where(Payment.id == payment_id).values(**fields))

    async def add_outbox(self, messages: Sequence[OutboxMessage]) -> None:
        """Queue messages on their own; a message already queued (same dedupe key) is skipped."""
        for message in messages:
            try:
                async with self._sessions.begin() as session:
                    session.add(message)
            except IntegrityError:
                continue

    async def in_flight_for_invoice(self, invoice_id: str) -> Payment | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(Payment).where(Payment.invoice_id == invoice_id, Payment.status.in_(IN_FLIGHT))
            )

    async def unfinished(self, *, older_than: dt.timedelta, statuses: Sequence[PaymentStatus] = (
            PaymentStatus.CREATED, PaymentStatus.CONFIRMING, PaymentStatus.CHARGED, PaymentStatus.DEBITING,
            PaymentStatus.APPROVED),
            force: bool = False, limit: int = 100) -> list[Payment]:
        """Payments left in an intermediate state and due a look: their retry time has come,
        or (never retried) they have not moved for `older_than`. `force` ignores both."""
        now = self._now()
        query = select(Payment).where(Payment.status.in_([s.value for s in statuses]))
        if not force:
            query = query.where(
                ((Payment.next_attempt_at.is_not(None)) & (Payment.next_attempt_at <= now))
                | ((Payment.next_attempt_at.is_(None)) & (Payment.updated_at < now - older_than))
            )
        async with self._sessions() as session:
            return list(await session.scalars(query.order_by(Payment.updated_at).limit(limit)))

    async def latest_for_invoice(self, invoice_id: str, statuses: Sequence[PaymentStatus]) -> Payment | None:
        """The newest of an invoice's payments in one of `statuses` (e.g. its last recorded one)."""
        async with self._sessions() as session:
            return await session.scalar(
                select(Payment).where(Payment.invoice_id == invoice_id, Payment.status.in_([s.value for s in statuses]))
                .order_by(Payment.updated_at.desc(), Payment.created_at.desc()).limit(1))

    async def of_person(self, team_id: str, user_id: str, *, limit: int) -> tuple[list[Payment], int]:
        """A person's newest payments (at most `limit`) and how many they have in all: two
        bounded queries whatever the history (the Home tab)."""
        mine = (Payment.team_id == team_id) & (Payment.user_id == user_id)
        async with self._sessions() as session:
            rows = list(await session.scalars(
                select(Payment).where(mine).order_by(Payment.created_at.desc(), Payment.id).limit(limit)))
            total = int(await session.scalar(select(func.count()).select_from(Payment).where(mine)) or 0)
        return rows, total

    async def recent(self, *, status: str | None = None, invoice: str | None = None, limit: int = 50) -> list[Payment]:
        async with self._sessions() as session:
            query = select(Payment).order_by(Payment.created_at.desc()).limit(limit)
            if status:
                query = query.where(Payment.status == status)
            if invoice:
                query = query.where((Payment.invoice_id == invoice) | (Payment.invoice_number == invoice))
            return list(await session.scalars(query))
