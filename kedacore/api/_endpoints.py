"""Every KedaSMS endpoint as an :class:`Endpoint`: arguments checked, wire names, parsers.

Built once here and run by both clients, so the sync and async methods cannot drift apart.
Hosts (DESIGN.md): the front-end proxy (``base``) takes sends, short-link creation, pricing and
registration; the back end (``backup``) answers status, limits, balance and short-link lookups.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Literal
from urllib.parse import quote

from kedacore.money import to_decimal

from ._http import Endpoint
from .errors import APIError
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

MAX_RECIPIENTS = 1000
MAX_CLIENT_REF = 64
# Our gateway's batch lookup (docs/protocol.md): at most this many msgids a request, each at
# most MAX_BATCH_MSGID characters (a longer id is asked about on its own).
MAX_STATUS_BATCH = 1000
MAX_BATCH_MSGID = 100


class NotGiven:
    """The type of :data:`NOT_GIVEN`: "leave this field alone", as opposed to None ("no cap")."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()


def require_id(name: str, value: Any) -> str:
    """A non-empty identifier, or ValueError showing what was given."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _numbers(phone_numbers: str | Iterable[str]) -> list[str]:
    numbers = [phone_numbers] if isinstance(phone_numbers, str) else list(phone_numbers)
    if not numbers:
        raise ValueError(f"phone_numbers must list at least one number, got {phone_numbers!r}")
    if len(numbers) > MAX_RECIPIENTS:
        raise ValueError(
            f"phone_numbers lists {len(numbers)} numbers; one send takes at most "
            f"{MAX_RECIPIENTS} (split the list)"
        )
    for number in numbers:
        require_id("each phone number", number)
    return numbers


def _list(data: Any, key: str) -> list[Any]:
    if isinstance(data, dict):
        data = data.get(key)
    if not isinstance(data, list):
        raise TypeError(f"expected a list of {key}, got {type(data).__name__}")
    return data


def sms_send(
    country_code: str,
    phone_numbers: str | Iterable[str],
    content: str,
    *,
    sender_id: str | None,
    track_click: bool,
    callback_url: str | None,
    client_ref: str | None,
) -> Endpoint[SendResult]:
    payload: dict[str, Any] = {
        "countryCode": require_id("country_code", country_code),
        "phoneNumbers": _numbers(phone_numbers),
        "content": require_id("content", content),
    }
    if sender_id is not None:
        payload["senderId"] = sender_id
    if track_click:
        payload["trackClick"] = True
    if callback_url is not None:
        payload["callbackUrl"] = callback_url
    if client_ref is not None:
        require_id("client_ref", client_ref)
        if len(client_ref) > MAX_CLIENT_REF:
            raise ValueError(f"client_ref is at most {MAX_CLIENT_REF} characters: {client_ref!r}")
        payload["clientRef"] = client_ref
    return Endpoint(
        "sms.send", "POST", "base", "/sms/send", SendResult.from_wire, body=payload, sealed=True,
        # A duplicate SMS is billed twice, so a send is repeated only when it carries a
        # clientRef: the service then answers a repeat with the first send's result.
        retry=client_ref is not None,
    )  # fmt: skip


def sms_status(msgid: str) -> Endpoint[MessageStatus]:
    params = {"msgid": require_id("msgid", msgid)}
    return Endpoint(
        "sms.status", "GET", "backup", "/sms/status", MessageStatus.from_wire, params=params
    )


def msgid_list(msgids: Iterable[str]) -> list[str]:
    """The msgids given (a list, not one string), each checked, each once, in order."""
    if isinstance(msgids, str):
        raise ValueError(f"msgids must be a list of msgids, not one string: {msgids!r}")
    return list(dict.fromkeys(require_id("msgid", m) for m in msgids))


def sms_status_batch(msgids: Iterable[str]) -> Endpoint[StatusBatch]:
    """Our gateway's extension: up to MAX_STATUS_BATCH msgids in one request."""
    ids = msgid_list(msgids)
    if not ids:
        raise ValueError("msgids must list at least one msgid")
    if len(ids) > MAX_STATUS_BATCH:
        raise ValueError(
            f"msgids lists {len(ids)} msgids; one batch takes at most {MAX_STATUS_BATCH} "
            "(status_many splits any number)"
        )
    return Endpoint(
        "sms.status_batch", "POST", "backup", "/sms/status/batch", StatusBatch.from_wire,
        body={"msgids": ids},
        retry=True,  # a read: asking again changes nothing
    )  # fmt: skip


def _statuses(data: Any) -> list[MessageStatus]:
    return [MessageStatus.from_wire(m) for m in _list(data, "messages")]


def sms_task(task_id: str) -> Endpoint[list[MessageStatus]]:
    params = {"taskId": require_id("task_id", task_id)}
    return Endpoint("sms.task", "GET", "backup", "/sms/status", _statuses, params=params)


def limits_get() -> Endpoint[Limits]:
    return Endpoint("limits.get", "GET", "backup", "/external/accounts/limits", Limits.from_wire)


def _sms_cap(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"daily_sms_cap must be a whole number ≥ 0 or None, got {value!r}")
    return value


def _spend_cap(value: Any) -> Decimal | None:
    if value is None:
        return None
    amount = to_decimal(value)  # refuses floats: money is never inexact
    if amount < 0:
        raise ValueError(f"daily_spend_cap must be ≥ 0 or None, got {value!r}")
    return amount


def _threshold(value: Any) -> Decimal:
    # A ratio, not money: a float is taken as the shortest decimal it prints as (0.8 → "0.8").
    if isinstance(value, float):
        value = repr(value)
    if value is None or isinstance(value, bool):
        raise ValueError(f"alert_threshold must be a number between 0 and 1, got {value!r}")
    return to_decimal(value)


def _block(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"block_on_limit must be True or False, got {value!r}")
    return value


def limits_update(
    *,
    daily_sms_cap: Any,
    daily_spend_cap: Any,
    alert_threshold: Any,
    block_on_limit: Any,
) -> Endpoint[Limits]:
    fields = {
        "dailySmsCap": (daily_sms_cap, _sms_cap),
        "dailySpendCap": (daily_spend_cap, _spend_cap),
        "alertThreshold": (alert_threshold, _threshold),
        "blockOnLimit": (block_on_limit, _block),
    }
    body = {wire: check(value) for wire, (value, check) in fields.items() if value is not NOT_GIVEN}
    if not body:
        raise ValueError(
            "limits.update() needs at least one of daily_sms_cap, daily_spend_cap, "
            "alert_threshold, block_on_limit"
        )
    return Endpoint(
        "limits.update", "PUT", "backup", "/external/accounts/limits", Limits.from_wire,
        body=body, key_in_body=True,
    )  # fmt: skip


def balance() -> Endpoint[Balance]:
    return Endpoint(
        "account.balance", "GET", "backup", "/external/accounts/balance", Balance.from_wire
    )


def register(email: str, password: str) -> Endpoint[Registration]:
    require_id("email", email)
    if not isinstance(password, str) or not password:
        raise ValueError("password must be a non-empty string")  # never echo a password

    def parse(data: Any) -> Registration:
        data = data if isinstance(data, dict) else {}
        return Registration(email=data.get("email", email), message=data.get("message", ""))

    return Endpoint(
        "account.register", "POST", "base", "/accounts/register", parse,
        body={"email": email, "password": password}, auth=False,
    )  # fmt: skip


def _credentials(data: Any) -> Credentials:
    return Credentials(
        email=data.get("email", ""), api_key=data["apiKey"], encryption_key=data["encryptionKey"]
    )


def verify(token: str) -> Endpoint[Credentials]:
    if not isinstance(token, str) or not token.strip():
        raise ValueError("token must be a non-empty string (the one from the e-mail)")
    return Endpoint(
        "account.verify", "POST", "base", "/accounts/verify", _credentials,
        body={"token": token}, auth=False,
    )  # fmt: skip


def pricing() -> Endpoint[Pricing]:
    return Endpoint("pricing", "GET", "base", "/pricing", Pricing.from_wire, auth=False)


def shortlink_create(url: str, *, title: str | None) -> Endpoint[ShortLink]:
    payload = {"url": require_id("url", url)}
    if title is not None:
        payload["title"] = title
    return Endpoint(
        "shortlinks.create", "POST", "base", "/shortlinks", ShortLink.from_wire,
        body=payload, sealed=True,
        retry=False,  # no idempotency key: a repeat would create a second link
    )  # fmt: skip


def _links(data: Any) -> list[ShortLink]:
    return [ShortLink.from_wire(link) for link in _list(data, "links")]


# Short-link lists (docs/protocol.md, "Short-link lists"): pages of up to 1,000 links, a kind
# (hand-made or made by trackClick), a search and an order.
LinkKind = Literal["manual", "tracking"]
LinkSort = Literal["created", "clicks"]
LINK_KINDS: Final = ("manual", "tracking")
LINK_SORTS: Final = ("created", "clicks")
MAX_LINK_PAGE = 1000
DEFAULT_LINK_PAGE = 100
_NEVER = datetime.min.replace(tzinfo=UTC)


def _link_arguments(kind: Any, search: Any, sort: Any) -> dict[str, str]:
    if kind is not None and kind not in LINK_KINDS:
        raise ValueError(f"kind must be None, 'manual' or 'tracking', got {kind!r}")
    if sort not in LINK_SORTS:
        raise ValueError(f"sort must be 'created' or 'clicks', got {sort!r}")
    if search is not None and not isinstance(search, str):
        raise ValueError(f"search must be a string or None, got {search!r}")
    params = {}
    if kind is not None:
        params["kind"] = kind
    if search:
        params["q"] = search
    if sort != "created":
        params["sort"] = sort
    return params


def _found(link: ShortLink, needle: str) -> bool:
    fields = (link.code, link.url, link.title, link.msgid, link.recipient)
    return any(needle in value.lower() for value in fields if value)


def local_page(
    links: Sequence[ShortLink],
    *,
    offset: int,
    limit: int,
    kind: str | None,
    search: str | None,
    sort: str,
) -> ShortLinkPage:
    """The page a paging service would answer, cut from every link (a service that does not
    page answers them all at once)."""
    chosen = [x for x in links if kind is None or x.kind == kind]
    if search:
        chosen = [x for x in chosen if _found(x, search.lower())]
    chosen.sort(key=lambda x: x.created_at or _NEVER, reverse=True)  # newest first, stable
    if sort == "clicks":
        chosen.sort(key=lambda x: x.clicks, reverse=True)
    end = offset + limit
    return ShortLinkPage(
        links=tuple(chosen[offset:end]),
        total=len(chosen),
        offset=offset,
        limit=limit,
        next_offset=end if end < len(chosen) else None,
        paged=False,
    )


def shortlink_page(
    *,
    offset: int = 0,
    limit: int = DEFAULT_LINK_PAGE,
    kind: LinkKind | None = None,
    search: str | None = None,
    sort: LinkSort = "created",
) -> Endpoint[ShortLinkPage]:
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ValueError(f"offset must be a whole number ≥ 0, got {offset!r}")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= MAX_LINK_PAGE:
        raise ValueError(f"limit must be a whole number from 0 to {MAX_LINK_PAGE}, got {limit!r}")
    params = {"limit": str(limit), "offset": str(offset), **_link_arguments(kind, search, sort)}

    def parse(answer: dict[str, Any]) -> ShortLinkPage:
        links = _links(answer.get("data"))
        page = answer.get("page")
        if not isinstance(page, dict):  # a service that does not page: every link at once
            return local_page(
                links, offset=offset, limit=limit, kind=kind, search=search, sort=sort
            )
        following = page.get("nextOffset")
        return ShortLinkPage(
            links=tuple(links),
            total=int(page["total"]),
            offset=int(page.get("offset", offset)),
            limit=int(page.get("limit", limit)),
            next_offset=None if following is None else int(following),
        )

    return Endpoint(
        "shortlinks.list", "GET", "backup", "/shortlinks", parse, params=params, whole_answer=True
    )


@dataclass
class LinkPages:
    """Reading every link of a listing, page after page (the same steps for both clients):
    ``while (endpoint := pages.next()) is not None: pages.add(request(endpoint))``.

    A link created while the pages are read pushes the older ones one place down, so a link
    can come twice; it is kept once. A page whose next offset does not advance is an error,
    never an endless loop.
    """

    kind: LinkKind | None = None
    search: str | None = None
    sort: LinkSort = "created"
    links: list[ShortLink] = field(default_factory=list, init=False)
    _offset: int | None = field(default=0, init=False)
    _seen: set[str] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        _link_arguments(self.kind, self.search, self.sort)  # wrong arguments fail at once

    def next(self) -> Endpoint[ShortLinkPage] | None:
        if self._offset is None:
            return None
        return shortlink_page(
            offset=self._offset,
            limit=MAX_LINK_PAGE,
            kind=self.kind,
            search=self.search,
            sort=self.sort,
        )

    def add(self, page: ShortLinkPage) -> None:
        for link in page.links:
            if link.code not in self._seen:
                self._seen.add(link.code)
                self.links.append(link)
        following = page.next_offset
        if following is not None and following <= (self._offset or 0):
            raise APIError(
                f"KedaSMS answered shortlinks.list with a next page at offset {following}, "
                f"not after the page at offset {self._offset}: the list cannot be read whole",
                code=None,
                http_status=200,
            )
        self._offset = following


def shortlink_get(code: str) -> Endpoint[ShortLink]:
    path = "/shortlinks/" + quote(require_id("code", code), safe="")
    return Endpoint("shortlinks.get", "GET", "backup", path, ShortLink.from_wire)
