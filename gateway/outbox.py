"""The callback outbox: events written with the change they report, then claimed and settled.

Rows are added inside the transaction that makes the change (the carrier's, through
``on_transitions``; the click's, in ``Links.visit``), so an event exists if and only if its
change committed. ``gateway.delivery`` claims due rows in batches (leasing them), posts
them, and settles the outcomes in batches: delivered, retried later, or dead-lettered. A
row is never deleted before it is delivered; dead letters are kept for the operator.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, literal_column, select, update

from gateway.carrier import DELIVERED, FAILED, Transition
from gateway.clock import iso, to_ms
from gateway.db import Database, accounts, messages, outbox, tasks
from gateway.sql import Prepared
from kedacore.money import money_str

PENDING, DONE, DEAD = "pending", "delivered", "dead"
STATES = (PENDING, DONE, DEAD)
# A literal, not a parameter: SQLite uses the partial index ix_outbox_due only then.
_IS_PENDING = literal_column("outbox.state") == literal_column("'pending'")
_ids = func.json_each(bindparam("ids")).table_valued("value")

_FACTS = Prepared(
    select(
        messages.c.msgid,
        messages.c.task_id,
        messages.c.account_id,
        messages.c.recipient,
        messages.c.sender,
        messages.c.sent_at,
        messages.c.delivered_at,
        messages.c.price_micros,
        tasks.c.callback_url,
    )
    .select_from(messages.join(tasks, messages.c.task_id == tasks.c.task_id))
    .where(messages.c.msgid.in_(select(_ids.c.value)), tasks.c.callback_url.isnot(None))
)
_INSERT = Prepared(
    insert(outbox).values({c.key: bindparam(c.key) for c in outbox.columns if c.key != "id"})
)
_DUE = Prepared(
    select(
        outbox.c.id,
        outbox.c.event_id,
        outbox.c.account_id,
        outbox.c.url,
        outbox.c.body,
        outbox.c.attempts,
        outbox.c.created_at,
    )
    .where(_IS_PENDING, outbox.c.next_attempt_at <= bindparam("now"))
    .order_by(outbox.c.next_attempt_at)
    .limit(bindparam("n"))
)
_LEASE = Prepared(
    update(outbox)
    .where(outbox.c.id == bindparam("b_id"))
    .values(
        leased=True,
        attempts=outbox.c.attempts + 1,
        next_attempt_at=bindparam("b_until"),
        last_attempt_at=bindparam("b_now"),
    )
)
_SETTLE = Prepared(
    update(outbox)
    .where(outbox.c.id == bindparam("b_id"), _IS_PENDING)
    .values(
        state=bindparam("b_state"),
        leased=False,
        next_attempt_at=bindparam("b_next"),
        done_at=bindparam("b_done"),
        last_code=bindparam("b_code"),
        last_error=bindparam("b_error"),
    )
)
_NEXT_DUE = Prepared(select(func.min(outbox.c.next_attempt_at)).where(_IS_PENDING))
_KEY = Prepared(select(accounts.c.encryption_key).where(accounts.c.id == bindparam("account_id")))


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def status_body(facts: Any, status: str, at: int) -> str:
    """The seed's callback body for a status change, plus ``updated_time`` and ``taskId``."""
    return _json(
        {
            "msgid": facts.msgid,
            "status": status,
            "recipient": facts.recipient,
            "sender": facts.sender,
            "sent_time": iso(facts.sent_at),
            "delivered_time": iso(facts.delivered_at) if status == DELIVERED else None,
            "cost": "0" if status == FAILED else money_str(facts.price_micros),
            "updated_time": iso(at),
            "taskId": facts.task_id,
        }
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    """An event leased for one delivery attempt."""

    id: int
    event_id: str
    # Secrets stay out of repr: the URL's path holds the receiver's token, and the key is
    # the account's 32 raw encryption-key bytes (the signing key).
    url: str = field(repr=False)
    body: bytes
    key: bytes = field(repr=False)
    attempts: int  # including this one
    created_at: int  # ms


@dataclass(frozen=True, slots=True)
class Settlement:
    """What became of a claimed event: delivered, retry at ``next_at``, or dead."""

    id: int
    state: str
    next_at: int | None = None
    code: int | None = None
    error: str | None = None


class Outbox:
    """The outbox table of one gateway database."""

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock
        self.wake: Callable[[], None] = lambda: None  # set by the sender: new rows to send
        self._keys: dict[int, bytes] = {}

    # -- writing (inside the caller's transaction) ------------------------------------

    def on_transitions(self, conn: Connection, transitions: list[Transition]) -> None:
        """Carrier listener: one event per status change of a message with a callback URL."""
        if not transitions:
            return
        facts = {r.msgid: r for r in _FACTS.all(conn, {"ids": _json_ids(transitions)})}
        rows = [
            self._row(f, t.after, status_body(f, t.after, t.at), t.at)
            for t in transitions
            if (f := facts.get(t.msgid)) is not None
        ]
        if rows:
            _INSERT.run_many(conn, rows)
            self.wake()

    def add_click(
        self, conn: Connection, msgid: str, url: str, short_url: str, clicked_at: int
    ) -> bool:
        """A CLICKED event for a tracked link's message, if its task has a callback URL."""
        found = _FACTS.all(conn, {"ids": json.dumps([msgid])})
        if not found:
            return False
        facts = found[0]
        body = _json(
            {
                "msgid": msgid,
                "status": "CLICKED",
                "recipient": facts.recipient,
                "url": url,
                "shortUrl": short_url,
                "clicked_time": iso(clicked_at),
            }
        )
        _INSERT.run(conn, self._row(facts, "CLICKED", body, clicked_at))
        self.wake()
        return True

    @staticmethod
    def _row(facts: Any, status: str, body: str, now: int) -> dict[str, Any]:
        return {
            "event_id": new_event_id(),
            "account_id": facts.account_id,
            "msgid": facts.msgid,
            "status": status,
            "url": facts.callback_url,
            "body": body,
            "state": PENDING,
            "leased": False,
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
            "last_attempt_at": None,
            "done_at": None,
            "last_code": None,
            "last_error": None,
        }

    # -- the sender's side -------------------------------------------------------------

    def claim(self, limit: int, lease_seconds: float) -> list[Claimed]:
        """Lease up to ``limit`` due events (oldest due first) in one transaction."""
        now = to_ms(self.clock())
        with self.db.read() as conn:  # idle polls take no write lock
            first = _NEXT_DUE.run(conn, {}).fetchone()[0]
        if first is None or first > now or limit <= 0:
            return []
        until = now + to_ms(lease_seconds)
        with self.db.write() as conn:
            rows = _DUE.all(conn, {"now": now, "n": limit})
            if not rows:
                return []
            _LEASE.run_many(conn, [{"b_id": r.id, "b_until": until, "b_now": now} for r in rows])
            keys = {r.account_id: self._key(conn, r.account_id) for r in rows}
        return [
            Claimed(
                r.id,
                r.event_id,
                r.url,
                r.body.encode(),
                keys[r.account_id],
                r.attempts + 1,
                r.created_at,
            )
            for r in rows
        ]

    def _key(self, conn: Connection, account_id: int) -> bytes:
        key = self._keys.get(account_id)
        if key is None:
            row = _KEY.first(conn, {"account_id": account_id})
            key = base64.b64decode(row.encryption_key) if row and row.encryption_key else b""
            self._keys[account_id] = key
        return key

    def settle(self, settlements: Sequence[Settlement]) -> None:
        """Record the outcomes of attempts in one transaction."""
        if not settlements:
            return
        now = to_ms(self.clock())
        rows = [
            {
                "b_id": s.id,
                "b_state": s.state,
                "b_next": s.next_at if s.state == PENDING else None,
                "b_done": None if s.state == PENDING else now,
                "b_code": s.code,
                "b_error": s.error,
            }
            for s in settlements
        ]
        with self.db.write() as conn:
            _SETTLE.run_many(conn, rows)

    def release_leases(self) -> int:
        """At start: events claimed by a process that died are due again, now."""
        now = to_ms(self.clock())
        with self.db.write() as conn:
            result = conn.execute(
                update(outbox)
                .where(outbox.c.state == PENDING, outbox.c.leased.is_(True))
                .values(leased=False, next_attempt_at=now)
            )
        return result.rowcount

    def next_due(self) -> int | None:
        """When the earliest pending event is due (ms), or None."""
        with self.db.read() as conn:
            return _NEXT_DUE.run(conn, {}).fetchone()[0]

    # -- the operator's side -----------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Events by state."""
        with self.db.read() as conn:
            rows = conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state))
            found = dict(rows.all())
        return {state: found.get(state, 0) for state in STATES}

    def listing(self, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest events (of one state), for ``python -m gateway outbox``."""
        query = select(outbox).order_by(outbox.c.id.desc()).limit(limit)
        if state is not None:
            query = query.where(outbox.c.state == state)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [
            {
                "id": r.id,
                "eventId": r.event_id,
                "msgid": r.msgid,
                "status": r.status,
                "state": r.state,
                "attempts": r.attempts,
                "url": mask_url(r.url),
                "createdAt": iso(r.created_at),
                "lastAttemptAt": iso(r.last_attempt_at),
                "nextAttemptAt": iso(r.next_attempt_at) if r.state == PENDING else None,
                "doneAt": iso(r.done_at),
                "lastCode": r.last_code,
                "lastError": r.last_error,
            }
            for r in rows
        ]

    def prune(self, retention_seconds: float) -> int:
        """Forget delivered events older than the retention; dead letters stay."""
        horizon = to_ms(self.clock() - retention_seconds)
        with self.db.write() as conn:
            result = conn.execute(
                delete(outbox).where(outbox.c.state == DONE, outbox.c.done_at < horizon)
            )
        return result.rowcount


def _json_ids(transitions: list[Transition]) -> str:
    return json.dumps([t.msgid for t in transitions])


def mask_url(url: str) -> str:
    """A callback URL fit to show: no userinfo (it may hold a password), the token's place and
    long path parts masked, no query or fragment."""
    base, _, query = url.partition("?")
    base, _, fragment = base.partition("#")
    scheme, sep, rest = base.partition("://")
    host, slash, path = rest.partition("/")
    host = host.rpartition("@")[2]
    parts = path.split("/")
    last = max((i for i, p in enumerate(parts) if p), default=-1)
    masked = [
        ("***" + p[-4:] if len(p) >= 8 else "***") if i == last or len(p) >= 12 else p
        for i, p in enumerate(parts)
    ]
    hidden = ("?***" if query else "") + ("#***" if fragment else "")
    return f"{scheme}{sep}{host}{slash}{'/'.join(masked)}{hidden}"
