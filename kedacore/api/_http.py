"""What the sync and async clients share: settings, the httpx client, requests, retries.

Everything here is independent of sync/async and of the HTTP library: an :class:`Endpoint`
describes one call, the client's ``_request()`` runs its retry loop around
:func:`request_content` (headers and body), :func:`read_result` (status and body to a result
or an APIError), :func:`connection_error` and :func:`retry_delay`. httpx requests are built
by :func:`build_request`; the asyncio path of AsyncKedaClient (kedacore.api._aio) sends the same
headers and body with aiohttp.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

import httpx

from kedacore import envelope
from kedacore.money import dumps
from kedacore.redaction import mask, redact_url, url_secrets
from kedacore.settings import DEFAULT_BACKUP_URL, DEFAULT_BASE_URL

from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ConfigurationError,
    InternalServerError,
    KedaError,
    MissingCredentialsError,
    RateLimitError,
    error_from_response,
)

VERSION = "0.1.0"
USER_AGENT = f"kedacore/{VERSION}"
DEFAULT_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 2

INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
# A Retry-After longer than this is not slept through inside a call: the RateLimitError
# (with its retry_after) goes to the caller, who can decide to wait or not.
MAX_RETRY_AFTER = 60.0
# A 429 is no outage (the service answered, and says when to come back): a call safe to
# repeat waits it out this many times even with fewer max_retries (the console's sidebar has
# none, so that an unreachable service says so at once; a campaign sharing the key must not
# make it fail).
RATE_LIMIT_RETRIES = 2

# Bulk sending keeps many requests in flight to one or two hosts; keep those connections warm.
POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=50, keepalive_expiry=30)

logger = logging.getLogger("kedacore")

T = TypeVar("T")


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _url(value: str, name: str) -> str:
    url = httpx.URL(value)
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(f"{name} must be an http(s) address, got {value!r}")
    return value.rstrip("/")


@dataclass(frozen=True, slots=True)
class Settings:
    """The client's resolved configuration: argument → environment → default.

    Its repr shows the addresses and the API key's last 4 characters (never the keys whole).
    """

    api_key: str | None = field(repr=False)
    encryption_key: bytes | None = field(repr=False)
    base_url: str
    backup_url: str

    @classmethod
    def resolve(
        cls,
        api_key: str | None,
        encryption_key: str | bytes | None,
        base_url: str | None,
        backup_url: str | None,
    ) -> Settings:
        key_text = encryption_key if encryption_key is not None else _env("KEDA_ENCRYPTION_KEY")
        raw_key = None
        if key_text:
            try:
                raw_key = envelope.decode_key(key_text)
            except ValueError as exc:  # the message names no part of the key
                raise ConfigurationError(
                    f"unusable encryption key (KEDA_ENCRYPTION_KEY): {exc}"
                ) from None
        return cls(
            api_key=api_key or _env("KEDA_API_KEY"),
            encryption_key=raw_key,
            base_url=_url(base_url or _env("KEDA_BASE_URL") or DEFAULT_BASE_URL, "base_url"),
            backup_url=_url(
                backup_url or _env("KEDA_BACKUP_URL") or DEFAULT_BACKUP_URL, "backup_url"
            ),
        )

    def describe(self) -> str:
        """The settings for a repr: addresses, and the API key's last 4 characters at most."""
        key = f"'{mask(self.api_key)}'" if self.api_key else "None"
        enc = "set" if self.encryption_key else "unset"
        return (
            f"base_url={redact_url(self.base_url)!r}, backup_url={redact_url(self.backup_url)!r}, "
            f"api_key={key}, encryption_key={enc}"
        )

    def __repr__(self) -> str:
        return f"Settings({self.describe()})"


class ClientBase:
    """What KedaClient and AsyncKedaClient share around their request loops: the resolved
    settings, the retry budget, the two addresses and a repr without secrets.

    The loops themselves (``_request``) stay one per client: they differ only in ``await``,
    and every decision in them is shared here (build_request, parse_result, retry_delay).
    """

    def __init__(
        self,
        api_key: str | None,
        encryption_key: str | bytes | None,
        base_url: str | None,
        backup_url: str | None,
        max_retries: int,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be ≥ 0, got {max_retries!r}")
        self._settings = Settings.resolve(api_key, encryption_key, base_url, backup_url)
        self.max_retries = max_retries
        self._jitter: Callable[[], float] = random.random  # patchable, as is _sleep

    @property
    def base_url(self) -> str:
        return self._settings.base_url

    @property
    def backup_url(self) -> str:
        return self._settings.backup_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._settings.describe()})"


@dataclass(frozen=True, slots=True)
class Endpoint(Generic[T]):
    """One API call: where it goes, what it carries, how its ``data`` becomes a result."""

    name: str  # "sms.send": for messages
    method: Literal["GET", "PUT", "POST"]
    host: Literal["base", "backup"]
    path: str
    parse: Callable[[Any], T]
    params: Mapping[str, str] | None = None
    body: Mapping[str, Any] | None = field(default=None, repr=False)  # a password, a token
    sealed: bool = False  # body is the payload of an AES-GCM envelope
    auth: bool = True  # needs the API key (X-Api-Key header, or in the envelope)
    key_in_body: bool = False  # also put apiKey in the JSON body (PUT limits, as in the seed)
    retry: bool | None = None  # None: retry when idempotent (GET, PUT)
    whole_answer: bool = False  # parse gets the whole answer ({"code", "data", ...}), not data

    @property
    def retryable(self) -> bool:
        return self.method in ("GET", "PUT") if self.retry is None else self.retry


def loads(content: bytes) -> Any:
    """JSON with every non-integer number read as an exact Decimal."""
    return json.loads(content, parse_float=Decimal)


def check_credentials(settings: Settings, endpoint: Endpoint[Any]) -> None:
    """Raise MissingCredentialsError before any request when the call needs a missing key."""
    if endpoint.auth and not settings.api_key:
        raise MissingCredentialsError(endpoint.name, "api_key", "KEDA_API_KEY")
    if endpoint.sealed and settings.encryption_key is None:
        raise MissingCredentialsError(endpoint.name, "encryption_key", "KEDA_ENCRYPTION_KEY")


def request_content(
    settings: Settings, endpoint: Endpoint[Any]
) -> tuple[dict[str, str], bytes | None]:
    """The headers and body of one attempt, whichever library sends it.

    An envelope gets a fresh IV and timestamp each time: a retry is never a replay.
    """
    headers: dict[str, str] = {}
    content: bytes | None = None
    if endpoint.sealed:
        assert settings.api_key is not None and settings.encryption_key is not None
        payload = dumps(endpoint.body or {})
        sealed = envelope.seal(payload, settings.encryption_key, api_key=settings.api_key)
        content = dumps(sealed)
    else:
        if endpoint.auth:
            assert settings.api_key is not None
            headers["X-Api-Key"] = settings.api_key
        if endpoint.body is not None or endpoint.key_in_body:
            body = dict(endpoint.body or {})
            if endpoint.key_in_body:
                body["apiKey"] = settings.api_key
            content = dumps(body)
    if content is not None:
        headers["Content-Type"] = "application/json"
    return headers, content


def endpoint_base(settings: Settings, endpoint: Endpoint[Any]) -> str:
    """The address an endpoint's path is appended to (the front end or the back end)."""
    return settings.base_url if endpoint.host == "base" else settings.backup_url


def build_request(
    http: httpx.Client | httpx.AsyncClient, settings: Settings, endpoint: Endpoint[Any]
) -> httpx.Request:
    """The httpx request for one attempt (see :func:`request_content`)."""
    headers, content = request_content(settings, endpoint)
    return http.build_request(
        endpoint.method, endpoint_base(settings, endpoint) + endpoint.path,
        params=endpoint.params, headers=headers, content=content,
    )  # fmt: skip


_REFUSED = object()  # what _success_answer returns for an answer that is not a success


def _success_answer(status: int, content: bytes) -> Any:
    """A successful answer (either shape) as a dict, or ``_REFUSED``."""
    if 200 <= status < 300:
        try:
            body = loads(content)
        except ValueError:
            body = None
        if isinstance(body, dict):
            ok = body.get("success") is True if "success" in body else str(body.get("code")) == "0"
            if ok:
                return body
    return _REFUSED


def log_answer(method: str, url: str, status: int) -> None:
    """One debug line per answer; the URL is given without its query (it may hold ids)."""
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s %s -> HTTP %d", method, url, status)


def read_result(
    endpoint: Endpoint[T],
    settings: Settings,
    status: int,
    content: bytes,
    response: Callable[[], httpx.Response],
) -> T:
    """The typed result of an answer, from its status and body, whichever library received it.

    Any answer that is not a success is an APIError made by ``errors.error_from_response``
    from ``response()`` — the one mapping of codes, statuses, Retry-After and redaction; it is
    called only then, so a library other than httpx builds an httpx.Response only for errors.
    Data kedacore cannot read is an APIError too, not a KeyError.
    """
    answer = _success_answer(status, content)
    if answer is _REFUSED:
        # Secrets of the request besides the API key (a callback URL's token), masked if the
        # service echoes them in its refusal.
        callback = (endpoint.body or {}).get("callbackUrl")
        secrets = [settings.api_key or "", *url_secrets(callback)]
        raise error_from_response(response(), redact=secrets)
    try:
        return endpoint.parse(answer if endpoint.whole_answer else answer.get("data"))
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        raise APIError(
            f"KedaSMS answered {endpoint.name} with data kedacore cannot read "
            f"({type(exc).__name__}: {exc}); the service may be newer than this client",
            code=None,
            http_status=status,  # no details: they may hold issued keys
        ) from exc


def parse_result(endpoint: Endpoint[T], response: httpx.Response, settings: Settings) -> T:
    """The typed result of an httpx answer (see :func:`read_result`)."""
    if logger.isEnabledFor(logging.DEBUG):
        request = response.request
        log_answer(request.method, str(request.url.copy_with(query=None)), response.status_code)
    return read_result(endpoint, settings, response.status_code, response.content, lambda: response)


def connection_error(
    method: str, url: str, exc: BaseException, *, timed_out: bool
) -> APIConnectionError:
    """Our error for a transport failure (no headers or body in the message)."""
    if timed_out:
        error: APIConnectionError = APITimeoutError(method, url)
    else:
        error = APIConnectionError(method, url, str(exc) or type(exc).__name__)
    error.__cause__ = exc
    return error


def transport_error(exc: httpx.RequestError, request: httpx.Request) -> APIConnectionError:
    """Our error for an httpx transport failure (see :func:`connection_error`)."""
    url = str(request.url.copy_with(query=None))
    return connection_error(
        request.method, url, exc, timed_out=isinstance(exc, httpx.TimeoutException)
    )


def retry_delay(
    endpoint: Endpoint[Any],
    error: KedaError,
    retries_done: int,
    max_retries: int,
    jitter: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before the next attempt, or None when the error should be raised.

    Retried: connection errors and timeouts, 429 rate limits and 5xx, for calls that are safe
    to repeat (see :attr:`Endpoint.retryable`). Backoff 0.5 s doubling to 8 s, minus up to 25 %
    jitter; a ``Retry-After`` of at most 60 s is honoured as given. A 429 is waited out up to
    ``RATE_LIMIT_RETRIES`` times even when ``max_retries`` is lower.
    """
    budget = max(max_retries, RATE_LIMIT_RETRIES) if isinstance(error, RateLimitError) else None
    if not endpoint.retryable or retries_done >= (budget or max_retries):
        return None
    if not isinstance(error, (APIConnectionError, RateLimitError, InternalServerError)):
        return None
    retry_after = error.retry_after if isinstance(error, APIError) else None
    if retry_after is not None:
        return retry_after if retry_after <= MAX_RETRY_AFTER else None
    delay = min(INITIAL_RETRY_DELAY * 2**retries_done, MAX_RETRY_DELAY)
    return delay * (1 - 0.25 * jitter())


def log_retry(endpoint: Endpoint[Any], error: KedaError, delay: float, attempt: int) -> None:
    what = f"HTTP {error.http_status}" if isinstance(error, APIError) else type(error).__name__
    logger.info("%s: %s; retrying in %.2f s (attempt %d)", endpoint.name, what, delay, attempt + 1)


def http_timeout(timeout: float | httpx.Timeout) -> httpx.Timeout:
    """The client's ``timeout`` argument as an httpx.Timeout (connect at most 5 s)."""
    if isinstance(timeout, httpx.Timeout):
        return timeout
    return httpx.Timeout(timeout, connect=min(float(timeout), 5.0))


def _client_options(timeout: float | httpx.Timeout) -> dict[str, Any]:
    return {
        "headers": DEFAULT_HEADERS,
        "timeout": http_timeout(timeout),
        "limits": POOL_LIMITS,
        # A redirect would turn a POST into a GET or send the key elsewhere: report it instead.
        "follow_redirects": False,
    }


def build_http_client(
    timeout: float | httpx.Timeout, transport: httpx.BaseTransport | None
) -> httpx.Client:
    """The one place the sync httpx client is built."""
    return httpx.Client(transport=transport, **_client_options(timeout))


def build_async_http_client(
    timeout: float | httpx.Timeout, transport: httpx.AsyncBaseTransport | None
) -> httpx.AsyncClient:
    """The one place the async httpx client is built.

    Without a transport it uses httpx's own pool, which runs on asyncio and trio alike.
    AsyncKedaClient sends through it only off asyncio or behind a proxy: on asyncio its
    requests go out over aiohttp directly (kedacore.api._aio), at a third of the CPU.
    """
    return httpx.AsyncClient(transport=transport, **_client_options(timeout))
