"""The servers a benchmark runs against, each its own process on a loopback port, started
the way production and the e2e tests start them:

* localstripe (`python -m sandbox.stripe`), the billing sandbox (`python -m sandbox.billing`)
  and the Slack stand-in (`python -m sandbox.slack`);
* the app itself, `python -m handlers.entry serve --workers N` (uvicorn, Bolt's Starlette adapter),
  on SQLite or on a throw-away PostgreSQL database;
* the bare Bolt app (`python -m bench.bare_app --workers N`), the floor we compare against.

Also: which processes are the uvicorn workers, and their peak RSS (VmHWM).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from sandbox.processes import Process as BaseProcess
from sandbox.processes import free_port
from sandbox.postgres import temporary_database

SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench-bot-token"
STRIPE_KEY = "sk_test_bench_key"
BILLING_TOKEN = "bench-billing-token"
NOTIFY_CHANNEL = "C_BILLING"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Process(BaseProcess):
    """A server of the benchmark; also knows its uvicorn worker processes."""

    def workers(self) -> list[int]:
        """The uvicorn worker processes: the spawned children with --workers > 1, else itself."""
        children = [pid for pid in _children(self.pid) if "spawn_main" in _cmdline(pid)]
        return children or [self.pid]


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def reset_peak_rss(pids: list[int]) -> bool:
    """Writing 5 to clear_refs resets VmHWM (Linux >= 4.0), so each scenario gets its own peak."""
    ok = True
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15 of stat)


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent busy (all cores, /proc/stat), in seconds."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / _TICKS  # user nice system idle iowait irq softirq steal


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process on the machine (shared with anyone else using it)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() in ("postgres", "postmaster"):
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


def peak_rss_mb(pids: list[int]) -> dict[str, float]:
    out = {}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    out[str(pid)] = round(int(line.split()[1]) / 1024, 1)
        except OSError:
            continue
    return out


def temporary_pg_database(server_url: str = PG_SERVER) -> contextlib.AbstractAsyncContextManager[str]:
    """A new database on the PostgreSQL server, dropped afterwards."""
    return temporary_database(server_url, prefix="invoicebot_bench")


@dataclass
class Sandboxes:
    """localstripe, billing sandbox and Slack stand-in; the stand-in's Request URL is set later."""

    workdir: Path
    slack_port: int = field(default_factory=free_port)
    billing_port: int = field(default_factory=free_port)
    stripe_port: int = field(default_factory=free_port)
    processes: list[Process] = field(default_factory=list)

    @property
    def slack_url(self) -> str:
        return f"http://127.0.0.1:{self.slack_port}"

    @property
    def billing_url(self) -> str:
        return f"http://127.0.0.1:{self.billing_port}"

    @property
    def stripe_url(self) -> str:
        return f"http://127.0.0.1:{self.stripe_port}"

    def start(self, billing_latency: float = 0.0) -> Sandboxes:
        py = sys.executable
        env = dict(os.environ)
        self.processes.append(Process(
            "stripe", [py, "-m", "sandbox.stripe", "--host", "127.0.0.1", "--port", str(self.stripe_port)], env,
            self.workdir / "stripe.log", f"{self.stripe_url}/_requests").start())
        self.processes.append(Process(
            "billing", [py, "-m", "sandbox.billing", "--host", "127.0.0.1", "--port", str(self.billing_port),
                        "--db", str(self.workdir / "billing.db"), "--token", BILLING_TOKEN, "--no-seed", "--fresh",
                        "--latency", str(billing_latency)], env,
            self.workdir / "billing.log", f"{self.billing_url}/invoices/x").start())
        self.processes.append(Process(
            "slack", [py, "-m", "sandbox.slack", "--host", "127.0.0.1", "--port", str(self.slack_port),
                      "--request-url", "http://127.0.0.1:9/slack/events", "--bot-token", BOT_TOKEN,
                      "--signing-secret", SIGNING_SECRET, "--log-level", "warning"], env,
            self.workdir / "slack.log", f"{self.slack_url}/_standin/health").start())
        return self

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()


def app_env(sandboxes: Sandboxes, database_url: str, app_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "STRIPE_", "BILLING_"))}
    env.update(
        SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=f"{sandboxes.slack_url}/api/",
        STRIPE_API_KEY=STRIPE_KEY, STRIPE_API_BASE=sandboxes.stripe_url, BILLING_API_URL=sandboxes.billing_url,
        BILLING_API_TOKEN=BILLING_TOKEN, DATABASE_URL=database_url, NOTIFY_CHANNEL=NOTIFY_CHANNEL,
        PUBLIC_URL=app_url, LOG_FORMAT="json", LOG_LEVEL="INFO",
    )
    return env


def start_app(sandboxes: Sandboxes, database_url: str, workers: int, workdir: Path) -> Process:
    """`invoicebot db upgrade`, then `invoicebot serve --workers N`."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = app_env(sandboxes, database_url, url)
    migrated = subprocess.run([sys.executable, "-m", "handlers.entry", "db", "upgrade"], env=env, capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL)
    if migrated.returncode != 0:
        raise RuntimeError(f"invoicebot db upgrade failed:\n{migrated.stdout}\n{migrated.stderr}")
    process = Process("app", [sys.executable, "-m", "handlers.entry", "serve", "--host", "127.0.0.1", "--port", str(port),
                              "--workers", str(workers)], env, workdir / "app.log", f"{url}/healthz")
    process.start()
    _wait_for_workers(process, workers)
    return process


def start_bare(sandboxes: Sandboxes, workers: int, workdir: Path) -> Process:
    port = free_port()
    env = app_env(sandboxes, "sqlite:///unused.db", f"http://127.0.0.1:{port}")
    process = Process("bare", [sys.executable, "-m", "bench.bare_app", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", str(workers)], env, workdir / "bare.log",
                      f"http://127.0.0.1:{port}/healthz")
    process.start()
    _wait_for_workers(process, workers)
    return process


def _wait_for_workers(process: Process, workers: int, timeout: float = 60.0) -> None:
    """uvicorn answers once the first worker is up; wait for all of them (and their lifespan)."""
    if workers <= 1:
        return
    deadline = time.monotonic() + timeout
    while len(process.workers()) < workers or process.workers() == [process.pid]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.name}: only {len(process.workers())} of {workers} workers started")
        time.sleep(0.1)
    # Each worker runs its lifespan before it accepts; give every worker a few health checks.
    url = process.health_url
    for _ in range(workers * 4):
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url, timeout=5.0, headers={"Connection": "close"})


def url_of(process: Process) -> str:
    return process.health_url.rsplit("/", 1)[0]
