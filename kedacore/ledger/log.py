"""The message log: every message, newest first, filtered and paged without knowing an id.

Paging is by keyset, never by OFFSET: a page ends at a cursor ``(created_at, msgid)`` and the
next one starts strictly after it, so a page costs the same on page 1 and page 10,000, and
messages recorded between two pages (newer, so before page 1) never shift a row onto the next
page twice or off it. The count of the filtered set is exact up to :data:`COUNT_BOUND`, then
said as "10,000+": counting stops there, so a page never walks a million rows to count them.

Text is searched case- and accent-insensitively in the message's text (its task's content),
and as typed in the recipient, the msgid and the task id. Both sides are folded the same way,
by :func:`fold`: Python's ``lower()`` then the Latin letters with diacritics to their base
letter (``É`` → ``e``, ``ø`` → ``o``). PostgreSQL does it with ``translate(lower(x), …)``
(built in, no extension), SQLite with a function of the connection.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from itertools import chain
from typing import Any

from sqlalchemy import Connection, String, and_, func, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from kedacore.ledger import schema as s
from kedacore.ledger.engine import reading
from kedacore.money import from_micros

PAGE_ROWS = 100
COUNT_BOUND = 10_000  # the count is exact up to here, then "10,000+"
EXPORT_ROWS = 100_000  # the most rows one export holds (read in keyset chunks of EXPORT_CHUNK)
EXPORT_CHUNK = 5_000


# -- folding -----------------------------------------------------------------------------------


def _fold_pairs() -> tuple[str, str]:
    """Every Latin letter with a diacritic (upper and lower case) and its bare lower-case letter."""
    extra = {"ø": "o", "Ø": "o", "đ": "d", "Đ": "d", "ł": "l", "Ł": "l", "ı": "i", "ħ": "h"}
    src, dst = [], []
    for code in chain(range(0xC0, 0x250), range(0x1E00, 0x1F00)):
        char = chr(code)
        if char in extra:
            base = extra[char]
        else:
            bare = unicodedata.normalize("NFKD", char)
            base = "".join(c for c in bare if not unicodedata.combining(c)).lower()
        if len(base) == 1 and base.isascii() and base != char:
            src.append(char)
            dst.append(base)
    return "".join(src), "".join(dst)


FOLD_FROM, FOLD_TO = _fold_pairs()
_FOLD = str.maketrans(FOLD_FROM, FOLD_TO)


def fold(text: str) -> str:
    """``text`` as the log's search compares it: lower case, Latin diacritics removed."""
    return text.lower().translate(_FOLD)


def _sqlite_fold(value: Any) -> Any:
    return fold(value) if isinstance(value, str) else value


class _Fold(FunctionElement):  # type: ignore[type-arg]
    """``keda_fold(x)`` on SQLite (a function of the connection), ``translate(lower(x), …)``
    elsewhere."""

    inherit_cache = True
    type = String()


@compiles(_Fold)
def _fold_default(element: Any, compiler: Any, **kw: Any) -> str:
    inner = compiler.process(element.clauses, **kw)
    source = compiler.process(literal(FOLD_FROM), **kw)
    target = compiler.process(literal(FOLD_TO), **kw)
    return f"translate(lower({inner}), {source}, {target})"


@compiles(_Fold, "sqlite")
def _fold_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"keda_fold({compiler.process(element.clauses, **kw)})"


def _with_fold(conn: Connection) -> None:
    """Give a SQLite connection ``keda_fold`` (cheap; pooled connections may lack it)."""
    if conn.dialect.name == "sqlite":
        raw = conn.connection.driver_connection
        raw.create_function("keda_fold", 1, _sqlite_fold, deterministic=True)  # type: ignore[union-attr]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_NUMBER_NOISE = str.maketrans("", "", " -().\u00a0")


# -- what the log holds -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogFilter:
    """What the message log filters on; every part optional (empty: no filter)."""

    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    statuses: Sequence[str] = ()
    countries: Sequence[str] = ()
    senders: Sequence[str] = ()  # "" is the account's default sender (no sender id)
    campaign_ids: Sequence[int] = ()  # 0 is "no campaign" (the Send page, the CLI)
    list_id: int | None = None  # messages of campaigns sent to this contact list
    text: str = ""  # in the text (folded), the recipient, the msgid or the task id

    def key(self) -> str:
        """A stable text of the filter (a page's paging restarts when it changes)."""
        return repr(self)


@dataclass(frozen=True, slots=True, order=True)
class LogCursor:
    """Where a page ends: the next page holds what comes strictly after (older)."""

    created_at: datetime
    msgid: str


@dataclass(frozen=True, slots=True)
class LogRow:
    """One message as the log shows it."""

    msgid: str
    task_id: str
    campaign_id: int | None
    campaign: str | None  # the campaign's name
    recipient: str
    country: str
    sender: str | None
    status: str
    segments: int | None
    cost_micros: int | None
    estimated_micros: int | None
    currency: str
    created_at: datetime
    final_at: datetime | None
    content: str
    test: bool = False  # a campaign's test send (tasks.test, New campaign → Send a test)

    @property
    def cost(self) -> Decimal | None:
        return from_micros(self.cost_micros) if self.cost_micros is not None else None

    @property
    def cursor(self) -> LogCursor:
        return LogCursor(self.created_at, self.msgid)


@dataclass(frozen=True, slots=True)
class LogPage:
    rows: list[LogRow]
    next: LogCursor | None  # None: this is the last page


@dataclass(frozen=True, slots=True)
class LogCount:
    """How many messages match, exact up to ``bound``."""

    n: int
    bound: int = COUNT_BOUND
    exact: bool = field(default=True)

    def __str__(self) -> str:
        return f"{self.n:,}" if self.exact else f"{self.bound:,}+"


_m = s.messages
_ROW_COLS = [
    _m.c.msgid, _m.c.task_id, _m.c.campaign_id, s.campaigns.c.name.label("campaign"),
    _m.c.recipient, _m.c.country, _m.c.sender, _m.c.status, _m.c.segments, _m.c.cost_micros,
    _m.c.estimated_micros, _m.c.currency, _m.c.created_at, _m.c.final_at, s.tasks.c.content,
    s.tasks.c.test,
]  # fmt: skip


def _conditions(where: LogFilter) -> list[Any]:
    m = _m
    found: list[Any] = []
    if where.since is not None:
        found.append(m.c.created_at >= where.since)
    if where.until is not None:
        found.append(m.c.created_at < where.until)
    if where.statuses:
        found.append(m.c.status.in_(list(where.statuses)))
    if where.countries:
        found.append(m.c.country.in_(list(where.countries)))
    if where.senders:
        named = [x for x in where.senders if x]
        either = [m.c.sender.in_(named)] if named else []
        if "" in where.senders:
            either.append(m.c.sender.is_(None))
        found.append(or_(*either))
    if where.campaign_ids:
        ids = [int(x) for x in where.campaign_ids if x]
        either = [m.c.campaign_id.in_(ids)] if ids else []
        if 0 in where.campaign_ids:
            either.append(m.c.campaign_id.is_(None))
        found.append(or_(*either))
    if where.list_id is not None:
        sent_to = select(s.campaigns.c.id).where(s.campaigns.c.list_id == where.list_id)
        found.append(m.c.campaign_id.in_(sent_to))
    text = where.text.strip()
    if text:
        like = "%" + _escape_like(fold(text)) + "%"
        said = select(s.tasks.c.task_id).where(_Fold(s.tasks.c.content).like(like, escape="\\"))
        raw = "%" + _escape_like(text) + "%"
        either = [
            m.c.task_id.in_(said),
            m.c.msgid.like(raw, escape="\\"),
            m.c.task_id.like(raw, escape="\\"),
        ]
        digits = text.translate(_NUMBER_NOISE)
        if digits and all(c.isdigit() or c == "+" for c in digits):
            either.append(m.c.recipient.like("%" + digits + "%"))
        found.append(or_(*either))
    return found


def _after(cursor: LogCursor) -> Any:
    """Strictly older than ``cursor`` in (created_at, msgid) order, as an index range reads it."""
    c = _m.c
    return and_(
        c.created_at <= cursor.created_at,
        or_(c.created_at < cursor.created_at, c.msgid < cursor.msgid),
    )


class LogMixin:
    """``message_log``, ``message_log_count`` and ``message_log_rows`` of the Ledger."""

    engine: Any

    def _log_query(self, where: LogFilter, after: LogCursor | None, limit: int) -> Any:
        conditions = _conditions(where)
        if after is not None:
            conditions.append(_after(after))
        return (
            select(*_ROW_COLS)
            .select_from(
                _m.join(s.tasks, s.tasks.c.task_id == _m.c.task_id).outerjoin(
                    s.campaigns, s.campaigns.c.id == _m.c.campaign_id
                )
            )
            .where(*conditions)
            .order_by(_m.c.created_at.desc(), _m.c.msgid.desc())
            .limit(limit)
        )

    def message_log(
        self, where: LogFilter | None = None, *, after: LogCursor | None = None, limit: int = 100
    ) -> LogPage:
        """One page of the log, newest first.

        Args:
            where: the filters (none: every message).
            after: the ``next`` cursor of the page before (None: the first page).
            limit: rows per page.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit!r}")
        query = self._log_query(where or LogFilter(), after, limit + 1)
        with reading(self.engine) as conn:
            _with_fold(conn)
            rows = [LogRow(**row._mapping) for row in conn.execute(query)]
        more = len(rows) > limit
        rows = rows[:limit]
        return LogPage(rows, rows[-1].cursor if more and rows else None)

    def message_log_count(
        self, where: LogFilter | None = None, *, bound: int = COUNT_BOUND
    ) -> LogCount:
        """How many messages match: exact up to ``bound`` (counting stops after it)."""
        inner = select(_m.c.msgid).where(*_conditions(where or LogFilter())).limit(bound + 1)
        query = select(func.count()).select_from(inner.subquery())
        with reading(self.engine) as conn:
            _with_fold(conn)
            n = int(conn.execute(query).scalar_one())
        return LogCount(min(n, bound), bound, exact=n <= bound)

    def message_log_rows(
        self, where: LogFilter | None = None, *, limit: int = EXPORT_ROWS, chunk: int = EXPORT_CHUNK
    ) -> Iterator[LogRow]:
        """Every matching message, newest first, up to ``limit``: read page by page (keyset),
        so an export holds at most ``chunk`` rows from the database at once."""
        cursor: LogCursor | None = None
        left = limit
        while left > 0:
            page = self.message_log(where, after=cursor, limit=min(chunk, left))
            yield from page.rows
            left -= len(page.rows)
            if page.next is None:
                return
            cursor = page.next

    def log_choices(self) -> dict[str, list[Any]]:
        """What the filters offer: the senders, countries and campaigns the ledger holds, and the
        contact lists."""
        with reading(self.engine) as conn:
            r = s.message_rollup
            senders = list(
                conn.execute(select(r.c.sender).distinct().order_by(r.c.sender)).scalars()
            )
            countries = list(
                conn.execute(select(r.c.country).distinct().order_by(r.c.country)).scalars()
            )
            campaigns = [
                (row.id, row.name)
                for row in conn.execute(
                    select(s.campaigns.c.id, s.campaigns.c.name).order_by(s.campaigns.c.id.desc())
                )
            ]
            lists = [
                (row.id, row.name)
                for row in conn.execute(
                    select(s.contact_lists.c.id, s.contact_lists.c.name).order_by(
                        s.contact_lists.c.name
                    )
                )
            ]
        return {"senders": senders, "countries": countries, "campaigns": campaigns, "lists": lists}
