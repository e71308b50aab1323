"""The daily rollup of messages, kept exact by the ledger's write paths.

``message_rollup`` holds, for each (day, country, sender, campaign, status, currency, demo), the
sums the Finance analytics need: messages, segments, charged and pending money, clicks and a
histogram of delivery latency. Every write of ``messages`` adds the difference it makes
(``add_rows`` after an insert, ``apply_changes`` after an update, ``remove_demo`` with the demo
rows) in the same transaction, so the rollup always equals ``GROUP BY`` over the messages:
``rebuild`` computes exactly that, and the tests hold the two equal after every write path.

The same contribution is written twice, once in Python (``contribution``, for the write paths)
and once in SQL (``sum_columns``, for ``rebuild`` and for the analytics of partial days); the
tests compare them.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from kedacore.ledger import schema as s
from kedacore.ledger.engine import writing

KEY = ("day", "country", "sender", "campaign_id", "status", "currency", "demo")
BASE_SUMS = (
    "messages",
    "segments",
    "cost_micros",
    "pending_micros",
    "priced",
    "clicks",
    "clicked",
    "latency_ms",
)
LATENCY_COLUMNS = s.LATENCY_COLUMNS
SUMS = BASE_SUMS + LATENCY_COLUMNS
# The columns of a messages row that its contribution depends on.
ROW_COLUMNS = (
    "day",
    "country",
    "sender",
    "campaign_id",
    "status",
    "currency",
    "demo",
    "segments",
    "cost_micros",
    "estimated_micros",
    "clicks",
    "delivery_ms",
)
NO_SENDER = ""  # key columns cannot be NULL: NULLs never match in ON CONFLICT
NO_CAMPAIGN = 0  # campaign ids start at 1

Key = tuple[Any, ...]


def latency_bucket(delivery_ms: int) -> int:
    """The index of the histogram bucket that holds ``delivery_ms``."""
    return bisect_right(s.LATENCY_BUCKETS_MS, delivery_ms)


def _compact(row: Mapping[str, Any]) -> tuple[Key, tuple[int, ...], int | None]:
    """One message's rollup key, its BASE_SUMS, and its latency bucket (None: no latency)."""
    sender = row.get("sender")
    campaign = row.get("campaign_id")
    key = (
        row["day"],
        row["country"],
        sender if sender is not None else NO_SENDER,
        campaign if campaign is not None else NO_CAMPAIGN,
        row["status"],
        row["currency"],
        bool(row.get("demo", False)),
    )
    cost = row.get("cost_micros")
    clicks = row.get("clicks") or 0
    delivery_ms = row.get("delivery_ms")
    # Pending: the estimate of a message whose charge is not known yet (a FAILED one is released).
    pending = 0
    if cost is None and row["status"] != "FAILED":
        pending = row.get("estimated_micros") or 0
    base = (
        1,
        row.get("segments") or 0,
        cost or 0,
        pending,
        1 if cost is not None else 0,
        clicks,
        1 if clicks > 0 else 0,
        delivery_ms or 0,
    )
    return key, base, (latency_bucket(delivery_ms) if delivery_ms is not None else None)


def contribution(row: Mapping[str, Any]) -> tuple[Key, list[int]]:
    """What one message adds to its rollup row: (key, sums in SUMS order)."""
    key, base, bucket = _compact(row)
    sums = [*base] + [0] * len(LATENCY_COLUMNS)
    if bucket is not None:
        sums[len(BASE_SUMS) + bucket] = 1
    return key, sums


_WIDTH = len(SUMS)
_BASE = len(BASE_SUMS)


def _accumulate(deltas: dict[Key, list[int]], row: Mapping[str, Any], sign: int) -> None:
    # The hot loop of bulk writes: touch the eight base sums and one bucket, not all 37.
    key, base, bucket = _compact(row)
    total = deltas.get(key)
    if total is None:
        total = deltas[key] = [0] * _WIDTH
    for i, v in enumerate(base):
        if v:
            total[i] += sign * v
    if bucket is not None:
        total[_BASE + bucket] += sign


Deltas = dict[Key, list[int]]


def add_rows(
    conn: Connection,
    rows: Iterable[Mapping[str, Any]],
    now: datetime,
    *,
    into: Deltas | None = None,
) -> None:
    """Count newly inserted messages (dicts of their columns; a missing one counts as unset).

    With ``into``, the difference is only added there, for the caller to write once with
    :func:`write_deltas` (see there: one write per transaction).
    """
    deltas: Deltas = {} if into is None else into
    for row in rows:
        _accumulate(deltas, row, 1)
    if into is None:
        write_deltas(conn, deltas, now)


def apply_changes(
    conn: Connection,
    changes: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]],
    now: datetime,
    *,
    into: Deltas | None = None,
) -> None:
    """Move updated messages from what they added before to what they add now (``into``:
    as for :func:`add_rows`)."""
    deltas: Deltas = {} if into is None else into
    for before, after in changes:
        _accumulate(deltas, before, -1)
        _accumulate(deltas, after, 1)
    if into is None:
        write_deltas(conn, deltas, now)


def write_deltas(conn: Connection, deltas: Mapping[Key, Sequence[int]], now: datetime) -> None:
    """Add each delta to its rollup row (created when missing), in key order.

    A transaction must call it at most once: two writes, each in key order, are not in key
    order together, and on PostgreSQL two such transactions can wait for each other's rows
    (a send that replays a callback: QUEUED, then DELIVERED before QUEUED). Gather the
    transaction's differences with ``into=`` and write them here at the end.
    """
    rows = [
        {**dict(zip(KEY, key, strict=True)), **dict(zip(SUMS, sums, strict=True))}
        for key, sums in sorted(deltas.items())  # one order for every writer: no deadlocks
        if any(sums)
    ]
    if not rows:
        return
    for row in rows:
        row["revision"] = 1
        row["updated_at"] = now
    t = s.message_rollup
    counters = (*SUMS, "revision")
    if conn.dialect.name in ("sqlite", "postgresql"):
        conn.execute(_upsert(conn.dialect.name), rows)
        return
    # Other databases: update, and insert the rows that were not there yet.
    for row in rows:
        changed = conn.execute(
            update(t)
            .where(*(t.c[k] == row[k] for k in KEY))
            .values({**{c: t.c[c] + row[c] for c in counters}, "updated_at": now})
        ).rowcount
        if not changed:
            conn.execute(insert(t).values(row))


@cache
def _upsert(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO UPDATE adding to the sums (built once: 37 columns' worth of
    expressions cost more to build than a group's write takes to run)."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as upsert
    else:
        from sqlalchemy.dialects.postgresql import insert as upsert
    t = s.message_rollup
    stmt = upsert(t)
    return stmt.on_conflict_do_update(
        index_elements=list(KEY),
        set_={
            **{c: t.c[c] + stmt.excluded[c] for c in (*SUMS, "revision")},
            "updated_at": stmt.excluded.updated_at,
        },
    )


def key_columns(m: Any = s.messages.c) -> list[ColumnElement[Any]]:
    """The rollup key computed from messages columns, in KEY order (SQL)."""
    return [
        m.day.label("day"),
        m.country.label("country"),
        func.coalesce(m.sender, NO_SENDER).label("sender"),
        func.coalesce(m.campaign_id, NO_CAMPAIGN).label("campaign_id"),
        m.status.label("status"),
        m.currency.label("currency"),
        m.demo.label("demo"),
    ]


def sum_columns(m: Any = s.messages.c) -> list[ColumnElement[Any]]:
    """The rollup sums over messages columns, in SUMS order (SQL; mirrors ``contribution``)."""
    bounds = s.LATENCY_BUCKETS_MS
    buckets = []
    for i, name in enumerate(LATENCY_COLUMNS):
        low = m.delivery_ms >= bounds[i - 1] if i > 0 else None
        high = m.delivery_ms < bounds[i] if i < len(bounds) else None
        cond = and_(*(c for c in (m.delivery_ms.is_not(None), low, high) if c is not None))
        buckets.append(func.sum(case((cond, 1), else_=0)).label(name))
    return [
        func.count().label("messages"),
        func.sum(func.coalesce(m.segments, 0)).label("segments"),
        func.sum(func.coalesce(m.cost_micros, 0)).label("cost_micros"),
        func.sum(
            case(
                (
                    and_(m.cost_micros.is_(None), m.status != "FAILED"),
                    func.coalesce(m.estimated_micros, 0),
                ),
                else_=0,
            )
        ).label("pending_micros"),
        func.sum(case((m.cost_micros.is_not(None), 1), else_=0)).label("priced"),
        func.sum(m.clicks).label("clicks"),
        func.sum(case((m.clicks > 0, 1), else_=0)).label("clicked"),
        func.sum(func.coalesce(m.delivery_ms, 0)).label("latency_ms"),
        *buckets,
    ]


def grouped(*conditions: Any) -> Any:
    """SELECT key, sums FROM messages WHERE conditions GROUP BY key (what the rollup holds)."""
    keys = key_columns()
    return select(*keys, *sum_columns()).where(*conditions).group_by(*keys)


def rebuild_in(conn: Connection, now: datetime, *, demo: bool | None = None) -> None:
    """Recompute the rollup from the messages: all of it, or only its demo / non-demo part."""
    t = s.message_rollup
    if demo is None:
        conn.execute(delete(t))
        query = grouped()
    else:
        conn.execute(delete(t).where(t.c.demo.is_(demo)))
        query = grouped(s.messages.c.demo.is_(demo))
    source = query.subquery()
    cols = [*KEY, *SUMS]
    conn.execute(
        insert(t).from_select(
            [*cols, "revision", "updated_at"],
            select(
                *(source.c[c] for c in cols),
                literal(1, BigInteger).label("revision"),
                literal(now, s.UTCDateTime()).label("updated_at"),
            ),
        )
    )


def rebuild(engine: Engine, now: datetime, *, demo: bool | None = None) -> None:
    """Recompute the rollup (or its demo / non-demo part) from the messages, in one transaction."""
    with writing(engine) as conn:
        rebuild_in(conn, now, demo=demo)


def remove_demo(conn: Connection) -> None:
    """Drop the demo part of the rollup (call it with the demo messages' deletion)."""
    conn.execute(delete(s.message_rollup).where(s.message_rollup.c.demo.is_(True)))


def differences(conn: Connection) -> dict[Key, tuple[list[int], list[int]]]:
    """Rollup rows that differ from GROUP BY over the messages: {key: (rollup, recomputed)}.

    Rows whose sums are all zero (every message moved on to another status) count as absent.
    """
    t = s.message_rollup
    stored = {
        tuple(row[:7]): [int(v) for v in row[7:]]
        for row in conn.execute(select(*(t.c[c] for c in (*KEY, *SUMS))))
    }
    computed = {tuple(row[:7]): [int(v) for v in row[7:]] for row in conn.execute(grouped())}
    zero = [0] * len(SUMS)
    out = {}
    for key in stored.keys() | computed.keys():
        a, b = stored.get(key, zero), computed.get(key, zero)
        if a != b:
            out[key] = (a, b)
    return out
