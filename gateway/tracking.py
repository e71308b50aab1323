"""``trackClick``: every http(s) URL of a text becomes a short link of its own per recipient.

Everything that can refuse a tracked send is decided before any code is made
(``plan_tracking``): the number of URLs (at most ``max_urls``, a ``serve`` setting) and the
segments of the rewritten text. Every short link is ``{base}/s/`` and a code of
``CODE_LENGTH`` letters and digits — characters of GSM-7's basic set, one unit each — so
every recipient's rewritten text has the same length and encoding, and one count made on
the text with placeholder codes is every recipient's count. Only an accepted send then
draws its codes (``track``), after its caps and balance are checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select

from gateway.db import shortlinks
from gateway.errors import field_error, invalid
from gateway.shortlinks import CODE_LENGTH, new_codes
from gateway.sql import Prepared
from gateway.validation import http_url_problem
from kedacore.segments import MAX_SEGMENTS, count_segments

# Up to the first space or quote; trailing punctuation belongs to the sentence, not the URL.
_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?'\"”’»)]}>"
_PAIRS = {")": "(", "]": "[", "}": "{"}
# The longest text of at most MAX_SEGMENTS parts: every character takes at least one unit,
# and GSM-7's 153 per part is the most. A longer text is refused by validation anyway.
MAX_TEXT = MAX_SEGMENTS * 153
_PLACEHOLDER = "0" * CODE_LENGTH  # any code: they all count the same

_codes = func.json_each(bindparam("codes")).table_valued("value")
_TAKEN = Prepared(select(shortlinks.c.code).where(shortlinks.c.code.in_(select(_codes.c.value))))
_INSERT_LINK = Prepared(insert(shortlinks))


def _trim(url: str) -> str:
    """Drop sentence punctuation after a URL; a closing bracket stays if the URL opened it."""
    while url and url[-1] in _TRAILING:
        closing = url[-1]
        if closing in _PAIRS and url.count(_PAIRS[closing]) >= url.count(closing):
            break
        url = url[:-1]
    return url


def find_urls(text: str) -> list[tuple[int, int]]:
    """(start, end) of every valid http(s) URL in a text, in order."""
    spans = []
    for match in _URL.finditer(text):
        url = _trim(match.group())
        if http_url_problem(url) is None:
            spans.append((match.start(), match.start() + len(url)))
    return spans


@dataclass(frozen=True, slots=True)
class TrackPlan:
    """Where a tracked text's URLs are, and the segments of each recipient's rewritten text."""

    spans: tuple[tuple[int, int], ...]
    segments: int


@dataclass(frozen=True, slots=True)
class TrackedText:
    """One recipient's text with its short links, and the links' (code, target) pairs."""

    text: str
    links: tuple[tuple[str, str], ...]


def rewrite(text: str, spans: Sequence[tuple[int, int]], codes: Sequence[str], base: str) -> str:
    """``text`` with the URL at each span replaced by ``{base}/s/{code}``."""
    out, last = [], 0
    for (start, end), code in zip(spans, codes, strict=True):
        out.append(text[last:start])
        out.append(f"{base}/s/{code}")
        last = end
    out.append(text[last:])
    return "".join(out)


def too_many_urls(found: int, max_urls: int) -> str:
    return (
        f"has {found} links; a message with trackClick may carry at most {max_urls} links "
        "(each becomes a short link of its own for every recipient)"
    )


def plan_tracking(content: Any, track_click: Any, base: str, max_urls: int) -> TrackPlan | None:
    """The plan of a ``trackClick`` send, checked before anything costly is done; 2001 when
    the text has more than ``max_urls`` URLs or is too long once rewritten.

    ``content`` and ``track_click`` are the payload's, checked or not. None when tracking
    is not asked for (``track_click`` is not ``True``), or the text has no URL, or it is not
    one that validation accepts (validation says what is wrong, with every other fault).
    """
    if track_click is not True or not isinstance(content, str):
        return None
    if len(content) > MAX_TEXT:
        return None  # more than MAX_SEGMENTS parts as it is: validation refuses it
    spans = find_urls(content)
    if not spans:
        return None
    if len(spans) > max_urls:
        raise invalid([field_error("content", too_many_urls(len(spans), max_urls))])
    segments = count_segments(rewrite(content, spans, [_PLACEHOLDER] * len(spans), base))
    if segments.segments > MAX_SEGMENTS:
        raise invalid(
            [
                field_error(
                    "content",
                    f"is {segments.segments} segments long with its tracked links; "
                    f"at most {MAX_SEGMENTS} are allowed",
                )
            ]
        )
    return TrackPlan(tuple(spans), segments.segments)


def unused_codes(conn: Connection, count: int) -> list[str]:
    """``count`` distinct new codes that no link has yet."""
    codes: set[str] = set()
    while len(codes) < count:
        fresh = set(new_codes(count - len(codes))) - codes
        taken = {row[0] for row in _TAKEN.run(conn, {"codes": json.dumps(sorted(fresh))})}
        codes |= fresh - taken
    return list(codes)


def track(
    conn: Connection, text: str, plan: TrackPlan, recipients: int, base: str
) -> list[TrackedText]:
    """Each recipient's text with short links of its own, as ``plan`` found them."""
    spans = plan.spans
    per_text = len(spans)
    codes = unused_codes(conn, per_text * recipients)
    # The text between the URLs, and the targets, are the same for every recipient.
    between = [text[: spans[0][0]]]
    between += [text[spans[i - 1][1] : spans[i][0]] for i in range(1, per_text)]
    tail = text[spans[-1][1] :]
    targets = [text[a:b] for a, b in spans]
    prefix = f"{base}/s/"
    out = []
    for i in range(recipients):
        mine = codes[i * per_text : (i + 1) * per_text]
        parts = []
        for piece, code in zip(between, mine, strict=True):
            parts += (piece, prefix, code)
        parts.append(tail)
        out.append(TrackedText("".join(parts), tuple(zip(mine, targets, strict=True))))
    return out


def store_links(
    conn: Connection, account_id: int, rows: Sequence[tuple[str, str, TrackedText]], now: int
) -> None:
    """Insert the short links of tracked messages: ``rows`` of (msgid, recipient, text)."""
    _INSERT_LINK.run_many(
        conn,
        [
            {
                "code": code,
                "account_id": account_id,
                "url": url,
                "title": None,
                "msgid": msgid,
                "recipient": recipient,
                "created_at": now,
            }
            for msgid, recipient, tracked in rows
            for code, url in tracked.links
        ],
    )
