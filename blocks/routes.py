"""`/invoices notify`: where each billing profile's payment notifications go."""

from __future__ import annotations

import re

from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

from blocks.invoices import Message
from blocks.text import clip, safe
from bot.routing import RouteRow

_MAX_ROWS = 40
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9_]+")


def _channel(channel: str) -> str:
    return f"<#{channel}>" if _CHANNEL_ID.fullmatch(channel) else safe(channel, 80)


def routes_message(rows: list[RouteRow], *, title: str = "Where payment notifications go") -> Message:
    lines = [f"*{title}*"]
    for row in rows[:_MAX_ROWS]:
        where = _channel(row.channel) + (" (default)" if row.is_default else "")
        lines.append(f"• {safe(row.profile_name, 120)}: {where}")
    if len(rows) > _MAX_ROWS:
        lines.append(f"…and {len(rows) - _MAX_ROWS} more billing profiles")
    help_text = ("Billing-profile admins change this with `/invoices notify #channel` (all your profiles) or "
                 "`/invoices notify #channel <profile name>` (one).")
    return Message(clip(f"{title}", 3000), [
        SectionBlock(text=MarkdownTextObject(text=clip("\n".join(lines), 3000))).to_dict(),
        ContextBlock(elements=[MarkdownTextObject(text=help_text)]).to_dict(),
    ])
