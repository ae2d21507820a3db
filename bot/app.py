"""Explicit wiring: settings and clients in, a Bolt app and an ASGI app out.

Tests build the same app with local servers' URLs; nothing is created at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler, AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from blocks.home import home_view
from blocks.invoices import invoice_list_message
from blocks.pay_modal import pay_form_view
from bot.billing import BillingClient
from bot.cache import TTLCache
from bot.clock import Clock, clock_from
from bot.home import HomeRefresher, HomeService
from bot.identity import IdentityService
from bot.links import LinkSigner
from bot.invoices import InvoiceService, ListQuery
from bot.outbox_worker import OutboxWorker
from bot.payments import PayLinks, PaymentService
from bot.processor import PaymentProcessor
from bot.reconcile import Reconciler
from bot.reminders import ReminderService
from bot.scheduled_payments import ScheduledPayments
from bot.scheduler import Scheduler
from bot.settings import Settings
from bot.routing import NotificationRouter, RoutingService
from bot.slack_adapters import ListRefresher, SlackChannels, SlackDirectory, SlackPaymentEvents
from bot.stripe_gateway import StripeGateway, make_client
from bot.stripe_webhooks import StripeWebhooks
from storage.audit import AuditLog
from storage.db import create_engine, session_factory
from storage.jobs import JobRepository
from storage.models import OutboxMessage, Payment, utcnow
from storage.outbox import OutboxRepository
from storage.pay_sessions import PaySessionRepository
from storage.payments import PaymentRepository
from storage.routes import RouteRepository

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    slack: AsyncWebClient
    billing: BillingClient
    stripe: StripeGateway
    payments_repo: PaymentRepository
    outbox_repo: OutboxRepository
    audit: AuditLog
    identity: IdentityService
    invoices: InvoiceService
    payments: PaymentService
    processor: PaymentProcessor
    outbox: OutboxWorker
    reconciler: Reconciler
    router: NotificationRouter
    webhooks: StripeWebhooks
    pay_sessions: PaySessionRepository
    routing: RoutingService
    clock: Clock
    links: PayLinks
    installations: AsyncSQLAlchemyInstallationStore | None = None
    home: HomeService | None = None
    home_refresher: HomeRefresher | None = None
    scheduler: Scheduler | None = None
    reminders: ReminderService | None = None  # built with the scheduler (bot/jobs.py)
    scheduled_payments: ScheduledPayments | None = None  # likewise
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _work: set[asyncio.Task[Any]] = field(default_factory=set)
    _clients: TTLCache[str, AsyncWebClient] = field(default_factory=lambda: TTLCache(60.0))

    async def client_for(self, team_id: str) -> AsyncWebClient:
        """The Web API client of a workspace: its own bot token when installed by OAuth."""
        if self.installations is None:
            return self.slack

        async def load() -> AsyncWebClient:
            bot = await self.installations.async_find_bot(enterprise_id=None, team_id=team_id)
            if bot is None or not bot.bot_token:
                raise LookupError(f"invoicebot is not installed in workspace {team_id}")
            return slack_client(self.settings, bot.bot_token)

        return await self._clients.get_or_load(team_id, load)

    def track(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run payment work that must finish even if the server is asked to stop."""
        task = asyncio.ensure_future(work)
        self._work.add(task)
        task.add_done_callback(self._work.discard)
        return task

    def today(self) -> dt.date:
        return self.clock.now().date()

    async def render_list(self, team_id: str, user_id: str, query_text: str, page: int = 0) -> dict[str, Any]:
        viewer = await self.identity.viewer(team_id, user_id)
        listing = await self.invoices.list_payable(viewer, ListQuery.parse(query_text))
        return invoice_list_message(listing, page=page, today=self.today()).as_dict()

    async def publish_home(self, team_id: str, user_id: str) -> None:
        """Build and publish one person's Home tab, fresh."""
        if self.home is None:
            return
        view = home_view(await self.home.view(team_id, user_id))
        await (await self.client_for(team_id)).views_publish(user_id=user_id, view=view)

    def refresh_home(self, team_id: str, user_id: str) -> None:
        """Something the person's Home tab shows changed: publish it again, debounced."""
        if self.home_refresher is not None:
            self.home_refresher.request(team_id, user_id)

    async def card_saved(self, metadata: dict[str, str]) -> None:
        """A card was saved on Stripe's page: tell its owner, and refresh their open modal."""
        team_id, user_id = metadata.get("slack_team_id", ""), metadata["slack_user_id"]
        await self.payments_repo.add_outbox([OutboxMessage(
            dedupe_key=f"card_saved:{metadata['checkout_session_id']}", team_id=team_id, channel=user_id,
            payload={"text": ":credit_card: Your new card is saved with Stripe. Press *Refresh* in the payment "
                             "window (or *Pay Now* again) to pay with it."},
            attempts=0, next_attempt_at=utcnow())])
        self.outbox.wake()
        pay_session = await self.pay_sessions.get(metadata.get("pay_session_id", ""))
        if pay_session is None or pay_session.user_id != user_id or not pay_session.view_id:
            return
        try:
            form = await self.payments.reload_form(team_id=team_id, user_id=user_id, session_id=pay_session.id)
            await (await self.client_for(team_id)).views_update(
                view_id=pay_session.view_id, view=pay_form_view(form, today=self.today()))
        except Exception as exc:  # noqa: BLE001 - the modal may be closed; the DM says it all
            log.info("modal not refreshed after a saved card: %s", type(exc).__name__)

    def start_background(self, *, reconcile_every: float | None = None) -> None:
        every = reconcile_every if reconcile_every is not None else self.settings.reconcile_interval_seconds
        self._tasks = [
            asyncio.create_task(self.outbox.run_forever(), name="outbox"),
            asyncio.create_task(self.reconciler.run_forever(every), name="reconcile"),
        ]
        if self.scheduler is not None:
            self._tasks.append(asyncio.create_task(self.scheduler.run_forever(), name="scheduler"))

    async def aclose(self, *, drain_seconds: float = 25.0) -> None:
        # SIGTERM: finish the payments in flight before letting go of the database.
        if self._work:
            log.info("waiting for %d payments in flight", len(self._work))
            await asyncio.wait(set(self._work), timeout=drain_seconds)
        if self.home_refresher is not None:
            await self.home_refresher.aclose()
        # The jobs under way finish (their effects queued in the outbox) before the outbox stops.
        scheduler = [task for task in self._tasks if task.get_name() == "scheduler"]
        if self.scheduler is not None and scheduler:
            self.scheduler.stop()
            await asyncio.wait(scheduler, timeout=drain_seconds)
        # The outbox finishes its pass (and sends what those payments queued) before it stops.
        self.outbox.stop()
        outbox = [task for task in self._tasks if task.get_name() == "outbox"]
        if outbox:
            await asyncio.wait(outbox, timeout=15)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.billing.aclose()
        await self.engine.dispose()


# At most one Home tab publish per person this often: a burst of payments coalesces,
# well within views.publish's rate limit (Tier 4, 100+ per minute).
HOME_REFRESH_SECONDS = 3.0

BOT_SCOPES = ("commands", "chat:write", "chat:write.public", "users:read", "users:read.email", "channels:read",
              "groups:read")


def slack_client(settings: Settings, token: str | None) -> AsyncWebClient:
    # Retries of 429 (after Retry-After) and connection errors happen only in calls made
    # after Slack has had its answer: every listener acks before calling the Web API.
    return AsyncWebClient(token=token, base_url=settings.slack_api_base, timeout=10, retry_handlers=[
        AsyncConnectionErrorRetryHandler(max_retry_count=1),
        AsyncRateLimitErrorRetryHandler(max_retry_count=1),
    ])


def build_services(settings: Settings) -> Services:
    clock = clock_from(settings.clock_offset_file)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    slack = slack_client(settings, None if settings.multi_workspace else token)
    billing = BillingClient(str(settings.billing_api_url), settings.billing_api_token.get_secret_value())
    stripe = StripeGateway(make_client(settings.stripe_api_key.get_secret_value(), str(settings.stripe_api_base)))
    payments_repo = PaymentRepository(sessions)
    outbox_repo = OutboxRepository(sessions)
    audit = AuditLog(sessions)
    routes = RouteRepository(sessions)
    router = NotificationRouter(settings.notify_channel, routes)

    services: Services
    async def client_for(team_id: str) -> AsyncWebClient:
        return await services.client_for(team_id)

    async def render(team_id: str, user_id: str, query: str) -> dict[str, Any]:
        return await services.render_list(team_id, user_id, query)

    identity = IdentityService(SlackDirectory(client_for), billing, default_locale=settings.default_locale)
    invoices = InvoiceService(billing, clock=clock, payments=payments_repo)
    outbox = OutboxWorker(outbox_repo, client_for, fallback_channel=settings.notify_channel,
                          pace_seconds=settings.slack_channel_pace_seconds)
    links = PayLinks(str(settings.public_url) if settings.public_url else None,
                     LinkSigner(settings.slack_signing_secret.get_secret_value(), clock))
    def payment_changed(payment: Payment) -> None:
        services.refresh_home(payment.team_id, payment.user_id)

    events = SlackPaymentEvents(router, client_for, on_settled=ListRefresher(render), on_queued=outbox.wake,
                                authenticate_url=links.authenticate, notice_locale=settings.default_locale,
                                on_changed=payment_changed)
    processor = PaymentProcessor(payments_repo, stripe, billing, events)
    pay_sessions = PaySessionRepository(sessions, clock.now)
    payments = PaymentService(identity, invoices, billing, stripe, payments_repo, pay_sessions, audit, links,
                              processor, clock=clock)

    async def card_saved(metadata: dict[str, str]) -> None:
        await services.card_saved(metadata)

    secret = settings.stripe_webhook_secret.get_secret_value() if settings.stripe_webhook_secret else None
    services = Services(
        settings=settings, engine=engine, sessions=sessions, slack=slack, billing=billing, stripe=stripe,
        payments_repo=payments_repo, outbox_repo=outbox_repo, audit=audit, identity=identity, invoices=invoices,
        payments=payments, processor=processor, outbox=outbox, reconciler=Reconciler(payments_repo, processor),
        router=router, webhooks=StripeWebhooks(secret, processor, sessions, card_saved), pay_sessions=pay_sessions,
        routing=RoutingService(routes, invoices, SlackChannels(client_for), audit, settings.notify_channel),
        clock=clock, links=links,
        installations=AsyncSQLAlchemyInstallationStore(settings.slack_client_id, engine)
        if settings.multi_workspace and settings.slack_client_id else None,
    )
    services.home = HomeService(identity, invoices, payments_repo, services.routing, services.today)
    services.home_refresher = HomeRefresher(services.publish_home, every=HOME_REFRESH_SECONDS)
    services.scheduler = build_scheduler(services)
    return services


def build_scheduler(services: Services) -> Scheduler:
    """The one scheduler, and the kinds of timed work it runs (bot/jobs.py registers them)."""
    from blocks.reminders import digest_message  # noqa: PLC0415 - blocks imports bot.reminders
    from blocks.scheduling import scheduled_words  # noqa: PLC0415
    from bot.jobs import Renderers, register_jobs  # noqa: PLC0415

    settings = services.settings
    scheduler = Scheduler(JobRepository(services.sessions), services.clock,
                          lease_seconds=settings.scheduler_lease_seconds,
                          poll_seconds=settings.scheduler_poll_seconds)
    register_jobs(scheduler, services, Renderers(digest=digest_message, scheduled_payment=scheduled_words))
    return scheduler


class _DropClientOverToken(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself (`token or os.environ[...]`)
    even when given a client: passing nothing but the client cannot silence its warning that
    the token is unused. Our client was built from that same setting, so the warning is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


logging.getLogger("slack_bolt.AsyncApp").addFilter(_DropClientOverToken())


def create_bolt_app(services: Services) -> AsyncApp:
    from handlers import actions, commands, events, home, views  # noqa: PLC0415 - listeners need the app

    settings = services.settings
    oauth_settings = None
    if services.installations is not None:
        public = str(settings.public_url).rstrip("/") if settings.public_url else None
        oauth_settings = AsyncOAuthSettings(
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret.get_secret_value() if settings.slack_client_secret else None,
            scopes=list(BOT_SCOPES),
            redirect_uri=f"{public}/slack/oauth_redirect" if public else None,
            authorization_url=str(settings.slack_oauth_authorize_url),
            installation_store=services.installations,
            state_store=AsyncSQLAlchemyOAuthStateStore(expiration_seconds=600, engine=services.engine),
        )
    app = AsyncApp(
        client=services.slack,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        oauth_settings=oauth_settings,
        installation_store=services.installations,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )
    if services.installations is not None:
        # app_uninstalled / tokens_revoked delete that workspace's installation and bot.
        app.enable_token_revocation_listeners()
    commands.register(app, services)
    actions.register(app, services)
    views.register(app, services)
    events.register(app, services)
    home.register(app, services)
    from handlers import scheduling  # noqa: PLC0415

    scheduling.register(app, services)
    from handlers import failures  # noqa: PLC0415

    failures.register(app)  # a listener that raises anyway: no 500, a line that says whose fault
    return app


@contextlib.asynccontextmanager
async def running(services: Services, *, background: bool = True) -> AsyncIterator[Services]:
    if background:
        services.start_background()
    try:
        yield services
    finally:
        await services.aclose()
