"""Real servers for end-to-end tests: the bot (`invoicebot serve`), the sandbox billing
API, localstripe (with our compatibility patches) and the Slack stand-in, each its own
process on a free loopback port, talking real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from sandbox.processes import Process, free_port

SIGNING_SECRET = "e2e-signing-secret"
BOT_TOKEN = "xoxb-e2e-bot-token"
STRIPE_KEY = "sk_test_e2e_key"
BILLING_TOKEN = "e2e-billing-token"
WEBHOOK_SECRET = "whsec_e2e_webhook_secret"
NOTIFY_CHANNEL = "C_BILLING"
TEAM_ID = "T0001"

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 20.0, every: float = 0.1) -> T:
    """Run `check` until it stops raising AssertionError (what a person sees settles) and
    return its result; past `timeout` its last AssertionError is the test's failure."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(every)


@dataclass
class Stack:
    workdir: Path
    database_url: str
    app_port: int = field(default_factory=free_port)
    slack_port: int = field(default_factory=free_port)
    billing_port: int = field(default_factory=free_port)
    stripe_port: int = field(default_factory=free_port)
    processes: dict[str, Process] = field(default_factory=dict)

    @property
    def clock_file(self) -> Path:
        """Seconds added to the bot's clock (bot/clock.py): tests move time by writing it."""
        return self.workdir / "clock-offset"

    def move_clock(self, seconds: float) -> None:
        self.clock_file.write_text(str(int(seconds)))

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    @property
    def slack_url(self) -> str:
        return f"http://127.0.0.1:{self.slack_port}"

    @property
    def billing_url(self) -> str:
        return f"http://127.0.0.1:{self.billing_port}"

    @property
    def stripe_url(self) -> str:
        return f"http://127.0.0.1:{self.stripe_port}"

    def app_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "STRIPE_", "BILLING_"))}
        env.update(
            SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=f"{self.slack_url}/api/",
            STRIPE_API_KEY=STRIPE_KEY, STRIPE_API_BASE=self.stripe_url, BILLING_API_URL=self.billing_url,
            BILLING_API_TOKEN=BILLING_TOKEN, DATABASE_URL=self.database_url, NOTIFY_CHANNEL=NOTIFY_CHANNEL,
            PUBLIC_URL=self.app_url, LOG_FORMAT="json", LOG_LEVEL="INFO", STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            CLOCK_OFFSET_FILE=str(self.clock_file),
            # Tests wait for the server's own reconciler: a look every 5 s, not production's 30 s.
            RECONCILE_INTERVAL_SECONDS="5",
            # And for the scheduler's: a look for due jobs every second, not production's 5 s.
            SCHEDULER_POLL_SECONDS="1",
        )
        env.update(extra)
        return env

    def _process(self, name: str, argv: list[str], health: str, env: dict[str, str] | None = None) -> Process:
        process = Process(name, argv, env or dict(os.environ), self.workdir / f"{name}.log", health)
        self.processes[name] = process
        return process

    def start(self) -> None:
        py = sys.executable
        self._process("stripe", [py, "-m", "sandbox.stripe", "--host", "127.0.0.1", "--port", str(self.stripe_port)],
                      f"{self.stripe_url}/_requests").start()
        self._process("billing", [py, "-m", "sandbox.billing", "--host", "127.0.0.1", "--port",
                                  str(self.billing_port), "--db", str(self.workdir / "billing.db"), "--token",
                                  BILLING_TOKEN, "--no-seed", "--fresh"], f"{self.billing_url}/invoices/x").start()
        self._process("slack", [py, "-m", "sandbox.slack", "--host", "127.0.0.1", "--port", str(self.slack_port),
                                "--request-url", f"{self.app_url}/slack/events", "--bot-token", BOT_TOKEN,
                                "--signing-secret", SIGNING_SECRET, "--log-level", "warning"],
                      f"{self.slack_url}/_standin/config").start()
        # localstripe signs and sends its events to the app, as Stripe would.
        httpx.post(f"{self.stripe_url}/_config/webhooks/e2e", data={
            "url": f"{self.app_url}/stripe/webhook", "secret": WEBHOOK_SECRET}).raise_for_status()
        self.migrate()
        self.start_app()

    def invoicebot(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "handlers.entry", *args], env=self.app_env(**env),
                                capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"invoicebot {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def migrate(self) -> None:
        self.invoicebot("db", "upgrade")

    def start_app(self, name: str = "app", port: int | None = None, workers: int = 1, **env: str) -> Process:
        port = port or self.app_port
        process = self._process(name, [sys.executable, "-m", "handlers.entry", "serve", "--host", "127.0.0.1", "--port",
                                       str(port), "--workers", str(workers)], f"http://127.0.0.1:{port}/healthz",
                                self.app_env(**env))
        process.start()
        return process

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


@contextlib.contextmanager
def running_stack(workdir: Path, database_url: str) -> Iterator[Stack]:
    stack = Stack(workdir, database_url)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
