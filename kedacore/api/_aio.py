"""AsyncKedaClient's asyncio path: the same requests as httpx would send, over aiohttp directly.

A campaign of personalised texts is one request per recipient, and the client shares the
machine's cores with everything else: what a request costs in CPU decides how fast it goes.
Going through httpx (its Request and Response objects, URL parsing, header models) on top of
aiohttp cost ~0.55 ms of CPU per send; aiohttp alone, ~0.2 ms (README.md, "Using the
library").

Nothing is decided here that the httpx path decides too: the headers and body come from
``_http.request_content``, the answer is read by ``_http.read_result`` (an error answer is
handed to ``errors.error_from_response`` as an httpx.Response, built only then), transport
failures become the same ``APIConnectionError`` / ``APITimeoutError``, and the client's retry
loop around it is the same. Only the wire objects are aiohttp's.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import httpx
import yarl

from ._http import (
    DEFAULT_HEADERS,
    POOL_LIMITS,
    Endpoint,
    Settings,
    connection_error,
    endpoint_base,
    log_answer,
    read_result,
    request_content,
)
from .errors import APIConnectionError

T = TypeVar("T")

# Headers that describe the body as it travelled, not as aiohttp hands it over (decoded):
# an httpx.Response built with them would try to decode it a second time.
_TRANSFER_HEADERS = frozenset({b"content-encoding", b"transfer-encoding", b"content-length"})
# Addresses are cached per endpoint path; paths that carry an id (shortlinks.get) are many.
_MAX_CACHED_ADDRESSES = 64


def on_asyncio() -> bool:
    """True inside an asyncio task: aiohttp needs asyncio's loop (under trio there is none)."""
    try:
        return asyncio.current_task() is not None
    except RuntimeError:
        return False


def proxies_configured() -> bool:
    """True when the environment names an HTTP proxy (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY).

    httpx honours those, and aiohttp's session here does not: behind a proxy the client keeps
    to httpx, so that requests take the same way as before.
    """
    return any(scheme in urllib.request.getproxies() for scheme in ("http", "https", "all"))


@dataclass(frozen=True, slots=True)
class Address:
    """Where an endpoint's request goes: the wire URL (exactly as httpx would write it), and
    the URL without its query for log lines and errors."""

    wire: yarl.URL
    text: str  # with the query: what error_from_response's httpx.Request is built with
    shown: str  # without the query

    @classmethod
    def of(cls, base: str, path: str, params: Any) -> Address:
        url = httpx.URL(base + path, params=params)
        text = str(url)
        return cls(yarl.URL(text, encoded=True), text, str(url.copy_with(query=None)))


def _client_timeout(timeout: httpx.Timeout) -> aiohttp.ClientTimeout:
    """httpx's timeouts in aiohttp's terms (no total limit): connect for the TCP connect,
    read between reads, pool for getting a connection (connect included)."""
    return aiohttp.ClientTimeout(
        total=None, sock_connect=timeout.connect, sock_read=timeout.read, connect=timeout.pool
    )


def _response_for_errors(
    method: str, address: Address, status: int, raw_headers: Any, content: bytes
) -> Callable[[], httpx.Response]:
    """Builds, when called, the httpx.Response that ``errors.error_from_response`` reads."""

    def build() -> httpx.Response:
        headers = [(k, v) for k, v in raw_headers if k.lower() not in _TRANSFER_HEADERS]
        request = httpx.Request(method, address.text)
        return httpx.Response(status, headers=headers, content=content, request=request)

    return build


class AiohttpSender:
    """Sends an :class:`Endpoint` over one aiohttp session (a pool of 100 connections, kept
    warm 30 s, as ``_http.POOL_LIMITS``); opened on the first request, on that loop."""

    def __init__(self, settings: Settings, timeout: httpx.Timeout) -> None:
        self._settings = settings
        self._timeout = _client_timeout(timeout)
        self._session: aiohttp.ClientSession | None = None
        self._addresses: dict[tuple[str, str], Address] = {}

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=POOL_LIMITS.max_connections or 0,
            keepalive_timeout=POOL_LIMITS.keepalive_expiry,
            ssl=httpx.create_ssl_context(),  # the same trust store as httpx (certifi, SSL_CERT_*)
        )
        self._session = aiohttp.ClientSession(
            connector=connector, headers=DEFAULT_HEADERS, timeout=self._timeout
        )
        return self._session

    def _address(self, endpoint: Endpoint[Any]) -> Address:
        """The endpoint's address; computed once per path for calls without a query."""
        base = endpoint_base(self._settings, endpoint)
        if endpoint.params:
            return Address.of(base, endpoint.path, endpoint.params)
        key = (endpoint.host, endpoint.path)
        address = self._addresses.get(key)
        if address is None:
            address = Address.of(base, endpoint.path, None)
            if len(self._addresses) < _MAX_CACHED_ADDRESSES:
                self._addresses[key] = address
        return address

    async def send(self, endpoint: Endpoint[T]) -> T:
        """One attempt: the result, or the APIError / APIConnectionError it came to."""
        method = endpoint.method
        address = self._address(endpoint)
        headers, content = request_content(self._settings, endpoint)
        session = self._session or self._open()
        failure: APIConnectionError | None = None
        try:
            # A redirect would turn a POST into a GET or send the key elsewhere: report it.
            async with session.request(
                method, address.wire, data=content, headers=headers, allow_redirects=False
            ) as response:
                body = await response.read()
        except TimeoutError as exc:  # connect, pool or read timeout (aiohttp's are these too)
            failure = connection_error(method, address.shown, exc, timed_out=True)
        except (aiohttp.ClientError, OSError) as exc:  # refused, reset, undecodable body
            failure = connection_error(method, address.shown, _reportable(exc), timed_out=False)
        if failure is not None:
            raise failure  # outside the except: aiohttp's exception is not its context
        status = response.status
        log_answer(method, address.shown, status)
        build = _response_for_errors(method, address, status, response.raw_headers, body)
        return read_result(endpoint, self._settings, status, body, build)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class TransportFailure(Exception):
    """What aiohttp said went wrong, without the request it carried."""


def _reportable(exc: BaseException) -> BaseException:
    """The exception to keep as the cause of an APIConnectionError.

    aiohttp's response errors hold the request (``request_info``): its headers, the API key
    among them, and the URL with its query. They are reduced to their type and message.
    """
    if isinstance(exc, aiohttp.ClientResponseError):
        return TransportFailure(f"{type(exc).__name__}: {exc.message}")
    return exc
