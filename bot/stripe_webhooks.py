"""Stripe webhooks: verified with stripe-python, each event acted on once.

Payment events drive the same state machine as everything else; a saved card (Checkout
in setup mode) is announced to the person who added it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.billing import BillingError
from bot.processor import PaymentProcessor
from bot.stripe_gateway import StripeUnavailable, intent_result
from storage.models import ProcessedWebhookEvent

log = logging.getLogger(__name__)

INTENT_EVENTS = {"payment_intent.succeeded", "payment_intent.processing", "payment_intent.payment_failed",
                 "payment_intent.requires_action", "payment_intent.canceled"}
TOLERANCE_SECONDS = 300


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    status: int
    body: dict[str, Any]


CardSaved = Callable[[dict[str, str]], Awaitable[None]]


class StripeWebhooks:
    def __init__(self, secret: str | None, processor: PaymentProcessor,
                 sessions: async_sessionmaker[AsyncSession], on_card_saved: CardSaved) -> None:
        self._secret = secret
        self._processor = processor
        self._sessions = sessions
        self._on_card_saved = on_card_saved

    async def handle(self, payload: bytes, signature: str | None) -> WebhookAnswer:
        if not self._secret:
            return WebhookAnswer(400, {"error": "webhooks are not configured (STRIPE_WEBHOOK_SECRET)"})
        if not signature:
            return WebhookAnswer(400, {"error": "missing Stripe-Signature"})
        try:
            event = stripe.Webhook.construct_event(payload.decode("utf-8"), signature, self._secret,
                                                   tolerance=TOLERANCE_SECONDS).to_dict()
        except (ValueError, UnicodeDecodeError, stripe.SignatureVerificationError):
            return WebhookAnswer(400, {"error": "invalid signature or payload"})

        event_id, event_type = str(event.get("id")), str(event.get("type"))
        if await self._seen(event_id):
            return WebhookAnswer(200, {"received": True, "duplicate": True})
        try:
            await self._dispatch(event_type, (event.get("data") or {}).get("object") or {})
        except (BillingError, StripeUnavailable) as exc:
            # Not remembered: Stripe retries the event later, and acting on it is idempotent.
            log.warning("webhook %s (%s) not processed yet: %s", event_id, event_type, exc)
            return WebhookAnswer(503, {"error": "try again later"})
        await self._remember(event_id, event_type)
        return WebhookAnswer(200, {"received": True})

    async def _dispatch(self, event_type: str, obj: dict[str, Any]) -> None:
        if event_type in INTENT_EVENTS and obj.get("id"):
            await self._processor.on_intent(str(obj["id"]), intent_result(obj))
        elif event_type == "checkout.session.completed" and obj.get("mode") == "setup":
            metadata = {k: str(v) for k, v in (obj.get("metadata") or {}).items()}
            if metadata.get("slack_user_id"):
                await self._on_card_saved({**metadata, "checkout_session_id": str(obj.get("id"))})
        else:
            log.info("webhook %s ignored", event_type)

    async def _seen(self, event_id: str) -> bool:
        async with self._sessions() as session:
            return await session.get(ProcessedWebhookEvent, event_id) is not None

    async def _remember(self, event_id: str, event_type: str) -> None:
        try:
            async with self._sessions.begin() as session:
                session.add(ProcessedWebhookEvent(id=event_id, type=event_type))
        except IntegrityError:
            pass  # the same event, handled concurrently: both runs were no-ops but one
