"""The carrier simulation: a background task moving due messages along their statuses.

A ``Policy`` decides each message's fate (the next status and when the one after it is
due); the ``Carrier`` applies the decisions in batches, one transaction per batch, with
the money each change implies: QUEUED → SENT charges the message's price (frozen →
charged), QUEUED → FAILED releases it (frozen → balance, and it leaves the day's usage).
Listeners registered in ``on_transitions`` run inside that same transaction, which is where
Step 2's callback outbox goes, so a change and its notification commit together.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, func, select, update

from gateway.clock import to_ms
from gateway.db import Database, accounts, daily_usage, messages
from gateway.sql import Prepared

log = logging.getLogger("gateway.carrier")

QUEUED, SENT, DELIVERED, UNDELIVERED, FAILED = (
    "QUEUED",
    "SENT",
    "DELIVERED",
    "UNDELIVERED",
    "FAILED",
)
ALLOWED = {QUEUED: {SENT, FAILED}, SENT: {DELIVERED, UNDELIVERED}}
CHARGED = frozenset({SENT, DELIVERED, UNDELIVERED})  # statuses whose price has been charged


@dataclass(frozen=True, slots=True)
class Due:
    """A message whose next carrier event is due."""

    msgid: str
    account_id: int
    day: str
    recipient: str
    country: str
    status: str
    price: int
    sent_at: int | None


@dataclass(frozen=True, slots=True)
class Step:
    """A policy's decision: the new status, and seconds until the next event (None: final)."""

    status: str
    next_in: float | None


@dataclass(frozen=True, slots=True)
class Transition:
    """A status change as applied (what listeners, e.g. callbacks, are told about)."""

    msgid: str
    account_id: int
    before: str
    after: str
    at: int  # ms
    price: int


class Policy(Protocol):
    """How the channel treats messages (per country, per number, by chance...)."""

    def first_delay(self, recipient: str, country: str) -> float:
        """Seconds from QUEUED to the first carrier event."""
        ...

    def next_step(self, message: Due) -> Step:
        """The message's next status, given it is due now."""
        ...


@dataclass(frozen=True, slots=True)
class FixedDelays:
    """The deterministic default: everything is sent, then delivered, after fixed delays."""

    sent_delay: float = 0.5
    deliver_delay: float = 1.0

    def first_delay(self, recipient: str, country: str) -> float:
        return self.sent_delay

    def next_step(self, message: Due) -> Step:
        if message.status == QUEUED:
            return Step(SENT, self.deliver_delay)
        return Step(DELIVERED, None)


Listener = Callable[[Connection, list[Transition]], None]

_DUE = Prepared(
    select(
        messages.c.msgid,
        messages.c.account_id,
        messages.c.day,
        messages.c.recipient,
        messages.c.country,
        messages.c.status,
        messages.c.price_micros,
        messages.c.sent_at,
    )
    .where(messages.c.next_event_at.isnot(None), messages.c.next_event_at <= bindparam("now"))
    .order_by(messages.c.next_event_at)
    .limit(bindparam("batch"))
)
_NEXT_DUE = Prepared(
    select(func.min(messages.c.next_event_at)).where(messages.c.next_event_at.isnot(None))
)
_UPDATE_MESSAGE = Prepared(
    update(messages)
    .where(messages.c.msgid == bindparam("b_msgid"))
    .values(
        status=bindparam("b_status"),
        sent_at=bindparam("b_sent_at"),
        delivered_at=bindparam("b_delivered_at"),
        updated_at=bindparam("b_now"),
        next_event_at=bindparam("b_next"),
    )
)
_UPDATE_ACCOUNT = Prepared(
    update(accounts)
    .where(accounts.c.id == bindparam("b_id"))
    .values(
        frozen_micros=accounts.c.frozen_micros - bindparam("b_charge") - bindparam("b_release"),
        charged_micros=accounts.c.charged_micros + bindparam("b_charge"),
        balance_micros=accounts.c.balance_micros + bindparam("b_release"),
    )
)
_UPDATE_USAGE = Prepared(
    update(daily_usage)
    .where(daily_usage.c.account_id == bindparam("b_id"), daily_usage.c.day == bindparam("b_day"))
    .values(
        frozen_micros=daily_usage.c.frozen_micros - bindparam("b_charge") - bindparam("b_release"),
        spend_micros=daily_usage.c.spend_micros - bindparam("b_release"),
        sms_sent=daily_usage.c.sms_sent - bindparam("b_failed"),
    )
)


class Carrier:
    """Applies due status changes in batches, in the background of the server."""

    def __init__(
        self,
        db: Database,
        policy: Policy,
        clock: Callable[[], float],
        *,
        interval: float = 0.05,
        batch: int = 1000,
    ) -> None:
        self.db = db
        self.policy = policy
        self.clock = clock
        self.interval = interval
        self.batch = batch
        self.on_transitions: list[Listener] = []

    def tick(self) -> int:
        """Apply every due change (up to one batch) in one transaction; returns how many."""
        now = to_ms(self.clock())
        with self.db.read() as conn:  # a cheap look first: idle ticks take no write lock
            next_due = _NEXT_DUE.run(conn, {}).fetchone()[0]
        if next_due is None or next_due > now:
            return 0
        with self.db.write() as conn:
            # Read inside the write transaction: no other writer can change these rows
            # between our read and our update, so a message is never charged twice.
            rows = _DUE.run(conn, {"now": now, "batch": self.batch}).fetchall()
            if not rows:
                return 0
            self._apply(conn, [Due(*row) for row in rows], now)
        return len(rows)

    def _apply(self, conn: Connection, due: list[Due], now: int) -> None:
        updates: list[dict[str, Any]] = []
        money: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # account → charge, release
        usage: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        transitions: list[Transition] = []
        for msg in due:
            step = self.policy.next_step(msg)
            if step.status not in ALLOWED.get(msg.status, ()):
                log.error("policy: %s cannot go %s → %s", msg.msgid, msg.status, step.status)
                updates.append(self._row(msg, msg.status, None, now))
                continue
            updates.append(self._row(msg, step.status, step.next_in, now))
            transitions.append(
                Transition(msg.msgid, msg.account_id, msg.status, step.status, now, msg.price)
            )
            if msg.status == QUEUED:
                charge, release = (msg.price, 0) if step.status == SENT else (0, msg.price)
                money[msg.account_id][0] += charge
                money[msg.account_id][1] += release
                day = usage[(msg.account_id, msg.day)]
                day[0] += charge
                day[1] += release
                day[2] += step.status == FAILED
        _UPDATE_MESSAGE.run_many(conn, updates)
        if money:
            _UPDATE_ACCOUNT.run_many(
                conn,
                [{"b_id": a, "b_charge": c, "b_release": r} for a, (c, r) in money.items()],
            )
            _UPDATE_USAGE.run_many(
                conn,
                [
                    {"b_id": a, "b_day": d, "b_charge": c, "b_release": r, "b_failed": f}
                    for (a, d), (c, r, f) in usage.items()
                ],
            )
        for listener in self.on_transitions:
            listener(conn, transitions)

    @staticmethod
    def _row(msg: Due, status: str, next_in: float | None, now: int) -> dict[str, Any]:
        return {
            "b_msgid": msg.msgid,
            "b_status": status,
            "b_sent_at": now if status == SENT else msg.sent_at,
            "b_delivered_at": now if status == DELIVERED else None,
            "b_now": now,
            "b_next": None if next_in is None else now + to_ms(next_in),
        }

    async def run(self) -> None:
        """Tick until cancelled; a failing tick is logged and retried, never fatal."""
        while True:
            try:
                done = self.tick()
            except Exception:
                log.exception("carrier tick failed; retrying")
                done = 0
            # A full batch means more may be due already: go again at once (yielding first).
            await asyncio.sleep(0 if done >= self.batch else self.interval)
