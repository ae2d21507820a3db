"""The bot's signed links and its one clock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.clock import OffsetClock, SystemClock
from bot.links import LINK_TTL, LinkInvalid, LinkSigner


class FixedClock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def now(self) -> dt.datetime:
        return self.at


def test_a_link_verifies_for_its_purpose_and_subject_only() -> None:
    clock = FixedClock(dt.datetime(2026, 12, 2, tzinfo=dt.UTC))
    signer = LinkSigner("secret", clock)
    token = signer.sign("add_card", "sess_1")
    signer.verify("add_card", "sess_1", token)
    for purpose, subject, bad in [("authenticate", "sess_1", token), ("add_card", "sess_2", token),
                                  ("add_card", "sess_1", token[:-1] + ("A" if token[-1] != "A" else "B")),
                                  ("add_card", "sess_1", None), ("add_card", "sess_1", "x.y"),
                                  ("add_card", "sess_1", "9" * 40 + ".abc")]:
        with pytest.raises(LinkInvalid):
            signer.verify(purpose, subject, bad)
    with pytest.raises(LinkInvalid):
        LinkSigner("another secret", clock).verify("add_card", "sess_1", token)


def test_a_link_works_for_its_whole_life_and_not_after() -> None:
    clock = FixedClock(dt.datetime(2026, 12, 2, tzinfo=dt.UTC))
    signer = LinkSigner("secret", clock)
    token = signer.sign("add_card", "sess_1")
    clock.at += LINK_TTL - dt.timedelta(seconds=1)
    signer.verify("add_card", "sess_1", token)
    clock.at += dt.timedelta(seconds=2)
    with pytest.raises(LinkInvalid):
        signer.verify("add_card", "sess_1", token)


def test_the_offset_clock_follows_its_file(tmp_path: Path) -> None:
    file = tmp_path / "offset"
    clock = OffsetClock(file)
    assert abs((clock.now() - SystemClock().now()).total_seconds()) < 2  # no file: no offset
    file.write_text("86400")
    assert 86398 < (clock.now() - SystemClock().now()).total_seconds() < 86402
    file.write_text("not a number")
    assert abs((clock.now() - SystemClock().now()).total_seconds()) < 2
