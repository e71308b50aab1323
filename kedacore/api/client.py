"""The synchronous KedaSMS client: ``KedaClient`` and its resource namespaces.

Example::

    with KedaClient() as client:  # KEDA_API_KEY / KEDA_ENCRYPTION_KEY from the environment
        result = client.sms.send("CN", ["13800138000"], "Your code is 123456")
        print(client.sms.status(result.messages[0].msgid).status)
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from decimal import Decimal
from types import TracebackType
from typing import TypeVar

import httpx

from . import _endpoints as ep
from ._endpoints import NOT_GIVEN, LinkKind, LinkSort, NotGiven
from ._http import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    ClientBase,
    Endpoint,
    build_http_client,
    build_request,
    check_credentials,
    log_retry,
    parse_result,
    retry_delay,
    transport_error,
)
from .errors import APIError, KedaError
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


class SmsResource:
    """``client.sms``: send messages and look up what became of them."""

    def __init__(self, client: KedaClient) -> None:
        self._client = client

    def send(
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
        return self._client._request(
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

    def status(self, msgid: str) -> MessageStatus:
        """The status of one message.

        Args:
            msgid: the message id from :meth:`send` (``msg_…``).
        """
        return self._client._request(ep.sms_status(msgid))

    def task(self, task_id: str) -> list[MessageStatus]:
        """The status of every message of one send.

        Args:
            task_id: the task id from :meth:`send` (``YYYYMMDD-NNNN``).
        """
        return self._client._request(ep.sms_task(task_id))

    def status_batch(self, msgids: Iterable[str]) -> StatusBatch:
        """Up to 1,000 messages in one request: those found, and the msgids not found.

        Our gateway's extension (``POST /sms/status/batch``, docs/protocol.md); a service
        without it (the real KedaSMS) answers NotFoundError. ``AsyncKedaClient.sms.status_many``
        uses it where it can and falls back to one request per msgid.

        Args:
            msgids: 1 to 1,000 message ids; duplicates are asked about once.
        """
        return self._client._request(ep.sms_status_batch(msgids))


class LimitsResource:
    """``client.limits``: the daily SMS and spend caps, today's usage and the alert."""

    def __init__(self, client: KedaClient) -> None:
        self._client = client

    def get(self) -> Limits:
        """The caps, today's usage and the alert state."""
        return self._client._request(ep.limits_get())

    def update(
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
        return self._client._request(
            ep.limits_update(
                daily_sms_cap=daily_sms_cap,
                daily_spend_cap=daily_spend_cap,
                alert_threshold=alert_threshold,
                block_on_limit=block_on_limit,
            )
        )


class AccountResource:
    """``client.account``: balance, and registration (which needs no API key)."""

    def __init__(self, client: KedaClient) -> None:
        self._client = client

    def balance(self) -> Balance:
        """What can still be spent, and what is frozen for messages not yet charged."""
        return self._client._request(ep.balance())

    def register(self, email: str, password: str) -> Registration:
        """Open an account; KedaSMS e-mails a verification token.

        Args:
            email: the address to verify.
            password: the console password.
        """
        return self._client._request(ep.register(email, password))

    def verify(self, token: str) -> Credentials:
        """Verify the e-mail; returns the API key and encryption key, shown only this once.

        Args:
            token: the token from the verification e-mail.
        """
        return self._client._request(ep.verify(token))


class ShortLinksResource:
    """``client.shortlinks``: tracked short links and their clicks."""

    def __init__(self, client: KedaClient) -> None:
        self._client = client

    def create(self, url: str, *, title: str | None = None) -> ShortLink:
        """Create a short link to ``url`` (never retried: a repeat would make a second link).

        Args:
            url: the http(s) target.
            title: a label for the console.
        """
        return self._client._request(ep.shortlink_create(url, title=title))

    def list(
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
            pages.add(self._client._request(endpoint))
        return pages.links

    def page(
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
        return self._client._request(endpoint)

    def get(self, code: str) -> ShortLink:
        """One short link and its clicks.

        Args:
            code: the link's code (the last part of its short URL).
        """
        return self._client._request(ep.shortlink_get(code))


class KedaClient(ClientBase):
    """A synchronous KedaSMS client.

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
        transport: an httpx transport (tests pass ``httpx.MockTransport``).
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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(api_key, encryption_key, base_url, backup_url, max_retries)
        self._http = build_http_client(timeout, transport)
        self._sleep = time.sleep  # patchable: tests of the retry policy never sleep for real
        self.sms = SmsResource(self)
        self.limits = LimitsResource(self)
        self.account = AccountResource(self)
        self.shortlinks = ShortLinksResource(self)

    def pricing(self) -> Pricing:
        """The price per segment of every country (public; needs no API key)."""
        return self._request(ep.pricing())

    def _request(self, endpoint: Endpoint[T]) -> T:
        check_credentials(self._settings, endpoint)
        retries = 0
        while True:
            request = build_request(self._http, self._settings, endpoint)
            error: KedaError
            try:
                response = self._http.send(request)
            except httpx.RequestError as exc:  # transport failures, undecodable bodies
                error = transport_error(exc, request)
            else:
                try:
                    return parse_result(endpoint, response, self._settings)
                except APIError as exc:
                    error = exc
            delay = retry_delay(endpoint, error, retries, self.max_retries, self._jitter)
            if delay is None:
                raise error
            log_retry(endpoint, error, delay, retries)
            self._sleep(delay)
            retries += 1

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> KedaClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


__all__ = [
    "AccountResource",
    "KedaClient",
    "LimitsResource",
    "ShortLinksResource",
    "SmsResource",
]
