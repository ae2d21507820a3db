"""Retake docs/demo.png: a payment in progress in `invoicebot demo`.

    python docs/demo_screenshot.py [--chromium /usr/bin/chromium] [--out docs/demo.png]

Starts a fresh demo (its own data folder in a temporary directory), pays one invoice so
that #billing shows a notification, then opens Pay Now on another and types a partial
amount. Needs the `test` extra (Playwright) and Chromium (.ci/browsers installs it).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from sandbox.demo import free_port  # noqa: E402
from tests.browser.conftest import CHROMIUM_ARGS  # noqa: E402
from tests.browser.slack_page import SlackPage  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", default=str(ROOT / "docs" / "demo.png"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        demo = subprocess.Popen([sys.executable, "-m", "handlers.entry", "demo", "--port", str(free_port())],
                                env={**os.environ, "INVOICEBOT_DEMO_DIR": folder, "PYTHONUNBUFFERED": "1"},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=folder)
        try:
            assert demo.stdout is not None
            url = None
            deadline = time.monotonic() + 90
            while url is None and time.monotonic() < deadline:
                line = demo.stdout.readline()
                if not line:
                    raise SystemExit("the demo stopped before it was ready")
                found = re.search(r"open (http://\S+)", line)
                url = found.group(1) if found else None
            if url is None:
                raise SystemExit("the demo did not start")
            expect.set_options(timeout=20_000)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 820}, device_scale_factor=1)
                slack = SlackPage(page, url, "U_FINANCE")
                page.locator(".guide summary").click()  # fold the demo guide away

                paid = slack.pay_now(slack.command("/invoices"), r"INV-US-\d{4}-0119")
                paid.submit()
                expect(paid.root).to_contain_text("Payment received")
                paid.close()
                expect(slack.channel_message("paid in full")).to_have_count(1)

                modal = slack.pay_now(slack.command("/invoices"), r"INV-EU-\d{4}-0042")
                modal.amount.fill("500.00")
                modal.amount.blur()
                page.mouse.move(0, 0)
                page.screenshot(path=args.out)
                browser.close()
        finally:
            demo.send_signal(signal.SIGTERM)
            demo.wait(timeout=30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
