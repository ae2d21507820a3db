"""`invoicebot demo` in a real browser: one demo for the session (its own data folder in tmp,
a free port), Debian's Chromium driven by Playwright, a fresh page per test and a
screenshot in test-artifacts/ when a test fails."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sandbox.demo import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("INVOICEBOT_CHROMIUM", "/usr/bin/chromium")
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")  # without it emoji are empty boxes
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--disable-sync"]
DEMO_START_TIMEOUT_S = 90.0
TIMEOUT_MS = 20_000  # generous: CI machines are small and busy


def _chromium_problem() -> str | None:
    """Why the browser tests cannot run here, or None. Installs Chromium when it can."""
    try:
        import playwright.sync_api  # noqa: F401, PLC0415
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if os.access(CHROMIUM, os.X_OK) and EMOJI_FONT.exists():
        return None
    script = ROOT / ".ci" / "browsers"  # installs whichever of the two is missing
    if script.exists() and shutil.which("apt-get"):
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(["bash", str(script)], capture_output=True, timeout=900, check=False)
    if os.access(CHROMIUM, os.X_OK):
        return None
    return f"Chromium is not at {CHROMIUM} and .ci/browsers could not install it (needs apt-get and root)"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    problem = _chromium_problem()
    if problem:
        pytest.skip(f"browser tests skipped: {problem}")
    return CHROMIUM


@dataclass
class DemoRun:
    url: str
    folder: Path
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.output)


def _read_output(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)


@pytest.fixture(scope="module")
def demo(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """`invoicebot demo --port <free>` as a person starts it; stopped with SIGTERM at the end,
    which must stop every process it started."""
    folder = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "INVOICEBOT_DEMO_DIR": str(folder), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "handlers.entry", "demo", "--port", str(free_port())], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True, cwd=folder)
    output: list[str] = []
    threading.Thread(target=_read_output, args=(process, output), daemon=True).start()
    deadline = time.monotonic() + DEMO_START_TIMEOUT_S
    url = None
    while url is None:
        found = re.search(r"open (http://\S+)", "".join(output))
        if found:
            url = found.group(1)
        elif process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"invoicebot demo did not start:\n{''.join(output)}")
        else:
            time.sleep(0.1)
    run = DemoRun(url, folder, process, output)
    try:
        yield run
    finally:
        _stop_demo(run)


def _stop_demo(run: DemoRun) -> None:
    import json  # noqa: PLC0415

    pids = json.loads((run.folder / "demo.json").read_text())["pids"]
    run.process.send_signal(signal.SIGTERM)
    try:
        code = run.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(run.process.pid, signal.SIGKILL)
        for pid in pids.values():
            _kill_group(pid)
        pytest.fail(f"invoicebot demo did not stop on SIGTERM:\n{run.text}")
    left = {name: pid for name, pid in pids.items() if _alive(pid)}
    for pid in left.values():
        _kill_group(pid)
    assert code == 0, run.text
    assert not left, f"the demo left processes running: {left}"
    assert "invoicebot demo: stopped." in run.text


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is no longer running; only its parent (gone) could reap it.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    """Module scope, not session: Playwright's sync API keeps an event loop running in this
    thread while it is open, and the async tests of other modules need the thread's loop."""
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def page(browser: Any, demo: DemoRun, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
        assert not errors, f"JavaScript errors on the page: {errors}"
    finally:
        report = getattr(request.node, "report_call", None)
        if report is None or report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
            try:
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            except Exception as exc:  # noqa: BLE001 - the test's own failure matters more
                print(f"no screenshot: {exc}")
            logs = ARTIFACTS / "demo-logs"
            logs.mkdir(exist_ok=True)
            for log in (demo.folder / "logs").glob("*.log"):
                shutil.copy(log, logs / log.name)
        context.close()
