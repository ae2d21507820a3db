"""The demo as a person uses it: a browser on the Slack stand-in's page, the real bot
behind it, the billing sandbox and the fake Stripe with their seed data.

Each test pays a different seeded invoice (sandbox/billing/seed.py), so the tests share one
demo and can run in any order. Invoice numbers carry the year they were issued, hence the
patterns."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import httpx
import pytest

pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install -e '.[test]')")

from playwright.sync_api import Page, expect  # noqa: E402

from sandbox.demo import BOT_TOKEN  # noqa: E402
from tests.browser.conftest import ARTIFACTS, DemoRun  # noqa: E402
from tests.browser.slack_page import Modal, SlackPage  # noqa: E402

US_SMALL = r"INV-US-\d{4}-0119"  # Acme Inc., $89.99, open
US_PAST_DUE = r"INV-US-\d{4}-0112"  # Acme Inc., $2,340.75, overdue
EU_OPEN = r"INV-EU-\d{4}-0042"  # Acme GmbH, €1,200.00, open
JP_OPEN = r"INV-JP-\d{4}-0007"  # Acme KK, ¥5,000, open
EU_PARTIAL_PAST_DUE = r"INV-EU-\d{4}-0039"  # Acme GmbH, €125.00 left, overdue
KW_OPEN = r"INV-KW-\d{4}-0003"  # Acme Kuwait WLL, KWD 12.500, open; the profile has no Stripe customer


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


def test_notify_billing_and_a_private_channel_after_invite(page: Page, demo: DemoRun) -> None:
    """The README's notify row: `#channel` typed as text reaches the bot as a channel link."""
    slack = SlackPage(page, demo.url, "U_FINANCE")
    done = slack.command("/invoices notify #billing")
    expect(done).to_contain_text("Payment notifications now go to #billing")
    expect(done).not_to_contain_text("Name the channel with")

    page.locator(".nav-item", has_text="finance-private").click()
    expect(page.locator("#pane-title")).to_contain_text("finance-private")
    refused = slack.command("/invoices notify #finance-private Acme KK")
    expect(refused).to_contain_text(re.compile("invite me first", re.IGNORECASE))

    page.fill("#composer-input", "/invite @invoicebot")
    page.press("#composer-input", "Enter")
    expect(slack.channel_message("was added to")).to_contain_text("@invoicebot was added to #finance-private")
    routed = slack.command("/invoices notify #finance-private Acme KK")
    expect(routed).to_contain_text("Payment notifications now go to #finance-private")
    expect(routed).to_contain_text("Acme KK")

    back = slack.command("/invoices notify #billing Acme KK")  # as it was, for the other tests
    expect(back).to_contain_text("Payment notifications now go to #billing")


def test_paging_through_the_demo_list(page: Page, demo: DemoRun) -> None:
    slack = SlackPage(page, demo.url, "U_FINANCE")
    listing = slack.command("/invoices")
    expect(listing).to_contain_text(re.compile(r"Showing 1–20 of (2\d)"))
    total = re.search(r"Showing 1–20 of (\d+)", listing.inner_text()).group(1)  # type: ignore[union-attr]
    expect(listing.get_by_role("button", name="Pay Now")).to_have_count(20)
    expect(listing.get_by_role("button", name="◀ Previous")).to_have_count(0)

    listing.get_by_role("button", name="Next ▶").click()
    expect(listing).to_contain_text(f"Showing 21–{total} of {total}")  # the same message, next page
    expect(listing.get_by_role("button", name="Pay Now")).to_have_count(int(total) - 20)
    expect(listing.get_by_role("button", name="Next ▶")).to_have_count(0)
    expect(listing).not_to_contain_text(re.compile(US_PAST_DUE + "|" + JP_OPEN))  # those are on page 1

    listing.get_by_role("button", name="◀ Previous").click()
    expect(listing).to_contain_text(f"Showing 1–20 of {total}")
    expect(listing).to_contain_text(re.compile(JP_OPEN))


def test_the_profile_without_cards_shows_the_wire_transfer_only(page: Page, demo: DemoRun) -> None:
    slack = SlackPage(page, demo.url, "U_FINANCE")
    listing = slack.command("/invoices")
    listing.locator(".b-section", has_text=re.compile(KW_OPEN)).get_by_role("button", name="Pay Now").click()
    modal = page.locator(".modal")
    expect(modal).to_contain_text("Cards and bank debits aren't set up for this billing profile")
    expect(modal).to_contain_text("Acme Kuwait WLL")
    expect(modal).to_contain_text("KW81CBKU0000000000001234560101")  # the wire transfer details
    expect(modal).to_contain_text(re.compile(KW_OPEN))
    expect(modal.locator(".modal-submit")).to_have_count(0)  # no Pay button that cannot work
    expect(modal.get_by_role("button", name="Refresh")).to_have_count(0)
    expect(modal.get_by_role("link", name="Add a new card")).to_have_count(0)
    expect(modal).not_to_contain_text("press Refresh")
    modal.locator(".modal-close").click()
    expect(modal).to_have_count(0)


def test_a_narrow_screen_keeps_the_page_readable(browser: Any, demo: DemoRun) -> None:
    context = browser.new_context(viewport={"width": 420, "height": 860})
    page = context.new_page()
    try:
        slack = SlackPage(page, demo.url, "U_FINANCE")
        sidebar, menu = page.locator("#sidebar"), page.locator("#menu-toggle")
        expect(sidebar).not_to_be_visible()  # folded away behind the menu button
        expect(menu).to_be_visible()
        listing = slack.command("/invoices")
        expect(listing.get_by_role("button", name="Pay Now").first).to_be_visible()
        assert _horizontal_overflow(page) == 0
        ARTIFACTS.mkdir(exist_ok=True)
        listing.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "narrow-list.png"))

        modal = slack.pay_now(listing, EU_OPEN)
        assert _horizontal_overflow(page) == 0
        page.screenshot(path=str(ARTIFACTS / "narrow-modal.png"))
        modal.close()

        menu.click()
        expect(sidebar).to_be_visible()
        expect(menu).to_have_attribute("aria-expanded", "true")
        page.wait_for_function("getComputedStyle(document.getElementById('sidebar')).transform === 'none'")
        page.screenshot(path=str(ARTIFACTS / "narrow-menu.png"))
        page.select_option("#user-picker", "U_EU")  # choosing closes the drawer again
        expect(sidebar).not_to_be_visible()
        expect(page.locator("#who-detail")).to_have_text("eu.accountant@acme.example")
        assert _horizontal_overflow(page) == 0
    finally:
        context.close()


def _horizontal_overflow(page: Page) -> int:
    """How many pixels the page, or any element in it, sticks out to the right."""
    return int(page.evaluate("""() => {
      const width = document.documentElement.clientWidth;
      let worst = document.documentElement.scrollWidth - width;
      for (const node of document.querySelectorAll('.message, .modal, .composer, .pane-header')) {
        const box = node.getBoundingClientRect();
        if (box.width) worst = Math.max(worst, Math.ceil(box.right - width));
        worst = Math.max(worst, node.scrollWidth - node.clientWidth);
      }
      return Math.max(0, worst);
    }"""))


def test_a_bank_debit_is_processing_for_a_while_then_clears(page: Page, demo: DemoRun) -> None:
    """The demo clears bank debits after 20 s (not at once), so Processing can be seen."""
    slack = SlackPage(page, demo.url, "U_FINANCE")
    modal = slack.pay_now(slack.command("/invoices"), EU_PARTIAL_PAST_DUE)
    number = re.search(EU_PARTIAL_PAST_DUE, modal.text()).group(0)  # type: ignore[union-attr]
    modal.choose_method("SEPA")
    modal.submit()
    expect(modal.root).to_contain_text("Bank debit on its way")
    modal.close()
    expect(slack.channel_message(re.compile(f"started a bank debit .* on invoice {number}"))).to_contain_text(
        "Processing")

    looked_up = slack.command(f"/invoices {number}")  # while it is on its way
    expect(looked_up).to_contain_text("is being paid by a bank debit that hasn't cleared yet")
    cleared = slack.channel_message(re.compile(f"bank debit .* on invoice {number} .*has cleared"))
    expect(cleared).to_have_count(0)  # not at once
    expect(cleared).to_have_count(1, timeout=60_000)


def test_a_paid_invoice_found_by_number_says_it_is_paid(page: Page, demo: DemoRun) -> None:
    issued = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=70)  # seed: INV-EU-…-0031, paid, due 40 days ago
    slack = SlackPage(page, demo.url, "U_EU")
    slack.command(f"/invoices INV-EU-{issued.year}-0031")
    # The reply by what it says: an earlier list of Emil's may be redrawn (after a payment) at
    # the same moment and look like the newest message.
    reply = page.locator(".message.is-ephemeral", has_text=f"INV-EU-{issued.year}-0031 · Acme GmbH is paid")
    expect(reply).to_have_count(1)
    expect(reply).to_contain_text("nothing is left to pay")
    expect(reply).not_to_contain_text("No payable invoice matches")


def test_greta_reads_and_types_german_amounts_and_enter_updates_the_fee(page: Page, demo: DemoRun) -> None:
    slack = SlackPage(page, demo.url, "U_DE")  # Greta: Acme GmbH, Slack locale de-DE
    listing = slack.command("/invoices")
    expect(listing).to_contain_text(re.compile(r"1\.130,50\s€"))

    modal = slack.pay_now(listing, r"INV-EU-\d{4}-0045")
    expect(modal.amount).to_have_value("1130,50")
    expect(modal.root).to_contain_text(re.compile(r"card fee of 32,78\s€"))
    modal.amount.fill("100,50")
    modal.amount.press("Enter")  # the fee for what was typed; Enter does not pay
    expect(modal.root).to_contain_text(re.compile(r"card fee of 2,91\s€"))
    expect(modal.root).not_to_contain_text("Payment received")
    modal.submit()

    expect(modal.root).to_contain_text("Payment received")
    expect(modal.root).to_contain_text(re.compile(r"100,50\s€"))
    expect(modal.root).to_contain_text(re.compile(r"1\.030,00\s€"))


EU_PAST_DUE = r"INV-EU-\d{4}-0037"  # Acme GmbH, €845.50, overdue: always among Fiona's five soonest on Home


def test_pay_from_the_home_tab(page: Page, demo: DemoRun) -> None:
    slack = SlackPage(page, demo.url, "U_FINANCE")
    home = slack.open_home()
    expect(home).to_contain_text("Balance due")
    expect(home).to_contain_text("overdue")
    expect(home).to_contain_text("Where payment notices go")  # Fiona is a billing-profile admin

    modal = slack.pay_now(home, EU_PAST_DUE)
    expect(modal.amount).to_have_value("845.50")
    modal.submit()
    expect(modal.root).to_contain_text("Payment received")
    modal.close()

    # The tab is published again after the payment: the invoice is no longer offered.
    row = home.locator(".b-section", has_text=re.compile(EU_PAST_DUE))
    expect(row.get_by_role("button", name="Pay Now")).to_have_count(0, timeout=15_000)
    expect(row).to_contain_text("Paid")  # now among the recent payments
    expect(row).to_contain_text("€845.50")


EU_PARTLY_PAID = r"INV-EU-\d{4}-0040"  # Acme GmbH, €3,000.00, €1,750.00 left; paid by no other test


def test_an_admin_sets_an_approval_rule_on_home_and_the_approver_approves_from_his_home(
        page: Page, demo: DemoRun) -> None:
    """The README's walk-through: Fiona sets Acme GmbH's rule on her Home tab (500, Emil as
    approver, with the stand-in's people picker), pays more than that, and Emil approves it
    from his own Home tab."""
    slack = SlackPage(page, demo.url, "U_FINANCE")
    home = slack.open_home()
    row = home.locator('.b-section[data-block-id^="home_route:"]', has_text="Acme GmbH").first
    index = (row.get_attribute("data-block-id") or "").split(":")[1]
    home.locator(f'[data-block-id="home_settings:{index}"]').get_by_role("button", name="Approval rule").click()
    modal = Modal(page.locator(".modal"))
    expect(modal.root).to_contain_text("Approval rule")
    modal.root.locator('[data-block-id="rule_threshold"] input').fill("500")
    modal.root.locator('[data-block-id="rule_approvers"] select').select_option(["U_EU"])
    modal.submit()
    expect(modal.root).to_contain_text("€500.00", timeout=15_000)
    modal.close()
    expect(home).to_contain_text("€500.00", timeout=15_000)  # the tab, refreshed, shows the rule

    # An invoice no other test pays (they share one demo): €1,750.00 left, above the rule,
    # from the list in #billing (the Home tab has no composer).
    page.locator(".nav-item", has_text="billing").first.click()
    paying = slack.pay_now(slack.command("/invoices"), EU_PARTLY_PAID)
    expect(paying.root).to_contain_text("need approval")
    paying.submit()
    expect(paying.root).to_contain_text("Waiting for approval", timeout=15_000)
    paying.close()

    page.select_option("#user-picker", "U_EU")
    emil = slack.open_home()
    request = emil.locator(".b-section", has_text=re.compile(EU_PARTLY_PAID)).first
    expect(request).to_contain_text("€1,750.00", timeout=15_000)
    emil.get_by_role("button", name="Approve").first.click()
    answer = page.locator(".modal")
    expect(answer).to_contain_text("Approved and charged", timeout=20_000)
