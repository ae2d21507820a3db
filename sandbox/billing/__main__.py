"""python -m sandbox.billing --host 127.0.0.1 --port 8300 --db sandbox-billing.db --token sandbox-token"""

from __future__ import annotations

import argparse
import sys

from .server import serve


def _stripe_customer(text: str) -> tuple[str, str]:
    profile_id, sep, customer_id = text.partition("=")
    if not sep or not profile_id or not customer_id:
        raise argparse.ArgumentTypeError("use PROFILE_ID=CUSTOMER_ID, e.g. bp_eu=cus_123")
    return profile_id, customer_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.billing", description="Run the billing API sandbox.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8300, help="0 picks a free port")
    parser.add_argument("--db", default="sandbox-billing.db", help="SQLite file (':memory:' for none)")
    parser.add_argument("--token", default="sandbox-token", help="the bearer token clients must send")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds of delay on every /v1 request")
    parser.add_argument("--no-seed", dest="seed", action="store_false", help="do not create the demo data")
    parser.add_argument("--fresh", action="store_true", help="empty the database before starting")
    parser.add_argument(
        "--stripe-customer",
        type=_stripe_customer,
        action="append",
        default=[],
        metavar="PROFILE_ID=CUSTOMER_ID",
        help="Stripe customer of a seeded billing profile (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        serve(
            args.host,
            args.port,
            args.db,
            args.token,
            latency_seconds=args.latency,
            seed=args.seed,
            stripe_customers=dict(args.stripe_customer),
            fresh=args.fresh,
        )
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"billing sandbox: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
