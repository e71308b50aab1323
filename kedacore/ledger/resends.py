"""Resending a campaign's FAILED and UNDELIVERED recipients as a new campaign, at most once.

``campaigns.resend_of`` has a unique index: the resend's campaign row, its plan and its audit
entry are written in one transaction, and a second resend of the same campaign — a double
click, another tab, another replica at the same moment — fails on that index and learns which
campaign was the resend (:class:`AlreadyResent`). The plan is built by
``kedacore.campaign.resend``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from kedacore.ledger import schema as s
from kedacore.ledger.bulk import execute_many
from kedacore.ledger.campaigns import _INSERT_PLANNED, _PLAN_COLUMNS, _draft_values, _plan_rows
from kedacore.ledger.engine import reading, writing
from kedacore.ledger.records import PlannedBatch

RESENT_STATUSES = ("FAILED", "UNDELIVERED")


# A campaign resent only once it is over: later failures would otherwise never be resent.
RESENDABLE = ("done", "cancelled")


class AlreadyResent(Exception):
    """The campaign was resent already (exactly once): ``resend_id`` is the resend."""

    def __init__(self, campaign_id: int, resend_id: int | None) -> None:
        super().__init__(f"campaign {campaign_id} was already resent as campaign {resend_id}")
        self.campaign_id = campaign_id
        self.resend_id = resend_id


@dataclass(frozen=True, slots=True)
class FailedMessage:
    """One FAILED or UNDELIVERED message of a campaign, with the text it was sent."""

    recipient: str
    country: str
    sender: str | None
    status: str
    content: str
    segments: int | None  # as the service billed it, when known


class ResendsMixin:
    """Resends of the Ledger (see the module docstring)."""

    engine: Any

    def now(self) -> datetime:
        raise NotImplementedError

    def audit(self, actor: str, action: str, **kw: Any) -> None:
        raise NotImplementedError

    def failed_messages(self, campaign_id: int) -> list[FailedMessage]:
        """The campaign's FAILED and UNDELIVERED messages with the text each was sent (its
        task's), in the order they were recorded."""
        m, t = s.messages.c, s.tasks.c
        query = (
            select(m.recipient, m.country, m.sender, m.status, t.content, m.segments)
            .join_from(s.messages, s.tasks, m.task_id == t.task_id)
            .where(m.campaign_id == campaign_id, m.status.in_(RESENT_STATUSES))
            .order_by(m.created_at, m.msgid)
        )
        with reading(self.engine) as conn:
            return [FailedMessage(*row) for row in conn.execute(query)]

    def resend_of(self, campaign_id: int) -> int | None:
        """The campaign that resent this one, or None."""
        query = select(s.campaigns.c.id).where(s.campaigns.c.resend_of == campaign_id)
        with reading(self.engine) as conn:
            return conn.scalar(query)

    def create_resend(
        self,
        campaign_id: int,
        batches: Sequence[PlannedBatch],
        *,
        name: str,
        template: str,
        sender: str | None,
        currency: str,
        created_by: str,
        options: dict[str, Any] | None,
        audit_after: dict[str, Any],
    ) -> int:
        """Write the resend of ``campaign_id`` — its campaign row (``resend_of``), its plan and
        its audit entry (``campaign_resend``) — in one transaction; its id.

        Raises:
            AlreadyResent: the campaign was resent already (by anyone, at any moment).
            ValueError: no batches, or the campaign is not finished (``RESENDABLE``): a paused
                or still sending campaign may fail more later, and it is resent only once.
        """
        if not batches:
            raise ValueError("nothing to resend")
        now = self.now()
        c = s.campaigns
        try:
            with writing(self.engine) as conn:
                status = conn.scalar(select(c.c.status).where(c.c.id == campaign_id))
                if status not in RESENDABLE:
                    raise ValueError(
                        f"campaign {campaign_id} is {status or 'unknown'}: only a finished "
                        "campaign (done or cancelled) is resent"
                    )
                new = conn.execute(
                    insert(c).values(
                        **_draft_values(
                            name[:200], template, sender, currency, created_by, options
                        ),
                        created_at=now,
                        updated_at=now,
                        resend_of=campaign_id,
                    )
                ).inserted_primary_key[0]
                resend_id = int(new)
                run = secrets.token_hex(6)  # as plan_campaign: never a clientRef used before
                seqs = range(1, len(batches) + 1)
                refs = [f"c{resend_id}-{run}-{seq}" for seq in seqs]
                rows = _plan_rows(resend_id, batches, seqs, refs)
                execute_many(conn, _INSERT_PLANNED, _PLAN_COLUMNS, rows, now=now)
                conn.execute(
                    update(c)
                    .where(c.c.id == resend_id)
                    .values(
                        recipients=sum(len(b.recipients) for b in batches),
                        batches=len(batches),
                        estimated_micros=sum(b.estimated_micros for b in batches),
                        status="planned",
                    )
                )
                self.audit(
                    created_by,
                    "campaign_resend",
                    target=f"campaign {campaign_id}",
                    after={"resend": resend_id, **audit_after},
                    conn=conn,
                )
        except IntegrityError:
            found = self.resend_of(campaign_id)
            if found is None:  # another constraint: not ours to explain
                raise
            raise AlreadyResent(campaign_id, found) from None
        return resend_id

    def resends(self, campaign_ids: Sequence[int]) -> dict[int, int]:
        """original id → its resend's id, for those of ``campaign_ids`` that were resent."""
        if not campaign_ids:
            return {}
        c = s.campaigns.c
        query = select(c.resend_of, c.id).where(c.resend_of.in_(list(campaign_ids)))
        with reading(self.engine) as conn:
            return {int(a): int(b) for a, b in conn.execute(query)}

    def count_failed(self, campaign_id: int) -> dict[str, int]:
        """How many of the campaign's messages are FAILED and UNDELIVERED."""
        m = s.messages.c
        query = (
            select(m.status, func.count())
            .where(m.campaign_id == campaign_id, m.status.in_(RESENT_STATUSES))
            .group_by(m.status)
        )
        with reading(self.engine) as conn:
            return {status: int(n) for status, n in conn.execute(query)}
