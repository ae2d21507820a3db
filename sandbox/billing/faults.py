"""Runtime knobs for tests and demos: artificial latency and injected failures."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse

from .errors import error_body, rejected
from .store import new_id

_DEFAULT_CODES = {
    408: "request_timeout",
    409: "conflict",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


@dataclass
class SandboxConfig:
    latency_seconds: float = 0.0


@dataclass
class Fault:
    """Answer the next `remaining` matching requests with `status` (None = until cleared)."""

    id: str
    method: str | None  # None matches any method
    path_regex: re.Pattern[str]
    status: int
    remaining: int | None
    after_processing: bool
    retry_after: int | None
    code: str
    message: str

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and self.path_regex.search(path) is not None

    def response(self) -> JSONResponse:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None
        return JSONResponse(error_body(self.code, self.message), status_code=self.status, headers=headers)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "path_regex": self.path_regex.pattern,
            "status": self.status,
            "count": self.remaining,
            "after_processing": self.after_processing,
            "retry_after": self.retry_after,
            "code": self.code,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Fault:
        method = body.get("method")
        if method is not None and (not isinstance(method, str) or not method.isalpha()):
            raise rejected("invalid_request", "method must be an HTTP method or null")
        try:
            path_regex = re.compile(body.get("path_regex", ""))
        except (re.error, TypeError) as exc:
            raise rejected("invalid_request", "path_regex must be a valid regular expression") from exc
        status = body.get("status", 503)
        if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
            raise rejected("invalid_request", "status must be an HTTP error status (400-599)")
        count = body.get("count", 1)
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
            raise rejected("invalid_request", "count must be a positive integer, or null for 'until cleared'")
        retry_after = body.get("retry_after")
        if retry_after is None and status == 429:
            retry_after = 1  # the contract promises Retry-After on every 429
        if retry_after is not None and (
            not isinstance(retry_after, int) or isinstance(retry_after, bool) or retry_after < 0
        ):
            raise rejected("invalid_request", "retry_after must be a non-negative integer (seconds) or null")
        code = body.get("code") or _DEFAULT_CODES.get(status, "sandbox_fault")
        message = body.get("message") or f"injected sandbox fault ({status})"
        if not isinstance(code, str) or not isinstance(message, str):
            raise rejected("invalid_request", "code and message must be strings")
        return cls(
            id=new_id("flt"),
            method=method.upper() if method else None,
            path_regex=path_regex,
            status=status,
            remaining=count,
            after_processing=bool(body.get("after_processing", False)),
            retry_after=retry_after,
            code=code,
            message=message,
        )


@dataclass
class FaultInjector:
    """Only touched from the event loop (middleware and admin handlers, no awaits in
    between check and decrement), so no lock is needed for exact counts under load."""

    faults: list[Fault] = field(default_factory=list)

    def add(self, fault: Fault) -> None:
        self.faults.append(fault)

    def clear(self) -> int:
        cleared = len(self.faults)
        self.faults.clear()
        return cleared

    def take(self, method: str, path: str) -> Fault | None:
        """The first armed fault matching the request, consuming one of its uses."""
        for fault in self.faults:
            if fault.matches(method, path):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self.faults.remove(fault)
                return fault
        return None
