"""`invoicebot check`: ask every configured service, for real, whether it works.

One result per check, each with what was found and, when it fails, the fix. `serve` runs
the same checks at start-up (a WARNING per failure; it starts anyway, so that a passing
outage does not block a deploy) and `GET /readyz` answers with them.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import httpx
import stripe
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.billing import CONTRACT_VERSION
from bot.settings import DatabaseSettings, Settings
from storage.schema import DatabaseUnavailable, head_revision, revision_of

log = logging.getLogger(__name__)

MANIFEST = Path(__file__).resolve().parents[1] / "manifest.yml"
Status = Literal["ok", "warning", "failed"]
SYMBOLS: dict[Status, str] = {"ok": "✓", "warning": "!", "failed": "✗"}

# Each service gets this long in all; a check never hangs `serve`'s start or /readyz.
SERVICE_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class Check:
    service: str  # "settings", "slack", "stripe", "billing", "database"
    name: str  # what was checked, e.g. "token", "scopes"
    status: Status
    detail: str  # what was found
    fix: str = ""  # what to do about it (failures and warnings)

    @property
    def passed(self) -> bool:
        return self.status != "failed"

    def line(self) -> str:
        text = f"{SYMBOLS[self.status]} {self.service} {self.name}: {self.detail}"
        return f"{text} -> {self.fix}" if self.fix else text

    def as_dict(self) -> dict[str, str | bool]:
        return {**asdict(self), "passed": self.passed}


def _ok(service: str, name: str, detail: str, fix: str = "") -> Check:
    return Check(service, name, "ok", detail, fix)


def _warn(service: str, name: str, detail: str, fix: str = "") -> Check:
    return Check(service, name, "warning", detail, fix)


def _fail(service: str, name: str, detail: str, fix: str) -> Check:
    return Check(service, name, "failed", detail, fix)


def manifest_bot_scopes() -> tuple[str, ...]:
    """The bot scopes `manifest.yml` asks for (what tests/unit/test_manifest.py reads); the
    code's own list when the manifest is not next to the code (a wheel install), which that
    test keeps equal to the manifest."""
    from bot.slack_api import BOT_SCOPES  # noqa: PLC0415 - slack_sdk is slow to import

    try:
        import yaml  # noqa: PLC0415

        return tuple(yaml.safe_load(MANIFEST.read_text())["oauth_config"]["scopes"]["bot"])
    except (OSError, ImportError, KeyError, TypeError):
        return BOT_SCOPES


# -- Slack -----------------------------------------------------------------------------------
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9_]+$")


def _signing_secret(settings: Settings) -> Check:
    secret = settings.slack_signing_secret.get_secret_value()
    if secret.strip() != secret or not secret or secret == "your-signing-secret":
        return _fail("slack", "signing secret", "SLACK_SIGNING_SECRET is a placeholder or has spaces around it",
                     "copy the Signing Secret from your Slack app's Basic Information page")
    if re.fullmatch(r"[0-9a-f]{32}", secret):
        return _ok("slack", "signing secret", "32 hex digits, the shape of Slack's signing secrets")
    if urlparse(str(settings.slack_api_url)).hostname == "slack.com":
        return _fail("slack", "signing secret", "SLACK_SIGNING_SECRET is not 32 hex digits, so no request from "
                     "Slack will verify", "copy the Signing Secret (not the Client Secret or a token) from your "
                     "Slack app's Basic Information page")
    # A stand-in (SLACK_API_URL elsewhere) may use any secret: it signs with the same one.
    return _ok("slack", "signing secret", "set (not Slack's 32-hex shape; fine for the Slack stand-in at "
               f"{settings.slack_api_url})")


async def _find_channel(client: AsyncWebClient, wanted: str) -> dict[str, Any] | None:
    """A channel by id (conversations.info) or by name (conversations.list, every page)."""
    if _CHANNEL_ID.match(wanted):
        try:
            return (await client.conversations_info(channel=wanted)).get("channel") or None
        except SlackApiError as exc:
            if exc.response.get("error") == "channel_not_found":
                return None
            raise
    name = wanted.lstrip("#")
    cursor = None
    while True:
        page = await client.conversations_list(types="public_channel,private_channel", exclude_archived=True,
                                               limit=200, cursor=cursor)
        for channel in page.get("channels") or []:
            if channel.get("name") == name:
                return channel
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None


def _scope_header(headers: Any) -> set[str] | None:
    for key, value in dict(headers or {}).items():
        if key.lower() == "x-oauth-scopes":
            text = value[0] if isinstance(value, list) else str(value)
            return {s.strip() for s in text.split(",") if s.strip()}
    return None


async def check_slack(settings: Settings) -> list[Check]:
    from bot.slack_api import slack_client  # noqa: PLC0415

    results = [_signing_secret(settings)]
    if settings.multi_workspace:
        results.append(_ok("slack", "token", "many workspaces (SLACK_CLIENT_ID): each workspace's bot token "
                           "comes from its OAuth install; the notify channel is checked per workspace by "
                           "/invoices notify"))
        if settings.public_url is None:
            results.append(_fail("slack", "OAuth redirect", "PUBLIC_URL is not set, so Slack has nowhere to send "
                                 "an installing workspace back to", "set PUBLIC_URL to this app's https address; "
                                 "Slack's Redirect URL is PUBLIC_URL/slack/oauth_redirect"))
        else:
            results.append(_ok("slack", "OAuth redirect", f"{str(settings.public_url).rstrip('/')}"
                               "/slack/oauth_redirect (the Redirect URL of manifest.yml)"))
        return results
    assert settings.slack_bot_token is not None  # settings guarantee one way to authorize
    token = settings.slack_bot_token.get_secret_value()
    client = slack_client(settings, token)
    reinstall = ("set SLACK_BOT_TOKEN to the Bot User OAuth Token (xoxb-...) on your Slack app's Install App page "
                 "(reinstall the app if it was uninstalled)")
    try:
        auth = await client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error")
        return [*results, _fail("slack", "token", f"auth.test says {error}", reinstall)]
    except Exception as exc:  # noqa: BLE001 - network errors of every kind
        return [*results, _fail("slack", "token", f"cannot reach {settings.slack_api_base} ({type(exc).__name__})",
                                "check SLACK_API_URL (normally https://slack.com/api/) and the network")]
    who = f"{auth.get('user') or auth.get('user_id')} in workspace {auth.get('team')} ({auth.get('team_id')})"
    if not auth.get("bot_id"):
        results.append(_fail("slack", "token", f"{who} is not a bot token", reinstall))
    else:
        results.append(_ok("slack", "token", f"bot {who}"))

    granted = _scope_header(auth.headers)
    wanted = manifest_bot_scopes()
    if granted is None:
        results.append(_warn("slack", "scopes", "Slack did not report the token's scopes (no x-oauth-scopes)"))
    elif missing := [s for s in wanted if s not in granted]:
        results.append(_fail("slack", "scopes", f"the token lacks {', '.join(missing)}",
                             "add them under OAuth & Permissions (or recreate the app from manifest.yml) and "
                             "reinstall the app, then copy the new bot token"))
    else:
        results.append(_ok("slack", "scopes", f"all {len(wanted)} scopes of manifest.yml"))

    results.append(await _notify_channel(client, settings.notify_channel, granted))
    return results


async def _notify_channel(client: AsyncWebClient, wanted: str, granted: set[str] | None) -> Check:
    try:
        channel = await _find_channel(client, wanted)
    except SlackApiError as exc:
        error = exc.response.get("error")
        needed = exc.response.get("needed")
        return _fail("slack", "notify channel", f"cannot look up NOTIFY_CHANNEL {wanted}: {error}"
                     + (f" (needs {needed})" if needed else ""), "grant the scopes of manifest.yml and reinstall")
    except Exception as exc:  # noqa: BLE001
        return _fail("slack", "notify channel", f"cannot look up NOTIFY_CHANNEL {wanted} ({type(exc).__name__})",
                     "check SLACK_API_URL and the network")
    if channel is None:
        return _fail("slack", "notify channel", f"NOTIFY_CHANNEL {wanted} not found, or it is private and the bot "
                     "is not in it", "set NOTIFY_CHANNEL to an existing channel's id (C0123...) or #name, and "
                     "invite the bot there (/invite @invoicebot)")
    label = f"#{channel.get('name')} ({channel.get('id')})"
    if channel.get("is_archived"):
        return _fail("slack", "notify channel", f"{label} is archived", "unarchive it or set another NOTIFY_CHANNEL")
    if channel.get("is_member"):
        return _ok("slack", "notify channel", f"{label}: the bot is a member")
    if channel.get("is_private"):
        return _fail("slack", "notify channel", f"{label} is private and the bot is not in it",
                     f"/invite @invoicebot in #{channel.get('name')}")
    if granted is not None and "chat:write.public" not in granted:
        return _fail("slack", "notify channel", f"{label}: the bot is not a member and lacks chat:write.public",
                     f"/invite @invoicebot in #{channel.get('name')}")
    return _warn("slack", "notify channel", f"{label}: the bot is not a member; it posts there through "
                 "chat:write.public", f"/invite @invoicebot in #{channel.get('name')} to make it a member")


# -- Stripe ----------------------------------------------------------------------------------
async def check_stripe(settings: Settings) -> list[Check]:
    from bot.stripe_gateway import make_client  # noqa: PLC0415

    key = settings.stripe_api_key.get_secret_value()
    results: list[Check] = []
    mode = "test" if key.startswith(("sk_test_", "rk_test_")) else "live" if key.startswith(
        ("sk_live_", "rk_live_")) else None
    dashboard = "copy the secret key (sk_test_... or sk_live_...) from https://dashboard.stripe.com/apikeys"
    if key.startswith("pk_"):
        return [_fail("stripe", "key", "STRIPE_API_KEY is a publishable key (pk_...), which cannot charge",
                      dashboard)]
    client = make_client(key, str(settings.stripe_api_base), max_network_retries=0, timeout=10.0)
    try:
        balance = await client.v1.balance.retrieve_async()
    except stripe.AuthenticationError:
        return [_fail("stripe", "key", "Stripe refused STRIPE_API_KEY (401)", dashboard)]
    except stripe.PermissionError:
        return [_fail("stripe", "key", "STRIPE_API_KEY is a restricted key without read access to the balance",
                      "use a secret key, or a restricted key with write access to PaymentIntents, "
                      "PaymentMethods, Customers and Checkout Sessions and read access to the balance")]
    except stripe.APIConnectionError:
        return [_fail("stripe", "key", f"cannot reach {settings.stripe_api_base}",
                      "check STRIPE_API_BASE (normally https://api.stripe.com) and the network")]
    except stripe.StripeError as exc:
        return [_fail("stripe", "key", f"Stripe answered {exc.http_status}: {exc.user_message or exc}",
                      "check STRIPE_API_KEY and STRIPE_API_BASE")]
    if mode is None:
        mode = "live" if getattr(balance, "livemode", False) else "test"
    results.append(_ok("stripe", "key", f"accepted, {mode} mode" + (
        " (real money moves)" if mode == "live" else " (no real money moves)")))

    secret = settings.stripe_webhook_secret.get_secret_value() if settings.stripe_webhook_secret else ""
    endpoint = f"{str(settings.public_url).rstrip('/')}/stripe/webhook" if settings.public_url else None
    add_endpoint = (f"in Stripe's dashboard (Developers -> Webhooks) add the endpoint {endpoint or 'PUBLIC_URL/stripe/webhook'} "
                    "for payment_intent.* and checkout.session.completed, and set STRIPE_WEBHOOK_SECRET to its "
                    "signing secret (whsec_...)")
    if secret and not secret.startswith("whsec_"):
        results.append(_fail("stripe", "webhook secret", "STRIPE_WEBHOOK_SECRET does not start with whsec_",
                             add_endpoint))
    elif endpoint and not secret:
        results.append(_fail("stripe", "webhook secret", f"PUBLIC_URL is set, so Stripe sends events to "
                             f"{endpoint}, but STRIPE_WEBHOOK_SECRET is empty: every event would be refused",
                             add_endpoint))
    elif secret:
        results.append(_ok("stripe", "webhook secret", f"set, for {endpoint or 'POST /stripe/webhook'}"))
    else:
        results.append(_warn("stripe", "webhook secret", "no PUBLIC_URL and no STRIPE_WEBHOOK_SECRET: Stripe "
                             "events are not expected", "set both for webhooks (bank debits settle through them)"))
    if not settings.public_url:
        results.append(_warn("stripe", "hosted pages", "no PUBLIC_URL: the pay form shows no Add a new card and no "
                             "Authenticate on Stripe button (both are links of this app's own)",
                             "set PUBLIC_URL to this app's https address"))
    return results


# -- the billing API -------------------------------------------------------------------------
def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:2])


async def check_billing(settings: Settings) -> list[Check]:
    base = str(settings.billing_api_url).rstrip("/")
    headers = {"Authorization": f"Bearer {settings.billing_api_token.get_secret_value()}",
               "Accept": "application/json"}
    contract = "docs/billing-api.md"
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10.0) as client:
        try:
            # Any well-formed request proves the token; an address nobody has answers 404.
            access = await client.get("/v1/access", params={"email": "invoicebot-check@invalid.example"})
        except httpx.HTTPError as exc:
            return [_fail("billing", "API", f"cannot reach {base} ({type(exc).__name__})",
                          "check BILLING_API_URL and that the billing backend runs")]
        if access.status_code == 401:
            return [_ok("billing", "API", f"{base} answers"),
                    _fail("billing", "token", "the billing API refused BILLING_API_TOKEN (401)",
                          "set BILLING_API_TOKEN to the token the billing backend issued for invoicebot")]
        if access.status_code not in (200, 404):
            return [_fail("billing", "API", f"{base}/v1/access answered {access.status_code}",
                          f"point BILLING_API_URL at a backend that follows {contract}")]
        results = [_ok("billing", "API", f"{base} answers"), _ok("billing", "token", "accepted")]
        try:
            meta = await client.get("/v1/meta")
            advertised = meta.json().get("contract_version") if meta.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            advertised = None
    if not isinstance(advertised, str):
        results.append(_warn("billing", "contract", f"version not advertised (GET /v1/meta); invoicebot speaks "
                             f"{CONTRACT_VERSION}", f"make sure the backend follows {contract} {CONTRACT_VERSION}"))
    elif _version_tuple(advertised)[:1] != _version_tuple(CONTRACT_VERSION)[:1]:
        results.append(_fail("billing", "contract", f"the backend speaks {advertised}, invoicebot {CONTRACT_VERSION}",
                             f"a different major version is not compatible: see {contract}"))
    elif _version_tuple(advertised) < _version_tuple(CONTRACT_VERSION):
        results.append(_warn("billing", "contract", f"the backend speaks {advertised}, older than invoicebot's "
                             f"{CONTRACT_VERSION}", f"upgrade the backend to {contract} {CONTRACT_VERSION}"))
    else:
        results.append(_ok("billing", "contract", f"version {advertised} (invoicebot speaks {CONTRACT_VERSION})"))
    return results


# -- the database ----------------------------------------------------------------------------
async def check_database(settings: DatabaseSettings) -> list[Check]:
    try:
        revision = await revision_of(settings.database_url)
    except DatabaseUnavailable as exc:
        return [_fail("database", "connection", str(exc), "check DATABASE_URL and that the database server runs")]
    results = [_ok("database", "connection", "reachable")]
    head = head_revision()
    if revision == head:
        results.append(_ok("database", "schema", f"current ({head})"))
    else:
        results.append(_fail("database", "schema", f"at {revision or 'an empty schema'}, not {head}",
                             "run `invoicebot db upgrade`"))
    return results


async def _bounded(service: str, check: Callable[[], Awaitable[list[Check]]]) -> list[Check]:
    try:
        return await asyncio.wait_for(check(), SERVICE_TIMEOUT)
    except TimeoutError:
        return [_fail(service, "answer", f"no answer within {SERVICE_TIMEOUT:.0f} s", "check the address and network")]
    except Exception as exc:  # noqa: BLE001 - a check reports, it never raises
        log.debug("%s check failed", service, exc_info=True)
        return [_fail(service, "check", f"could not be run ({type(exc).__name__})", "run with -v for details")]


async def run_checks(settings: Settings) -> list[Check]:
    """Every check of every service, the services asked at the same time."""
    groups = await asyncio.gather(
        _bounded("slack", lambda: check_slack(settings)),
        _bounded("stripe", lambda: check_stripe(settings)),
        _bounded("billing", lambda: check_billing(settings)),
        _bounded("database", lambda: check_database(settings)),
    )
    return [check for group in groups for check in group]


def settings_failures(problems: list[str]) -> list[Check]:
    """Settings that stop every other check, as failed checks (`check` still tries the database)."""
    results = []
    for problem in problems:
        # "NAME is missing: what it expects" -> the name, what is wrong, and what to set.
        head, _, expects = problem.partition(": ")
        name, _, wrong = head.partition(" ")
        results.append(_fail("settings", name, wrong or head, expects or "see .env.example"))
    return results
