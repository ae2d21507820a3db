"""What each `invoicebot` subcommand does."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot import logs
from bot.settings import Settings, SettingsError, load_settings


def run(args: argparse.Namespace) -> int:
    handler = {
        "serve": _serve, "socket": _socket, "db": _db, "reconcile": _reconcile, "payments": _payments,
        "audit": _audit, "sandbox": _sandbox, "demo": _demo, "outbox": _outbox,
    }[args.command]
    try:
        return handler(args)
    except SettingsError as exc:
        print(exc.code, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _settings() -> Settings:
    settings = load_settings()
    logs.configure(settings.log_format, settings.log_level)
    return settings


def _current_revision(settings: Settings) -> str | None:
    from storage.db import create_engine  # noqa: PLC0415
    from storage.schema import current_revision  # noqa: PLC0415

    async def read() -> str | None:
        engine = create_engine(settings.database_url)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _require_current_schema(settings: Settings) -> None:
    from storage.schema import head_revision  # noqa: PLC0415

    current = _current_revision(settings)
    if current != head_revision():
        raise SettingsError(f"invoicebot: the database is at {current or 'an empty schema'}, not "
                            f"{head_revision()}: run `invoicebot db upgrade` first")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn  # noqa: PLC0415

    from bot.server import create_web_app  # noqa: PLC0415

    settings = _settings()
    _require_current_schema(settings)
    if args.workers > 1:
        # Each worker process builds its own app from the same environment.
        uvicorn.run("bot.server:app_from_environment", factory=True, host=args.host, port=args.port,
                    workers=args.workers, log_config=None, access_log=False, timeout_graceful_shutdown=20)
    else:
        uvicorn.run(create_web_app(settings), host=args.host, port=args.port, log_config=None,
                    access_log=False, timeout_graceful_shutdown=20)
    return 0


def _socket(_: argparse.Namespace) -> int:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler  # noqa: PLC0415

    from bot.app import build_services, create_bolt_app, running  # noqa: PLC0415

    settings = _settings()
    if settings.slack_app_token is None:
        raise SettingsError("invoicebot: setting SLACK_APP_TOKEN is missing (Socket Mode needs an app-level token)")
    _require_current_schema(settings)

    async def main() -> None:
        async with running(build_services(settings)) as services:
            handler = AsyncSocketModeHandler(create_bolt_app(services), settings.slack_app_token.get_secret_value())
            await handler.start_async()

    asyncio.run(main())
    return 0


def _db(args: argparse.Namespace) -> int:
    from storage.schema import head_revision, upgrade  # noqa: PLC0415

    settings = _settings()
    if args.action == "upgrade":
        upgrade(settings.database_url)
        print(f"database at {head_revision()}")
        return 0
    print(_current_revision(settings) or "empty")
    return 0


def _reconcile(_: argparse.Namespace) -> int:
    from bot.app import build_services, running  # noqa: PLC0415

    settings = _settings()
    _require_current_schema(settings)

    async def main() -> int:
        async with running(build_services(settings), background=False) as services:
            report = await services.reconciler.run_once(force=True)
            await services.outbox.deliver_due()
        for payment_id, before, after in report.changed:
            print(f"{payment_id}: {before} -> {after}")
        print(f"examined {report.examined} unfinished payments, changed {len(report.changed)}")
        return 0

    return asyncio.run(main())


def _payments(args: argparse.Namespace) -> int:
    if getattr(args, "action", None) == "resolve":
        return _resolve(args)
    from bot.money import Money  # noqa: PLC0415
    from storage.db import create_engine, session_factory  # noqa: PLC0415
    from storage.payments import PaymentRepository  # noqa: PLC0415

    settings = _settings()

    async def main() -> None:
        engine = create_engine(settings.database_url)
        try:
            rows = await PaymentRepository(session_factory(engine)).recent(
                status=args.status, invoice=args.invoice, limit=args.limit)
        finally:
            await engine.dispose()
        print(f"{'created (UTC)':<20} {'updated (UTC)':<20} {'payment':<31} {'invoice':<18} {'amount':>16} "
              f"{'method':<22} status")
        for p in rows:
            amount = Money.from_minor(p.amount_minor, p.currency).format()
            print(f"{p.created_at:%Y-%m-%d %H:%M:%S}  {p.updated_at:%Y-%m-%d %H:%M:%S}  {p.id:<31} "
                  f"{p.invoice_number[:18]:<18} {amount:>16} {p.method_label[:22]:<22} {p.status}"
                  + (f" ({p.failure_message})" if p.failure_message else ""))

    asyncio.run(main())
    return 0


def _resolve(args: argparse.Namespace) -> int:
    """`invoicebot payments resolve <id> --refund | --record [--by NAME]`."""
    from bot.app import build_services, running  # noqa: PLC0415
    from bot.resolutions import OperatorError, operator_name, resolve  # noqa: PLC0415

    settings = _settings()
    _require_current_schema(settings)

    async def main() -> int:
        async with running(build_services(settings), background=False) as services:
            try:
                resolved = await resolve(services, args.payment_id, "refund" if args.refund else "record",
                                         by=operator_name(args.by))
            except OperatorError as exc:
                print(str(exc), file=sys.stderr)
                return 1
            finally:
                await services.outbox.deliver_due()  # the payer's DM and the channel notice, now
        print(resolved.message)
        return 0 if resolved.after != "needs_attention" else 1

    return asyncio.run(main())


def _audit(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from storage.audit import AuditLog  # noqa: PLC0415
    from storage.db import create_engine, session_factory  # noqa: PLC0415

    settings = _settings()

    async def main() -> None:
        engine = create_engine(settings.database_url)
        try:
            events = await AuditLog(session_factory(engine)).events(user_id=args.user, invoice=args.invoice,
                                                                    limit=args.limit)
        finally:
            await engine.dispose()
        for e in events:
            print(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.user_id or '-':<12} {e.action:<16} {e.outcome:<9} "
                  f"{e.invoice_id or '-':<14} {json.dumps(e.detail, sort_keys=True, ensure_ascii=False)}")

    asyncio.run(main())
    return 0


def _outbox(args: argparse.Namespace) -> int:
    from bot import operator  # noqa: PLC0415
    from storage.db import create_engine, session_factory  # noqa: PLC0415
    from storage.outbox import OutboxRepository  # noqa: PLC0415

    settings = _settings()
    retrying = getattr(args, "outbox_action", None) == "retry"
    if retrying and not args.ids and not args.all_failed:
        print("invoicebot outbox retry: name message ids, or --all-failed", file=sys.stderr)
        return 2

    async def main() -> int:
        engine = create_engine(settings.database_url)
        try:
            repo = OutboxRepository(session_factory(engine))
            if retrying:
                result = await operator.retry_outbox(repo, args.ids, all_failed=args.all_failed)
                print(operator.format_retry(result))
                return 1 if result.unknown else 0
            print(operator.format_outbox(await operator.outbox_rows(repo, failed=args.failed, limit=args.limit),
                                         failed=args.failed))
            return 0
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _sandbox(args: argparse.Namespace) -> int:
    from sandbox.run import run_sandbox  # noqa: PLC0415

    logs.configure()
    run_sandbox(host=args.host, port=args.port, db_path=args.db, token=args.token, latency=args.latency,
                fresh=args.fresh, stripe_api_base=args.stripe_api_base)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from sandbox.demo import run_demo  # noqa: PLC0415

    logs.configure()
    return run_demo(port=args.port, keep=args.keep)
