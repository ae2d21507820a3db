"""Numbers: percentiles, the machine they came from, the table and the JSON file."""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import sys
from pathlib import Path
from typing import Any


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: list[float]) -> dict[str, float | None]:
    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 2)

    return {"p50_ms": r(percentile(values, 50)), "p95_ms": r(percentile(values, 95)),
            "p99_ms": r(percentile(values, 99)), "max_ms": r(max(values) if values else None)}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    versions = {}
    for package in ("slack-bolt", "slack-sdk", "uvicorn", "starlette", "sqlalchemy", "aiosqlite", "asyncpg",
                    "httpx", "aiohttp", "localstripe"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    for optional in ("uvloop", "httptools"):
        try:
            versions[optional] = importlib.metadata.version(optional)
        except importlib.metadata.PackageNotFoundError:
            versions[optional] = "not installed"
    return {"nproc": os.cpu_count(), "memory_gib": memory, "cpu_model": cpu,
            "python": sys.version.split()[0], "platform": platform.platform(), "packages": versions}


def _ms(value: Any) -> str:
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value / 1000:.1f}s"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}"


def _rss(row: dict[str, Any]) -> str:
    values = list((row.get("peak_rss_mb") or {}).values())
    return f"{max(values):.0f}" if values else "-"


def _other(row: dict[str, Any]) -> str:
    """Share of the machine that processes outside the benchmark used during the run."""
    pct = (row.get("cpu_s") or {}).get("other_processes_pct")
    return "-" if pct is None else f"{pct:.0f}%"


def _met(row: dict[str, Any]) -> str:
    targets = row.get("targets") or {}
    if not targets:
        return ""
    missed = [name for name, ok in targets.items() if ok is False]
    return "yes" if not missed else "NO: " + ", ".join(missed)


def operation_kind(row: dict[str, Any]) -> str | None:
    """Which of the bare Bolt app's three requests a row's operation is compared with."""
    scenario, what = row["scenario"], row["what"]
    if scenario == "baseline":
        return what.rsplit(": ", 1)[-1]  # "bare Bolt ack: command" -> command
    if scenario == "list_scale" or what == "/invoices":
        return "command"
    if scenario == "click_to_open" or what == "Pay Now click":
        return "click"
    if scenario == "payments" or what == "modal submission":
        return "submit"
    return None


def cpu_ms_per_operation(row: dict[str, Any]) -> float | None:
    """CPU the app's (or the bare app's) workers used per operation, in ms: their CPU
    seconds over the run (the follow-up work the run waited for included) divided by the
    operations the run made (`operations` when it differs from the measured `requests`)."""
    cpu = row.get("cpu_s") or {}
    workers = cpu.get("app_workers", cpu.get("bare_workers"))
    operations = row.get("operations") or row.get("requests")
    if workers is None or not operations:
        return None
    return round(workers * 1000 / operations, 2)


def cpu_vs_bare(row: dict[str, Any], baseline: list[dict[str, Any]]) -> float | None:
    """A row's CPU per operation as a multiple of the bare Bolt app's for the same kind of
    request: at the same rate when the baseline has it, else at its lowest rate."""
    mine, kind = cpu_ms_per_operation(row), operation_kind(row)
    if row["scenario"] == "baseline" or mine is None or kind is None:
        return None
    bare = [b for b in baseline if b["scenario"] == "baseline" and operation_kind(b) == kind
            and cpu_ms_per_operation(b)]
    if not bare:
        return None
    same_rate = [b for b in bare if b.get("rate_rps") == row.get("rate_rps")]
    chosen = same_rate[0] if same_rate else min(bare, key=lambda b: b.get("rate_rps") or 0)
    return round(mine / cpu_ms_per_operation(chosen), 2)  # type: ignore[operator]


def table(rows: list[dict[str, Any]], baseline: list[dict[str, Any]] | None = None) -> str:
    """The results table; `baseline` (bare Bolt rows) defaults to those among `rows`."""
    head = ["scenario", "db", "what", "rate/s", "billing", "n", "p50", "p95", "p99", "max", "thr/s", "err",
            "follow-up p50/p99", "x bare p50/p99", "CPU ms/op", "CPU x bare", "RSS MB", "other CPU", "targets met"]
    lines = [head]
    bare_rows = rows if baseline is None else baseline
    for row in rows:
        cpu = cpu_ms_per_operation(row)
        cpu_ratio = cpu_vs_bare(row, bare_rows)
        ratio = "-"
        if row.get("ratio_p50") is not None:
            ratio = f"{row['ratio_p50']:.2f}/{row['ratio_p99']:.2f}"
        follow = row.get("followup") or {}
        follow_text = "-" if not follow else f"{_ms(follow.get('p50_ms'))}/{_ms(follow.get('p99_ms'))}"
        if row["scenario"] == "payments":
            def secs(v: Any) -> str:
                return "never" if v is None else f"{v:g}s"
            follow_text = (f"all recorded {secs(row.get('all_recorded_after_last_submission_s'))}, "
                           f"notified {secs(row.get('all_notified_after_last_submission_s'))}")
        billing = row.get("billing_latency_ms")
        lines.append([
            row["scenario"], row.get("database") or "-", row["what"],
            "-" if row.get("rate_rps") is None else f"{row['rate_rps']:g}",
            "-" if billing is None else (f"{billing / 1000:g}s" if billing >= 1000 else f"{billing:g}ms"),
            str(row.get("requests", "-")), _ms(row.get("p50_ms")), _ms(row.get("p95_ms")), _ms(row.get("p99_ms")),
            _ms(row.get("max_ms")),
            "-" if row.get("throughput_rps") is None else f"{row['throughput_rps']:.1f}",
            str(row.get("errors", "-")), follow_text, ratio, "-" if cpu is None else f"{cpu:.1f}",
            "-" if cpu_ratio is None else f"{cpu_ratio:.1f}", _rss(row), _other(row), _met(row),
        ])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown(rows: list[dict[str, Any]]) -> str:
    """The same table as `table`, as GitHub markdown (for docs/performance.md)."""
    lines = table(rows).splitlines()
    head, body = lines[0], lines[2:]
    starts = [0] + [i + 2 for i in range(len(lines[1])) if lines[1][i:i + 2] == "  " and lines[1][i + 2:i + 3] == "-"]

    def cells(line: str) -> list[str]:
        return [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]

    out = ["| " + " | ".join(cells(head)) + " |", "|" + "---|" * len(starts)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(line)) + " |" for line in body]
    return "\n".join(out)


if __name__ == "__main__":  # python -m bench.report docs/bench-results.json
    import json

    data = json.loads(Path(sys.argv[1]).read_text())
    print(markdown(data["rows"]))
