"""What became of each planned batch of a campaign: sent, refused, or not known yet.

``mark_batch_sent`` / ``mark_batches_sent`` record a batch's task and messages and mark it
``sent`` in one transaction; ``mark_batch_refused`` ends a batch refused for good;
``note_batch_error`` notes a passing failure (the batch stays ``planned``).

``attempted_at`` guards the resume against the 24 h memory of ``clientRef``: it is set on a
batch before its request goes out (``mark_batches_attempted``) and cleared when an answer shows
that nothing was sent (``clear_batch_attempts``). A batch still ``planned`` whose request went
out more than 23 h ago (the answer was lost) may have been accepted under a ``clientRef`` the
service no longer remembers: sending it again could send it twice. ``hold_uncertain_batches``
moves such batches to ``uncertain`` with a reason a page can show, and only
``release_uncertain_batches`` (someone checked the Status page) lets them be sent again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, insert, select, update

from kedacore.api.types import SendResult
from kedacore.ledger import rollup, rows
from kedacore.ledger import schema as s
from kedacore.ledger.bulk import execute_many
from kedacore.ledger.engine import lock_messages, reading, writing
from kedacore.ledger.queries import chunks
from kedacore.ledger.records import CampaignBatch
from kedacore.ledger.rows import Send, estimates, task_row
from kedacore.money import recurring_micros, to_micros
from kedacore.redaction import redact_text

UNCERTAIN = "uncertain"
# The service remembers a clientRef for 24 h; an hour's margin for clocks and slow requests.
CLIENT_REF_SAFE_AGE = timedelta(hours=23)


def uncertain_reason(attempted_at: datetime) -> str:
    """Why a batch is held: what a page shows beside it."""
    when = attempted_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Sent status unknown: the request went out at {when} and its answer was lost more "
        "than 23 h ago, longer than KedaSMS remembers its clientRef, so it is not resent "
        "automatically. Check its recipients on the Status page before resending it."
    )


class BatchesMixin:
    """Batch outcomes and attempts of the Ledger (see the module docstring)."""

    engine: Any

    def now(self) -> datetime:
        raise NotImplementedError

    def _record_send(self, conn: Connection, result: SendResult, **kwargs: Any) -> int:
        raise NotImplementedError

    def _replay_orphans(
        self, conn: Connection, msgids: Sequence[str], deltas: rollup.Deltas
    ) -> None:
        raise NotImplementedError

    if TYPE_CHECKING:  # CampaignsMixin's (a stub here would shadow it in the Ledger)

        def campaign_batches(
            self, campaign_id: int, *, states: Sequence[str] | None = None
        ) -> list[CampaignBatch]: ...

    def planned_batches(
        self,
        campaign_id: int,
        *,
        after_seq: int = 0,
        limit: int = 1000,
        due_by: datetime | None = None,
    ) -> list[CampaignBatch]:
        """The next ``limit`` batches still ``planned``, in plan order, past ``after_seq``.

        What a run reads a page at a time (kedacore.campaign.run.Pending): a campaign of
        100,000 personalised recipients is 100,000 batches, which loaded at once would hold
        every text and number in memory for the whole run. ``due_by``: only those whose
        ``not_before`` (a schedule, migration 0006) is unset or not after it.
        """
        params: dict[str, Any] = {"campaign_id": campaign_id, "after_seq": after_seq}
        params["limit"] = limit
        query = _PLANNED_PAGE
        if due_by is not None:
            query, params["due_by"] = _DUE_PAGE, due_by
        with reading(self.engine) as conn:
            result = conn.execute(query, params)
            return CampaignBatch.from_result(result)

    def mark_batch_sent(self, batch_id: int, result: SendResult) -> int:
        """Record a batch's send (task + messages) and mark it sent, in one transaction.

        Idempotent: a batch already marked sent is left alone. Returns the messages recorded.
        """
        with writing(self.engine) as conn:
            batch = _batch(conn, batch_id)
            if batch.state == "sent":
                return 0
            recorded = self._record_send(
                conn,
                result,
                country=batch.country,
                sender=batch.sender,
                content=batch.content,
                campaign_id=batch.campaign_id,
                client_ref=batch.client_ref,
                estimated_micros=batch.estimated_micros,
                created_at=None,
            )
            debited = to_micros(result.debited_amount)
            _update_batch(
                conn,
                batch_id,
                self.now(),
                state="sent",
                task_id=result.task_id,
                debited_micros=debited,
                error=None,
            )
            conn.execute(
                update(s.campaigns)
                .where(s.campaigns.c.id == batch.campaign_id)
                .values(
                    debited_micros=s.campaigns.c.debited_micros + debited,
                    updated_at=self.now(),
                )
            )
            return recorded

    def mark_batches_sent(self, results: Sequence[tuple[int, SendResult]]) -> int:
        """Record many batches' sends and mark them sent, all in one transaction.

        The same rows as :meth:`mark_batch_sent` on each, but a few statements per group
        instead of several per batch: a campaign engine writes its answers in groups while
        the next requests are in flight. Batches already sent are left alone; a batch given
        twice counts once. Returns the messages newly recorded.
        """
        if not results:
            return 0
        answers = dict(results)  # a batch given twice is recorded once (its last answer)
        now = self.now()
        with writing(self.engine) as conn:
            # Before reading: callbacks for these msgids wait for this transaction (PostgreSQL;
            # see lock_messages), and so does another writer of the same answers.
            lock_messages(conn, [m.msgid for r in answers.values() for m in r.messages])
            batches = _batches_by_id(conn, list(answers))
            missing = set(answers) - set(batches)
            if missing:
                raise KeyError(f"no campaign batch {sorted(missing)[0]!r}")
            todo = [(batches[b], answers[b]) for b in answers if batches[b].state != "sent"]
            if not todo:
                return 0
            known_tasks = set(_scalars_in(conn, s.tasks.c.task_id, [r.task_id for _, r in todo]))
            msgids = [m.msgid for _, r in todo for m in r.messages]
            known_msgids = set(_scalars_in(conn, s.messages.c.msgid, msgids))
            task_rows: list[dict[str, Any]] = []
            message_rows: list[dict[str, Any]] = []
            marks: list[tuple[int, str, int]] = []  # (batch id, task id, debited micro-units)
            debited: dict[int, int] = {}  # by campaign
            for batch, result in todo:
                send = Send(
                    batch.country, batch.sender, batch.content, batch.campaign_id, batch.client_ref
                )
                micros = recurring_micros(result.debited_amount)
                if result.task_id not in known_tasks:
                    known_tasks.add(result.task_id)
                    task_rows.append(task_row(result, send, now, micros))
                message_rows.extend(
                    row
                    for row in rows.message_rows(
                        result, send, estimates(result, batch.estimated_micros), now, now
                    )
                    if row["msgid"] not in known_msgids
                )
                known_msgids.update(m.msgid for m in result.messages)
                marks.append((batch.id, result.task_id, micros))
                debited[batch.campaign_id] = debited.get(batch.campaign_id, 0) + micros
            # The rows' own columns go to the driver as they are; the times once (bulk.py).
            execute_many(
                conn,
                _INSERT_TASKS,
                _TASK_KEYS,
                list(map(_task_values, task_rows)),
                now=now,
                day=now.date(),
            )
            message_values = list(map(_message_values, message_rows))
            execute_many(
                conn, _INSERT_MESSAGES, _MESSAGE_KEYS, message_values, now=now, day=now.date()
            )
            if message_rows:
                deltas: rollup.Deltas = {}  # the rollup is written once, at the end
                rollup.add_rows(conn, message_rows, now, into=deltas)
                # A callback can overtake the send's answer: apply what was stored for these.
                self._replay_orphans(conn, [row["msgid"] for row in message_rows], deltas)
                rollup.write_deltas(conn, deltas, now)
            execute_many(conn, _MARK_SENT, _MARK_KEYS, marks, now=now)
            for campaign_id, micros in debited.items():
                conn.execute(_ADD_DEBITED, {"c_id": campaign_id, "c_micros": micros, "now": now})
            return len(message_rows)

    def mark_batch_refused(self, batch_id: int, error: str) -> None:
        """Mark a batch refused for good (an invalid payload): it will not be sent again."""
        with writing(self.engine) as conn:
            _update_batch(conn, batch_id, self.now(), state="refused", error=redact_text(error))

    def note_batch_error(self, batch_id: int, error: str) -> None:
        """Note a passing failure (cap, balance, network); the batch stays planned."""
        with writing(self.engine) as conn:
            _update_batch(conn, batch_id, self.now(), error=redact_text(error))

    def mark_batches_attempted(
        self, batch_ids: Sequence[int], *, at: datetime | None = None
    ) -> None:
        """Note that these batches' requests are about to go out (call it before sending).

        Only planned batches without an attempt are changed: ``attempted_at`` keeps the first
        request whose fate is unknown, which is the one the 24 h of ``clientRef`` count from.
        """
        when = at or self.now()
        c = s.campaign_batches.c
        with writing(self.engine) as conn:
            for part in chunks(list(batch_ids)):
                conn.execute(
                    update(s.campaign_batches)
                    .where(c.id.in_(list(part)), c.state == "planned", c.attempted_at.is_(None))
                    .values(attempted_at=when, updated_at=when)
                )

    def clear_batch_attempts(self, batch_ids: Sequence[int]) -> None:
        """Forget the attempts of planned batches whose requests are known to have sent
        nothing (never sent, or refused by a cap or the balance)."""
        ids = list(batch_ids)
        if not ids:
            return
        c = s.campaign_batches.c
        with writing(self.engine) as conn:
            for part in chunks(ids):
                conn.execute(
                    update(s.campaign_batches)
                    .where(c.id.in_(list(part)), c.state == "planned")
                    .values(attempted_at=None)
                )

    def hold_uncertain_batches(self, campaign_id: int) -> list[CampaignBatch]:
        """Move the planned batches whose request went out more than 23 h ago to
        ``uncertain`` (with the reason); returns them. A resume calls it first."""
        now = self.now()
        c = s.campaign_batches.c
        with writing(self.engine) as conn:
            stale = conn.execute(
                select(c.id, c.attempted_at).where(
                    c.campaign_id == campaign_id,
                    c.state == "planned",
                    c.attempted_at < now - CLIENT_REF_SAFE_AGE,
                )
            ).all()
            for row in stale:
                conn.execute(
                    update(s.campaign_batches)
                    .where(c.id == row.id)
                    .values(
                        state=UNCERTAIN,
                        error=uncertain_reason(row.attempted_at),
                        updated_at=now,
                    )
                )
            ids = [row.id for row in stale]
        return [b for b in self.campaign_batches(campaign_id) if b.id in ids] if ids else []

    def release_uncertain_batches(
        self, campaign_id: int, batch_ids: Sequence[int] | None = None
    ) -> int:
        """Let uncertain batches be sent again (someone checked that they were not sent):
        back to ``planned`` without an attempt. Returns how many."""
        c = s.campaign_batches.c
        query = (
            update(s.campaign_batches)
            .where(c.campaign_id == campaign_id, c.state == UNCERTAIN)
            .values(state="planned", attempted_at=None, error=None, updated_at=self.now())
        )
        if batch_ids is not None:
            query = query.where(c.id.in_(list(batch_ids)))
        with writing(self.engine) as conn:
            return int(conn.execute(query).rowcount)


# mark_batches_sent's writes, in one executemany each (kedacore.ledger.bulk): the rows of
# kedacore.ledger.rows without their times, which are the same for the whole group.
_TASK_KEYS = ("task_id", "campaign_id", "country", "sender", "content", "recipients")
_TASK_KEYS += ("segments", "debited_micros", "currency", "client_ref")
_INSERT_TASKS = insert(s.tasks).values(
    created_at=bindparam("now"), day=bindparam("day"), demo=False
)
_task_values = itemgetter(*_TASK_KEYS)
_MESSAGE_KEYS = ("msgid", "task_id", "campaign_id", "recipient", "country", "sender", "status")
_MESSAGE_KEYS += ("segments", "estimated_micros", "currency", "clicks", "source")
_INSERT_MESSAGES = insert(s.messages).values(
    created_at=bindparam("now"), updated_at=bindparam("now"), day=bindparam("day"), demo=False
)
_message_values = itemgetter(*_MESSAGE_KEYS)
_MARK_KEYS = ("b_id", "b_task_id", "b_debited")
_MARK_SENT = (
    update(s.campaign_batches)
    .where(s.campaign_batches.c.id == bindparam("b_id"))
    .values(
        state="sent",
        task_id=bindparam("b_task_id"),
        debited_micros=bindparam("b_debited"),
        error=None,
        attempts=s.campaign_batches.c.attempts + 1,
        updated_at=bindparam("now"),
    )
)

_ADD_DEBITED = (
    update(s.campaigns)
    .where(s.campaigns.c.id == bindparam("c_id"))
    .values(
        debited_micros=s.campaigns.c.debited_micros + bindparam("c_micros"),
        updated_at=bindparam("now", type_=s.UTCDateTime()),
    )
)


def _batch(conn: Connection, batch_id: int) -> CampaignBatch:
    cols = [s.campaign_batches.c[name] for name in CampaignBatch.__dataclass_fields__]
    row = conn.execute(select(*cols).where(s.campaign_batches.c.id == batch_id)).first()
    if row is None:
        raise KeyError(f"no campaign batch {batch_id!r}")
    return CampaignBatch.from_row(row)


def _update_batch(conn: Connection, batch_id: int, now: datetime, **values: Any) -> None:
    result = conn.execute(
        update(s.campaign_batches)
        .where(s.campaign_batches.c.id == batch_id)
        .values(attempts=s.campaign_batches.c.attempts + 1, updated_at=now, **values)
    )
    if result.rowcount == 0:
        raise KeyError(f"no campaign batch {batch_id!r}")


# planned_batches: (campaign_id, seq) is the plan's unique index; built once.
_PLANNED_PAGE = (
    select(*(s.campaign_batches.c[name] for name in CampaignBatch.__dataclass_fields__))
    .where(
        s.campaign_batches.c.campaign_id == bindparam("campaign_id"),
        s.campaign_batches.c.seq > bindparam("after_seq"),
        s.campaign_batches.c.state == "planned",
    )
    .order_by(s.campaign_batches.c.seq)
    .limit(bindparam("limit"))
)
# The same, of the batches due by then (a scheduled plan is in time order: a prefix).
_DUE_PAGE = _PLANNED_PAGE.where(
    s.campaign_batches.c.not_before.is_(None)
    | (s.campaign_batches.c.not_before <= bindparam("due_by", type_=s.UTCDateTime))
)

# What recording an answer needs of its batch: everything but the recipients (their JSON is
# the bulk of a row, and the answer lists them anyway).
_BATCH_FACTS = ("id", "campaign_id", "country", "sender", "content", "client_ref", "state")
_BATCH_FACTS += ("estimated_micros",)
# Built once: building a SELECT costs more than running it on a group of answers.
_FACTS_OF = select(*(s.campaign_batches.c[name] for name in _BATCH_FACTS)).where(
    s.campaign_batches.c.id.in_(bindparam("ids", expanding=True))
)
_KNOWN = {
    column: select(column).where(column.in_(bindparam("values", expanding=True)))
    for column in (s.tasks.c.task_id, s.messages.c.msgid)
}


def _batches_by_id(conn: Connection, ids: Sequence[int]) -> dict[int, Any]:
    found: dict[int, Any] = {}
    for part in chunks(ids):
        found.update((row.id, row) for row in conn.execute(_FACTS_OF, {"ids": list(part)}))
    return found


def _scalars_in(conn: Connection, column: Any, values: Sequence[Any]) -> list[Any]:
    found: list[Any] = []
    for part in chunks(values):
        found.extend(conn.scalars(_KNOWN[column], {"values": list(part)}))
    return found
