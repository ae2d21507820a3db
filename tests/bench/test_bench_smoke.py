"""`python -m bench --quick` end to end: every server started as in production, a few
signed requests per scenario from the separate load generator, a row per scenario.

Only that the benchmark works is checked here; the numbers are for docs/performance.md
(the full benchmark is not part of CI)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = {"ack", "click_to_open", "list_scale", "payments", "baseline"}


def test_quick_bench_runs_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    bench = subprocess.Popen([sys.executable, "-m", "bench", "--quick", "--out", str(out)], cwd=ROOT,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = bench.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        bench.terminate()  # the bench stops every server it started on SIGTERM
        try:
            stdout, stderr = bench.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            bench.kill()
            stdout, stderr = bench.communicate()
        raise AssertionError(f"python -m bench --quick took over 240 s:\n{stderr[-5000:]}") from None
    assert bench.returncode == 0, f"{stdout[-3000:]}\n{stderr[-5000:]}"

    data = json.loads(out.read_text())
    rows = data["rows"]
    assert {row["scenario"] for row in rows} == SCENARIOS
    assert {row["database"] for row in rows if row["scenario"] != "baseline"} == {"sqlite"}
    acks = {row["what"] for row in rows if row["scenario"] == "ack"}
    assert acks == {"/invoices", "Pay Now click", "modal submission"}
    for row in rows:
        assert row["requests"] > 0, row
        assert row["p50_ms"] is not None and row["p99_ms"] >= row["p50_ms"] > 0, row
        assert row["peak_rss_mb"], row
    assert all(r["ratio_p99"] > 0 for r in rows if r["scenario"] == "ack")
    [payments] = [r for r in rows if r["scenario"] == "payments"]
    assert payments["recorded"] == payments["notified"] == payments["forms_loaded"] > 0, payments
    assert data["machine"]["nproc"] and data["machine"]["python"]
    assert "p99" in stdout  # the table
