"""Short links: creation (envelope), listing with click figures, and the public redirect.

The listing (``GET /shortlinks``) pages, filters by kind, searches and sorts — our extension
of the protocol, docs/protocol.md *Short-link lists*: :func:`link_query` reads its parameters,
:meth:`Links.list` answers one page and the total.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, distinct, func, insert, literal, or_, select

from gateway.accounts import AccountKey
from gateway.clickbound import ClickBound
from gateway.clock import iso, to_ms
from gateway.db import Database, clicks, shortlinks
from gateway.errors import field_error, invalid, not_found
from gateway.outbox import Outbox
from gateway.replay import EnvelopeGuard
from gateway.validation import payload_object, validate_link
from kedacore.envelope import Envelope

ALPHABET = string.ascii_letters + string.digits
CODE_LENGTH = 7  # 62**7 ≈ 3.5e12 codes: guessing one is hopeless
MAX_LIST = 1000  # links per page
DEFAULT_LIST = 100
MAX_SEARCH = 200  # characters of ``q``
KINDS = ("manual", "tracking")  # made by POST /shortlinks; made by trackClick for one msgid
SORTS = ("created", "clicks")  # newest first; most visits first (then newest)

_visitor = clicks.c.ip + literal("\x00") + clicks.c.user_agent


def _per_link(expr: Any, label: str) -> Any:
    """A figure over one link's clicks (correlated, so it uses the index on clicks.code)."""
    return select(expr).where(clicks.c.code == shortlinks.c.code).scalar_subquery().label(label)


_CLICKS = _per_link(func.count(), "clicks")


@dataclass(frozen=True, slots=True)
class LinkQuery:
    """One page of the listing: how many, from where, which links, in which order."""

    limit: int = DEFAULT_LIST
    offset: int = 0
    kind: str | None = None  # None: both kinds
    search: str | None = None
    sort: str = "created"


def link_query(params: Mapping[str, str]) -> LinkQuery:
    """The listing's query parameters, checked; every fault named at once (2001)."""
    errors = []

    def number(name: str, default: int, top: int | None) -> int:
        raw = params.get(name)
        if raw is None or raw == "":
            return default
        if not raw.isdigit() or len(raw) > 9 or (top is not None and int(raw) > top):
            bound = f" from 0 to {top:,}" if top is not None else ""
            errors.append(field_error(name, f"must be a whole number{bound}", raw))
            return default
        return int(raw)

    def choice(name: str, allowed: tuple[str, ...]) -> str | None:
        raw = params.get(name) or None
        if raw is not None and raw not in allowed:
            errors.append(field_error(name, f"must be one of {', '.join(allowed)}", raw))
            return None
        return raw

    limit = number("limit", DEFAULT_LIST, MAX_LIST)
    offset = number("offset", 0, None)
    kind = choice("kind", KINDS)
    sort = choice("sort", SORTS) or "created"
    search = params.get("q") or None
    if search is not None and len(search) > MAX_SEARCH:
        errors.append(field_error("q", f"must be at most {MAX_SEARCH} characters"))
    if errors:
        raise invalid(errors)
    return LinkQuery(limit, offset, kind, search, sort)


def _matching(account_id: int, query: LinkQuery) -> list[Any]:
    """The WHERE of the listing: the account's links of the kind, containing the search."""
    where = [shortlinks.c.account_id == account_id]
    if query.kind == "manual":
        where.append(shortlinks.c.msgid.is_(None))
    elif query.kind == "tracking":
        where.append(shortlinks.c.msgid.is_not(None))
    if query.search:
        # A substring, any case; % and _ are characters here, not wildcards.
        text = query.search.lower()
        columns = (
            shortlinks.c.code,
            shortlinks.c.url,
            shortlinks.c.title,
            shortlinks.c.msgid,
            shortlinks.c.recipient,
        )
        where.append(or_(*(func.lower(c).contains(text, autoescape=True) for c in columns)))
    return where


# Random bytes map onto the alphabet with one ``bytes.translate`` (in C): 248 = 4 × 62, so
# bytes below 248 map uniformly and the 8 above are dropped. A tracked send to 1,000
# recipients needs up to 10,000 codes; drawing each character with ``secrets.choice``
# took ~7 µs per code.
_USABLE = 4 * len(ALPHABET)
_TO_ALPHABET = bytes(ord(ALPHABET[b % len(ALPHABET)]) if b < _USABLE else 0 for b in range(256))
_DROPPED = bytes(range(_USABLE, 256))


def new_codes(count: int) -> list[str]:
    """``count`` random codes (from the system's CSPRNG); they may repeat, rarely."""
    need = count * CODE_LENGTH
    chars = b""
    while len(chars) < need:
        # 3 % of the bytes are dropped: ask for a little more than needed.
        chars += secrets.token_bytes(need - len(chars) + 16 + need // 16).translate(
            _TO_ALPHABET, _DROPPED
        )
    text = chars[:need].decode("ascii")
    return [text[i : i + CODE_LENGTH] for i in range(0, need, CODE_LENGTH)]


def new_code() -> str:
    return new_codes(1)[0]


def link_wire(row: Any, base: str) -> dict:
    return {
        "code": row.code,
        "shortUrl": f"{base}/s/{row.code}",
        "url": row.url,
        "title": row.title,
        "createdAt": iso(row.created_at),
        "clicks": row.clicks or 0,
        "uniqueClicks": row.unique_clicks or 0,
        "lastClickAt": iso(row.last_click_at),
        # Our extension: a trackClick link names its message and recipient.
        "kind": "manual" if row.msgid is None else "tracking",
        "msgid": row.msgid,
        "recipient": row.recipient,
    }


class Links:
    """Short links of one gateway; ``base`` is the public base the links are served from."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], float],
        outbox: Outbox,
        guard: EnvelopeGuard,
        bound: ClickBound | None = None,
    ) -> None:
        self.db = db
        self.guard = guard
        self.clock = clock
        self.outbox = outbox
        self.bound = bound or ClickBound(0, 1.0)

    @staticmethod
    def _query() -> Select:
        return select(
            shortlinks.c.code,
            shortlinks.c.url,
            shortlinks.c.title,
            shortlinks.c.created_at,
            shortlinks.c.msgid,
            shortlinks.c.recipient,
            _CLICKS,
            _per_link(func.count(distinct(_visitor)), "unique_clicks"),
            _per_link(func.max(clicks.c.clicked_at), "last_click_at"),
        )

    async def create(
        self, account: AccountKey, envelope: Envelope, plaintext: bytes, base: str
    ) -> dict:
        """``POST /shortlinks``: a new code for a URL."""
        now = to_ms(self.clock())

        def work(conn: Connection) -> tuple[str, str, str | None]:
            url, title = validate_link(payload_object(plaintext))
            code = new_code()
            while conn.execute(select(shortlinks.c.code).where(shortlinks.c.code == code)).first():
                code = new_code()
            conn.execute(
                insert(shortlinks).values(
                    code=code, account_id=account.id, url=url, title=title, created_at=now
                )
            )
            return code, url, title

        code, url, title = await self.guard.run(account.id, envelope, work)
        return {
            "code": code,
            "shortUrl": f"{base}/s/{code}",
            "url": url,
            "title": title,
            "createdAt": iso(now),
        }

    def list(
        self, account_id: int, base: str, query: LinkQuery | None = None
    ) -> tuple[list[dict], dict]:
        """One page of the account's links with their click figures, and the page's place:
        ``{total, offset, limit, nextOffset}`` (``nextOffset`` None after the last page)."""
        query = query or LinkQuery()
        where = _matching(account_id, query)
        newest = (shortlinks.c.created_at.desc(), shortlinks.c.code)
        order = (_CLICKS.desc(), *newest) if query.sort == "clicks" else newest
        with self.db.read() as conn:  # one snapshot: the count and the page agree
            total = conn.execute(select(func.count()).select_from(shortlinks).where(*where))
            total = total.scalar_one()
            rows = []
            if query.limit:
                rows = conn.execute(
                    self._query()
                    .where(*where)
                    .order_by(*order)
                    .limit(query.limit)
                    .offset(query.offset)
                ).all()
        end = query.offset + len(rows)
        page = {
            "total": total,
            "offset": query.offset,
            "limit": query.limit,
            "nextOffset": end if end < total else None,
        }
        return [link_wire(row, base) for row in rows], page

    def get(self, account_id: int, code: str, base: str) -> dict:
        with self.db.read() as conn:
            row = conn.execute(
                self._query().where(
                    shortlinks.c.code == code, shortlinks.c.account_id == account_id
                )
            ).first()
        if row is None:
            raise not_found(f"short link {code!r}")
        return link_wire(row, base)

    def visit(self, code: str, ip: str, user_agent: str, base: str) -> str | None:
        """Record a click and return the target, or None for an unknown code.

        A tracked link's click also writes its CLICKED callback, in the same transaction.
        Past the bound of clicks per (link, address) in a window (``ClickBound``) the
        target is returned and nothing is recorded.
        """
        seconds = self.clock()
        now = to_ms(seconds)
        if not self.bound.allows(code, ip, seconds):
            with self.db.read() as conn:
                return conn.execute(
                    select(shortlinks.c.url).where(shortlinks.c.code == code)
                ).scalar_one_or_none()
        with self.db.write() as conn:
            link = conn.execute(
                select(shortlinks.c.url, shortlinks.c.msgid).where(shortlinks.c.code == code)
            ).first()
            if link is None:
                return None
            conn.execute(
                insert(clicks).values(
                    code=code, ip=ip[:64], user_agent=user_agent[:512], clicked_at=now
                )
            )
            if link.msgid is not None:
                self.outbox.add_click(conn, link.msgid, link.url, f"{base}/s/{code}", now)
        self.bound.record(code, ip, seconds)
        return link.url
