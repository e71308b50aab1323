"""Campaigns in the ledger: the plan is written before any request, so a resume sends once.

The plan is a list of batches (one future send request each: a country, a text, up to 1,000
recipients) with a unique ``clientRef``. An engine sends every batch still ``planned`` with
its ``clientRef`` and, in one transaction, records the task and marks the batch ``sent``. If it
dies between the request and that transaction, the batch is still ``planned``: sent again with
the same ``clientRef``, the service answers with the first send's response instead of sending
again (DESIGN.md, ``clientRef``), and recording it is idempotent.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from kedacore.ledger import rollup
from kedacore.ledger import schema as s
from kedacore.ledger.engine import lock_messages, reading, writing
from kedacore.ledger.queries import chunks
from kedacore.ledger.records import Campaign, CampaignBatch, PlannedBatch
from kedacore.money import to_micros
from kedacore.redaction import redact_text
from kedacore.types import SendResult

if TYPE_CHECKING:
    from datetime import datetime

CAMPAIGN_STATUSES = ("draft", "planned", "sending", "paused", "done", "cancelled")
BATCH_STATES = ("planned", "sent", "refused")


class CampaignsMixin:
    """Campaign and plan helpers of the Ledger (see the module docstring)."""

    engine: Any

    def now(self) -> datetime:
        raise NotImplementedError

    def _record_send(self, conn: Connection, result: SendResult, **kwargs: Any) -> int:
        raise NotImplementedError

    def _replay_orphans(
        self, conn: Connection, msgids: Sequence[str], deltas: rollup.Deltas
    ) -> None:
        raise NotImplementedError

    def create_campaign(
        self,
        name: str,
        *,
        template: str = "",
        sender: str | None = None,
        created_by: str | None = None,
        currency: str = "USD",
    ) -> int:
        """A new campaign in ``draft``; returns its id."""
        if not name.strip():
            raise ValueError(f"a campaign needs a name, got {name!r}")
        now = self.now()
        with writing(self.engine) as conn:
            result = conn.execute(
                insert(s.campaigns).values(
                    name=name.strip(),
                    template=template,
                    sender=sender,
                    created_at=now,
                    updated_at=now,
                    created_by=created_by,
                    status="draft",
                    currency=currency,
                )
            )
            return int(result.inserted_primary_key[0])

    def plan_campaign(
        self, campaign_id: int, batches: Iterable[PlannedBatch]
    ) -> list[CampaignBatch]:
        """Write a campaign's batches (each with a fresh unique clientRef) before any is sent."""
        planned = list(batches)
        now = self.now()
        with writing(self.engine) as conn:
            last = conn.scalar(
                select(func.max(s.campaign_batches.c.seq)).where(
                    s.campaign_batches.c.campaign_id == campaign_id
                )
            )
            first = (last or 0) + 1
            # Random, not derived from the id: a reset ledger must never reuse a clientRef
            # the service still remembers (it would answer with an old send's response).
            run = secrets.token_hex(6)
            rows = [
                {
                    "campaign_id": campaign_id,
                    "seq": seq,
                    "country": b.country.upper(),
                    "sender": b.sender,
                    "content": b.content,
                    "recipients": json.dumps(list(b.recipients)),
                    "recipient_count": len(b.recipients),
                    "client_ref": f"c{campaign_id}-{run}-{seq}",
                    "state": "planned",
                    "estimated_micros": b.estimated_micros,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for seq, b in enumerate(planned, start=first)
            ]
            if rows:
                conn.execute(insert(s.campaign_batches), rows)
            conn.execute(
                update(s.campaigns)
                .where(s.campaigns.c.id == campaign_id)
                .values(
                    recipients=s.campaigns.c.recipients + sum(r["recipient_count"] for r in rows),
                    batches=s.campaigns.c.batches + len(rows),
                    estimated_micros=s.campaigns.c.estimated_micros
                    + sum(b.estimated_micros for b in planned),
                    status="planned",
                    updated_at=now,
                )
            )
            query = _batches_query(campaign_id).where(s.campaign_batches.c.seq >= first)
            return [CampaignBatch.from_row(row) for row in conn.execute(query)]

    def campaign(self, campaign_id: int) -> Campaign | None:
        """The campaign with this id, or None."""
        with reading(self.engine) as conn:
            row = conn.execute(_campaigns_query().where(s.campaigns.c.id == campaign_id)).first()
        return Campaign.from_row(row) if row is not None else None

    def campaigns(self, *, limit: int = 200) -> list[Campaign]:
        """Campaigns, newest first."""
        query = _campaigns_query().order_by(s.campaigns.c.id.desc()).limit(limit)
        with reading(self.engine) as conn:
            return [Campaign.from_row(row) for row in conn.execute(query)]

    def campaign_batches(
        self, campaign_id: int, *, states: Sequence[str] | None = None
    ) -> list[CampaignBatch]:
        """A campaign's batches in plan order, optionally only those in ``states``."""
        query = _batches_query(campaign_id)
        if states is not None:
            query = query.where(s.campaign_batches.c.state.in_(list(states)))
        with reading(self.engine) as conn:
            return [CampaignBatch.from_row(row) for row in conn.execute(query)]

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
            for batch, result in todo:
                if result.task_id not in known_tasks:
                    known_tasks.add(result.task_id)
                    task_rows.append(_task_row(batch, result, now))
                message_rows.extend(
                    row
                    for row in _message_rows(batch, result, now)
                    if row["msgid"] not in known_msgids
                )
                known_msgids.update(m.msgid for m in result.messages)
            if task_rows:
                conn.execute(insert(s.tasks), task_rows)
            for part in chunks(message_rows):
                conn.execute(insert(s.messages), list(part))
            if message_rows:
                deltas: rollup.Deltas = {}  # the rollup is written once, at the end
                rollup.add_rows(conn, message_rows, now, into=deltas)
                # A callback can overtake the send's answer: apply what was stored for these.
                self._replay_orphans(conn, [row["msgid"] for row in message_rows], deltas)
                rollup.write_deltas(conn, deltas, now)
            conn.execute(
                update(s.campaign_batches)
                .where(s.campaign_batches.c.id == bindparam("b_id"))
                .values(
                    state="sent",
                    task_id=bindparam("b_task_id"),
                    debited_micros=bindparam("b_debited"),
                    error=None,
                    attempts=s.campaign_batches.c.attempts + 1,
                    updated_at=now,
                ),
                [
                    {
                        "b_id": batch.id,
                        "b_task_id": result.task_id,
                        "b_debited": to_micros(result.debited_amount),
                    }
                    for batch, result in todo
                ],
            )
            debited: dict[int, int] = {}
            for batch, result in todo:
                debited[batch.campaign_id] = debited.get(batch.campaign_id, 0) + to_micros(
                    result.debited_amount
                )
            for campaign_id, micros in debited.items():
                conn.execute(
                    update(s.campaigns)
                    .where(s.campaigns.c.id == campaign_id)
                    .values(debited_micros=s.campaigns.c.debited_micros + micros, updated_at=now)
                )
            return len(message_rows)

    def mark_batch_refused(self, batch_id: int, error: str) -> None:
        """Mark a batch refused for good (an invalid payload): it will not be sent again."""
        with writing(self.engine) as conn:
            _update_batch(conn, batch_id, self.now(), state="refused", error=redact_text(error))

    def note_batch_error(self, batch_id: int, error: str) -> None:
        """Note a passing failure (cap, balance, network); the batch stays planned."""
        with writing(self.engine) as conn:
            _update_batch(conn, batch_id, self.now(), error=redact_text(error))

    def set_campaign_status(
        self, campaign_id: int, status: str, *, error: str | None = None
    ) -> None:
        """Move a campaign to ``status`` (one of CAMPAIGN_STATUSES), with an optional reason."""
        if status not in CAMPAIGN_STATUSES:
            raise ValueError(f"campaign status must be one of {CAMPAIGN_STATUSES}, got {status!r}")
        with writing(self.engine) as conn:
            conn.execute(
                update(s.campaigns)
                .where(s.campaigns.c.id == campaign_id)
                .values(
                    status=status,
                    error=None if error is None else redact_text(error),  # no URL secrets
                    updated_at=self.now(),
                )
            )

    def campaign_status_counts(self, campaign_id: int) -> dict[str, int]:
        """How many of a campaign's recorded messages are in each status."""
        query = (
            select(s.messages.c.status, func.count())
            .where(s.messages.c.campaign_id == campaign_id)
            .group_by(s.messages.c.status)
        )
        with reading(self.engine) as conn:
            return {status: n for status, n in conn.execute(query)}

    def campaign_batch_counts(self, campaign_id: int) -> dict[str, dict[str, int]]:
        """A campaign's batches, recipients and money by batch state, in one grouped query."""
        b = s.campaign_batches.c
        query = (
            select(
                b.state,
                func.count(),
                func.coalesce(func.sum(b.recipient_count), 0),
                func.coalesce(func.sum(b.estimated_micros), 0),
                func.coalesce(func.sum(b.debited_micros), 0),
            )
            .where(b.campaign_id == campaign_id)
            .group_by(b.state)
        )
        with reading(self.engine) as conn:
            return {
                state: {
                    "batches": int(n),
                    "recipients": int(recipients),
                    "estimated_micros": int(estimated),
                    "debited_micros": int(debited),
                }
                for state, n, recipients, estimated, debited in conn.execute(query)
            }

    def remove_demo_data(self) -> int:
        """Delete every row marked ``demo`` (generated history); returns the messages removed."""
        demo_msgids = select(s.messages.c.msgid).where(s.messages.c.demo.is_(True))
        demo_campaigns = select(s.campaigns.c.id).where(s.campaigns.c.demo.is_(True))
        with writing(self.engine) as conn:
            conn.execute(delete(s.events).where(s.events.c.msgid.in_(demo_msgids)))
            conn.execute(delete(s.status_lookups).where(s.status_lookups.c.msgid.in_(demo_msgids)))
            removed = conn.execute(delete(s.messages).where(s.messages.c.demo.is_(True))).rowcount
            rollup.remove_demo(conn)
            conn.execute(delete(s.tasks).where(s.tasks.c.demo.is_(True)))
            conn.execute(
                delete(s.campaign_batches).where(
                    s.campaign_batches.c.campaign_id.in_(demo_campaigns)
                )
            )
            conn.execute(delete(s.campaigns).where(s.campaigns.c.demo.is_(True)))
        return int(removed)


def _campaigns_query() -> Any:
    return select(*(s.campaigns.c[name] for name in Campaign.__dataclass_fields__))


def _batches_query(campaign_id: int) -> Any:
    cols = [s.campaign_batches.c[name] for name in CampaignBatch.__dataclass_fields__]
    return (
        select(*cols)
        .where(s.campaign_batches.c.campaign_id == campaign_id)
        .order_by(s.campaign_batches.c.seq)
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


# What recording an answer needs of its batch: everything but the recipients (their JSON is
# the bulk of a row, and the answer lists them anyway).
_BATCH_FACTS = ("id", "campaign_id", "country", "sender", "content", "client_ref", "state")
_BATCH_FACTS += ("estimated_micros",)


def _batches_by_id(conn: Connection, ids: Sequence[int]) -> dict[int, Any]:
    cols = [s.campaign_batches.c[name] for name in _BATCH_FACTS]
    found: dict[int, Any] = {}
    for part in chunks(ids):
        query = select(*cols).where(s.campaign_batches.c.id.in_(list(part)))
        found.update((row.id, row) for row in conn.execute(query))
    return found


def _scalars_in(conn: Connection, column: Any, values: Sequence[Any]) -> list[Any]:
    found: list[Any] = []
    for part in chunks(values):
        found.extend(conn.scalars(select(column).where(column.in_(list(part)))))
    return found


def _task_row(batch: Any, result: SendResult, now: datetime) -> dict[str, Any]:
    """The tasks row Ledger.record_send writes for this batch's answer."""
    return {
        "task_id": result.task_id,
        "campaign_id": batch.campaign_id,
        "country": batch.country.upper(),
        "sender": batch.sender,
        "content": batch.content,
        "recipients": len(result.messages),
        "segments": result.segments,
        "debited_micros": to_micros(result.debited_amount),
        "currency": result.currency,
        "client_ref": batch.client_ref,
        "created_at": now,
        "day": now.date(),
    }


def _message_rows(batch: Any, result: SendResult, now: datetime) -> list[dict[str, Any]]:
    """The messages rows Ledger.record_send writes for this batch's answer (all QUEUED)."""
    from kedacore.ledger.core import split_micros  # core imports this module

    count = len(result.messages)
    if not count:
        return []
    estimates = split_micros(batch.estimated_micros, count)
    segments = result.segments // count if result.segments % count == 0 else None
    return [
        {
            "msgid": m.msgid,
            "task_id": result.task_id,
            "campaign_id": batch.campaign_id,
            "recipient": m.recipient,
            "country": batch.country.upper(),
            "sender": batch.sender,
            "status": "QUEUED",
            "segments": segments,
            "estimated_micros": estimate,
            "currency": result.currency,
            "created_at": now,
            "day": now.date(),
            "updated_at": now,
            "clicks": 0,
            "source": "send",
        }
        for m, estimate in zip(result.messages, estimates, strict=True)
    ]
