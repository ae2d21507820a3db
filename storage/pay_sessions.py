"""Server-side state of open Pay Now modals."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import PaySession, SlackFormLink, utcnow

# A modal may stay open for days (Slack keeps it until it is closed); its form, and the
# links in it, keep working that long. Everything is checked again at submission.
SESSION_TTL = dt.timedelta(days=7)
SWEEP_EVERY = dt.timedelta(minutes=1)


class PaySessionRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], now: Callable[[], dt.datetime] = utcnow) -> None:
        self._sessions = sessions
        self._now = now
        self._last_sweep: dt.datetime | None = None

    def new(self, *, team_id: str, user_id: str, invoice_id: str, locale: str | None = None) -> PaySession:
        """A session not written yet: the form is loaded first and the session written once,
        with what the form offered (`save`)."""
        return PaySession(id=secrets.token_urlsafe(24), created_at=self._now(), team_id=team_id, user_id=user_id,
                          invoice_id=invoice_id, offered_methods={}, locale=locale)

    async def save(self, pay_session: PaySession, *, also: Sequence[object] = ()) -> None:
        """Write a new session and `also` (its audit row) in one transaction."""
        now = self._now()
        async with self._sessions.begin() as session:
            session.add(pay_session)
            session.add_all(also)
            if self._last_sweep is None or now - self._last_sweep >= SWEEP_EVERY:
                # Old sessions (and where their modals were) are of no use to anyone; sweep them
                # on the way, at most once a minute per process (not at every Pay Now).
                self._last_sweep = now
                old = select(PaySession.id).where(PaySession.created_at < now - SESSION_TTL)
                await session.execute(delete(SlackFormLink).where(SlackFormLink.pay_session_id.in_(old)))
                await session.execute(delete(PaySession).where(PaySession.created_at < now - SESSION_TTL))

    async def get(self, session_id: str) -> PaySession | None:
        async with self._sessions() as session:
            return self.current(await session.get(PaySession, session_id))

    def current(self, pay_session: PaySession | None) -> PaySession | None:
        """The session if it has not expired (however it was read)."""
        if pay_session is None or pay_session.created_at < self._now() - SESSION_TTL:
            return None
        return pay_session

    async def update(self, session_id: str, **fields: object) -> None:
        async with self._sessions.begin() as session:
            await session.execute(update(PaySession).where(PaySession.id == session_id).values(**fields))
