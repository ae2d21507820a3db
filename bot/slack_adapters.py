"""The few places where domain services meet Slack's Web API."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from blocks.notifications import payer_message, payment_notice
from blocks.pay_modal import payment_view
from bot.identity import DEFAULT_LOCALE, DirectoryEntry, babel_locale
from bot.routing import ChannelInfo, NotificationRouter
from storage.models import OutboxMessage, Payment, PaymentStatus

log = logging.getLogger(__name__)


class SlackDirectory:
    """Email and locale from `users.info` (scopes users:read, users:read.email)."""

    def __init__(self, client_for: Callable[[str], Awaitable[AsyncWebClient]]) -> None:
        self._client_for = client_for

    async def person(self, team_id: str, user_id: str) -> DirectoryEntry:
        client = await self._client_for(team_id)
        try:
            response = await client.users_info(user=user_id, include_locale=True)
        except SlackApiError as exc:
            if exc.response.get("error") in ("user_not_found", "user_not_visible"):
                return DirectoryEntry(None, None)
            raise
        user = response.get("user") or {}
        if not isinstance(user, dict) or user.get("deleted") or user.get("is_bot"):
            return DirectoryEntry(None, None)
        profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
        email = profile.get("email") if isinstance(profile.get("email"), str) else None
        locale = user.get("locale") if isinstance(user.get("locale"), str) else None
        return DirectoryEntry(email or None, locale)


class SlackChannels:
    """What the bot may do in a channel (conversations.info)."""

    def __init__(self, client_for: Callable[[str], Awaitable[AsyncWebClient]]) -> None:
        self._client_for = client_for

    async def channel(self, team_id: str, channel_id: str) -> ChannelInfo:
        client = await self._client_for(team_id)
        try:
            info = (await client.conversations_info(channel=channel_id)).get("channel") or {}
        except SlackApiError as exc:
            if exc.response.get("error") in ("channel_not_found", "not_in_channel"):
                return ChannelInfo(exists=False)
            raise
        return ChannelInfo(exists=True, is_private=bool(info.get("is_private")),
                           bot_is_member=bool(info.get("is_member")))


class SlackPaymentEvents:
    """Payment events as Slack messages (through the outbox) and live modal updates."""

    def __init__(self, router: NotificationRouter, client_for: Callable[[str], Awaitable[AsyncWebClient]],
                 on_settled: Callable[[Payment], Awaitable[None]] | None = None,
                 on_queued: Callable[[], None] | None = None,
                 authenticate_url: Callable[[str], str | None] | None = None,
                 notice_locale: str = DEFAULT_LOCALE,
                 on_changed: Callable[[Payment], None] | None = None) -> None:
        self._router = router
        self._on_changed = on_changed  # e.g. the payer's Home tab is published again
        self._client_for = client_for
        self._on_settled = on_settled
        self._on_queued = on_queued
        self._authenticate_url = authenticate_url or (lambda _payment_id: None)
        self._notice_locale = babel_locale(notice_locale)

    async def notices(self, payment: Payment, event: str) -> list[OutboxMessage]:
        channel = await self._router.channel_for(payment.team_id, payment.billing_profile_id)
        return [OutboxMessage(
            dedupe_key=f"{payment.id}:{event}", team_id=payment.team_id, channel=channel,
            payload={**payment_notice(payment, event, locale=self._notice_locale),
                     "billing_profile_id": payment.billing_profile_id},
            attempts=0, next_attempt_at=_now(),
        )]

    async def direct(self, payment: Payment) -> list[OutboxMessage]:
        # One DM per payment and outcome: the dedupe key makes a second one impossible.
        return [OutboxMessage(
            dedupe_key=f"{payment.id}:dm:{payment.status}", team_id=payment.team_id, channel=payment.user_id,
            payload=payer_message(payment), attempts=0, next_attempt_at=_now(),
        )]

    async def changed(self, payment: Payment, *, update_modal: bool) -> None:
        if self._on_queued:
            self._on_queued()  # a state change may have queued a notice: deliver it now
        if self._on_changed:
            self._on_changed(payment)
        client = await self._client_for(payment.team_id)
        if update_modal and payment.view_id:
            try:
                await client.views_update(view_id=payment.view_id, view=payment_view(
                    payment, authenticate_url=self._authenticate_url(payment.id)))
            except SlackApiError as exc:
                # The modal was closed: the channel message and /invoices tell the story.
                log.info("modal for payment %s not updated: %s", payment.id, exc.response.get("error"))
        if self._on_settled and payment.status in (PaymentStatus.RECORDED, PaymentStatus.PROCESSING):
            await self._on_settled(payment)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ListRefresher:
    """After a payment, redraw the `/invoices` message the payer clicked from, so it no
    longer offers a stale balance (through that message's response_url)."""

    def __init__(self, render: Callable[[str, str, str], Awaitable[dict]]) -> None:
        # render(team_id, user_id, query) -> message payload for that person, fresh
        self._render = render

    async def __call__(self, payment: Payment) -> None:
        if not payment.list_response_url:
            return
        from slack_sdk.webhook.async_client import AsyncWebhookClient  # noqa: PLC0415

        message = await self._render(payment.team_id, payment.user_id, payment.list_query or "")
        response = await AsyncWebhookClient(payment.list_response_url, timeout=10).send_dict(
            {**message, "replace_original": True, "response_type": "ephemeral"})
        if response.status_code != 200:
            log.info("list message for payment %s not refreshed: %s", payment.id, response.status_code)
