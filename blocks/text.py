"""Safe text for Block Kit: escaping and hard length limits."""

from __future__ import annotations

import datetime as dt

from babel.dates import format_date


def escape(text: object) -> str:
    """Escape mrkdwn control characters, so text from the billing backend (profile names,
    invoice numbers) can never become a mention (`<!channel>`) or a link (`<url|text>`)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def safe(text: object, limit: int) -> str:
    """Escaped, then clipped without cutting an escape sequence in half."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = clip(escaped, limit)
    amp = cut.rfind("&", max(0, len(cut) - 6))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp] + "…"
    return cut


def link(url: str | None, label: str) -> str:
    """An mrkdwn link, or just the label when there is no usable URL."""
    if not url or not url.startswith(("https://", "http://")) or len(url) > 2900:
        return escape(label)
    return f"<{url.replace('|', '%7C').replace('>', '%3E').replace('<', '%3C')}|{escape(label)}>"


def day(value: dt.date, locale: str = "en_US") -> str:
    """A date as people of that locale write it ("Oct 31, 2026", "31.10.2026")."""
    return format_date(value, format="medium", locale=locale)
