"""The local servers (the bot, the sandboxes) as child processes on loopback ports: one
way to start, watch and stop them, for the demo, the end-to-end tests and the benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn: on Linux, the child gets SIGTERM if its parent dies (even by SIGKILL),
    so no server is ever left running on its own."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes  # noqa: PLC0415

        libc = ctypes.CDLL(None, use_errno=True)
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


class ProcessError(RuntimeError):
    """A server stopped while starting, or did not answer in time; the message has its log."""


@dataclass
class Process:
    """One server: its command, its log file, and the URL that answers once it is up."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    health_url: str
    cwd: Path | None = None
    # Linux: the child gets SIGTERM when this process dies, even by SIGKILL (the demo).
    die_with_parent: bool = False
    popen: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        """Start it without waiting (several can start side by side)."""
        with self.log_path.open("ab") as log:
            # Its own process group, so stop() reaches the workers a server spawns too.
            self.popen = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=die_with_parent() if self.die_with_parent else None)  # noqa: PLW1509

    def wait_until_up(self, timeout: float = 30.0) -> None:
        assert self.popen is not None, "launch() first"
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self.popen.poll() is not None:
                    raise ProcessError(f"{self.name} stopped while starting (exit code {self.popen.returncode}):"
                                       f"\n{self.tail()}")
                try:
                    if client.get(self.health_url).status_code < 500:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise ProcessError(f"{self.name} did not come up in {timeout:.0f}s:\n{self.tail()}")
                time.sleep(0.1)

    def start(self, timeout: float = 30.0) -> Process:
        self.launch()
        self.wait_until_up(timeout)
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def send_signal(self, signum: int) -> None:
        if self.popen is not None and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 25.0) -> None:
        """Ask it to stop (SIGTERM lets servers finish their work), SIGKILL if it lingers."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.send_signal(signum)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.send_signal(signal.SIGKILL)
            self.popen.wait()

    def kill(self) -> None:
        """As a crash would: no shutdown, no cleanup."""
        self.stop(signal.SIGKILL)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""
