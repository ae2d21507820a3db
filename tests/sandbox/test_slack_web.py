"""The stand-in's web page endpoints: the page and its files, the long-poll that tells the
page when to look again, and the channel listing the page reads."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from sandbox.slack import StandInState
from sandbox.slack.app import create_app

pytestmark = pytest.mark.asyncio(loop_scope="session")

BOT_TOKEN = "xoxb-web-test"


@pytest.fixture
def state() -> StandInState:
    return StandInState.with_demo_data(bot_token=BOT_TOKEN, signing_secret="s",
                                       request_url="http://127.0.0.1:9/slack/events")


@pytest.fixture
async def http(state: StandInState) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://standin") as client:
        yield client


async def test_the_page_and_its_files_are_served(http: httpx.AsyncClient) -> None:
    page = await http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/web/app.js" in page.text and "/web/app.css" in page.text
    script = await http.get("/web/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "innerHTML" not in script.text  # text from the app is never parsed as HTML
    style = await http.get("/web/app.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert (await http.get("/web/../app.py")).status_code == 404


async def test_wait_answers_at_once_when_something_changed_since(http: httpx.AsyncClient) -> None:
    first = (await http.get("/_standin/wait", params={"since": -1, "timeout": 5})).json()["version"]
    started = time.monotonic()
    again = (await http.get("/_standin/wait", params={"since": first - 1, "timeout": 5})).json()["version"]
    assert again == first and time.monotonic() - started < 1


async def test_wait_wakes_up_when_the_bot_posts(http: httpx.AsyncClient) -> None:
    version = (await http.get("/_standin/wait", params={"since": -1, "timeout": 0})).json()["version"]
    waiting = asyncio.create_task(http.get("/_standin/wait", params={"since": version, "timeout": 10}))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    started = time.monotonic()
    posted = await http.post("/api/chat.postMessage", headers={"Authorization": f"Bearer {BOT_TOKEN}"},
                             json={"channel": "C_BILLING", "text": "paid"})
    assert posted.json()["ok"]
    woke = (await asyncio.wait_for(waiting, 5)).json()["version"]
    assert woke > version and time.monotonic() - started < 2


async def test_wait_gives_up_after_its_timeout(http: httpx.AsyncClient) -> None:
    version = (await http.get("/_standin/wait", params={"since": -1, "timeout": 0})).json()["version"]
    started = time.monotonic()
    answer = (await http.get("/_standin/wait", params={"since": version, "timeout": 0.3})).json()
    assert answer["version"] == version and 0.25 < time.monotonic() - started < 3


async def test_closing_a_modal_counts_as_a_change(http: httpx.AsyncClient, state: StandInState) -> None:
    view = state.open_view("U_FINANCE", {"type": "modal", "title": {"type": "plain_text", "text": "T"},
                                         "blocks": []})
    version = state.version
    closed = await http.post("/_standin/act/close", json={"user_id": "U_FINANCE", "view_id": view.id})
    assert closed.status_code == 200 and state.version > version and not view.is_open


async def test_channels_say_who_is_in_them(http: httpx.AsyncClient) -> None:
    channels = {c["id"]: c for c in (await http.get("/_standin/channels")).json()["channels"]}
    assert channels["C_BILLING"]["members"] is None  # everyone
    assert channels["C_PRIVATE"]["members"] == ["U_FINANCE"]


async def test_wait_answers_at_once_after_a_restart(http: httpx.AsyncClient) -> None:
    started = time.monotonic()
    answer = (await http.get("/_standin/wait", params={"since": 10**9, "timeout": 5})).json()
    assert answer["version"] < 10**9 and time.monotonic() - started < 1
