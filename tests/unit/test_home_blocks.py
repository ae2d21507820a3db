"""The Home tab builder is pure: extreme data (5,000 invoices, 200 payments, 300 profiles,
names at the length limit, mrkdwn in names) stays within Slack's limits for a Home tab."""

from __future__ import annotations

import asyncio
import datetime as dt
import dataclasses
import json

from blocks.home import home_view, route_modal
from handlers.errors import Explanation
from bot.home import RECENT, SOONEST, HomeRefresher, HomeView
from bot.invoices import InvoiceRow
from bot.money import Money
from bot.routing import RouteRow
from sandbox.slack.limits import validate_view
from bot.summaries import PaymentSummary, payment_summary
from storage.models import Payment
from tests.unit.test_blocks import TODAY, invoice


def payment(i: int, status: str) -> PaymentSummary:
    moment = dt.datetime(2026, 11, 1, tzinfo=dt.UTC) + dt.timedelta(hours=i)
    return payment_summary(Payment(id=f"pay_{i}", team_id="T1", user_id="U1", paid_by="ap@acme.example", invoice_id=f"inv_{i}",
                   invoice_number="<!channel> INV-" + "9" * 120, billing_profile_id="bp",
                   billing_profile_name="Acme", amount_minor=99_999_999_999 + i, currency="EUR",
                   method_kind="card", payment_method_id="pm", payment_method_type="card",
                   method_label="Visa •••• 4242 " + "*" * 120, stripe_customer_id="cus", status=status,
                   created_at=moment, updated_at=moment))


def huge(locale: str = "de_DE") -> HomeView:
    rows = [InvoiceRow(invoice(i, number="<@U1> " + "N" * 130, amount="99999999.99"), "&<>" * 100, i % 3 == 0)
            for i in range(5000)]
    statuses = ("recorded", "failed", "refunded", "needs_attention", "processing", "created")
    payments = [payment(i, statuses[i % len(statuses)]) for i in range(200)]
    routes = [RouteRow(f"bp_{i}", "P" * 300, f"C{i:08d}", i % 2 == 0) for i in range(300)]
    return HomeView(locale=locale, today=TODAY, totals=[Money.of("499999999950.00", "EUR"), Money.of("1", "USD")],
                    invoice_count=5000, overdue_count=1667, invoices=rows[:SOONEST],
                    in_flight=[p for p in payments if p.status in ("processing", "created")][:5],
                    recent=[p for p in payments if p.status not in ("processing", "created")][:RECENT],
                    payment_count=200, routes=routes)


def test_5000_invoices_200_payments_300_profiles_fit_a_home_tab() -> None:
    for locale in ("de_DE", "en_US", "ja_JP", "ar_EG"):
        view = home_view(huge(locale))
        assert validate_view(view) == [], validate_view(view)
        assert view["type"] == "home" and len(view["blocks"]) <= 100
        body = json.dumps(view, ensure_ascii=False)
        assert "<!channel>" not in body and "<@U1>" not in body  # names never become mentions
        assert "See all 5000" in body and "newest of 200 payments" in body and "280 more billing profiles" in body


def test_pay_now_on_home_is_the_list_s_action_with_the_same_value() -> None:
    view = home_view(huge())
    buttons = [b["accessory"] for b in view["blocks"] if b.get("accessory", {}).get("text", {}).get("text") == "Pay Now"]
    assert len(buttons) == SOONEST
    assert all(b["action_id"].startswith("pay_now:") for b in buttons)
    assert json.loads(buttons[0]["value"]) == {"invoice": "inv_0", "q": ""}


def test_statuses_are_named_and_no_access_is_one_explanation() -> None:
    recent = [payment(i, s) for i, s in enumerate(("recorded", "failed", "refunded", "needs_attention"))]
    partly = dataclasses.replace(payment(9, "recorded"), invoice_status_after="partially_paid")
    body = json.dumps(home_view(HomeView(locale="en_US", today=TODAY, recent=[*recent, partly],
                                         in_flight=[payment(7, "processing")], payment_count=6)))
    for words in ("Paid", "Failed", "Refunded", "Needs attention", "Bank debit processing", "partially paid",
                  "Payments in flight"):
        assert words in body
    denied = home_view(HomeView(locale="en_US", today=TODAY, denied=Explanation("You can't view invoices", "Ask.")))
    assert len(denied["blocks"]) == 2 and "You can't view invoices" in json.dumps(denied)
    assert validate_view(denied) == []


def test_route_modal_is_a_valid_modal() -> None:
    assert validate_view(route_modal("bp_1", "P" * 400, "C123")) == []


async def test_a_burst_of_refresh_requests_coalesces() -> None:
    published: list[str] = []

    async def publish(team_id: str, user_id: str) -> None:
        published.append(user_id)

    refresher = HomeRefresher(publish, every=0.2)
    started = asyncio.get_running_loop().time()
    for _ in range(50):
        refresher.request("T1", "U1")
        refresher.request("T1", "U2")
        await asyncio.sleep(0.01)  # about 0.5 s of requests: at most one publish per 0.2 s each
    await asyncio.sleep(0.3)
    # Bounded by the time the burst really took (a loaded machine stretches the sleeps),
    # not by the 100 requests: one publish per window, plus the first and the trailing one.
    bound = int((asyncio.get_running_loop().time() - started) / 0.2) + 2
    assert 1 <= published.count("U1") <= bound and 1 <= published.count("U2") <= bound
    assert bound < 50
    await refresher.aclose()
