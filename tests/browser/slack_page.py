"""A person in front of the demo's Slack page: pick who you are, type a command, click,
fill in the modal. Only what a person sees and does; no API calls."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Locator, Page, expect

_NEW_REPLY = """(before) => {
  const fresh = [...document.querySelectorAll('.message[data-ephemeral="true"]')]
    .filter((node) => !before.includes(node.dataset.messageId));
  return fresh.length ? fresh[fresh.length - 1].dataset.messageId : null;
}"""


class SlackPage:
    def __init__(self, page: Page, url: str, user_id: str) -> None:
        self.page = page
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]")
        if page.locator("#user-picker").input_value() != user_id:
            page.select_option("#user-picker", user_id)
        expect(page.locator("#user-picker")).to_have_value(user_id)

    def _message_ids(self) -> list[str]:
        ids: list[str] = self.page.eval_on_selector_all(".message", "nodes => nodes.map(n => n.dataset.messageId)")
        return ids

    def command(self, text: str) -> Locator:
        """Type a slash command and press Enter; the bot's reply (only visible to me)."""
        before = self._message_ids()
        self.page.fill("#composer-input", text)
        self.page.press("#composer-input", "Enter")
        message_id = self.page.wait_for_function(_NEW_REPLY, arg=before).json_value()
        return self.page.locator(f'.message[data-message-id="{message_id}"]')

    def open_home(self) -> Locator:
        """The app's Home tab (the sidebar's "invoicebot · Home"), once the bot published it."""
        self.page.locator(".nav-item", has_text="Home").click()
        tab = self.page.locator(".home-tab[data-view-id]:not([data-view-id=''])")
        expect(tab).to_be_visible(timeout=15_000)
        return tab

    def pay_now(self, listing: Locator, number: str) -> Modal:
        """Press Pay Now on the row of the invoice whose number matches; the loaded form."""
        row = listing.locator(".b-section", has_text=re.compile(number))
        row.get_by_role("button", name="Pay Now").click()
        modal = Modal(self.page.locator(".modal"))
        expect(modal.root).to_contain_text("Pay invoice")
        expect(modal.amount).to_be_visible()
        return modal

    def channel_message(self, text: str | re.Pattern[str]) -> Locator:
        """A message everyone in the channel sees (not a reply only I see)."""
        return self.page.locator('.message[data-ephemeral="false"]', has_text=text)


class Modal:
    def __init__(self, root: Locator) -> None:
        self.root = root

    @property
    def amount(self) -> Locator:
        return self.root.locator('[data-block-id="amount"] input')

    @property
    def method(self) -> Locator:
        return self.root.locator('[data-block-id="method"] select')

    def error_under(self, block_id: str) -> Locator:
        return self.root.locator(f'[data-block-id="{block_id}"] .input-error')

    def chosen_method(self) -> str:
        text: str = self.method.evaluate("select => select.selectedOptions[0].textContent")
        return text

    def choose_method(self, containing: str) -> None:
        value = self.method.locator("option", has_text=containing).get_attribute("value")
        assert value, f"no payment method with {containing!r}"
        self.method.select_option(value)

    def submit(self) -> None:
        self.root.locator(".modal-submit").click()

    def close(self) -> None:
        self.root.locator(".modal-close").click()
        expect(self.root).to_have_count(0)

    def text(self) -> Any:
        return self.root.inner_text()
