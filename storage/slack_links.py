"""Where pay sessions and payments show in Slack (the modal's view, the `/invoices`
message to redraw, the submission's repeat key, who has a Home tab): Slack UI state in
tables of its own, so the domain rows carry none of it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import SlackFormLink, SlackHomeTab, SlackPaymentLink, utcnow


def submission_key(view_id: str, view_hash: str) -> str:
    """The one repeat key of a modal submission: Slack gives the same view id and hash to
    every copy of the same modal state (a double click, a retry), and a new hash whenever
    the modal is redrawn, so a second, deliberate submission gets a key of its own."""
    return f"{view_id}:{view_hash}"


class SlackLinkRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def remember_form(self, pay_session_id: str, *, view_id: str | None, list_response_url: str | None,
                            list_query: str | None) -> None:
        async with self._sessions.begin() as session:
            await session.merge(SlackFormLink(pay_session_id=pay_session_id, view_id=view_id,
                                              list_response_url=list_response_url, list_query=list_query))

    async def form(self, pay_session_id: str) -> SlackFormLink | None:
        async with self._sessions() as session:
            return await session.get(SlackFormLink, pay_session_id)

    async def payment(self, payment_id: str) -> SlackPaymentLink | None:
        async with self._sessions() as session:
            return await session.get(SlackPaymentLink, payment_id)


    async def home_opened(self, team_id: str, user_id: str, *, at: dt.datetime | None = None) -> None:
        try:
            async with self._sessions.begin() as session:
                await session.merge(SlackHomeTab(team_id=team_id, user_id=user_id, opened_at=at or utcnow()))
        except IntegrityError:
            pass  # two opens at once (two workers, a retry): the other one wrote the row

    async def has_home(self, team_id: str, user_id: str) -> bool:
        async with self._sessions() as session:
            return await session.get(SlackHomeTab, (team_id, user_id)) is not None


async def link_for_new_payment(session: AsyncSession, payment_id: str, *, submission_key: str,
                               view_id: str | None, pay_session_id: str | None) -> SlackPaymentLink:
    """The link of a payment being written, inside its transaction: the modal it was
    submitted from and the `/invoices` message its form was opened from."""
    form = await session.get(SlackFormLink, pay_session_id) if pay_session_id else None
    return SlackPaymentLink(payment_id=payment_id, submission_key=submission_key,
                            view_id=view_id or (form.view_id if form else None),
                            list_response_url=form.list_response_url if form else None,
                            list_query=form.list_query if form else None)


def payment_id_by_submission(submission_key_: str):  # noqa: ANN201 - a select
    return select(SlackPaymentLink.payment_id).where(SlackPaymentLink.submission_key == submission_key_)
