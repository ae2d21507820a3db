"""Where the app's CPU goes, by library, from `python -m bench.profile --format raw` stacks.

    python -m bench.breakdown docs/profiles/submission.txt docs/profiles/pay-now-click.txt \\
        --ms-per-op 80 27      # CPU ms per operation of each phase, from the bench's table

Each sample is charged to the library of its innermost frame that belongs to one (walking
out from the leaf past the standard library's helpers, JSON and h11, which work for
whoever called them: h11 parses for uvicorn and for httpcore alike). So "SQLAlchemy and
the driver" is the time spent inside SQLAlchemy, aiosqlite, asyncpg and greenlet on behalf
of the app's queries, "invoicebot" the app's own lines. With `--ms-per-op` the shares are
also given in milliseconds per operation: what each library costs one `/invoices`, one
Pay Now or one submission, i.e. the floor that remains once the app's own code costs
nothing.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

# (name, pattern on a frame's "(file:line)" part), first match wins, innermost frame first.
LIBRARIES: list[tuple[str, re.Pattern[str]]] = [
    ("SQLAlchemy and the database driver", re.compile(r"\((sqlalchemy|aiosqlite|asyncpg|greenlet|sqlite3)/|<sqlalchemy")),
    ("Stripe SDK", re.compile(r"\(stripe/")),
    ("HTTP clients (httpx, httpcore, aiohttp)", re.compile(r"\((httpx|httpcore|aiohttp|anyio|yarl|multidict|ssl)[/.]")),
    ("Slack SDK (Web API client, Block Kit models)", re.compile(r"\(slack_sdk/")),
    ("Bolt", re.compile(r"\(slack_bolt/")),
    ("web server (uvicorn, Starlette)", re.compile(r"\((uvicorn|starlette|httptools|uvloop)/")),
    ("pydantic", re.compile(r"\(pydantic(_core)?/")),
    ("Babel", re.compile(r"\(babel/")),
    ("logging", re.compile(r"\(logging/")),
    ("invoicebot", re.compile(r"\((bot|handlers|blocks|storage)/")),
    ("event loop (asyncio)", re.compile(r"\((asyncio|selectors)[/.]")),
]
# Frames that work for their caller (the sample goes to the next frame out).
NEUTRAL = re.compile(r"\((json|h11|email|http|urllib|re|typing|enum|functools|contextlib|abc|copy|dataclasses"
                     r"|inspect|weakref|collections|datetime|decimal|_strptime|string|base64|hmac|hashlib"
                     r"|uuid|random|secrets|threading|queue|socket|traceback|linecache|<frozen [^>]+>)[/.]")


def charge(stack: list[str]) -> str:
    for frame in reversed(stack):
        if NEUTRAL.search(frame):
            continue
        for name, pattern in LIBRARIES:
            if pattern.search(frame):
                return name
    return "other"


def shares(path: Path) -> tuple[int, collections.Counter[str]]:
    total = 0
    by_library: collections.Counter[str] = collections.Counter()
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        by_library[charge(stack.split(";"))] += samples
    return total, by_library


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.breakdown", description=__doc__.split("\n\n")[0])
    parser.add_argument("profiles", nargs="+", type=Path, help="collapsed stacks (bench.profile --format raw)")
    parser.add_argument("--ms-per-op", nargs="*", type=float, default=[],
                        help="CPU ms per operation of each profile's phase (the bench's 'CPU ms/op')")
    args = parser.parse_args(argv)
    results = [shares(path) for path in args.profiles]
    names = [name for name, _ in LIBRARIES] + ["other"]
    header = "| library | " + " | ".join(p.stem for p in args.profiles) + " |"
    print(header)
    print("|---|" + "---|" * len(args.profiles))
    for name in names:
        cells = []
        for i, (total, by_library) in enumerate(results):
            share = by_library[name] / total if total else 0.0
            cell = f"{100 * share:.0f} %"
            if i < len(args.ms_per_op):
                cell += f" ({share * args.ms_per_op[i]:.1f} ms)"
            cells.append(cell)
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("| samples | " + " | ".join(str(total) for total, _ in results) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
