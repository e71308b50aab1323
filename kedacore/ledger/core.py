"""The Ledger: what the console sent and heard, in SQL (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, fields, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from kedacore.api.types import MessageStatus, SendResult
from kedacore.ledger import migrate, rollup
from kedacore.ledger import schema as s
from kedacore.ledger.approvals import ApprovalsMixin
from kedacore.ledger.batches import BatchesMixin
from kedacore.ledger.campaigns import CampaignsMixin
from kedacore.ledger.caps import CapsMixin
from kedacore.ledger.clicks import ClicksMixin
from kedacore.ledger.contacts import ContactsMixin
from kedacore.ledger.engine import ledger_url, lock_messages, make_engine, writing
from kedacore.ledger.log import LogMixin
from kedacore.ledger.lookups import LookupsMixin
from kedacore.ledger.notices import NoticesMixin
from kedacore.ledger.optouts import OptoutsMixin
from kedacore.ledger.queries import QueriesMixin, chunks, unique
from kedacore.ledger.resends import ResendsMixin
from kedacore.ledger.rows import Send, estimates, message_rows, task_row
from kedacore.ledger.rows import split_micros as split_micros  # where it used to be
from kedacore.ledger.sends import SendsMixin
from kedacore.ledger.state import (
    CallbackEvent,
    MessageState,
    Outcome,
    StatusUpdate,
    merge,
    parse_event,
)
from kedacore.ledger.statement import StatementMixin
from kedacore.ledger.team import TeamMixin
from kedacore.ledger.templates import TemplatesMixin

_STATE = [f.name for f in fields(MessageState)]
# The rest of a message's rollup key and sums (kedacore.ledger.rollup), which updates never change.
_FACTS = [name for name in rollup.ROW_COLUMNS if name not in _STATE]


def _utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Ledger(
    QueriesMixin,
    CampaignsMixin,
    BatchesMixin,
    LookupsMixin,
    CapsMixin,
    SendsMixin,
    TeamMixin,
    ApprovalsMixin,
    NoticesMixin,
    StatementMixin,
    ContactsMixin,
    OptoutsMixin,
    TemplatesMixin,
    ResendsMixin,
    LogMixin,
    ClicksMixin,
):
    """The console's record of campaigns, tasks, messages, callbacks, lookups, cap changes
    and the Send page's own sends.

    Args:
        url: any SQLAlchemy URL; by default ``KEDA_DATABASE_URL``, else SQLite in the data folder.
        data_dir: the data folder for the default SQLite file (``KEDA_DATA_DIR``, ``.kedasms``).
        clock: the source of "now" (aware UTC), for tests.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.engine = make_engine(ledger_url(url, data_dir))
        self.url = self.engine.url.render_as_string(hide_password=True)  # safe to show
        self._clock = clock or (lambda: datetime.now(UTC))
        # Made, or upgraded in place, once whoever else opens it at the same moment; a ledger
        # at head costs one SELECT (kedacore.ledger.migrate).
        self.migration = migrate.upgrade(self.engine, now=self.now)

    def __repr__(self) -> str:
        return f"Ledger({self.url!r})"

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def now(self) -> datetime:
        """The ledger's clock (aware UTC)."""
        return _utc(self._clock())

    # -- sends ---------------------------------------------------------------------------

    def record_send(
        self,
        result: SendResult,
        *,
        country: str,
        sender: str | None,
        content: str,
        campaign_id: int | None = None,
        client_ref: str | None = None,
        estimated_micros: int | Sequence[int] | None = None,
        created_at: datetime | None = None,
    ) -> int:
        """Record a send's task and every msgid/recipient in one transaction; idempotent.

        Args:
            result: what the send answered.
            estimated_micros: the task's estimate (split over its messages), or one per
                message in ``result.messages`` order; by default the amount debited.
            created_at: when it was sent (default: now).

        Returns the number of messages newly recorded (0 when the task was already there).
        """
        with writing(self.engine) as conn:
            return self._record_send(
                conn,
                result,
                country=country,
                sender=sender,
                content=content,
                campaign_id=campaign_id,
                client_ref=client_ref,
                estimated_micros=estimated_micros,
                created_at=created_at,
            )

    def _record_send(
        self,
        conn: Connection,
        result: SendResult,
        *,
        country: str,
        sender: str | None,
        content: str,
        campaign_id: int | None,
        client_ref: str | None,
        estimated_micros: int | Sequence[int] | None,
        created_at: datetime | None,
    ) -> int:
        # First of all: a callback for these msgids waits until this send is committed.
        lock_messages(conn, [m.msgid for m in result.messages])
        now = self.now()
        created = _utc(created_at) if created_at is not None else now
        send = Send(country, sender, content, campaign_id, client_ref)
        known = conn.execute(
            select(s.tasks.c.task_id).where(s.tasks.c.task_id == result.task_id)
        ).first()
        if known is None:
            conn.execute(insert(s.tasks).values(task_row(result, send, created)))
        if not result.messages:
            return 0
        estimated = estimates(result, estimated_micros)
        existing = self._existing_msgids(conn, [m.msgid for m in result.messages])
        rows = [
            row
            for row in message_rows(result, send, estimated, created, now)
            if row["msgid"] not in existing
        ]
        for part in chunks(rows):
            conn.execute(insert(s.messages), list(part))
        if rows:
            deltas: rollup.Deltas = {}  # the rollup is written once, at the end (deadlocks)
            rollup.add_rows(conn, rows, now, into=deltas)
            self._replay_orphans(conn, [row["msgid"] for row in rows], deltas)
            rollup.write_deltas(conn, deltas, now)
        return len(rows)

    def _existing_msgids(self, conn: Connection, msgids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for part in chunks(msgids):
            found.update(
                conn.scalars(select(s.messages.c.msgid).where(s.messages.c.msgid.in_(part)))
            )
        return found

    def _replay_orphans(
        self, conn: Connection, msgids: Sequence[str], deltas: rollup.Deltas
    ) -> None:
        """Apply events that arrived before their message was recorded (a fast callback);
        their rollup differences go to ``deltas``, which the caller writes."""
        orphans: list[Any] = []
        for part in chunks(msgids):
            orphans.extend(
                conn.execute(
                    select(s.events)
                    .where(s.events.c.outcome == Outcome.UNKNOWN, s.events.c.msgid.in_(part))
                    .order_by(s.events.c.id)
                )
            )
        if not orphans:
            return
        # occurred_at holds what the header said when the body gave no time of its own
        parsed = [
            replace(
                parse_event(json.loads(row.payload), payload=row.payload),
                emitted_at=row.occurred_at,
            ).update(row.received_at)
            for row in orphans
        ]
        outcomes = self._apply(conn, parsed, source="callback", deltas=deltas)
        conn.execute(
            update(s.events)
            .where(s.events.c.id == bindparam("b_id"))
            .values(outcome=bindparam("b_outcome")),
            [
                {"b_id": row.id, "b_outcome": str(o)}
                for row, o in zip(orphans, outcomes, strict=True)
            ],
        )

    # -- statuses, clicks and events -----------------------------------------------------

    def _apply(
        self,
        conn: Connection,
        updates: Sequence[StatusUpdate],
        *,
        source: str,
        deltas: rollup.Deltas | None = None,
    ) -> list[Outcome]:
        """Merge updates into their rows (read, decide in Python, write back what changed).

        The rollup is updated too, or, with ``deltas``, the differences are added there for
        the caller to write once (kedacore.ledger.rollup.write_deltas).
        """
        lock_messages(conn, [u.msgid for u in updates])  # held already when replaying
        states: dict[str, MessageState] = {}
        facts: dict[str, dict[str, Any]] = {}  # what the rollup needs besides the state
        cols = [
            s.messages.c.msgid,
            *(s.messages.c[name] for name in _STATE),
            *(s.messages.c[name] for name in _FACTS),
        ]
        for part in chunks(unique(u.msgid for u in updates)):
            query = select(*cols).where(s.messages.c.msgid.in_(part)).order_by(s.messages.c.msgid)
            for row in conn.execute(query.with_for_update()):
                states[row.msgid] = MessageState(**{name: row._mapping[name] for name in _STATE})
                facts[row.msgid] = {name: row._mapping[name] for name in _FACTS}
        before = dict(states)
        outcomes = []
        for u in updates:
            if u.msgid not in states:
                outcomes.append(Outcome.UNKNOWN)
                continue
            states[u.msgid], outcome = merge(states[u.msgid], u)
            outcomes.append(outcome)
        now = self.now()
        changed = [
            {"b_msgid": msgid, **asdict(state), "updated_at": now, "source": source}
            for msgid, state in states.items()
            if state != before[msgid]
        ]
        if changed:
            stmt = (
                update(s.messages)
                .where(s.messages.c.msgid == bindparam("b_msgid"))
                .values({name: bindparam(name) for name in [*_STATE, "updated_at", "source"]})
            )
            for part in chunks(changed):
                conn.execute(stmt, list(part))
            rollup.apply_changes(
                conn,
                (
                    (
                        {**facts[row["b_msgid"]], **asdict(before[row["b_msgid"]])},
                        {**facts[row["b_msgid"]], **row},
                    )
                    for row in changed
                ),
                now,
                into=deltas,
            )
        return outcomes

    def apply_statuses(
        self, statuses: Iterable[MessageStatus | StatusUpdate], *, source: str = "lookup"
    ) -> list[Outcome]:
        """Apply many statuses in one transaction, never moving a message back; one outcome each."""
        updates = [
            st if isinstance(st, StatusUpdate) else StatusUpdate.from_status(st) for st in statuses
        ]
        if not updates:
            return []
        with writing(self.engine) as conn:
            return self._apply(conn, updates, source=source)

    def apply_status(
        self, status: MessageStatus | StatusUpdate, *, source: str = "lookup"
    ) -> Outcome:
        """Apply one status (from a lookup, a callback, ...) through the no-regression rule."""
        return self.apply_statuses([status], source=source)[0]

    def record_click(self, msgid: str, *, clicked_at: datetime | None = None) -> Outcome:
        """Count one click on a message's link (APPLIED, or UNKNOWN for a msgid not recorded)."""
        click = StatusUpdate(msgid, "CLICKED", occurred_at=clicked_at or self.now())
        return self.apply_statuses([click], source="click")[0]

    def apply_events(self, items: Iterable[CallbackEvent]) -> list[Outcome]:
        """Apply callback events in one transaction, each at most once; one outcome per event.

        An event seen before (same event id, or same msgid/status/time without one) is a
        DUPLICATE and changes nothing. An event for a msgid the ledger does not know is kept
        (UNKNOWN) and replayed when its send is recorded.
        """
        events = list(items)
        if not events:
            return []
        for attempt in range(3):
            try:
                with writing(self.engine) as conn:
                    return self._apply_events(conn, events)
            except IntegrityError:  # a concurrent writer stored one of these ids first
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _apply_events(self, conn: Connection, events: list[CallbackEvent]) -> list[Outcome]:
        # Before reading anything: a send of these msgids being recorded commits first (and
        # then this sees its messages), or waits for this and replays what it stores.
        lock_messages(conn, [e.msgid for e in events])
        received = self.now()
        keys = [e.dedup_key for e in events]
        seen: set[str] = set()
        for part in chunks(unique(keys)):
            seen.update(
                conn.scalars(select(s.events.c.event_id).where(s.events.c.event_id.in_(part)))
            )
        # The same body is the same event, whatever id it came with: X-Keda-Event-Id is not
        # covered by the signature, so a captured signed body replayed within the window
        # under a fresh id (or none) must have no second effect (a click counted twice).
        bodies = {(e.msgid, e.payload) for e in events}
        known: set[tuple[str, str]] = set()
        for part in chunks(sorted(bodies)):
            rows = conn.execute(
                select(s.events.c.msgid, s.events.c.payload).where(
                    s.events.c.msgid.in_({m for m, _ in part}),
                    s.events.c.payload.in_({p for _, p in part}),
                )
            )
            known.update((m, p) for m, p in rows if (m, p) in bodies)
        fresh: list[int] = []
        for i, key in enumerate(keys):
            body = (events[i].msgid, events[i].payload)
            if key not in seen and body not in known:
                seen.add(key)
                known.add(body)
                fresh.append(i)
        outcomes = [Outcome.DUPLICATE] * len(events)
        applied = self._apply(conn, [events[i].update(received) for i in fresh], source="callback")
        rows = []
        for i, outcome in zip(fresh, applied, strict=True):
            outcomes[i] = outcome
            e = events[i]
            rows.append(
                {
                    "event_id": keys[i],
                    "msgid": e.msgid,
                    "status": e.status,
                    "payload": e.payload,
                    "occurred_at": e.update(received).occurred_at,
                    "received_at": received,
                    "outcome": str(outcome),
                }
            )
        for part in chunks(rows):
            conn.execute(insert(s.events), list(part))
        return outcomes

    def apply_event(
        self,
        event: CallbackEvent | Mapping[str, Any],
        event_id: str | None = None,
        *,
        emitted_at: datetime | None = None,
    ) -> Outcome:
        """Apply one callback (a parsed event, or its JSON body as a dict) at most once.

        Args:
            event: the callback; a dict is validated strictly (raises EventError).
            event_id: the X-Keda-Event-Id header, when there was one.
            emitted_at: the X-Keda-Timestamp, when there was one.
        """
        if not isinstance(event, CallbackEvent):
            event = parse_event(dict(event), event_id=event_id, emitted_at=emitted_at)
        elif event_id is not None:
            event = replace(event, event_id=event_id)
        return self.apply_events([event])[0]
