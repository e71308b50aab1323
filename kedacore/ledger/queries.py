"""The ledger's read side: messages by msgid (one or 10,000), task, phone number; timelines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select

from kedacore.ledger import schema as s
from kedacore.ledger.engine import reading
from kedacore.ledger.records import LedgerEvent, LedgerMessage, LedgerTask, StatusLookup
from kedacore.ledger.state import Outcome

CHUNK = 500  # ids per IN (...) list: well under every database's parameter limit
MSG_COLS = [s.messages.c[name] for name in LedgerMessage.__dataclass_fields__]
T = TypeVar("T")


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def unique(items: Iterable[str]) -> list[str]:
    """Items in first-seen order, each once."""
    return list(dict.fromkeys(items))


class QueriesMixin:
    """Lookups of the Ledger, and the record of status-API answers."""

    engine: Any

    def now(self) -> datetime:
        raise NotImplementedError

    def message(self, msgid: str) -> LedgerMessage | None:
        """The message with this msgid, or None."""
        with reading(self.engine) as conn:
            row = conn.execute(select(*MSG_COLS).where(s.messages.c.msgid == msgid)).first()
        return LedgerMessage.from_row(row) if row is not None else None

    def messages_many(self, msgids: Iterable[str]) -> list[LedgerMessage]:
        """The known messages among ``msgids`` (any number), in input order, each once."""
        wanted = unique(msgids)
        found: dict[str, LedgerMessage] = {}
        with reading(self.engine) as conn:
            for part in chunks(wanted):
                query = select(*MSG_COLS).where(s.messages.c.msgid.in_(part))
                for row in conn.execute(query):
                    found[row.msgid] = LedgerMessage.from_row(row)
        return [found[m] for m in wanted if m in found]

    def task(self, task_id: str) -> LedgerTask | None:
        """The task with this id, or None."""
        cols = [s.tasks.c[name] for name in LedgerTask.__dataclass_fields__]
        with reading(self.engine) as conn:
            row = conn.execute(select(*cols).where(s.tasks.c.task_id == task_id)).first()
        return LedgerTask.from_row(row) if row is not None else None

    def task_messages(self, task_id: str) -> list[LedgerMessage]:
        """Every message of a task, in the order they were recorded."""
        return self._messages(s.messages.c.task_id == task_id)

    def messages_by_recipient(self, recipient: str, *, limit: int = 1000) -> list[LedgerMessage]:
        """Messages to one E.164 number, newest first."""
        return self._messages(s.messages.c.recipient == recipient, newest_first=True, limit=limit)

    def non_final_messages(
        self,
        *,
        limit: int | None = None,
        task_id: str | None = None,
        created_before: datetime | None = None,
    ) -> list[LedgerMessage]:
        """Messages still QUEUED or SENT (oldest first), the work of reconciliation."""
        conditions = [s.messages.c.status.in_(("QUEUED", "SENT"))]
        if task_id is not None:
            conditions.append(s.messages.c.task_id == task_id)
        if created_before is not None:
            conditions.append(s.messages.c.created_at < created_before)
        return self._messages(*conditions, limit=limit)

    def task_message_counts(self, task_ids: Iterable[str]) -> dict[str, int]:
        """How many messages the ledger holds for each task."""
        counts: dict[str, int] = {}
        with reading(self.engine) as conn:
            for part in chunks(unique(task_ids)):
                query = (
                    select(s.messages.c.task_id, func.count())
                    .where(s.messages.c.task_id.in_(part))
                    .group_by(s.messages.c.task_id)
                )
                counts.update({task: n for task, n in conn.execute(query)})
        return counts

    def _messages(
        self, *conditions: Any, newest_first: bool = False, limit: int | None = None
    ) -> list[LedgerMessage]:
        order = s.messages.c.created_at.desc() if newest_first else s.messages.c.created_at
        query = select(*MSG_COLS).where(*conditions).order_by(order, s.messages.c.msgid)
        if limit is not None:
            query = query.limit(limit)
        with reading(self.engine) as conn:
            return [LedgerMessage.from_row(row) for row in conn.execute(query)]

    def message_events(self, msgid: str) -> list[LedgerEvent]:
        """A message's callbacks in the order they arrived (its timeline)."""
        query = select(s.events).where(s.events.c.msgid == msgid).order_by(s.events.c.id)
        with reading(self.engine) as conn:
            return [LedgerEvent.from_row(row) for row in conn.execute(query)]

    def unknown_events(self, *, limit: int = 1000) -> list[LedgerEvent]:
        """Callbacks kept for msgids the ledger has not recorded (yet)."""
        query = (
            select(s.events)
            .where(s.events.c.outcome == Outcome.UNKNOWN)
            .order_by(s.events.c.id)
            .limit(limit)
        )
        with reading(self.engine) as conn:
            return [LedgerEvent.from_row(row) for row in conn.execute(query)]

    # -- status lookups ------------------------------------------------------------------

    def lookups(self, msgid: str) -> list[StatusLookup]:
        """The recorded status-API answers for a message, oldest first."""
        query = (
            select(s.status_lookups)
            .where(s.status_lookups.c.msgid == msgid)
            .order_by(s.status_lookups.c.id)
        )
        with reading(self.engine) as conn:
            return [StatusLookup.from_row(row) for row in conn.execute(query)]
