"""`invoicebot sandbox --stripe-api-base URL`: the seeded billing sandbox, whose billing
profiles get the Stripe customers it has just created in that (fake) Stripe."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


@contextmanager
def _process(argv: list[str], ready: str, timeout: float = 60.0) -> Iterator[tuple[str, list[str]]]:
    """Run argv; yield (the first match of the `ready` pattern in its output, the output)."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + timeout
        while not (found := re.search(ready, "".join(lines))):
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.05)
        yield found.group(1), lines
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_sandbox_with_a_stripe_gives_the_profiles_their_customers(tmp_path: Path) -> None:
    py = sys.executable
    with _process([py, "-m", "sandbox.stripe", "--host", "127.0.0.1", "--port", "0"],
                  r"listening on (http://\S+)") as (stripe_url, _):
        sandbox = [py, "-m", "handlers.entry", "sandbox", "--port", "0", "--db", str(tmp_path / "billing.db"),
                   "--token", "t0ken", "--fresh", "--stripe-api-base", stripe_url]
        with _process(sandbox, r"Billing sandbox ready at (http://\S+)") as (billing_url, output):
            text = "".join(output)
            assert f"Stripe customers at {stripe_url}: bp_eu=cus_" in text
            assert "bearer token 't0ken'" in text and "finance@acme.example" in text
            headers = {"Authorization": "Bearer t0ken"}
            eu = httpx.get(f"{billing_url}/v1/billing-profiles/bp_eu", headers=headers).json()
            kw = httpx.get(f"{billing_url}/v1/billing-profiles/bp_kw", headers=headers).json()
            assert eu["stripe_customer_id"].startswith("cus_") and eu["stripe_customer_id"] in text
            assert kw["stripe_customer_id"] is None
            methods = httpx.get(f"{stripe_url}/v1/customers/{eu['stripe_customer_id']}/payment_methods",
                                auth=("sk_test_x", "")).json()["data"]
            assert {m["type"] for m in methods} == {"card", "sepa_debit"}
