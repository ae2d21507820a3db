"""The composition root: settings in; the services, the Bolt app and what the server and the
CLI call out.

Everything is built here, in dependency order, by plain constructor calls: each object gets
the few objects it uses, and no one reaches back for a later one. Nothing is created at
import time. This module is on the top layer (it may import bot/, blocks/, storage/ and the
listeners); bot/server.py and bot/cli.py receive `build_app` from handlers/entry.py, so
bot/ never imports handlers/ or blocks/.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

from bot.approvals import EXPIRY as APPROVAL_EXPIRY
from bot.admission import LoopGate
from bot.approvals import ApprovalService
from bot.billing import BillingClient
from bot.cards import SavedCards
from bot.clock import clock_from, today
from bot.home import HomeRefresher, HomeService
from bot.identity import IdentityService
from bot.invoices import InvoiceService
from bot.links import LinkSigner
from bot.outbox_worker import OutboxWorker
from bot.payments import PayLinks, PaymentService
from bot.processor import PaymentProcessor
from bot.reconcile import Reconciler
from bot.routing import NotificationRouter, RoutingService
from bot.settings import Settings
from bot.slack_api import BOT_SCOPES, slack_client
from bot.stripe_gateway import StripeGateway
from bot.stripe_webhooks import StripeWebhooks
from bot.submission import SubmissionService
from blocks.reminders import digest_message
from blocks.scheduling import scheduled_words
from bot.identity import babel_locale
from bot.reminders import DIGEST, ReminderService
from bot.scheduled_payments import KIND as SCHEDULED_PAYMENT
from bot.scheduled_payments import ScheduledPayments
from bot.scheduler import Scheduler
from handlers import actions, approvals as approval_listeners, commands, events, failures, home, scheduling, views
from handlers.context import Background, install_pooled_respond, install_viewer
from handlers.errors import explain
from handlers.scheduling import PayLater, TimedCommands
from handlers.slack_io import (
    HomePublisher, ListRefresher, ListRenderer, SlackCardNotices, SlackChannels, SlackDirectory, SlackPaymentEvents,
    SlackSender, WorkspaceClients,
)
from handlers.slack_approvals import ApprovalAwareEvents, RequesterWindow, SlackApprovalNotices
from storage.approvals import ApprovalRepository
from storage.audit import AuditLog
from storage.slack_links import SlackLinkRepository
from storage.db import create_engine, session_factory
from storage.jobs import JobRepository
from storage.models import OutboxMessage
from storage.outbox import OutboxRepository
from storage.pay_sessions import PaySessionRepository
from storage.payments import PaymentRepository
from storage.reminders import ReminderRepository
from storage.routes import RouteRepository

log = logging.getLogger(__name__)

# Connections for what requests read before their ack (per worker process).
ACK_POOL_SIZE = 4
# Payment drives one worker runs at once (more wait in bot/admission.py's gate): within what
# the database pool serves without a connection wait near its 30 s timeout, and well above
# what a slow billing API's in-flight payments need at month-end rates.
PAYMENTS_AT_ONCE = 64

# At most one Home tab publish per person this often: a burst of payments coalesces,
# well within views.publish's rate limit (Tier 4, 100+ per minute).
HOME_REFRESH_SECONDS = 3.0


@dataclass
class Invoicebot:
    """The built app: what bot/server.py routes to and the CLI's commands call, and the
    lifecycle of its background work (outbox, reconciler, payments in flight)."""

    settings: Settings
    engine: AsyncEngine
    ack_engine: AsyncEngine
    bolt: AsyncApp
    billing: BillingClient
    stripe: StripeGateway
    audit: AuditLog
    payments_repo: PaymentRepository
    payments: PaymentService
    processor: PaymentProcessor
    webhooks: StripeWebhooks
    outbox: OutboxWorker
    reconciler: Reconciler
    background: Background
    home_refresher: HomeRefresher
    scheduler: Scheduler | None = None
    approvals: ApprovalService | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _slack: AsyncSlackRequestHandler | None = None

    async def slack(self, request: Request) -> Response:
        """Slack's one Request URL (and the OAuth pages), through Bolt's Starlette adapter."""
        if self._slack is None:
            self._slack = AsyncSlackRequestHandler(self.bolt)
        return await self._slack.handle(request)

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
        in_flight = await self.background.drain(drain_seconds)
        if in_flight:
            log.info("waited for %d payments in flight", in_flight)
        await self.home_refresher.aclose()
        # The jobs under way finish (their messages queued in the outbox) before the outbox stops.
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
        await self.stripe.aclose()
        if self.bolt.client.session is not None:
            await self.bolt.client.session.close()
        await self.engine.dispose()
        await self.ack_engine.dispose()


class _DropClientOverToken(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself (`token or os.environ[...]`)
    even when given a client: passing nothing but the client cannot silence its warning that
    the token is unused. Our client was built from that same setting, so the warning is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def build_app(settings: Settings) -> Invoicebot:
    """Every object of the running app, in dependency order."""
    # Clock, database, repositories.
    clock = clock_from(settings.clock_offset_file)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    # What a request reads before its ack (the workspace's installation, a submission's form
    # and earlier copy) has connections of its own: in a burst, payments in flight hold the
    # main pool's, and an ack must not wait behind them for one.
    ack_engine = create_engine(settings.database_url, pool_size=ACK_POOL_SIZE, max_overflow=ACK_POOL_SIZE)
    ack_sessions = session_factory(ack_engine)
    payments_repo = PaymentRepository(sessions, clock.now)
    outbox_repo = OutboxRepository(sessions)
    pay_sessions = PaySessionRepository(sessions, clock.now)
    routes = RouteRepository(sessions)
    audit = AuditLog(sessions)

    # Clients of the outside services.
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    # One pooled HTTP session for every Web API call of this process (closed in aclose).
    slack = slack_client(settings, None if settings.multi_workspace else token, session=aiohttp.ClientSession())
    installations = (AsyncSQLAlchemyInstallationStore(settings.slack_client_id, ack_engine)
                     if settings.multi_workspace and settings.slack_client_id else None)
    client_for = WorkspaceClients(settings, slack, installations)
    billing = BillingClient(str(settings.billing_api_url), settings.billing_api_token.get_secret_value())
    stripe = StripeGateway.connect(settings.stripe_api_key.get_secret_value(), str(settings.stripe_api_base))

    # Domain services that only read.
    identity = IdentityService(SlackDirectory(client_for), billing, default_locale=settings.default_locale)
    invoices = InvoiceService(billing, clock=clock, payments=payments_repo)
    router = NotificationRouter(settings.notify_channel, routes)
    routing = RoutingService(routes, invoices, SlackChannels(client_for), audit, settings.notify_channel)
    lists = ListRenderer(identity, invoices, clock)
    home_service = HomeService(identity, invoices, payments_repo, routing, lambda: today(clock),
                               explain=explain)
    slack_links = SlackLinkRepository(sessions)
    publish_home = HomePublisher(home_service, client_for, slack_links)
    # After a change: only the tabs that exist (publish_home.refresh), at most every few seconds.
    home_refresher = HomeRefresher(publish_home.refresh, every=HOME_REFRESH_SECONDS)

    # The payment: links, the outbox, what people are told, the state machine, its entry points.
    links = PayLinks(str(settings.public_url) if settings.public_url else None,
                     LinkSigner(settings.slack_signing_secret.get_secret_value(), clock))
    outbox = OutboxWorker(outbox_repo, SlackSender(client_for), fallback_channel=settings.notify_channel,
                          pace_seconds=settings.slack_channel_pace_seconds)
    payment_events = SlackPaymentEvents(
        router, client_for, on_settled=ListRefresher(lists, slack_links, slack.session), on_queued=outbox.wake,
        authenticate_url=links.authenticate, notice_locale=settings.default_locale,
        on_changed=lambda payment: home_refresher.request(payment.team_id, payment.user_id), links=slack_links)
    approval_repo = ApprovalRepository(sessions)
    # An approved payment's outcome also updates every approver's message and names them.
    processor = PaymentProcessor(payments_repo, stripe, billing, ApprovalAwareEvents(payment_events, approval_repo),
                                 clock=clock)
    # Timed work: the one scheduler (its kinds of jobs are registered below, each with its service).
    scheduler = Scheduler(JobRepository(sessions), clock, lease_seconds=settings.scheduler_lease_seconds,
                          poll_seconds=settings.scheduler_poll_seconds)
    approvals = ApprovalService(approval_repo, payments_repo, identity, invoices, billing, stripe, processor,
                                audit, SlackApprovalNotices(router), clock,
                                ttl=dt.timedelta(hours=settings.approval_ttl_hours), scheduler=scheduler)
    scheduler.register(APPROVAL_EXPIRY, approvals.expire_job)
    approvals.on_queued.append(outbox.wake)
    approvals.on_ended.append(RequesterWindow(slack_links, client_for, approval_repo).ended)
    # A request made or decided (the requester's and the approvers' Home tabs show it), or a
    # rule changed (the changer's).
    approvals.on_changed.append(
        lambda team_id, people: [home_refresher.request(team_id, person) for person in people])
    payments = PaymentService(identity, invoices, billing, stripe, payments_repo, pay_sessions, audit, links,
                              processor, clock=clock, approvals=approvals,
                              before_ack=(PaymentRepository(ack_sessions, clock.now),
                                          PaySessionRepository(ack_sessions, clock.now)))
    submissions = SubmissionService(payments, processor, payments_repo, links,
                                    deadline_seconds=settings.submission_deadline_seconds, clock=clock,
                                    approvals=approvals)
    cards = SavedCards(pay_sessions, payments,
                       SlackCardNotices(payments_repo, client_for, clock, outbox.wake, slack_links))
    secret = settings.stripe_webhook_secret.get_secret_value() if settings.stripe_webhook_secret else None
    webhooks = StripeWebhooks(secret, processor, sessions, cards.saved)
    reconciler = Reconciler(payments_repo, processor, clock=clock)
    background = Background(LoopGate(ceiling=PAYMENTS_AT_ONCE))  # payment drives start when the loop has room (bot/admission.py)

    # Scheduled payments and digests: the scheduler's other kinds of jobs.
    async def queue(messages: list[OutboxMessage]) -> None:
        await payments_repo.add_outbox(messages)
        outbox.wake()

    reminder_settings = ReminderRepository(sessions)  # also each profile's time zone
    scheduled = ScheduledPayments(scheduler, payments, identity, invoices, billing, stripe, payments_repo, processor,
                                  audit, clock, queue, scheduled_words, time_zone=settings.default_timezone,
                                  profile_zone=reminder_settings.time_zone, approvals=approvals)
    scheduler.register(SCHEDULED_PAYMENT, scheduled.run, on_failed=scheduled.failed)
    invoices.scheduled_for = scheduled.scheduled_for_team
    reminders = ReminderService(reminder_settings, scheduler, invoices, billing, router, audit, clock,
                                digest_message, queue, default_timezone=settings.default_timezone,
                                locale=babel_locale(settings.default_locale),
                                scheduled_invoices=scheduled.scheduled_invoices)
    scheduler.register(DIGEST, reminders.run_digest)
    # The Home tab's sections of the features built since the payment (bot/home.py).
    home_service.approvals, home_service.jobs, home_service.reminders = approvals, scheduler.jobs, reminders
    # A setting changed, from the Home tab or a slash subcommand: the changer's tab shows it.
    routing.on_changed.append(home_refresher.request)
    reminders.on_changed.append(home_refresher.request)

    # The Bolt app: each listener module gets only the services it uses.
    bolt = _bolt_app(settings, slack, installations, engine)
    install_viewer(bolt, identity)
    install_pooled_respond(bolt)
    commands.register(bolt, lists=lists, routing=routing, audit=audit,
                      timed=TimedCommands(reminders, scheduled), approvals=approvals)
    approval_listeners.register(bolt, approvals=approvals, background=background)
    actions.register(bolt, payments=payments, lists=lists, audit=audit, clock=clock, slack_links=slack_links)
    views.register(bolt, submissions=submissions, background=background, clock=clock,
                   pay_later=PayLater(payments, scheduled, home_refresher.request))
    scheduling.register(bolt, payments=payments, scheduled=scheduled, audit=audit, clock=clock,
                        slack_links=slack_links, refresh_home=home_refresher.request)
    events.register(bolt, publish_home=publish_home)
    home.register(bolt, lists=lists, invoices=invoices, router=router, routing=routing, audit=audit,
                  refresh_home=home_refresher.request, approvals=approvals, reminders=reminders,
                  payments=payments_repo)
    failures.register(bolt)  # the one error handler: no 500, words where Slack can show them

    return Invoicebot(settings=settings, engine=engine, ack_engine=ack_engine, bolt=bolt, billing=billing, stripe=stripe, audit=audit,
                      payments_repo=payments_repo, payments=payments, processor=processor, webhooks=webhooks,
                      outbox=outbox, reconciler=reconciler, background=background, home_refresher=home_refresher,
                      scheduler=scheduler, approvals=approvals)


def _bolt_app(settings: Settings, slack: AsyncWebClient, installations: AsyncSQLAlchemyInstallationStore | None,
              engine: AsyncEngine) -> AsyncApp:
    oauth_settings = None
    if installations is not None:
        public = str(settings.public_url).rstrip("/") if settings.public_url else None
        oauth_settings = AsyncOAuthSettings(
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret.get_secret_value() if settings.slack_client_secret else None,
            scopes=list(BOT_SCOPES),
            redirect_uri=f"{public}/slack/oauth_redirect" if public else None,
            authorization_url=str(settings.slack_oauth_authorize_url),
            installation_store=installations,
            state_store=AsyncSQLAlchemyOAuthStateStore(expiration_seconds=600, engine=engine),
        )
    bolt_log = logging.getLogger("slack_bolt.AsyncApp")
    if not any(isinstance(each, _DropClientOverToken) for each in bolt_log.filters):
        bolt_log.addFilter(_DropClientOverToken())
    app = AsyncApp(
        client=slack,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        oauth_settings=oauth_settings,
        installation_store=installations,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )
    if installations is not None:
        # app_uninstalled / tokens_revoked delete that workspace's installation and bot.
        app.enable_token_revocation_listeners()
    return app


@contextlib.asynccontextmanager
async def running(built: Invoicebot, *, background: bool = True) -> AsyncIterator[Invoicebot]:
    if background:
        built.start_background()
    try:
        yield built
    finally:
        await built.aclose()
