"""Every error kedacore raises, and the one place an API answer becomes an exception.

Pages catch :class:`KedaError`, never an httpx exception. An :class:`APIError` is built by
:func:`error_from_response` (also reachable as ``APIError.from_response``) from either of the
two response shapes of DESIGN.md, or from an answer that is not JSON at all (a proxy's HTML
502 page, say).
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, ClassVar

import httpx

from kedacore.redaction import mask as mask  # kedacore.api.errors.mask: where it used to be
from kedacore.redaction import redact_secrets, redact_text

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "CapReachedError",
    "ClockSkewError",
    "ConfigurationError",
    "DecryptionError",
    "InsufficientBalanceError",
    "InternalServerError",
    "KedaError",
    "MalformedRequestError",
    "MissingCredentialsError",
    "NotFoundError",
    "RateLimitError",
    "ReplayError",
    "ValidationError",
    "error_from_response",
]


_ADDRESS_HINT = "Check the service address (KEDA_BASE_URL / KEDA_BACKUP_URL)."


class KedaError(Exception):
    """The root of every error kedacore raises."""


class ConfigurationError(KedaError, ValueError):
    """The client is set up wrongly (an unusable key or address); nothing was sent."""


class MissingCredentialsError(ConfigurationError):
    """A call needs the API key or the encryption key and the client has none; nothing was sent."""

    def __init__(self, operation: str, argument: str, variable: str) -> None:
        self.operation = operation
        self.argument = argument
        self.variable = variable
        what = {"api_key": "API key", "encryption_key": "encryption key"}.get(argument, argument)
        super().__init__(
            f"{operation} needs the {what}: pass {argument}= to the client "
            f"or set the {variable} environment variable"
        )


class APIConnectionError(KedaError):
    """KedaSMS could not be reached, or the connection broke before an answer came."""

    def __init__(self, method: str, url: str, reason: str = "") -> None:
        self.method = method
        self.url = redact_text(url)
        self.reason = redact_text(reason)
        super().__init__(self._sentence())

    def _sentence(self) -> str:
        why = f": {self.reason}" if self.reason else ""
        return (
            f"Could not reach KedaSMS for {self.method} {self.url}{why}. "
            "Check the address (KEDA_BASE_URL / KEDA_BACKUP_URL) and the network, then try again."
        )


class APITimeoutError(APIConnectionError):
    """KedaSMS did not answer within the client's timeout."""

    def _sentence(self) -> str:
        return (
            f"KedaSMS did not answer {self.method} {self.url} in time. "
            "The service may be slow or unreachable; try again, or raise the client's timeout."
        )


class APIError(KedaError):
    """KedaSMS answered with an error.

    Attributes:
        code: the wire's error code as text ("1001", or "404" from the status endpoint);
            None when the answer was not JSON.
        http_status: the HTTP status of the answer.
        message: what the service said is wrong, for a person.
        details: the answer's ``data`` (None when it carried none).
        retry_after: seconds from the ``Retry-After`` header, when one was sent.
    """

    hint: ClassVar[str] = ""

    def __init__(
        self,
        message: str,
        *,
        code: str | None,
        http_status: int,
        details: Any = None,
        retry_after: float | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        self.message = message
        self.code = code
        self.http_status = http_status
        self.details = details
        self.retry_after = retry_after
        self.method = method
        self.url = url
        super().__init__(message)

    def __str__(self) -> str:
        where = f"HTTP {self.http_status}"
        if self.code:
            where = f"code {self.code}, {where}"
        text = self.message.rstrip(". ")
        hint = self.hint
        if self.code is None and self.http_status < 500 and self.http_status != 429:
            hint = _ADDRESS_HINT  # not KedaSMS's JSON: most likely the wrong address
        hint = f" {hint}" if hint else ""
        return redact_text(f"{text} ({where}).{hint}")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, http_status={self.http_status}, "
            f"message={self.message!r})"
        )

    @classmethod
    def from_response(cls, response: httpx.Response, *, redact: Iterable[str] = ()) -> APIError:
        """Build the right subclass for an error answer (see :func:`error_from_response`)."""
        return error_from_response(response, redact=redact)


class AuthenticationError(APIError):
    """1001: the API key is unknown or missing."""

    hint = "Check the API key (KEDA_API_KEY)."


class ClockSkewError(AuthenticationError):
    """1002: the request's timestamp is more than 300 s from the server's clock."""

    hint = "Set this machine's clock right (UTC); requests must be within 300 s of the server."


class DecryptionError(AuthenticationError):
    """1005: the body could not be decrypted — usually the wrong encryption key."""

    hint = "Check that the encryption key (KEDA_ENCRYPTION_KEY) belongs to this API key."


class ReplayError(APIError):
    """1003: this request's IV was already used; the body was replayed."""

    hint = "kedacore seals every attempt afresh, so something resent an old body; send again."


class MalformedRequestError(APIError):
    """1004: the envelope or its JSON is malformed."""

    hint = "This is a bug in the client or a proxy changed the body; report it."


class ValidationError(APIError):
    """2001: the payload was refused; ``errors`` lists each field or number at fault."""

    hint = "Correct the listed fields and send again; nothing was charged."

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Each fault as ``{"field", "message", "value"}``."""
        raw = self.details.get("errors") if isinstance(self.details, Mapping) else None
        if not isinstance(raw, list):
            return []
        return [
            {"field": e.get("field"), "message": e.get("message"), "value": e.get("value")}
            if isinstance(e, Mapping)
            else {"field": None, "message": str(e), "value": None}
            for e in raw
        ]

    def __str__(self) -> str:
        base = super().__str__()
        faults = self.errors
        if not faults:
            return base
        shown = "; ".join(
            f"{e['field'] or '?'}"
            + (f" {e['value']!r}" if e["value"] is not None else "")
            + f": {e['message']}"
            for e in faults[:5]
        )
        more = f" (and {len(faults) - 5} more)" if len(faults) > 5 else ""
        # The service may echo a refused URL (a callbackUrl with the receiver's token).
        return redact_text(f"{base} Faults: {shown}{more}.")


class InsufficientBalanceError(APIError):
    """3001: the balance does not cover the price of the send."""

    hint = "Top up the account, or send to fewer numbers."


class CapReachedError(APIError):
    """3002 / 3003: the send would take today's usage past a daily cap (blockOnLimit)."""

    hint = "Raise the cap in Limits, or wait for the next UTC day."

    @property
    def cap(self) -> str | None:
        """Which cap: "dailySmsCap" (3002) or "dailySpendCap" (3003)."""
        return {"3002": "dailySmsCap", "3003": "dailySpendCap"}.get(self.code or "")


class NotFoundError(APIError):
    """4004 (or the status endpoint's 404): no such message, task or link for this account."""

    hint = "Check the identifier; it may belong to another account."


class RateLimitError(APIError):
    """4029: too many requests; ``retry_after`` says how long to wait, in seconds."""

    hint = "Slow down and try again after the Retry-After delay."


class InternalServerError(APIError):
    """5000 or any 5xx: the service (or a proxy in front of it) failed."""

    hint = "This is on KedaSMS's side; try again later."


_BY_CODE: dict[str, type[APIError]] = {
    "1001": AuthenticationError,
    "1002": ClockSkewError,
    "1003": ReplayError,
    "1004": MalformedRequestError,
    "1005": DecryptionError,
    "2001": ValidationError,
    "3001": InsufficientBalanceError,
    "3002": CapReachedError,
    "3003": CapReachedError,
    "4004": NotFoundError,
    "4029": RateLimitError,
    "5000": InternalServerError,
}

_BY_STATUS: dict[int, type[APIError]] = {
    400: MalformedRequestError,
    401: AuthenticationError,
    402: InsufficientBalanceError,
    404: NotFoundError,
    409: ReplayError,
    422: ValidationError,
    429: RateLimitError,
}


def _class_for_status(status: int) -> type[APIError]:
    if status >= 500:
        return InternalServerError
    return _BY_STATUS.get(status, APIError)


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date); None if absent."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - time.time()
    return max(seconds, 0.0) if seconds == seconds else None  # NaN guard


def _plain_text(text: str, limit: int = 160) -> str:
    """A short, readable excerpt of a non-JSON body (tags stripped, whitespace collapsed)."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S | re.I)
    text = re.sub(r"<[^>]+>", " ", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _redact(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return redact_secrets(value, secrets)
    if isinstance(value, Mapping):
        return {k: _redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, secrets) for v in value]
    return value


def error_from_response(response: httpx.Response, *, redact: Iterable[str] = ()) -> APIError:
    """The APIError subclass for an answer that is not a success.

    Handles ``{"code": "1001", "message": ..., "data": ...}``, the status endpoint's
    ``{"success": false, "code": 404, "message": ...}`` and non-JSON answers. A known KedaSMS
    code decides the class; otherwise the HTTP status does (the status shape's numeric code is
    an HTTP status).

    Args:
        response: the httpx response (its body already read).
        redact: secrets to mask if the service echoed them back (the last 4 characters stay).
            Secrets inside any URL it echoes (user:password@, the receiver's
            ``/hooks/keda/<token>``, query values) are masked whatever this lists.
    """
    status = response.status_code
    secrets = sorted({s for s in redact if s and len(s) >= 4}, key=len, reverse=True)
    try:
        method: str | None = response.request.method
        url: str | None = redact_text(str(response.request.url.copy_with(query=None)))
    except RuntimeError:  # a response built without a request
        method = url = None
    common = {"method": method, "url": url, "retry_after": parse_retry_after(response.headers)}
    try:
        body = json.loads(response.content, parse_float=Decimal)
    except ValueError:
        body = None
    if not isinstance(body, Mapping):
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        excerpt = _plain_text(response.text) if response.content else ""
        if 300 <= status < 400:
            where = response.headers.get("location", "elsewhere")
            message = f"KedaSMS redirected the request to {where}; check the base URL"
        elif body is None:
            said = f": {excerpt!r}" if excerpt else ""
            message = f"KedaSMS (or a proxy before it) answered with a {kind} page, not JSON{said}"
        else:
            message = "KedaSMS answered with JSON that is not an object"
        return _class_for_status(status)(
            _redact(message, secrets), code=None, http_status=status, **common
        )

    raw_code = body.get("code")
    code = None if raw_code is None or isinstance(raw_code, bool) else str(raw_code)
    if code in _BY_CODE:
        cls = _BY_CODE[code]
    elif isinstance(raw_code, int) and 100 <= raw_code <= 599:
        cls = _class_for_status(raw_code)
    else:
        cls = _class_for_status(status)
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        message = f"KedaSMS refused the request without saying why (HTTP {status})"
    return cls(
        _redact(message, secrets),
        code=code,
        http_status=status,
        details=_redact(body.get("data"), secrets),
        **common,
    )
