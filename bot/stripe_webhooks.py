"""Stripe webhooks: verified with stripe-python, validated by shape, each event acted on once.

Payment events drive the same state machine as everything else; a saved card (Checkout
in setup mode) is announced to the person who added it.

Order: the signature (stripe-python's `WebhookSignature.verify_header`, which only refuses
timestamps too far in the past) and our own check that the timestamp is not too far in the
future either; then the body, parsed into a typed event (`StripeEvent`): anything signed
but not shaped like a Stripe event (a list, a number, no `id`, a `data.object` or
`metadata` of the wrong type) is a 400 and is never stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import stripe
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError
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

_Text = Annotated[str, StringConstraints(max_length=5000)]


class _Shape(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")


class _LastPaymentError(_Shape):
    message: _Text | None = None


class EventObject(_Shape):
    """`data.object`: the fields any handler reads, typed; the rest kept as sent."""

    id: Annotated[str, StringConstraints(max_length=255)] | None = None
    object: Annotated[str, StringConstraints(max_length=255)] | None = None
    status: Annotated[str, StringConstraints(max_length=255)] | None = None
    mode: Annotated[str, StringConstraints(max_length=255)] | None = None
    # Stripe's metadata is always strings (at most 50 keys of 40 characters, values of 500).
    metadata: dict[Annotated[str, StringConstraints(max_length=40)],
                   Annotated[str, StringConstraints(max_length=500)]] | None = None
    last_payment_error: _LastPaymentError | None = None


class _EventData(_Shape):
    object: EventObject


class StripeEvent(_Shape):
    id: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    type: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    data: _EventData


def parse_event(payload: bytes) -> StripeEvent:
    """A verified body as a typed event; ValueError if it is not one (never anything else)."""
    try:
        return StripeEvent.model_validate_json(payload)
    except (ValidationError, RecursionError) as exc:
        fields = ", ".join(dict.fromkeys(
            ".".join(str(part) for part in err["loc"]) or "event"
            for err in (exc.errors()[:5] if isinstance(exc, ValidationError) else [])))
        raise ValueError(f"not a Stripe event ({fields or 'nested too deep'})") from None


def signed_at(header: str) -> int | None:
    """The `t=` of a Stripe-Signature header that stripe-python has verified."""
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key == "t":  # the first one, as stripe-python reads it
            return int(value) if value.isascii() and value.isdigit() else None
    return None


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
            return _refused("missing Stripe-Signature")
        try:
            text = payload.decode("utf-8")
            stripe.WebhookSignature.verify_header(text, signature, self._secret, TOLERANCE_SECONDS)
        except (ValueError, stripe.SignatureVerificationError):  # UnicodeDecodeError is a ValueError
            return _refused("invalid signature or payload")
        at = signed_at(signature)
        # stripe-python refuses only the past; a signature from the future is no better.
        if at is None or at > time.time() + TOLERANCE_SECONDS:
            return _refused("invalid signature or payload")
        try:
            event = parse_event(payload)
        except ValueError as exc:
            log.info("webhook refused: %s", exc)
            return WebhookAnswer(400, {"error": "not a Stripe event"})

        event_id, event_type = event.id, event.type
        if await self._seen(event_id):
            return WebhookAnswer(200, {"received": True, "duplicate": True})
        try:
            await self._dispatch(event_type, event.data.object.model_dump())
        except (BillingError, StripeUnavailable) as exc:
            # Not remembered: Stripe retries the event later, and acting on it is idempotent.
            log.warning("webhook %s (%s) not processed yet: %s", event_id, event_type, exc)
            return WebhookAnswer(503, {"error": "try again later"})
        except Exception:  # noqa: BLE001 - a bug or a database outage: Stripe retries; never a 500
            log.exception("webhook %s (%s) failed; Stripe will send it again", event_id, event_type)
            return WebhookAnswer(503, {"error": "try again later"})
        await self._remember(event_id, event_type)
        return WebhookAnswer(200, {"received": True})

    async def _dispatch(self, event_type: str, obj: dict[str, Any]) -> None:
        if event_type in INTENT_EVENTS and obj.get("id"):
            await self._processor.on_intent(str(obj["id"]), intent_result(obj))
        elif event_type == "checkout.session.completed" and obj.get("mode") == "setup":
            metadata = dict(obj.get("metadata") or {})
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


def _refused(error: str) -> WebhookAnswer:
    log.info("webhook refused: %s", error)  # never the header or the body
    return WebhookAnswer(400, {"error": error})
