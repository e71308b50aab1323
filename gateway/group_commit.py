"""Group commit: the writes that arrive together share one transaction and one commit.

Every accepted send writes about fifteen B-tree pages (the IV, the client ref, the task, the
message and their indexes, the balance, the usage) and SQLite's commit appends each dirty
page to the WAL, so a commit per request costs more than the request's own statements. The
requests that reach the event loop together — a campaign keeps 16 or more in flight — are run
one after the other inside one ``BEGIN IMMEDIATE`` … ``COMMIT``: each sees the writes of the
ones before it (balance, caps, usage), a shared page is written once, and every answer waits
for the commit, so nothing is acknowledged that a crash could still lose.

Each piece of work must leave the transaction consistent whatever it does: it either returns
or raises having undone its own partial writes (``EnvelopeGuard`` does this with savepoints,
keeping the IV record of a refused request). If the group cannot commit — the commit fails,
or SQLite rolls the whole transaction back under one piece of work (a full disk, an I/O
error) — nothing of it was kept, and each piece is run again in a transaction of its own:
only the work that cannot be written fails, as without grouping. A piece of work must
therefore be safe to run again after a rollback (it is: it reads everything it decides on
inside the transaction).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection

from gateway.db import Database

T = TypeVar("T")

# A bound on one transaction: the write lock is held (and the loop busy) for the whole group.
MAX_GROUP = 64

_Work = Callable[[Connection], Any]


class TransactionLost(RuntimeError):
    """SQLite ended a group's transaction under one piece of work: none of it was kept."""


class GroupCommit:
    """Runs write work on the event loop, many pieces per transaction.

    Args:
        db: the gateway's database.
        max_group: the most pieces of work in one transaction.
    """

    def __init__(self, db: Database, max_group: int = MAX_GROUP) -> None:
        self.db = db
        self.max_group = max_group
        # Per event loop (a gateway serves from one loop; tests may drive it from several).
        self._queues: dict[asyncio.AbstractEventLoop, list[tuple[_Work, asyncio.Future]]] = {}

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` inside a shared write transaction; its result once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        queue = self._queues.get(loop)
        if queue is None:
            # The flush runs after every request handler that is ready now has queued its work,
            # and after one more poll for requests (see ``_flush``).
            queue = self._queues[loop] = []
            loop.call_soon(self._flush, loop)
        queue.append((work, future))
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop, polled: bool = False) -> None:
        if not polled:
            # Once more round the loop first: its poll for I/O picks up the requests already
            # waiting in the sockets, so that they join this group rather than wait for the next.
            loop.call_soon(self._flush, loop, True)
            return
        queue = self._queues.pop(loop)
        group, rest = queue[: self.max_group], queue[self.max_group :]
        if rest:
            self._queues[loop] = rest
            loop.call_soon(self._flush, loop)
        works = [work for work, _future in group]
        try:
            outcomes = self._run(works)
        except BaseException as exc:  # an interrupt: nothing was kept, and it goes on up
            self._settle(group, [(False, exc)] * len(group))
            raise
        self._settle(group, outcomes)

    def _run(self, works: list[_Work]) -> list[tuple[bool, Any]]:
        """Each work's outcome, committed together; each alone if the group cannot commit."""
        try:
            return self._together(works)
        except Exception as exc:
            if len(works) == 1:
                lost = isinstance(exc, TransactionLost) and exc.__cause__ is not None
                return [(False, exc.__cause__ if lost else exc)]
        # Nothing of the group was kept (a failed commit, or SQLite rolled the whole
        # transaction back under one piece of work: a full disk, an I/O error). Each piece
        # again, in a transaction of its own, exactly as without grouping: only the work
        # that cannot be written fails.
        return [self._run([work])[0] for work in works]

    def _together(self, works: list[_Work]) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        with self.db.write() as conn:
            raw = conn.connection.driver_connection
            for work in works:
                try:
                    outcomes.append((True, work(conn)))
                except Exception as exc:  # a refusal or a bug: handed to its own request
                    outcomes.append((False, exc))
                if not raw.in_transaction:
                    # Some errors (SQLITE_FULL, SQLITE_IOERR, …) end the whole transaction,
                    # not just the statement: what the group did so far is gone, and what
                    # came next would run outside any transaction.
                    failure = outcomes[-1][1] if not outcomes[-1][0] else None
                    raise TransactionLost("the database rolled the group back") from failure
        return outcomes

    @staticmethod
    def _settle(
        group: list[tuple[_Work, asyncio.Future]], outcomes: list[tuple[bool, Any]]
    ) -> None:
        for (_work, future), (ok, value) in zip(group, outcomes, strict=True):
            if future.cancelled():
                continue  # the request went away; its work is committed all the same
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
