"""Block Kit builders are pure: feed them extreme data and check Slack's limits hold."""

import datetime as dt
import json
from decimal import Decimal

from blocks.invoices import PAGE_SIZE, invoice_list_message, parse_page_value, parse_pay_value
from blocks.notifications import payment_notice
from blocks.pay_modal import loading_view, pay_form_view, payment_view
from bot.billing import BillingProfile, Invoice, WireInstructions
from bot.invoices import InvoiceListing, InvoiceRow, ListQuery, Totals
from bot.money import Money, totals_by_currency
from bot.payments import PayForm
from bot.stripe_gateway import SavedMethod
from sandbox.slack.limits import validate_message, validate_view
from bot.summaries import PaymentSummary, payment_summary
from storage.models import Payment

TODAY = dt.date(2026, 11, 25)


def invoice(i: int, *, currency: str = "EUR", number: str | None = None, profile: str = "bp_eu",
            amount: str = "1200.00") -> Invoice:
    return Invoice(id=f"inv_{i}", number=number or f"INV-2026-{i:04d}", billing_profile_id=profile,
                   status="past_due" if i % 3 == 0 else "open", currency=currency, total=Decimal(amount),
                   amount_due=Decimal(amount), issued_on=TODAY - dt.timedelta(days=40),
                   due_on=TODAY + dt.timedelta(days=i - 10), pdf_url=f"https://billing.example/{i}.pdf",
                   url=f"https://billing.example/{i}")


def listing(rows: list[InvoiceRow], query: str = "") -> InvoiceListing:
    return InvoiceListing(ListQuery.parse(query), rows, totals_by_currency([r.invoice.balance for r in rows]))


def test_pages_of_120_invoices_stay_within_slack_limits_and_cover_everything() -> None:
    rows = [InvoiceRow(invoice(i), "Acme GmbH", i % 3 == 0) for i in range(120)]
    seen: list[str] = []
    page, pages = 0, 0
    while True:
        message = invoice_list_message(listing(rows), page=page, today=TODAY)
        assert validate_message(message.text, message.blocks) == []
        buttons = [b["accessory"] for b in message.blocks if b.get("accessory", {}).get("text", {}).get("text") == "Pay Now"]
        seen += [parse_pay_value(b["value"])[0] for b in buttons]
        pages += 1
        paging = [b for b in message.blocks if b.get("block_id") == "paging"]
        nxt = [e for b in paging for e in b["elements"] if e["action_id"].endswith(":next")]
        if not nxt:
            break
        page = parse_page_value(nxt[0]["value"])[1]
    assert pages == -(-120 // PAGE_SIZE)
    assert seen == [f"inv_{i}" for i in range(120)]


def test_a_first_page_whose_totals_are_being_counted_shows_no_number_that_could_be_wrong() -> None:
    rows = [InvoiceRow(invoice(i), "Acme GmbH", i % 3 == 0) for i in range(PAGE_SIZE)]
    first = InvoiceListing(ListQuery.parse(""), rows, [], totals_state=Totals.COUNTING)
    message = invoice_list_message(first, page=0, today=TODAY)
    assert validate_message(message.text, message.blocks) == []
    summary = message.blocks[1]["text"]["text"]
    assert summary == f"*More than {PAGE_SIZE} invoices to pay*\nBalance due: _counting…_"
    assert "overdue" not in summary and "€" not in summary  # no partial count, no partial sum
    buttons = [b["accessory"] for b in message.blocks if b.get("accessory")]
    assert [parse_pay_value(b["value"])[0] for b in buttons] == [f"inv_{i}" for i in range(PAGE_SIZE)]
    paging = [e for b in message.blocks if b.get("block_id") == "paging" for e in b["elements"]]
    assert [(e["action_id"], parse_page_value(e["value"])) for e in paging] == [("invoices_page:next", ("", 1))]
    assert f"Showing 1–{PAGE_SIZE} · Sorted" in json.dumps(message.blocks, ensure_ascii=False)

    failed = invoice_list_message(InvoiceListing(ListQuery.parse(""), rows, [], totals_state=Totals.UNAVAILABLE),
                                  page=0, today=TODAY)
    assert "Balance due: _not counted just now" in failed.blocks[1]["text"]["text"]
    assert "counting…" not in json.dumps(failed.blocks, ensure_ascii=False)


def test_hostile_and_huge_data_never_breaks_the_message() -> None:
    evil = "<!channel> <https://evil.example|click> & " + "x" * 5000
    rows = [InvoiceRow(invoice(i, number=evil, currency=c), evil, True)
            for i, c in enumerate(["EUR", "USD", "JPY", "KWD", "GBP"] * 10)]
    message = invoice_list_message(listing(rows, query="y" * 500), page=0, today=TODAY)
    assert validate_message(message.text, message.blocks) == []
    text = json.dumps(message.blocks)
    assert "<!channel>" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt;" in text


def test_empty_list_says_so_kindly() -> None:
    message = invoice_list_message(listing([]), page=0, today=TODAY)
    assert "Nothing to pay" in message.blocks[0]["text"]["text"]
    overdue = invoice_list_message(listing([], "overdue"), page=0, today=TODAY)
    assert "Nothing is overdue" in overdue.blocks[0]["text"]["text"]


def profile(**kw: object) -> BillingProfile:
    base = dict(id="bp_eu", name="Acme GmbH", currency="EUR", stripe_customer_id="cus_1",
                card_fee_percent=Decimal("2.9"),
                wire_instructions=WireInstructions(beneficiary="Cloud Vendor Ltd", iban="DE89370400440532013000",
                                                   swift="COBADEFFXXX", reference="Put the invoice number"))
    base.update(kw)
    return BillingProfile(**base)  # type: ignore[arg-type]


def form(methods: list[SavedMethod], **kw: object) -> PayForm:
    return PayForm("sess_1", invoice(1), profile(**kw), methods, methods[0].id if methods else None,
                   "https://checkout.example/cs_1", False, None)


def test_pay_form_shows_fee_default_method_and_wire_instructions() -> None:
    methods = [SavedMethod("pm_1", "card", "Visa", "4242", 4, 2029), SavedMethod("pm_2", "card", "Mastercard", "4444", 1, 2030)]
    view = pay_form_view(form(methods), today=TODAY)
    assert validate_view(view) == []
    text = json.dumps(view, ensure_ascii=False)
    assert "Visa •••• 4242, expires 04/29" in text
    assert "A 2.9% card fee of *€34.80* is billed separately" in text
    assert "DE89370400440532013000" in text
    select = next(b for b in view["blocks"] if b.get("block_id") == "method")["element"]
    assert select["initial_option"]["value"] == "pm_1"
    amount = next(b for b in view["blocks"] if b.get("block_id") == "amount")["element"]
    assert amount["initial_value"] == "1200.00"


def test_pay_form_with_no_card_makes_adding_one_the_main_action_and_cannot_submit() -> None:
    view = pay_form_view(form([]), today=TODAY)
    assert validate_view(view) == []
    assert "submit" not in view
    add = next(e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == "add_card")
    assert add["style"] == "primary" and add["url"].startswith("https://")


def test_wire_transfer_is_offered_as_an_alternative_only_when_there_is_one() -> None:
    card = [SavedMethod("pm_1", "card", "Visa", "4242", 4, 2029)]
    assert "Prefer a wire transfer?" in json.dumps(pay_form_view(form(card), today=TODAY))
    only_wire = json.dumps(pay_form_view(form([], stripe_customer_id=None), today=TODAY))
    assert "Pay by wire transfer" in only_wire and "Prefer a wire transfer?" not in only_wire


def test_pay_form_with_150_methods_and_long_names_stays_valid() -> None:
    methods = [SavedMethod(f"pm_{i}", "sepa_debit", "B" * 200, f"{i:04d}") for i in range(150)]
    view = pay_form_view(form(methods, name="<!here>" * 100), today=TODAY)
    assert validate_view(view) == []


def payment(**kw: object) -> PaymentSummary:
    base = dict(id="pay_1", team_id="T1", user_id="U1", paid_by="a@b.example", invoice_id="inv_1",
                invoice_number="INV-1", billing_profile_id="bp_eu", billing_profile_name="Acme <!channel>",
                invoice_url="https://billing.example/1", amount_minor=80000, currency="EUR", method_kind="card",
                payment_method_id="pm_1", payment_method_type="card", method_label="Visa •••• 4242",
                stripe_customer_id="cus_1", status="recorded", stripe_payment_intent_id="pi_1",
                invoice_status_after="partially_paid", balance_after_minor=40000, attempts=0)
    base.update(kw)
    return payment_summary(Payment(**base))  # type: ignore[arg-type]


def test_receipt_and_every_payment_state_render_valid_views() -> None:
    for status in ["created", "confirming", "charged", "debiting", "processing", "requires_action", "recorded",
                   "failed", "canceled"]:
        view = payment_view(payment(status=status))
        assert validate_view(view) == [], status
    receipt = json.dumps(payment_view(payment()), ensure_ascii=False)
    assert "€800.00" in receipt and "€400.00" in receipt and "Partially paid" in receipt
    assert validate_view(loading_view()) == []


def test_notification_names_who_what_how_much_and_what_remains() -> None:
    notice = payment_notice(payment(), "paid")
    assert validate_message(notice["text"], notice["blocks"]) == []
    text = notice["blocks"][0]["text"]["text"]
    assert "<@U1> paid *€800.00*" in text and "Visa •••• 4242" in text and "*€400.00* remains due" in text
    assert "<!channel>" not in json.dumps(notice)
    full = payment_notice(payment(invoice_status_after="paid", balance_after_minor=0), "paid")
    assert "paid in full" in full["blocks"][0]["text"]["text"]


def test_money_in_views_uses_the_currency_s_decimals() -> None:
    yen = payment(currency="JPY", amount_minor=5000, balance_after_minor=0, invoice_status_after="paid")
    assert "¥5,000" in json.dumps(payment_view(yen), ensure_ascii=False)
    assert Money.from_minor(5000, "JPY").format() == "¥5,000"


def test_a_digest_of_ten_notices_is_one_valid_message_with_each_once() -> None:
    from blocks.notifications import DIGEST_SIZE, digest

    notices = [payment_notice(payment(id=f"pay_{i}", invoice_number=f"INV-{i}"), "paid") for i in range(DIGEST_SIZE)]
    message = digest(notices)
    assert validate_message(message["text"], message["blocks"]) == []
    shown = json.dumps(message["blocks"])
    assert all(shown.count(f"*INV-{i}*") == 1 for i in range(DIGEST_SIZE))
    assert digest(notices[:1]) == notices[0]


def test_a_confirm_stripe_refused_is_never_worded_as_a_charge() -> None:
    from blocks.notifications import payer_message
    from bot.processor import REFUSED_NOT_CHARGED, REFUSED_UNKNOWN

    for reason in (REFUSED_UNKNOWN, REFUSED_NOT_CHARGED):
        refused = payment(status="needs_attention", attention_step="confirm", failure_message=reason)
        words = [json.dumps(payment_notice(refused, "attention")), json.dumps(payer_message(refused)),
                 json.dumps(payment_view(refused))]
        for text in words:
            assert "refused to confirm" in text and reason in text, text
            claims = text.replace("whether it was charged", "").replace("(if it was charged)", "")
            assert "was charged" not in claims and "Charged" not in claims and "billing system" not in claims, text
    # A charge billing would not record still says so.
    unrecorded = payment(status="needs_attention", attention_step="record:succeeded", failure_message="No.")
    assert "was charged" in json.dumps(payment_notice(unrecorded, "attention"))


def test_a_late_invoice_says_so_once_and_a_part_paid_one_is_tagged_whatever_its_status() -> None:
    late_part_paid = invoice(3).model_copy(update={"due_on": TODAY - dt.timedelta(days=5), "amount_due": Decimal("200.00")})
    assert late_part_paid.status == "past_due"
    modal = json.dumps(pay_form_view(PayForm("sess_1", late_part_paid, profile(), [], None, None, False, None),
                                     today=TODAY), ensure_ascii=False)
    assert modal.count("Overdue") == 1 and "Past due" not in modal and "Partly paid" in modal
    unpaid = json.dumps(pay_form_view(form([]), today=TODAY), ensure_ascii=False)
    assert "Not paid yet" in unpaid and "Partly paid" not in unpaid
    rows = [InvoiceRow(late_part_paid, "Acme GmbH", True), InvoiceRow(invoice(6), "Acme GmbH", True)]
    message = json.dumps(invoice_list_message(listing(rows), page=0, today=TODAY).blocks, ensure_ascii=False)
    assert message.count("partly paid") == 1
