"""A card saved on Stripe's page (bot/cards.py): its owner is told once, and their open
payment form is redrawn; someone else's or a closed form is left alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.cards import SavedCards


@dataclass
class Session:
    id: str
    user_id: str
    view_id: str | None


class Sessions:
    def __init__(self, *sessions: Session) -> None:
        self._by_id = {s.id: s for s in sessions}

    async def get(self, session_id: str) -> Session | None:
        return self._by_id.get(session_id)


class Payments:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    async def reload_form(self, *, team_id: str, user_id: str, session_id: str) -> str:
        if self.error:
            raise self.error
        return f"form of {session_id} for {user_id}"


class Notices:
    def __init__(self, closed: bool = False) -> None:
        self.told: list[tuple[str, str, str]] = []
        self.shown: list[tuple[str, str, Any]] = []
        self.closed = closed

    async def card_saved(self, team_id: str, user_id: str, *, dedupe_key: str) -> None:
        self.told.append((team_id, user_id, dedupe_key))

    async def show_form(self, team_id: str, pay_session_id: str, form: Any) -> None:
        # The Slack side finds the modal of the pay session (its slack_form_links row).
        if self.closed:
            raise RuntimeError("view_not_found")
        self.shown.append((team_id, pay_session_id, form))


METADATA = {"slack_team_id": "T1", "slack_user_id": "U1", "checkout_session_id": "cs_1", "pay_session_id": "ps_1"}


async def test_the_owner_is_told_and_their_open_form_redrawn() -> None:
    notices = Notices()
    await SavedCards(Sessions(Session("ps_1", "U1", "V1")), Payments(), notices).saved(METADATA)  # type: ignore[arg-type]
    assert notices.told == [("T1", "U1", "card_saved:cs_1")]
    assert notices.shown == [("T1", "ps_1", "form of ps_1 for U1")]


async def test_someone_elses_form_is_not_touched() -> None:
    notices = Notices()
    await SavedCards(Sessions(Session("ps_1", "U2", "V1")), Payments(), notices).saved(METADATA)  # type: ignore[arg-type]
    assert notices.told == [("T1", "U1", "card_saved:cs_1")] and notices.shown == []


async def test_a_closed_or_expired_form_leaves_the_dm_alone() -> None:
    for payments, notices in ((Payments(), Notices(closed=True)), (Payments(LookupError()), Notices())):
        await SavedCards(Sessions(Session("ps_1", "U1", "V1")), payments, notices).saved(METADATA)  # type: ignore[arg-type]
        assert notices.told == [("T1", "U1", "card_saved:cs_1")] and notices.shown == []
