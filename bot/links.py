"""Signed short links of the bot's own, for buttons that open a page outside Slack.

A button's URL is fixed when the modal is drawn, but what it leads to (a Stripe Checkout
Session to add a card, Stripe's 3-D Secure page for one payment) is created only when the
person clicks, so a modal left open for days still works and opening a modal costs no
Stripe call. The link carries what it is for, an expiry, and an HMAC over both; the page
behind it checks the person's rights again on the server.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

from bot.clock import Clock

# How long a link in an open modal keeps working.
LINK_TTL = dt.timedelta(days=7)


class LinkInvalid(Exception):
    """Forged, altered, expired, or meant for another purpose."""


class LinkSigner:
    def __init__(self, secret: str, clock: Clock, *, ttl: dt.timedelta = LINK_TTL) -> None:
        # A key of its own, derived from the app's secret, so a link signature can never
        # be mistaken for (or used as) any other signature the app makes or checks.
        self._key = hmac.new(secret.encode(), b"invoicebot links v1", hashlib.sha256).digest()
        self._clock = clock
        self._ttl = ttl

    def sign(self, purpose: str, subject: str) -> str:
        expires = int((self._clock.now() + self._ttl).timestamp())
        return f"{expires}.{self._mac(purpose, subject, expires)}"

    def verify(self, purpose: str, subject: str, token: str | None) -> None:
        expires_text, _, mac = (token or "").partition(".")
        if not expires_text.isdigit() or len(expires_text) > 12 or not mac:
            raise LinkInvalid("malformed")
        expires = int(expires_text)
        if not hmac.compare_digest(mac, self._mac(purpose, subject, expires)):
            raise LinkInvalid("signature")
        if self._clock.now().timestamp() > expires:
            raise LinkInvalid("expired")

    def _mac(self, purpose: str, subject: str, expires: int) -> str:
        message = f"{purpose}\n{subject}\n{expires}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")
