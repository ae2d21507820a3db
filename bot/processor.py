"""The payment state machine, driven forward one guarded step at a time.

The same `advance` serves a live submission, the periodic reconciler and Stripe
webhooks, so a payment interrupted anywhere (crash, timeout, lost answer) is finished by
whoever looks at it next, with the same idempotency keys: one charge, one record.

    created ──create PI──▶ confirming ──confirm──▶ charged ──record──▶ recorded
                                    │                  ▲
                                    ├─▶ debiting ──record(processing)──▶ processing ──webhook──▶ recorded | failed
                                    ├─▶ requires_action ──webhook──▶ charged | failed
                                    └─▶ failed (declined)
    charged | debiting | processing ──billing refuses for good──▶ needs_attention
    confirming | requires_action ──Stripe refuses the confirm/look (at once if permanent, else the 5th time)──▶ needs_attention
    needs_attention ──operator: resolve --record──▶ recorded | processing | failed
                    ──operator: resolve --refund──▶ refunded
                    ──operator: resolve --cancel (a refused confirm, nothing charged)──▶ failed
                    ──Stripe's word on a refused confirm (webhook, --record)──▶ charged | debiting | ...

Time is the injected `Clock` (the repository's too): retry times, "due a look", row times.

Every move is audited here, in the same transaction as the move, whichever path made it
(live, webhook, reconciler, operator): `payment_result` for an outcome, the charge and a
cancel, `payment_step` for the steps on the way (confirming, debiting). An outcome reached
anywhere but in front of the person (a live submission within its deadline) is also sent
to the payer as a direct message, once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from contextvars import ContextVar

from bot.billing import BillingError, BillingNotFound, Invoice, PaymentRecord, RecordedPayment
from bot.clock import Clock, SystemClock
from bot.money import Money
from bot.ports import BillingApi, PaymentIntents, PaymentNotifier
from bot.retry import PAYMENT_RETRY
from bot.stripe_gateway import IntentResult, StripeRejected, StripeUnavailable
from storage.models import AuditEvent, OutboxMessage, Payment, PaymentStatus
from storage.payments import PaymentRepository

log = logging.getLogger(__name__)

S = PaymentStatus

# Who is driving the payment right now: "live" (the submission the person is watching),
# "webhook", "reconciler" or "operator". A live drive shows its result in the modal; any
# other path tells the payer by direct message.
_via: ContextVar[str] = ContextVar("payment_driver", default="")

# Where a payment ends, or waits on someone else: these are audited and told to the payer.
OUTCOMES = frozenset({S.RECORDED, S.PROCESSING, S.FAILED, S.REQUIRES_ACTION, S.NEEDS_ATTENTION, S.REFUNDED})
# Audited as a `payment_result`: those, the moment money has moved, and a payment given up
# before any charge. Every other move (to confirming, to debiting) is a `payment_step`.
_AUDITED = OUTCOMES | {S.CHARGED, S.CANCELED}
# Waiting for an approver, or ended before any charge by a decision (bot/approvals.py makes
# these moves); a drive of the payment rests there.
# `scheduled`: approved, waiting for its day; the scheduler moves it on (bot/scheduled_payments.py).
APPROVAL_STATES = frozenset({S.AWAITING_APPROVAL, S.REJECTED, S.EXPIRED, S.WITHDRAWN, S.SCHEDULED})


@contextlib.contextmanager
def driving(path: str, *, override: bool = False) -> Iterator[None]:
    """Name the path driving payments in this task (kept if one is named already)."""
    if _via.get() and not override:
        yield
        return
    token = _via.set(path)
    try:
        yield
    finally:
        _via.reset(token)


def at_rest(payment: Payment) -> bool:
    """Whether a drive of this payment has ended for now: an outcome, or a step that
    stalled and waits for a retry (Stripe or billing did not answer)."""
    return (S(payment.status) in OUTCOMES or payment.status == S.CANCELED or payment.next_attempt_at is not None
            or S(payment.status) in APPROVAL_STATES)


# The notifier port used to be declared here; the name stays for the adapters that use it.
PaymentEvents = PaymentNotifier


class PaymentProcessor:
    def __init__(self, repo: PaymentRepository, stripe: PaymentIntents, billing: BillingApi,
                 events: PaymentNotifier, *, clock: Clock | None = None) -> None:
        self._repo = repo
        self._stripe = stripe
        self._billing = billing
        self._events = events
        # The app's one clock (the repository's too): retry times are counted from it.
        self._clock = clock or SystemClock()

    async def advance(self, payment_id: str, *, recovering: bool = False, since: str | None = None,
                      via: str | None = None, written: Payment | None = None) -> Payment:
        """Drive the payment as far as it can go now; returns where it stands.

        Stripe or the billing API being down leaves it in an intermediate state with a
        retry time; nothing is lost, the reconciler picks it up. `since`: the status the
        caller last showed (a webhook that already moved it), for the modal update.
        `written`: the row as the caller has just written it (a new submission's), so it
        is not read again; every move is a compare-and-set, so a row that moved meanwhile
        only makes the first move lose its race and read it then.
        """
        with driving(via or ("reconciler" if recovering else "live"), override=not recovering):
            return await self._advance(payment_id, recovering=recovering, since=since, written=written)

    async def _advance(self, payment_id: str, *, recovering: bool, since: str | None,
                       written: Payment | None = None) -> Payment:
        payment = written if written is not None and written.id == payment_id else await self._repo.get(payment_id)
        if payment is None:
            raise LookupError(payment_id)
        before = since or payment.status
        try:
            while True:
                step = await self._step(payment, recovering=recovering)
                if step is None:
                    break
                payment = step
        except (StripeUnavailable, BillingError, _RefusedForNow) as exc:
            log.warning("payment %s stalled in %s: %s", payment.id, payment.status, exc)
            await self._repo.touch(payment.id, attempts=payment.attempts + 1,
                                   next_attempt_at=PAYMENT_RETRY.next_at(payment.attempts + 1, now=self._clock.now()))
            payment = await self._repo.get(payment.id) or payment
        if payment.status != before:
            # A live submission renders its own modal; background paths update it here.
            await self._safe_changed(payment, update_modal=_via.get() != "live")
        return payment

    async def _step(self, payment: Payment, *, recovering: bool) -> Payment | None:
        status = S(payment.status)
        if status is S.CREATED:
            if recovering:
                # Interrupted before a PaymentIntent was stored: no money can have moved
                # (we never create and confirm in one call), so this attempt simply ends.
                return await self._move(payment, [S.CREATED], S.FAILED,
                                        failure_message="The payment was interrupted before the card was charged.")
            try:
                intent = await self._create_intent(payment)
            except (StripeUnavailable, StripeRejected) as exc:
                reason = ("Stripe isn't answering right now." if isinstance(exc, StripeUnavailable)
                          else "Stripe refused to start this payment.")
                return await self._move(payment, [S.CREATED], S.FAILED, failure_message=reason)
            # Stored before confirming, so a crash from here on is resolved by asking Stripe.
            return await self._move(payment, [S.CREATED], S.CONFIRMING, stripe_payment_intent_id=intent.id)
        if status is S.APPROVED:
            # An approver's yes (bot/approvals.py), decided in its own step. Creating the
            # PaymentIntent again after a crash is safe: same idempotency key, never confirmed
            # before its id is stored, so the live path and the reconciler do the same here.
            if recovering or payment.attempts:
                # The approver's checks were made at the click; since then (a crash, Stripe
                # down and retried later) the invoice may have been paid by wire. Read its
                # balance again before any money can move.
                changed = await self._no_longer_payable(payment)
                if changed:
                    preview = _copy(payment, status=S.CANCELED.value, failure_message=changed)
                    return await self._move(payment, [S.APPROVED], S.CANCELED, failure_message=changed,
                                            outbox=await self._events.direct(preview))
            try:
                intent = await self._create_intent(payment)
            except StripeRejected:
                return await self._move(payment, [S.APPROVED], S.FAILED,
                                        failure_message="Stripe refused to start this payment.")
            return await self._move(payment, [S.APPROVED], S.CONFIRMING, stripe_payment_intent_id=intent.id)
        if status is S.CONFIRMING:
            try:
                result = await self._confirm(payment, look_first=recovering)
            except _Refused as refused:
                return await self._refused(payment, refused)
            return await self.apply_intent(payment, result)
        if status is S.CHARGED:
            return await self._record(payment, "succeeded", S.CHARGED, S.RECORDED, "paid")
        if status is S.DEBITING:
            return await self._record(payment, "processing", S.DEBITING, S.PROCESSING, "processing")
        return None  # an outcome, or waiting on someone else (3-D Secure, a bank, an operator)

    async def on_intent(self, intent_id: str, result: IntentResult) -> Payment | None:
        """Stripe told us (webhook, or a look during reconciliation) where an intent is now.

        Events may come twice or out of order: every move is guarded, so a stale event
        finds the payment already past it and changes nothing.
        """
        with driving("webhook"):
            return await self._on_intent(intent_id, result)

    async def _on_intent(self, intent_id: str, result: IntentResult) -> Payment | None:
        payment = await self._repo.by_intent(intent_id)
        if payment is None:
            return None
        status = S(payment.status)
        # A confirm Stripe refused (needs_attention) is still waiting on Stripe's word.
        unconfirmed = status is S.CONFIRMING or (status is S.NEEDS_ATTENTION and payment.attention_step == "confirm")
        if result.status == "succeeded":
            if status is S.PROCESSING:
                return await self.settle(payment, succeeded=True)
            if status is S.DEBITING:
                # Cleared before we recorded it as processing: record it as succeeded.
                await self._move(payment, [S.DEBITING], S.CHARGED)
            elif unconfirmed or status is S.REQUIRES_ACTION:
                await self.apply_intent(payment, result)
        elif result.status in ("processing", "requires_action") and unconfirmed:
            await self.apply_intent(payment, result)
        elif result.status in ("declined", "canceled"):
            if status is S.PROCESSING:
                return await self.settle(payment, succeeded=False, reason=result.message)
            if status is S.DEBITING:
                await self._move(payment, [S.DEBITING], S.FAILED, failure_message=result.message or "The bank debit failed.")
            elif unconfirmed or status is S.REQUIRES_ACTION:
                await self.apply_intent(payment, result)
        return await self.advance(payment.id, recovering=True, since=status.value)

    async def refresh(self, payment: Payment) -> Payment | None:
        """Ask Stripe about a payment waiting on someone else (3-D Secure, a bank debit),
        in case its webhook never came."""
        if not payment.stripe_payment_intent_id:
            return None
        with driving("reconciler"):
            try:
                result = await self._stripe.retrieve_intent(payment.stripe_payment_intent_id)
            except StripeRejected as exc:
                if payment.status != S.REQUIRES_ACTION:
                    raise  # a bank debit on its way: its webhook settles it; the reconciler backs off
                # 3-D Secure we cannot see: bounded like a refused confirm (charge unknown).
                moved = await self._refused(payment, _Refused(exc, not_charged=False))
                if moved is not None:
                    await self._safe_changed(moved, update_modal=True)
                return moved
            after = await self.on_intent(payment.stripe_payment_intent_id, result)
        if after is not None and after.status == payment.status:
            await self._repo.touch(payment.id, next_attempt_at=self._clock.now() + dt.timedelta(minutes=10))
        return after

    async def cancel(self, payment: Payment, from_state: PaymentStatus, reason: str) -> Payment | None:
        """End a payment that can no longer charge: its invoice changed before the card was
        charged, or a new attempt replaced one waiting for 3-D Secure once Stripe canceled
        its intent. Audited like every move; None if it had moved on meanwhile."""
        with driving("live"):
            moved = await self._move(payment, [S(from_state)], S.CANCELED, failure_message=reason)
        return moved if moved is not None and moved.status == S.CANCELED else None

    async def _no_longer_payable(self, payment: Payment) -> str | None:
        """Why an approved payment can no longer be charged as approved (None: it can). No
        answer from billing raises, and the payment waits for its next look."""
        try:
            invoice = await self._billing.get_invoice(payment.invoice_id)
        except BillingNotFound:
            return "the invoice no longer exists in the billing system."
        return changed_since(invoice, payment, "after the approval")

    async def _create_intent(self, payment: Payment) -> IntentResult:
        return await self._stripe.create_intent(
            # The row keeps ISO minor units (the billing API's scale); Stripe has its own.
            stripe_amount=Money.from_minor(payment.amount_minor, payment.currency).to_stripe(), currency=payment.currency,
            customer_id=payment.stripe_customer_id, payment_method_id=payment.payment_method_id,
            payment_method_type=payment.payment_method_type,
            metadata={"payment_id": payment.id, "invoice_id": payment.invoice_id,
                      "invoice_number": payment.invoice_number, "billing_profile_id": payment.billing_profile_id},
            idempotency_key=f"{payment.id}-create",
        )

    async def apply_intent(self, payment: Payment, result: IntentResult) -> Payment | None:
        """Move a payment to where Stripe says its PaymentIntent is."""
        # A confirm Stripe refused waits for a person in needs_attention; Stripe's word on
        # the intent (an operator's retry, a webhook) moves it on from there too.
        confirming = [S.CONFIRMING] + ([S.NEEDS_ATTENTION] if payment.attention_step == "confirm" else [])
        waiting = [*confirming, S.REQUIRES_ACTION]
        done = {"attention_step": None} if payment.attention_step == "confirm" else {}
        if result.status == "succeeded":
            return await self._move(payment, waiting, S.CHARGED, failure_message=None, **done)
        if result.status == "processing":
            return await self._move(payment, confirming, S.DEBITING, failure_message=None, **done)
        if result.status == "requires_action":
            return await self._move(payment, confirming, S.REQUIRES_ACTION,
                                    failure_message="This card needs 3-D Secure authentication.", **done)
        if result.status in ("declined", "canceled"):
            message = result.message or ("The payment was canceled." if result.status == "canceled"
                                         else "The payment was declined.")
            # A payment the user walked away from (3-D Secure) ends with a word in the channel;
            # a decline in front of the user is shown in the modal only.
            outbox = await self._events.notices(_copy(payment, status=S.FAILED.value, failure_message=message),
                                          "failed") if payment.status == S.REQUIRES_ACTION else []
            return await self._move(payment, waiting, S.FAILED, failure_message=message, outbox=outbox, **done)
        return None

    async def _confirm(self, payment: Payment, *, look_first: bool) -> IntentResult:
        """Confirm the intent (once: the key is the payment's), looking first where it
        stands when recovering. A refusal of the confirm is not an answer about the
        money, so Stripe is asked where the intent stands; raises `_Refused` when that
        still leaves the payment unconfirmed or unknown."""
        intent_id = payment.stripe_payment_intent_id
        assert intent_id
        try:
            result = await self._stripe.retrieve_intent(intent_id) if look_first else None
            if result is not None and result.status != "requires_confirmation":
                return result
        except StripeRejected as exc:
            raise _Refused(exc, not_charged=False) from exc
        try:
            return await self._stripe.confirm_intent(intent_id, idempotency_key=f"{payment.id}-confirm")
        except StripeRejected as refusal:
            # Refused, say, because the intent is past confirming (confirmed elsewhere,
            # canceled): where it stands now is the answer.
            try:
                result = await self._stripe.retrieve_intent(intent_id)
            except StripeRejected as exc:
                raise _Refused(refusal, not_charged=False, permanent=exc.permanent) from refusal
            if result.status == "requires_confirmation":
                raise _Refused(refusal, not_charged=True) from refusal  # never confirmed: no money moved
            return result

    async def _refused(self, payment: Payment, refused: _Refused) -> Payment | None:
        """Stripe refuses to confirm (or to show) the intent: retried on the curve a few
        times when the refusal may pass (`STRIPE_REFUSALS_BEFORE_ATTENTION` failed looks in
        all), at once to a person when it cannot; an operator resolves it."""
        attempts = payment.attempts + 1
        if not refused.permanent and attempts < STRIPE_REFUSALS_BEFORE_ATTENTION:
            raise _RefusedForNow(str(refused.refusal))
        log.error("payment %s needs attention: Stripe refused the confirm (%s; not charged: %s)", payment.id,
                  refused.refusal, refused.not_charged)
        message = REFUSED_NOT_CHARGED if refused.not_charged else REFUSED_UNKNOWN
        if S(payment.status) is S.NEEDS_ATTENTION:
            # Refused again while an operator retries: the new reason, no new announcement.
            await self._repo.touch(payment.id, failure_message=message, attempts=attempts)
            return None
        preview = _copy(payment, status=S.NEEDS_ATTENTION.value, failure_message=message, attention_step="confirm")
        return await self._move(payment, [S(payment.status)], S.NEEDS_ATTENTION,
                                outbox=await self._events.notices(preview, "attention"), failure_message=message,
                                attention_step="confirm", attempts=attempts, next_attempt_at=None)

    async def _record(self, payment: Payment, billing_status: str, from_state: S, to_state: S,
                      event: str) -> Payment | None:
        record = PaymentRecord(
            payment_id=payment.id, amount=Money.from_minor(payment.amount_minor, payment.currency).api_string(),
            currency=payment.currency, method=payment.method_kind, processor="stripe",  # type: ignore[arg-type]
            processor_payment_id=payment.stripe_payment_intent_id or "", status=billing_status,  # type: ignore[arg-type]
            paid_by=payment.paid_by,
        )
        try:
            recorded = await self._billing.record_payment(payment.invoice_id, record)
        except BillingError as exc:
            if exc.transient:
                raise
            return await self._needs_attention(payment, exc, f"record:{billing_status}")
        fields = _after(recorded, payment.currency)
        preview = _copy(payment, status=to_state.value, **fields)
        return await self._move(payment, [from_state], to_state, outbox=await self._events.notices(preview, event),
                                failure_message=None, attention_step=None, next_attempt_at=None, **fields)

    async def settle(self, payment: Payment, *, succeeded: bool, reason: str | None = None) -> Payment | None:
        """A bank debit that was processing has cleared or bounced (from the webhook)."""
        with driving("webhook"):
            moved = await self._settle(payment, succeeded=succeeded, reason=reason, from_states=[S.PROCESSING])
        if moved:
            await self._safe_changed(moved, update_modal=True)
        return moved

    async def _settle(self, payment: Payment, *, succeeded: bool, reason: str | None,
                      from_states: list[S]) -> Payment | None:
        try:
            recorded = await self._billing.settle_payment(payment.invoice_id, payment.id, succeeded=succeeded,
                                                          failure_reason=reason)
        except BillingError as exc:
            # A 409 (the record is not in a state that can settle) will not change by
            # itself either: only an answer that may come out differently is retried.
            if exc.transient:
                raise
            return await self._needs_attention(payment, exc, f"settle:{'succeeded' if succeeded else 'failed'}")
        fields = _after(recorded, payment.currency)
        target = S.RECORDED if succeeded else S.FAILED
        fields["failure_message"] = None if succeeded else (reason or "The bank debit failed.")
        preview = _copy(payment, status=target.value, **fields)
        return await self._move(payment, from_states, target, attention_step=None, next_attempt_at=None,
                                outbox=await self._events.notices(preview, "settled" if succeeded else "debit_failed"),
                                **fields)

    async def _needs_attention(self, payment: Payment, exc: BillingError, step: str) -> Payment | None:
        # Money moved but the billing system will not take the record (say, the invoice
        # was paid by wire meanwhile). Retrying will not change that answer: the payment
        # leaves the retry loop, keeps the invoice's slot, and people are told once; an
        # operator records it again or refunds it (`invoicebot payments resolve`).
        log.error("payment %s needs attention: billing refused %s (%s)", payment.id, step, exc.code)
        message = f"The billing system refused to record it: {exc.message}"
        if S(payment.status) is S.NEEDS_ATTENTION:
            # A second refusal while an operator retries: the new reason, no new announcement.
            await self._repo.touch(payment.id, failure_message=message, attempts=payment.attempts + 1)
            return None
        preview = _copy(payment, status=S.NEEDS_ATTENTION.value, failure_message=message)
        return await self._move(payment, [S(payment.status)], S.NEEDS_ATTENTION,
                                outbox=await self._events.notices(preview, "attention"), failure_message=message,
                                attention_step=step, attempts=payment.attempts + 1, next_attempt_at=None)

    # -- an operator resolves a payment that needs attention ------------------------------
    async def resolve_record(self, payment: Payment, *, by: str) -> Payment:
        """Try the refused billing step again (the billing side has been fixed). Ends in
        the step's outcome, or stays in needs_attention with the new reason; a transient
        billing error propagates (nothing changed, try again)."""
        with driving("operator", override=True), _operator(by):
            step = payment.attention_step or "record:succeeded"
            kind, _, status = step.partition(":")
            if kind == "confirm":
                moved = await self._retry_confirm(payment)
            elif kind == "settle":
                moved = await self._settle(payment, succeeded=status == "succeeded", reason=payment.failure_message,
                                           from_states=[S.NEEDS_ATTENTION])
            elif status == "processing":
                moved = await self._record(payment, "processing", S.NEEDS_ATTENTION, S.PROCESSING, "processing")
            else:
                moved = await self._record(payment, "succeeded", S.NEEDS_ATTENTION, S.RECORDED, "paid")
            after = moved or await self._repo.get(payment.id) or payment
        if after.status != payment.status:
            await self._safe_changed(after, update_modal=True)
        return after

    async def _retry_confirm(self, payment: Payment) -> Payment | None:
        """A refused confirm, tried again by an operator: where Stripe says the intent is
        moves the payment on (charged payments are then recorded); refused again, it stays."""
        try:
            result = await self._confirm(payment, look_first=True)
        except _Refused as refused:
            return await self._refused(payment, _Refused(refused.refusal, not_charged=refused.not_charged,
                                                         permanent=True))
        moved = await self.apply_intent(payment, result)
        if moved is not None and S(moved.status) in (S.CHARGED, S.DEBITING):
            return await self._advance(moved.id, recovering=True, since=moved.status)
        return moved

    async def resolve_cancel(self, payment: Payment, *, by: str) -> Payment:
        """End a refused confirm for good: cancel its intent at Stripe, so it can never
        charge, and end the payment failed ("not charged", now known). Should Stripe show the
        intent past cancelling (it was charged after all), the payment follows Stripe instead."""
        assert payment.stripe_payment_intent_id
        with driving("operator", override=True), _operator(by):
            result = await self._stripe.cancel_intent(payment.stripe_payment_intent_id)
            if result.status == "canceled":
                preview = _copy(payment, status=S.FAILED.value, failure_message=CANCELED_NOT_CHARGED)
                moved = await self._move(payment, [S.NEEDS_ATTENTION], S.FAILED, failure_message=CANCELED_NOT_CHARGED,
                                         outbox=await self._events.notices(preview, "failed"))
            else:
                moved = await self.apply_intent(payment, result)
                if moved is not None and S(moved.status) in (S.CHARGED, S.DEBITING):
                    moved = await self._advance(moved.id, recovering=True, since=moved.status)
            after = moved or await self._repo.get(payment.id) or payment
        if after.status != payment.status:
            await self._safe_changed(after, update_modal=True)
        return after

    async def resolve_refund(self, payment: Payment, *, by: str) -> Payment:
        """Give the money back through Stripe (once: the refund's idempotency key is the
        payment's), then end the payment as refunded, telling the payer and the channel."""
        assert payment.stripe_payment_intent_id
        with driving("operator", override=True), _operator(by):
            await self._stripe.refund_intent(payment.stripe_payment_intent_id, idempotency_key=f"{payment.id}-refund")
            preview = _copy(payment, status=S.REFUNDED.value)
            moved = await self._move(payment, [S.NEEDS_ATTENTION], S.REFUNDED,
                                     outbox=await self._events.notices(preview, "refunded"))
            after = moved or await self._repo.get(payment.id) or payment
        if after.status != payment.status:
            await self._safe_changed(after, update_modal=True)
        return after

    async def _move(self, payment: Payment, from_states: list[S], to_state: S, *,
                    outbox: list[OutboxMessage] | None = None, **fields: object) -> Payment | None:
        messages = list(outbox or [])
        via = _via.get() or "background"
        preview = _copy(payment, status=to_state.value, **fields)
        # The payer hears about an outcome in the modal when they are watching it (a
        # live submission); otherwise, and always for one that needs a person, by DM.
        if to_state in OUTCOMES and (via != "live" or to_state is S.NEEDS_ATTENTION):
            messages += await self._events.direct(preview)
        detail: dict[str, object] = {"via": via, "method": payment.method_label, "reason": preview.failure_message or ""}
        if via == "operator":
            detail["by"] = _by.get()
        if to_state not in _AUDITED:
            detail["from"] = payment.status  # a step on the way: the PaymentIntent stored, a debit sent
        # Every move is audited once, in the same transaction as the move itself (a move
        # that lost the race writes nothing); results and steps under their own names.
        audit = [AuditEvent(
            action="payment_result" if to_state in _AUDITED else "payment_step",
            outcome=to_state.value, team_id=payment.team_id, user_id=payment.user_id, invoice_id=payment.invoice_id,
            billing_profile_id=payment.billing_profile_id, payment_id=payment.id, detail=detail)]
        moved = await self._repo.transition(payment.id, from_states, to_state, outbox=messages, audit=audit,
                                            **fields)
        if moved is None:
            # Someone else (a webhook, another worker) moved it first: carry on from there.
            current = await self._repo.get(payment.id)
            log.info("payment %s: %s -> %s lost the race; now %s", payment.id, payment.status, to_state,
                     current.status if current else "?")
            return current if current is not None and current.status != payment.status else None
        log.info("payment %s: %s -> %s", payment.id, payment.status, to_state.value)
        return moved

    async def _safe_changed(self, payment: Payment, *, update_modal: bool) -> None:
        try:
            await self._events.changed(payment, update_modal=update_modal)
        except Exception:  # noqa: BLE001 - a live update must never undo a payment
            log.exception("live update for payment %s failed", payment.id)


# Stripe refusing a confirm (or the look at its intent) that may pass: failed looks in all
# (`attempts`, on the PAYMENT_RETRY curve: about a minute and a quarter) before a person is told.
STRIPE_REFUSALS_BEFORE_ATTENTION = 5
# The words for it: never that money moved, and "not charged" only when Stripe said so.
REFUSED_UNKNOWN = "Stripe refused to confirm this payment; we could not tell whether it was charged."
REFUSED_NOT_CHARGED = "Stripe refused to confirm this payment; it was not charged."
CANCELED_NOT_CHARGED = "Stripe refused to confirm this payment; it was not charged, and it has been canceled."


class _Refused(Exception):  # noqa: N818 - an internal signal, not an error for callers
    """Stripe refused the confirm (or the look); `not_charged`: Stripe showed the intent
    still unconfirmed."""

    def __init__(self, refusal: StripeRejected, *, not_charged: bool, permanent: bool = False) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal
        self.not_charged = not_charged
        self.permanent = permanent or refusal.permanent


class _RefusedForNow(Exception):  # noqa: N818
    """A refusal that may pass: the payment waits on the retry curve like a timeout."""


_by: ContextVar[str] = ContextVar("payment_operator", default="")


@contextlib.contextmanager
def _operator(by: str) -> Iterator[None]:
    token = _by.set(by)
    try:
        yield
    finally:
        _by.reset(token)


def changed_since(invoice: Invoice, payment: Payment, when: str) -> str | None:
    """Why `invoice` can no longer take `payment` as it was asked or approved (None: it can):
    paid or closed by other means, or its balance now below the amount. `when`: since what."""
    if not invoice.is_payable:
        return (f"invoice {invoice.number} is {invoice.status.replace('_', ' ')} now (paid or closed by other means "
                f"{when}).")
    if invoice.currency != payment.currency or \
            Money.from_minor(payment.amount_minor, payment.currency) > invoice.balance:
        return (f"the balance of invoice {invoice.number} changed {when}; it is now "
                f"{invoice.balance.format(payment.locale or 'en_US')}.")
    return None


def _after(recorded: RecordedPayment, currency: str) -> dict[str, object]:
    invoice = recorded.invoice
    return {"invoice_status_after": invoice.status,
            "balance_after_minor": Money(invoice.amount_due, currency).minor}


def _copy(payment: Payment, **fields: object) -> Payment:
    clone = Payment(**{c.key: getattr(payment, c.key) for c in Payment.__table__.columns})
    for key, value in fields.items():
        setattr(clone, key, value)
    return clone
