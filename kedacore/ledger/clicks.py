"""A campaign's click report, read from what the ledger records of tracked links' clicks.

A tracked link (``trackClick``) is visited at the service, which sends a signed ``CLICKED``
callback (``msgid``, ``recipient``, ``url``, ``clicked_time``). The console's receiver applies it
(``Ledger.apply_events``): the message's ``clicks`` goes up by one and ``last_click_at`` moves on,
and the callback itself is kept in ``events`` (its JSON body, ``occurred_at`` = the click's time,
``outcome`` ``applied``; a duplicate is not applied twice). So:

- delivered, clicked (unique recipients), total clicks and who clicked come from ``messages``
  (every counted click is there);
- clicks over time and by link come from ``events`` — the only place a click's own time and its
  link's address are kept. A click counted without a callback (``Ledger.record_click``, and the
  generated demo history) has no row there: ``timed`` says how many clicks the chart covers.

Each figure is one query over the campaign's messages (``ix_messages_campaign``) and, for the
events, ``ix_events_msgid``: a 100,000-recipient campaign reads in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection, Engine, Integer, case, cast, func, select
from sqlalchemy.dialects import postgresql

from kedacore.ledger import schema as s
from kedacore.ledger.engine import reading

SLOT_SECONDS = 900  # clicks over time in UTC quarter hours: every zone's offset is a multiple


@dataclass(frozen=True)
class ClickTotals:
    """A campaign's click figures: messages delivered, recipients who clicked, clicks."""

    delivered: int
    clicked: int  # unique recipients with at least one click
    clicks: int  # every counted click
    timed: int  # clicks whose time and link the ledger keeps (their callbacks, in events)

    @property
    def rate(self) -> Fraction | None:
        """Click-through rate, exact: clicked / delivered (None with nothing delivered)."""
        return Fraction(self.clicked, self.delivered) if self.delivered else None


@dataclass(frozen=True)
class LinkClicks:
    """One tracked link's target address with its clicks and the recipients who made them."""

    url: str
    clicks: int
    recipients: int


@dataclass(frozen=True)
class Clicker:
    """One recipient who clicked: how many clicks, and the last one."""

    recipient: str
    clicks: int
    last_click_at: datetime | None


def _url(conn: Connection) -> Any:
    """The ``url`` of a stored CLICKED callback body (JSON text), in this database's dialect."""
    if conn.dialect.name == "postgresql":
        return func.json_extract_path_text(cast(s.events.c.payload, postgresql.JSON), "url")
    return func.json_extract(s.events.c.payload, "$.url")


def _slot(conn: Connection) -> Any:
    """The click's UTC quarter hour, as seconds since the epoch // SLOT_SECONDS."""
    at = s.events.c.occurred_at
    if conn.dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", at) / SLOT_SECONDS), Integer)
    return cast(func.strftime("%s", at), Integer) // SLOT_SECONDS


def _campaign_clicks(campaign_id: int) -> Any:
    """The applied CLICKED callbacks of a campaign's messages (a join to filter on)."""
    m, e = s.messages, s.events
    return (
        e.join(m, m.c.msgid == e.c.msgid),
        (m.c.campaign_id == campaign_id) & (e.c.status == "CLICKED") & (e.c.outcome == "applied"),
    )


class ClicksMixin:
    """Reads for a campaign's click report (docs/audiences.md, "Click report")."""

    engine: Engine

    def click_totals(self, campaign_id: int) -> ClickTotals:
        """Delivered, clicked (unique recipients), total clicks and the clicks with a time."""
        m = s.messages.c
        joined, where = _campaign_clicks(campaign_id)
        with reading(self.engine) as conn:
            row = conn.execute(
                select(
                    func.count().filter(m.status == "DELIVERED"),
                    func.count(func.distinct(case((m.clicks > 0, m.recipient)))),
                    func.coalesce(func.sum(m.clicks), 0),
                ).where(m.campaign_id == campaign_id)
            ).one()
            timed = conn.execute(select(func.count()).select_from(joined).where(where)).scalar()
        return ClickTotals(int(row[0]), int(row[1]), int(row[2]), int(timed or 0))

    def clicks_over_time(self, campaign_id: int) -> list[tuple[datetime, int]]:
        """Clicks by UTC quarter hour (its start, aware UTC), oldest first; only slots clicked."""
        joined, where = _campaign_clicks(campaign_id)
        with reading(self.engine) as conn:
            slot = _slot(conn).label("slot")
            rows = conn.execute(
                select(slot, func.count())
                .select_from(joined)
                .where(where, s.events.c.occurred_at.is_not(None))
                .group_by(slot)
                .order_by(slot)
            ).all()
        return [(datetime.fromtimestamp(int(n) * SLOT_SECONDS, UTC), int(c)) for n, c in rows]

    def clicks_by_link(self, campaign_id: int) -> list[LinkClicks]:
        """Clicks and clicking recipients per link target, most clicked first."""
        joined, where = _campaign_clicks(campaign_id)
        with reading(self.engine) as conn:
            url = _url(conn).label("url")
            rows = conn.execute(
                select(url, func.count(), func.count(func.distinct(s.messages.c.recipient)))
                .select_from(joined)
                .where(where)
                .group_by(url)
                .order_by(func.count().desc(), url)
            ).all()
        return [LinkClicks(str(u or ""), int(c), int(r)) for u, c, r in rows]

    def who_clicked(self, campaign_id: int, limit: int | None = None) -> list[Clicker]:
        """The recipients who clicked, the latest click first (``limit``: the first so many)."""
        m = s.messages.c
        last = func.max(m.last_click_at).label("last")
        query = (
            select(m.recipient, func.sum(m.clicks), last)
            .where(m.campaign_id == campaign_id, m.clicks > 0)
            .group_by(m.recipient)
            .order_by(last.desc(), m.recipient)
        )
        if limit is not None:
            query = query.limit(limit)
        with reading(self.engine) as conn:
            rows = conn.execute(query).all()
        return [Clicker(r, int(n), _aware(t)) for r, n, t in rows]


def _aware(value: datetime | str | None) -> datetime | None:
    # max() over a UTCDateTime loses the type on SQLite: naive UTC, or its text.
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
