"""`invoicebot demo`: the whole product on this machine, in a browser, with no accounts.

Starts, each as its own process listening on 127.0.0.1 only:

* the fake Stripe (`sandbox.stripe`, patched localstripe, in memory), with a customer for
  each billing profile that has cards: Visa 4242 (the default), Mastercard 4444, Visa 0341
  (declined when charged), Visa 3155 (needs 3-D Secure), a SEPA bank account (bank debit,
  cleared after BANK_DEBIT_DELAY_S) and an expired card (which the bot does not offer);
* the billing API sandbox (`sandbox.billing`), seeded with the demo profiles, users and
  invoices and those Stripe customers;
* the Slack stand-in (`sandbox.slack`) with the demo people and #billing, whose web page
  (on `--port`) is the demo's user interface;
* the bot: `invoicebot db upgrade`, then `invoicebot serve`, configured like production
  but pointed at the three stand-ins (SQLite database in the data folder); the fake
  Stripe sends it signed webhooks, as Stripe would.

Prints one address to open, and stops everything on Ctrl-C or SIGTERM. Data and logs live
in `./.invoicebot-demo/` (or `$INVOICEBOT_DEMO_DIR`); every run starts from fresh seed data
unless `--keep` (then the billing sandbox's and the bot's databases are kept; Stripe and
Slack are in memory and always start afresh).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

import httpx

from sandbox.processes import Process, ProcessError, die_with_parent, free_port

DIR_ENV = "INVOICEBOT_DEMO_DIR"
DEFAULT_DIR = ".invoicebot-demo"
HOST = "127.0.0.1"

# Made-up secrets: the four processes only ever talk to each other, on loopback.
BOT_TOKEN = "xoxb-demo-bot-token"
SIGNING_SECRET = "demo-signing-secret"
STRIPE_KEY = "sk_test_demo"
WEBHOOK_SECRET = "whsec_demo_webhook_secret"
BILLING_TOKEN = "demo-billing-token"
NOTIFY_CHANNEL = "C_BILLING"

# Bank debits (the SEPA account) stay "processing" this long before they clear, so that a
# person sees the Processing state and then the second notice (tests keep 0.5 s).
BANK_DEBIT_DELAY_S = 20.0
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 10.0

# The settings the bot reads; never inherited from the caller's environment.
_BOT_SETTINGS = ("SLACK_", "STRIPE_", "BILLING_", "DATABASE_URL", "NOTIFY_CHANNEL", "PUBLIC_URL", "LOG_FORMAT",
                 "LOG_LEVEL")
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


class DemoError(Exception):
    """The demo cannot start; the message says why and where to look."""


class _Stop(BaseException):
    """SIGTERM/SIGHUP: stop like Ctrl-C."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


@dataclass
class Helper(Process):
    """One process of the demo: a shared `Process` that dies with the demo and speaks of
    itself by a title in error messages."""

    title: str = ""
    die_with_parent: bool = True

    def wait_until_up(self, deadline: float) -> None:  # type: ignore[override]
        try:
            super().wait_until_up(timeout=max(0.1, deadline - time.monotonic()))
        except ProcessError:
            assert self.popen is not None
            what = (f"stopped while starting (exit code {self.popen.returncode})" if self.popen.poll() is not None
                    else "did not start in time")
            raise DemoError(f"{self.title} {what}. Last lines of {self.log_path}:\n{self.tail()}") from None

    def start(self) -> None:  # type: ignore[override]
        self.launch()

    def signal(self, signum: int) -> None:
        self.send_signal(signum)

    def wait_stopped(self, deadline: float) -> None:
        if self.popen is None:
            return
        try:
            self.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.send_signal(signal.SIGKILL)
            self.popen.wait()

    def tail(self, lines: int = 25) -> str:
        return "\n".join("    " + line for line in super().tail(lines).splitlines()) or "(no log)"


class Demo:
    def __init__(self, folder: Path, port: int, keep: bool) -> None:
        self.folder = folder
        self.logs = folder / "logs"
        self.keep = keep
        self.page_port = port or free_port()
        self.stripe_port, self.billing_port, self.bot_port = free_port(), free_port(), free_port()
        self.helpers: list[Helper] = []
        self._migration: subprocess.Popen[bytes] | None = None
        self._lock_file: IO[str] | None = None

    # -- addresses ---------------------------------------------------------------------
    @property
    def page_url(self) -> str:
        return f"http://{HOST}:{self.page_port}/"

    def url(self, port: int) -> str:
        return f"http://{HOST}:{port}"

    # -- the data folder -----------------------------------------------------------------
    def _prepare_folder(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self._lock_file = (self.folder / "demo.lock").open("w")
        try:
            import fcntl  # noqa: PLC0415 - POSIX only

            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:
            pass
        except OSError:
            raise DemoError(f"Another invoicebot demo is running with the data folder {self.folder}. Stop it "
                            f"first, or give this one its own folder with {DIR_ENV}=path.") from None
        if not self.keep:
            # Only our own files: the folder may be one the user chose.
            for pattern in ("billing.db*", "invoicebot.db*", "demo.json", "logs/*.log"):
                for path in self.folder.glob(pattern):
                    path.unlink(missing_ok=True)
        stamp = f"\n===== invoicebot demo started {dt.datetime.now().isoformat(timespec='seconds')} =====\n"
        for name in ("stripe", "billing", "slack", "bot"):
            with (self.logs / f"{name}.log").open("a") as log:
                log.write(stamp)

    # -- environments ------------------------------------------------------------------
    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_BOT_SETTINGS)}
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = str(_PROJECT_ROOT) + (os.pathsep + path if path else "")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def bot_env(self) -> dict[str, str]:
        env = self._base_env()
        env.update(
            SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=f"{self.url(self.page_port)}/api/",
            STRIPE_API_KEY=STRIPE_KEY, STRIPE_API_BASE=self.url(self.stripe_port), STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            BILLING_API_URL=self.url(self.billing_port), BILLING_API_TOKEN=BILLING_TOKEN,
            DATABASE_URL=f"sqlite:///{self.folder / 'invoicebot.db'}", NOTIFY_CHANNEL=NOTIFY_CHANNEL,
            PUBLIC_URL=self.url(self.bot_port), LOG_FORMAT="text", LOG_LEVEL="INFO",
        )
        return env

    def _helper(self, name: str, title: str, argv: list[str], health_url: str,
                env: dict[str, str] | None = None) -> Helper:
        helper = Helper(name=name, title=title, argv=[sys.executable, *argv], env=env or self._base_env(),
                        cwd=self.folder, log_path=self.logs / f"{name}.log", health_url=health_url)
        self.helpers.append(helper)
        return helper

    # -- start, watch, stop ----------------------------------------------------------------
    def start(self) -> None:
        if not _port_is_free(self.page_port):
            raise DemoError(f"Port {self.page_port} on {HOST} is already in use (is a demo already running?). "
                            f"Stop that, or choose another port: invoicebot demo --port {self.page_port + 1}")
        self._prepare_folder()
        deadline = time.monotonic() + START_TIMEOUT_S
        stripe_url, billing_url, bot_url = (self.url(p) for p in (self.stripe_port, self.billing_port, self.bot_port))

        stripe = self._helper("stripe", "The fake Stripe", [
            "-m", "sandbox.stripe", "--host", HOST, "--port", str(self.stripe_port),
            "--bank-debit-delay", str(BANK_DEBIT_DELAY_S)], f"{stripe_url}/_requests")
        slack = self._helper("slack", "The Slack stand-in", [
            "-m", "sandbox.slack", "--host", HOST, "--port", str(self.page_port),
            "--request-url", f"{bot_url}/slack/events", "--bot-token", BOT_TOKEN,
            "--signing-secret", SIGNING_SECRET, "--log-level", "warning",
        ], f"{self.url(self.page_port)}/_standin/health")
        stripe.start()
        slack.start()
        migrate = self._migration = self._migrate()

        stripe.wait_until_up(deadline)
        from sandbox.run import seed_stripe  # noqa: PLC0415 - imports stripe-python

        try:
            customers = seed_stripe(stripe_url, api_key=STRIPE_KEY)
        except Exception as exc:  # noqa: BLE001
            raise DemoError(f"Could not create the Stripe customers: {type(exc).__name__}: {exc}") from exc
        billing = self._helper("billing", "The billing sandbox", [
            "-m", "sandbox.billing", "--host", HOST, "--port", str(self.billing_port),
            "--db", str(self.folder / "billing.db"), "--token", BILLING_TOKEN,
            *(() if self.keep else ("--fresh",)),
            *(arg for profile, customer in customers.items() for arg in ("--stripe-customer", f"{profile}={customer}")),
        ], f"{billing_url}/invoices/none")
        billing.start()

        try:
            code = migrate.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            migrate.kill()
            raise DemoError("Preparing the bot's database took too long.") from None
        if code != 0:
            raise DemoError(f"Preparing the bot's database failed (`invoicebot db upgrade`, exit code {code}). "
                            f"See {self.logs / 'bot.log'}.")
        billing.wait_until_up(deadline)
        slack.wait_until_up(deadline)
        bot = self._helper("bot", "The bot", ["-m", "handlers.entry", "serve", "--host", HOST, "--port", str(self.bot_port)],
                           f"{bot_url}/healthz", env=self.bot_env())
        bot.start()
        bot.wait_until_up(deadline)
        # The fake Stripe signs and sends its events (bank debits clearing, 3-D Secure done,
        # a card saved) to the bot, as Stripe would; registered once the bot listens (events
        # left over from seeding may still arrive: the bot ignores them).
        try:
            httpx.post(f"{stripe_url}/_config/webhooks/demo", timeout=10,
                       data={"url": f"{bot_url}/stripe/webhook", "secret": WEBHOOK_SECRET}).raise_for_status()
        except httpx.HTTPError as exc:
            raise DemoError(f"Could not point the fake Stripe's webhooks at the bot: {exc}") from exc
        self._write_details(customers)

    def _migrate(self) -> subprocess.Popen[bytes]:
        with (self.logs / "bot.log").open("ab") as log:
            return subprocess.Popen([sys.executable, "-m", "handlers.entry", "db", "upgrade"], env=self.bot_env(),
                                    cwd=self.folder, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=die_with_parent())  # noqa: PLW1509 - as in Process.launch

    def _write_details(self, customers: dict[str, str]) -> None:
        """What runs where, for the curious (and for debugging): demo.json."""
        details = {
            "open": self.page_url,
            "slack_standin": {"url": self.url(self.page_port), "bot_token": BOT_TOKEN,
                              "signing_secret": SIGNING_SECRET},
            "bot": {"url": self.url(self.bot_port), "database": str(self.folder / "invoicebot.db")},
            "billing": {"url": self.url(self.billing_port), "token": BILLING_TOKEN,
                        "database": str(self.folder / "billing.db")},
            "stripe": {"url": self.url(self.stripe_port), "api_key": STRIPE_KEY, "webhook_secret": WEBHOOK_SECRET,
                       "customers": customers},
            "logs": {h.name: str(h.log_path) for h in self.helpers},
            "pids": {h.name: h.popen.pid for h in self.helpers if h.popen is not None},
        }
        (self.folder / "demo.json").write_text(json.dumps(details, indent=2) + "\n")

    def watch(self) -> int:
        """Until Ctrl-C/SIGTERM (0), or until a helper stops by itself (1)."""
        while True:
            for helper in self.helpers:
                if helper.popen is not None and helper.popen.poll() is not None:
                    print(f"\ninvoicebot demo: {helper.title.lower()} stopped unexpectedly (exit code "
                          f"{helper.popen.returncode}). Last lines of {helper.log_path}:\n{helper.tail()}",
                          file=sys.stderr, flush=True)
                    return 1
            time.sleep(0.5)

    def stop(self) -> None:
        if self._migration is not None and self._migration.poll() is None:
            self._migration.kill()
            self._migration.wait()
        for helper in reversed(self.helpers):
            helper.signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for helper in reversed(self.helpers):
            helper.wait_stopped(deadline)
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


@contextlib.contextmanager
def _stop_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP stop the demo like Ctrl-C (main thread only)."""
    previous: dict[int, Any] = {}
    try:
        for signum in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(ValueError, AttributeError):  # not the main thread / not POSIX
                previous[signum] = signal.signal(signum, _raise_stop)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _uninterruptible() -> Iterator[None]:
    """While shutting down, a second Ctrl-C must not leave helpers behind."""
    previous: dict[int, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, AttributeError):
            previous[signum] = signal.signal(signum, signal.SIG_IGN)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def data_folder() -> Path:
    return Path(os.environ.get(DIR_ENV) or DEFAULT_DIR).expanduser().resolve()


def run_demo(port: int = 3000, keep: bool = False) -> int:
    """Run the demo until Ctrl-C/SIGTERM; the process exit code."""
    folder = data_folder()
    demo = Demo(folder, port, keep)
    print("invoicebot demo: starting the fake Stripe, the billing sandbox, the Slack stand-in and the bot…",
          flush=True)
    print(f"Data and logs: {folder}" + (" (kept from the last run)" if keep else " (fresh demo data)"), flush=True)
    code = 0
    with _stop_signals():
        try:
            demo.start()
            print(f"\n    invoicebot demo is running: open {demo.page_url} in your browser\n", flush=True)
            print(f"Logs are in {demo.logs}. Press Ctrl-C to stop.", flush=True)
            code = demo.watch()
        except DemoError as exc:
            print(f"invoicebot demo: {exc}", file=sys.stderr, flush=True)
            code = 1
        except (KeyboardInterrupt, _Stop):
            print("\ninvoicebot demo: stopping…", flush=True)
        finally:
            with _uninterruptible():
                demo.stop()
    if demo.helpers:
        print("invoicebot demo: stopped.", flush=True)
    return code
