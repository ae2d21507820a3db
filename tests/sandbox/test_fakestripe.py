"""The fake Stripe (`sandbox.stripe`): patched localstripe driven through stripe-python.

One real server (`python -m sandbox.stripe --port 0`, a subprocess) for the module; the
tests talk to it with stripe-python's async `StripeClient` + `HTTPXClient`, plain httpx
for the hosted pages and control endpoints, and receive its webhooks on a tiny aiohttp
server, verifying them with `stripe.Webhook.construct_event`.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import stripe
from aiohttp import web

from sandbox.stripe.seed import SeededCustomer, add_payment_method, seed_customers

with warnings.catch_warnings():  # localstripe registers plain-function handlers at import
    warnings.simplefilter("ignore", DeprecationWarning)
    from sandbox.stripe.middleware import IdempotencyStore
    from sandbox.stripe.patches import card_brand, luhn_valid

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk_test_fakestripe"
WEBHOOK_SECRET = "whsec_fakestripe_test"
PROFILES = ["bp_alpha", "bp_beta"]

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# -- fixtures -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("fakestripe") / "server.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox.stripe", "--host", "127.0.0.1", "--port", "0"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        url = None
        while url is None:
            match = re.search(r"listening on (http://\S+)", log_path.read_text())
            if match:
                url = match.group(1)
            elif proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("fake Stripe did not start:\n" + log_path.read_text())
            else:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


def make_client(base_url: str, *, retries: int = 0, timeout: float = 10) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key=API_KEY,
        base_addresses={"api": base_url},  # no trailing slash: stripe-python appends "/v1/..."
        http_client=stripe.HTTPXClient(timeout=timeout),
        max_network_retries=retries,
    )


@pytest.fixture(scope="module")
def client(base_url: str) -> stripe.StripeClient:
    return make_client(base_url)


@pytest.fixture(scope="module")
def retrying_client(base_url: str) -> stripe.StripeClient:
    return make_client(base_url, retries=2)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as session:
        yield session


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def seeded(client: stripe.StripeClient) -> dict[str, SeededCustomer]:
    return await seed_customers(client, PROFILES, include=["sepa_failing", "us_bank_account"])


class WebhookReceiver:
    def __init__(self) -> None:
        self.events: list[stripe.Event] = []
        self.rejected = 0
        self._changed = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        payload = (await request.read()).decode("utf-8")
        try:
            event = stripe.Webhook.construct_event(
                payload, request.headers.get("Stripe-Signature", ""), WEBHOOK_SECRET
            )
        except (stripe.SignatureVerificationError, ValueError):
            self.rejected += 1
            return web.Response(status=400)
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()
        return web.Response()

    async def wait_for(self, type_: str, object_id: str, timeout: float = 6) -> stripe.Event:
        def find() -> stripe.Event | None:
            return next((e for e in self.events if e.type == type_ and e.data.object.id == object_id), None)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(find), timeout)
            found = find()
            assert found is not None
            return found


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def webhooks(http: httpx.AsyncClient) -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    app = web.Application()
    app.router.add_post("/stripe/webhook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    response = await http.post(
        "/_config/webhooks/tests",
        data={"url": f"http://127.0.0.1:{port}/stripe/webhook", "secret": WEBHOOK_SECRET},
    )
    assert response.status_code == 200
    yield receiver
    await runner.cleanup()


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def _no_leftover_faults(http: httpx.AsyncClient) -> AsyncIterator[None]:
    yield
    await http.delete("/_faults")


# -- helpers ------------------------------------------------------------------------------
async def fresh_customer(client: stripe.StripeClient, *labels: str) -> tuple[str, dict[str, str]]:
    customer = await client.v1.customers.create_async(params={"name": "Fresh", "email": "fresh@example.test"})
    methods = {
        label: await add_payment_method(client, customer.id, label, name="Fresh", email="fresh@example.test")
        for label in labels
    }
    return customer.id, methods


async def create_intent(
    client: stripe.StripeClient, customer: str, payment_method: str, amount: int = 12_345, **options: Any
) -> stripe.PaymentIntent:
    return await client.v1.payment_intents.create_async(
        params={
            "amount": amount,
            "currency": "eur",
            "customer": customer,
            "payment_method": payment_method,
            "confirm": False,
            "description": "Invoice INV-0001",
            "metadata": {"invoice_id": "inv_1"},
        },
        options=options,  # type: ignore[arg-type]
    )


async def wait_status(client: stripe.StripeClient, intent_id: str, wanted: str, timeout: float = 5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        intent = await client.v1.payment_intents.retrieve_async(intent_id)
        if intent.status == wanted or time.monotonic() > deadline:
            return intent
        await asyncio.sleep(0.1)


async def add_fault(http: httpx.AsyncClient, **spec: Any) -> None:
    response = await http.post("/_faults", json=spec)
    assert response.status_code == 200, response.text


async def requests_for(http: httpx.AsyncClient, **query: str) -> list[dict[str, Any]]:
    response = await http.get("/_requests", params=query)
    assert response.status_code == 200
    return response.json()["data"]


async def count_intents(client: stripe.StripeClient, customer: str) -> int:
    listed = await client.v1.payment_intents.list_async(params={"customer": customer, "limit": 100})
    return len(listed.data)


# -- pure helpers -------------------------------------------------------------------------
def test_card_brand_and_luhn() -> None:
    assert card_brand("4242424242424242") == "visa"
    assert card_brand("5555555555554444") == "mastercard"
    assert card_brand("2223003122003222") == "mastercard"
    assert card_brand("378282246310005") == "amex"
    assert card_brand("9999999999999995") == "unknown"
    assert luhn_valid("4000002500003155") and not luhn_valid("4242424242424241")


def test_idempotency_keys_expire() -> None:
    now = [1000.0]
    store = IdempotencyStore(ttl=60, clock=lambda: now[0])
    entry = store.reserve("sk", "k1", "POST", "/v1/customers", "{}")
    store.complete("sk", "k1", entry, web.json_response({"id": "cus_1"}))
    now[0] += 59
    assert store.get("sk", "k1") is entry
    assert store.get("other_api_key", "k1") is None
    now[0] += 2
    assert store.get("sk", "k1") is None and len(store) == 0


# -- seeding and listing ------------------------------------------------------------------
async def test_seed_and_list_payment_methods(
    client: stripe.StripeClient, seeded: dict[str, SeededCustomer]
) -> None:
    assert set(seeded) == set(PROFILES)
    alpha = seeded["bp_alpha"]
    customer = await client.v1.customers.retrieve_async(alpha.customer_id)
    assert customer.invoice_settings.default_payment_method == alpha.payment_methods["visa"]
    assert alpha.default_payment_method == alpha.payment_methods["visa"]

    cards = await client.v1.customers.payment_methods.list_async(alpha.customer_id, params={"type": "card"})
    by_id = {pm.id: pm for pm in cards.data}
    assert len(by_id) == 5
    assert by_id[alpha.payment_methods["mastercard"]].card.brand == "mastercard"
    assert by_id[alpha.payment_methods["visa"]].card.brand == "visa"
    assert by_id[alpha.payment_methods["visa"]].card.last4 == "4242"
    expired = by_id[alpha.payment_methods["expired"]].card
    assert (expired.exp_month, expired.exp_year) == (1, 2021)

    sepa = await client.v1.payment_methods.list_async(
        params={"customer": alpha.customer_id, "type": "sepa_debit"}
    )
    assert {pm.id for pm in sepa.data} == {
        alpha.payment_methods["sepa"],
        alpha.payment_methods["sepa_failing"],
    }
    assert all(pm.sepa_debit.country == "DE" for pm in sepa.data)
    ach = await client.v1.customers.payment_methods.list_async(
        alpha.customer_id, params={"type": "us_bank_account"}
    )
    assert [pm.us_bank_account.last4 for pm in ach.data] == ["6789"]
    everything = await client.v1.customers.payment_methods.list_async(
        alpha.customer_id, params={"limit": 100}
    )
    assert len(everything.data) == 8
    one = await client.v1.customers.payment_methods.retrieve_async(
        alpha.customer_id, alpha.payment_methods["3ds"]
    )
    assert one.card.last4 == "3155"
    with pytest.raises(stripe.InvalidRequestError):  # not this customer's
        await client.v1.customers.payment_methods.retrieve_async(
            seeded["bp_beta"].customer_id, alpha.payment_methods["3ds"]
        )

    again = await seed_customers(client, ["bp_alpha"], include=["sepa_failing", "us_bank_account"])
    assert again["bp_alpha"] == alpha  # idempotent: found by email, nothing added


async def test_payment_method_validation(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as bad_number:
        await client.v1.payment_methods.create_async(
            params={"type": "card", "card": {"number": "4242424242424241", "exp_month": 12, "exp_year": 2030}}
        )
    assert bad_number.value.code == "incorrect_number"
    amex = await client.v1.payment_methods.create_async(
        params={"type": "card", "card": {"number": "378282246310005", "exp_month": 12, "exp_year": 2030}}
    )
    assert amex.card.brand == "amex"
    with pytest.raises(stripe.InvalidRequestError) as bad_iban:
        await client.v1.payment_methods.create_async(
            params={
                "type": "sepa_debit",
                "sepa_debit": {"iban": "DE00370400440532013000"},
                "billing_details": {"name": "A", "email": "a@example.test"},
            }
        )
    assert bad_iban.value.code == "invalid_bank_account_iban"


# -- PaymentIntents -----------------------------------------------------------------------
async def test_confirm_off_session_succeeds(
    client: stripe.StripeClient, seeded: dict[str, SeededCustomer], webhooks: WebhookReceiver
) -> None:
    alpha = seeded["bp_alpha"]
    intent = await create_intent(client, alpha.customer_id, alpha.payment_methods["mastercard"])
    assert intent.status == "requires_confirmation"
    assert intent.description == "Invoice INV-0001"
    confirmed = await client.v1.payment_intents.confirm_async(
        intent.id, params={"off_session": True}, options={"idempotency_key": f"confirm-{intent.id}"}
    )
    assert confirmed.status == "succeeded"
    assert confirmed.latest_charge is not None
    event = await webhooks.wait_for("payment_intent.succeeded", intent.id)
    assert event.data.object.metadata["invoice_id"] == "inv_1"

    with pytest.raises(stripe.InvalidRequestError) as twice:
        await client.v1.payment_intents.confirm_async(intent.id, params={"off_session": True})
    assert twice.value.code == "payment_intent_unexpected_state"


async def test_declined_card_then_retry_with_another_method(
    client: stripe.StripeClient, seeded: dict[str, SeededCustomer]
) -> None:
    alpha = seeded["bp_alpha"]
    intent = await create_intent(client, alpha.customer_id, alpha.payment_methods["declined"])
    with pytest.raises(stripe.CardError) as declined:
        await client.v1.payment_intents.confirm_async(intent.id, params={"off_session": True})
    error = declined.value
    assert error.http_status == 402
    assert error.code == "card_declined"
    assert error.user_message == "Your card was declined."
    assert error.error is not None
    assert error.error.type == "card_error"
    assert error.error.decline_code == "generic_decline"
    assert error.error.payment_intent.id == intent.id
    assert error.error.payment_intent.status == "requires_payment_method"

    failed = await client.v1.payment_intents.retrieve_async(intent.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error.code == "card_declined"

    retried = await client.v1.payment_intents.confirm_async(
        intent.id, params={"off_session": True, "payment_method": alpha.payment_methods["visa"]}
    )
    assert retried.status == "succeeded"


async def test_expired_card_is_declined(
    client: stripe.StripeClient, seeded: dict[str, SeededCustomer]
) -> None:
    beta = seeded["bp_beta"]
    intent = await create_intent(client, beta.customer_id, beta.payment_methods["expired"])
    with pytest.raises(stripe.CardError) as expired:
        await client.v1.payment_intents.confirm_async(intent.id, params={"off_session": True})
    assert expired.value.code == "expired_card"


async def test_other_customers_payment_method_is_refused(
    client: stripe.StripeClient, seeded: dict[str, SeededCustomer]
) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        await create_intent(client, seeded["bp_alpha"].customer_id, seeded["bp_beta"].payment_methods["visa"])


async def test_three_d_secure_completed_on_hosted_page(
    client: stripe.StripeClient,
    http: httpx.AsyncClient,
    seeded: dict[str, SeededCustomer],
    webhooks: WebhookReceiver,
) -> None:
    alpha = seeded["bp_alpha"]
    intent = await create_intent(client, alpha.customer_id, alpha.payment_methods["3ds"])
    confirmed = await client.v1.payment_intents.confirm_async(intent.id, params={"off_session": True})
    assert confirmed.status == "requires_action"

    page = await http.get(f"/authenticate/{intent.id}")
    assert page.status_code == 200
    assert "Complete authentication" in page.text and "Fail authentication" in page.text
    assert "123.45 EUR" in page.text
    done = await http.post(f"/authenticate/{intent.id}", data={"action": "complete"})
    assert done.status_code == 200 and "succeeded" in done.text

    assert (await client.v1.payment_intents.retrieve_async(intent.id)).status == "succeeded"
    await webhooks.wait_for("payment_intent.succeeded", intent.id)


async def test_three_d_secure_failed_with_return_url(
    client: stripe.StripeClient, http: httpx.AsyncClient, seeded: dict[str, SeededCustomer]
) -> None:
    beta = seeded["bp_beta"]
    intent = await create_intent(client, beta.customer_id, beta.payment_methods["3ds"])
    confirmed = await client.v1.payment_intents.confirm_async(
        intent.id, params={"off_session": True, "return_url": "https://bot.example.test/paid"}
    )
    assert confirmed.status == "requires_action"
    assert confirmed.next_action.type == "redirect_to_url"
    url = confirmed.next_action.redirect_to_url.url
    assert url.startswith(str(http.base_url).rstrip("/") + f"/authenticate/{intent.id}")

    page = await http.get(url)
    assert "Fail authentication" in page.text
    answer = await http.post(
        f"/authenticate/{intent.id}", data={"action": "fail", "return_url": "https://bot.example.test/paid"}
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("https://bot.example.test/paid?payment_intent=" + intent.id)
    assert "redirect_status=failed" in answer.headers["location"]
    failed = await client.v1.payment_intents.retrieve_async(intent.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error.code == "payment_intent_authentication_failure"


async def test_sepa_debit_processing_then_settles(
    client: stripe.StripeClient, seeded: dict[str, SeededCustomer], webhooks: WebhookReceiver
) -> None:
    alpha = seeded["bp_alpha"]
    good = await create_intent(client, alpha.customer_id, alpha.payment_methods["sepa"])
    bad = await create_intent(client, alpha.customer_id, alpha.payment_methods["sepa_failing"])
    ach = await create_intent(client, alpha.customer_id, alpha.payment_methods["us_bank_account"])
    for intent in (good, bad, ach):
        confirmed = await client.v1.payment_intents.confirm_async(intent.id, params={"off_session": True})
        assert confirmed.status == "processing"

    assert (await wait_status(client, good.id, "succeeded")).status == "succeeded"
    assert (await wait_status(client, ach.id, "succeeded")).status == "succeeded"
    failed = await wait_status(client, bad.id, "requires_payment_method")
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error.code == "insufficient_funds"
    charge = await client.v1.charges.retrieve_async(failed.latest_charge)
    assert charge.status == "failed"
    await webhooks.wait_for("payment_intent.payment_failed", bad.id)


async def test_a_longer_bank_debit_delay_keeps_debits_processing_until_it_passes(
    client: stripe.StripeClient, http: httpx.AsyncClient, seeded: dict[str, SeededCustomer]
) -> None:
    """The demo's setting: a debit visibly `processing` for a while, then settling as usual."""
    assert (await http.get("/_config/bank_debits")).json() == {"settle_seconds": 0.5}
    assert (await http.put("/_config/bank_debits", json={"settle_seconds": -1})).status_code == 400
    alpha = seeded["bp_alpha"]
    assert (await http.put("/_config/bank_debits", json={"settle_seconds": 2.5})).json() == {"settle_seconds": 2.5}
    try:
        good = await create_intent(client, alpha.customer_id, alpha.payment_methods["sepa"])
        bad = await create_intent(client, alpha.customer_id, alpha.payment_methods["sepa_failing"])
        started = time.monotonic()
        for intent in (good, bad):
            await client.v1.payment_intents.confirm_async(intent.id, params={"off_session": True})
        await asyncio.sleep(max(0.0, 1.5 - (time.monotonic() - started)))
        for intent in (good, bad):  # well past localstripe's own 0.5 s
            assert (await client.v1.payment_intents.retrieve_async(intent.id)).status == "processing"
        assert (await wait_status(client, good.id, "succeeded")).status == "succeeded"
        assert (await wait_status(client, bad.id, "requires_payment_method")).status == "requires_payment_method"
        assert time.monotonic() - started >= 2.4
    finally:
        await http.put("/_config/bank_debits", json={"settle_seconds": 0.5})


# -- Checkout (mode=setup) ----------------------------------------------------------------
async def test_checkout_setup_session_saves_a_card(
    client: stripe.StripeClient,
    http: httpx.AsyncClient,
    seeded: dict[str, SeededCustomer],
    webhooks: WebhookReceiver,
) -> None:
    beta = seeded["bp_beta"]
    session = await client.v1.checkout.sessions.create_async(
        params={
            "mode": "setup",
            "customer": beta.customer_id,
            "currency": "eur",
            "success_url": "https://bot.example.test/card-saved?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://bot.example.test/cancelled",
            "payment_method_types": ["card"],
            "metadata": {"slack_user": "U123"},
            "client_reference_id": "bp_beta",
        }
    )
    assert session.id.startswith("cs_test_") and session.object == "checkout.session"
    assert session.status == "open" and session.mode == "setup"
    assert session.url == str(http.base_url).rstrip("/") + f"/checkout/{session.id}"
    assert session.setup_intent.startswith("seti_")
    assert session.expires_at > session.created
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).metadata["slack_user"] == "U123"

    page = await http.get(session.url)
    assert page.status_code == 200
    assert "Save your card" in page.text and "4242 4242 4242 4242" in page.text

    declined = await http.post(
        session.url, data={"number": "4000 0000 0000 0002", "exp": "12 / 34", "cvc": "123"}
    )
    assert declined.status_code == 402 and "Your card was declined." in declined.text
    past = await http.post(
        session.url, data={"number": "4242 4242 4242 4242", "exp": "01 / 21", "cvc": "123"}
    )
    assert past.status_code == 402 and "in the past" in past.text
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).status == "open"

    saved = await http.post(
        session.url, data={"number": "3782 822463 10005", "exp": "12 / 34", "cvc": "1234", "name": "Beta Ops"}
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"https://bot.example.test/card-saved?session={session.id}"

    completed = await client.v1.checkout.sessions.retrieve_async(
        session.id, params={"expand": ["setup_intent"]}
    )
    assert completed.status == "complete" and completed.url is None
    pm_id = completed.setup_intent.payment_method
    assert completed.setup_intent.status == "succeeded"
    pm = await client.v1.customers.payment_methods.retrieve_async(beta.customer_id, pm_id)
    assert pm.card.brand == "amex" and pm.card.last4 == "0005"

    event = await webhooks.wait_for("checkout.session.completed", session.id)
    assert event.data.object.client_reference_id == "bp_beta"
    assert event.data.object.setup_intent == completed.setup_intent.id
    assert webhooks.rejected == 0

    again = await http.get(session.url)
    assert "Card saved" in again.text


async def test_checkout_rejects_unsupported_modes(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.checkout.sessions.create_async(
            params={"mode": "payment", "success_url": "https://x.test"}
        )


# -- idempotency --------------------------------------------------------------------------
async def test_idempotent_replay_and_mismatch(http: httpx.AsyncClient, client: stripe.StripeClient) -> None:
    key = f"idem-{uuid.uuid4()}"
    headers = {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": key}
    first = await http.post("/v1/customers", data={"name": "Once"}, headers=headers)
    second = await http.post("/v1/customers", data={"name": "Once"}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers

    other = await http.post("/v1/customers", data={"name": "Twice"}, headers=headers)
    assert other.status_code == 400
    assert other.json()["error"]["type"] == "idempotency_error"
    assert "same parameters" in other.json()["error"]["message"]
    with pytest.raises(stripe.IdempotencyError):
        await client.v1.customers.create_async(params={"name": "Twice"}, options={"idempotency_key": key})

    scoped = await http.post(
        "/v1/customers", data={"name": "Once"}, headers={**headers, "Authorization": "Bearer sk_test_other"}
    )
    assert scoped.json()["id"] != first.json()["id"]  # keys are per API key

    # Errors of an endpoint that ran are stored too (402), validation errors are not (400).
    pm = await client.v1.payment_methods.create_async(
        params={"type": "card", "card": {"number": "4000000000000002", "exp_month": 1, "exp_year": 2030}}
    )
    attach_headers = {**headers, "Idempotency-Key": f"attach-{uuid.uuid4()}"}
    customer_id = first.json()["id"]
    for replayed in (False, True):
        answer = await http.post(
            f"/v1/payment_methods/{pm.id}/attach", data={"customer": customer_id}, headers=attach_headers
        )
        assert answer.status_code == 402
        assert (answer.headers.get("Idempotent-Replayed") == "true") is replayed


async def test_concurrent_request_with_same_key_gets_409(http: httpx.AsyncClient) -> None:
    await add_fault(http, method="POST", path_regex="^/v1/customers$", mode="delay", delay_seconds=0.8)
    headers = {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": f"conc-{uuid.uuid4()}"}
    slow = asyncio.create_task(http.post("/v1/customers", data={"name": "Slow"}, headers=headers))
    await asyncio.sleep(0.3)
    clash = await http.post("/v1/customers", data={"name": "Slow"}, headers=headers)
    assert clash.status_code == 409
    assert clash.json()["error"]["type"] == "idempotency_error"
    first = await slow
    assert first.status_code == 200
    later = await http.post("/v1/customers", data={"name": "Slow"}, headers=headers)
    assert later.json()["id"] == first.json()["id"] and later.headers["Idempotent-Replayed"] == "true"


# -- faults -------------------------------------------------------------------------------
@pytest.mark.parametrize("mode,status", [("error500", 500), ("error503", 503)])
async def test_error_faults(
    mode: str, status: int, base_url: str, http: httpx.AsyncClient, client: stripe.StripeClient
) -> None:
    await add_fault(http, method="POST", path_regex="^/v1/customers$", mode=mode, count=1)
    with pytest.raises(stripe.APIError) as failed:
        await client.v1.customers.create_async(params={"name": "Unlucky"})
    assert failed.value.http_status == status

    await add_fault(http, method="POST", path_regex="^/v1/customers$", mode=mode, count=1)
    key = f"err-{uuid.uuid4()}"
    customer = await make_client(base_url, retries=2).v1.customers.create_async(
        params={"name": "Lucky"}, options={"idempotency_key": key}
    )
    assert customer.name == "Lucky"
    seen = await requests_for(http, idempotency_key=key)
    assert [(r["status"], r["fault"]) for r in seen] == [(status, mode), (200, None)]


async def test_reset_fault(base_url: str, http: httpx.AsyncClient, client: stripe.StripeClient) -> None:
    await add_fault(http, method="POST", path_regex="^/v1/customers$", mode="reset")
    with pytest.raises(stripe.APIConnectionError):
        await client.v1.customers.create_async(params={"name": "Dropped"})

    await add_fault(http, method="POST", path_regex="^/v1/customers$", mode="reset")
    key = f"reset-{uuid.uuid4()}"
    customer = await make_client(base_url, retries=2).v1.customers.create_async(
        params={"name": "Recovered"}, options={"idempotency_key": key}
    )
    assert customer.name == "Recovered"
    seen = await requests_for(http, idempotency_key=key)
    assert [(r["status"], r["delivered"], r["fault"]) for r in seen] == [
        (None, False, "reset"),
        (200, True, None),
    ]


@pytest.mark.parametrize("lost_as", ["reset", "error500"])
async def test_lost_response_is_replayed_not_repeated(
    lost_as: str, http: httpx.AsyncClient, client: stripe.StripeClient, retrying_client: stripe.StripeClient
) -> None:
    customer, methods = await fresh_customer(client, "visa")
    await add_fault(
        http, method="POST", path_regex=r"^/v1/payment_intents$", mode="lost_response", lost_as=lost_as
    )
    key = f"charge-invoice-{uuid.uuid4()}"
    intent = await create_intent(retrying_client, customer, methods["visa"], idempotency_key=key)
    assert intent.status == "requires_confirmation"
    assert await count_intents(client, customer) == 1  # exactly ONE PaymentIntent

    seen = await requests_for(http, method="POST", path_regex=r"^/v1/payment_intents$", idempotency_key=key)
    assert [(r["status"], r["delivered"], r["replayed"]) for r in seen] == [
        (200, False, False),
        (200, True, True),
    ]

    # The same for the confirmation: charged once, the retry sees the stored answer.
    await add_fault(
        http, method="POST", path_regex=r"^/v1/payment_intents/[^/]+/confirm$", mode="lost_response"
    )
    confirmed = await retrying_client.v1.payment_intents.confirm_async(
        intent.id, params={"off_session": True}, options={"idempotency_key": f"confirm-{key}"}
    )
    assert confirmed.status == "succeeded"
    charges = await client.v1.charges.list_async(params={"customer": customer})
    assert len(charges.data) == 1


async def test_lost_response_without_retry_still_charged(
    http: httpx.AsyncClient, client: stripe.StripeClient
) -> None:
    customer, methods = await fresh_customer(client, "visa")
    intent = await create_intent(client, customer, methods["visa"])
    await add_fault(http, method="POST", path_regex=r"/confirm$", mode="lost_response")
    with pytest.raises(stripe.APIConnectionError):
        await client.v1.payment_intents.confirm_async(intent.id, params={"off_session": True})
    # The client saw nothing, but the payment went through: reconcile by retrieving.
    assert (await client.v1.payment_intents.retrieve_async(intent.id)).status == "succeeded"


async def test_delay_fault_timeout_then_retry(
    base_url: str, http: httpx.AsyncClient, client: stripe.StripeClient
) -> None:
    customer, methods = await fresh_customer(client, "visa")
    await add_fault(http, method="POST", path_regex=r"^/v1/payment_intents$", mode="delay", delay_seconds=0.6)
    impatient = make_client(base_url, timeout=0.2)
    with pytest.raises(stripe.APIConnectionError):
        await create_intent(impatient, customer, methods["visa"])
    await asyncio.sleep(0.7)
    assert await count_intents(client, customer) == 1  # the server finished the request anyway

    customer, methods = await fresh_customer(client, "visa")
    await add_fault(http, method="POST", path_regex=r"^/v1/payment_intents$", mode="delay", delay_seconds=1.0)
    patient = make_client(base_url, retries=2, timeout=0.3)
    key = f"slow-{uuid.uuid4()}"
    intent = await create_intent(patient, customer, methods["visa"], idempotency_key=key)
    assert intent.customer == customer
    assert await count_intents(client, customer) == 1
    seen = await requests_for(http, idempotency_key=key)
    assert seen[0]["fault"] == "delay" and seen[-1]["replayed"] is True


# -- control endpoints and odds and ends --------------------------------------------------
async def test_control_endpoints(http: httpx.AsyncClient, client: stripe.StripeClient) -> None:
    bad = await http.post("/_faults", json={"mode": "explode"})
    assert bad.status_code == 400
    await add_fault(http, path_regex="^/v1/nothing$", mode="error500", count=3)
    assert len((await http.get("/_faults")).json()["data"]) == 1
    assert (await http.delete("/_faults")).json() == {"deleted": 1}

    stats = (await http.get("/_stats")).json()
    assert stats["objects"]["customer"] >= 2 and stats["idempotency_keys"] >= 1

    unknown = await http.get("/v1/terminal/readers", headers={"Authorization": f"Bearer {API_KEY}"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "invalid_request_error"
    unauthenticated = await http.get("/v1/customers")
    assert unauthenticated.status_code == 401
    assert not Path("/tmp/localstripe.pickle").exists()


async def test_an_error400_fault_is_a_refusal_and_processes_nothing(http: httpx.AsyncClient,
                                                                    client: stripe.StripeClient) -> None:
    await add_fault(http, method="POST", path_regex="^/v1/customers$", mode="error400", count=1)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.customers.create_async(params={"name": "Refused"})
    assert refused.value.http_status == 400 and refused.value.code == "parameter_invalid"
    customer = await client.v1.customers.create_async(params={"name": "Next"})
    assert customer.name == "Next"  # one use only
