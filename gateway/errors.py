"""The wire's error codes (DESIGN.md) and the one exception every handler raises to refuse."""

from __future__ import annotations

from typing import Any

HTTP_STATUS = {
    "0": 200,
    "1001": 401,
    "1002": 401,
    "1003": 409,
    "1004": 400,
    "1005": 400,
    "2001": 422,
    "3001": 402,
    "3002": 429,
    "3003": 429,
    "4004": 404,
    "4029": 429,
    "5000": 500,
}


class ApiError(Exception):
    """A refusal: ``code`` from the table, a message for a person, optional details."""

    def __init__(
        self,
        code: str,
        message: str,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.headers = headers or {}

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]


def invalid(errors: list[dict[str, Any]], message: str | None = None) -> ApiError:
    """A 2001 listing each field (or number) at fault."""
    first = errors[0]["message"] if errors else "invalid payload"
    text = message or (first if len(errors) == 1 else f"{len(errors)} problems; first: {first}")
    return ApiError("2001", text, {"errors": errors})


def field_error(field: str, message: str, value: Any = None) -> dict[str, Any]:
    """One entry of ``data.errors``; the value only when it helps (and is short).

    Pass no value that may hold a secret (a callback URL carries the receiver's token):
    errors end up in logs and on screens.
    """
    entry: dict[str, Any] = {"field": field, "message": message}
    if value is not None:
        if isinstance(value, str) and len(value) > 100:
            value = value[:100] + "…"
        if isinstance(value, (str, int, bool)):
            entry["value"] = value
    return entry


def not_found(what: str) -> ApiError:
    return ApiError("4004", f"{what} not found")
