"""localstripe, in-process, with the compatibility patches invoicebot needs.

`create_app()` builds a fresh aiohttp Application: our routes first, then every route of
localstripe's module-level `localstripe.server.app` (re-using its handlers, minus the ones
we replace), behind our middlewares.  localstripe's own `app` is never started and is
left untouched.  `serve()` runs it (`python -m sandbox.stripe --port 8420`).

The localstripe *store* is a module global, so there is one fake Stripe per process.

Patches to localstripe (applied by `patches.apply_patches()`, once, when `create_app()` is
first called -- importing this module changes nothing):

1.  No disk persistence.  localstripe pickles the whole store to /tmp/localstripe.pickle
    on every write (slow as the store grows, and shared by every instance on the machine)
    and reloads it at start.  Both are no-ops here: the store is in memory only.
2.  `POST /v1/payment_intents/{id}/confirm` accepts `off_session` (true/false/one_off/
    recurring), `payment_method` (also to retry after a failure) and `return_url`.
    localstripe rejected all three.  Confirming a 3-D Secure card still ends in
    `requires_action` (localstripe's behaviour) even off_session -- real Stripe answers
    402 `authentication_required` and leaves `requires_payment_method`; callers must handle
    both.  With `return_url`, `next_action` is `redirect_to_url` -> `/authenticate/{id}`.
    Confirming an intent in `requires_action` again with a `return_url` (and no
    payment_method) gives that redirect without a new charge attempt: the step that, on
    Stripe, confirms the `requires_payment_method` intent on-session.
    Confirming in the wrong state gives 400 `payment_intent_unexpected_state`.
3.  PaymentIntent create also accepts `description`, `receipt_email`,
    `statement_descriptor`, `statement_descriptor_suffix` (stored and returned), keeps
    `payment_method_types`, refuses a PaymentMethod attached to another customer, and
    `GET /v1/payment_intents` takes `customer` and lists newest first.
4.  402s look like Stripe's card errors: `type: card_error`, `decline_code`, `doc_url`,
    and -- when raised while confirming -- the `payment_intent` and `payment_method`.
    404s get `code: resource_missing`; unknown /v1 URLs get a JSON 404, crashes a JSON 500.
5.  PaymentMethods: `card.brand` comes from the number (visa, mastercard, amex, discover,
    diners, jcb, unionpay, unknown -- localstripe always said visa); card numbers may have
    12-19 digits (amex has 15) and must pass Luhn (else 402 `incorrect_number`, as Stripe);
    `cvc` is optional; `type=us_bank_account` ({account_holder_type, account_number,
    routing_number, account_type}, billing_details.name required) is supported; SEPA
    IBANs are checksum-validated and need billing_details name + email (as Stripe).
6.  `GET /v1/payment_methods?customer=&type=` accepts card, sepa_debit, us_bank_account
    or no type (all), newest first; new `GET /v1/customers/{id}/payment_methods`
    (optional `type`) and `GET /v1/customers/{id}/payment_methods/{pm}`.
7.  Charging: a saved card whose expiry is past is declined (`expired_card`); failures
    carry a code fitting the method (SEPA DE62...3001 -> `insufficient_funds`, ACH test
    accounts -> their documented codes).  Bank debits (sepa_debit, us_bank_account) stay
    `processing` until they settle 0.5 s later, or after `--bank-debit-delay` seconds /
    `PUT /_config/bank_debits {"settle_seconds": ..}` (localstripe said `succeeded` at once);
    `payment_intent.processing` / `payment_intent.requires_action` webhooks are sent.
8.  Checkout Sessions (`mode=setup` only): `POST /v1/checkout/sessions`,
    `GET /v1/checkout/sessions[/{id}]`, `POST /v1/checkout/sessions/{id}/expire`;
    `url` is `GET /checkout/{id}` on this server, a Stripe-like "Save your card" page whose
    form creates the card, attaches it (localstripe's decline rules; the error is shown on
    the page), completes the SetupIntent and session, sends `payment_method.attached`,
    `setup_intent.succeeded` and `checkout.session.completed` webhooks, and redirects to
    `success_url` (`{CHECKOUT_SESSION_ID}` substituted).
9.  3-D Secure: `GET /authenticate/{payment_intent}` with "Complete authentication" /
    "Fail authentication" buttons, using localstripe's `_api_authenticate` (success ->
    charge + `payment_intent.succeeded`; failure -> `payment_intent.payment_failed`).
10. Idempotency keys (ignored by localstripe), fault injection and a request log: see
    `sandbox.stripe.middleware`.
11. Webhooks: localstripe's `POST /_config/webhooks/{id}` {url, secret, events?} is kept;
    its `Stripe-Signature: t=..,v1=..` header verifies with `stripe.Webhook.construct_event`.
    localstripe sleeps 1 s before delivering each event (events are delivered concurrently,
    not retried, and carry `api_version` 2017-08-15).

Control endpoints (no API key needed): `POST/GET/DELETE /_faults`, `GET/DELETE /_requests`,
`GET /_stats`, `DELETE /_config/data` (empties the store and our state), `GET/PUT
/_config/bank_debits`, and
localstripe's `POST /_config/webhooks/{id}`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import signal
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from localstripe import resources as ls
from localstripe import server as ls_server
from localstripe.errors import UserError

from . import pages, patches
from .middleware import (
    FAULTS,
    IDEMPOTENCY,
    IDEMPOTENCY_TTL_SECONDS,
    REQUEST_LOG,
    FaultInjector,
    Handler,
    IdempotencyStore,
    RequestLog,
    delay_fault_middleware,
    edge_fault_middleware,
    error_middleware,
    idempotency_middleware,
    json_response,
    request_log_middleware,
    stripe_error,
)

__all__ = ["create_app", "main", "serve"]

log = logging.getLogger(__name__)

PUBLIC_URL = web.AppKey("sandbox_stripe.public_url", str)
MERCHANT_NAME = web.AppKey("sandbox_stripe.merchant_name", str)

# Paths that need no API key: our control endpoints and the "Stripe-hosted" pages.
UNAUTHENTICATED_PREFIXES: tuple[str, ...] = (
    "/_faults",
    "/_requests",
    "/_stats",
    "/_config/",
    "/checkout/",
    "/authenticate/",
    "/js.stripe.com/",
)

# localstripe routes we replace with our own handlers.
_REPLACED_ROUTES = frozenset({("POST", "/v1/payment_intents/{id}/confirm"), ("DELETE", "/_config/data")})


# -- helpers ------------------------------------------------------------------------------
def _public_base(request: web.Request) -> str:
    configured = request.app[PUBLIC_URL]
    return configured or f"{request.scheme}://{request.host}"


def _json(obj: Any, expand: Any = None) -> web.Response:
    return json_response(obj._export(expand=expand))


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html")


async def _post_params(request: web.Request) -> dict[str, Any]:
    data = await ls_server.get_post_data(request)
    return dict(data) if data else {}


def _query_params(request: web.Request) -> dict[str, Any]:
    return dict(ls_server.unflatten_data(request.query))


def _error_message(exc: UserError) -> str:
    return str(exc.body.get("error", {}).get("message") or "Something went wrong.")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """localstripe's API-key check, except for our control endpoints and hosted pages."""
    if request.path.startswith(UNAUTHENTICATED_PREFIXES):
        return await handler(request)
    response: web.StreamResponse = await ls_server.auth_middleware(request, handler)
    return response


# -- API handlers -------------------------------------------------------------------------
async def confirm_payment_intent(request: web.Request) -> web.Response:
    params = await _post_params(request)
    expand = params.pop("expand", None)
    intent = patches.confirm_payment_intent(
        request.match_info["id"], authenticate_base_url=_public_base(request), **params
    )
    return _json(intent, expand)


async def list_customer_payment_methods(request: web.Request) -> web.Response:
    params = _query_params(request)
    expand = params.pop("expand", None)
    return _json(patches.list_customer_payment_methods(request.match_info["id"], **params), expand)


async def retrieve_customer_payment_method(request: web.Request) -> web.Response:
    params = _query_params(request)
    pm = patches.retrieve_customer_payment_method(request.match_info["id"], request.match_info["pm"])
    return _json(pm, params.get("expand"))


async def create_checkout_session(request: web.Request) -> web.Response:
    params = await _post_params(request)
    expand = params.pop("expand", None)
    return _json(patches.create_checkout_session(_public_base(request), **params), expand)


async def retrieve_checkout_session(request: web.Request) -> web.Response:
    params = _query_params(request)
    return _json(patches.retrieve_checkout_session(request.match_info["id"]), params.get("expand"))


async def list_checkout_sessions(request: web.Request) -> web.Response:
    params = _query_params(request)
    expand = params.pop("expand", None)
    return _json(patches.list_checkout_sessions("/v1/checkout/sessions", **params), expand)


async def expire_checkout_session(request: web.Request) -> web.Response:
    params = await _post_params(request)
    expand = params.pop("expand", None)
    return _json(patches.expire_checkout_session(request.match_info["id"], **params), expand)


# -- hosted pages -------------------------------------------------------------------------
def _find(object_name: str, object_id: str) -> Any | None:
    return ls.store.get(f"{object_name}:{object_id}")


def _success_url(session: Any) -> str | None:
    url = session.success_url
    return url.replace("{CHECKOUT_SESSION_ID}", session.id) if url else None


def _customer_label(session: Any) -> str | None:
    customer = _find("customer", session.customer) if session.customer else None
    if customer is None:
        return None
    return str(customer.name or customer.email or customer.id)


def _closed_session_page(request: web.Request, session: Any) -> web.Response:
    merchant = request.app[MERCHANT_NAME]
    if session.status == "complete":
        return _html(
            pages.message_page(
                "Card saved", "Your card has been saved.", merchant=merchant, link=_success_url(session)
            )
        )
    return _html(
        pages.message_page(
            "Session expired",
            "This checkout session has expired. Ask for a new link.",
            merchant=merchant,
            link=session.cancel_url,
            link_text="Go back",
            ok=False,
        ),
        status=410,
    )


async def checkout_page(request: web.Request) -> web.Response:
    merchant = request.app[MERCHANT_NAME]
    session = _find("checkout.session", request.match_info["id"])
    if session is None:
        return _html(
            pages.message_page("Not found", "No such checkout session.", merchant=merchant, ok=False), 404
        )
    patches.retrieve_checkout_session(session.id)  # expires it if due
    if session.status != "open":
        return _closed_session_page(request, session)
    return _html(pages.checkout_page(session, merchant=merchant, customer_label=_customer_label(session)))


_EXPIRY = re.compile(r"^\s*(\d{1,2})\s*/?\s*(\d{2}|\d{4})\s*$")


async def checkout_submit(request: web.Request) -> web.Response:
    merchant = request.app[MERCHANT_NAME]
    session = _find("checkout.session", request.match_info["id"])
    if session is None:
        return _html(
            pages.message_page("Not found", "No such checkout session.", merchant=merchant, ok=False), 404
        )
    patches.retrieve_checkout_session(session.id)
    if session.status != "open":
        return _closed_session_page(request, session)
    form = await request.post()
    values = {key: str(form.get(key, "")).strip() for key in ("number", "exp", "cvc", "name")}

    def again(message: str, status: int) -> web.Response:
        shown = {key: values[key] for key in ("number", "exp", "name")}
        page = pages.checkout_page(
            session, merchant=merchant, customer_label=_customer_label(session), error=message, values=shown
        )
        return _html(page, status)

    number = re.sub(r"[\s-]", "", values["number"])
    if not number:
        return again("Your card number is incomplete.", 400)
    expiry = _EXPIRY.match(values["exp"])
    if expiry is None:
        return again("Your card's expiration date is incomplete.", 400)
    month, year = int(expiry.group(1)), int(expiry.group(2))
    if year < 100:
        year += 2000
    try:
        patches.complete_checkout_session(
            session.id,
            number=number,
            exp_month=month,
            exp_year=year,
            cvc=values["cvc"] or None,
            name=values["name"] or None,
        )
    except UserError as exc:
        return again(_error_message(exc), exc.code)
    success = _success_url(session)
    if success:
        raise web.HTTPSeeOther(success)
    return _closed_session_page(request, session)


async def authenticate_page(request: web.Request) -> web.Response:
    merchant = request.app[MERCHANT_NAME]
    intent = _find("payment_intent", request.match_info["id"])
    if intent is None:
        return _html(pages.message_page("Not found", "No such payment.", merchant=merchant, ok=False), 404)
    return_url = request.query.get("return_url")
    if intent.status != "requires_action":
        return _html(
            pages.message_page(
                "Nothing to confirm",
                f"This payment does not need authentication (status: {intent.status}).",
                merchant=merchant,
                link=return_url,
                ok=intent.status in ("succeeded", "processing"),
            )
        )
    return _html(pages.authenticate_page(intent, merchant=merchant, return_url=return_url))


async def authenticate_submit(request: web.Request) -> web.Response:
    merchant = request.app[MERCHANT_NAME]
    intent = _find("payment_intent", request.match_info["id"])
    if intent is None:
        return _html(pages.message_page("Not found", "No such payment.", merchant=merchant, ok=False), 404)
    form = await request.post()
    action = str(form.get("action", ""))
    return_url = str(form.get("return_url", "")) or request.query.get("return_url")
    if action not in ("complete", "fail"):
        return _html(
            pages.authenticate_page(
                intent, merchant=merchant, return_url=return_url, error="Choose an outcome."
            ),
            400,
        )
    error: str | None = None
    try:
        patches.authenticate_payment_intent(intent.id, success=action == "complete")
    except UserError as exc:
        if exc.code != 402:  # not awaiting authentication
            return _html(
                pages.message_page(
                    "Cannot authenticate", _error_message(exc), merchant=merchant, link=return_url, ok=False
                ),
                exc.code,
            )
        error = _error_message(exc)  # authenticated, then the charge was declined
    succeeded = intent.status in ("succeeded", "processing", "requires_capture")
    if return_url:
        query = urlencode(
            {
                "payment_intent": intent.id,
                "payment_intent_client_secret": intent.client_secret,
                "redirect_status": "succeeded" if succeeded else "failed",
            }
        )
        raise web.HTTPSeeOther(return_url + ("&" if "?" in return_url else "?") + query)
    if succeeded:
        message = f"Authentication complete. The payment is {intent.status}."
    elif error:
        message = f"Authentication complete, but the payment failed: {error}"
    else:
        message = "Authentication failed. The payment was not made."
    return _html(
        pages.message_page(
            "Payment " + ("confirmed" if succeeded else "failed"), message, merchant=merchant, ok=succeeded
        )
    )


# -- control endpoints --------------------------------------------------------------------
async def add_fault(request: web.Request) -> web.Response:
    try:
        spec = await request.json()
    except ValueError:
        return stripe_error(400, "invalid_request_error", "POST /_faults takes a JSON object")
    try:
        rule = request.app[FAULTS].add(spec)
    except ValueError as exc:
        return stripe_error(400, "invalid_request_error", str(exc))
    return json_response(rule.to_json())


async def list_faults(request: web.Request) -> web.Response:
    return json_response({"data": [rule.to_json() for rule in request.app[FAULTS].rules()]})


async def clear_faults(request: web.Request) -> web.Response:
    return json_response({"deleted": request.app[FAULTS].clear()})


async def list_requests(request: web.Request) -> web.Response:
    query = request.query
    try:
        records = request.app[REQUEST_LOG].records(
            method=query.get("method"),
            path_regex=query.get("path_regex"),
            idempotency_key=query.get("idempotency_key"),
        )
    except re.error as exc:
        return stripe_error(400, "invalid_request_error", f"path_regex: {exc}")
    return json_response({"data": [record.to_json() for record in records]})


async def clear_requests(request: web.Request) -> web.Response:
    request.app[REQUEST_LOG].clear()
    return json_response({"deleted": True})


async def stats(request: web.Request) -> web.Response:
    objects: dict[str, int] = {}
    for key in list(ls.store.keys()):
        kind = key.split(":", 1)[0]
        objects[kind] = objects.get(kind, 0) + 1
    return json_response(
        {
            "objects": objects,
            "requests_logged": len(request.app[REQUEST_LOG]),
            "idempotency_keys": len(request.app[IDEMPOTENCY]),
            "faults": len(request.app[FAULTS].rules()),
        }
    )


async def flush_data(request: web.Request) -> web.Response:
    """localstripe's `DELETE /_config/data`, also forgetting keys, faults and the log."""
    ls.store.clear()
    request.app[IDEMPOTENCY].clear()
    request.app[FAULTS].clear()
    request.app[REQUEST_LOG].clear()
    return web.Response()


async def bank_debits_config(request: web.Request) -> web.Response:
    """`GET`/`PUT /_config/bank_debits` {"settle_seconds": 20}: how long a bank debit stays
    `processing` before it settles (0.5 s unless set)."""
    if request.method == "PUT":
        try:
            data = await request.json()
            patches.set_bank_debit_settle_seconds(float(data["settle_seconds"]))
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": {"message": f"settle_seconds: {exc}"}}, status=400)
    return web.json_response({"settle_seconds": patches.bank_debit_settle_seconds()})


# -- the application ----------------------------------------------------------------------
def create_app(
    *,
    public_url: str | None = None,
    merchant_name: str = "invoicebot (sandbox)",
    idempotency_ttl: float = IDEMPOTENCY_TTL_SECONDS,
) -> web.Application:
    """localstripe's API with our patches, middlewares and routes (a new app per call).

    `public_url` is the base of the hosted-page URLs handed out (Checkout `url`,
    3DS `redirect_to_url`); by default it is taken from each request's Host header.
    """
    patches.apply_patches()

    app = web.Application(
        middlewares=[
            request_log_middleware,
            edge_fault_middleware,
            error_middleware,
            auth_middleware,
            idempotency_middleware,
            delay_fault_middleware,
        ]
    )
    app[PUBLIC_URL] = (public_url or "").rstrip("/")
    app[MERCHANT_NAME] = merchant_name
    app[REQUEST_LOG] = RequestLog()
    app[FAULTS] = FaultInjector()
    app[IDEMPOTENCY] = IdempotencyStore(ttl=idempotency_ttl)
    app.on_response_prepare.append(ls_server.add_cors_headers)

    router = app.router
    # Ours first (more specific paths, and the replacements).
    router.add_post("/v1/payment_intents/{id}/confirm", confirm_payment_intent)
    router.add_get("/v1/customers/{id}/payment_methods", list_customer_payment_methods, allow_head=False)
    router.add_get(
        "/v1/customers/{id}/payment_methods/{pm}", retrieve_customer_payment_method, allow_head=False
    )
    router.add_post("/v1/checkout/sessions", create_checkout_session)
    router.add_get("/v1/checkout/sessions", list_checkout_sessions, allow_head=False)
    router.add_get("/v1/checkout/sessions/{id}", retrieve_checkout_session, allow_head=False)
    router.add_post("/v1/checkout/sessions/{id}/expire", expire_checkout_session)
    router.add_get("/checkout/{id}", checkout_page)
    router.add_post("/checkout/{id}", checkout_submit)
    router.add_get("/authenticate/{id}", authenticate_page)
    router.add_post("/authenticate/{id}", authenticate_submit)
    router.add_post("/_faults", add_fault)
    router.add_get("/_faults", list_faults, allow_head=False)
    router.add_delete("/_faults", clear_faults)
    router.add_get("/_requests", list_requests, allow_head=False)
    router.add_delete("/_requests", clear_requests)
    router.add_get("/_stats", stats, allow_head=False)
    router.add_delete("/_config/data", flush_data)
    router.add_get("/_config/bank_debits", bank_debits_config, allow_head=False)
    router.add_put("/_config/bank_debits", bank_debits_config)

    # Then localstripe's own routes, in their original order, re-using its handlers.
    for route in ls_server.app.router.routes():
        path = route.resource.canonical if route.resource is not None else None
        if path is None or (route.method, path) in _REPLACED_ROUTES:
            continue
        router.add_route(route.method, path, _as_coroutine(route.handler))
    return app


def _as_coroutine(handler: Any) -> Any:
    """localstripe has plain-function handlers, which aiohttp deprecates."""
    if asyncio.iscoroutinefunction(handler):
        return handler

    async def call(request: web.Request) -> web.StreamResponse:
        response: web.StreamResponse = handler(request)
        return response

    return call


async def _serve(
    host: str,
    port: int,
    *,
    public_url: str | None,
    access_log: bool,
    seed_profiles: Sequence[str],
) -> None:
    app = create_app(public_url=public_url)
    access_logger = logging.getLogger("aiohttp.access") if access_log else None
    runner = web.AppRunner(app, access_log=access_logger)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    shown_host = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
    url = f"http://{shown_host}:{bound_port}"
    print(f"sandbox.stripe: listening on {url}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # e.g. not the main thread
            loop.add_signal_handler(signum, stop.set)
    try:
        if seed_profiles:
            await _seed_and_print(url, seed_profiles)
        await stop.wait()
    finally:
        await runner.cleanup()


async def _seed_and_print(url: str, profiles: Sequence[str]) -> None:
    import json

    import stripe

    from .seed import seed_customers

    client = stripe.StripeClient(
        api_key="sk_test_sandbox",
        base_addresses={"api": url},
        http_client=stripe.HTTPXClient(),
        max_network_retries=0,
    )
    seeded = await seed_customers(client, list(profiles))
    print(json.dumps({profile: s.to_json() for profile, s in seeded.items()}), flush=True)


def serve(
    host: str = "127.0.0.1",
    port: int = 8420,
    *,
    public_url: str | None = None,
    access_log: bool = False,
    seed_profiles: Sequence[str] = (),
) -> None:
    """Run the fake Stripe until SIGINT/SIGTERM; prints one `listening on URL` line.

    `port=0` picks a free port (the printed URL has the real one).  With
    `seed_profiles`, seeds those billing profiles and prints their ids as one JSON line.
    """
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            _serve(host, port, public_url=public_url, access_log=access_log, seed_profiles=seed_profiles)
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.stripe", description="Fake Stripe (patched localstripe) for tests and demos."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420, help="0 picks a free port")
    parser.add_argument("--public-url", help="base URL for hosted pages (default: from the Host header)")
    parser.add_argument("--seed", default="", help="comma-separated billing profile ids to seed")
    parser.add_argument("--bank-debit-delay", type=float, default=patches.LOCALSTRIPE_SETTLE_SECONDS,
                        metavar="SECONDS", help="how long bank debits stay processing before they settle (0.5)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log requests and webhooks to stderr")
    args = parser.parse_args(argv)
    patches.set_bank_debit_settle_seconds(args.bank_debit_delay)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(message)s",
    )
    serve(
        args.host,
        args.port,
        public_url=args.public_url,
        access_log=args.verbose,
        seed_profiles=[p.strip() for p in args.seed.split(",") if p.strip()],
    )
