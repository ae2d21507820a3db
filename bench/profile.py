"""Flame graphs of the app during a bench run, one per scenario, with py-spy (PyPI).

    pip install -e '.[bench]'     # py-spy, with the stand-ins
    python -m bench.profile --out docs/profiles -- --scenarios ack --database sqlite --rates 20 \\
        --billing-latencies 0.01 --duration 5

Runs `python -m bench <the arguments after -->`, watches its log, and while each of its app
phases runs (the `/invoices` commands, the Pay Now clicks until their forms are loaded, the
submissions until their payments are recorded) records the app's uvicorn workers with
`py-spy record --subprocesses --nonblocking --gil` into `<out>/<phase>.svg`. `--nonblocking`
reads the workers' memory without pausing them, so the profile disturbs the timings little
(a sample may now and then be torn); `--gil` keeps only the thread holding the GIL, i.e.
Python's own CPU (not the event loop idling in uvloop's C code, nor SQLite's statements,
which run in aiosqlite's thread with the GIL released: `--all-threads` keeps those). Every py-spy it starts is stopped with SIGINT (which makes
it write the SVG) when the phase ends, and the bench is waited for.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

# The runner's log line that starts each phase (bench/runner.py: log(...)) -> the SVG's name.
PHASES = {
    re.compile(r": /invoices x\d+ at"): "list",
    re.compile(r": Pay Now x\d+ at"): "pay-now-click",
    re.compile(r": submit x\d+ at"): "submission",
}
# A line that ends the running phase without starting another (the row of a phase is logged
# once its follow-ups are in; the next phase's own line also ends it).
ROW = re.compile(r"^\[\s*[\d.]+s\]\s{3}(ack|list_scale|payments|click_to_open)\s")


def app_master(bench_pid: int) -> int | None:
    """The bench's `handlers.entry serve` child (uvicorn's supervisor of the workers)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == bench_pid and b"handlers.entry" in cmdline and b"serve" in cmdline:
            return int(entry.name)
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ours, bench_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/profiles"))
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second (default 100)")
    parser.add_argument("--all-threads", action="store_true",
                        help="sample every running thread (waits in C included: SQLite's thread, the idle "
                             "event loop), not only the one holding the GIL (the default: Python's CPU)")
    parser.add_argument("--format", choices=("flamegraph", "raw"), default="flamegraph",
                        help="flamegraph: an SVG (the default); raw: collapsed stacks as text, one stack and its "
                             "sample count a line, to read or diff with a script")
    args = parser.parse_args(ours)
    suffix = "svg" if args.format == "flamegraph" else "txt"
    spy = shutil.which("py-spy")
    if spy is None:
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    bench = subprocess.Popen([sys.executable, "-m", "bench", *bench_args], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    recording: tuple[str, subprocess.Popen[str]] | None = None
    recorded: list[str] = []

    def stop() -> None:
        nonlocal recording
        if recording is None:
            return
        name, process = recording
        process.send_signal(signal.SIGINT)  # py-spy writes the flame graph on SIGINT
        try:
            out, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
        print(f"[profile] {name}: py-spy exited {process.returncode}: {(out or '').strip()[-300:]}", flush=True)
        if process.returncode == 0 or (args.out / f"{name}.{suffix}").exists():
            recorded.append(name)
        recording = None

    try:
        assert bench.stdout is not None
        for line in bench.stdout:
            print(line, end="", flush=True)
            phase = next((name for pattern, name in PHASES.items() if pattern.search(line)), None)
            if phase is None:
                if ROW.search(line):
                    stop()
                continue
            stop()
            if phase in recorded:
                continue  # the first run of each phase only
            master = None
            for _ in range(50):
                master = app_master(bench.pid)
                if master:
                    break
                time.sleep(0.1)
            if master is None:
                print("[profile] the app process was not found", flush=True)
                continue
            svg = args.out / f"{phase}.{suffix}"
            process = subprocess.Popen(
                [spy, "record", "--pid", str(master), "--subprocesses", "--nonblocking", "--rate", str(args.rate),
                 "--output", str(svg), "--format", args.format, *([] if args.all_threads else ["--gil"])],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            recording = (phase, process)
            print(f"[profile] recording {phase} (pid {master}) into {svg}", flush=True)
        stop()
        return bench.wait()
    finally:
        stop()
        if bench.poll() is None:
            bench.send_signal(signal.SIGTERM)  # the bench stops every server it started on SIGTERM
            bench.wait(timeout=60)
        print(f"[profile] flame graphs: {', '.join(recorded) or 'none'} in {os.fspath(args.out)}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
