"""Notifications: one per cause per day, with where each went; and what the notifier looks at.

A notification is claimed before it is delivered: :meth:`NoticesMixin.claim_notification`
inserts its row, and the table's unique (cause, day) lets exactly one claimant — thread,
process or replica — have it. Only that one delivers, then :meth:`record_deliveries` keeps
where it went. A row whose deliveries are still ``[]`` was claimed and not (yet) delivered.

The notifier (``kedacore.notify``) finds its causes through :meth:`notice_scan`: today's sends
refused by a cap, the campaigns paused or ended lately, what waits for approval, the latest
balance reading.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from kedacore.ledger import schema as s
from kedacore.ledger.engine import reading, writing

CAP_CODES = {"3002": "dailySmsCap", "3003": "dailySpendCap"}  # the service's cap refusals
FAILED_STATUSES = ("FAILED", "UNDELIVERED")
SCAN_WINDOW = timedelta(days=2)  # campaigns changed this recently are looked at


@dataclass(frozen=True)
class Delivery:
    """Where one notification went: ``channel`` "email", "webhook" or "none" (no recipient);
    ``to`` an address or a masked webhook (never a secret); ``error`` why it failed."""

    channel: str
    to: str
    ok: bool
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "to": self.to, "ok": self.ok, "error": self.error}


@dataclass(frozen=True)
class Notification:
    """A notification row, its deliveries parsed."""

    id: int
    cause: str
    day: date
    kind: str
    created_at: datetime
    subject: str
    body: str
    link: str
    deliveries: tuple[Delivery, ...]

    @property
    def delivered(self) -> bool | None:
        """True when every delivery worked, False when one failed, None when none was made."""
        real = [d for d in self.deliveries if d.channel != "none"]
        if not real:
            return None
        return all(d.ok for d in real)


@dataclass(frozen=True)
class CapRefusals:
    """Today's sends refused by one daily cap."""

    cap: str  # "dailySmsCap" / "dailySpendCap"
    sends: int
    recipients: int
    last_at: datetime


@dataclass(frozen=True)
class CampaignFacts:
    """A campaign as a notification describes it."""

    id: int
    name: str
    status: str
    error: str | None
    updated_at: datetime
    recipients: int
    debited_micros: int
    currency: str
    batches: dict[str, dict[str, int]] = field(default_factory=dict)  # by batch state
    messages: dict[str, int] = field(default_factory=dict)  # by message status

    def batch(self, state: str, what: str = "recipients") -> int:
        return self.batches.get(state, {}).get(what, 0)

    @property
    def failed_messages(self) -> int:
        return sum(self.messages.get(st, 0) for st in FAILED_STATUSES)


@dataclass(frozen=True)
class WaitingApproval:
    """An approval request in state "waiting"."""

    id: int
    kind: str
    ref: str
    summary: str
    requested_by: str
    requested_at: datetime
    estimate_micros: int
    threshold_micros: int
    currency: str


@dataclass(frozen=True)
class LatestBalance:
    read_at: datetime
    balance_micros: int
    frozen_micros: int
    currency: str


@dataclass(frozen=True)
class NoticeScan:
    """What the ledger says that may call for a notification (``kedacore.notify.causes``)."""

    now: datetime
    cap_refusals: tuple[CapRefusals, ...]
    paused: tuple[CampaignFacts, ...]
    ended: tuple[CampaignFacts, ...]  # done or cancelled lately
    approvals: tuple[WaitingApproval, ...]
    balance: LatestBalance | None


def _deliveries(text: str | None) -> tuple[Delivery, ...]:
    try:
        items = json.loads(text or "[]")
    except ValueError:
        return ()
    return tuple(
        Delivery(
            str(i.get("channel", "")), str(i.get("to", "")), bool(i.get("ok")), i.get("error") or ""
        )
        for i in items
        if isinstance(i, dict)
    )


def _notification(row: Any) -> Notification:
    return Notification(
        id=row.id,
        cause=row.cause,
        day=row.day,
        kind=row.kind,
        created_at=row.created_at,
        subject=row.subject,
        body=row.body,
        link=row.link,
        deliveries=_deliveries(row.deliveries),
    )


def day_start(now: datetime) -> datetime:
    """The start of ``now``'s UTC day."""
    return datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)


class NoticesMixin:
    """Notifications of the Ledger (see the module docstring)."""

    engine: Any

    def now(self) -> datetime:
        raise NotImplementedError

    # -- the notifications themselves ---------------------------------------------------------

    def claim_notification(
        self, cause: str, *, kind: str, subject: str, body: str, link: str = ""
    ) -> int | None:
        """Insert today's notification of ``cause``; its id, or None when it exists already
        (another thread or replica has it: only the claimant delivers)."""
        now = self.now()
        row = {
            "cause": cause[:80],
            "day": now.astimezone(UTC).date(),
            "kind": kind[:32],
            "created_at": now,
            "subject": subject[:300],
            "body": body,
            "link": link,
            "deliveries": "[]",
        }
        try:
            with writing(self.engine) as conn:
                return int(conn.execute(insert(s.notifications), row).inserted_primary_key[0])
        except IntegrityError:
            return None

    def record_deliveries(self, notification_id: int, deliveries: Sequence[Delivery]) -> None:
        """Keep where a claimed notification went (each channel, masked target, ok or error)."""
        text = json.dumps([d.as_json() for d in deliveries], ensure_ascii=False)
        with writing(self.engine) as conn:
            conn.execute(
                update(s.notifications)
                .where(s.notifications.c.id == notification_id)
                .values(deliveries=text)
            )

    def notification(self, notification_id: int) -> Notification | None:
        t = s.notifications
        with reading(self.engine) as conn:
            row = conn.execute(select(t).where(t.c.id == notification_id)).first()
        return _notification(row) if row is not None else None

    def notifications(self, *, limit: int = 50, offset: int = 0) -> list[Notification]:
        """Notifications, newest first."""
        t = s.notifications
        query = select(t).order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit)
        with reading(self.engine) as conn:
            return [_notification(row) for row in conn.execute(query.offset(offset))]

    def notification_count(self) -> int:
        with reading(self.engine) as conn:
            return int(conn.execute(select(func.count()).select_from(s.notifications)).scalar())

    def last_notified(self, causes: Sequence[str]) -> dict[str, datetime]:
        """When each of ``causes`` was last notified (those never notified are left out)."""
        t = s.notifications
        found: dict[str, datetime] = {}
        wanted = list(dict.fromkeys(causes))
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            query = (
                select(t.c.cause, func.max(t.c.created_at))
                .where(t.c.cause.in_(part))
                .group_by(t.c.cause)
            )
            with reading(self.engine) as conn:
                for cause, at in conn.execute(query):
                    found[cause] = at if at.tzinfo else at.replace(tzinfo=UTC)
        return found

    # -- what the notifier looks at -----------------------------------------------------------

    def notice_scan(self, *, window: timedelta = SCAN_WINDOW) -> NoticeScan:
        """Today's cap refusals, campaigns paused or ended within ``window``, approvals
        waiting, and the latest balance reading (see ``kedacore.notify.causes``).

        Cheap enough to run every few seconds: a few grouped queries whatever the number of
        campaigns, and messages are counted (from the daily rollup) only for campaigns that
        ended and whose failure was not notified yet.
        """
        now = self.now()
        since = now - window
        c, a, b = s.campaigns.c, s.approvals.c, s.balance_readings.c
        with reading(self.engine) as conn:
            refusals = self._cap_refusals(conn, day_start(now))
            rows = conn.execute(
                select(s.campaigns)
                .where(
                    c.demo.is_(False),
                    c.updated_at >= since,
                    c.status.in_(("paused", "done", "cancelled")),
                )
                .order_by(c.id)
            ).all()
            approvals = tuple(
                WaitingApproval(
                    id=r.id,
                    kind=r.kind,
                    ref=r.ref,
                    summary=r.summary,
                    requested_by=r.requested_by,
                    requested_at=r.requested_at,
                    estimate_micros=r.estimate_micros,
                    threshold_micros=r.threshold_micros,
                    currency=r.currency,
                )
                for r in conn.execute(
                    select(s.approvals).where(a.state == "waiting").order_by(a.id)
                )
            )
            last = conn.execute(
                select(s.balance_readings).order_by(b.read_at.desc(), b.id.desc()).limit(1)
            ).first()
            batches = _batch_counts(conn, [r.id for r in rows])
        told = self.last_notified([f"campaign_failed:{r.id}" for r in rows if r.status == "done"])

        def untold(row: Any) -> bool:
            at = told.get(f"campaign_failed:{row.id}")
            return at is None or at < row.updated_at

        to_count = [r for r in rows if r.status == "done" and untold(r)]
        with reading(self.engine) as conn:
            messages = _message_counts(conn, to_count)
        campaigns = [
            CampaignFacts(
                id=r.id,
                name=r.name,
                status=r.status,
                error=r.error,
                updated_at=r.updated_at,
                recipients=r.recipients,
                debited_micros=r.debited_micros,
                currency=r.currency,
                batches=batches.get(r.id, {}),
                messages=messages.get(r.id, {}),
            )
            for r in rows
        ]
        balance = (
            LatestBalance(last.read_at, last.balance_micros, last.frozen_micros, last.currency)
            if last is not None
            else None
        )
        return NoticeScan(
            now=now,
            cap_refusals=refusals,
            paused=tuple(f for f in campaigns if f.status == "paused"),
            ended=tuple(f for f in campaigns if f.status != "paused"),
            approvals=approvals,
            balance=balance,
        )

    def _cap_refusals(self, conn: Any, since: datetime) -> tuple[CapRefusals, ...]:
        t = s.sends.c
        query = (
            select(t.error_code, func.count(), func.sum(t.recipient_count), func.max(t.updated_at))
            .where(t.state == "refused", t.error_code.in_(list(CAP_CODES)), t.updated_at >= since)
            .group_by(t.error_code)
            .order_by(t.error_code)
        )
        found = []
        for code, n, recipients, last in conn.execute(query):
            at = last if last.tzinfo else last.replace(tzinfo=UTC)
            found.append(CapRefusals(CAP_CODES[code], int(n), int(recipients or 0), at))
        return tuple(found)


def _batch_counts(conn: Any, ids: Sequence[int]) -> dict[int, dict[str, dict[str, int]]]:
    """Batches, recipients and money by batch state, for each campaign (one grouped query)."""
    if not ids:
        return {}
    b = s.campaign_batches.c
    query = (
        select(
            b.campaign_id,
            b.state,
            func.count(),
            func.coalesce(func.sum(b.recipient_count), 0),
            func.coalesce(func.sum(b.estimated_micros), 0),
            func.coalesce(func.sum(b.debited_micros), 0),
        )
        .where(b.campaign_id.in_(list(ids)))
        .group_by(b.campaign_id, b.state)
    )
    found: dict[int, dict[str, dict[str, int]]] = {}
    for cid, state, n, recipients, estimated, debited in conn.execute(query):
        found.setdefault(cid, {})[state] = {
            "batches": int(n),
            "recipients": int(recipients),
            "estimated_micros": int(estimated),
            "debited_micros": int(debited),
        }
    return found


def _message_counts(conn: Any, rows: Sequence[Any]) -> dict[int, dict[str, int]]:
    """Messages by status for each campaign, from the daily rollup (exact, and thousands of
    rows rather than the campaign's millions of messages)."""
    if not rows:
        return {}
    r = s.message_rollup.c
    first = min(row.created_at for row in rows).astimezone(UTC).date()
    query = (
        select(r.campaign_id, r.status, func.sum(r.messages))
        .where(
            r.day >= first,
            r.campaign_id.in_([row.id for row in rows]),
            r.demo.is_(False),
        )
        .group_by(r.campaign_id, r.status)
    )
    found: dict[int, dict[str, int]] = {}
    for cid, status, n in conn.execute(query):
        if n:
            found.setdefault(cid, {})[status] = int(n)
    return found
