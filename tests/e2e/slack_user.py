"""A person using Slack, through the stand-in: type a command, click, fill in, submit."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from blocks.invoices import COUNTING
from sandbox.slack.client import StandInClient


def texts(blocks: list[dict[str, Any]]) -> str:
    """Everything a person can read in some blocks, as one string."""
    return json.dumps(blocks, ensure_ascii=False)


@dataclass
class SlackUser:
    slack: StandInClient
    user_id: str

    async def command(self, text: str = "", *, settled: bool = True) -> dict[str, Any]:
        """`/invoices text`; returns the reply the person sees (the latest message to them).
        A list longer than a page first arrives saying its totals are being counted and is
        then replaced with them: `settled` waits for that replacement."""
        before = {m["id"] for m in await self._my_messages()}
        result = await self.slack.command(self.user_id, text)
        assert result["status"] == 200, result
        message = await self.wait_new_message(before)
        while settled and COUNTING in texts(message["blocks"]):
            message = await self.wait_message_changed(message)
        return message

    async def _my_messages(self) -> list[dict[str, Any]]:
        """Replies only this person sees (the bot answers /invoices privately)."""
        return [m for m in await self.slack.messages(visible_to=self.user_id)
                if m["ephemeral"] and m["user_id"] == self.user_id]

    async def wait_new_message(self, before: set[str], timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            fresh = [m for m in await self._my_messages() if m["id"] not in before and m.get("bot_posted", True)]
            if fresh:
                return fresh[-1]
            assert time.monotonic() < deadline, "no reply reached the user"
            await asyncio.sleep(0.05)

    async def message(self, message_id: str) -> dict[str, Any]:
        for message in await self._my_messages():
            if message["id"] == message_id:
                return message
        raise AssertionError(f"message {message_id} is gone")

    async def wait_message_changed(self, message: dict[str, Any], timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            now = await self.message(message["id"])
            if now["blocks"] != message["blocks"]:
                return now
            assert time.monotonic() < deadline, "the message did not change"
            await asyncio.sleep(0.05)

    async def click_in_message(self, message: dict[str, Any], action_id: str, **kw: Any) -> dict[str, Any]:
        result = await self.slack.click(self.user_id, action_id, message_id=message["id"], **kw)
        assert result["status"] == 200, result
        return result

    async def pay_now(self, message: dict[str, Any], invoice_id: str) -> dict[str, Any]:
        """Press Pay Now on that invoice's row; returns the modal once it has loaded."""
        action_id = next(b["accessory"]["action_id"] for b in message["blocks"]
                         if invoice_id in pay_buttons(message).get(b.get("accessory", {}).get("action_id"), ""))
        click = await self.click_in_message(message, action_id)
        opened = await self.slack.wait_for_call(
            "views.open", lambda c: c["params"].get("trigger_id") == click["trigger_id"], timeout=5)
        assert opened["ok"], opened
        view_id = opened["response"]["view"]["id"]
        return await self.wait_view(view_id, lambda v: "Loading" not in texts(v["view"]["blocks"]))

    async def view(self, view_id: str) -> dict[str, Any]:
        return await self.slack.view(view_id)

    async def wait_view(self, view_id: str, predicate: Any, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            view = await self.slack.view(view_id)
            if predicate(view):
                return view
            assert time.monotonic() < deadline, f"view never reached the expected state: {texts(view['view']['blocks'])}"
            await asyncio.sleep(0.05)

    async def submit(self, view: dict[str, Any], *, amount: str | None = None, method: str | None = None,
                     **overrides: Any) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if amount is not None:
            values["amount"] = {"amount": amount}
        if method is not None:
            values["method"] = {"method": method}
        return await self.slack.submit(self.user_id, view["id"], values, **overrides)

    async def pay(self, view: dict[str, Any], **kw: Any) -> dict[str, Any]:
        """Submit and wait for the modal to show how it ended."""
        result = await self.submit(view, **kw)
        assert result["status"] == 200, result
        return await self.wait_view(view["id"], lambda v: not _in_progress(v))


def pay_buttons(message: dict[str, Any]) -> dict[str, str]:
    """action_id -> invoice id of every Pay Now button in a message."""
    found = {}
    for block in message["blocks"]:
        button = block.get("accessory") or {}
        if button.get("action_id", "").startswith("pay_now"):
            found[button["action_id"]] = json.loads(button["value"])["invoice"]
    return found


def _in_progress(view: dict[str, Any]) -> bool:
    body = texts(view["view"]["blocks"])
    return "Charging" in body or "Checking the invoice" in body
