"""Short links: creation (envelope), listing with click figures, and the public redirect."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Select, distinct, func, insert, literal, select

from gateway.accounts import AccountKey
from gateway.clickbound import ClickBound
from gateway.clock import iso, to_ms
from gateway.db import Database, clicks, shortlinks
from gateway.errors import not_found
from gateway.outbox import Outbox
from gateway.replay import EnvelopeGuard
from gateway.validation import payload_object, validate_link
from kedacore.envelope import Envelope

ALPHABET = string.ascii_letters + string.digits
CODE_LENGTH = 7  # 62**7 ≈ 3.5e12 codes: guessing one is hopeless
MAX_LIST = 1000

_visitor = clicks.c.ip + literal("\x00") + clicks.c.user_agent


def _per_link(expr: Any, label: str) -> Any:
    """A figure over one link's clicks (correlated, so it uses the index on clicks.code)."""
    return select(expr).where(clicks.c.code == shortlinks.c.code).scalar_subquery().label(label)


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
            _per_link(func.count(), "clicks"),
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

    def list(self, account_id: int, base: str, limit: int = 100, offset: int = 0) -> list[dict]:
        """The account's links, newest first, with their click figures."""
        with self.db.read() as conn:
            rows = conn.execute(
                self._query()
                .where(shortlinks.c.account_id == account_id)
                .order_by(shortlinks.c.created_at.desc(), shortlinks.c.code)
                .limit(min(max(limit, 1), MAX_LIST))
                .offset(max(offset, 0))
            ).all()
        return [link_wire(row, base) for row in rows]

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
