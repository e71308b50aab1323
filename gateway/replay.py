"""Replay protection: each (account, IV) pair is accepted once, and recorded for good.

DESIGN.md: the IV is recorded on every successful decryption, whatever happens next, and
apart from that record a refused request changes nothing. ``EnvelopeGuard.guarded`` runs a
handler's work after the IV record and a savepoint: a refusal (``ApiError``) — or any other
exception, even an unexpected one that answers 5000 — rolls back to the savepoint, so the IV
alone is committed, and propagates. ``EnvelopeGuard.run`` does this in a transaction shared
with the requests that arrive at the same time (``gateway.group_commit``);
``EnvelopeGuard.transaction`` in a transaction of its own.

The window is checked again once the write lock is held. ``prune_ivs`` forgets IVs whose
timestamp the window refuses; without the second check, a request that passed the window
before waiting for the lock (up to the busy timeout, or longer behind a slow writer) could
find its IV pruned meanwhile and be accepted a second time. Under the lock the two are
ordered: whatever a committed prune forgot, the window now refuses. Pruning also keeps a
margin (the busy timeout and a minute), so that a clock stepped back a little cannot
reopen the window of a forgotten IV either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Connection, delete
from sqlalchemy.dialects.sqlite import insert

from gateway.db import BUSY_TIMEOUT_MS, Database, used_ivs
from gateway.errors import ApiError
from gateway.group_commit import GROUP_BUDGET, GroupCommit
from gateway.sql import Prepared
from kedacore import envelope as env
from kedacore.envelope import Envelope

T = TypeVar("T")

# Built once: statements are on the hot path of every send.
_RECORD_IV = Prepared(insert(used_ivs).on_conflict_do_nothing())
# IVs are kept this long past the window: the busy timeout a request may wait, and a minute.
PRUNE_MARGIN_SECONDS = BUSY_TIMEOUT_MS // 1000 + 60


def record_iv(conn: Connection, account_id: int, envelope: Envelope) -> bool:
    """Record the IV; False when this account already used it."""
    params = {"account_id": account_id, "iv": envelope.iv, "timestamp": envelope.timestamp}
    return _RECORD_IV.run(conn, params).rowcount == 1


class EnvelopeGuard:
    """The write transaction of every decrypted request (send, short link).

    Args:
        db: the gateway's database.
        clock: Unix seconds (the gateway's clock).
        window: accepted skew of an envelope's timestamp, seconds.
        admit: called with the account id once the IV is recorded; raises to refuse (the
            rate limit's 4029). The IV stays recorded: a throttled body is spent.
        group_budget: seconds of the loop's CPU time one group commit may take before it commits
            and lets others be served (``gateway.group_commit``).
    """

    def __init__(
        self,
        db: Database,
        clock: Callable[[], float],
        window: int,
        admit: Callable[[int], None] | None = None,
        group_budget: float = GROUP_BUDGET,
    ) -> None:
        self.db = db
        self.group = GroupCommit(db, budget=group_budget)
        self.clock = clock
        self.window = window
        self.admit = admit

    @contextmanager
    def transaction(self, account_id: int, envelope: Envelope) -> Iterator[Connection]:
        """A transaction of its own: the guarded steps, committed (with the IV) even on refusal."""
        failure: BaseException | None = None
        with self.db.write() as conn:  # BEGIN IMMEDIATE: the write lock is ours from here
            try:
                with self.guarded(conn, account_id, envelope):
                    yield conn
            except BaseException as exc:  # a refusal, or a bug: the body is spent either way
                failure = exc
        if failure is not None:
            raise failure

    async def run(self, account_id: int, envelope: Envelope, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` guarded, in a transaction shared with the requests arriving with it
        (the group takes the accounts in turn)."""

        def guarded_work(conn: Connection) -> T:
            with self.guarded(conn, account_id, envelope):
                return work(conn)

        return await self.group.run(guarded_work, key=account_id)

    @contextmanager
    def guarded(self, conn: Connection, account_id: int, envelope: Envelope) -> Iterator[None]:
        """Window again under the lock (1002), the IV (1003), admission (4029), the work.

        Inside a write transaction someone else commits. Whatever is raised, the transaction
        is left as it was before, except for the IV record once the IV was accepted.
        """
        # Nothing is written before the IV record, and a failed statement leaves nothing
        # behind (SQLite undoes a statement that fails; an error that ends the whole
        # transaction is the group commit's to handle): no savepoint is needed before it.
        self._check_window_and_record_iv(conn, account_id, envelope)
        # A plain SQL savepoint on the driver: a tenth of the cost of begin_nested().
        raw = conn.connection.driver_connection
        raw.execute("SAVEPOINT refusal")
        try:
            if self.admit is not None:
                self.admit(account_id)
            yield
        except BaseException:  # a refusal, or a bug: the body is spent either way
            raw.execute("ROLLBACK TO refusal")  # keeps only the IV record
            raise
        finally:
            raw.execute("RELEASE refusal")

    def _check_window_and_record_iv(
        self, conn: Connection, account_id: int, envelope: Envelope
    ) -> None:
        try:
            env.check_window(envelope.timestamp, now=self.clock(), window=self.window)
        except env.EnvelopeError as err:
            raise ApiError(err.code, str(err)) from None
        if not record_iv(conn, account_id, envelope):
            raise ApiError("1003", "replayed request: this IV was already used with this API key")


def prune_ivs(db: Database, now: float, window: int) -> int:
    """Forget IVs whose timestamp the window check refuses anyway (so no replay can pass)."""
    horizon = int(now) - window - PRUNE_MARGIN_SECONDS
    with db.write() as conn:
        return conn.execute(delete(used_ivs).where(used_ivs.c.timestamp < horizon)).rowcount
