"""`invoicebot`: serve the app, check its services, migrate, reconcile, trace payments, and
run the local sandbox and demo.

Adding a command is one function here (its options, `--help` from the docstring) calling
one function in bot/commands.py, wrapped in `guarded()`:

    @app.command()
    def hello(name: Annotated[str, typer.Argument(help="who")]) -> None:
        \"\"\"Say hello.\"\"\"
        _exit(impl.guarded(lambda: impl.hello(name)))

A command with subcommands is a `typer.Typer()` added with `app.add_typer(...)` (see
`payments_app`: its callback lists, `@payments_app.command()` adds e.g. `payments resolve`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from enum import Enum
from typing import Annotated, NoReturn

import typer

from bot import commands as impl
from storage.models import PaymentStatus

app = typer.Typer(name="invoicebot", help=__doc__.split("\n\n", 1)[0], no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False,  # never print locals (secrets)
                  context_settings={"help_option_names": ["-h", "--help"]})

# Shared option types.
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON (for scripts) instead of a table")]
Status = Enum("Status", {s.name: s.value for s in PaymentStatus}, type=str)  # type: ignore[misc]


def _exit(code: int) -> NoReturn:
    raise typer.Exit(code)


@app.callback()
def _options(verbose: Annotated[int, typer.Option("-v", "--verbose", count=True,
                                                  help="more logs: -v info, -vv debug")] = 0) -> None:
    impl.OPTIONS.verbose = verbose


# -- running the app ---------------------------------------------------------------------------
@app.command()
def serve(ctx: typer.Context,
          host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="port to listen on")] = 3000,
          workers: Annotated[int, typer.Option(help="worker processes (share one PostgreSQL)")] = 1) -> None:
    """Run the app over HTTP (POST /slack/events, GET /healthz, GET /readyz)."""
    _exit(impl.guarded(lambda: impl.serve(ctx.obj, host, port, workers)))


@app.command()
def socket(ctx: typer.Context) -> None:
    """Run the app in Socket Mode (needs SLACK_APP_TOKEN)."""
    _exit(impl.guarded(lambda: impl.socket(ctx.obj)))


@app.command()
def check(as_json: JsonOption = False) -> None:
    """Check every configured service for real: Slack, Stripe, the billing API, the database.

    One line per check with its fix; exit code 0 when all pass, 1 otherwise."""
    _exit(impl.guarded(lambda: impl.check(as_json=as_json)))


@app.command()
def reconcile(ctx: typer.Context) -> None:
    """Finish payments left half-way, asking Stripe for the truth."""
    _exit(impl.guarded(lambda: impl.reconcile(ctx.obj)))


# -- the database ------------------------------------------------------------------------------
db_app = typer.Typer(help="The database schema (needs DATABASE_URL only).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the database or bring its schema to the current version."""
    _exit(impl.guarded(impl.db_upgrade))


@db_app.command("current")
def db_current() -> None:
    """Which schema revision the database is at ("empty" for none)."""
    _exit(impl.guarded(impl.db_current))


# -- reading the database ----------------------------------------------------------------------
payments_app = typer.Typer(help="Recent payments and where they stand (needs DATABASE_URL only).",
                           invoke_without_command=True)
app.add_typer(payments_app, name="payments")


@payments_app.callback()
def payments(ctx: typer.Context,
             status: Annotated[Status | None, typer.Option(help="only payments in this state")] = None,
             invoice: Annotated[str | None, typer.Option(help="invoice id or number")] = None,
             limit: Annotated[int, typer.Option(min=1, help="at most this many, newest first")] = 50,
             as_json: JsonOption = False) -> None:
    """Recent payments and where they stand."""
    if ctx.invoked_subcommand is not None:
        return
    _exit(impl.guarded(lambda: impl.payments(status=status.value if status else None, invoice=invoice,
                                             limit=limit, as_json=as_json)))


@payments_app.command("resolve")
def payments_resolve(
        ctx: typer.Context,
        payment_id: Annotated[str, typer.Argument(help="the payment's id (pay_...), from `invoicebot payments`")],
        refund: Annotated[bool, typer.Option("--refund", help="refund it at Stripe")] = False,
        record: Annotated[bool, typer.Option("--record", help="record it in billing again (once billing is fixed)")]
        = False,
        cancel: Annotated[bool, typer.Option("--cancel", help="a confirm Stripe refused, not charged: cancel it")]
        = False,
        by: Annotated[str | None, typer.Option(help="who resolves it (default: the OS user)")] = None) -> None:
    """End a payment that needs attention: refund it, record it again (or retry a refused confirm), or cancel
    a refused confirm that charged nothing (audited; payer and channel told)."""
    if refund + record + cancel != 1:
        typer.echo("invoicebot payments resolve: choose one of --refund, --record or --cancel", err=True)
        _exit(2)
    how = "refund" if refund else "cancel" if cancel else "record"
    _exit(impl.guarded(lambda: impl.resolve_payment(ctx.obj, payment_id, how=how, by=by)))


@app.command()
def audit(user: Annotated[str | None, typer.Option(help="Slack user id")] = None,
          invoice: Annotated[str | None, typer.Option(help="invoice id or number")] = None,
          limit: Annotated[int, typer.Option(min=1, help="at most this many, newest first")] = 100,
          as_json: JsonOption = False) -> None:
    """The audit trail: who listed, opened, paid, or was denied (needs DATABASE_URL only)."""
    _exit(impl.guarded(lambda: impl.audit(user=user, invoice=invoice, limit=limit, as_json=as_json)))


outbox_app = typer.Typer(help="Slack messages waiting, delivered or given up; send again (needs DATABASE_URL "
                         "only).", invoke_without_command=True)
app.add_typer(outbox_app, name="outbox")


@outbox_app.callback()
def outbox(ctx: typer.Context,
           failed: Annotated[bool, typer.Option("--failed", help="only the messages given up (the dead letters)")]
           = False,
           limit: Annotated[int, typer.Option(min=1, help="at most this many, newest first")] = 50,
           as_json: JsonOption = False) -> None:
    """The latest outbox messages, or the dead letters (--failed)."""
    if ctx.invoked_subcommand is not None:
        return
    _exit(impl.guarded(lambda: impl.outbox(failed=failed, limit=limit, as_json=as_json)))


@outbox_app.command("retry")
def outbox_retry(ids: Annotated[list[int] | None, typer.Argument(metavar="ID...", help="outbox message ids")] = None,
                 all_failed: Annotated[bool, typer.Option("--all-failed", help="every message given up")] = False
                 ) -> None:
    """Send messages again now (after fixing the cause)."""
    _exit(impl.guarded(lambda: impl.outbox_retry(ids or [], all_failed=all_failed)))


@app.command()
def jobs(limit: Annotated[int, typer.Option(min=1, help="at most this many of each list")] = 50,
         as_json: JsonOption = False) -> None:
    """The scheduler's jobs: due and upcoming, then recent (run, skipped, failed, canceled)."""
    _exit(impl.guarded(lambda: impl.jobs(limit=limit, as_json=as_json)))


# -- local stand-ins ---------------------------------------------------------------------------
@app.command()
def sandbox(host: str = "127.0.0.1", port: int = 8300, db: str = "sandbox-billing.db",
            token: Annotated[str, typer.Option(help="the bearer token it accepts")] = "sandbox-token",
            latency: Annotated[float, typer.Option(help="seconds added to every answer")] = 0.0,
            fresh: Annotated[bool, typer.Option("--fresh", help="start from new seed data")] = False,
            stripe_api_base: Annotated[str | None, typer.Option(
                help="a localstripe to create the profiles' customers and saved cards in")] = None) -> None:
    """Run the sandbox billing API (seeded) on its own."""
    _exit(impl.guarded(lambda: impl.sandbox(host=host, port=port, db=db, token=token, latency=latency,
                                            fresh=fresh, stripe_api_base=stripe_api_base)))


@app.command()
def demo(port: Annotated[int, typer.Option(help="the page's port")] = 3000,
         keep: Annotated[bool, typer.Option("--keep", help="keep the data of the last run")] = False) -> None:
    """The whole product on this machine, in a browser."""
    _exit(impl.guarded(lambda: impl.demo(port=port, keep=keep)))


def main(argv: Sequence[str] | None = None, *, wiring: impl.Wiring | None = None) -> int:
    """Run one command. `wiring` is the app the serving commands run (handlers/entry.py
    gives it: bot/ does not import the Slack side); without it they say where to start."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="invoicebot", obj=wiring)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
