"""The Slack side of the domain's ports: where services meet Slack's Web API and Block Kit.

bot/ calls these through Protocols (bot.identity.Directory, bot.routing's channel info,
bot.processor's payment events, bot.outbox_worker.MessageSender, bot.cards.CardNotices)
and never imports this module; handlers/app.py wires them in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.web.async_client import AsyncWebClient

from blocks.home import home_view
from blocks.invoices import PAGE_SIZE, Message, invoice_list_message
from blocks.notifications import DIGEST_SIZE, card_saved_message, digest, payer_message, payment_notice
from blocks.pay_modal import pay_form_view, payment_view
from bot.cache import TTLCache
from bot.clock import Clock, today
from bot.home import HomeService
from bot.identity import DEFAULT_LOCALE, DirectoryEntry, IdentityService, Viewer, babel_locale
from bot.invoices import InvoiceListing, InvoiceService, ListQuery, Totals
from bot.outbox_worker import Delivered, Refused, RetryLater, Sent, Undeliverable
from bot.payments import PayForm
from bot.retry import retry_after
from bot.routing import ChannelInfo, NotificationRouter
from bot.settings import Settings
from bot.slack_api import slack_client
from storage.models import OutboxMessage, Payment, PaymentStatus, utcnow
from bot.summaries import payment_summary
from storage.payments import PaymentRepository
from storage.slack_links import SlackLinkRepository

ClientFor = Callable[[str], Awaitable[AsyncWebClient]]


class WorkspaceClients:
    """The Web API client of a workspace: the one bot token's, or (many workspaces, OAuth)
    that workspace's own bot token's, cached for a minute."""

    def __init__(self, settings: Settings, default: AsyncWebClient,
                 installations: AsyncSQLAlchemyInstallationStore | None) -> None:
        self._settings = settings
        self._default = default
        self._installations = installations
        self._clients: TTLCache[str, AsyncWebClient] = TTLCache(60.0)

    async def __call__(self, team_id: str) -> AsyncWebClient:
        installations = self._installations
        if installations is None:
            return self._default

        async def load() -> AsyncWebClient:
            bot = await installations.async_find_bot(enterprise_id=None, team_id=team_id)
            if bot is None or not bot.bot_token:
                raise LookupError(f"invoicebot is not installed in workspace {team_id}")
            return slack_client(self._settings, bot.bot_token, session=self._default.session)

        return await self._clients.get_or_load(team_id, load)


# What `last_error` says when the message's workspace has no installation (any more).
NOT_INSTALLED = "not_installed"

# Slack's own errors that may go away by waiting (docs.slack.dev, chat.postMessage and the
# common errors): rate limits, its own outages, a workspace in the middle of a migration.
# Any HTTP 429 or 5xx counts too. Every other `ok: false` error is about the request, the
# token or the channel, and waiting will not change it.
TRANSIENT = frozenset({"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
                       "request_timeout", "team_added_to_org", "org_login_required"})
# The permanent ones we know of, for the docs and the tests (anything not transient is permanent).
PERMANENT = frozenset({"channel_not_found", "not_in_channel", "is_archived", "channel_is_archived",
                       "account_inactive", "invalid_auth", "token_revoked", "not_authed", "missing_scope",
                       "invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "invalid_arguments",
                       "too_many_attachments", "restricted_action", "restricted_action_read_only_channel",
                       "no_permission", "ekm_access_denied", NOT_INSTALLED})
# The message itself is the problem: in a digest, it may be just one of its notices (or
# the digest's length), so each is then sent on its own.
MESSAGE_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "invalid_arguments",
                            "too_many_attachments", "invalid_attachments"})
# The channel itself is the problem: another channel would do.
UNREACHABLE = frozenset({"channel_not_found", "not_in_channel", "is_archived", "channel_is_archived",
                         "restricted_action_read_only_channel"})


def is_transient(error: str, status: int | None = None) -> bool:
    return error in TRANSIENT or (status is not None and (status == 429 or status >= 500))


class SlackSender:
    """The outbox worker's sender (bot/outbox_worker.py: MessageSender): one channel's due
    notices as one digest by chat.postMessage, and Slack's answer sorted into the worker's
    three outcomes."""

    batch_size = DIGEST_SIZE

    def __init__(self, client_for: ClientFor) -> None:
        self._client_for = client_for

    async def send(self, team_id: str, channel: str, payloads: list[dict[str, Any]]) -> Sent:
        try:
            client = await self._client_for(team_id)
        except LookupError:
            # Uninstalled (or never installed): no token will come by waiting.
            return Undeliverable(NOT_INSTALLED)
        payload = digest(payloads)
        where: tuple[str, str] | None = None
        try:
            if payload.get("update_at"):
                # An earlier message updated in place (the worker found its channel and ts).
                at_channel, ts = payload["update_at"]
                await client.chat_update(channel=at_channel, ts=ts, text=payload.get("text", ""),
                                         blocks=payload.get("blocks"))
            else:
                response = await client.chat_postMessage(channel=channel, text=payload.get("text", ""),
                                                         blocks=payload.get("blocks"), unfurl_links=False,
                                                         unfurl_media=False)
                if payload.get("alone") and response.get("channel") and response.get("ts"):
                    where = (str(response["channel"]), str(response["ts"]))
        except SlackApiError as exc:
            status = exc.response.status_code
            error = str(exc.response.get("error") or status)
            if status == 429:
                return RetryLater(error, after=_retry_after(exc.response.headers))
            if is_transient(error, status):
                return RetryLater(error)
            if error in MESSAGE_ERRORS:
                return Undeliverable(error, Refused.MESSAGE)
            if error in UNREACHABLE:
                return Undeliverable(error, Refused.CHANNEL)
            return Undeliverable(error)
        except (OSError, asyncio.TimeoutError, aiohttp.ClientError) as exc:
            return RetryLater(type(exc).__name__)
        return Delivered(where)

    def rerouted(self, payload: dict[str, Any], channel: str, error: str) -> dict[str, Any]:
        note = (f"_(Meant for <#{channel}>, where I can't post ({error}): invite me there, "
                "or change the route with `/invoices notify`.)_")
        return {**payload, "text": f"{payload.get('text', '')}\n{note}",
                "blocks": [*(payload.get("blocks") or []),
                           {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}]}

    def is_person(self, channel: str) -> bool:
        # User ids (U…, W…) and DMs (D…) are people; C…/G… and #names are channels.
        return channel.startswith(("U", "W", "D"))


def _retry_after(headers: Any) -> float:
    # At least a second, whatever the header says (or when it says nothing).
    return max(1.0, retry_after(headers.get("Retry-After") or headers.get("retry-after"), cap=3600.0) or 1.0)


class SlackCardNotices:
    """A card saved on Stripe's page, told in Slack: a DM through the outbox, and the open
    payment modal redrawn with the new card."""

    def __init__(self, payments_repo: PaymentRepository, client_for: ClientFor, clock: Clock,
                 on_queued: Callable[[], None], links: SlackLinkRepository) -> None:
        self._repo = payments_repo
        self._links = links  # where each pay session's modal is
        self._client_for = client_for
        self._clock = clock
        self._on_queued = on_queued

    async def card_saved(self, team_id: str, user_id: str, *, dedupe_key: str) -> None:
        await self._repo.add_outbox([OutboxMessage(
            dedupe_key=dedupe_key, team_id=team_id, channel=user_id, payload=card_saved_message(),
            attempts=0, next_attempt_at=utcnow())])
        self._on_queued()

    async def show_form(self, team_id: str, pay_session_id: str, form: PayForm) -> None:
        link = await self._links.form(pay_session_id)
        if link is None or not link.view_id:
            return
        await (await self._client_for(team_id)).views_update(
            view_id=link.view_id, view=pay_form_view(form, today=today(self._clock)))

log = logging.getLogger(__name__)


class SlackDirectory:
    """Email and locale from `users.info` (scopes users:read, users:read.email)."""

    def __init__(self, client_for: ClientFor) -> None:
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

    def __init__(self, client_for: ClientFor) -> None:
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

    def __init__(self, router: NotificationRouter, client_for: ClientFor,
                 on_settled: Callable[[Payment], Awaitable[None]] | None = None,
                 on_queued: Callable[[], None] | None = None,
                 authenticate_url: Callable[[str], str | None] | None = None,
                 notice_locale: str = DEFAULT_LOCALE,
                 on_changed: Callable[[Payment], None] | None = None,
                 links: SlackLinkRepository | None = None) -> None:
        self._router = router
        self._links = links  # where the payment's modal is
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
            payload={**payment_notice(payment_summary(payment), event, locale=self._notice_locale),
                     "billing_profile_id": payment.billing_profile_id},
            attempts=0, next_attempt_at=utcnow(),
        )]

    async def direct(self, payment: Payment) -> list[OutboxMessage]:
        # One DM per payment and outcome: the dedupe key makes a second one impossible.
        return [OutboxMessage(
            dedupe_key=f"{payment.id}:dm:{payment.status}", team_id=payment.team_id, channel=payment.user_id,
            payload=payer_message(payment_summary(payment)), attempts=0, next_attempt_at=utcnow(),
        )]

    async def changed(self, payment: Payment, *, update_modal: bool) -> None:
        if self._on_queued:
            self._on_queued()  # a state change may have queued a notice: deliver it now
        if self._on_changed:
            self._on_changed(payment)
        client = await self._client_for(payment.team_id)
        link = await self._links.payment(payment.id) if update_modal and self._links else None
        if link is not None and link.view_id:
            try:
                await client.views_update(view_id=link.view_id, view=payment_view(
                    payment_summary(payment), authenticate_url=self._authenticate_url(payment.id)))
            except SlackApiError as exc:
                # The modal was closed: the channel message and /invoices tell the story.
                log.info("modal for payment %s not updated: %s", payment.id, exc.response.get("error"))
        if self._on_settled and payment.status in (PaymentStatus.RECORDED, PaymentStatus.PROCESSING):
            await self._on_settled(payment)


class ListRefresher:
    """After a payment, redraw the `/invoices` message the payer clicked from, so it no
    longer offers a stale balance (through that message's response_url)."""

    def __init__(self, render: Callable[[str, str, str], Awaitable[dict]], links: SlackLinkRepository,
                 session: aiohttp.ClientSession | None = None) -> None:
        # render(team_id, user_id, query) -> message payload for that person, fresh
        self._render = render
        self._links = links
        self._session = session  # the Web API clients' pooled one

    async def __call__(self, payment: Payment) -> None:
        link = await self._links.payment(payment.id)
        if link is None or not link.list_response_url:
            return
        from slack_sdk.webhook.async_client import AsyncWebhookClient  # noqa: PLC0415

        message = await self._render(payment.team_id, payment.user_id, link.list_query or "")
        response = await AsyncWebhookClient(link.list_response_url, timeout=10, session=self._session).send_dict(
            {**message, "replace_original": True, "response_type": "ephemeral"})
        if response.status_code != 200:
            log.info("list message for payment %s not refreshed: %s", payment.id, response.status_code)


@dataclass(frozen=True, slots=True)
class FirstPage:
    """The first page of `/invoices`, from one bounded read (InvoiceService.first_page)."""

    message: Message
    listing: InvoiceListing

    @property
    def count(self) -> int | None:
        """How many invoices the list has; None while more than the page are being counted."""
        return len(self.listing.rows) if self.listing.complete else None


class ListRenderer:
    """The `/invoices` list message for one person, fresh (the command, paging, the Home
    tab's "See all" and the redraw after a payment all use it)."""

    def __init__(self, identity: IdentityService, invoices: InvoiceService, clock: Clock) -> None:
        self._identity = identity
        self._invoices = invoices
        self._clock = clock

    async def message(self, viewer: Viewer, query: ListQuery, page: int = 0) -> tuple[Message, int]:
        """The message and the number of invoices it lists."""
        listing = await self._invoices.list_payable(viewer, query)
        return invoice_list_message(listing, page=page, today=today(self._clock)), len(listing.rows)

    async def first_page(self, viewer: Viewer, query: ListQuery) -> FirstPage:
        """Page one, as cheap with 10,000 invoices as with 10; when the list is longer than
        a page it says its totals are being counted (then `message` gives the whole)."""
        listing = await self._invoices.first_page(viewer, query, PAGE_SIZE)
        return FirstPage(invoice_list_message(listing, page=0, today=today(self._clock)), listing)

    def uncounted(self, first: FirstPage) -> Message:
        """The first page again, saying its totals could not be counted (rather than
        "counting…" for ever)."""
        listing = dataclasses.replace(first.listing, totals_state=Totals.UNAVAILABLE)
        return invoice_list_message(listing, page=0, today=today(self._clock))

    async def __call__(self, team_id: str, user_id: str, query_text: str) -> dict[str, Any]:
        viewer = await self._identity.viewer(team_id, user_id)
        message, _count = await self.message(viewer, ListQuery.parse(query_text))
        return message.as_dict()


class HomePublisher:
    """Build and publish one person's Home tab, fresh (views.publish): when they open it,
    and again after a change (`refresh`) only if they have a tab, i.e. opened it once. A
    tab never opened is built when it is; publishing it before is work nobody sees (at
    month-end most payers never look at Home, and each publish reads billing and the database)."""

    def __init__(self, home: HomeService, client_for: ClientFor, tabs: SlackLinkRepository) -> None:
        self._home = home
        self._client_for = client_for
        self._tabs = tabs

    async def __call__(self, team_id: str, user_id: str) -> None:
        try:
            await self._tabs.home_opened(team_id, user_id)
        except Exception as exc:  # noqa: BLE001 - the tab is still shown; only later refreshes depend on it
            log.warning("Home tab of %s not remembered: %s", user_id, type(exc).__name__)
        await self._publish(team_id, user_id)

    async def refresh(self, team_id: str, user_id: str) -> None:
        if await self._tabs.has_home(team_id, user_id):
            await self._publish(team_id, user_id)

    async def _publish(self, team_id: str, user_id: str) -> None:
        view = home_view(await self._home.view(team_id, user_id))
        await (await self._client_for(team_id)).views_publish(user_id=user_id, view=view)
