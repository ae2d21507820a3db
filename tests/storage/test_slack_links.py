"""Slack links in their own tables: a payment's link is written with the payment, its unique
submission key still refuses a second payment for the same submission, and it carries the
`/invoices` message its form was opened from. On SQLite, and on PostgreSQL when
INVOICEBOT_TEST_POSTGRES is set (migrated schema, real constraints)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from storage.db import create_engine, session_factory
from storage.models import Payment, PaymentStatus, SlackPaymentLink
from storage.payments import DuplicateSubmission, PaymentRepository
from storage.schema import upgrade
from storage.slack_links import SlackLinkRepository, submission_key


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[tuple[PaymentRepository, SlackLinkRepository, Any]]:
    # database_url (tests/conftest.py): SQLite, and PostgreSQL when INVOICEBOT_TEST_POSTGRES is set.
    upgrade(database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    yield PaymentRepository(sessions), SlackLinkRepository(sessions), sessions
    await engine.dispose()


def payment(payment_id: str, invoice_id: str = "inv_1") -> Payment:
    return Payment(id=payment_id, team_id="T1", user_id="U1", paid_by="ap@acme.example", invoice_id=invoice_id,
                   invoice_number="INV-1", billing_profile_id="bp_1", billing_profile_name="Acme", invoice_url=None,
                   amount_minor=1000, currency="EUR", method_kind="card", payment_method_id="pm_1",
                   payment_method_type="card", method_label="Visa •••• 4242", stripe_customer_id="cus_1",
                   status=PaymentStatus.FAILED.value, attempts=0)


async def test_a_payment_link_carries_its_forms_list_message_and_the_view_it_was_submitted_from(stores) -> None:  # noqa: ANN001
    payments, links, _ = stores
    await links.remember_form("ps_1", view_id="V1", list_response_url="https://hooks.slack.test/1", list_query="acme")
    await payments.create(payment("pay_1"), submission_key=submission_key("V1", "h1"), view_id="V1",
                          pay_session_id="ps_1")
    link = await links.payment("pay_1")
    assert link is not None
    assert (link.submission_key, link.view_id, link.list_response_url, link.list_query) == (
        "V1:h1", "V1", "https://hooks.slack.test/1", "acme")
    assert (await payments.by_submission("V1:h1")).id == "pay_1"
    assert await links.payment("pay_unknown") is None and await payments.by_submission("V1:other") is None


async def test_the_same_submission_twice_at_once_writes_one_payment_and_the_other_copy_gets_the_first(stores) -> None:  # noqa: ANN001
    payments, links, sessions = stores
    await links.remember_form("ps_1", view_id="V1", list_response_url=None, list_query=None)
    key = submission_key("V1", "h1")
    # Two copies with different payment ids (and different invoices, so the in-flight index
    # is no help): only the submission key can tell them apart.
    results = await asyncio.gather(
        payments.create(payment("pay_a", "inv_a"), submission_key=key, view_id="V1", pay_session_id="ps_1"),
        payments.create(payment("pay_b", "inv_b"), submission_key=key, view_id="V1", pay_session_id="ps_1"),
        return_exceptions=True)
    written = [r for r in results if isinstance(r, Payment)]
    refused = [r for r in results if isinstance(r, DuplicateSubmission)]
    assert len(written) == 1 and len(refused) == 1
    assert refused[0].payment.id == written[0].id
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Payment)) == 1
        assert await session.scalar(select(func.count()).select_from(SlackPaymentLink)) == 1
    # A new submission of the same modal (a new hash) is a payment of its own.
    await payments.create(payment("pay_c", "inv_c"), submission_key=submission_key("V1", "h2"), view_id="V1")
    assert (await payments.by_submission("V1:h2")).id == "pay_c"
