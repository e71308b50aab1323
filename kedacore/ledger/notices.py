"""Notifications: one per cause per day, delivered with retries; and what the notifier looks at.

A notification is raised once: :meth:`NoticesMixin.raise_notification` inserts its row
(state ``pending``), and the table's unique (cause, day) keeps a cause to one row a day
whoever raises it — thread, process or replica. Each delivery attempt is then claimed by a
conditional UPDATE (:meth:`claim_delivery`: the attempts counter it saw, no lease running,
due): exactly one claimant makes each attempt, and :meth:`finish_delivery` records it:

- every recipient has it → ``delivered``;
- a recipient failed → tried again (only where it failed) after 1, 5 and 15 minutes, then
  every hour, while the next attempt falls within a day of the notification being raised;
  then ``failed`` (given up), with why in ``note``;
- an attempt whose claimant crashed is free again when its lease (5 minutes) runs out.

With no recipient configured a notification waits (its deliveries say so) and is delivered if
one is added the same UTC day; after that day it is ``failed``. A pending notification of a
cause raised again later (a daily state the next day) is superseded: ``failed`` too.

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

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from kedacore.ledger import schema as s
from kedacore.ledger.campaign_snapshot import batch_counts
from kedacore.ledger.engine import reading, writing

CAP_CODES = {"3002": "dailySmsCap", "3003": "dailySpendCap"}  # the service's cap refusals
FAILED_STATUSES = ("FAILED", "UNDELIVERED")
SCAN_WINDOW = timedelta(days=2)  # campaigns changed this recently are looked at

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
LEASE = timedelta(minutes=5)  # an attempt's claim (deliveries take seconds: 5 s timeouts)
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15))
RETRY_EVERY = timedelta(hours=1)  # after the delays above
RETRY_WINDOW = timedelta(days=1)  # no attempt is planned later than this after raising
NO_RECIPIENT = "no recipient is configured"


def retry_delay(attempts: int) -> timedelta:
    """How long after the ``attempts``-th failed attempt the next one is made."""
    return RETRY_DELAYS[attempts - 1] if 0 < attempts <= len(RETRY_DELAYS) else RETRY_EVERY


@dataclass(frozen=True)
class Delivery:
    """Where one notification went: ``channel`` "email", "webhook" or "none" (no recipient);
    ``to`` an address or a masked webhook (never a secret); ``error`` why it failed."""

    channel: str
    to: str
    ok: bool
    error: str = ""
    ref: str = ""  # which target (a webhook's digest); "" for an e-mail: its address is ``to``

    @property
    def key(self) -> str:
        """The target, to know on a retry who had it already."""
        return self.ref or f"{self.channel}:{self.to}"

    def as_json(self) -> dict[str, Any]:
        """As the audit log shows it."""
        return {"channel": self.channel, "to": self.to, "ok": self.ok, "error": self.error}

    def stored(self) -> dict[str, Any]:
        """As the ledger keeps it."""
        return {**self.as_json(), "ref": self.ref} if self.ref else self.as_json()


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
    facts: dict[str, Any] = field(default_factory=dict)
    state: str = PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    leased_until: datetime | None = None
    last_attempt_at: datetime | None = None
    note: str = ""
    superseded: bool = False  # a newer notification of the same cause exists

    @property
    def delivered(self) -> bool | None:
        """True when every delivery worked, False when one failed, None when none was made."""
        real = [d for d in self.deliveries if d.channel != "none"]
        if not real:
            return None
        return all(d.ok for d in real)

    @property
    def waits_for_recipients(self) -> bool:
        """Raised while nobody was configured to receive it, and not delivered anywhere."""
        return any(d.channel == "none" and d.error == NO_RECIPIENT for d in self.deliveries) and (
            self.delivered is None
        )

    def leased(self, now: datetime) -> bool:
        """An attempt is under way (or its claimant crashed less than a lease ago)."""
        return self.leased_until is not None and self.leased_until > now

    def due(self, now: datetime) -> bool:
        """Pending, no attempt under way, and its next attempt is not later than ``now``."""
        return (
            self.state == PENDING
            and not self.leased(now)
            and (self.next_attempt_at is None or self.next_attempt_at <= now)
        )


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
            str(i.get("channel", "")),
            str(i.get("to", "")),
            bool(i.get("ok")),
            i.get("error") or "",
            str(i.get("ref") or ""),
        )
        for i in items
        if isinstance(i, dict)
    )


def _facts(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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
        facts=_facts(row.facts),
        state=row.state,
        attempts=int(row.attempts or 0),
        next_attempt_at=_utc(row.next_attempt_at),
        leased_until=_utc(row.leased_until),
        last_attempt_at=_utc(row.last_attempt_at),
        note=row.note or "",
        superseded=bool(getattr(row, "superseded", False)),
    )


def _dump(deliveries: Sequence[Delivery]) -> str:
    return json.dumps([d.stored() for d in deliveries], ensure_ascii=False)


def day_start(now: datetime) -> datetime:
    """The start of ``now``'s UTC day."""
    return datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)


def _unheld(notification_id: int, now: datetime) -> Any:
    """A pending notification that no attempt holds (none claimed, or its lease ran out)."""
    t = s.notifications.c
    return and_(
        t.id == notification_id,
        t.state == PENDING,
        or_(t.leased_until.is_(None), t.leased_until <= now),
    )


class NoticesMixin:
    """Notifications of the Ledger (see the module docstring)."""

    engine: Any

    def now(self) -> datetime:
        raise NotImplementedError

    # -- the notifications themselves ---------------------------------------------------------

    def raise_notification(
        self,
        cause: str,
        *,
        kind: str,
        subject: str,
        body: str,
        link: str = "",
        facts: dict[str, Any] | None = None,
        claim: bool = False,
    ) -> int | None:
        """Insert today's notification of ``cause``, pending and due now; its id, or None
        when the cause has one today already (raised by another thread or replica).

        ``claim``: its first attempt is claimed with it (the caller delivers it at once, then
        calls :meth:`finish_delivery` with ``attempts=1``).
        """
        now = self.now()
        row = {
            "cause": cause[:80],
            "day": now.astimezone(UTC).date(),
            "kind": kind[:32],
            "created_at": now,
            "subject": subject[:300],
            "body": body,
            "link": link,
            "facts": json.dumps(facts or {}, ensure_ascii=False, default=str),
            "deliveries": "[]",
            "state": PENDING,
            "attempts": 1 if claim else 0,
            "next_attempt_at": None if claim else now,
            "leased_until": now + LEASE if claim else None,
            "last_attempt_at": now if claim else None,
            "note": "",
        }
        try:
            with writing(self.engine) as conn:
                return int(conn.execute(insert(s.notifications), row).inserted_primary_key[0])
        except IntegrityError:
            return None

    def claim_notification(
        self,
        cause: str,
        *,
        kind: str,
        subject: str,
        body: str,
        link: str = "",
        facts: dict[str, Any] | None = None,
    ) -> int | None:
        """:meth:`raise_notification` with its first attempt claimed by the caller."""
        return self.raise_notification(
            cause, kind=kind, subject=subject, body=body, link=link, facts=facts, claim=True
        )

    def claim_delivery(self, notification_id: int, attempts: int) -> bool:
        """Claim the next attempt of a pending notification whose ``attempts`` so far are
        the number the caller saw, that no attempt holds (its lease ran out) and that is due.
        True for exactly one claimant: it delivers, then calls :meth:`finish_delivery` with
        ``attempts + 1``."""
        now = self.now()
        t = s.notifications.c
        query = (
            update(s.notifications)
            .where(
                _unheld(notification_id, now),
                t.attempts == attempts,
                or_(t.next_attempt_at.is_(None), t.next_attempt_at <= now),
            )
            .values(attempts=t.attempts + 1, leased_until=now + LEASE, last_attempt_at=now)
        )
        with writing(self.engine) as conn:
            return conn.execute(query).rowcount == 1

    def finish_delivery(
        self,
        notification_id: int,
        attempts: int,
        deliveries: Sequence[Delivery],
        *,
        retry: bool = True,
    ) -> Notification | None:
        """Record attempt number ``attempts``: where it went (kept with whoever had it from an
        earlier attempt), then ``delivered`` when everyone has it; else, with ``retry``, the
        next attempt's time (:func:`retry_delay`) while it falls within a day of raising, or
        ``failed``; without ``retry`` (a test notification) ``failed`` at once."""
        now = self.now()
        t = s.notifications
        with writing(self.engine) as conn:
            row = conn.execute(select(t).where(t.c.id == notification_id).with_for_update()).first()
            if row is None:
                return None
            fresh = {d.key for d in deliveries}
            merged = [d for d in _deliveries(row.deliveries) if d.ok and d.key not in fresh]
            merged += list(deliveries)
            real = [d for d in merged if d.channel != "none"]
            values: dict[str, Any] = {"deliveries": _dump(merged), "next_attempt_at": None}
            if row.attempts == attempts:
                values["leased_until"] = None  # else a later attempt holds it: not ours
            if real and all(d.ok for d in real):
                values["state"] = DELIVERED
            elif not retry:
                values["state"] = FAILED
            elif deliveries and all(d.error == NO_RECIPIENT for d in deliveries):
                values["state"] = PENDING  # nowhere to send it: waits for recipients
            else:
                started = _utc(row.last_attempt_at) or now  # the delays run from each start
                later = max(now, started + retry_delay(row.attempts))
                if later > _utc(row.created_at) + RETRY_WINDOW:
                    values["state"] = FAILED
                    values["note"] = f"given up after {row.attempts} attempts in a day"
                else:
                    values["state"] = PENDING
                    values["next_attempt_at"] = later
            conn.execute(update(t).where(t.c.id == notification_id).values(**values))
            found = conn.execute(select(t).where(t.c.id == notification_id)).first()
        return _notification(found)

    def give_up_notification(self, notification_id: int, attempts: int, why: str) -> bool:
        """Stop delivering a pending notification (``failed``, ``why`` kept) — unless an
        attempt holds it or one was claimed since the caller saw ``attempts``."""
        now = self.now()
        t = s.notifications.c
        query = (
            update(s.notifications)
            .where(
                _unheld(notification_id, now),
                t.attempts == attempts,
            )
            .values(state=FAILED, note=why[:200], next_attempt_at=None, leased_until=None)
        )
        with writing(self.engine) as conn:
            return conn.execute(query).rowcount == 1

    def wait_for_recipients(self, notification_id: int) -> bool:
        """Note on a pending notification that nobody is configured to receive it: it waits
        (delivered when a recipient is added the same UTC day)."""
        now = self.now()
        none = _dump([Delivery("none", "", False, NO_RECIPIENT)])
        query = (
            update(s.notifications)
            .where(
                _unheld(notification_id, now),
            )
            .values(deliveries=none, next_attempt_at=None)
        )
        with writing(self.engine) as conn:
            return conn.execute(query).rowcount == 1

    def pending_notifications(self, *, limit: int = 500) -> list[Notification]:
        """Notifications still to deliver, oldest first, each marked ``superseded`` when its
        cause was raised again on a later day."""
        t = s.notifications
        newer = aliased(t)
        superseded = (
            select(newer.c.id)
            .where(and_(newer.c.cause == t.c.cause, newer.c.day > t.c.day))
            .exists()
            .label("superseded")
        )
        query = (
            select(t, superseded)
            .where(t.c.state == PENDING)
            .order_by(t.c.created_at, t.c.id)
            .limit(limit)
        )
        with reading(self.engine) as conn:
            return [_notification(row) for row in conn.execute(query)]

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
            batches = batch_counts(conn, [r.id for r in rows])
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
