"""Errors as a person reads them: what went wrong and what to do next. No Streamlit here.

``explain(exc)`` turns every ``KedaError`` into sentences written for the person at the page —
never the wire's field names (``dailySmsCap``, ``senderId``), codes or the service's
lower-case message — using the answer's details (the cap, today's usage, the refused value)
where the service sent them. Plain text: ``console.shell.advice`` escapes it for Markdown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from console.views import money
from kedacore import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    CapReachedError,
    InsufficientBalanceError,
    InternalServerError,
    KedaError,
    NotFoundError,
    RateLimitError,
    ValidationError,
)
from kedacore.api.errors import (
    ClockSkewError,
    DecryptionError,
    MalformedRequestError,
    ReplayError,
)
from kedacore.redaction import redact_text

KEYS = (
    "KEDA_API_KEY and KEDA_ENCRYPTION_KEY (environment, or the [keda] section of "
    ".streamlit/secrets.toml)"
)
ADDRESSES = "KEDA_BASE_URL / KEDA_BACKUP_URL"
RESET = "wait until the cap resets at 00:00 UTC"
FIELDS = {  # the wire's field names, as a person calls them
    "senderId": "the sender id",
    "content": "the message text",
    "countryCode": "the country",
    "callbackUrl": "the callback address (KEDA_CALLBACK_URL)",
    "clientRef": "the send's reference",
    "trackClick": "click tracking",
    "url": "the address",
    "title": "the title",
    "payload": "the request",
}
_NUMBER_FIELD = re.compile(r"phoneNumbers\[(\d+)\]")


def _amount(value: Any, currency: str | None) -> str | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return money(amount, currency) if currency else money(amount, "").strip()


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _host(url: str | None) -> str:
    try:
        return urlsplit(url or "").hostname or "its address"
    except ValueError:
        return "its address"


def _cap(exc: CapReachedError, currency: str | None) -> str:
    d = exc.details if isinstance(exc.details, Mapping) else {}
    refused = "KedaSMS refused the whole send"
    after = "(caps block sends). Nothing was charged."
    cap, sent, asked = _int(d.get("dailySmsCap")), _int(d.get("smsSent")), _int(d.get("requested"))
    if exc.cap == "dailySmsCap" and None not in (cap, sent, asked):
        left = max(cap - sent, 0)  # type: ignore[operator]
        todo = (
            f"Send to at most {left:,} number{'s' if left != 1 else ''}, raise the cap on the "
            f"Limits page, or {RESET}."
            if left
            else f"Raise the cap on the Limits page, or {RESET}."
        )
        return (
            f"{refused}: today's SMS cap is {cap:,} messages, with {sent:,} sent today, and this "
            f"send has {asked:,} {after} {todo}"
        )
    cap_s = _amount(d.get("dailySpendCap"), currency)
    spent, cost = _amount(d.get("spend"), currency), _amount(d.get("requested"), currency)
    if exc.cap == "dailySpendCap" and None not in (cap_s, spent, cost):
        return (
            f"{refused}: today's spend cap is {cap_s}, with {spent} spent today, and this send "
            f"costs {cost} {after} Send to fewer numbers or a shorter text, raise the cap on "
            f"the Limits page, or {RESET}."
        )
    which = "spend" if exc.cap == "dailySpendCap" else "SMS"
    return (
        f"{refused}: it would take today's usage past the daily {which} cap {after} Send "
        f"less, raise the cap on the Limits page, or {RESET}."
    )


def _balance(exc: InsufficientBalanceError, currency: str | None) -> str:
    d = exc.details if isinstance(exc.details, Mapping) else {}
    cur = d.get("currency") if isinstance(d.get("currency"), str) else currency
    need, have = _amount(d.get("required"), cur), _amount(d.get("balance"), cur)
    why = (
        f"it costs {need} and the balance is {have}"
        if need and have
        else "the balance does not cover it"
    )
    return (
        f"KedaSMS refused the send: {why}. Nothing was charged. Top up the account (in the "
        "sandbox: on the Settings page), or send to fewer numbers."
    )


def _fault(fault: Mapping[str, Any]) -> str:
    field = str(fault.get("field") or "")
    message = _NUMBER_FIELD.sub(lambda m: f"number {int(m.group(1)) + 1}", str(fault["message"]))
    value = fault.get("value")
    shown = f" “{redact_text(str(value))}”" if value is not None and value != "" else ""
    number = _NUMBER_FIELD.fullmatch(field)
    if number:
        label = f"the number{shown}" if shown else f"number {int(number.group(1)) + 1}"
    else:
        label = FIELDS.get(field, field or "the request") + shown
    return f"{label}: {message}"


def _invalid(exc: ValidationError) -> str:
    faults = [_fault(f) for f in exc.errors if f.get("message")]
    if not faults:
        return (
            "KedaSMS refused the request as it was written. Nothing was charged. Check what "
            "you entered and try again."
        )
    more = f"; and {len(faults) - 5} more" if len(faults) > 5 else ""
    it = "it" if len(faults) == 1 else "them"
    return (
        f"KedaSMS refused the request: {'; '.join(faults[:5])}{more}. Nothing was charged. "
        f"Correct {it} and try again."
    )


def explain(exc: KedaError, *, currency: str | None = None) -> str:
    """What went wrong and what to do next, as plain sentences (see the module docstring).

    ``currency`` is the account's, for amounts the answer gives without one.
    """
    if isinstance(exc, CapReachedError):
        return _cap(exc, currency)
    if isinstance(exc, InsufficientBalanceError):
        return _balance(exc, currency)
    if isinstance(exc, ValidationError):
        return _invalid(exc)
    if isinstance(exc, RateLimitError):
        wait = f"{exc.retry_after:.0f} s" if exc.retry_after else "a few seconds"
        return (
            "Too many requests to KedaSMS just now; this one was not handled. "
            f"Wait {wait} and try again."
        )
    if isinstance(exc, ClockSkewError):
        return (
            "KedaSMS refused the request: this machine's clock is more than 5 minutes off. "
            "Set the clock right (UTC) and try again."
        )
    if isinstance(exc, DecryptionError):
        return (
            "KedaSMS could not read the request: the encryption key does not belong to this "
            f"API key. Set {KEYS} of the same account and restart the console."
        )
    if isinstance(exc, AuthenticationError):
        return f"KedaSMS does not know this API key. Set {KEYS} and restart the console."
    if isinstance(exc, ReplayError):
        return "KedaSMS refused a request it had seen before; nothing was done. Try again."
    if isinstance(exc, MalformedRequestError) and exc.code is not None:
        return (
            "KedaSMS could not read the request (the console, or a proxy in between, garbled "
            "it); nothing was done. Try again, and if it keeps happening report it with the time."
        )
    if isinstance(exc, NotFoundError) and exc.code is not None:
        return (
            "KedaSMS knows no such message, task or link for this account. Check the "
            "identifier; it may belong to another account."
        )
    if isinstance(exc, InternalServerError):
        return (
            f"KedaSMS failed on its side (it answered with an error {exc.http_status}). Wait a "
            "minute and try again; if it keeps failing, the service may be down."
        )
    if isinstance(exc, APITimeoutError):
        return (
            f"KedaSMS at {_host(exc.url)} did not answer in time. Check {ADDRESSES} and the "
            "network, then try again."
        )
    if isinstance(exc, APIConnectionError):
        why = f" ({exc.reason})" if exc.reason else ""
        return (
            f"Cannot reach KedaSMS at {_host(exc.url)}{why}. Check {ADDRESSES} and the "
            "network, then try again."
        )
    if isinstance(exc, APIError) and exc.code is None:  # not KedaSMS's JSON
        return _sentence(exc.message) + f" Check the service address ({ADDRESSES})."
    if isinstance(exc, APIError):
        return (
            f"KedaSMS refused the request: {_sentence(exc.message)} Try again; if it keeps "
            "happening, note the time and tell whoever runs the service."
        )
    return _sentence(str(exc))
