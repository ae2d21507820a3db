"""`python -m bench`: the benchmark scenarios of issue 7, end to end over real HTTP.

Per database: fresh sandboxes (localstripe, billing sandbox, Slack stand-in), a migrated
database, `invoicebot serve --workers N`; data seeded through the sandboxes' APIs; load
driven by `bench.loadgen` in its own process. The bare-Bolt baseline runs in the same
invocation on the same stack (before the app starts), so the ratio compares like with like.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import json
import os
import re
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import report
from bench.stack import (
    PG_SERVER, SIGNING_SECRET, Process, Sandboxes, cpu_seconds, machine_busy_seconds, peak_rss_mb, postgres_pids,
    reset_peak_rss, start_app, start_bare, temporary_pg_database, url_of,
)
from bench.world import BenchUser, BenchWorld, CallWatcher, gather_limited

SCENARIOS = ("ack", "click_to_open", "list_scale", "payments", "baseline")
KINDS = ("command", "click", "submit")
ACK_P99_TARGET_MS = 100.0
RATIO_TARGET = 1.5
CLICK_TO_OPEN_P99_TARGET_MS = 500.0
LIST_GROWTH_TARGET = 1.5
PAYMENTS_DONE_TARGET_S = 30.0
RSS_TARGET_MB = 150.0
PROFILES_PER_LIST_USER = 100
MENTION = re.compile(r"<@(U[A-Z0-9]+)>")


@dataclass
class Config:
    quick: bool
    scenarios: list[str]
    databases: list[str]
    workers: int
    rates: list[float]
    latencies: list[float]  # seconds the billing API adds to every answer (ack scenario)
    duration: float  # seconds of load per ack run
    list_sizes: list[int]
    list_warmup: int
    list_repeats: int
    payments: int
    payments_window: float
    ack_profiles: int
    wait_cap: float  # longest wait for background work to finish after a run
    pg_url: str


def config_from(args: argparse.Namespace) -> Config:
    quick = args.quick
    scenarios = []
    for chunk in args.scenarios or list(SCENARIOS):
        scenarios += [s.strip() for s in chunk.split(",") if s.strip()]
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    database = args.database or ("sqlite" if quick else "both")
    return Config(
        quick=quick,
        scenarios=[s for s in SCENARIOS if s in scenarios],
        databases=["sqlite", "postgresql"] if database == "both" else [database],
        workers=args.workers,
        rates=args.rates or ([5.0] if quick else [20.0, 50.0]),
        latencies=args.billing_latencies or ([0.01] if quick else [0.01, 2.0]),
        duration=args.duration or (1.0 if quick else 10.0),
        list_sizes=[10, 1000] if quick else [10, 1_000, 10_000],
        list_warmup=1 if quick else 2 * args.workers,
        list_repeats=2 if quick else 10,
        payments=5 if quick else 200,
        payments_window=1.0 if quick else 10.0,
        ack_profiles=2 if quick else 8,
        wait_cap=30.0 if quick else 120.0,
        pg_url=args.pg_url,
    )


def log(message: str, *, started: list[float] = [time.monotonic()]) -> None:  # noqa: B006 - a process-wide clock
    print(f"[{time.monotonic() - started[0]:7.1f}s] {message}", file=sys.stderr, flush=True)


def _token(response_url: str | None) -> str | None:
    return response_url.rsplit("/", 1)[-1] if response_url else None


def _ms_since(later_mono: float, earlier_mono: float) -> float:
    return round((later_mono - earlier_mono) * 1000, 2)


@dataclass
class Bench:
    config: Config
    workdir: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    bare: dict[tuple[str, float], dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _runs: int = 0
    # per database
    database: str = ""
    sandboxes: Sandboxes | None = None
    world: BenchWorld | None = None
    app: Process | None = None
    ack_profiles: list[str] = field(default_factory=list)
    invoice_of: dict[str, str] = field(default_factory=dict)
    pending_payments: dict[str, Any] | None = None
    list_profile: str = ""

    # -- plumbing ----------------------------------------------------------------------
    @property
    def w(self) -> BenchWorld:
        assert self.world is not None
        return self.world

    async def loadgen(self, target: Process, kind: str, rate: float, items: list[dict[str, Any]],
                      **extra: Any) -> dict[str, Any]:
        """One load generator process; returns its per-request results."""
        assert self.sandboxes is not None
        self._runs += 1
        spec = {"url": f"{url_of(target)}/slack/events", "standin_url": self.sandboxes.slack_url,
                "signing_secret": SIGNING_SECRET, "verification_token": "standin-verification-token",
                "team_id": "T0001", "team_domain": "acme", "api_app_id": "A0INVOICEBOT", "kind": kind,
                "rate": rate, "items": items, "timeout": 10.0, **extra}
        spec_path = self.workdir / f"loadgen-{self._runs:03d}-{kind}.json"
        out_path = spec_path.with_name(spec_path.stem + "-results.json")
        spec_path.write_text(json.dumps(spec))
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.loadgen", str(spec_path),
                                                    str(out_path), stdin=asyncio.subprocess.DEVNULL)
        budget = len(items) / rate + 120 if not extra.get("sequential_followup") else 60 * len(items) + 60
        try:
            code = await asyncio.wait_for(proc.wait(), timeout=budget)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeError(f"load generator ({kind}) did not finish in {budget:.0f}s") from None
        except BaseException:  # interrupted: take the load generator down with us
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        if code != 0:
            raise RuntimeError(f"load generator ({kind}) exited with {code}")
        return json.loads(out_path.read_text())

    async def follow(self, method: str, since: int, wanted: set[str],
                     key: Callable[[dict[str, Any]], str | list[str] | None],
                     cap: float, *, only_ok: bool = False) -> dict[str, dict[str, Any]]:
        """First recorded stand-in call of `method` per wanted key (a call may carry several,
        e.g. a digest of notices), waiting at most `cap` seconds."""
        watcher = CallWatcher(self.w, method, since)
        found: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + cap
        while True:
            for call in await watcher.poll():
                keys = key(call)
                for k in keys if isinstance(keys, list) else [keys]:
                    if k in wanted and k not in found and (call["ok"] or not only_ok):
                        found[k] = call
            if len(found) >= len(wanted) or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.2)

    def cpu_mark(self, target: Process) -> dict[str, Any]:
        return {"at": time.monotonic(), "target": target, "before": self._cpu(target)}

    @staticmethod
    def _own_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def _cpu(self, target: Process) -> dict[str, float]:
        assert self.sandboxes is not None
        names = {"stripe": "localstripe", "billing": "billing_sandbox", "slack": "slack_standin"}
        out = {f"{target.name}_workers": sum(cpu_seconds(pid) for pid in target.workers())}
        for process in self.sandboxes.processes:
            out[names.get(process.name, process.name)] = cpu_seconds(process.pid)
        if self.database == "postgresql":
            # Per backend: one that exits between the two readings takes its CPU time with it.
            out.update({f"pg:{pid}": cpu_seconds(pid) for pid in postgres_pids()})
        out["bench_orchestrator"] = self._own_cpu()
        out["machine_busy"] = machine_busy_seconds()
        return out

    def cpu_used(self, mark: dict[str, Any], *results: dict[str, Any]) -> dict[str, float]:
        """CPU seconds each process used since `mark`, and the wall time: what was busy."""
        after = self._cpu(mark["target"])
        used = {k: round(after[k] - mark["before"].get(k, 0.0), 2) for k in after if not k.startswith("pg:")}
        if self.database == "postgresql":  # backends alive at the end (also serving others, if any)
            used["postgres_all_backends"] = round(sum(after[k] - mark["before"].get(k, 0.0) for k in after
                                                      if k.startswith("pg:")), 2)
        used["load_generator"] = round(sum(r.get("cpu_s", 0.0) for r in results), 2)
        used["wall_s"] = round(time.monotonic() - mark["at"], 2)
        # What the rest of the machine (other people's tests, the kernel, PostgreSQL work for
        # others) took meanwhile: the noise in these numbers, as a share of all cores.
        ours = sum(v for k, v in used.items() if k not in ("machine_busy", "wall_s"))
        used["other_processes"] = round(max(0.0, used["machine_busy"] - ours), 2)
        capacity = used["wall_s"] * (os.cpu_count() or 1)
        used["machine_busy_pct"] = round(100 * used["machine_busy"] / capacity, 1) if capacity else None
        used["other_processes_pct"] = round(100 * used["other_processes"] / capacity, 1) if capacity else None
        return used

    def workers(self, process: Process | None = None) -> list[int]:
        return (process or self.app).workers()  # type: ignore[union-attr]

    def log_mark(self, process: Process) -> int:
        try:
            return process.log_path.stat().st_size
        except OSError:
            return 0

    def log_problems(self, process: Process, mark: int) -> dict[str, Any]:
        """Errors and warnings the app logged since `mark` (JSON lines), with a few samples."""
        counts = {"error": 0, "warning": 0}
        samples: list[str] = []
        try:
            with process.log_path.open("rb") as f:
                f.seek(mark)
                text = f.read().decode(errors="replace")
        except OSError:
            return {}
        for line in text.splitlines():
            try:
                entry = json.loads(line)
                level, message = entry.get("level"), entry.get("message", "")
            except ValueError:
                level = "error" if ("Traceback" in line or "ERROR" in line) else None
                message = line
            if level in counts:
                counts[level] += 1
                if len(samples) < 5 and message not in samples:
                    samples.append(str(message)[:200])
        return {"app_log_errors": counts["error"], "app_log_warnings": counts["warning"], "app_log_samples": samples}

    def base_row(self, scenario: str, what: str, **fields: Any) -> dict[str, Any]:
        return {"scenario": scenario, "database": self.database or None, "workers": self.config.workers,
                "what": what, **fields}

    def add(self, row: dict[str, Any]) -> None:
        targets = row.get("targets") or {}
        row["met"] = None if not targets else all(v is not False for v in targets.values())
        self.rows.append(row)
        log("  " + report.table([row], baseline=list(self.bare.values())).splitlines()[-1])

    # -- the ack statistics of one load generator run -----------------------------------
    def ack_fields(self, result: dict[str, Any]) -> dict[str, Any]:
        records = result["results"]
        answered = [r["latency_ms"] for r in records if r.get("status") is not None]
        errors: dict[str, int] = {}
        for r in records:
            if r.get("error"):
                kind = r["error"].split(":")[0]
                errors[kind] = errors.get(kind, 0) + 1
        # Sustained throughput: answers completed per second, first answer to last (equals the
        # offered rate while the app keeps up, falls below it when answers pile up).
        done = sorted(r["sent_mono"] + r["latency_ms"] / 1000 for r in records if r.get("status") is not None)
        span = done[-1] - done[0] if len(done) > 1 else None
        lags = [r["lag_ms"] for r in records if "lag_ms" in r]
        return {"requests": len(records), **report.summary(answered),
                "throughput_rps": round((len(done) - 1) / span, 2) if span else None,
                "errors": sum(errors.values()), "error_kinds": errors,
                "max_send_lag_ms": max(lags) if lags else None}

    # -- baseline: bare Bolt ---------------------------------------------------------------
    async def baseline(self) -> None:
        assert self.sandboxes is not None
        log(f"baseline: bare slack-bolt AsyncApp, {self.config.workers} worker(s)")
        bare = start_bare(self.sandboxes, self.config.workers, self.workdir)
        try:
            most = int(max(self.config.rates) * self.config.duration)
            users = await self.w.users(most, ["bp_unused"], slack_only=True)
            fake_view = {"id": "V_BARE", "team_id": "T0001", "type": "modal", "callback_id": "pay_invoice",
                         "private_metadata": "bare", "hash": "1.bare", "blocks": [],
                         "state": {"values": {"amount": {"amount": {"type": "plain_text_input", "value": "1.00"}}}},
                         "title": {"type": "plain_text", "text": "Pay invoice"}}
            for rate in self.config.rates:
                n = int(rate * self.config.duration)
                for kind in KINDS:
                    if kind == "command":
                        items = [u.item() for u in users[:n]]
                    elif kind == "click":
                        items = [u.item(invoice_id="inv_bare") for u in users[:n]]
                    else:
                        items = [u.item(view=fake_view) for u in users[:n]]
                    reset_peak_rss(self.workers(bare))
                    cpu = self.cpu_mark(bare)
                    result = await self.loadgen(bare, kind, rate, items)
                    row = self.base_row("baseline", f"bare Bolt ack: {kind}", database=None, rate_rps=rate,
                                        billing_latency_ms=None, **self.ack_fields(result),
                                        peak_rss_mb=peak_rss_mb(self.workers(bare)), cpu_s=self.cpu_used(cpu, result))
                    row["targets"] = {"no_errors": row["errors"] == 0}
                    self.bare[(kind, rate)] = row
                    self.add(row)
                    await asyncio.sleep(0.5)
        finally:
            bare.stop()

    # -- the app: seed ----------------------------------------------------------------------
    async def seed_common(self) -> None:
        log("seeding: Stripe customers, billing profiles, invoices")
        customers = await gather_limited((self.w.customer_with_card() for _ in range(self.config.ack_profiles)),
                                         limit=4)
        self.ack_profiles = await self.w.profiles(self.config.ack_profiles, prefix="ack", customer_ids=customers)
        [self.list_profile] = await self.w.profiles(1, prefix="cmd")
        await self.w.bulk_invoices(self.list_profile, 25)  # /invoices for the ack runs: 2 pages of 20

    def ack_rows_wanted(self) -> bool:
        return "ack" in self.config.scenarios

    def rss_targets(self, rss: dict[str, float]) -> dict[str, bool]:
        return {"rss_lt_150mb": bool(rss) and max(rss.values()) < RSS_TARGET_MB}

    def ack_targets(self, row: dict[str, Any], kind: str, rate: float) -> dict[str, Any]:
        bare = self.bare.get((kind, rate))
        targets: dict[str, Any] = {"no_errors": row["errors"] == 0,
                                   "ack_p99_lt_100ms": row["p99_ms"] is not None and row["p99_ms"] < ACK_P99_TARGET_MS}
        if bare and bare.get("p50_ms") and row.get("p50_ms") is not None:
            row["bare_p50_ms"], row["bare_p99_ms"] = bare["p50_ms"], bare["p99_ms"]
            row["ratio_p50"] = round(row["p50_ms"] / bare["p50_ms"], 2)
            row["ratio_p99"] = round(row["p99_ms"] / bare["p99_ms"], 2)
            targets["ratio_p99_le_1_5"] = row["ratio_p99"] <= RATIO_TARGET
        return targets | self.rss_targets(row.get("peak_rss_mb") or {})

    # -- ack: /invoices -----------------------------------------------------------------------
    async def run_commands(self, rate: float, latency: float) -> None:
        assert self.app is not None
        n = int(rate * self.config.duration)
        users = await self.w.users(n, [self.list_profile])
        since = await self.w.last_seq()
        reset_peak_rss(self.workers())
        mark = self.log_mark(self.app)
        cpu = self.cpu_mark(self.app)
        log(f"{self.database}: /invoices x{n} at {rate:g}/s, billing +{latency * 1000:g} ms")
        result = await self.loadgen(self.app, "command", rate, [u.item() for u in users])
        sent = {_token(r.get("response_url")): r for r in result["results"] if r.get("status") == 200}
        posted = await self.follow("response_url", since, set(sent), lambda c: c["params"].get("token"),
                                   self.config.wait_cap)
        follow = [_ms_since(posted[t]["monotonic"], sent[t]["sent_mono"]) for t in posted]
        row = self.base_row("ack", "/invoices", rate_rps=rate, billing_latency_ms=latency * 1000,
                            **self.ack_fields(result), peak_rss_mb=peak_rss_mb(self.workers()),
                            cpu_s=self.cpu_used(cpu, result))
        row["followup"] = {"what": "command sent -> list posted to response_url", **report.summary(follow),
                           "missing": len(sent) - len(posted)}
        row |= self.log_problems(self.app, mark)
        row["targets"] = self.ack_targets(row, "command", rate)
        self.add(row)

    # -- ack: Pay Now, and click -> views.open ------------------------------------------------
    async def open_forms(self, users: list[BenchUser], rate: float, latency: float, *,
                         report_ack: bool, report_open: bool) -> list[tuple[BenchUser, dict[str, Any]]]:
        """Pay Now for each user on a fresh invoice; returns the modals that loaded as pay forms
        (and leaves user id -> invoice id in `self.invoice_of`)."""
        assert self.app is not None
        profile_of = {u.user_id: self.ack_profiles[n % len(self.ack_profiles)] for n, u in enumerate(users)}
        invoices = self.invoice_of = await self.w.invoice_per_user(users, profile_of)
        since = await self.w.last_seq()
        reset_peak_rss(self.workers())
        mark = self.log_mark(self.app)
        cpu = self.cpu_mark(self.app)
        log(f"{self.database}: Pay Now x{len(users)} at {rate:g}/s, billing +{latency * 1000:g} ms")
        result = await self.loadgen(self.app, "click", rate, [u.item(invoice_id=invoices[u.user_id]) for u in users])
        sent = {r["trigger_id"]: r for r in result["results"] if r.get("status") == 200}
        opened = await self.follow("views.open", since, set(sent), lambda c: c["params"].get("trigger_id"),
                                   self.config.wait_cap)
        view_of = {t: c["response"]["view"]["id"] for t, c in opened.items() if c["ok"]}
        updated = await self.follow("views.update", since, set(view_of.values()),
                                    lambda c: c["params"].get("view_id"), self.config.wait_cap, only_ok=True)
        loaded_ms = [_ms_since(updated[view_of[t]]["monotonic"], sent[t]["sent_mono"])
                     for t in view_of if view_of[t] in updated]
        by_id = {u.user_id: u for u in users}
        views = await gather_limited((self.w.view(view_of[t]) for t in view_of if view_of[t] in updated), limit=16)
        forms, not_forms = [], []
        for view in views:
            blocks = view["view"]["blocks"]
            if any(b.get("block_id") == "amount" for b in blocks):
                forms.append((by_id[view["user_id"]], view))
            else:
                not_forms.append(json.dumps(blocks)[:200])
        rss = peak_rss_mb(self.workers())
        cpu_used = self.cpu_used(cpu, result)
        problems = self.log_problems(self.app, mark)
        if report_ack:
            row = self.base_row("ack", "Pay Now click", rate_rps=rate, billing_latency_ms=latency * 1000,
                                **self.ack_fields(result), peak_rss_mb=rss, cpu_s=cpu_used)
            row["followup"] = {"what": "click sent -> pay form shown (views.update)", **report.summary(loaded_ms),
                               "missing": len(sent) - len(loaded_ms), "not_a_form": len(not_forms),
                               "samples": not_forms[:3]}
            row |= problems
            row["targets"] = self.ack_targets(row, "click", rate)
            self.add(row)
        if report_open:
            to_open = [_ms_since(c["monotonic"], sent[t]["sent_mono"]) for t, c in opened.items()]
            failed = collections.Counter(f"views.open failed: {c.get('error')}" for c in opened.values()
                                         if not c["ok"])
            if len(sent) > len(opened):
                failed["views.open never called"] = len(sent) - len(opened)
            if len(result["results"]) > len(sent):
                failed["ack failed"] = len(result["results"]) - len(sent)
            errors = sum(failed.values())
            row = self.base_row("click_to_open", "click sent -> views.open received", rate_rps=rate,
                                billing_latency_ms=latency * 1000, requests=len(result["results"]),
                                **report.summary(to_open), errors=errors,
                                error_kinds=dict(failed),
                                peak_rss_mb=rss, cpu_s=cpu_used)
            row["targets"] = {"no_errors": errors == 0}
            if latency >= 2.0 or self.config.quick:
                row["targets"]["click_to_open_p99_lt_500ms"] = (row["p99_ms"] is not None
                                                                and row["p99_ms"] < CLICK_TO_OPEN_P99_TARGET_MS)
            self.add(row)
        return forms

    # -- ack: submissions ---------------------------------------------------------------------
    async def submit_forms(self, forms: list[tuple[BenchUser, dict[str, Any]]], rate: float,
                           latency: float | None, *, scenario: str = "ack") -> dict[str, Any]:
        """Submit the loaded pay forms at `rate`; the follow-up is the payment being recorded in
        billing (notices are paced at 1/s per channel by the outbox: see payments())."""
        assert self.app is not None
        since = await self.w.last_seq()
        reset_peak_rss(self.workers())
        mark = self.log_mark(self.app)
        cpu = self.cpu_mark(self.app)
        log(f"{self.database}: submit x{len(forms)} at {rate:g}/s, billing +{(latency or 0) * 1000:g} ms")
        result = await self.loadgen(self.app, "submit", rate, [u.item(view=v["view"]) for u, v in forms])
        accepted = {r["user_id"]: r for r in result["results"] if r.get("status") == 200 and not r.get("error")}
        sent_walls = [r["sent_wall"] for r in result["results"] if "sent_wall" in r]
        cap = self.config.wait_cap + (60 if (latency or 0) >= 1 else 0)
        invoice_of = {u: self.invoice_of[u] for u in accepted}
        recorded = await self.wait_recorded(list(invoice_of.values()), max(sent_walls, default=time.time()) + cap)
        follow = [round((recorded[invoice_of[u]] - r["sent_wall"]) * 1000, 2)  # type: ignore[operator]
                  for u, r in accepted.items() if recorded.get(invoice_of[u]) is not None]
        row = self.base_row(scenario, "modal submission", rate_rps=rate,
                            billing_latency_ms=None if latency is None else latency * 1000,
                            **self.ack_fields(result), peak_rss_mb=peak_rss_mb(self.workers()),
                            cpu_s=self.cpu_used(cpu, result))
        row["followup"] = {"what": "submission sent -> payment recorded in billing", **report.summary(follow),
                           "missing": len(accepted) - len(follow)}
        row |= self.log_problems(self.app, mark)
        row["_result"], row["_since"], row["_recorded"], row["_accepted"] = result, since, recorded, accepted
        return row

    async def run_pay_now_and_submit(self, rate: float, latency: float) -> None:
        n = int(rate * self.config.duration)
        users = await self.w.users(n, self.ack_profiles)
        report_ack = self.ack_rows_wanted()
        report_open = "click_to_open" in self.config.scenarios and (latency >= 2.0 or self.config.quick)
        forms = await self.open_forms(users, rate, latency, report_ack=report_ack, report_open=report_open)
        if not report_ack:
            return
        if not forms:
            self.notes.append(f"{self.database}: no pay form loaded at {rate:g}/s, billing {latency}s: "
                              "submissions not measured")
            return
        row = await self.submit_forms(forms, rate, latency)
        for key in ("_result", "_since", "_recorded", "_accepted"):
            row.pop(key)
        row["targets"] = self.ack_targets(row, "submit", rate)
        self.add(row)

    # -- list scale ------------------------------------------------------------------------
    async def list_scale(self) -> None:
        assert self.app is not None
        await self.w.set_billing_latency(0.01)
        base_p50 = None
        for size in self.config.list_sizes:
            profiles = await self.w.profiles(PROFILES_PER_LIST_USER, prefix=f"list{size}")
            per, extra = divmod(size, PROFILES_PER_LIST_USER)
            counts = [per + (1 if i < extra else 0) for i in range(PROFILES_PER_LIST_USER)]
            await gather_limited((self.w.bulk_invoices(pid, c) for pid, c in zip(profiles, counts, strict=True)),
                                 limit=8)
            [user] = await self.w.users(1, [profiles])
            since = await self.w.last_seq()
            total = self.config.list_warmup + self.config.list_repeats
            reset_peak_rss(self.workers())
            mark = self.log_mark(self.app)
            cpu = self.cpu_mark(self.app)
            log(f"{self.database}: /invoices with {size} invoices on {PROFILES_PER_LIST_USER} profiles, x{total}")
            result = await self.loadgen(self.app, "command", 1.0, [user.item()] * total, sequential_followup=True,
                                        since=since, pause=0.2)
            records = result["results"]
            follow = [r.get("followup_ms") for r in records]
            warm = [f for f in follow[self.config.list_warmup:] if f is not None]
            errors = sum(1 for r in records if r.get("error") or r.get("followup_ms") is None)
            settled = [r.get("settled_ms") for r in records[self.config.list_warmup:] if r.get("settled_ms")]
            row = self.base_row("list_scale", f"first page, {size} invoices", rate_rps=None,
                                billing_latency_ms=10.0, requests=len(warm), **report.summary(warm), errors=errors,
                                operations=len(records),  # the CPU below covers the warm-up too
                                cold_ms=follow[0] if follow else None,
                                ack=report.summary([r["latency_ms"] for r in records if r.get("latency_ms")]),
                                invoices=size, profiles=PROFILES_PER_LIST_USER,
                                peak_rss_mb=peak_rss_mb(self.workers()), cpu_s=self.cpu_used(cpu, result))
            # A list longer than the first read shows its first page, then its totals by a
            # replacement: when the person sees the whole answer.
            row["followup"] = {"what": "command sent -> totals shown (the list settled)", **report.summary(settled)}
            row |= self.log_problems(self.app, mark)
            row["targets"] = {"no_errors": errors == 0} | self.rss_targets(row["peak_rss_mb"])
            if base_p50 is None:
                base_p50 = row["p50_ms"]
            elif base_p50 and row["p50_ms"] is not None:
                row["growth_vs_smallest"] = round(row["p50_ms"] / base_p50, 2)
                if size == max(self.config.list_sizes):
                    row["targets"]["growth_le_1_5x"] = row["growth_vs_smallest"] <= LIST_GROWTH_TARGET
            self.add(row)

    # -- payments ------------------------------------------------------------------------------
    async def payments(self) -> None:
        """200 payments on different invoices within 10 s. Runs first on each database (the
        outbox sends notices to one channel in order, paced at one a second, so any backlog
        from other scenarios would be ahead of them); the notices are read back at the end
        of the database's scenarios (finish_payments), the others running meanwhile."""
        assert self.app is not None
        await self.w.set_billing_latency(0.01)
        count = self.config.payments
        rate = count / self.config.payments_window
        users = await self.w.users(count, self.ack_profiles)
        forms = await self.open_forms(users, rate, 0.01, report_ack=False, report_open=False)
        row = await self.submit_forms(forms, rate, 0.01, scenario="payments")
        result, recorded = row.pop("_result"), row.pop("_recorded")
        sent_walls = [r["sent_wall"] for r in result["results"] if "sent_wall" in r]
        last_submit = max(sent_walls) if sent_walls else time.time()
        first_submit = min(sent_walls) if sent_walls else time.time()
        recorded_at = [t for t in recorded.values() if t is not None]
        row["what"] = f"{count} payments submitted within {self.config.payments_window:g}s"
        row["forms_loaded"] = len(forms)
        row["submission_window_s"] = round(last_submit - first_submit, 2)
        row["recorded"] = len(recorded_at)
        row["all_recorded_after_last_submission_s"] = (round(max(recorded_at) - last_submit, 2)
                                                       if recorded_at and len(recorded_at) == count else None)
        span = (max(recorded_at) - first_submit) if recorded_at else None
        row["payments_per_s"] = round(len(recorded_at) / span, 2) if span else None
        # Notices may take a while (paced): allow the pace for each, plus a margin.
        row["_deadline"] = last_submit + count * 1.0 + self.config.wait_cap
        row["_last_submit"] = last_submit
        self.pending_payments = row
        log(f"{self.database}: {len(recorded_at)}/{count} payments recorded "
            f"{row['all_recorded_after_last_submission_s']}s after the last submission; notices read at the end")

    async def finish_payments(self) -> None:
        row, self.pending_payments = self.pending_payments, None
        if row is None:
            return
        accepted = row.pop("_accepted")

        def mentioned(call: dict[str, Any]) -> list[str]:
            return MENTION.findall(str(call["params"].get("text", "")))

        deadline, last_submit = row.pop("_deadline"), row.pop("_last_submit")
        cap = max(1.0, deadline - time.time())
        log(f"{self.database}: waiting up to {cap:.0f}s for the payment notices")
        notified = await self.follow("chat.postMessage", row.pop("_since"), set(accepted), mentioned, cap,
                                     only_ok=True)
        notified_at = [c["wall_time"] for c in notified.values()]
        failed = [u for u, c in notified.items() if "did not go through" in str(c["params"].get("text"))]
        count = self.config.payments
        row["notified"] = len(notified_at)
        row["failed_payments"] = len(failed)
        row["all_notified_after_last_submission_s"] = (round(max(notified_at) - last_submit, 2)
                                                       if notified_at and len(notified_at) == count else None)
        notice_ms = sorted((c["wall_time"] - accepted[u]["sent_wall"]) * 1000 for u, c in notified.items())
        row["notice_after_submission"] = report.summary(notice_ms)
        if len(notified_at) > 1:
            row["notices_per_s"] = round((len(notified_at) - 1) / (max(notified_at) - min(notified_at)), 2)
        problems = (count - row["forms_loaded"]) + row["errors"] + (count - row["recorded"]) \
            + (count - len(notified_at)) + len(failed)
        row["errors"] = problems
        done = [row["all_recorded_after_last_submission_s"], row["all_notified_after_last_submission_s"]]
        row["targets"] = {"no_errors": problems == 0,
                          "done_within_30s": all(d is not None and d <= PAYMENTS_DONE_TARGET_S for d in done)} \
            | self.rss_targets(row.get("peak_rss_mb") or {})
        self.add(row)

    async def wait_recorded(self, invoice_ids: list[str], deadline_wall: float) -> dict[str, float | None]:
        """Wall time the billing sandbox recorded a succeeded payment on each invoice."""
        recorded: dict[str, float | None] = {i: None for i in invoice_ids}
        while True:
            pending = [i for i, t in recorded.items() if t is None]
            if not pending or time.time() > deadline_wall:
                return recorded
            found = await gather_limited((self.w.recorded_payments(i) for i in pending), limit=8)
            for invoice_id, payments in zip(pending, found, strict=True):
                ok = [p for p in payments if p["status"] == "succeeded"]
                if ok:
                    recorded[invoice_id] = dt.datetime.fromisoformat(
                        ok[0]["created_at"].replace("Z", "+00:00")).timestamp()
            await asyncio.sleep(0.5)

    # -- one database -------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def database_url(self, database: str) -> AsyncIterator[str]:
        if database == "sqlite":
            yield f"sqlite:///{self.workdir / 'invoicebot.db'}"
        else:
            async with temporary_pg_database(self.config.pg_url) as url:
                yield url

    async def on_database(self, database: str, *, with_baseline: bool) -> None:
        self.database = database
        dbdir = self.workdir / database
        dbdir.mkdir(parents=True, exist_ok=True)
        log(f"{database}: starting localstripe, billing sandbox, Slack stand-in")
        self.sandboxes = Sandboxes(dbdir).start(billing_latency=0.0)
        self.world = BenchWorld(self.sandboxes)
        try:
            if with_baseline:
                saved, self.database = self.database, ""
                await self.baseline()
                self.database = saved
            wants_app = any(s in self.config.scenarios for s in ("ack", "click_to_open", "list_scale", "payments"))
            if not wants_app:
                return
            async with self.database_url(database) as url:
                log(f"{database}: starting invoicebot serve --workers {self.config.workers}")
                self.app = start_app(self.sandboxes, url, self.config.workers, dbdir)
                try:
                    await self.seed_common()
                    if "payments" in self.config.scenarios:
                        await self.payments()
                    if "list_scale" in self.config.scenarios:
                        await self.list_scale()
                    if "ack" in self.config.scenarios or "click_to_open" in self.config.scenarios:
                        latencies = (self.config.latencies if "ack" in self.config.scenarios
                                     else [2.0] if not self.config.quick else self.config.latencies)
                        for latency in latencies:
                            await self.w.set_billing_latency(latency)
                            for rate in self.config.rates:
                                if "ack" in self.config.scenarios:
                                    await self.run_commands(rate, latency)
                                await self.run_pay_now_and_submit(rate, latency)
                        await self.w.set_billing_latency(0.01)
                    await self.finish_payments()
                finally:
                    self.app.stop()
        finally:
            await self.world.aclose()
            self.sandboxes.stop()


async def amain(config: Config, workdir: Path) -> dict[str, Any]:
    bench = Bench(config, workdir)
    started = dt.datetime.now(dt.UTC)
    load_before = [round(x, 2) for x in os.getloadavg()]
    clock = time.monotonic()
    for n, database in enumerate(config.databases):
        await bench.on_database(database, with_baseline=(n == 0 and "baseline" in config.scenarios))
    order = {name: n for n, name in enumerate(("baseline", "ack", "click_to_open", "list_scale", "payments"))}
    dbs = {name: n for n, name in enumerate(config.databases)}
    rows = sorted(bench.rows, key=lambda r: (dbs.get(r["database"], -1), order[r["scenario"]]))
    return {
        "generated_at": started.isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - clock, 1),
        "command": "python -m bench " + " ".join(sys.argv[1:]),
        "machine": report.machine(),
        # Other work on the machine competes for the same cores: the 1/5/15-minute load
        # averages before and after the run say how quiet it was.
        "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
        "config": {k: v for k, v in config.__dict__.items() if k != "pg_url"},
        "targets": {"ack_p99_ms": ACK_P99_TARGET_MS, "ratio_to_bare_bolt": RATIO_TARGET,
                    "click_to_open_p99_ms": CLICK_TO_OPEN_P99_TARGET_MS, "list_growth_10_to_10000": LIST_GROWTH_TARGET,
                    "payments_done_s": PAYMENTS_DONE_TARGET_S, "peak_rss_mb_per_worker": RSS_TARGET_MB},
        "notes": bench.notes,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few requests per scenario, SQLite, one latency")
    parser.add_argument("--scenarios", nargs="+", metavar="NAME",
                        help=f"any of {', '.join(SCENARIOS)} (space or comma separated; default all)")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"],
                        help="default: both (sqlite with --quick)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (default 2)")
    parser.add_argument("--out", type=Path, help="JSON results (default docs/bench-results.json; "
                                                 "test-artifacts/bench-quick.json with --quick)")
    parser.add_argument("--duration", type=float, help="seconds of load per ack run (default 10; 1 with --quick)")
    parser.add_argument("--rates", type=float, nargs="+", help="requests/s (default 20 50; 5 with --quick)")
    parser.add_argument("--billing-latencies", type=float, nargs="+", metavar="SECONDS",
                        help="billing API latency for the ack runs (default 0.01 2; 0.01 with --quick)")
    parser.add_argument("--pg-url", default=PG_SERVER, help="PostgreSQL server for the throw-away database")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, load generator files)")
    args = parser.parse_args(argv)
    config = config_from(args)
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so every server we started is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    out = args.out or Path("test-artifacts/bench-quick.json" if config.quick else "docs/bench-results.json")
    workdir = Path(tempfile.mkdtemp(prefix="invoicebot-bench-"))
    log(f"work folder {workdir}; scenarios {', '.join(config.scenarios)}; databases {', '.join(config.databases)}")
    ok = False
    try:
        results = asyncio.run(amain(config, workdir))
        ok = True
    except KeyboardInterrupt:
        log("interrupted: every server started was stopped")
        return 130
    finally:
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"logs kept in {workdir}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(report.table(results["rows"]))
    m = results["machine"]
    print(f"\n{m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, Python {m['python']}; "
          f"{results['elapsed_s']}s; results in {out}")
    for note in results["notes"]:
        print(f"note: {note}")
    return 0
