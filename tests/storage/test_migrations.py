"""Alembic owns the schema: empty -> head gives exactly the models, and a server refuses to
start on a database that is behind."""

from __future__ import annotations

import os
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from storage.db import create_engine
from storage.models import Base
from storage.schema import head_revision, upgrade
from storage.slack_tables import slack_metadata


async def test_migrations_from_empty_to_head_match_the_models(database_url: str) -> None:
    upgrade(database_url)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            def differences(sync_connection):  # noqa: ANN001, ANN202
                context = MigrationContext.configure(sync_connection, opts={"compare_type": True})
                return compare_metadata(context, [Base.metadata, slack_metadata])

            diff = await connection.run_sync(differences)
            revision = await connection.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
    finally:
        await engine.dispose()
    assert revision == head_revision()
    assert diff == []


def test_the_server_refuses_to_start_on_a_database_that_is_behind(tmp_path) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'behind.db'}"
    upgrade(url, "0001")
    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s", "STRIPE_API_KEY": "sk_test_x",
           "BILLING_API_URL": "http://127.0.0.1:9", "BILLING_API_TOKEN": "t", "NOTIFY_CHANNEL": "C1",
           "DATABASE_URL": url}
    result = subprocess.run([sys.executable, "-m", "handlers.entry", "serve", "--port", "0"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "run `invoicebot db upgrade` first" in result.stderr
    assert "Traceback" not in result.stderr

    upgraded = subprocess.run([sys.executable, "-m", "handlers.entry", "db", "upgrade"], env=env, capture_output=True,
                              text=True, timeout=60)
    assert upgraded.returncode == 0 and head_revision() in upgraded.stdout


async def test_0005_rescales_stored_minor_units_to_iso_digits(database_url: str) -> None:
    """Before 0005 HUF was stored with Babel's 0 digits; ISO 4217 (the billing API's scale)
    has 2, so HUF 150,000 was 150000 and must become 15000000. EUR rows stay as they are."""
    from sqlalchemy import text

    upgrade(database_url, "0004")
    engine = create_engine(database_url)
    columns = ("id, team_id, user_id, paid_by, invoice_id, invoice_number, billing_profile_id, "
               "billing_profile_name, amount_minor, currency, method_kind, payment_method_id, "
               "payment_method_type, method_label, stripe_customer_id, status, attempts, balance_after_minor, "
               "created_at, updated_at")
    try:
        async with engine.begin() as connection:
            for pay_id, currency, minor, after in (("pay_huf", "HUF", 150000, 50000), ("pay_eur", "EUR", 120000, 0)):
                await connection.execute(text(
                    f"INSERT INTO payments ({columns}) VALUES (:id, 'T', 'U', 'a@b', :inv, 'INV', 'bp', 'P', :m, :c, "
                    "'card', 'pm', 'card', 'Visa', 'cus', 'recorded', 0, :after, CURRENT_TIMESTAMP, "
                    "CURRENT_TIMESTAMP)"), {"id": pay_id, "inv": f"inv_{pay_id}", "m": minor, "c": currency,
                                            "after": after})
    finally:
        await engine.dispose()
    upgrade(database_url)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(text("SELECT id, amount_minor, balance_after_minor FROM payments"))
            rows = {pay_id: (minor, after) for pay_id, minor, after in result.all()}
    finally:
        await engine.dispose()
    assert rows == {"pay_huf": (15_000_000, 5_000_000), "pay_eur": (120000, 0)}
