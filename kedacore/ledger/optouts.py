"""Opt-outs (the suppression list) and who was messaged recently, in the ledger.

A number is opted out while it has an *active* row in ``suppressions`` (``removed_at`` is
NULL). A removal never deletes: it sets ``removed_at``/``removed_by``/``removed_reason``, so a
number's history stays (docs/audiences.md, "Opt-outs and the frequency guard"). Adding a
number that is opted out already counts it and adds nothing: every add runs under the
suppression list's write lock (SQLite's ``BEGIN IMMEDIATE``; on PostgreSQL a table lock that
only writers of ``suppressions`` take), so two adds of one number at once leave one active row.

:meth:`OptoutsMixin.suppressed` answers "which of these numbers are opted out" for a
campaign's 100,000 numbers against a list of 1,000,000 in well under a second (bench/
suppression.py): on SQLite chunks of ``IN (...)`` over the ``(phone, removed_at)`` index, on
PostgreSQL a join against chunks of ``unnest(array)`` (one parameter per chunk).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql

from kedacore.ledger import schema as s
from kedacore.ledger.engine import reading, writing
from kedacore.phones import parse_number

SOURCES = ("hand", "import")
MAX_REASON = 500
_SQLITE_CHUNK = 900  # numbers per IN (...): under SQLite's oldest parameter limit (999)
_PG_CHUNK = 50_000  # numbers per unnest(array) on PostgreSQL: one parameter
_BATCH_PAGE = 2_000  # a campaign's batches read at a time by leave_out_opted_out


class OptoutError(ValueError):
    """An opt-out change that cannot be made (said in words)."""


@dataclass(frozen=True)
class Optout:
    """One row of the suppression list: active, or removed (when, by whom, why)."""

    id: int
    phone: str
    reason: str
    source: str
    added_by: str
    added_at: datetime
    removed_at: datetime | None = None
    removed_by: str | None = None
    removed_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.removed_at is None


@dataclass(frozen=True)
class OptoutAdded:
    """What an add did: the numbers newly opted out and those that were already."""

    added: tuple[str, ...]
    already: tuple[str, ...]


@dataclass(frozen=True)
class NumbersRead:
    """Numbers as given, normalised to E.164: each valid one once, and the refused ones."""

    valid: tuple[str, ...]
    invalid: tuple[tuple[int, str, str], ...]  # (position from 1, as written, why)
    repeated: int = 0


def normalize_numbers(raws: Iterable[object], country: str | None = None) -> NumbersRead:
    """E.164 numbers (in first-seen order, each once) and the ones that are not numbers.

    ``country``: ISO code for national numbers (``None``: every number must be +E.164).
    """
    valid: dict[str, None] = {}
    invalid: list[tuple[int, str, str]] = []
    repeated = 0
    for i, raw in enumerate(raws, start=1):
        parsed = parse_number(raw, country)
        if parsed.error or not parsed.e164:
            invalid.append((i, parsed.raw, parsed.error or "not a phone number"))
        elif parsed.e164 in valid:
            repeated += 1
        else:
            valid[parsed.e164] = None
    return NumbersRead(tuple(valid), tuple(invalid), repeated)


def _optout(row: Any) -> Optout:
    return Optout(**{c.name: row._mapping[c.name] for c in s.suppressions.c})


def _lock(conn: Connection) -> None:
    """Writers of the suppression list one at a time (SQLite: BEGIN IMMEDIATE does it)."""
    if conn.dialect.name == "postgresql":
        # SHARE ROW EXCLUSIVE conflicts with itself and with writes, not with reads.
        conn.exec_driver_sql("LOCK TABLE suppressions IN SHARE ROW EXCLUSIVE MODE")


def _suppressed(conn: Connection, numbers: Sequence[str]) -> set[str]:
    t = s.suppressions.c
    found: set[str] = set()
    if conn.dialect.name == "postgresql":
        # A join against the numbers unnested: the planner walks the index once per number
        # (= ANY(array) of 20,000 made it scan the whole table per chunk: 3-4 times slower).
        phones = bindparam("phones", type_=postgresql.ARRAY(s.PHONE))
        wanted = func.unnest(phones).table_valued("phone").render_derived(name="wanted")
        query = (
            select(t.phone).join(wanted, t.phone == wanted.c.phone).where(t.removed_at.is_(None))
        )
        for start in range(0, len(numbers), _PG_CHUNK):
            found.update(conn.scalars(query, {"phones": list(numbers[start : start + _PG_CHUNK])}))
        return found
    # SQLite: the driver's own statement, one per chunk (half the time of a compiled IN).
    for start in range(0, len(numbers), _SQLITE_CHUNK):
        part = tuple(numbers[start : start + _SQLITE_CHUNK])
        marks = ",".join("?" * len(part))
        found.update(
            row[0]
            for row in conn.exec_driver_sql(
                f"SELECT phone FROM suppressions WHERE removed_at IS NULL AND phone IN ({marks})",
                part,
            )
        )
    return found


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class OptoutsMixin:
    """The suppression list of the Ledger."""

    engine: Any
    audit: Any  # kedacore.ledger.audit.AuditMixin's

    def now(self) -> datetime:
        raise NotImplementedError

    # -- reads ---------------------------------------------------------------------------

    def suppressed(self, numbers: Iterable[str]) -> set[str]:
        """Which of these E.164 numbers are opted out now."""
        wanted = sorted(set(numbers))
        if not wanted:
            return set()
        with reading(self.engine) as conn:
            return _suppressed(conn, wanted)

    def recently_messaged(self, numbers: Iterable[str], since: datetime) -> set[str]:
        """Which of these E.164 numbers were sent a message at or after ``since``."""
        wanted = sorted(set(numbers))
        found: set[str] = set()
        m = s.messages.c
        with reading(self.engine) as conn:
            for start in range(0, len(wanted), _SQLITE_CHUNK):
                part = wanted[start : start + _SQLITE_CHUNK]
                found.update(
                    conn.scalars(
                        select(m.recipient)
                        .where(m.recipient.in_(part), m.created_at >= since)
                        .distinct()
                    )
                )
        return found

    def messaged_within(self, hours: float) -> Callable[[Iterable[str]], set[str]] | None:
        """``recently_messaged`` from ``hours`` ago until now (None: the guard is off)."""
        if hours <= 0:
            return None
        since = self.now() - timedelta(hours=hours)
        return lambda numbers: self.recently_messaged(numbers, since)

    def optout_state(self, phone: str) -> Optout | None:
        """The number's active opt-out, else its last removed one, else None."""
        t = s.suppressions.c
        with reading(self.engine) as conn:
            row = conn.execute(
                select(s.suppressions)
                .where(t.phone == phone)
                .order_by(t.removed_at.is_(None).desc(), t.id.desc())
                .limit(1)
            ).first()
        return _optout(row) if row is not None else None

    def _optouts_where(self, query: Any, search: str, active: bool | None) -> Any:
        t = s.suppressions.c
        if active is True:
            query = query.where(t.removed_at.is_(None))
        elif active is False:
            query = query.where(t.removed_at.is_not(None))
        text = search.strip()
        if text:
            like = _like(text.lower())
            query = query.where(
                or_(
                    t.phone.like(_like(text.replace(" ", "")), escape="\\"),
                    func.lower(t.reason).like(like, escape="\\"),
                    func.lower(t.added_by).like(like, escape="\\"),
                )
            )
        return query

    def optouts(
        self, search: str = "", *, active: bool | None = True, limit: int = 100, offset: int = 0
    ) -> list[Optout]:
        """Rows of the list, newest first; ``search`` in the number, the reason or who added."""
        t = s.suppressions.c
        query = self._optouts_where(select(s.suppressions), search, active)
        query = query.order_by(t.added_at.desc(), t.id.desc()).limit(limit).offset(offset)
        with reading(self.engine) as conn:
            return [_optout(row) for row in conn.execute(query)]

    def optout_count(self, search: str = "", *, active: bool | None = True) -> int:
        query = self._optouts_where(
            select(func.count()).select_from(s.suppressions), search, active
        )
        with reading(self.engine) as conn:
            return int(conn.scalar(query) or 0)

    # -- writes --------------------------------------------------------------------------

    def add_optouts(
        self, numbers: Iterable[str], *, by: str, reason: str, source: str = "hand"
    ) -> OptoutAdded:
        """Opt these E.164 numbers out (all or none), audited; already opted out: counted.

        Raises OptoutError for a number that is not E.164, an empty reason or an unknown source.
        """
        why = reason.strip()
        if not why:
            raise OptoutError("say why these numbers are opted out (a reason is required)")
        if source not in SOURCES:
            raise OptoutError(f"not an opt-out source: {source!r}")
        read = normalize_numbers(numbers)
        if read.invalid:
            _pos, raw, error = read.invalid[0]
            raise OptoutError(
                f"{len(read.invalid):,} number(s) are not E.164 numbers (the first, "
                f"{raw!r}: {error}): nothing was added"
            )
        wanted = list(read.valid)
        if not wanted:
            raise OptoutError("no number to opt out")
        now = self.now()
        with writing(self.engine) as conn:
            _lock(conn)
            already = _suppressed(conn, sorted(wanted))
            fresh = [p for p in wanted if p not in already]
            rows = [
                {
                    "phone": p,
                    "reason": why[:MAX_REASON],
                    "source": source,
                    "added_by": by,
                    "added_at": now,
                }
                for p in fresh
            ]
            for start in range(0, len(rows), 5_000):
                conn.execute(insert(s.suppressions), rows[start : start + 5_000])
            single = len(wanted) == 1
            self.audit(
                by,
                "optout_import" if source == "import" else "optout_add",
                target=f"opt-out {wanted[0]}" if single else f"{len(wanted):,} numbers",
                after={"added": len(fresh), "already": len(already), "source": source},
                detail=why[:MAX_REASON],
                conn=conn,
            )
        return OptoutAdded(tuple(fresh), tuple(p for p in wanted if p in already))

    def leave_out_opted_out(self, campaign_id: int) -> int:
        """Take the numbers opted out since the plan off a campaign's batches not yet tried.

        Run when a campaign starts or resumes (kedacore.campaign.engine): a number opted out
        while the campaign waited (for approval, or paused) is not sent. A batch tried once
        keeps its recipients (its clientRef must mean the same request); a batch left with
        nobody is dropped. The campaign's recipients, batches and estimate follow; audited.
        Returns how many numbers were left out.

        With no active opt-out at all it reads nothing else. Otherwise the batches are read
        ``_BATCH_PAGE`` at a time outside the write lock (a 100,000-recipient campaign is never
        held in memory at once: docs/benchmarks.md, Step 9), and only the batches that change
        are written, each still untried (``attempts = 0``, ``planned``) when it is.
        """
        b = s.campaign_batches.c
        t = s.suppressions.c
        changes: list[tuple[int, list[str], int, int]] = []  # id, kept, gone, micros less
        with reading(self.engine) as conn:
            if conn.scalar(select(t.id).where(t.removed_at.is_(None)).limit(1)) is None:
                return 0
            after = 0
            while True:
                page = conn.execute(
                    select(b.id, b.recipients, b.estimated_micros)
                    .where(
                        b.campaign_id == campaign_id,
                        b.state == "planned",
                        b.attempts == 0,
                        b.id > after,
                    )
                    .order_by(b.id)
                    .limit(_BATCH_PAGE)
                ).all()
                if not page:
                    break
                after = page[-1].id
                lists = [(row, json.loads(row.recipients)) for row in page]
                out = _suppressed(conn, sorted({p for _, numbers in lists for p in numbers}))
                for row, recipients in lists:
                    keep = [p for p in recipients if p not in out]
                    gone = len(recipients) - len(keep)
                    if gone:
                        less = row.estimated_micros // max(len(recipients), 1) * gone
                        changes.append((row.id, keep, gone, less))
        if not changes:
            return 0
        left_out = dropped = micros = 0
        untried = (b.state == "planned", b.attempts == 0)
        with writing(self.engine) as conn:
            for batch_id, keep, gone, less in changes:
                if keep:
                    done = conn.execute(
                        update(s.campaign_batches)
                        .where(b.id == batch_id, *untried)
                        .values(
                            recipients=json.dumps(keep),
                            recipient_count=len(keep),
                            estimated_micros=b.estimated_micros - less,
                            updated_at=self.now(),
                        )
                    ).rowcount
                else:
                    done = conn.execute(
                        delete(s.campaign_batches).where(b.id == batch_id, *untried)
                    ).rowcount
                    dropped += bool(done)
                if done:
                    left_out, micros = left_out + gone, micros + less
            if not left_out:
                return 0
            c = s.campaigns.c
            conn.execute(
                update(s.campaigns)
                .where(c.id == campaign_id)
                .values(
                    recipients=c.recipients - left_out,
                    batches=c.batches - dropped,
                    estimated_micros=c.estimated_micros - micros,
                )
            )
            self.audit(
                "opt-out check",
                "campaign_optouts",
                target=f"campaign {campaign_id}",
                after={"opted_out_left_out": left_out, "requests_dropped": dropped},
                detail=f"{left_out:,} opted out, left out (opted out after the plan)",
                conn=conn,
            )
        return left_out

    def remove_optout(self, phone: str, *, by: str, reason: str) -> Optout:
        """Take a number off the list (its row kept, marked removed), audited.

        Raises OptoutError without a reason, or when the number is not opted out.
        """
        why = reason.strip()
        if not why:
            raise OptoutError("say why this number may be messaged again (a reason is required)")
        t = s.suppressions.c
        now = self.now()
        with writing(self.engine) as conn:
            _lock(conn)
            row = conn.execute(
                select(s.suppressions).where(t.phone == phone, t.removed_at.is_(None))
            ).first()
            if row is None:
                raise OptoutError(f"{phone} is not opted out")
            conn.execute(
                update(s.suppressions)
                .where(t.phone == phone, t.removed_at.is_(None))
                .values(removed_at=now, removed_by=by, removed_reason=why[:MAX_REASON])
            )
            self.audit(
                by,
                "optout_remove",
                target=f"opt-out {phone}",
                before={"opted_out_since": row.added_at, "by": row.added_by, "why": row.reason},
                after={"removed": True},
                detail=why[:MAX_REASON],
                conn=conn,
            )
        state = self.optout_state(phone)
        assert state is not None
        return state


FREQUENCY_ENV = "KEDA_FREQUENCY_HOURS"
DEFAULT_FREQUENCY_HOURS = 24.0


def frequency_hours(env: Mapping[str, str] | None = None) -> float:
    """The frequency guard's window in hours: ``KEDA_FREQUENCY_HOURS`` (24 by default; 0
    turns the guard off). A value that is not a number ≥ 0 is refused (ValueError)."""
    raw = (os.environ if env is None else env).get(FREQUENCY_ENV, "").strip()
    if not raw:
        return DEFAULT_FREQUENCY_HOURS
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    if not 0 <= hours <= 24 * 366:  # NaN too
        raise ValueError(f"{FREQUENCY_ENV}={raw!r}: give a number of hours (0 turns it off)")
    return hours
