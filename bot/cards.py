"""A card saved on Stripe's page: tell its owner, and refresh their open payment modal.

Stripe's webhook (bot/stripe_webhooks.py) calls `SavedCards.saved` with the checkout
session's metadata; how the person is told is a port (`CardNotices`), Slack's in
handlers/slack_io.py.
"""

from __future__ import annotations

import logging
from typing import Protocol

from bot.payments import PayForm, PaymentService
from storage.pay_sessions import PaySessionRepository

log = logging.getLogger(__name__)


class CardNotices(Protocol):
    async def card_saved(self, team_id: str, user_id: str, *, dedupe_key: str) -> None:
        """Tell the person (once per dedupe key) that their new card is saved."""

    async def show_form(self, team_id: str, pay_session_id: str, form: PayForm) -> None:
        """Redraw the person's open payment form of this pay session, where it is shown
        (raises when it is closed)."""


class SavedCards:
    def __init__(self, pay_sessions: PaySessionRepository, payments: PaymentService, notices: CardNotices) -> None:
        self._pay_sessions = pay_sessions
        self._payments = payments
        self._notices = notices

    async def saved(self, metadata: dict[str, str]) -> None:
        team_id, user_id = metadata.get("slack_team_id", ""), metadata["slack_user_id"]
        await self._notices.card_saved(team_id, user_id, dedupe_key=f"card_saved:{metadata['checkout_session_id']}")
        pay_session = await self._pay_sessions.get(metadata.get("pay_session_id", ""))
        if pay_session is None or pay_session.user_id != user_id:
            return
        try:
            form = await self._payments.reload_form(team_id=team_id, user_id=user_id, session_id=pay_session.id)
            await self._notices.show_form(team_id, pay_session.id, form)
        except Exception as exc:  # noqa: BLE001 - the modal may be closed; the DM says it all
            log.info("modal not refreshed after a saved card: %s", type(exc).__name__)
