"""The Spend page's aggregates, computed in SQL over the daily rollup (portable SQLAlchemy Core).

Whole days are read from ``message_rollup`` (a few rows per day and country, sender, campaign
and status), the parts of days that a datetime period cuts are grouped from ``messages`` on
the fly, and the two are added up in SQL (``UNION ALL`` under a ``GROUP BY``). Only aggregates
come back to Python. See docs/analytics.md for the definitions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, case, func, literal, or_, select, union_all
from sqlalchemy.sql.elements import ColumnElement

from kedacore.analytics.filters import Filters
from kedacore.ledger import rollup
from kedacore.ledger import schema as s
from kedacore.ledger.engine import reading

CHARGED = ("SENT", "DELIVERED", "UNDELIVERED")  # accepted by the channel, so charged
FINAL = ("DELIVERED", "UNDELIVERED", "FAILED")
LAT = rollup.LATENCY_COLUMNS
BOUNDS = s.LATENCY_BUCKETS_MS


def engine_of(source: Any) -> Engine:
    """The engine of a Ledger (or an Engine itself)."""
    return source if isinstance(source, Engine) else source.engine


# -- the source: rollup for whole days, messages for cut days ------------------------------


def _dims(c: Any, f: Filters, *, raw: bool) -> list[ColumnElement[bool]]:
    """The filters' restrictions on a table's columns (``raw``: messages, with NULLs)."""
    out: list[ColumnElement[bool]] = []
    if f.countries:
        out.append(c.country.in_(f.countries))
    if f.statuses:
        out.append(c.status.in_(f.statuses))
    if f.currency:
        out.append(c.currency == f.currency)
    for column, values, none in (
        (c.sender, f.senders, rollup.NO_SENDER),
        (c.campaign_id, f.campaign_ids, rollup.NO_CAMPAIGN),
    ):
        if not values:
            continue
        known = [v for v in values if v is not None]
        if not raw:  # the rollup keeps "none" as "" / 0
            out.append(column.in_(known + ([none] if None in values else [])))
            continue
        either = [column.in_(known)] if known else []
        if None in values:
            either.append(column.is_(None))
        out.append(or_(*either))
    return out


def _split(f: Filters) -> tuple[tuple[date, date] | None, list[date], datetime, datetime]:
    """The whole days of the period (first, last) and the days it only cuts."""
    start, end = f.bounds
    midnight = time()
    first = start.date() if start.time() == midnight else start.date() + timedelta(days=1)
    last = end.date() - timedelta(days=1)
    cut = []
    if start.time() != midnight:
        cut.append(start.date())
    if end.time() != midnight and end.date() not in cut:
        cut.append(end.date())
    return ((first, last) if first <= last else None), cut, start, end


def source(f: Filters) -> Any:
    """A subquery with the rollup's key and sums for the filtered period (still ungrouped)."""
    whole, cut, start, end = _split(f)
    t = s.message_rollup.c
    cols = [*rollup.KEY, *rollup.SUMS]
    parts = []
    if whole is not None:
        parts.append(
            select(*(t[c] for c in cols)).where(
                t.day >= whole[0], t.day <= whole[1], *_dims(t, f, raw=False)
            )
        )
    if cut:
        m = s.messages.c
        parts.append(
            rollup.grouped(
                m.day.in_(cut), m.created_at >= start, m.created_at < end, *_dims(m, f, raw=True)
            )
        )
    if not parts:  # cannot happen (a period has a length), but keep the shape
        parts.append(select(*(t[c] for c in cols)).where(literal(False)))
    query = parts[0] if len(parts) == 1 else union_all(*parts)
    return query.subquery("src")


def _sum(column: Any) -> Any:
    return func.coalesce(func.sum(column), 0)


def _where_status(src: Any, statuses: Sequence[str], column: str = "messages") -> Any:
    return _sum(case((src.c.status.in_(statuses), src.c[column]), else_=0))


# -- KPIs --------------------------------------------------------------------------------------


def kpi_row(conn: Connection, f: Filters) -> dict[str, Any]:
    """One row of totals for the filters (ints; currency min/max; latency histogram)."""
    src = source(f)
    c = src.c
    query = select(
        _sum(c.messages).label("messages"),
        _sum(c.segments).label("segments"),
        _sum(c.cost_micros).label("cost_micros"),
        _sum(c.pending_micros).label("pending_micros"),
        _where_status(src, CHARGED, "priced").label("billed"),
        *(_where_status(src, [st]).label(st.lower()) for st in rollup_statuses()),
        _sum(c.clicks).label("clicks"),
        _sum(c.clicked).label("clicked"),
        _sum(c.latency_ms).label("latency_ms"),
        func.min(c.currency).label("currency_min"),
        func.max(c.currency).label("currency_max"),
        *(_sum(c[name]).label(name) for name in LAT),
    )
    row = conn.execute(query).one()._mapping
    return {k: (int(v) if k not in ("currency_min", "currency_max") else v) for k, v in row.items()}


def rollup_statuses() -> tuple[str, ...]:
    """Every message status, in lifecycle order."""
    return ("QUEUED", "SENT", "DELIVERED", "UNDELIVERED", "FAILED")


def histogram(row: dict[str, Any]) -> list[int]:
    """The latency bucket counts of a kpi_row."""
    return [row[name] for name in LAT]


def quantiles(
    conn: Connection, f: Filters, counts: Sequence[int], qs: Sequence[float]
) -> list[float | None]:
    """Exact quantiles of delivery_ms (pandas' default linear interpolation) for the filters.

    The histogram tells which bucket holds the order statistics a quantile needs; one
    ``ORDER BY delivery_ms LIMIT 2 OFFSET k`` query inside that bucket, on the covering index
    ``ix_messages_latency``, reads the two values to interpolate between.
    """
    n = sum(counts)
    if n == 0:
        return [None for _ in qs]
    out: list[float | None] = []
    for q in qs:
        h = (n - 1) * q
        lower = math.floor(h)
        values = _order_statistics(conn, f, counts, lower, 2 if lower + 1 < n else 1)
        if not values:  # the rollup and the messages disagree: fall back to the bucket
            out.append(None)
            continue
        x0 = values[0]
        x1 = values[1] if len(values) > 1 else x0
        out.append(x0 + (h - lower) * (x1 - x0))
    return out


def _order_statistics(
    conn: Connection, f: Filters, counts: Sequence[int], index: int, count: int
) -> list[int]:
    """The values at 0-based positions index .. index+count-1 of the sorted delivery_ms."""
    below = 0
    bucket = 0
    while below + counts[bucket] <= index:
        below += counts[bucket]
        bucket += 1
    last_needed = index + count - 1
    top, seen = bucket, below
    while seen + counts[top] <= last_needed:
        seen += counts[top]
        top += 1
    m = s.messages.c
    cond = [m.delivery_ms.is_not(None)]
    if bucket > 0:
        cond.append(m.delivery_ms >= BOUNDS[bucket - 1])
    if top < len(BOUNDS):
        cond.append(m.delivery_ms < BOUNDS[top])
    start, end = f.bounds
    last_day = (end - timedelta(microseconds=1)).date()
    cond += [m.day >= start.date(), m.day <= last_day, *_dims(m, f, raw=True)]
    if start.time() != time() or end.time() != time():  # a cut day: the exact moments too
        cond += [m.created_at >= start, m.created_at < end]
    query = (
        select(m.delivery_ms)
        .where(*cond)
        .order_by(m.delivery_ms)
        .limit(count)
        .offset(index - below)
    )
    return [int(v) for v in conn.scalars(query)]


# -- chart frames (rows of aggregates) -------------------------------------------------------


def grouped_rows(conn: Connection, f: Filters, keys: Sequence[str]) -> list[dict[str, Any]]:
    """Sums grouped by ``keys`` (rollup key names), ordered by them."""
    src = source(f)
    c = src.c
    key_cols = [c[k] for k in keys]
    query = (
        select(
            *key_cols,
            _sum(c.messages).label("messages"),
            _sum(c.segments).label("segments"),
            _sum(c.cost_micros).label("cost_micros"),
            _sum(c.pending_micros).label("pending_micros"),
            *(_where_status(src, [st]).label(st.lower()) for st in rollup_statuses()),
            _sum(c.clicked).label("clicked"),
            _sum(c.clicks).label("clicks"),
        )
        .group_by(*key_cols)
        .order_by(*key_cols)
    )
    out = []
    for row in conn.execute(query):
        d = dict(row._mapping)
        for k, v in d.items():
            if k not in keys:
                d[k] = int(v)
        out.append(d)
    return out


def campaign_names(conn: Connection, ids: Sequence[int]) -> dict[int, str]:
    """Names of the campaigns with these ids."""
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    query = select(s.campaigns.c.id, s.campaigns.c.name).where(s.campaigns.c.id.in_(wanted))
    return {int(i): name for i, name in conn.execute(query)}


def options_rows(conn: Connection) -> list[Any]:
    """Distinct (country, sender, campaign, status, currency, demo) present, with their days."""
    t = s.message_rollup.c
    keys = [t.country, t.sender, t.campaign_id, t.status, t.currency, t.demo]
    query = select(*keys, func.min(t.day), func.max(t.day)).where(t.messages > 0).group_by(*keys)
    return list(conn.execute(query))


def version_row(conn: Connection) -> tuple[int, int, int, datetime | None]:
    """(rollup rows, messages, revisions, last change) — changes whenever any message does."""
    t = s.message_rollup.c
    row = conn.execute(
        select(func.count(), _sum(t.messages), _sum(t.revision), func.max(t.updated_at))
    ).one()
    return int(row[0]), int(row[1]), int(row[2]), row[3]


__all__ = ["engine_of", "reading"]


# -- campaign test sends -------------------------------------------------------------------


def spend_of_tests(source: Any, f: Filters) -> tuple[int, int, int]:
    """Of the filtered messages, those of campaign test sends (``tasks.test``: New campaign →
    Send a test; outside any campaign): how many, their charged cost and the frozen estimate
    of those not charged yet, in micro-units.

    Read from ``messages`` and ``tasks`` directly (the rollup does not know tests): the test
    tasks of the period's days, then their messages by ``ix_messages_task``.
    """
    start, end = f.bounds
    m, t = s.messages.c, s.tasks.c
    tests = select(t.task_id).where(t.test.is_(True), t.day >= start.date(), t.day <= end.date())
    uncharged = case((m.cost_micros.is_(None), m.estimated_micros), else_=0)
    query = select(func.count(), _sum(m.cost_micros), _sum(uncharged)).where(
        m.task_id.in_(tests.scalar_subquery()),
        m.created_at >= start,
        m.created_at < end,
        *_dims(m, f, raw=True),
    )
    with reading(engine_of(source)) as conn:
        n, cost, frozen = conn.execute(query).one()
    return int(n), int(cost), int(frozen)
