"""Due-date digests: their times across daylight-saving changes, what they say, and Slack's
limits with many invoices."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from blocks.reminders import DIGEST_PAY_NOW, MAX_LINES, digest_message
from bot.billing import Invoice
from bot.reminders import ReminderCommand, build_digest, digest_key, next_occurrence
from storage.models import ReminderSetting

TODAY = dt.date(2026, 12, 7)  # a Monday


def setting(cadence: str = "weekly", local_time: str = "09:00", zone: str = "Europe/Berlin",
            weekday: int = 0) -> ReminderSetting:
    return ReminderSetting(team_id="T1", billing_profile_id="bp", cadence=cadence, local_time=local_time,
                           weekday=weekday, days_ahead=7, time_zone=zone, set_by="U1")


def invoice(n: int, due: dt.date, amount: str = "100.00", currency: str = "EUR", status: str = "open") -> Invoice:
    return Invoice(id=f"inv_{n}", number=f"INV-{n:04d}", billing_profile_id="bp", status=status, currency=currency,
                   total=Decimal(amount), amount_due=Decimal(amount), due_on=due, pdf_url="https://x.example/i.pdf")


def test_a_weekly_digest_stays_at_9_local_across_the_autumn_dst_change() -> None:
    # Berlin leaves summer time on Sunday 25 October 2026: 09:00 is 07:00 UTC before, 08:00 after.
    before = next_occurrence(setting(), dt.datetime(2026, 10, 17, 12, 0, tzinfo=dt.UTC))
    after = next_occurrence(setting(), before + dt.timedelta(seconds=1))  # type: ignore[operator]
    assert before == dt.datetime(2026, 10, 19, 7, 0, tzinfo=dt.UTC)
    assert after == dt.datetime(2026, 10, 26, 8, 0, tzinfo=dt.UTC)
    assert after - before == dt.timedelta(days=7, hours=1)  # not a fixed week of UTC


def test_a_daily_digest_stays_at_its_local_time_across_the_spring_dst_change() -> None:
    # New York springs forward on Sunday 8 March 2026: 08:30 EST is 13:30 UTC, 08:30 EDT 12:30.
    s = setting("daily", "08:30", "America/New_York")
    times = []
    at = dt.datetime(2026, 3, 6, 0, 0, tzinfo=dt.UTC)
    for _ in range(4):
        at = next_occurrence(s, at)  # type: ignore[assignment]
        times.append(at)
    assert [t.strftime("%d %H:%M") for t in times] == ["06 13:30", "07 13:30", "08 12:30", "09 12:30"]
    assert digest_key("T1", "bp", times[2], "America/New_York") == "digest:T1:bp:2026-03-08"


def test_weekly_is_on_its_weekday_and_off_is_never() -> None:
    monday_noon = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
    assert next_occurrence(setting(zone="UTC"), monday_noon) == dt.datetime(2026, 12, 14, 9, 0, tzinfo=dt.UTC)
    assert next_occurrence(setting(zone="UTC"), monday_noon.replace(hour=8)) == monday_noon.replace(hour=9)
    assert next_occurrence(setting("off"), monday_noon) is None


def test_the_command_reads_profile_cadence_and_time() -> None:
    assert ReminderCommand.parse("reminders Acme GmbH daily 8:30") == ReminderCommand("Acme GmbH", "daily", "08:30")
    assert ReminderCommand.parse("reminders Acme GmbH off") == ReminderCommand("Acme GmbH", "off", None)
    assert ReminderCommand.parse("reminders Acme GmbH 10:00") == ReminderCommand("Acme GmbH", "weekly", "10:00")
    assert ReminderCommand.parse("reminders") == ReminderCommand("", None, None)
    assert ReminderCommand.parse("reminders bp_eu weekly") == ReminderCommand("bp_eu", "weekly", None)


def test_the_digest_has_overdue_and_due_soon_and_nothing_later() -> None:
    invoices = [invoice(1, TODAY + dt.timedelta(days=3)), invoice(2, TODAY - dt.timedelta(days=2), "50.00"),
                invoice(3, TODAY + dt.timedelta(days=30)), invoice(4, TODAY + dt.timedelta(days=7), "1.00", "USD"),
                invoice(5, TODAY + dt.timedelta(days=1), status="paid")]
    digest = build_digest("Acme GmbH", invoices, today=TODAY, days_ahead=7, locale="en_US",
                          scheduled=frozenset({"inv_1"}))
    assert [line.invoice.number for line in digest.lines] == ["INV-0002", "INV-0001", "INV-0004"]
    assert [str(m.amount) for m in digest.totals] == ["150.00", "1.00"]
    message = digest_message(digest)
    text = json.dumps(message["blocks"], ensure_ascii=False)
    assert "Overdue" in text and "payment scheduled" in text and "INV-0003" not in text
    assert "€150.00" in text and "$1.00" in text
    buttons = [b["accessory"] for b in message["blocks"] if "accessory" in b]
    assert [json.loads(b["value"])["invoice"] for b in buttons] == ["inv_2", "inv_1", "inv_4"]
    assert all(b["action_id"].startswith(f"{DIGEST_PAY_NOW}:") for b in buttons)


def test_nothing_due_is_an_empty_digest() -> None:
    digest = build_digest("Acme GmbH", [invoice(1, TODAY + dt.timedelta(days=20))], today=TODAY, days_ahead=7,
                          locale="en_US")
    assert digest.lines == [] and digest.totals == []


def test_a_digest_of_300_invoices_stays_within_slacks_limits() -> None:
    currencies = ("EUR", "USD", "JPY")
    invoices = [invoice(n, TODAY + dt.timedelta(days=n % 9 - 2),
                        f"{n}" if n % 3 == 2 else f"{n}.{n % 100:02d}", currencies[n % 3]) for n in range(1, 301)]
    digest = build_digest("A" * 300, invoices, today=TODAY, days_ahead=7, locale="de_DE")
    message = digest_message(digest)
    blocks = message["blocks"]
    assert len(blocks) <= 50
    assert len([b for b in blocks if "accessory" in b]) == MAX_LINES
    assert len(blocks[0]["text"]["text"]) <= 150
    for block in blocks:
        for text in [block.get("text", {}).get("text", "")] + [e.get("text", "") for e in block.get("elements", [])]:
            assert len(text) <= 3000
    assert len(message["text"]) <= 4000
    shown = len(digest.lines)
    assert shown > MAX_LINES  # every one counted in the totals, most summarized
    assert f"{shown - MAX_LINES} more invoices" in json.dumps(blocks)
    assert "/invoices" in json.dumps(blocks[-2])
    # The totals count every invoice in the digest, exactly.
    expected = {c: sum((line.invoice.amount_due for line in digest.lines if line.invoice.currency == c), Decimal(0))
                for c in ("EUR", "JPY", "USD")}
    assert {m.currency: m.amount for m in digest.totals} == expected


def test_the_command_reads_weekday_days_ahead_and_time_zone_in_any_order() -> None:
    parsed = ReminderCommand.parse("reminders Acme GmbH weekly friday 8:30 14 days europe/berlin")
    assert (parsed.profile, parsed.cadence, parsed.weekday, parsed.local_time, parsed.days_ahead,
            parsed.time_zone) == ("Acme GmbH", "weekly", 4, "08:30", 14, "Europe/Berlin")
    # A weekday alone means weekly; `14d` is 14 days; a time zone alone changes nothing else.
    assert ReminderCommand.parse("reminders Acme thu").cadence == "weekly"
    assert ReminderCommand.parse("reminders Acme thu").weekday == 3
    assert ReminderCommand.parse("reminders Acme daily 3d").days_ahead == 3
    alone = ReminderCommand.parse("reminders Acme America/New_York")
    assert (alone.profile, alone.cadence, alone.time_zone, alone.is_change) == ("Acme", None, "America/New_York", True)
    assert not ReminderCommand.parse("reminders").is_change
    # Not a zone zoneinfo knows: part of the profile's name, as any other word.
    assert ReminderCommand.parse("reminders Acme/Moon").profile == "Acme/Moon"


def test_days_ahead_out_of_range_is_said_not_guessed() -> None:
    from bot.reminders import ReminderProblem
    with pytest.raises(ReminderProblem, match="1 to 60 days"):
        ReminderCommand.parse("reminders Acme weekly 90 days")
