"""Structured logs with a request id, and a filter that keeps secrets out of them.

Production writes one JSON object per line (`LOG_FORMAT=json`); development gets
readable lines. Whatever a log call is given, tokens, keys, card numbers and emails are
masked before the line is written.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_SECRETS = [
    (re.compile(r"xox[abposre]-[A-Za-z0-9-]+"), "xox?-***"),
    (re.compile(r"xapp-[A-Za-z0-9-]+"), "xapp-***"),
    (re.compile(r"\b(sk|rk|pk)_(test|live)_[A-Za-z0-9]+"), r"\1_\2_***"),
    (re.compile(r"\bwhsec_[A-Za-z0-9]+"), "whsec_***"),
    (re.compile(r"(?i)(bearer\s+)[^\s'\"]+"), r"\1***"),
    # Request signatures (X-Slack-Signature's v0=…, Stripe-Signature's v1=…): never worth keeping.
    (re.compile(r"\b(v[01])=[0-9A-Fa-f]{16,}"), r"\1=***"),
    (re.compile(r"\b(?:\d[ -]?){13,19}\b"), "[card number]"),
    (re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})"), r"\1***@\2"),
]


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        if record.exc_info:
            # Tracebacks carry locals' reprs through their messages: render and scrub them now.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_text:
            entry["error"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure(fmt: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RedactingFilter())
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Library loggers that would print request bodies or URLs with tokens at DEBUG.
    for noisy in ("httpx", "httpcore", "stripe", "slack_sdk", "slack_bolt", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
