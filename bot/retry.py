"""The one retry curve: exponential backoff with a cap, a little jitter, and (where asked
for) a limit on attempts after which the work stops and waits for a person.

Work that is retried later is persisted with an attempt counter and a `next_attempt_at`
(outbox messages, stalled payments), so what is needed is "when is the next try", not a
decorator around a call (what tenacity and backoff offer); this is that, in one place.

Curve, for the n-th failed try (n = 1, 2, ...):

    delay(n) = min(cap, base * factor ** (n - 1) * (1 + jitter * r)),   r uniform in [0, 1)

so with base 1 s, factor 2, cap 600 s: 1, 2, 4, 8 ... 512, 600, 600 ... seconds, each up to
10 % longer. The jitter only ever lengthens a wait: the curve's values are minimums, and
nothing is retried sooner than documented.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    base: float  # seconds before the first retry
    cap: float  # no wait is ever longer
    factor: float = 2.0
    # Up to this fraction added to each wait, so that many things failing together (a
    # Slack outage) do not all come back in the same second.
    jitter: float = 0.1
    # Tries in all (the first included) before giving up; None: no limit on tries.
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base or self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError(f"not a backoff curve: {self}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def delay(self, attempt: int, *, rng: Callable[[], float] = random.random) -> dt.timedelta:
        """How long to wait after the `attempt`-th failed try (1-based)."""
        step = max(1, attempt) - 1
        # Compare exponents rather than computing factor ** step, which overflows for
        # large attempt counts.
        seconds = self.cap if step > 64 else min(self.cap, self.base * self.factor ** step)
        return dt.timedelta(seconds=min(self.cap, seconds * (1 + self.jitter * rng())))

    def exhausted(self, attempts: int) -> bool:
        """True once `attempts` tries were made and no more are allowed."""
        return self.max_attempts is not None and attempts >= self.max_attempts

    def next_at(self, attempt: int, *, now: dt.datetime,
                rng: Callable[[], float] = random.random) -> dt.datetime:
        """When the next try is due, counted from `now`: the caller's injected clock
        (`bot.clock.Clock`), never the system's, so tests that move time move this too."""
        return now + self.delay(attempt, rng=rng)

    def total(self, attempts: int | None = None) -> dt.timedelta:
        """The longest the waits between `attempts` tries add up to (jitter aside): how
        long work keeps being retried before it is given up."""
        count = attempts if attempts is not None else self.max_attempts
        if count is None:
            raise ValueError("an unlimited curve has no total")
        return sum((self.delay(n, rng=lambda: 0.0) for n in range(1, count)), dt.timedelta(0))


def retry_after(value: object, *, cap: float) -> float | None:
    """The seconds a `Retry-After` header asks for (delta-seconds, the form Slack and the
    billing contract send; a header list gives its first value), at most `cap`; None when
    absent or not a number, so the caller falls back on its curve."""
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None:
        return None
    try:
        seconds = float(str(value).strip())
    except ValueError:
        return None
    return min(seconds, cap) if math.isfinite(seconds) and seconds >= 0 else None


# Calls to the billing API within one request (a 429 or 5xx, a dropped connection): short
# waits, 0.25 s, 0.5 s, 1 s, then the error is the caller's. Someone is waiting in Slack.
BILLING_CALL = Backoff(base=0.25, cap=2.0, max_attempts=4)

# Slack messages (the outbox): a hiccup is usually over in seconds; an outage gets
# about an hour of tries (1 s, 2 s ... 512 s, then every 10 min) before the message
# goes to the dead letters, where an operator sees it and can send it again.
SLACK_DELIVERY = Backoff(base=1.0, cap=600.0, max_attempts=16)

# Payments stalled on Stripe or the billing API (and the reconciler's looks at them):
# 5 s, 10 s, 20 s ... then every 10 min. Money may have moved, so there is no last try
# here; what cannot succeed is sent to a person by the processor instead.
PAYMENT_RETRY = Backoff(base=5.0, cap=600.0)
