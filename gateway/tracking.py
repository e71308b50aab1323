"""``trackClick``: every http(s) URL of a text becomes a short link of its own per recipient."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, func, insert, select

from gateway.db import shortlinks
from gateway.shortlinks import new_code
from gateway.sql import Prepared
from gateway.validation import http_url_problem

# Up to the first space or quote; trailing punctuation belongs to the sentence, not the URL.
_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?'\"”’»)]}>"
_PAIRS = {")": "(", "]": "[", "}": "{"}

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


def unused_codes(conn: Connection, count: int) -> list[str]:
    """``count`` distinct new codes that no link has yet."""
    codes: set[str] = set()
    while len(codes) < count:
        fresh = {new_code() for _ in range(count - len(codes))} - codes
        taken = {row[0] for row in _TAKEN.run(conn, {"codes": json.dumps(sorted(fresh))})}
        codes |= fresh - taken
    return list(codes)


def track(conn: Connection, text: str, recipients: int, base: str) -> list[TrackedText] | None:
    """Each recipient's text with its own short links; None when the text has no URL."""
    spans = find_urls(text)
    if not spans:
        return None
    codes = unused_codes(conn, len(spans) * recipients)
    out = []
    for i in range(recipients):
        mine = codes[i * len(spans) : (i + 1) * len(spans)]
        targets = tuple((code, text[a:b]) for code, (a, b) in zip(mine, spans, strict=True))
        out.append(TrackedText(rewrite(text, spans, mine, base), targets))
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
