"""The listeners of each Slack surface, called directly (as bolt-python's starter template
tests them): a fake `ack`, `respond` and Web API `client`, the request's `body`, and a
`context` holding the viewer the middleware would have put there. Services are small fakes.

What is checked is what the person sees (the text of the answer, the modal) and what the
audit trail records; the error handler's answers before an ack are checked too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from blocks.home import CHANGE_ROUTE, ROUTE_BLOCK, ROUTE_CALLBACK, SEE_ALL
from blocks.invoices import PAGE, PAY_NOW, Message, notice_message
from blocks.pay_modal import CALLBACK_ID, REFRESH_METHODS
from bot.billing import Access, BillingError
from bot.clock import SystemClock
from bot.errors import FieldProblem, FormExpired, InvoiceNotPayable
from bot.identity import AccessDenied, AccessProblem, Viewer
from bot.routing import RouteProblem, RouteRow
from bot.submission import SubmissionService
from handlers import actions, commands, events, failures, home, views
from handlers.context import VIEWER, Background, ViewerLookup

TEAM, USER = "T1", "U1"


# -- fakes -----------------------------------------------------------------------------------
class FakeApp:
    """Collects what `register` decorates, by the name of the listener function."""

    def __init__(self) -> None:
        self.listeners: dict[str, Callable[..., Any]] = {}

    def _collect(self, *_: Any, **__: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
            self.listeners[function.__name__] = function
            return function
        return decorate

    command = action = view = event = _collect

    def error(self, function: Callable[..., Any]) -> Callable[..., Any]:
        self.listeners[function.__name__] = function
        return function


class FakeAck:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


class FakeRespond:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, **kwargs: Any) -> None:
        self.messages.append(kwargs)


class FakeClient:
    """The Web API calls the listeners make, recorded; views.open answers with a view id."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def views_open(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("views.open", kwargs))
        return {"ok": True, "view": {"id": "V_OPENED"}}

    async def views_update(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("views.update", kwargs))
        return {"ok": True}

    async def chat_postMessage(self, **kwargs: Any) -> dict[str, Any]:  # noqa: N802 - Slack's name
        self.calls.append(("chat.postMessage", kwargs))
        return {"ok": True}


class FakeAudit:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, dict[str, Any]]] = []

    async def record(self, action: str, outcome: str, **detail: Any) -> None:
        self.rows.append((action, outcome, detail))


class FakeIdentity:
    def __init__(self, viewer: Viewer | None = None, denied: AccessProblem | None = None) -> None:
        self._viewer, self._denied = viewer, denied
        self.lookups: list[bool] = []

    async def viewer(self, team_id: str, user_id: str, *, fresh: bool = False) -> Viewer:
        self.lookups.append(fresh)
        if self._denied is not None:
            raise AccessDenied(self._denied)
        assert self._viewer is not None
        return self._viewer


class FakeLists:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.asked: list[tuple[Viewer, str, int]] = []

    async def message(self, viewer: Viewer, query: Any, page: int = 0) -> tuple[Message, int]:
        if self.error is not None:
            raise self.error
        self.asked.append((viewer, query.as_text, page))
        return notice_message("Open invoices", "INV-1 and INV-2"), 2

    async def first_page(self, viewer: Viewer, query: Any) -> Any:
        # A short list: the first page is the whole list (see LongLists for a longer one).
        message, count = await self.message(viewer, query)
        return SimpleNamespace(message=message, count=count)


class LongLists(FakeLists):
    """A list longer than a page: the first page says "counting…", then the whole list."""

    def __init__(self, error: Exception | None = None) -> None:
        super().__init__(error)
        self.first = SimpleNamespace(message=notice_message("Open invoices", "INV-1 … counting…"), count=None)

    async def first_page(self, viewer: Viewer, query: Any) -> Any:
        return self.first

    def uncounted(self, first: Any) -> Message:
        assert first is self.first
        return notice_message("Open invoices", "INV-1 … not counted just now")


def viewer(*permissions: str) -> Viewer:
    access = Access(email="ana@example.com", permissions=list(permissions), billing_profile_ids=["bp_1"])
    return Viewer(TEAM, USER, "ana@example.com", access)


def context_for(identity: FakeIdentity) -> dict[str, Any]:
    return {VIEWER: ViewerLookup(identity, TEAM, USER), "team_id": TEAM, "user_id": USER}  # type: ignore[arg-type]


def text_of(view_or_message: dict[str, Any]) -> str:
    return json.dumps(view_or_message, ensure_ascii=False)


COMMAND = {"team_id": TEAM, "user_id": USER, "command": "/invoices", "text": "",
           "response_url": "https://hooks.slack.com/commands/1", "trigger_id": "1.2.3"}
_ENVELOPE = {"user": {"id": USER, "team_id": TEAM}, "team": {"id": TEAM}, "trigger_id": "1.2.3"}


def block_actions(action_id: str, value: str | None = None, *, view: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "block_actions", **_ENVELOPE, "response_url": "https://hooks.slack.com/actions/1",
                            "actions": [{"type": "button", "action_id": action_id, "block_id": "b1",
                                         **({"value": value} if value is not None else {})}]}
    if view is not None:
        body["view"] = view
    return body


def submission(callback_id: str, values: dict[str, Any], private_metadata: str = "ps_1") -> dict[str, Any]:
    return {"type": "view_submission", **_ENVELOPE, "view": {
        "id": "V1", "type": "modal", "callback_id": callback_id, "hash": "1.abc", "private_metadata": private_metadata,
        "state": {"values": values}}}


# -- commands --------------------------------------------------------------------------------
def register_commands(lists: FakeLists, audit: FakeAudit, routing: Any = None) -> dict[str, Callable[..., Any]]:
    app = FakeApp()
    commands.register(app, lists=lists, routing=routing, audit=audit)  # type: ignore[arg-type]
    return app.listeners


async def test_invoices_acks_first_then_lists_through_the_response_url() -> None:
    lists, audit, identity = FakeLists(), FakeAudit(), FakeIdentity(viewer("invoice_viewer"))
    ack, respond = FakeAck(), FakeRespond()
    await register_commands(lists, audit)["list_invoices"](ack=ack, body={**COMMAND, "text": "overdue"},
                                                           respond=respond, context=context_for(identity))
    assert ack.calls == [{}]
    assert "INV-1 and INV-2" in respond.messages[0]["text"] and respond.messages[0]["response_type"] == "ephemeral"
    assert lists.asked[0][1] == "overdue"
    assert audit.rows == [("list_invoices", "ok", {"team_id": TEAM, "user_id": USER, "query": "overdue", "count": 2})]


async def test_a_long_list_shows_its_first_page_then_replaces_it_with_the_totals() -> None:
    lists, audit, identity = LongLists(), FakeAudit(), FakeIdentity(viewer("invoice_viewer"))
    respond = FakeRespond()
    await register_commands(lists, audit)["list_invoices"](ack=FakeAck(), body=COMMAND, respond=respond,
                                                           context=context_for(identity))
    assert [(m["text"], m["replace_original"]) for m in respond.messages] == [
        ("Open invoices: INV-1 … counting…", False), ("Open invoices: INV-1 and INV-2", True)]
    assert audit.rows == [("list_invoices", "ok", {"team_id": TEAM, "user_id": USER, "query": "", "count": 2})]
    assert identity.lookups == [False]  # one lookup for both messages


async def test_a_long_list_whose_totals_fail_keeps_its_first_page_and_says_they_are_not_counted() -> None:
    lists, audit = LongLists(BillingError(503, "unavailable", "down")), FakeAudit()
    respond = FakeRespond()
    await register_commands(lists, audit)["list_invoices"](
        ack=FakeAck(), body=COMMAND, respond=respond, context=context_for(FakeIdentity(viewer("invoice_viewer"))))
    assert [(m["text"], m["replace_original"]) for m in respond.messages] == [
        ("Open invoices: INV-1 … counting…", False), ("Open invoices: INV-1 … not counted just now", True)]
    assert audit.rows == [("list_invoices", "ok", {"team_id": TEAM, "user_id": USER, "query": "", "count": None,
                                                   "totals_error": "BillingError"})]


async def test_invoices_for_someone_without_the_viewer_permission_says_why_and_audits_it() -> None:
    audit, identity = FakeAudit(), FakeIdentity(denied=AccessProblem.NOT_VIEWER)
    respond = FakeRespond()
    await register_commands(FakeLists(), audit)["list_invoices"](ack=FakeAck(), body=COMMAND, respond=respond,
                                                                 context=context_for(identity))
    assert respond.messages[0]["text"].startswith("You can't view invoices: ")
    assert "*Invoice Viewer* permission" in respond.messages[0]["text"]
    assert audit.rows[0][:2] == ("list_invoices", "denied") and audit.rows[0][2]["reason"] == "not_invoice_viewer"


async def test_invoices_help_is_the_ack_itself() -> None:
    ack, respond, identity = FakeAck(), FakeRespond(), FakeIdentity(viewer("invoice_viewer"))
    await register_commands(FakeLists(), FakeAudit())["list_invoices"](ack=ack, body={**COMMAND, "text": "help"},
                                                                       respond=respond, context=context_for(identity))
    assert ack.calls[0]["text"] == "How to use /invoices" and "past-due invoices" in text_of(ack.calls[0]["blocks"])
    assert respond.messages == [] and identity.lookups == []  # no one looked up for the help


async def test_invoices_notify_shows_the_routes_from_one_lookup() -> None:
    class Routing:
        async def show(self, person: Viewer) -> list[RouteRow]:
            return [RouteRow("bp_1", "Acme GmbH", "C_FIN", is_default=True)]

    identity, respond = FakeIdentity(viewer("invoice_viewer", "billing_profile_admin")), FakeRespond()
    await register_commands(FakeLists(), FakeAudit(), Routing())["list_invoices"](
        ack=FakeAck(), body={**COMMAND, "text": "notify"}, respond=respond, context=context_for(identity))
    assert "Where payment notifications go" in respond.messages[0]["text"]
    assert identity.lookups == [False]


async def test_invoices_notify_with_a_bad_channel_says_what_is_wrong() -> None:
    class Routing:
        async def set(self, person: Viewer, channel: str, profile: str) -> Any:
            raise RouteProblem("I can't find the channel #nowhere.")

    identity, respond = FakeIdentity(viewer("invoice_viewer", "billing_profile_admin")), FakeRespond()
    await register_commands(FakeLists(), FakeAudit(), Routing())["list_invoices"](
        ack=FakeAck(), body={**COMMAND, "text": "notify #nowhere"}, respond=respond, context=context_for(identity))
    assert respond.messages[0]["text"] == "Notifications not changed: I can't find the channel #nowhere."
    assert identity.lookups == [True]  # changing a route asks past the caches


# -- actions ---------------------------------------------------------------------------------
class FakePayments:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def open_form(self, **_: Any) -> Any:
        raise self.error

    async def reload_form(self, **_: Any) -> Any:
        raise self.error

    async def fee_quote(self, **_: Any) -> Any:
        raise self.error


def register_actions(payments: Any, lists: FakeLists, audit: FakeAudit) -> dict[str, Callable[..., Any]]:
    app = FakeApp()
    actions.register(app, payments=payments, lists=lists, audit=audit, clock=SystemClock(),  # type: ignore[arg-type]
                     slack_links=None)  # type: ignore[arg-type]
    return app.listeners


class FakeRequest:
    headers: dict[str, str] = {}


async def test_pay_now_opens_a_modal_at_once_and_fills_it_with_the_words_for_a_paid_invoice() -> None:
    client = FakeClient()
    listeners = register_actions(FakePayments(InvoiceNotPayable("INV-7", "paid")), FakeLists(), FakeAudit())
    value = json.dumps({"invoice": "inv_7", "q": ""})
    await listeners["pay_now"](ack=FakeAck(), body=block_actions(f"{PAY_NOW}:0", value), client=client,
                               req=FakeRequest())
    assert [name for name, _ in client.calls] == ["views.open", "views.update"]
    assert "Loading the invoice" in text_of(client.calls[0][1]["view"])
    update = client.calls[1][1]
    assert update["view_id"] == "V_OPENED"
    assert "Nothing to pay on this invoice" in text_of(update["view"])
    assert "Invoice INV-7 is paid now" in text_of(update["view"])


async def test_paging_when_billing_is_down_answers_in_place_and_audits_the_refusal() -> None:
    audit, respond = FakeAudit(), FakeRespond()
    listeners = register_actions(FakePayments(RuntimeError()), FakeLists(BillingError(503, "unavailable", "down")),
                                 audit)
    await listeners["page"](ack=FakeAck(), body=block_actions(f"{PAGE}:next", json.dumps({"q": "", "p": 1})),
                            respond=respond, context=context_for(FakeIdentity(viewer("invoice_viewer"))))
    assert respond.messages[0]["text"].startswith("Billing system unavailable: ")
    assert respond.messages[0]["replace_original"] is True
    assert audit.rows[0][:2] == ("list_invoices", "denied") and audit.rows[0][2]["reason"] == "BillingError"


async def test_refresh_on_an_expired_form_replaces_it_with_words() -> None:
    client = FakeClient()
    listeners = register_actions(FakePayments(FormExpired()), FakeLists(), FakeAudit())
    await listeners["refresh_methods"](ack=FakeAck(), body=block_actions(REFRESH_METHODS, view={
        "id": "V9", "hash": "1.x", "private_metadata": "ps_gone"}), client=client)
    assert client.calls[0][0] == "views.update" and client.calls[0][1]["view_id"] == "V9"
    assert "This form has expired" in text_of(client.calls[0][1]["view"])


async def test_an_unexpected_failure_gets_the_generic_words_and_no_details() -> None:
    client = FakeClient()
    listeners = register_actions(FakePayments(KeyError("sk_live_secret")), FakeLists(), FakeAudit())
    await listeners["refresh_methods"](ack=FakeAck(), body=block_actions(REFRESH_METHODS, view={
        "id": "V9", "hash": "1.x", "private_metadata": "ps_1"}), client=client)
    shown = text_of(client.calls[0][1]["view"])
    assert "Something went wrong" in shown and "sk_live_secret" not in shown and "KeyError" not in shown


# -- views (the pay modal's submission) ------------------------------------------------------
class SubmitPayments:
    def __init__(self, quick: Exception | None = None, submit: Exception | None = None) -> None:
        self.quick, self.submit_error = quick, submit

    async def earlier(self, _: Any) -> None:
        return None

    async def first_look(self, _: Any) -> Any:
        from bot.payments import FirstLook  # noqa: PLC0415

        return FirstLook(None, None)

    async def quick_check(self, _: Any, **__: Any) -> None:
        if self.quick is not None:
            raise self.quick

    async def submit(self, _: Any) -> Any:
        assert self.submit_error is not None
        raise self.submit_error


def register_views(payments: Any) -> dict[str, Callable[..., Any]]:
    app = FakeApp()
    submissions = SubmissionService(payments, None, None, None, deadline_seconds=5.0)  # type: ignore[arg-type]
    views.register(app, submissions=submissions, background=Background(), clock=SystemClock())
    return app.listeners


PAY_VALUES = {"amount": {"amount": {"type": "plain_text_input", "value": "abc"}}}


async def test_a_field_problem_at_submission_is_shown_under_the_field_by_the_error_handler() -> None:
    ack = FakeAck()
    listeners = register_views(SubmitPayments(quick=FieldProblem("amount", "Enter an amount, like 120.50.")))
    body = submission(CALLBACK_ID, PAY_VALUES)
    with pytest.raises(FieldProblem) as raised:
        await listeners["submit"](ack=ack, body=body, client=FakeClient())
    assert ack.calls == []  # not acknowledged: the error handler answers
    assert failures.answer_for("view_submission", raised.value) == {
        "response_action": "errors", "errors": {"amount": "Enter an amount, like 120.50."}}


async def test_an_expired_form_at_submission_is_replaced_by_words() -> None:
    listeners = register_views(SubmitPayments(quick=FormExpired()))
    with pytest.raises(FormExpired) as raised:
        await listeners["submit"](ack=FakeAck(), body=submission(CALLBACK_ID, PAY_VALUES), client=FakeClient())
    answer = failures.answer_for("view_submission", raised.value)
    assert answer["response_action"] == "update" and "This form has expired" in text_of(answer["view"])


async def test_a_refusal_after_the_working_answer_updates_the_modal_with_its_words() -> None:
    ack, client = FakeAck(), FakeClient()
    listeners = register_views(SubmitPayments(submit=AccessDenied(AccessProblem.PROFILE_NOT_ALLOWED)))
    await listeners["submit"](ack=ack, body=submission(CALLBACK_ID, PAY_VALUES), client=client)
    assert ack.calls[0]["response_action"] == "update" and "Working on your payment" in text_of(ack.calls[0]["view"])
    assert client.calls[0][0] == "views.update" and client.calls[0][1]["view_id"] == "V1"
    assert "You can't pay this invoice" in text_of(client.calls[0][1]["view"])
    assert "Nothing was charged" in text_of(client.calls[0][1]["view"])


# -- the Home tab and its events -------------------------------------------------------------
def register_home(lists: FakeLists, audit: FakeAudit, routing: Any = None) -> dict[str, Callable[..., Any]]:
    app = FakeApp()
    refreshed: list[tuple[str, str]] = []
    home.register(app, lists=lists, invoices=None, router=None, routing=routing, audit=audit,  # type: ignore[arg-type]
                  refresh_home=lambda team, user: refreshed.append((team, user)))
    app.listeners["_refreshed"] = lambda: refreshed
    return app.listeners


async def test_see_all_sends_the_list_by_dm() -> None:
    client, audit = FakeClient(), FakeAudit()
    await register_home(FakeLists(), audit)["see_all"](ack=FakeAck(), body=block_actions(SEE_ALL), client=client,
                                                       context=context_for(FakeIdentity(viewer("invoice_viewer"))))
    assert client.calls[0][0] == "chat.postMessage" and client.calls[0][1]["channel"] == USER
    assert "INV-1 and INV-2" in client.calls[0][1]["text"]
    assert audit.rows[0][:2] == ("list_invoices", "ok") and audit.rows[0][2]["surface"] == "home"


async def test_changing_a_route_without_the_admin_permission_opens_words_and_audits() -> None:
    client, audit = FakeClient(), FakeAudit()
    identity = FakeIdentity(viewer("invoice_viewer"))
    await register_home(FakeLists(), audit)["change_route"](
        ack=FakeAck(), body=block_actions(f"{CHANGE_ROUTE}:0", "bp_1"), client=client, context=context_for(identity))
    assert client.calls[0][0] == "views.open"
    assert "Only billing-profile admins can do that" in text_of(client.calls[0][1]["view"])
    assert audit.rows[0][2]["reason"] == "not_billing_profile_admin"
    assert identity.lookups == [True]


async def test_saving_a_route_the_bot_cannot_use_shows_the_problem_under_the_picker() -> None:
    class Routing:
        async def set(self, person: Viewer, channel: str, profile: str) -> Any:
            raise RouteProblem("I'm not in that private channel. Invite me first.")

    listeners = register_home(FakeLists(), FakeAudit(), Routing())
    body = submission(ROUTE_CALLBACK, {"route_channel": {"channel": {"type": "conversations_select",
                                                                     "selected_conversation": "C_PRIV"}}}, "bp_1")
    ack = FakeAck()
    with pytest.raises(FieldProblem) as raised:
        await listeners["save_route"](ack=ack, body=body,
                                      context=context_for(FakeIdentity(viewer("invoice_viewer",
                                                                              "billing_profile_admin"))))
    assert ack.calls == []
    assert failures.answer_for("view_submission", raised.value) == {
        "response_action": "errors", "errors": {ROUTE_BLOCK: "I'm not in that private channel. Invite me first."}}
    assert listeners["_refreshed"]() == []


async def test_opening_the_home_tab_publishes_it() -> None:
    published: list[tuple[str, str]] = []

    async def publish(team: str, user: str) -> None:
        published.append((team, user))

    app = FakeApp()
    events.register(app, publish_home=publish)  # type: ignore[arg-type]
    await app.listeners["home_opened"](event={"type": "app_home_opened", "user": USER, "tab": "home"},
                                       context={"team_id": TEAM})
    await app.listeners["home_opened"](event={"type": "app_home_opened", "user": USER, "tab": "messages"},
                                       context={"team_id": TEAM})
    assert published == [(TEAM, USER)]


# -- the viewer middleware's lookup ----------------------------------------------------------
async def test_the_viewer_is_looked_up_once_per_request() -> None:
    identity = FakeIdentity(viewer("invoice_viewer"))
    lookup = ViewerLookup(identity, TEAM, USER)  # type: ignore[arg-type]
    first, again = await lookup(), await lookup()
    assert first is again and identity.lookups == [False]
    fresh = await lookup(fresh=True)
    assert await lookup() is fresh and await lookup(fresh=True) is fresh
    assert identity.lookups == [False, True]


async def test_the_middleware_puts_the_lookup_in_the_context() -> None:
    class App:
        def middleware(self, function: Callable[..., Any]) -> Callable[..., Any]:
            self.function = function
            return function

    from handlers.context import install_viewer

    app, ran = App(), []
    install_viewer(app, FakeIdentity(viewer("invoice_viewer")))  # type: ignore[arg-type]

    class Context(dict):  # type: ignore[type-arg]
        team_id, user_id = TEAM, USER

    context = Context()

    async def next_() -> None:
        ran.append(True)

    await app.function(context=context, next=next_)
    assert ran == [True] and isinstance(context[VIEWER], ViewerLookup) and context[VIEWER].user_id == USER


# -- the error handler -----------------------------------------------------------------------
async def test_the_error_handler_never_gives_a_500() -> None:
    app = FakeApp()
    failures.register(app)  # type: ignore[arg-type]

    class Request:
        body: dict[str, Any] = {"command": "/invoices"}

    class Response:
        pass

    answer = await app.listeners["listener_failed"](error=RuntimeError("boom"), request=Request(), response=Response())
    assert answer.status == 200 and json.loads(answer.body)["text"] == failures.SOMETHING_WENT_WRONG
    assert await app.listeners["listener_failed"](error=RuntimeError("boom"), request=Request(), response=None) is None


# -- approvals ---------------------------------------------------------------------------------
async def test_an_approve_click_that_fails_midway_never_says_nothing_was_charged() -> None:
    from blocks.approvals import APPROVE
    from handlers import approvals as approval_listeners

    class FailingApprovals:
        async def approve(self, *_: Any) -> Any:
            raise RuntimeError("the database went away after the charge started")

    app = FakeApp()
    approval_listeners.register(app, approvals=FailingApprovals(), background=Background())  # type: ignore[arg-type]
    ack, respond = FakeAck(), FakeRespond()
    await app.listeners["approve"](ack=ack, body=block_actions(APPROVE, "pay_1"), respond=respond)
    assert ack.calls == [{}]
    said = respond.messages[-1]["text"]
    assert "can't tell yet whether" in said and "othing was charged" not in said, said
    assert "database" not in said  # no details of the failure


async def test_a_rejection_reason_is_answered_before_the_checks_that_may_be_slow() -> None:
    from blocks.approvals import REASON_BLOCK, REASON_FIELD, REJECT_CALLBACK
    from bot.approvals import Decision
    from handlers import approvals as approval_listeners

    ack, client = FakeAck(), FakeClient()

    class SlowApprovals:
        async def reject(self, *_: Any) -> Decision:
            assert ack.calls, "Slack must have its answer before the billing API is asked"
            return Decision(None)

    app = FakeApp()
    approval_listeners.register(app, approvals=SlowApprovals(), background=Background())  # type: ignore[arg-type]
    body = submission(REJECT_CALLBACK, {REASON_BLOCK: {REASON_FIELD: {"type": "plain_text_input",
                                                                      "value": "Wrong cost centre"}}},
                      private_metadata=json.dumps({"payment": "pay_1"}))
    await app.listeners["reject_reason"](ack=ack, body=body, client=client)
    assert ack.calls[0]["response_action"] == "update"
    assert [name for name, _ in client.calls] == ["views.update"]


async def test_a_withdraw_that_fails_unexpectedly_still_answers_in_the_window() -> None:
    from blocks.approvals import WITHDRAW
    from handlers import approvals as approval_listeners

    class FailingApprovals:
        async def withdraw(self, *_: Any) -> Any:
            raise RuntimeError("the database went away")

    app = FakeApp()
    approval_listeners.register(app, approvals=FailingApprovals(), background=Background())  # type: ignore[arg-type]
    ack, client = FakeAck(), FakeClient()
    body = block_actions(WITHDRAW, "pay_1", view={"id": "V_REQ", "type": "modal", "callback_id": "pay_invoice",
                                                  "hash": "1.abc", "private_metadata": "ps_1"})
    await app.listeners["withdraw"](ack=ack, body=body, client=client)
    assert ack.calls == [{}]
    [(name, call)] = client.calls
    assert name == "views.update" and call["view_id"] == "V_REQ"
    said = json.dumps(call["view"])
    assert "database" not in said and "went away" not in said  # words, no details
    assert "blocks" in call["view"] and said != "{}"
