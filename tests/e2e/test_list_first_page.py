"""The first page of `/invoices` costs the same whatever the number of invoices (issue 16):
it comes from one bounded billing request, and a longer list's count and totals follow by
replacing the message. Real app, real sandboxes, over HTTP."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx

from blocks.invoices import COUNTING, PAGE_SIZE
from bot.billing import BillingClient
from bot.identity import Viewer
from bot.invoices import FIRST_READ, InvoiceService, ListQuery
from tests.e2e.slack_user import SlackUser, pay_buttons, texts
from tests.e2e.world import Profile, World
from tests.harness import BILLING_TOKEN, TEAM_ID


async def _first_ids(world: World, profiles: list[Profile], count: int) -> list[str]:
    """What the billing API itself puts first (due date, then number)."""
    params = [("billing_profile_id", p.id) for p in profiles] + [("status", "payable"), ("limit", str(count))]
    response = await world.billing.get("/v1/invoices", params=params)
    assert response.status_code == 200, response.text
    return [invoice["id"] for invoice in response.json()["data"]]


def _summary(message: dict[str, Any]) -> str:
    return next(b["text"]["text"] for b in message["blocks"] if "Balance due:" in str(b))


async def test_a_long_list_shows_its_first_page_at_once_and_its_totals_by_replacing_it(world: World) -> None:
    profiles = [await world.profile(cards=()) for _ in range(3)]
    for profile in profiles:
        await world.bulk_invoices(profile, 150, total="100.00")
    person = await world.person(profiles)
    user = SlackUser(world.slack, person.user_id)
    first_ids = await _first_ids(world, profiles, PAGE_SIZE)
    # Every billing round trip takes a quarter of a second, so the counting (the whole list,
    # page after page) is long enough to be seen between the two messages.
    await world.set_billing_latency(0.25)

    first = await user.command(settled=False)
    assert _summary(first) == f"*More than {PAGE_SIZE} invoices to pay*\nBalance due: _{COUNTING}_"
    assert list(pay_buttons(first).values()) == first_ids
    assert "overdue" not in _summary(first)  # no count that could be wrong either

    final = await user.wait_message_changed(first, timeout=30)
    assert final["id"] == first["id"]  # the same message, replaced
    assert _summary(final) == "*450 invoices to pay*\nBalance due: *€45,000.00*"
    assert list(pay_buttons(final).values()) == first_ids
    assert "Showing 1–20 of 450" in texts(final["blocks"])

    # Through the command's response_url: a new message, then a replacement of it.
    posts = [c["params"] for c in await world.slack.calls("response_url") if first_ids[0] in str(c["params"])]
    assert [(COUNTING in str(p["blocks"]), bool(p.get("replace_original"))) for p in posts] == [
        (True, False), (False, True)]


async def test_a_list_that_fits_in_the_first_read_is_one_final_message(world: World) -> None:
    profile = await world.profile(cards=())
    await world.bulk_invoices(profile, FIRST_READ, total="10.00")  # 100: five pages, one read
    person = await world.person([profile])
    user = SlackUser(world.slack, person.user_id)
    message = await user.command(settled=False)
    assert _summary(message) == "*100 invoices to pay*\nBalance due: *€1,000.00*"
    assert (await user.message(message["id"]))["edited_count"] == 0


class CountingTransport(httpx.AsyncHTTPTransport):
    """Every request the billing client sends, by path."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.URL] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url)
        return await super().handle_async_request(request)

    def by_path(self) -> Counter[str]:
        return Counter("/v1/billing-profiles/*" if url.path.startswith("/v1/billing-profiles/") else url.path
                       for url in self.requests)


async def _requests_for_first_page(world: World, profiles: list[Profile], email: str) -> tuple[Counter[str], Any]:
    transport = CountingTransport()
    billing = BillingClient(world.stack.billing_url, BILLING_TOKEN, transport=transport)
    try:
        access = await billing.get_access(email)
        transport.requests.clear()
        invoices = InvoiceService(billing)  # its own profile cache: nothing is known yet
        viewer = Viewer(TEAM_ID, "U_COUNT", email, access)
        listing = await invoices.first_page(viewer, ListQuery.parse(""), PAGE_SIZE)
        counted = transport.by_path()
        limits = [url.params.get("limit") for url in transport.requests if url.path == "/v1/invoices"]
        transport.requests.clear()
        whole = await invoices.list_payable(viewer, ListQuery.parse(""))
        shown, every = [row.invoice.id for row in listing.rows], [row.invoice.id for row in whole.rows]
        assert shown[:PAGE_SIZE] == every[:PAGE_SIZE]  # the first page is the whole list's first page
        if listing.complete:
            assert (shown, listing.totals) == (every, whole.totals)
        else:
            assert len(shown) == PAGE_SIZE and listing.totals == []
        return counted, (limits, sum(transport.by_path().values()), len(whole.rows))
    finally:
        await billing.aclose()


async def test_the_first_page_costs_the_same_billing_requests_with_150_or_3000_invoices(world: World) -> None:
    few = [await world.profile(cards=()) for _ in range(25)]
    for profile in few:
        await world.bulk_invoices(profile, 6)
    many = [await world.profile(cards=()) for _ in range(25)]
    for profile in many:
        await world.bulk_invoices(profile, 120)
    small, large = await world.person(few), await world.person(many)
    assert small.email and large.email

    small_counts, (small_limits, _, small_total) = await _requests_for_first_page(world, few, small.email)
    large_counts, (large_limits, whole_requests, large_total) = await _requests_for_first_page(world, many,
                                                                                               large.email)
    assert (small_total, large_total) == (150, 3000)
    # One list request and the profiles of the rows shown (20 rows, here 20 profiles).
    assert small_counts == large_counts == Counter({"/v1/invoices": 1, "/v1/billing-profiles/*": PAGE_SIZE})
    assert small_limits == large_limits == [str(FIRST_READ)]
    # Reading the whole list (for the totals) is what grows with the invoices.
    assert whole_requests >= 25 * 2  # two pages of each profile's 120


async def test_a_short_list_is_one_billing_request_and_its_own_profiles(world: World) -> None:
    profiles = [await world.profile(cards=()) for _ in range(3)]
    for profile in profiles:
        await world.bulk_invoices(profile, 10)
    person = await world.person(profiles)
    assert person.email
    counts, (limits, _, total) = await _requests_for_first_page(world, profiles, person.email)
    assert total == 30
    assert counts == Counter({"/v1/invoices": 1, "/v1/billing-profiles/*": 3}) and limits == [str(FIRST_READ)]
