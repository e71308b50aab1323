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
import re
import secrets
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from kedacore.ledger import rollup
from kedacore.ledger import schema as s
from kedacore.ledger.bulk import execute_many
from kedacore.ledger.campaign_snapshot import (
    ACTIVE_STATUSES,
    CampaignSnapshot,
    label,
    numbers,
    read_snapshot,
)
from kedacore.ledger.engine import reading, writing
from kedacore.ledger.records import Campaign, CampaignBatch, PlannedBatch
from kedacore.redaction import redact_text

if TYPE_CHECKING:
    from datetime import datetime

# pausing: a pause was asked for while a run sends it; the run makes it paused (engine.stop).
# awaiting: planned, over the approval threshold, nothing sent until another member approves
# it (then planned, and started) or rejects it (rejected, for good) — kedacore.ledger.approvals.
# scheduled: planned, and what is left goes later (campaign_batches.not_before; migration 0006).
CAMPAIGN_STATUSES = (
    "draft", "planned", "awaiting", "sending", "pausing", "paused", "done", "cancelled",
    "rejected", "scheduled",
)  # fmt: skip
# No run may move these to sending (mark_campaign_sending): a pause asked for, waiting for
# approval, rejected, cancelled.
NOT_SENDABLE = ("pausing", "awaiting", "rejected", "cancelled")
# uncertain: the request went out more than 23 h ago and its answer was lost (batches.py)
BATCH_STATES = ("planned", "sent", "refused", "uncertain")


class CampaignsMixin:
    """Campaign and plan helpers of the Ledger (see the module docstring)."""

    engine: Any

    def now(self) -> datetime:
        raise NotImplementedError

    def create_campaign(
        self,
        name: str,
        *,
        template: str = "",
        sender: str | None = None,
        created_by: str | None = None,
        currency: str = "USD",
        options: dict[str, Any] | None = None,
        list_id: int | None = None,
    ) -> int:
        """A new campaign in ``draft``; returns its id. ``options``: its send options (JSON
        in ``campaigns.options``), read by whichever process or machine runs it. ``list_id``:
        the contact list it goes to (None: a file)."""
        if not name.strip():
            raise ValueError(f"a campaign needs a name, got {name!r}")
        now = self.now()
        with writing(self.engine) as conn:
            result = conn.execute(
                insert(s.campaigns).values(
                    **_draft_values(name.strip(), template, sender, currency, created_by, options),
                    created_at=now,
                    updated_at=now,
                    list_id=list_id,
                )
            )
            return int(result.inserted_primary_key[0])

    def campaign_options(self, campaign_id: int) -> dict[str, Any] | None:
        """The campaign's send options as kept in the ledger; None when none were kept (a
        campaign planned before they were, or no such campaign)."""
        query = select(s.campaigns.c.options).where(s.campaigns.c.id == campaign_id)
        with reading(self.engine) as conn:
            raw = conn.scalar(query)
        if not raw:
            return None
        try:
            found = json.loads(raw)
        except ValueError:
            return None
        return found if isinstance(found, dict) else None

    def set_campaign_options(self, campaign_id: int, options: dict[str, Any]) -> None:
        """Keep (replace) the campaign's send options."""
        with writing(self.engine) as conn:
            conn.execute(
                update(s.campaigns)
                .where(s.campaigns.c.id == campaign_id)
                .values(options=json.dumps(options, sort_keys=True))
            )

    def plan_campaign(
        self, campaign_id: int, batches: Iterable[PlannedBatch], *, returned: bool = True
    ) -> list[CampaignBatch]:
        """Write a campaign's batches (each with a fresh unique clientRef) before any is sent.

        ``returned=False``: return nothing (a 100,000-recipient plan's batches as objects are
        tens of MB the engine, which reads them back page by page, has no use for)."""
        planned = list(batches)
        now = self.now()
        with writing(self.engine) as conn:
            return _insert_plan(conn, campaign_id, planned, now, returned=returned)

    # -- schedules (migration 0006; kedacore.campaign.schedule) --------------------------------

    def set_campaign_schedule(
        self,
        campaign_id: int,
        scheduled_at: datetime | None,
        schedule: dict[str, Any] | None,
        *,
        status: str | None = None,
    ) -> None:
        """Keep when the campaign's first part goes and its schedule (JSON); ``status``
        ("scheduled" or "planned") moves it too, unless it is cancelled, held or sent."""
        values: dict[str, Any] = {
            "scheduled_at": scheduled_at,
            "schedule": None if schedule is None else json.dumps(schedule, sort_keys=True),
            "updated_at": self.now(),
        }
        c = s.campaigns.c
        with writing(self.engine) as conn:
            conn.execute(update(s.campaigns).where(c.id == campaign_id).values(**values))
            if status is not None:
                conn.execute(
                    update(s.campaigns)
                    .where(c.id == campaign_id, c.status.in_(["planned", "scheduled"]))
                    .values(status=status)
                )

    def campaign_schedule(self, campaign_id: int) -> dict[str, Any] | None:
        """The schedule the campaign was planned with (JSON decoded), or None (at once)."""
        query = select(s.campaigns.c.schedule).where(s.campaigns.c.id == campaign_id)
        with reading(self.engine) as conn:
            raw = conn.scalar(query)
        try:
            found = json.loads(raw) if raw else None
        except ValueError:
            return None
        return found if isinstance(found, dict) else None

    def planned_parts(
        self, campaign_id: int
    ) -> tuple[list[tuple[datetime | None, int, int]], bool]:
        """The planned batches by their time — (``not_before``, recipients, requests), earliest
        first, None (at once) before the rest — and whether any planned one was tried already:
        what a scheduled campaign's view shows, in two grouped reads, not every batch."""
        b = s.campaign_batches.c
        planned = (b.campaign_id == campaign_id, b.state == "planned")
        with reading(self.engine) as conn:
            rows = conn.execute(
                select(b.not_before, func.sum(b.recipient_count), func.count())
                .where(*planned)
                .group_by(b.not_before)
            ).all()
            tried = conn.scalar(select(b.id).where(*planned, b.attempted_at.is_not(None)).limit(1))
        parts = [(when, int(n or 0), int(k)) for when, n, k in rows]
        parts.sort(key=lambda p: (p[0] is not None, p[0] or datetime.min))
        return parts, tried is not None

    def next_part_at(self, campaign_id: int) -> tuple[int, datetime | None]:
        """(planned batches due now, the earliest ``not_before`` still ahead, or None)."""
        now = self.now()
        b = s.campaign_batches.c
        planned = [b.campaign_id == campaign_id, b.state == "planned"]
        due = (b.not_before.is_(None)) | (b.not_before <= now)
        with reading(self.engine) as conn:
            count = conn.scalar(select(func.count()).where(*planned, due)) or 0
            nxt = conn.scalar(select(func.min(b.not_before)).where(*planned, b.not_before > now))
        return int(count), nxt

    def scheduled_campaigns(self) -> list[int]:
        """The campaigns waiting for a later part (what a runner looks at when it starts:
        after a restart the times are in the ledger)."""
        c = s.campaigns.c
        query = select(c.id).where(c.status == "scheduled").order_by(c.id)
        with reading(self.engine) as conn:
            return [int(i) for i in conn.scalars(query)]

    def due_scheduled_campaigns(self) -> list[int]:
        """Scheduled campaigns with a planned batch due now."""
        now = self.now()
        b = s.campaign_batches.c
        c = s.campaigns.c
        due = (
            select(b.campaign_id)
            .where(b.state == "planned", (b.not_before.is_(None)) | (b.not_before <= now))
            .distinct()
        )
        query = select(c.id).where(c.status == "scheduled", c.id.in_(due)).order_by(c.id)
        with reading(self.engine) as conn:
            return [int(i) for i in conn.scalars(query)]

    def replan_campaign(self, campaign_id: int, batches: Iterable[PlannedBatch]) -> int:
        """Replace a scheduled campaign's plan (new times, fresh clientRefs), in one
        transaction; only while nothing of it was sent or tried. Returns the batches planned.
        ValueError when it started (or is not planned/scheduled)."""
        planned = list(batches)
        now = self.now()
        c = s.campaigns.c
        b = s.campaign_batches.c
        with writing(self.engine) as conn:
            status = conn.scalar(select(c.status).where(c.id == campaign_id))
            if status not in ("planned", "scheduled"):
                raise ValueError(f"campaign {campaign_id} is {status}: its time cannot change")
            started = conn.scalar(
                select(func.count()).where(
                    b.campaign_id == campaign_id,
                    (b.state != "planned") | b.attempted_at.is_not(None),
                )
            )
            if started:
                raise ValueError(f"campaign {campaign_id} has started: its time cannot change")
            conn.execute(delete(s.campaign_batches).where(b.campaign_id == campaign_id))
            conn.execute(
                update(s.campaigns)
                .where(c.id == campaign_id)
                .values(recipients=0, batches=0, estimated_micros=0)
            )
            _insert_plan(conn, campaign_id, planned, now, returned=False)
            conn.execute(update(s.campaigns).where(c.id == campaign_id).values(status=status))
        return len(planned)

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
            return CampaignBatch.from_result(conn.execute(query))

    def set_campaign_status(
        self,
        campaign_id: int,
        status: str,
        *,
        error: str | None = None,
        unless: tuple[str, ...] = (),
    ) -> bool:
        """Move a campaign to ``status`` (one of CAMPAIGN_STATUSES), with an optional reason;
        not when it is in one of ``unless`` now (the UPDATE itself checks: a run that ends
        never overwrites a ``cancelled`` said meanwhile). Returns whether it moved."""
        if status not in CAMPAIGN_STATUSES:
            raise ValueError(f"campaign status must be one of {CAMPAIGN_STATUSES}, got {status!r}")
        c = s.campaigns.c
        where = [c.id == campaign_id] + ([c.status.not_in(unless)] if unless else [])
        with writing(self.engine) as conn:
            moved = conn.execute(
                update(s.campaigns)
                .where(*where)
                .values(
                    status=status,
                    error=None if error is None else redact_text(error),  # no URL secrets
                    updated_at=self.now(),
                )
            )
            return bool(moved.rowcount)

    def campaign_status(self, campaign_id: int) -> str | None:
        """The campaign's status alone (what a run polls to hear a pause), or None."""
        query = select(s.campaigns.c.status).where(s.campaigns.c.id == campaign_id)
        with reading(self.engine) as conn:
            return conn.scalar(query)

    def mark_campaign_sending(self, campaign_id: int) -> bool:
        """A run starts sending: ``sending``. False — and nothing changes — when a pause was
        asked for meanwhile, or the campaign waits for approval, was rejected or cancelled:
        the UPDATE itself refuses them, whatever a run checked before."""
        return self._move(campaign_id, "sending", None, exclude=NOT_SENDABLE)

    def request_pause(self, campaign_id: int) -> bool:
        """Ask the run sending this campaign to pause (``pausing``); False if it is not being
        sent. Kept in the ledger, so that a run hears it whatever process it is in."""
        return self._move(campaign_id, "pausing", None, only=("planned", "sending"))

    def pause_campaign(self, campaign_id: int, reason: str) -> bool:
        """Pause a campaign that no run here sends (interrupted, not started, or a pause left
        half-done): ``paused`` with ``reason``; False if it is not sending, planned or pausing."""
        return self._move(campaign_id, "paused", reason, only=("planned", "sending", "pausing"))

    def settle_stale_pause(self, campaign_id: int) -> None:
        """A run claims the campaign: a ``pausing`` left by a run that is gone is ``paused``."""
        self._move(campaign_id, "paused", None, only=("pausing",), keep_error=True)

    def _move(
        self,
        campaign_id: int,
        status: str,
        error: str | None,
        *,
        only: Sequence[str] = (),
        exclude: Sequence[str] = (),
        keep_error: bool = False,
    ) -> bool:
        c = s.campaigns.c
        query = update(s.campaigns).where(c.id == campaign_id)
        if only:
            query = query.where(c.status.in_(list(only)))
        if exclude:
            query = query.where(c.status.not_in(list(exclude)))
        values: dict[str, Any] = {"status": status, "updated_at": self.now()}
        if not keep_error:
            values["error"] = None if error is None else redact_text(error)
        with writing(self.engine) as conn:
            return conn.execute(query.values(**values)).rowcount > 0

    def campaign_outline(self, campaign_id: int) -> tuple[dict[str, int], str | None]:
        """What a campaign sends where: recipients by country (most first) and the first
        request's text (None without a plan) — what an approver is shown."""
        with reading(self.engine) as conn:
            return outline(conn, campaign_id)

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

    def campaign_snapshot(
        self,
        *,
        limit: int = 100,
        include: Iterable[int] = (),
        messages_of: int | None = None,
        messages_limit: int | None = 500,
        money: bool = True,
    ) -> CampaignSnapshot:
        """The newest ``limit`` campaigns (and those of ``include``) with their numbers, batch
        counts, message counts and money, and the first ``messages_limit`` messages of
        ``messages_of`` (``NEWEST``: the newest campaign's) — all in one transaction
        (kedacore.ledger.campaign_snapshot)."""
        with reading(self.engine) as conn:
            return read_snapshot(
                conn,
                self.now(),
                limit=limit,
                include=include,
                messages_of=messages_of,
                messages_limit=messages_limit,
                money=money,
            )

    def active_campaigns(self, *, limit: int = 5) -> CampaignSnapshot:
        """The newest real campaigns still to finish (sending, pausing, paused, not started),
        with their batch counts: what every page shows in its sidebar."""
        with reading(self.engine) as conn:
            return read_snapshot(
                conn, self.now(), limit=limit, statuses=ACTIVE_STATUSES, demo=False, money=False
            )

    def campaign_label(self, campaign_id: int) -> str | None:
        """``#3 Spring sale`` (``Demo #3 …`` for demo history): the campaign as pages name it,
        numbered within its kind; None if there is no such campaign."""
        query = select(s.campaigns.c.name).where(s.campaigns.c.id == campaign_id)
        with reading(self.engine) as conn:
            name = conn.scalar(query)
            kind = numbers(conn).get(campaign_id) if name is not None else None
        if kind is None:
            return None
        return label(kind[0], kind[1], name)

    def count_active_campaigns(self) -> int:
        """How many real campaigns are still to finish (all of them, not only the newest)."""
        c = s.campaigns.c
        query = select(func.count()).where(c.status.in_(ACTIVE_STATUSES), c.demo.is_(False))
        with reading(self.engine) as conn:
            return int(conn.scalar(query) or 0)

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


def _draft_values(
    name: str,
    template: str,
    sender: str | None,
    currency: str,
    created_by: str | None,
    options: dict[str, Any] | None,
) -> dict[str, Any]:
    """A new campaign's row, as a draft (create_campaign, and a resend's campaign)."""
    return {
        "name": name,
        "template": template,
        "sender": sender,
        "created_by": created_by,
        "status": "draft",
        "currency": currency,
        "options": None if options is None else json.dumps(options, sort_keys=True),
    }


def outline(conn: Connection, campaign_id: int) -> tuple[dict[str, int], str | None]:
    """CampaignsMixin.campaign_outline in the transaction of ``conn``."""
    b = s.campaign_batches.c
    total = func.sum(b.recipient_count)
    countries = {
        country: int(n)
        for country, n in conn.execute(
            select(b.country, total)
            .where(b.campaign_id == campaign_id)
            .group_by(b.country)
            .order_by(total.desc(), b.country)
        )
    }
    first = conn.execute(
        select(b.content).where(b.campaign_id == campaign_id).order_by(b.seq).limit(1)
    ).scalar()
    return countries, first


def _campaigns_query() -> Any:
    return select(*(s.campaigns.c[name] for name in Campaign.__dataclass_fields__))


def _batches_query(campaign_id: int) -> Any:
    cols = [s.campaign_batches.c[name] for name in CampaignBatch.__dataclass_fields__]
    return (
        select(*cols)
        .where(s.campaign_batches.c.campaign_id == campaign_id)
        .order_by(s.campaign_batches.c.seq)
    )


# A plan's batches: one executemany of plain values (kedacore.ledger.bulk), the time once.
_PLAN_COLUMNS = ("campaign_id", "seq", "country", "sender", "content", "recipients")
_PLAN_COLUMNS += ("recipient_count", "client_ref", "estimated_micros")
_INSERT_PLANNED = insert(s.campaign_batches).values(
    state="planned", attempts=0, created_at=bindparam("now"), updated_at=bindparam("now")
)


def _insert_plan(
    conn: Connection,
    campaign_id: int,
    planned: list[PlannedBatch],
    now: datetime,
    *,
    returned: bool,
) -> list[CampaignBatch]:
    """plan_campaign's writes, in ``conn``'s transaction."""
    last = conn.scalar(
        select(func.max(s.campaign_batches.c.seq)).where(
            s.campaign_batches.c.campaign_id == campaign_id
        )
    )
    first = (last or 0) + 1
    # Random, not derived from the id: a reset ledger must never reuse a clientRef
    # the service still remembers (it would answer with an old send's response).
    run = secrets.token_hex(6)
    seqs = range(first, first + len(planned))
    refs = [f"c{campaign_id}-{run}-{seq}" for seq in seqs]
    rows = _plan_rows(campaign_id, planned, seqs, refs)
    execute_many(conn, _INSERT_PLANNED, _PLAN_COLUMNS, rows, now=now)
    _stamp_not_before(conn, campaign_id, planned, first)
    conn.execute(
        update(s.campaigns)
        .where(s.campaigns.c.id == campaign_id)
        .values(
            recipients=s.campaigns.c.recipients + sum(len(b.recipients) for b in planned),
            batches=s.campaigns.c.batches + len(planned),
            estimated_micros=s.campaigns.c.estimated_micros
            + sum(b.estimated_micros for b in planned),
            status="planned",
            updated_at=now,
        )
    )
    if not returned:
        return []
    b = s.campaign_batches.c
    query = select(b.seq, b.id).where(b.campaign_id == campaign_id, b.seq >= first)
    ids = {seq: batch_id for seq, batch_id in conn.execute(query)} if planned else {}

    # What was written, not read back: 10,000 rows decoded from JSON cost more than the
    # writing (docs/ledger.md, "Campaigns: resuming exactly once").
    return [
        CampaignBatch(
            ids[seq],
            campaign_id,
            seq,
            pb.country.upper(),
            pb.sender,
            pb.content,
            tuple(pb.recipients),
            ref,
            "planned",
            None,
            pb.estimated_micros,
            None,
            0,
            None,
        )
        for seq, pb, ref in zip(seqs, planned, refs, strict=True)
    ]


def _stamp_not_before(
    conn: Connection, campaign_id: int, planned: Sequence[PlannedBatch], first: int
) -> None:
    """A scheduled plan's ``not_before``: one UPDATE per run of equal times in seq order (a
    scheduled plan comes earliest first: kedacore.campaign.schedule.schedule_plan)."""
    b = s.campaign_batches.c
    start = 0
    for end in range(1, len(planned) + 1):
        if end < len(planned) and planned[end].not_before == planned[start].not_before:
            continue
        when = planned[start].not_before
        if when is not None:
            conn.execute(
                update(s.campaign_batches)
                .where(
                    b.campaign_id == campaign_id,
                    b.seq >= first + start,
                    b.seq < first + end,
                )
                .values(not_before=when)
            )
        start = end


def _plan_rows(
    campaign_id: int, planned: Sequence[PlannedBatch], seqs: Iterable[int], refs: Sequence[str]
) -> list[tuple[Any, ...]]:
    """The campaign_batches rows of a plan, in _PLAN_COLUMNS order."""
    return [
        (
            campaign_id,
            seq,
            b.country.upper(),
            b.sender,
            b.content,
            _json_numbers(b.recipients),
            len(b.recipients),
            ref,
            b.estimated_micros,
        )
        for seq, b, ref in zip(seqs, planned, refs, strict=True)
    ]


_PLAIN_NUMBERS = re.compile(r"[+0-9]*")


def _json_numbers(numbers: Sequence[str]) -> str:
    """``json.dumps(list(numbers))``; E.164 numbers need no escaping, so they are joined."""
    if numbers and _PLAIN_NUMBERS.fullmatch("".join(numbers)):
        return '["' + '","'.join(numbers) + '"]'
    return json.dumps(list(numbers))
