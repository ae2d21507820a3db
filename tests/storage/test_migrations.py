"""Alembic owns the schema: empty -> head gives exactly the models, and a server refuses to
start on a database that is behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
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


async def test_0008_moves_slack_links_to_their_own_tables_with_the_existing_rows(database_url: str) -> None:
    """Before 0008 the modal's view id, the `/invoices` message and the submission key were
    columns of `payments` and `pay_sessions`; after it they are rows of the link tables, the
    same values, and a repeated submission key is still refused by the database."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    upgrade(database_url, "0007")
    engine = create_engine(database_url)
    columns = ("id, team_id, user_id, paid_by, invoice_id, invoice_number, billing_profile_id, "
               "billing_profile_name, amount_minor, currency, method_kind, payment_method_id, "
               "payment_method_type, method_label, stripe_customer_id, status, attempts, created_at, updated_at, "
               "submission_key, view_id, list_response_url, list_query")
    try:
        async with engine.begin() as connection:
            for pay_id, key, view, url, query in (
                    ("pay_linked", "V1:h1", "V1", "https://hooks.slack.test/1", "acme"),
                    ("pay_no_list", "V2:h2", "V2", None, None),
                    ("pay_bare", None, None, None, None)):
                await connection.execute(text(
                    f"INSERT INTO payments ({columns}) VALUES (:id, 'T', 'U', 'a@b', :inv, 'INV', 'bp', 'P', 100, "
                    "'EUR', 'card', 'pm', 'card', 'Visa', 'cus', 'recorded', 0, CURRENT_TIMESTAMP, "
                    "CURRENT_TIMESTAMP, :key, :view, :url, :query)"),
                    {"id": pay_id, "inv": f"inv_{pay_id}", "key": key, "view": view, "url": url, "query": query})
            for session_id, view, url, query in (("ps_open", "V9", "https://hooks.slack.test/9", "due"),
                                                 ("ps_bare", None, None, None)):
                await connection.execute(text(
                    "INSERT INTO pay_sessions (id, created_at, team_id, user_id, invoice_id, offered_methods, view_id, "
                    "list_response_url, list_query) VALUES (:id, CURRENT_TIMESTAMP, 'T', 'U', 'inv', '{}', :view, "
                    ":url, :query)"), {"id": session_id, "view": view, "url": url, "query": query})
    finally:
        await engine.dispose()
    upgrade(database_url)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            payment_links = {row[0]: tuple(row[1:]) for row in (await connection.execute(text(
                "SELECT payment_id, submission_key, view_id, list_response_url, list_query "
                "FROM slack_payment_links"))).all()}
            form_links = {row[0]: tuple(row[1:]) for row in (await connection.execute(text(
                "SELECT pay_session_id, view_id, list_response_url, list_query FROM slack_form_links"))).all()}
            payments = {row[0] for row in (await connection.execute(text("SELECT id FROM payments"))).all()}
            sessions = {row[0] for row in (await connection.execute(text("SELECT id FROM pay_sessions"))).all()}
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(text(
                    "INSERT INTO slack_payment_links (payment_id, submission_key) VALUES ('pay_bare', 'V1:h1')"))
    finally:
        await engine.dispose()
    assert payment_links == {"pay_linked": ("V1:h1", "V1", "https://hooks.slack.test/1", "acme"),
                             "pay_no_list": ("V2:h2", "V2", None, None)}
    assert form_links == {"ps_open": ("V9", "https://hooks.slack.test/9", "due")}
    assert payments == {"pay_linked", "pay_no_list", "pay_bare"} and sessions == {"ps_open", "ps_bare"}

    # And back: 0008's downgrade puts the links on their rows again.
    import asyncio

    from alembic import command

    from storage.schema import alembic_config

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0007")
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            restored = {row[0]: tuple(row[1:]) for row in (await connection.execute(text(
                "SELECT id, submission_key, view_id, list_response_url, list_query FROM payments"))).all()}
            session_views = dict((await connection.execute(text("SELECT id, view_id FROM pay_sessions"))).all())
    finally:
        await engine.dispose()
    assert restored == {"pay_linked": ("V1:h1", "V1", "https://hooks.slack.test/1", "acme"),
                        "pay_no_list": ("V2:h2", "V2", None, None), "pay_bare": (None, None, None, None)}
    assert session_views == {"ps_open": "V9", "ps_bare": None}


async def test_0011_gives_each_waiting_approval_request_its_expiry_job(database_url: str) -> None:
    """Before 0011 a sweep expired requests; after it each waiting one has its own job, due at
    its expiry. A decided request gets none."""
    from sqlalchemy import text

    upgrade(database_url, "0010")
    engine = create_engine(database_url)
    columns = ("id, team_id, user_id, paid_by, invoice_id, invoice_number, billing_profile_id, "
               "billing_profile_name, amount_minor, currency, method_kind, payment_method_id, "
               "payment_method_type, method_label, stripe_customer_id, status, attempts, created_at, updated_at")
    try:
        async with engine.begin() as connection:
            for pay_id, status in (("pay_waits", "awaiting_approval"), ("pay_rejected", "rejected")):
                await connection.execute(text(
                    f"INSERT INTO payments ({columns}) VALUES (:id, 'T', 'U', 'a@b', :inv, 'INV', 'bp', 'P', 100, "
                    "'EUR', 'card', 'pm', 'card', 'Visa', 'cus', :status, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                    {"id": pay_id, "inv": f"inv_{pay_id}", "status": status})
                await connection.execute(text(
                    "INSERT INTO approval_requests (payment_id, created_at, team_id, billing_profile_id, requester_id, "
                    "approvers, threshold_minor, expires_at) VALUES (:id, CURRENT_TIMESTAMP, 'T', 'bp', 'U', "
                    "'[\"UA\"]', 100, '2026-12-06 09:00:00')"), {"id": pay_id})  # inline: a typed literal on both databases
    finally:
        await engine.dispose()
    upgrade(database_url)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            jobs = (await connection.execute(text(
                "SELECT key, kind, status, due_at, payload FROM jobs WHERE kind = 'approval_expiry'"))).all()
    finally:
        await engine.dispose()
    [(key, kind, status, due_at, payload)] = jobs
    assert (key, kind, status) == ("approval_expiry:pay_waits", "approval_expiry", "scheduled")
    assert str(due_at).startswith("2026-12-06 09:00:00")
    payload = payload if isinstance(payload, dict) else json.loads(payload)
    assert payload["payment_id"] == "pay_waits" and payload["invoice_id"] == "inv_pay_waits"
