"""The ledger's money movements — frozen by sends, charged, released, top-ups — summed
between given instants, in one pass over each table (the money statement's input).

Each movement has a time and an amount (micro-units):

- frozen by a send: ``tasks.created_at``, ``tasks.debited_micros``;
- charged: a message in ``SENT`` / ``DELIVERED`` / ``UNDELIVERED`` at its ``sent_at`` (the
  service's time), ``messages.cost_micros`` (else its share of the task's frozen amount);
- released: a ``FAILED`` message at its ``final_at`` (the service's time), its share of the
  task's frozen amount (the service freezes price × recipients, so the share is exact);
- a top-up: ``topups.at``, ``topups.amount_micros``.

``scan(conn, bounds, currency)`` puts every movement in (bounds[0], bounds[-1]] into the
bucket k with bounds[k-1] < time ≤ bounds[k] — a balanced tree of CASEs, log2(len(bounds))
comparisons a row in any dialect — and sums each bucket by campaign and by who sent it.
Demo rows moved no money and are left out. The statement's identity is written down in
``kedacore.ledger.statement``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Integer, case, func, literal, null, select
from sqlalchemy.sql import ColumnElement

from kedacore.ledger import schema as s

CHARGED_STATUSES = ("SENT", "DELIVERED", "UNDELIVERED")
KINDS = ("frozen", "charged", "released", "topups")


@dataclass(frozen=True, slots=True)
class Split:
    """Money held by the account, in micro-units: available and frozen."""

    available: int
    frozen: int

    @property
    def total(self) -> int:
        return self.available + self.frozen

    def __add__(self, other: Split) -> Split:
        return Split(self.available + other.available, self.frozen + other.frozen)

    def __sub__(self, other: Split) -> Split:
        return Split(self.available - other.available, self.frozen - other.frozen)


ZERO = Split(0, 0)


@dataclass(frozen=True, slots=True)
class Movements:
    """What the ledger moved in an interval, in micro-units (each a positive amount)."""

    frozen_by_sends: int = 0
    charged: int = 0
    released: int = 0
    topups: int = 0

    @property
    def split(self) -> Split:
        """Their effect on the account: available and frozen."""
        return Split(
            self.released + self.topups - self.frozen_by_sends,
            self.frozen_by_sends - self.charged - self.released,
        )

    def __add__(self, other: Movements) -> Movements:
        return Movements(
            self.frozen_by_sends + other.frozen_by_sends,
            self.charged + other.charged,
            self.released + other.released,
            self.topups + other.topups,
        )

    def __sub__(self, other: Movements) -> Movements:
        return Movements(
            self.frozen_by_sends - other.frozen_by_sends,
            self.charged - other.charged,
            self.released - other.released,
            self.topups - other.topups,
        )


NONE = Movements()


def _movement(kind: str, amount: int) -> Movements:
    return Movements(**{("frozen_by_sends" if kind == "frozen" else kind): amount})


@dataclass(frozen=True)
class Scan:
    """The movements of (bounds[0], bounds[-1]], summed by bucket, campaign and sender.

    ``sums``: (kind, bucket, campaign id, sender) → micro-units; the sender (``created_by`` of
    the Send page's send) only for movements of no campaign; top-ups have neither.
    """

    bounds: list[datetime]
    sums: dict[tuple[str, int, int | None, str | None], int]

    def index(self, when: datetime) -> int:
        return self.bounds.index(when)

    def cumulative(self) -> list[Movements]:
        """For each bound, the movements in (bounds[0], bound] (the first is nothing)."""
        per_bucket = [NONE] * (len(self.bounds) + 1)
        for (kind, bucket, _, _), amount in self.sums.items():
            per_bucket[bucket] += _movement(kind, amount)
        running, out = NONE, []
        for k in range(len(self.bounds)):
            running += per_bucket[k] if k else NONE
            out.append(running)
        return out

    def by_source(self, after: int, upto: int) -> dict[tuple[int | None, str | None], Movements]:
        """(campaign id, sender) → movements in (bounds[after], bounds[upto]]."""
        found: dict[tuple[int | None, str | None], Movements] = {}
        for (kind, bucket, campaign, sender), amount in self.sums.items():
            if kind != "topups" and after < bucket <= upto:
                key = (campaign, sender)
                found[key] = found.get(key, NONE) + _movement(kind, amount)
        return found


def _bucket(expr: ColumnElement[Any], bounds: Sequence[datetime]) -> ColumnElement[Any]:
    """How many of ``bounds`` (sorted) are before ``expr``: k means bounds[k-1] < t ≤ bounds[k]."""

    def build(lo: int, hi: int) -> ColumnElement[Any]:
        if lo == hi:
            return literal(lo, Integer)
        mid = (lo + hi) // 2
        bound = literal(bounds[mid], s.UTCDateTime())
        return case((expr <= bound, build(lo, mid)), else_=build(mid + 1, hi))

    return build(0, len(bounds))


def _share() -> Any:
    """A message's share of its task's frozen amount (the service freezes price × count)."""
    t = s.tasks.c
    return (
        select(t.debited_micros // func.nullif(t.recipients, 0, type_=Integer))
        .where(t.task_id == s.messages.c.task_id)
        .scalar_subquery()
    )


def _sources(currency: str, last: Any) -> dict[str, tuple[Any, ...]]:
    """Each kind's (time, amount, campaign, sender, conditions)."""
    t, m, u, sd = s.tasks.c, s.messages.c, s.topups.c, s.sends.c
    task_sender = select(sd.created_by).where(sd.client_ref == t.client_ref).scalar_subquery()
    message_sender = (
        select(sd.created_by)
        .select_from(s.tasks.join(s.sends, sd.client_ref == t.client_ref))
        .where(t.task_id == m.task_id)
        .scalar_subquery()
    )
    live = [m.demo.is_(False), m.currency == currency, m.created_at <= last]
    return {
        "frozen": (
            t.created_at,
            t.debited_micros,
            t.campaign_id,
            task_sender,
            [t.demo.is_(False), t.currency == currency],
        ),
        "charged": (
            func.coalesce(m.sent_at, m.final_at, m.updated_at),
            func.coalesce(m.cost_micros, _share()),
            m.campaign_id,
            message_sender,
            [*live, m.status.in_(CHARGED_STATUSES)],
        ),
        "released": (
            func.coalesce(m.final_at, m.updated_at),
            _share(),
            m.campaign_id,
            message_sender,
            [*live, m.status == "FAILED"],
        ),
        "topups": (u.at, u.amount_micros, null(), null(), [u.currency == currency]),
    }


def scan(conn: Connection, bounds: Sequence[datetime], currency: str) -> Scan:
    """Every movement of (bounds[0], bounds[-1]] in ``currency``, summed (see ``Scan``)."""
    ordered = sorted(bounds)
    lo, hi = literal(ordered[0], s.UTCDateTime()), literal(ordered[-1], s.UTCDateTime())
    sums: dict[tuple[str, int, int | None, str | None], int] = {}
    for kind, (when, amount, campaign, sender, where) in _sources(currency, hi).items():
        who = case((campaign.is_(None), sender), else_=null())
        inner = (
            select(
                _bucket(when, ordered).label("b"),
                campaign.label("cid"),
                who.label("who"),
                amount.label("a"),
            )
            .where(*where, when > lo, when <= hi)
            .subquery()
        )
        rows = conn.execute(
            select(inner.c.b, inner.c.cid, inner.c.who, func.sum(inner.c.a)).group_by(
                inner.c.b, inner.c.cid, inner.c.who
            )
        )
        for bucket, cid, sender_of, total in rows:
            key = (kind, int(bucket), cid, sender_of)
            sums[key] = sums.get(key, 0) + int(total or 0)
    return Scan(ordered, sums)
