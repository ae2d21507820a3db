"""The one error type of the sandbox: it maps 1:1 onto the contract's error body."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error the API answers with `{"error": {"code": ..., "message": ...}}`.

    Raised by the store as well as the HTTP layer so that business-rule checks that
    must run inside a database transaction can report the exact contract code.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message)


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def not_found(code: str, message: str) -> ApiError:
    return ApiError(404, code, message)


def conflict(code: str, message: str) -> ApiError:
    return ApiError(409, code, message)


def rejected(code: str, message: str) -> ApiError:
    return ApiError(422, code, message)
