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
from bot.billing import BillingClient
from bot.identity import IdentityService
from bot.invoices import InvoiceService, ListQuery
from bot.outbox_worker import OutboxWorker
from bot.payments import PaymentService
from bot.processor import PaymentProcessor
from bot.reconcile import Reconciler
from bot.settings import Settings
from bot.slack_adapters import ListRefresher, NotificationRouter, SlackDirectory, SlackPaymentEvents
from bot.stripe_gateway import StripeGateway, make_client
from storage.audit import AuditLog
from storage.db import create_engine, session_factory
from storage.outbox import OutboxRepository
from storage.pay_sessions import PaySessionRepository
from storage.payments import PaymentRepository

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
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def client_for(self, team_id: str) -> AsyncWebClient:
        return self.slack

    def today(self) -> dt.date:
        return self.invoices.today()

    async def render_list(self, team_id: str, user_id: str, query_text: str, page: int = 0) -> dict[str, Any]:
        viewer = await self.identity.viewer(team_id, user_id)
        listing = await self.invoices.list_payable(viewer, ListQuery.parse(query_text))
        return invoice_list_message(listing, page=page, today=self.today()).as_dict()

    def start_background(self, *, reconcile_every: float = 30.0) -> None:
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
    router = NotificationRouter(settings.notify_channel)

    services: Services
    async def client_for(team_id: str) -> AsyncWebClient:
        return await services.client_for(team_id)

    async def render(team_id: str, user_id: str, query: str) -> dict[str, Any]:
        return await services.render_list(team_id, user_id, query)

    identity = IdentityService(SlackDirectory(client_for), billing)
    invoices = InvoiceService(billing)
    outbox = OutboxWorker(outbox_repo, client_for)
    events = SlackPaymentEvents(router, client_for, on_settled=ListRefresher(render), on_queued=outbox.wake)
    processor = PaymentProcessor(payments_repo, stripe, billing, events)
    return_url = f"{str(settings.public_url).rstrip('/')}/card-saved" if settings.public_url else None
    payments = PaymentService(identity, invoices, billing, stripe, payments_repo, PaySessionRepository(sessions),
                              audit, return_url=return_url)
    services = Services(
        settings=settings, engine=engine, sessions=sessions, slack=slack, billing=billing, stripe=stripe,
        payments_repo=payments_repo, outbox_repo=outbox_repo, audit=audit, identity=identity, invoices=invoices,
        payments=payments, processor=processor, outbox=outbox, reconciler=Reconciler(payments_repo, processor),
        router=router,
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
