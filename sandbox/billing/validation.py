"""Request-body helpers: every malformed input becomes a 422 with a contract error body."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from starlette.requests import Request

from .errors import rejected

_MISSING = object()


async def read_json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise rejected("invalid_json", "the request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise rejected("invalid_request", "the request body must be a JSON object")
    return body


def require_str(body: dict[str, Any], key: str, *, max_length: int = 255) -> str:
    value = body.get(key, _MISSING)
    if value is _MISSING or value is None:
        raise rejected("invalid_request", f"{key} is required")
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise rejected("invalid_request", f"{key} must be a non-empty string of at most {max_length} characters")
    return value


def optional_str(body: dict[str, Any], key: str, *, max_length: int = 2000) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise rejected("invalid_request", f"{key} must be a string or null")
    return value


def require_choice(body: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = body.get(key)
    if not isinstance(value, str) or value not in choices:
        raise rejected("invalid_request", f"{key} must be one of {', '.join(choices)}")
    return value


def str_list(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise rejected("invalid_request", f"{key} must be a list of strings")
    return value


def optional_date(body: dict[str, Any], key: str) -> date | None:
    value = body.get(key)
    if value is None:
        return None
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError as exc:
        raise rejected("invalid_request", f"{key} must be a date as YYYY-MM-DD") from exc


def optional_int(body: dict[str, Any], key: str, default: int, *, minimum: int, maximum: int) -> int:
    value = body.get(key, default)
    # bool is an int subclass; `true` is not a count.
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        raise rejected("invalid_request", f"{key} must be an integer from {minimum} to {maximum}")
    return value
