"""Every KedaSMS endpoint as an :class:`Endpoint`: arguments checked, wire names, parsers.

Built once here and run by both clients, so the sync and async methods cannot drift apart.
Hosts (DESIGN.md): the front-end proxy (``base``) takes sends, short-link creation, pricing and
registration; the back end (``backup``) answers status, limits, balance and short-link lookups.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Final
from urllib.parse import quote

from kedacore.money import to_decimal

from ._http import Endpoint
from .types import (
    Balance,
    Credentials,
    Limits,
    MessageStatus,
    Pricing,
    Registration,
    SendResult,
    ShortLink,
)

MAX_RECIPIENTS = 1000
MAX_CLIENT_REF = 64


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


def shortlink_list() -> Endpoint[list[ShortLink]]:
    return Endpoint("shortlinks.list", "GET", "backup", "/shortlinks", _links)


def shortlink_get(code: str) -> Endpoint[ShortLink]:
    path = "/shortlinks/" + quote(require_id("code", code), safe="")
    return Endpoint("shortlinks.get", "GET", "backup", path, ShortLink.from_wire)
