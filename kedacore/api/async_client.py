"""The asynchronous KedaSMS client: the same methods as ``KedaClient``, awaited.

It serves bulk sending and batch lookups (``sms.status_many``). It runs on asyncio or trio.
On asyncio, with the default transport, requests go out over aiohttp directly (kedacore.api._aio:
a third of httpx's CPU per request); under trio, behind a proxy from the environment, or with
``transport=``, they go through httpx. Both ways build the same request and read the answer
with the same functions (kedacore.api._http), so results, errors and retries are the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from types import TracebackType
from typing import TypeVar

import anyio
import httpx

from . import _endpoints as ep
from . import _lookups as lookups
from ._aio import AiohttpSender, on_asyncio, proxies_configured
from ._endpoints import NOT_GIVEN, LinkKind, LinkSort, NotGiven
from ._http import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    ClientBase,
    Endpoint,
    build_async_http_client,
    build_request,
    check_credentials,
    http_timeout,
    log_retry,
    parse_result,
    retry_delay,
    transport_error,
)
from ._lookups import ProgressCallback
from .errors import APIConnectionError, APIError, KedaError
from .types import (
    Balance,
    Credentials,
    Limits,
    MessageStatus,
    Pricing,
    Registration,
    SendResult,
    ShortLink,
    ShortLinkPage,
    StatusBatch,
)

T = TypeVar("T")


class AsyncSmsResource:
    """``client.sms``: send messages and look up what became of them."""

    def __init__(self, client: AsyncKedaClient) -> None:
        self._client = client

    async def send(
        self,
        country_code: str,
        phone_numbers: str | Iterable[str],
        content: str,
        *,
        sender_id: str | None = None,
        track_click: bool = False,
        callback_url: str | None = None,
        client_ref: str | None = None,
    ) -> SendResult:
        """Send one text to 1–1000 numbers of one country; the price is frozen at once.

        Args:
            country_code: ISO country code that prices the send ("CN", "US").
            phone_numbers: national or E.164 numbers of that country (or a single one).
            content: the text; URLs in it become tracked links with ``track_click``.
            sender_id: the sender name shown to recipients.
            track_click: replace each URL with a per-recipient short link.
            callback_url: where status and click callbacks are posted.
            client_ref: up to 64 characters; a repeat within 24 h returns the first result
                instead of sending again. Only a send with one is retried.
        """
        return await self._client._request(
            ep.sms_send(
                country_code,
                phone_numbers,
                content,
                sender_id=sender_id,
                track_click=track_click,
                callback_url=callback_url,
                client_ref=client_ref,
            )
        )

    async def status(self, msgid: str) -> MessageStatus:
        """The status of one message.

        Args:
            msgid: the message id from :meth:`send` (``msg_…``).
        """
        return await self._client._request(ep.sms_status(msgid))

    async def task(self, task_id: str) -> list[MessageStatus]:
        """The status of every message of one send.

        Args:
            task_id: the task id from :meth:`send` (``YYYYMMDD-NNNN``).
        """
        return await self._client._request(ep.sms_task(task_id))

    async def status_batch(self, msgids: Iterable[str]) -> StatusBatch:
        """Up to 1,000 messages in one request: those found, and the msgids not found.

        Our gateway's extension (``POST /sms/status/batch``, docs/protocol.md); a service
        without it (the real KedaSMS) answers NotFoundError. :meth:`status_many` uses it
        where it can and falls back to one request per msgid.

        Args:
            msgids: 1 to 1,000 message ids; duplicates are asked about once.
        """
        return await self._client._request(ep.sms_status_batch(msgids))

    async def status_many(
        self,
        msgids: Iterable[str],
        *,
        concurrency: int = 16,
        batch_size: int = ep.MAX_STATUS_BATCH,
        on_progress: ProgressCallback | None = None,
    ) -> dict[str, MessageStatus | KedaError]:
        """Look up any number of messages: in batches where the service can, else one by one.

        With our gateway, ``batch_size`` msgids a request (:meth:`status_batch`); against a
        service without that call (the real KedaSMS), one request per msgid, at most
        ``concurrency`` in flight, within the service's rate limit: a ``4029`` pauses every
        request of the lookup for its ``Retry-After``. One failed lookup does not stop the
        others: its entry is the KedaError raised for it (a NotFoundError for an unknown
        msgid, say).

        Args:
            msgids: the message ids; duplicates are looked up once.
            concurrency: the most single requests in flight at a time (the connection
                pool's 100 connections bound it too); batches go 4 at a time at most.
            batch_size: msgids per batch request, 1 to 1,000.
            on_progress: called as ``on_progress(done, total, answers)`` after each round
                (a few batches, or about 100 single lookups) with that round's answers.
                It runs in the calling task, between rounds: an exception it raises — or
                cancelling the task — stops the lookup there, and nothing more is sent.

        Returns:
            Each msgid, in the order given, with its MessageStatus or its KedaError.
        """
        ids = ep.msgid_list(msgids)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a whole number ≥ 1, got {concurrency!r}")
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, int)
            or not 1 <= batch_size <= ep.MAX_STATUS_BATCH
        ):
            raise ValueError(
                f"batch_size must be a whole number from 1 to {ep.MAX_STATUS_BATCH}, "
                f"got {batch_size!r}"
            )
        # A missing key would fail every lookup the same way: say it once, up front.
        if ids:
            check_credentials(self._client._settings, ep.sms_status(ids[0]))
        return await lookups.status_many(
            self._client,
            ids,
            concurrency=concurrency,
            batch_size=batch_size,
            on_progress=on_progress,
        )


class AsyncLimitsResource:
    """``client.limits``: the daily SMS and spend caps, today's usage and the alert."""

    def __init__(self, client: AsyncKedaClient) -> None:
        self._client = client

    async def get(self) -> Limits:
        """The caps, today's usage and the alert state."""
        return await self._client._request(ep.limits_get())

    async def update(
        self,
        *,
        daily_sms_cap: int | NotGiven | None = NOT_GIVEN,
        daily_spend_cap: Decimal | str | int | NotGiven | None = NOT_GIVEN,
        alert_threshold: Decimal | str | float | NotGiven = NOT_GIVEN,
        block_on_limit: bool | NotGiven = NOT_GIVEN,
    ) -> Limits:
        """Change some caps; only the fields given are sent, and apply to the next request.

        Args:
            daily_sms_cap: messages per UTC day; None removes the cap.
            daily_spend_cap: spend per UTC day as a Decimal, str or int (never a float);
                None removes the cap.
            alert_threshold: the share of a cap (0–1) that raises the alert.
            block_on_limit: refuse sends that would pass a cap, instead of only alerting.
        """
        return await self._client._request(
            ep.limits_update(
                daily_sms_cap=daily_sms_cap,
                daily_spend_cap=daily_spend_cap,
                alert_threshold=alert_threshold,
                block_on_limit=block_on_limit,
            )
        )


class AsyncAccountResource:
    """``client.account``: balance, and registration (which needs no API key)."""

    def __init__(self, client: AsyncKedaClient) -> None:
        self._client = client

    async def balance(self) -> Balance:
        """What can still be spent, and what is frozen for messages not yet charged."""
        return await self._client._request(ep.balance())

    async def register(self, email: str, password: str) -> Registration:
        """Open an account; KedaSMS e-mails a verification token.

        Args:
            email: the address to verify.
            password: the console password.
        """
        return await self._client._request(ep.register(email, password))

    async def verify(self, token: str) -> Credentials:
        """Verify the e-mail; returns the API key and encryption key, shown only this once.

        Args:
            token: the token from the verification e-mail.
        """
        return await self._client._request(ep.verify(token))


class AsyncShortLinksResource:
    """``client.shortlinks``: tracked short links and their clicks."""

    def __init__(self, client: AsyncKedaClient) -> None:
        self._client = client

    async def create(self, url: str, *, title: str | None = None) -> ShortLink:
        """Create a short link to ``url`` (never retried: a repeat would make a second link).

        Args:
            url: the http(s) target.
            title: a label for the console.
        """
        return await self._client._request(ep.shortlink_create(url, title=title))

    async def list(
        self,
        *,
        kind: LinkKind | None = None,
        search: str | None = None,
        sort: LinkSort = "created",
    ) -> list[ShortLink]:
        """Every short link of the account with its clicks, read page by page (1,000 a page).

        Args:
            kind: ``"manual"`` (made with ``create``) or ``"tracking"`` (made by
                ``track_click`` for one message); None for both.
            search: only links whose code, target, title, msgid or number contains it
                (any case).
            sort: ``"created"`` (newest first) or ``"clicks"`` (most visited first).
        """
        pages = ep.LinkPages(kind=kind, search=search, sort=sort)
        while (endpoint := pages.next()) is not None:
            pages.add(await self._client._request(endpoint))
        return pages.links

    async def page(
        self,
        *,
        offset: int = 0,
        limit: int = 100,
        kind: LinkKind | None = None,
        search: str | None = None,
        sort: LinkSort = "created",
    ) -> ShortLinkPage:
        """One page of the account's short links, with how many match in all.

        Args:
            offset: how many matching links come before the page.
            limit: links on the page, 0 to 1,000 (0: only the count).
            kind: ``"manual"``, ``"tracking"`` or None, as for :meth:`list`.
            search: as for :meth:`list`.
            sort: as for :meth:`list`.
        """
        endpoint = ep.shortlink_page(
            offset=offset, limit=limit, kind=kind, search=search, sort=sort
        )
        return await self._client._request(endpoint)

    async def get(self, code: str) -> ShortLink:
        """One short link and its clicks.

        Args:
            code: the link's code (the last part of its short URL).
        """
        return await self._client._request(ep.shortlink_get(code))


class AsyncKedaClient(ClientBase):
    """An asynchronous KedaSMS client; arguments as for :class:`kedacore.KedaClient`.

    Args:
        api_key: the account's API key; default ``KEDA_API_KEY``.
        encryption_key: base64 of the 32-byte key that seals sends; default
            ``KEDA_ENCRYPTION_KEY``.
        base_url: the front-end proxy; default ``KEDA_BASE_URL``, else
            https://www.kedasms.net/api.
        backup_url: the back end for status, limits and balance; default ``KEDA_BACKUP_URL``,
            else https://backup.kedasms.net/api.
        timeout: seconds per request (or an ``httpx.Timeout``).
        max_retries: retries after the first attempt, for calls that are safe to repeat.
        transport: an httpx async transport (tests pass ``httpx.MockTransport``); every
            request then goes through httpx and this transport.
    """

    def __init__(
        self,
        api_key: str | None = None,
        encryption_key: str | bytes | None = None,
        *,
        base_url: str | None = None,
        backup_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(api_key, encryption_key, base_url, backup_url, max_retries)
        self._http = build_async_http_client(timeout, transport)
        # The asyncio path (aiohttp directly) when nothing asks for httpx's transports.
        self._aio: AiohttpSender | None = None
        if transport is None and not proxies_configured():
            self._aio = AiohttpSender(self._settings, http_timeout(timeout))
        self._sleep = anyio.sleep  # patchable: tests of the retry policy never sleep for real
        self._status_batch: bool | None = None  # has the service the batch lookup? (None: ask)
        self.sms = AsyncSmsResource(self)
        self.limits = AsyncLimitsResource(self)
        self.account = AsyncAccountResource(self)
        self.shortlinks = AsyncShortLinksResource(self)

    async def pricing(self) -> Pricing:
        """The price per segment of every country (public; needs no API key)."""
        return await self._request(ep.pricing())

    async def _request(self, endpoint: Endpoint[T]) -> T:
        check_credentials(self._settings, endpoint)
        retries = 0
        while True:
            error: KedaError
            try:
                return await self._attempt(endpoint)
            except (APIError, APIConnectionError) as exc:  # answers and transport failures
                error = exc
            delay = retry_delay(endpoint, error, retries, self.max_retries, self._jitter)
            if delay is None:
                raise error
            log_retry(endpoint, error, delay, retries)
            await self._sleep(delay)
            retries += 1

    async def _attempt(self, endpoint: Endpoint[T]) -> T:
        """One attempt, no retry: the result, or the APIError / APIConnectionError."""
        if self._aio is not None and on_asyncio():
            return await self._aio.send(endpoint)
        return await self._send_httpx(endpoint)

    async def _send_httpx(self, endpoint: Endpoint[T]) -> T:
        """One attempt through httpx: the result, or the APIError / APIConnectionError."""
        request = build_request(self._http, self._settings, endpoint)
        try:
            response = await self._http.send(request)
        except httpx.RequestError as exc:  # transport failures, undecodable bodies
            raise transport_error(exc, request) from exc
        return parse_result(endpoint, response, self._settings)

    async def close(self) -> None:
        """Close the connection pools."""
        try:
            if self._aio is not None:
                await self._aio.close()
        finally:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncKedaClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


__all__ = [
    "AsyncAccountResource",
    "AsyncKedaClient",
    "AsyncLimitsResource",
    "AsyncShortLinksResource",
    "AsyncSmsResource",
]
