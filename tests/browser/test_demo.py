"""The demo as a person uses it: a browser on the Slack stand-in's page, the real bot
behind it, the billing sandbox and the fake Stripe with their seed data.

Each test pays a different seeded invoice (sandbox/billing/seed.py), so the tests share one
demo and can run in any order. Invoice numbers carry the year they were issued, hence the
patterns."""

from __future__ import annotations

import re

import httpx
import pytest

pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install -e '.[test]')")

from playwright.sync_api import Page, expect  # noqa: E402

from sandbox.demo import BOT_TOKEN  # noqa: E402
from tests.browser.conftest import DemoRun  # noqa: E402
from tests.browser.slack_page import SlackPage  # noqa: E402

US_SMALL = r"INV-US-\d{4}-0119"  # Acme Inc., $89.99, open
US_PAST_DUE = r"INV-US-\d{4}-0112"  # Acme Inc., $2,340.75, overdue
EU_OPEN = r"INV-EU-\d{4}-0042"  # Acme GmbH, €1,200.00, open
JP_OPEN = r"INV-JP-\d{4}-0007"  # Acme KK, ¥5,000, open


def test_full_payment_with_the_default_card(page: Page, demo: DemoRun) -> None:
    slack = SlackPage(page, demo.url, "U_FINANCE")
    listing = slack.command("/invoices")
    expect(listing).to_contain_text("Invoices to pay")
    expect(listing).to_contain_text("Only visible to you")

    modal = slack.pay_now(listing, US_SMALL)
    assert modal.chosen_method().startswith("Visa •••• 4242")
    expect(modal.amount).to_have_value("89.99")
    modal.submit()

    expect(modal.root).to_contain_text("Payment received")
    receipt = modal.text()
    assert "$89.99" in receipt and "Paid" in receipt and "$0.00" in receipt
    modal.close()

    notice = slack.channel_message(re.compile(US_SMALL))
    expect(notice).to_contain_text("@Fiona Finance paid $89.99 on invoice")
    expect(notice).to_contain_text("paid in full")
    expect(notice.locator("b", has_text="$89.99")).to_have_count(1)  # *bold* rendered, not shown as stars

    again = slack.command("/invoices")
    expect(again).to_contain_text("Invoices to pay")
    expect(again).not_to_contain_text(re.compile(US_SMALL))


def test_a_partial_payment_leaves_the_rest_due(page: Page, demo: DemoRun) -> None:
    slack = SlackPage(page, demo.url, "U_EU")  # Emil: Acme GmbH only
    listing = slack.command("/invoices")
    expect(listing).not_to_contain_text("Acme Inc.")

    modal = slack.pay_now(listing, EU_OPEN)
    expect(modal.root).to_contain_text("card fee of €34.80")
    modal.amount.fill("200")
    modal.submit()

    expect(modal.root).to_contain_text("Payment received")
    receipt = modal.text()
    assert "€200.00" in receipt and "€1,000.00" in receipt and "Partially paid" in receipt
    modal.close()
    expect(slack.channel_message(re.compile(EU_OPEN))).to_contain_text("€1,000.00 remains due")

    again = slack.command("/invoices")
    row = again.locator(".b-section", has_text=re.compile(EU_OPEN))
    expect(row).to_contain_text("partly paid")
    expect(row).to_contain_text("Balance due €1,000.00")


def test_a_declined_card_then_a_good_one(page: Page, demo: DemoRun) -> None:
    slack = SlackPage(page, demo.url, "U_FINANCE")
    modal = slack.pay_now(slack.command("/invoices"), US_PAST_DUE)
    expect(modal.root).to_contain_text("Overdue")

    modal.choose_method("0341")  # attaches fine, declined when charged
    modal.submit()
    expect(modal.root).to_contain_text("was not charged")
    expect(modal.root).to_contain_text(re.compile("declined", re.IGNORECASE))
    expect(modal.root.locator(".modal-submit")).to_be_visible()  # the form again, to choose another card

    modal.choose_method("4242")
    modal.submit()
    expect(modal.root).to_contain_text("Payment received")
    assert "$2,340.75" in modal.text()
    modal.close()
    expect(slack.channel_message(re.compile(US_PAST_DUE))).to_contain_text("paid in full")


def test_an_invalid_amount_is_explained_under_the_amount_field(page: Page, demo: DemoRun) -> None:
    slack = SlackPage(page, demo.url, "U_FINANCE")
    modal = slack.pay_now(slack.command("/invoices"), JP_OPEN)
    error = modal.error_under("amount")
    expect(error).to_have_count(0)

    modal.amount.fill("ten thousand")
    modal.submit()
    expect(error).to_contain_text("is not a number")
    expect(modal.amount).to_have_value("ten thousand")  # what was typed stays

    modal.amount.fill("0")
    modal.submit()
    expect(error).to_contain_text("more than zero")

    modal.amount.fill("")
    modal.submit()
    expect(error).to_contain_text("Please complete this required field")  # Slack's own check

    # Checked against the invoice's balance as billing has it now: under the field when
    # billing answers within Slack's 3 seconds, else as a notice on the form (a slow machine).
    modal.amount.fill("6000")
    modal.submit()
    expect(modal.root).to_contain_text("more than the balance due of ¥5,000")

    expect(modal.error_under("method")).to_have_count(0)
    modal.close()
    listing = slack.command("/invoices")  # nothing was paid
    expect(listing.locator(".b-section", has_text=re.compile(JP_OPEN))).to_contain_text("Balance due ¥5,000")


def test_someone_without_access_gets_a_plain_explanation(page: Page, demo: DemoRun) -> None:
    slack = SlackPage(page, demo.url, "U_SALES")
    expect(page.locator("#who-detail")).to_have_text("sales@acme.example")
    reply = slack.command("/invoices")
    expect(reply).to_contain_text("You can't view invoices")
    expect(reply).to_contain_text("Invoice Viewer permission")
    expect(reply.get_by_role("button")).to_have_count(0)


def test_text_from_the_app_is_shown_as_text_never_as_html(page: Page, demo: DemoRun) -> None:
    slack = SlackPage(page, demo.url, "U_FINANCE")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": (
        "*bold* _italic_ `code` :tada: :no_such_emoji: &lt;b&gt;not bold&lt;/b&gt; <img src=x onerror=alert(1)> "
        "<https://example.com/pay?a=1&amp;b=2|a link> <javascript:alert(1)|not a link> <@U_EU>")}}]
    answer = httpx.post(f"{demo.url}api/chat.postMessage", headers={"Authorization": f"Bearer {BOT_TOKEN}"},
                        json={"channel": "C_BILLING", "text": "markup check", "blocks": blocks}).json()
    assert answer["ok"], answer

    message = slack.channel_message("not bold")
    expect(message).to_contain_text("<b>not bold</b>")
    expect(message).to_contain_text(":no_such_emoji:")
    expect(message).to_contain_text("🎉")
    expect(message).to_contain_text("@Emil Accountant")
    expect(message.locator("b", has_text="bold")).to_have_count(1)
    expect(message.locator("i", has_text="italic")).to_have_count(1)
    expect(message.locator("code", has_text="code")).to_have_count(1)
    assert message.locator("img").count() == 0
    links = message.locator("a")
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("href", "https://example.com/pay?a=1&b=2")
    expect(links).to_have_attribute("target", "_blank")
    expect(message).to_contain_text("not a link")
