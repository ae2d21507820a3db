"""What each `invoicebot` subcommand does (bot/cli.py declares them and their options).

Every command loads only the settings it uses (`database_settings()` for commands that
touch the bot's own database alone, `service_settings()` for those that talk to Slack,
Stripe or the billing API) and prints listings through `emit()`, which knows `--json`.
Problems an operator can fix are `CommandError`s: one line on stderr, exit code 1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

from bot import logs
from bot.settings import DatabaseSettings, Settings, SettingsError, load_database_settings, load_settings

T = TypeVar("T")


class CommandError(Exception):
    """Something the operator can fix: printed as one line, exit code 1."""


class Wiring(Protocol):
    """The app the serving commands run, given by the entry point (handlers/entry.py)."""

    factory: str  # "module:function" building the ASGI app from the environment (uvicorn workers)

    def build(self, settings: Settings) -> Any:
        """Every service of the app, and its Bolt app (`.bolt`)."""

    def running(self, built: Any, *, background: bool = True) -> AbstractAsyncContextManager[Any]:
        """`built`'s background work started, and everything closed at the end."""

    def web_app(self, settings: Settings) -> Any:
        """The ASGI app (bot/server.py's) serving `build(settings)`."""


def wired(wiring: Wiring | None) -> Wiring:
    if wiring is None:
        raise CommandError("this command runs the app: start it as `invoicebot` or `python -m handlers.entry`")
    return wiring


@dataclass
class Options:
    """Options every command shares (set by the CLI's callback)."""

    verbose: int = 0


OPTIONS = Options()


def guarded(work: Callable[[], int | None]) -> int:
    """Run one command: settings problems and CommandErrors become lines on stderr, never tracebacks."""
    from storage.schema import DatabaseUnavailable  # noqa: PLC0415

    try:
        return work() or 0
    except SettingsError as exc:
        print(exc.code, file=sys.stderr)
        return 2
    except (CommandError, DatabaseUnavailable) as exc:
        print(f"invoicebot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


# -- settings and logs -------------------------------------------------------------------------
def configure_logs(settings: DatabaseSettings, *, server: bool = False) -> None:
    """Quiet by default: a short command prints its result and warnings only (`-v` for INFO,
    `-vv` for DEBUG); a server logs at LOG_LEVEL. Alembic's INFO lines only with -v."""
    verbose = OPTIONS.verbose
    if server:
        level = "DEBUG" if verbose > 1 else settings.log_level
    else:
        level = {0: "WARNING", 1: "INFO"}.get(verbose, "DEBUG")
    logs.configure(settings.log_format, level)
    logging.getLogger("alembic").setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else
                                          logging.WARNING)


def database_settings() -> DatabaseSettings:
    settings = load_database_settings()
    configure_logs(settings)
    return settings


def service_settings(*, server: bool = False) -> Settings:
    settings = load_settings()
    configure_logs(settings, server=server)
    return settings


# -- output ------------------------------------------------------------------------------------
def emit(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], *, as_json: bool, empty: str,
         title: str | None = None) -> None:
    """A listing: a table with headers (Rich), or `--json` (a JSON array of objects, all fields,
    for scripts). `columns` are (key, header) pairs; `empty` is said when there are no rows."""
    if as_json:
        print(json.dumps(list(rows), ensure_ascii=False, default=str, indent=2))
        return
    if not rows:
        print(empty)
        return
    from rich.console import Console  # noqa: PLC0415 - keep --help fast
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=title, show_lines=False, header_style="bold")
    for key, header in columns:
        table.add_column(header, justify="right" if key in {"amount", "count"} else "left",
                         overflow="fold")
    for row in rows:
        table.add_row(*("" if row.get(key) is None else str(row.get(key)) for key, _ in columns))
    Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200).print(table)


# -- the database ------------------------------------------------------------------------------
def require_current_schema(settings: DatabaseSettings) -> None:
    """Refuse to run on a database that is behind (or absent), creating nothing."""
    from storage.schema import head_revision, revision_of  # noqa: PLC0415

    current = asyncio.run(revision_of(settings.database_url))
    if current != head_revision():
        raise CommandError(f"the database is at {current or 'an empty schema'}, not {head_revision()}: "
                           "run `invoicebot db upgrade` first")


def on_database(work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(sessions)` on the bot's own database (DATABASE_URL alone, schema current),
    closing its engine after: what every command that only reads the database does."""
    from storage.db import create_engine, session_factory  # noqa: PLC0415

    settings = database_settings()
    require_current_schema(settings)

    async def main() -> T:
        engine = create_engine(settings.database_url)
        try:
            return await work(session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())


def db_upgrade() -> int:
    from storage.schema import (  # noqa: PLC0415
        DatabaseUnavailable, check_can_create, describe_failure, head_revision, revision_of, upgrade,
    )

    settings = database_settings()
    check_can_create(settings.database_url)
    try:
        upgrade(settings.database_url)
    except DatabaseUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - the driver's error, as one line
        logging.getLogger(__name__).debug("db upgrade failed", exc_info=True)
        raise CommandError(describe_failure(settings.database_url, exc)) from None
    # Say where it stands from the database itself, not from what was asked.
    print(f"database at {asyncio.run(revision_of(settings.database_url)) or head_revision()}")
    return 0


def db_current() -> int:
    from storage.schema import revision_of  # noqa: PLC0415

    settings = database_settings()
    print(asyncio.run(revision_of(settings.database_url)) or "empty")
    return 0


# -- serving -----------------------------------------------------------------------------------
# uvloop's event loop and httptools' HTTP parser (uvicorn[standard]): measurably less CPU per
# request than asyncio's loop and h11 (docs/performance.md).
SERVER_STACK: dict[str, Any] = {"loop": "uvloop", "http": "httptools"}


def serve(wiring: Wiring | None, host: str, port: int, workers: int) -> int:
    import uvicorn  # noqa: PLC0415

    app = wired(wiring)
    settings = service_settings(server=True)
    require_current_schema(settings)
    if workers > 1:
        # Each worker process builds its own app from the same environment. glibc gives every
        # thread that allocates (aiosqlite runs one per connection) an arena of its own; two
        # arenas per worker keep ~6 MB less resident each at month-end load, at no measured
        # cost in CPU (docs/performance.md). Read by each worker as it starts; an operator's
        # own setting wins.
        os.environ.setdefault("MALLOC_ARENA_MAX", "2")
        uvicorn.run(app.factory, factory=True, host=host, port=port, workers=workers, **SERVER_STACK,
                    log_config=None, access_log=False, timeout_graceful_shutdown=20)
    else:
        uvicorn.run(app.web_app(settings), host=host, port=port, **SERVER_STACK, log_config=None,
                    access_log=False, timeout_graceful_shutdown=20)
    return 0


def socket(wiring: Wiring | None) -> int:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler  # noqa: PLC0415

    from bot.settings import EXPECTS  # noqa: PLC0415

    settings = service_settings(server=True)
    if settings.slack_app_token is None:
        raise SettingsError(f"SLACK_APP_TOKEN is missing: {EXPECTS['SLACK_APP_TOKEN']}")
    require_current_schema(settings)
    app_token = settings.slack_app_token.get_secret_value()
    app = wired(wiring)

    async def main() -> None:
        async with app.running(app.build(settings)) as built:
            handler = AsyncSocketModeHandler(built.bolt, app_token)
            await handler.start_async()

    asyncio.run(main())
    return 0


def reconcile(wiring: Wiring | None) -> int:
    app = wired(wiring)
    settings = service_settings()
    require_current_schema(settings)

    async def main() -> int:
        async with app.running(app.build(settings), background=False) as services:
            report = await services.reconciler.run_once(force=True)
            expired = await services.approvals.expire_now() if services.approvals else 0
            await services.outbox.deliver_due()
        for payment_id, before, after in report.changed:
            print(f"{payment_id}: {before} -> {after}")
        print(f"examined {report.examined} unfinished payments, changed {len(report.changed)}")
        if expired:
            print(f"expired {expired} approval requests past APPROVAL_TTL_HOURS")
        return 0

    return asyncio.run(main())


# -- check -------------------------------------------------------------------------------------
def check(*, as_json: bool) -> int:
    from bot.checks import check_database, run_checks, settings_failures  # noqa: PLC0415

    try:
        settings = service_settings()
        results = asyncio.run(run_checks(settings))
    except SettingsError as exc:
        # Still say what can be said: the settings at fault, and the database if it is named.
        results = settings_failures(exc.problems)
        try:
            results += asyncio.run(check_database(database_settings()))
        except SettingsError:
            pass
    if as_json:
        print(json.dumps({"ok": all(r.passed for r in results), "checks": [r.as_dict() for r in results]},
                         ensure_ascii=False, indent=2))
    else:
        for result in results:
            print(result.line())
        failed = sum(not r.passed for r in results)
        print("all checks passed" if not failed else f"{failed} of {len(results)} checks failed")
    return 0 if all(r.passed for r in results) else 1


# -- reading the database ----------------------------------------------------------------------
def payments(*, status: str | None, invoice: str | None, limit: int, as_json: bool) -> int:
    from bot.money import Money  # noqa: PLC0415
    from storage.payments import PaymentRepository  # noqa: PLC0415

    found = on_database(lambda sessions: PaymentRepository(sessions).recent(status=status, invoice=invoice,
                                                                            limit=limit))
    rows = [{
        "id": p.id, "created_at": p.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        "updated_at": p.updated_at.strftime("%Y-%m-%d %H:%M:%S"), "invoice_id": p.invoice_id,
        "invoice_number": p.invoice_number, "billing_profile_id": p.billing_profile_id,
        # Exact amounts: a decimal string for scripts, the formatted one for people.
        "amount": Money.from_minor(p.amount_minor, p.currency).format() if not as_json else
        Money.from_minor(p.amount_minor, p.currency).api_string(),
        "currency": p.currency, "method": p.method_label, "status": str(p.status), "user_id": p.user_id,
        "failure": p.failure_message or None,
    } for p in found]
    what = " ".join(filter(None, [f"with status {status}" if status else "", f"for invoice {invoice}" if invoice
                                  else ""]))
    emit(rows, [("created_at", "created (UTC)"), ("updated_at", "updated (UTC)"), ("id", "payment"),
                ("invoice_number", "invoice"), ("amount", "amount"), ("method", "method"), ("status", "status"),
                ("failure", "failure")],
         as_json=as_json, empty=f"no payments {what}".rstrip() + ".")
    return 0


def resolve_payment(wiring: Wiring | None, payment_id: str, *, how: str, by: str | None) -> int:
    """`invoicebot payments resolve <id> --refund | --record [--by NAME]`."""
    from bot.resolutions import OperatorError, operator_name, resolve  # noqa: PLC0415

    app = wired(wiring)
    settings = service_settings()
    require_current_schema(settings)

    async def main() -> int:
        async with app.running(app.build(settings), background=False) as services:
            try:
                resolved = await resolve(services, payment_id, how, by=operator_name(by))
            except OperatorError as exc:
                raise CommandError(str(exc)) from None
            finally:
                await services.outbox.deliver_due()  # the payer's DM and the channel notice, now
        print(resolved.message)
        return 0 if resolved.after != "needs_attention" else 1

    return asyncio.run(main())


def audit(*, user: str | None, invoice: str | None, limit: int, as_json: bool) -> int:
    from storage.audit import AuditLog  # noqa: PLC0415

    found = on_database(lambda sessions: AuditLog(sessions).events(user_id=user, invoice=invoice, limit=limit))
    rows = [{
        "id": e.id, "at": e.at.strftime("%Y-%m-%d %H:%M:%S"), "team_id": e.team_id, "user_id": e.user_id,
        "action": e.action, "outcome": e.outcome, "invoice_id": e.invoice_id,
        "billing_profile_id": e.billing_profile_id, "payment_id": e.payment_id,
        "detail": e.detail if as_json else json.dumps(e.detail, sort_keys=True, ensure_ascii=False),
    } for e in found]
    what = " ".join(filter(None, [f"by {user}" if user else "", f"for invoice {invoice}" if invoice else ""]))
    empty = f"no audit events {what}".rstrip() + "."
    if invoice and not rows:
        empty += " (An invoice number is found once a payment of it was tried; the invoice id always works.)"
    emit(rows, [("at", "at (UTC)"), ("user_id", "user"), ("action", "action"), ("outcome", "outcome"),
                ("invoice_id", "invoice"), ("payment_id", "payment"), ("detail", "detail")],
         as_json=as_json, empty=empty)
    return 0


def outbox(*, failed: bool, limit: int, as_json: bool) -> int:
    from bot import operator  # noqa: PLC0415
    from storage.outbox import OutboxRepository  # noqa: PLC0415

    rows = on_database(lambda sessions: operator.outbox_rows(OutboxRepository(sessions), failed=failed, limit=limit))
    if as_json:
        print(json.dumps([{
            "id": m.id, "state": operator.state_of(m), "team_id": m.team_id, "channel": m.channel,
            "attempts": m.attempts, "last_error": m.last_error, "text": m.payload.get("text"),
            "created_at": m.created_at, "failed_at": m.failed_at, "delivered_at": m.delivered_at,
        } for m in rows], ensure_ascii=False, default=str, indent=2))
    else:
        print(operator.format_outbox(rows, failed=failed))
    return 0


def outbox_retry(ids: Sequence[int], *, all_failed: bool) -> int:
    from bot import operator  # noqa: PLC0415
    from storage.outbox import OutboxRepository  # noqa: PLC0415

    if not ids and not all_failed:
        raise CommandError("outbox retry: name message ids, or --all-failed")
    result = on_database(lambda sessions: operator.retry_outbox(OutboxRepository(sessions), list(ids),
                                                                 all_failed=all_failed))
    print(operator.format_retry(result))
    return 1 if result.unknown else 0


def jobs(*, limit: int, as_json: bool) -> int:
    """The scheduler's jobs: those still to run (soonest first), then the latest finished."""
    from storage.db import create_engine, session_factory  # noqa: PLC0415
    from storage.jobs import JobRepository  # noqa: PLC0415

    settings = database_settings()
    require_current_schema(settings)

    async def main() -> tuple[list[Any], list[Any]]:
        engine = create_engine(settings.database_url)
        try:
            repo = JobRepository(session_factory(engine))
            return await repo.upcoming(limit=limit), await repo.recent(limit=limit)
        finally:
            await engine.dispose()

    upcoming, recent = asyncio.run(main())

    def row(job: Any) -> dict[str, Any]:
        when = job.finished_at if job.finished_at else job.due_at
        return {"id": job.id, "state": job.status, "kind": job.kind, "key": job.key,
                "due_at": f"{job.due_at:%Y-%m-%d %H:%M:%S}", "finished_at":
                f"{job.finished_at:%Y-%m-%d %H:%M:%S}" if job.finished_at else None,
                "attempts": job.attempts, "held_by": job.locked_by if job.status == "running" else None,
                "note": job.note, "team_id": job.team_id, "at": f"{when:%Y-%m-%d %H:%M:%S}"}

    columns = [("state", "state"), ("kind", "kind"), ("key", "key"), ("due_at", "due (UTC)"),
               ("attempts", "tries"), ("held_by", "held by"), ("note", "note")]
    if as_json:
        emit([row(j) for j in upcoming] + [row(j) for j in recent], columns, as_json=True, empty="")
        return 0
    emit([row(j) for j in upcoming], columns, as_json=False, empty="No jobs to run.", title="Due and upcoming")
    emit([row(j) for j in recent], [*columns[:3], ("finished_at", "finished (UTC)"), *columns[4:5], columns[6]],
         as_json=False, empty="No finished jobs yet.", title="Recent")
    return 0


# -- local stand-ins ---------------------------------------------------------------------------
DEMO_EXTRA = "pip install 'invoicebot[demo]'"


def require_demo_extra(command: str) -> None:
    """The stand-ins need the `demo` extra (localstripe), which the bot's own install leaves
    out: say in one line what to install instead of failing half-way with a traceback."""
    import importlib.util  # noqa: PLC0415

    if any(importlib.util.find_spec(name) is None for name in ("sandbox", "localstripe")):
        raise CommandError(f"`invoicebot {command}` runs the local stand-ins, which are not installed: "
                           f"{DEMO_EXTRA} (in a clone: pip install -e '.[demo]')")


def sandbox(*, host: str, port: int, db: str, token: str, latency: float, fresh: bool,
            stripe_api_base: str | None) -> int:
    require_demo_extra("sandbox")
    from sandbox.run import run_sandbox  # noqa: PLC0415

    logs.configure()
    run_sandbox(host=host, port=port, db_path=db, token=token, latency=latency, fresh=fresh,
                stripe_api_base=stripe_api_base)
    return 0


def demo(*, port: int, keep: bool) -> int:
    require_demo_extra("demo")
    from sandbox.demo import run_demo  # noqa: PLC0415

    logs.configure()
    return run_demo(port=port, keep=keep)
