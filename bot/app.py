"""Explicit wiring: settings and clients in, a Bolt app and an ASGI app out.

Tests build the same app with local servers' URLs; nothing is created at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from blocks.invoices import invoice_list_message
from blocks.pay_modal import pay_form_view
from bot.billing import BillingClient
from bot.identity import IdentityService
from bot.invoices import InvoiceService, ListQuery
from bot.outbox_worker import OutboxWorker
from bot.payments import PaymentService
from bot.processor import PaymentProcessor
from bot.reconcile import Reconciler
from bot.settings import Settings
from bot.routing import NotificationRouter, RoutingService
from bot.slack_adapters import ListRefresher, SlackChannels, SlackDirectory, SlackPaymentEvents
from bot.stripe_gateway import StripeGateway, make_client
from bot.stripe_webhooks import StripeWebhooks
from storage.audit import AuditLog
from storage.db import create_engine, session_factory
from storage.models import OutboxMessage, utcnow
from storage.outbox import OutboxRepository
from storage.pay_sessions import PaySessionRepository
from storage.payments import PaymentRepository
from storage.routes import RouteRepository

log = logging.getLogger(__name__)


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
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def client_for(self, team_id: str) -> AsyncWebClient:
        return self.slack

    def today(self) -> dt.date:
        return self.invoices.today()

    async def render_list(self, team_id: str, user_id: str, query_text: str, page: int = 0) -> dict[str, Any]:
        viewer = await self.identity.viewer(team_id, user_id)
        listing = await self.invoices.list_payable(viewer, ListQuery.parse(query_text))
        return invoice_list_message(listing, page=page, today=self.today()).as_dict()

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

    def start_background(self, *, reconcile_every: float = 5.0) -> None:
        self._tasks = [
            asyncio.create_task(self.outbox.run_forever(), name="outbox"),
            asyncio.create_task(self.reconciler.run_forever(reconcile_every), name="reconcile"),
        ]

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.billing.aclose()
        await self.engine.dispose()


def build_services(settings: Settings) -> Services:
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    slack = AsyncWebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_base,
                           timeout=10)
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

    identity = IdentityService(SlackDirectory(client_for), billing)
    invoices = InvoiceService(billing)
    outbox = OutboxWorker(outbox_repo, client_for, fallback_channel=settings.notify_channel)
    events = SlackPaymentEvents(router, client_for, on_settled=ListRefresher(render), on_queued=outbox.wake)
    processor = PaymentProcessor(payments_repo, stripe, billing, events)
    return_url = f"{str(settings.public_url).rstrip('/')}/card-saved" if settings.public_url else None
    pay_sessions = PaySessionRepository(sessions)
    payments = PaymentService(identity, invoices, billing, stripe, payments_repo, pay_sessions, audit,
                              return_url=return_url)

    async def card_saved(metadata: dict[str, str]) -> None:
        await services.card_saved(metadata)

    secret = settings.stripe_webhook_secret.get_secret_value() if settings.stripe_webhook_secret else None
    services = Services(
        settings=settings, engine=engine, sessions=sessions, slack=slack, billing=billing, stripe=stripe,
        payments_repo=payments_repo, outbox_repo=outbox_repo, audit=audit, identity=identity, invoices=invoices,
        payments=payments, processor=processor, outbox=outbox, reconciler=Reconciler(payments_repo, processor),
        router=router, webhooks=StripeWebhooks(secret, processor, sessions, card_saved), pay_sessions=pay_sessions,
        routing=RoutingService(routes, invoices, SlackChannels(client_for), audit, settings.notify_channel),
    )
    return services


def create_bolt_app(services: Services) -> AsyncApp:
    from handlers import actions, commands, events, views  # noqa: PLC0415 - listeners need the app

    app = AsyncApp(
        client=services.slack,
        signing_secret=services.settings.slack_signing_secret.get_secret_value(),
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )
    commands.register(app, services)
    actions.register(app, services)
    views.register(app, services)
    events.register(app, services)
    return app


@contextlib.asynccontextmanager
async def running(services: Services, *, background: bool = True) -> AsyncIterator[Services]:
    if background:
        services.start_background()
    try:
        yield services
    finally:
        await services.aclose()
