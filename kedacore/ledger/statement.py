"""The money statement: by UTC day, the account's balance as the console read it and the
movements the ledger knows of, with whatever the ledger cannot explain flagged.

The money model (the service's, docs/protocol.md): the account's **balance** is split in two,
**available** (what can still be spent) and **frozen** (held for accepted messages not yet
charged), like a bank account's available balance and its holds.

- a send freezes its price at once: available → frozen (``tasks.debited_micros``, at the
  time the ledger recorded the task);
- a message the channel accepts (``SENT``, then ``DELIVERED`` or ``UNDELIVERED``) is charged:
  its share leaves frozen (``messages.cost_micros``, at its ``sent_at``, the service's time);
- a message the channel refuses (``FAILED``) is released: its share goes back from frozen to
  available (at its ``final_at``, the service's time);
- a top-up adds to available (``topups``, written by the Settings page).

The service charges exactly the share it froze (the same price function), so nothing else
moves: no refund of "estimate − charge" exists in this model. Every day therefore:

    opening balance + top-ups − charged                        = closing balance
    opening frozen + frozen by sends − charged − released      = closing frozen
    opening available − frozen by sends + released + top-ups   = closing available

where balance = available + frozen. The first line is the one finance reconciles (money in,
money spent); the second says the holds add up too; the third follows from both.

Balances come from ``balance_readings`` (the console reads the balance at most every 10 s
while someone uses it). A reading includes every movement at or before its ``read_at``. A
day's **opening** is the balance at 00:00 UTC: the last reading before it, carried forward to
midnight with the movements the ledger records in between; its **closing** is the same at the
next midnight (so far, for today). Carrying uses only the ledger, so a difference can only
arise between two readings: the day's **unexplained difference** is (the day's last reading −
the last reading before the day) − the ledger's movements between the two, for the balance and
for frozen. It is zero to the micro-unit when the ledger knows every movement; otherwise money
moved that this console did not move or has not heard of yet: a top-up made at the provider,
messages sent by another tool with the same API key, results whose callbacks have not arrived
(a status check brings them in). A reading taken while a send was in flight (frozen at the
service, not yet recorded) shows money moved between available and frozen — the balance
itself adds up — and the next day shows the opposite.
``Ledger.statement_gaps`` narrows a day's difference down to the readings it happened between.

The first reading's day has no reading before it: its opening is carried **back** from that
reading to 00:00 with the ledger's movements before it that day (the same rule, the other way;
when nothing moved before the reading, the opening is the reading itself), and the day is
checked from that reading on. Only a day before the first reading's day has no balance
(None): there is nothing to carry from. The period's days start at the first one the console
kept any record of (a reading up to its end, or a movement on it): the days before it are left
out (``Statement.left_out``), not shown as unknown. Demo history (``demo`` rows) moved no
money and is left out. The movements are summed in SQL by ``kedacore.ledger.movements`` (one
pass per kind over the messages up to the period's end: about 1.3 s of CPU for a month of a
1,000,000-message ledger, ``bench/statement.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from kedacore.ledger import schema as s
from kedacore.ledger.engine import reading
from kedacore.ledger.movements import NONE, ZERO, Movements, Scan, Split, scan
from kedacore.ledger.queries import chunks
from kedacore.team.roles import LOCAL_OPERATOR

__all__ = [
    "NONE",
    "ZERO",
    "Movements",
    "Reading",
    "Split",
    "Statement",
    "StatementDay",
    "StatementGap",
    "StatementGroup",
    "StatementMixin",
]

MAX_DAYS = 366  # the longest period one statement covers
MAX_GAP_READINGS = 1000  # readings a day's difference is narrowed down between (evenly thinned)
TICK = timedelta(microseconds=1)  # the ledger's resolution: "before 00:00" is ≤ 23:59:59.999999


@dataclass(frozen=True, slots=True)
class Reading:
    """A balance reading (``balance_readings``): available and frozen at ``read_at``."""

    read_at: datetime
    money: Split


@dataclass(frozen=True)
class StatementDay:
    """One UTC day of the statement; money in micro-units, None where unknown.

    ``opening`` / ``closing``: the balance at 00:00 and at the next 00:00 (so far, for today),
    carried from ``opening_read`` / ``closing_read``. ``difference``: the closing reading
    against what the ledger explains (None when there is nothing to check against).
    ``checked_from``: the day's first reading, when no reading came before the day: the
    opening is carried back from it (``opening_read``) and the day is checked from it on;
    ``unchecked`` is what the ledger moved that day before it (nothing: the opening is the
    reading itself).
    """

    day: date
    moved: Movements
    opening: Split | None
    closing: Split | None
    opening_read: datetime | None
    closing_read: datetime | None
    difference: Split | None
    checked_from: datetime | None = None
    unchecked: Movements | None = None
    in_progress: bool = False

    @property
    def expected(self) -> Split | None:
        """Opening + the day's movements (None when the opening is unknown)."""
        return None if self.opening is None else self.opening + self.moved.split

    @property
    def read_today(self) -> bool:
        """Whether a reading was taken on this day (else the closing is carried)."""
        return self.closing_read is not None and self.closing_read.date() == self.day

    @property
    def flagged(self) -> bool:
        return self.difference is not None and self.difference != ZERO


@dataclass(frozen=True)
class StatementGroup:
    """What one campaign or member moved over the period (micro-units)."""

    key: str  # the campaign's id ("" for single sends), or the member
    label: str
    frozen_by_sends: int
    charged: int
    released: int


@dataclass(frozen=True)
class Statement:
    """``Ledger.statement``: the days of a period, and its movements by campaign and member."""

    start: date  # the period's first day (the days shown may start later: ``left_out``)
    end: date  # the last day shown (today at most)
    currency: str
    days: list[StatementDay]
    by_campaign: list[StatementGroup]
    by_member: list[StatementGroup]
    first_reading: datetime | None  # the first balance reading the ledger holds (any time)
    demo_left_out: bool = False  # the ledger holds demo history, which moved no money
    notes: list[str] = field(default_factory=list)
    left_out: int = 0  # the period's first days, of which the console kept no record

    @property
    def recorded_from(self) -> date | None:
        """The first day shown when days before it were left out (no record), else None."""
        if not self.left_out:
            return None
        return self.start + timedelta(days=self.left_out)

    @property
    def moved(self) -> Movements:
        total = NONE
        for day in self.days:
            total += day.moved
        return total

    @property
    def opening(self) -> Split | None:
        return self.days[0].opening if self.days else None

    @property
    def closing(self) -> Split | None:
        return self.days[-1].closing if self.days else None

    @property
    def checked_from(self) -> date | None:
        """The first day checked against the readings (None: no day could be)."""
        return next((day.day for day in self.days if day.difference is not None), None)

    @property
    def difference(self) -> Split:
        """Every checked day's unexplained difference added up."""
        total = ZERO
        for day in self.days:
            total += day.difference or ZERO
        return total

    @property
    def flagged(self) -> list[StatementDay]:
        return [day for day in self.days if day.flagged]


@dataclass(frozen=True)
class StatementGap:
    """Between two readings, what the balance moved beyond the ledger's movements."""

    after: Reading  # the earlier reading
    before: Reading  # the later one
    moved: Movements
    difference: Split


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _reading(row: Any) -> Reading:
    return Reading(row.read_at, Split(row.balance_micros, row.frozen_micros))


class StatementMixin:
    """``statement`` and ``statement_gaps`` of the Ledger (see the module docstring)."""

    engine: Any

    def now(self) -> datetime:
        raise NotImplementedError

    def statement(self, start: date, end: date, currency: str = "USD") -> Statement:
        """The statement of the UTC days ``start`` … ``end`` (both included; not past today).

        Args:
            start, end: the first and last day; at most ``MAX_DAYS`` days.
            currency: the account's currency (readings, tasks and top-ups in another are
                not this account's money).
        """
        if end < start:
            raise ValueError(f"the period ends ({end}) before it starts ({start})")
        if (end - start).days + 1 > MAX_DAYS:
            raise ValueError(f"a statement covers at most {MAX_DAYS} days")
        now = self.now()
        last_day = min(end, now.date())
        days = [start + timedelta(days=i) for i in range((last_day - start).days + 1)]
        with reading(self.engine) as conn:
            first = _first_reading(conn, currency)
            demo = conn.execute(select(s.tasks.c.task_id).where(s.tasks.c.demo).limit(1)).first()
            if not days:
                return Statement(start, end, currency, [], [], [], first, demo is not None)
            stop = min(_start_of(last_day + timedelta(days=1)), now + TICK)  # none come later
            rows, sources = _days(conn, days, currency, first, stop)
            by_campaign, by_member = _groups(conn, sources)
        left_out = _unrecorded(rows)
        return Statement(
            start,
            last_day,
            currency,
            rows[left_out:],
            by_campaign,
            by_member,
            first.read_at if first else None,
            demo is not None,
            left_out=left_out,
        )

    def statement_version(self) -> tuple[int, ...]:
        """Changes whenever the statement may: a reading, a top-up, any message (its rollup)."""
        r, u, roll = s.balance_readings.c, s.topups.c, s.message_rollup.c
        with reading(self.engine) as conn:
            row = conn.execute(
                select(
                    select(func.max(r.id)).scalar_subquery(),
                    select(func.max(u.id)).scalar_subquery(),
                    select(func.sum(roll.revision)).scalar_subquery(),
                    select(func.count()).select_from(s.message_rollup).scalar_subquery(),
                )
            ).one()
        return tuple(int(x or 0) for x in row)

    def statement_gaps(self, day: date, currency: str = "USD") -> list[StatementGap]:
        """Where ``day``'s unexplained difference arose: each pair of consecutive readings
        (from the last one before the day to the day's last) whose change the ledger does not
        explain. Over ``MAX_GAP_READINGS`` readings in the day, evenly chosen ones are compared.
        """
        r = s.balance_readings
        with reading(self.engine) as conn:
            prev = _reading_before(conn, _start_of(day), currency)
            rows = conn.execute(
                select(r)
                .where(
                    r.c.currency == currency,
                    r.c.read_at >= _start_of(day),
                    r.c.read_at < _start_of(day + timedelta(days=1)),
                )
                .order_by(r.c.read_at, r.c.id)
            ).all()
            readings = ([prev] if prev else []) + [_reading(row) for row in rows]
            readings = _thin(_distinct_times(readings), MAX_GAP_READINGS)
            if len(readings) < 2:
                return []
            sums = scan(conn, [x.read_at for x in readings], currency).cumulative()
        gaps = []
        for k in range(1, len(readings)):
            moved = sums[k] - sums[k - 1]
            difference = readings[k].money - readings[k - 1].money - moved.split
            if difference != ZERO:
                gaps.append(StatementGap(readings[k - 1], readings[k], moved, difference))
        return gaps


def _first_reading(conn: Connection, currency: str) -> Reading | None:
    r = s.balance_readings
    row = conn.execute(
        select(r).where(r.c.currency == currency).order_by(r.c.read_at, r.c.id).limit(1)
    ).first()
    return _reading(row) if row else None


def _reading_before(conn: Connection, when: datetime, currency: str) -> Reading | None:
    """The last reading strictly before ``when``."""
    r = s.balance_readings
    row = conn.execute(
        select(r)
        .where(r.c.currency == currency, r.c.read_at < when)
        .order_by(r.c.read_at.desc(), r.c.id.desc())
        .limit(1)
    ).first()
    return _reading(row) if row else None


def _distinct_times(readings: list[Reading]) -> list[Reading]:
    """One reading per instant (the later row of two taken at the same time)."""
    kept: dict[datetime, Reading] = {}
    for item in readings:
        kept[item.read_at] = item
    return list(kept.values())


def _thin(readings: list[Reading], most: int) -> list[Reading]:
    """At most ``most`` readings, evenly spread, the first and last kept."""
    if len(readings) <= most:
        return readings
    step = (len(readings) - 1) / (most - 1)
    return [readings[round(i * step)] for i in range(most)]


def _unrecorded(rows: list[StatementDay]) -> int:
    """How many of the first days the console kept no record of: no reading up to the day's
    end (so no balance) and nothing moved on it."""
    for k, day in enumerate(rows):
        if day.closing is not None or day.moved != NONE:
            return k
    return len(rows)


def _days(
    conn: Connection,
    days: list[date],
    currency: str,
    first: Reading | None,
    stop: datetime,
) -> tuple[list[StatementDay], dict[tuple[int | None, str | None], Movements]]:
    """The rows of ``days``, and the period's movements by campaign and sender, from the
    readings found and one scan of the movements between every boundary."""
    starts = [_start_of(d) for d in days] + [_start_of(days[-1] + timedelta(days=1))]
    ends = [min(when, stop) - TICK for when in starts[1:]]  # each day's last instant (so far)
    # before[i]: the last reading before starts[i] (the opening of days[i], closing of i-1)
    before = [_reading_before(conn, when, currency) for when in starts]
    start_of_first = first if first is not None and first.read_at.date() in days else None
    # Movements are summed up to each boundary: midnights (just before), readings, now.
    marks = {when - TICK for when in starts[:-1]} | set(ends)
    marks |= {x.read_at for x in before if x is not None}
    if start_of_first is not None:
        marks.add(start_of_first.read_at)
    found: Scan = scan(conn, sorted(marks), currency)
    at = {when: k for k, when in enumerate(found.bounds)}
    sums = found.cumulative()

    def moved(a: datetime, b: datetime) -> Movements:
        """The ledger's movements in (a, b], for a and b among the bounds."""
        return sums[at[b]] - sums[at[a]]

    def carried(reading_: Reading | None, to: datetime) -> Split | None:
        """A reading's balance carried to ``to`` with the ledger's movements: forward, or
        back (less what moved in between) when ``to`` comes before the reading."""
        if reading_ is None:
            return None
        return reading_.money + moved(reading_.read_at, to).split

    out = []
    for i, day in enumerate(days):
        opened, closed = before[i], before[i + 1]
        checked_from, unchecked = None, None
        if opened is None and start_of_first is not None and start_of_first.read_at.date() == day:
            # No reading before the day: its first one opens it, carried back to 00:00.
            opened, checked_from = start_of_first, start_of_first.read_at
            unchecked = moved(starts[i] - TICK, opened.read_at)
        difference = None
        if opened is not None and closed is not None:
            difference = closed.money - opened.money - moved(opened.read_at, closed.read_at).split
        out.append(
            StatementDay(
                day=day,
                moved=moved(starts[i] - TICK, ends[i]),
                opening=carried(opened, starts[i] - TICK),
                closing=carried(closed, ends[i]),
                opening_read=opened.read_at if opened else None,
                closing_read=closed.read_at if closed else None,
                difference=difference,
                checked_from=checked_from,
                unchecked=unchecked,
                in_progress=stop < starts[i + 1],
            )
        )
    return out, found.by_source(at[starts[0] - TICK], at[ends[-1]])


def _groups(
    conn: Connection, sources: dict[tuple[int | None, str | None], Movements]
) -> tuple[list[StatementGroup], list[StatementGroup]]:
    """The period's movements by campaign and by member.

    A campaign's money is its creator's; a single send's, whoever sent it from the Send page
    (``sends.created_by``); "local operator" when nobody was signed in.
    """
    c = s.campaigns.c
    ids = sorted({cid for cid, _ in sources if cid is not None})
    known = {
        row.id: row
        for part in chunks(ids)
        for row in conn.execute(select(c.id, c.name, c.created_by).where(c.id.in_(part)))
    }
    campaigns: dict[int | None, Movements] = {}
    members: dict[str, Movements] = {}
    for (cid, sender), moved in sources.items():
        if cid is not None:
            sender = known[cid].created_by if cid in known else None
        campaigns[cid] = campaigns.get(cid, NONE) + moved
        who = sender or LOCAL_OPERATOR
        members[who] = members.get(who, NONE) + moved

    def group(key: str, label: str, moved: Movements) -> StatementGroup:
        return StatementGroup(key, label, moved.frozen_by_sends, moved.charged, moved.released)

    def order(g: StatementGroup) -> tuple[int, int, str]:
        return (-g.charged, -g.frozen_by_sends, g.label)

    by_campaign = sorted(
        (
            group(str(cid), known[cid].name if cid in known else f"campaign {cid}", moved)
            for cid, moved in campaigns.items()
            if cid is not None
        ),
        key=order,
    )
    if None in campaigns:  # the Send page's sends, and any task of no campaign
        by_campaign.append(group("", "Single sends (no campaign)", campaigns[None]))
    by_member = sorted((group(who, who, moved) for who, moved in members.items()), key=order)
    return by_campaign, by_member
