"""bench/report.py: CPU per operation and its multiple of bare Bolt's, from a made-up result."""

from __future__ import annotations

from typing import Any

from bench import loadgen, report
from blocks.invoices import COUNTING


def row(scenario: str, what: str, rate: float | None, requests: int, cpu: dict[str, float] | None,
        **extra: Any) -> dict[str, Any]:
    return {"scenario": scenario, "database": None if scenario == "baseline" else "sqlite", "what": what,
            "rate_rps": rate, "billing_latency_ms": None if scenario == "baseline" else 10.0,
            "requests": requests, "p50_ms": 12.0, "p95_ms": 13.0, "p99_ms": 14.0, "max_ms": 15.0,
            "errors": 0, "cpu_s": cpu, **extra}


RESULT = [
    row("baseline", "bare Bolt ack: command", 50, 500, {"bare_workers": 1.0, "other_processes_pct": 3.0}),
    row("baseline", "bare Bolt ack: click", 20, 200, {"bare_workers": 0.5}),
    row("ack", "/invoices", 50, 400, {"app_workers": 6.0, "localstripe": 9.0}),  # localstripe is not the app
    row("ack", "Pay Now click", 50, 400, {"app_workers": 10.0}),  # no bare click at 50/s: its lowest rate
    row("list_scale", "first page, 10000 invoices", None, 10, {"app_workers": 0.7}, operations=14),
    row("ack", "modal submission", 50, 400, {"app_workers": 20.0}),  # no bare submit at all
    row("ack", "/invoices", 20, 0, None),  # nothing measured
]


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_cpu_per_operation_and_its_multiple_of_bare_bolt_are_columns_of_the_table() -> None:
    lines = report.markdown(RESULT).splitlines()
    head = cells(lines[0])
    assert head[head.index("x bare p50/p99") + 1:head.index("RSS MB")] == ["CPU ms/op", "CPU x bare"]
    cpu, ratio = head.index("CPU ms/op"), head.index("CPU x bare")
    table = {(c[0], c[2], c[3]): (c[cpu], c[ratio]) for c in map(cells, lines[2:])}
    assert table == {
        ("baseline", "bare Bolt ack: command", "50"): ("2.0", "-"),  # 1.0 s / 500
        ("baseline", "bare Bolt ack: click", "20"): ("2.5", "-"),
        ("ack", "/invoices", "50"): ("15.0", "7.5"),  # 6.0 s / 400 = 15 ms, 15 / 2
        ("ack", "Pay Now click", "50"): ("25.0", "10.0"),  # against the bare click at 20/s
        ("list_scale", "first page, 10000 invoices", "-"): ("50.0", "25.0"),  # 14 operations, warm-up included
        ("ack", "modal submission", "50"): ("50.0", "-"),
        ("ack", "/invoices", "20"): ("-", "-"),
    }


def test_one_row_is_compared_with_a_baseline_given_apart() -> None:
    """The runner prints each row as it comes, with the baseline measured earlier."""
    def last_row(text: str) -> dict[str, str]:
        head, dashes, *body = text.splitlines()
        starts = [i for i, ch in enumerate(dashes) if ch == "-" and (i == 0 or dashes[i - 1] == " ")]
        bounds = list(zip(starts, [*starts[1:], None], strict=True))
        return {head[a:b].strip(): body[-1][a:b].strip() for a, b in bounds}

    given = last_row(report.table([RESULT[2]], baseline=RESULT[:2]))
    assert (given["CPU ms/op"], given["CPU x bare"]) == ("15.0", "7.5")
    alone = last_row(report.table([RESULT[2]]))
    assert (alone["CPU ms/op"], alone["CPU x bare"]) == ("15.0", "-")

def test_the_load_generator_knows_what_a_first_page_still_counting_says() -> None:
    assert loadgen.COUNTING == COUNTING


def test_the_breakdown_charges_each_sample_to_the_library_that_did_the_work(tmp_path) -> None:  # noqa: ANN001
    from bench.breakdown import charge, shares  # noqa: PLC0415

    # h11 parses for whoever called it; json works for its caller; the app's own line is the app's.
    assert charge(["main (uvicorn/server.py:1)", "handle (h11/_connection.py:2)"]) == "web server (uvicorn, Starlette)"
    assert charge(["send (httpcore/_async/http11.py:1)", "next_event (h11/_connection.py:2)"]).startswith("HTTP")
    assert charge(["submit (bot/payments.py:3)", "dumps (json/encoder.py:4)"]) == "invoicebot"
    assert charge(["execute (sqlalchemy/orm/session.py:5)"]).startswith("SQLAlchemy")
    stacks = tmp_path / "s.txt"
    stacks.write_text("a (bot/x.py:1);b (stripe/_x.py:2) 3\na (bot/x.py:1) 1\n")
    total, by_library = shares(stacks)
    assert total == 4 and by_library["Stripe SDK"] == 3 and by_library["invoicebot"] == 1
