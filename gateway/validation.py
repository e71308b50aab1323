"""Payload checks of the envelope endpoints: every fault listed at once (2001), no side effect."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from gateway.addresses import AddressRules
from gateway.errors import ApiError, field_error, invalid
from gateway.pricing import PriceTable
from kedacore.phones import parse_number
from kedacore.segments import MAX_SEGMENTS, count_segments
from kedacore.senders import sender_problem

MAX_RECIPIENTS = 1000
MAX_URL = 2048
MAX_CLIENT_REF = 64
MAX_TITLE = 200
# A decrypted payload larger than any plausible one is refused unread: 1,000 numbers of 64
# characters (kedacore.phones.MAX_NUMBER_CHARS) and a 10-segment text, even \u-escaped, take
# about 90 KB. Parsing and checking a megabyte would cost the gateway hundreds of ms.
MAX_PAYLOAD_BYTES = 256 * 1024
# A text longer than this is over 10 segments whatever its characters (160 each at most).
MAX_CONTENT_CHARS = MAX_SEGMENTS * 160
DEFAULT_SENDER = "KedaSMS"


@dataclass(frozen=True, slots=True)
class SendRequest:
    """A send payload that passed every check; numbers in E.164."""

    country: str
    recipients: tuple[str, ...]
    content: str
    segments: int  # per message
    sender: str
    callback_url: str | None = field(repr=False)  # holds the receiver's secret token
    client_ref: str | None
    track_click: bool


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# A lone surrogate can only come from a \uD800-\uDFFF escape: strict UTF-8 decoding
# refuses encoded surrogates. Without such an escape no string needs checking.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
NOT_UNICODE = "must be valid Unicode text (a lone surrogate is not)"


def _loads(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError("1004", f"{what} is not valid UTF-8 JSON") from None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unencodable_path(value: Any) -> str | None:
    """Where the first string (value or key) that UTF-8 cannot encode is, or None.

    ``json.loads`` turns an escaped lone surrogate (``"\\ud800"``) into a ``str`` that no
    UTF-8 encoder accepts: the database, the log and the response writer would all fail
    on it later. Iterative, so that deep nesting cannot exhaust the stack.
    """
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return path or "(value)"
        elif isinstance(item, dict):
            for key, child in item.items():
                shown = key.encode("utf-8", "backslashreplace").decode("ascii", "replace")
                name = f"{path}.{shown}" if path else shown
                if not _encodable(key):
                    return name
                stack.append((name, child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(item))
    return None


def _bad_text(raw: bytes, value: Any) -> str | None:
    return unencodable_path(value) if _SURROGATE_ESCAPE.search(raw) else None


def decode_json(raw: bytes, what: str) -> Any:
    """JSON with exact decimals (1004 when it is not UTF-8 JSON, or holds a lone surrogate)."""
    value = _loads(raw, what)
    where = _bad_text(raw, value)
    if where is not None:
        raise ApiError("1004", f"{what} is not valid UTF-8 JSON: {where} {NOT_UNICODE}")
    return value


def payload_object(raw: bytes) -> dict:
    """The decrypted payload as a JSON object (1004 not JSON; 2001 not an object, or a
    string that is not valid Unicode, or larger than any valid payload)."""
    if len(raw) > MAX_PAYLOAD_BYTES:  # before parsing: refusals must stay cheap
        raise invalid(
            [
                field_error(
                    "payload",
                    f"is {len(raw):,} bytes; a valid one is at most {MAX_PAYLOAD_BYTES:,} "
                    "(1,000 numbers and a 10-segment text take about a third of that)",
                )
            ]
        )
    payload = _loads(raw, "the decrypted payload")
    where = _bad_text(raw, payload)
    if where is not None:
        raise invalid([field_error(where, NOT_UNICODE)])
    if not isinstance(payload, dict):
        raise invalid([field_error("payload", "must be a JSON object")])
    return payload


def http_url_problem(value: Any) -> str | None:
    """Why a value is not an absolute http(s) URL with a host, or None when it is one."""
    if not isinstance(value, str) or not value:
        return "must be an http(s) URL"
    if len(value) > MAX_URL:
        return f"must be at most {MAX_URL} characters"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(value)
        host = parts.hostname
        _ = parts.port  # raises on a port that is not a number in range
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in ("http", "https"):
        return "must start with http:// or https://"
    if not host:
        return "must name a host"
    return None


def check_callback_url(value: Any, rules: AddressRules) -> str | None:
    """Why a callback URL is refused at send time (its form, then its address), or None."""
    return http_url_problem(value) or rules.url_problem(value)


def _recipients(numbers: Any, country: str | None, errors: list[dict]) -> tuple[str, ...]:
    if not isinstance(numbers, list) or not numbers:
        errors.append(field_error("phoneNumbers", "must be a list of 1 to 1000 phone numbers"))
        return ()
    if len(numbers) > MAX_RECIPIENTS:
        errors.append(
            field_error(
                "phoneNumbers", f"at most {MAX_RECIPIENTS} numbers per request, got {len(numbers)}"
            )
        )
        return ()
    seen: dict[str, int] = {}
    out: list[str] = []
    for i, raw in enumerate(numbers):
        name = f"phoneNumbers[{i}]"
        if not isinstance(raw, str):
            errors.append(field_error(name, "must be a string", raw))
            continue
        if country is None:
            continue  # without a valid country, a national number cannot be judged
        parsed = parse_number(raw, country)
        if not parsed.valid:
            errors.append(field_error(name, parsed.error or "not a valid number", raw))
        elif parsed.e164 in seen:
            errors.append(field_error(name, f"duplicate of phoneNumbers[{seen[parsed.e164]}]", raw))
        else:
            seen[parsed.e164] = i  # type: ignore[index]
            out.append(parsed.e164)  # type: ignore[arg-type]
    return tuple(out)


def validate_send(payload: dict, prices: PriceTable, rules: AddressRules) -> SendRequest:
    """A checked ``SendRequest``, or 2001 with ``data.errors`` listing every fault."""
    errors: list[dict] = []
    country = payload.get("countryCode")
    if not isinstance(country, str) or country.strip().upper() not in prices:
        errors.append(
            field_error("countryCode", "must be a country code of the price table", country)
        )
        country = None
    else:
        country = country.strip().upper()
    recipients = _recipients(payload.get("phoneNumbers"), country, errors)

    content = payload.get("content")
    segments = 0
    if not isinstance(content, str):
        errors.append(field_error("content", "must be a string"))
    elif len(content) > MAX_CONTENT_CHARS:  # more than 10 segments whatever it holds
        errors.append(
            field_error(
                "content",
                f"is {len(content):,} characters long; at most {MAX_SEGMENTS} segments "
                f"({MAX_SEGMENTS * 153:,} GSM-7 or {MAX_SEGMENTS * 67:,} other characters) "
                "are allowed",
            )
        )
    else:
        segments = count_segments(content).segments
        if segments == 0:
            errors.append(field_error("content", "must not be empty"))
        elif segments > MAX_SEGMENTS:
            errors.append(
                field_error(
                    "content", f"is {segments} segments long; at most {MAX_SEGMENTS} are allowed"
                )
            )

    sender = payload.get("senderId")
    if sender is None:
        sender = DEFAULT_SENDER
    elif (problem := sender_problem(sender)) is not None:  # the console's form checks the same
        errors.append(field_error("senderId", problem, sender))

    callback = payload.get("callbackUrl")
    if callback is not None:
        problem = check_callback_url(callback, rules)
        if problem:
            # Never the value: a callback URL carries the receiver's secret token.
            errors.append(field_error("callbackUrl", problem))

    client_ref = payload.get("clientRef")
    if client_ref is not None and (
        not isinstance(client_ref, str) or not 1 <= len(client_ref) <= MAX_CLIENT_REF
    ):
        errors.append(
            field_error("clientRef", f"must be a string of 1 to {MAX_CLIENT_REF} characters")
        )

    track = payload.get("trackClick")
    if track is not None and not isinstance(track, bool):
        errors.append(field_error("trackClick", "must be true or false"))

    if errors:
        raise invalid(errors)
    return SendRequest(
        country=country,  # type: ignore[arg-type]
        recipients=recipients,
        content=content,  # type: ignore[arg-type]
        segments=segments,
        sender=sender,  # type: ignore[arg-type]
        callback_url=callback,
        client_ref=client_ref,
        track_click=bool(track),
    )


def validate_link(payload: dict) -> tuple[str, str | None]:
    """The target URL and title of a short-link payload, or 2001."""
    errors: list[dict] = []
    url = payload.get("url")
    problem = http_url_problem(url)
    if problem:
        errors.append(field_error("url", problem, url))
    title = payload.get("title")
    if title is not None and (not isinstance(title, str) or len(title) > MAX_TITLE):
        errors.append(field_error("title", f"must be a string of at most {MAX_TITLE} characters"))
    if errors:
        raise invalid(errors)
    return url, title  # type: ignore[return-value]
