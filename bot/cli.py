"""`invoicebot`: serve the app, run it in Socket Mode, migrate, reconcile, trace payments,
and run the local sandbox and demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="invoicebot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the app over HTTP (POST /slack/events)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (share one PostgreSQL)")

    commands.add_parser("socket", help="run the app in Socket Mode (needs SLACK_APP_TOKEN)")

    db = commands.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade", "current"])

    commands.add_parser("reconcile", help="finish payments left half-way, asking Stripe for the truth")

    payments = commands.add_parser("payments", help="recent payments and where they stand")
    payments.add_argument("--status")
    payments.add_argument("--invoice", help="invoice id or number")
    payments.add_argument("--limit", type=int, default=50)
    payment_actions = payments.add_subparsers(dest="action")
    resolve = payment_actions.add_parser("resolve", help="finish a payment that needs attention")
    resolve.add_argument("payment_id")
    how = resolve.add_mutually_exclusive_group(required=True)
    how.add_argument("--refund", action="store_true", help="refund it at Stripe")
    how.add_argument("--record", action="store_true", help="record it in billing again (once billing is fixed)")
    resolve.add_argument("--by", help="who resolves it (default: the OS user)")

    outbox = commands.add_parser("outbox", help="Slack messages waiting, delivered or given up; send again")
    outbox.add_argument("--failed", action="store_true", help="only the messages given up (the dead letters)")
    outbox.add_argument("--limit", type=int, default=50)
    outbox_actions = outbox.add_subparsers(dest="outbox_action")
    retry = outbox_actions.add_parser("retry", help="send messages again now (after fixing the cause)")
    retry.add_argument("ids", nargs="*", type=int, metavar="ID")
    retry.add_argument("--all-failed", action="store_true", help="every message given up")

    audit = commands.add_parser("audit", help="the audit trail")
    audit.add_argument("--user", help="Slack user id")
    audit.add_argument("--invoice", help="invoice id")
    audit.add_argument("--limit", type=int, default=100)

    sandbox = commands.add_parser("sandbox", help="run the sandbox billing API")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8300)
    sandbox.add_argument("--db", default="sandbox-billing.db")
    sandbox.add_argument("--token", default="sandbox-token")
    sandbox.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    sandbox.add_argument("--fresh", action="store_true", help="start from new seed data")
    sandbox.add_argument("--stripe-api-base", default=None,
                         help="a localstripe to create the profiles' customers and saved cards in")

    demo = commands.add_parser("demo", help="the whole product on this machine, in a browser")
    demo.add_argument("--port", type=int, default=3000)
    demo.add_argument("--keep", action="store_true", help="keep the data of the last run")

    args = parser.parse_args(argv)
    from bot import commands as impl  # noqa: PLC0415 - keep `--help` fast and side-effect free

    return impl.run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
