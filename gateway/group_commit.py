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

Fairness. All of this runs on the event loop, so while a group runs nothing else is served.
Two rules keep one account's heavy work (a 1,000-recipient send, its numbers parsed and its
rows written) from holding another account's requests back. A group takes the queued work
round-robin by key (the account): each key's first piece, then each key's second, and so
on, each key's pieces in the order they came. And a group stops taking work once it has used
``budget`` seconds of the loop thread's CPU time (CPU, not wall time: a machine busy with
other processes must not split groups of light work): it commits, answers what it ran, and
the rest waits for the next group, after the loop has served what arrived meanwhile.
Another account's request then waits for about one group — at most the piece running when
it came and one more — instead of the whole burst. With the default budget (25 ms) a group
of ordinary sends (~0.3 ms each) is never cut.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import Connection

from gateway.db import Database

T = TypeVar("T")

# A bound on one transaction: the write lock is held (and the loop busy) for the whole group.
MAX_GROUP = 64
# Seconds of the loop thread's CPU time after which a group commits and lets the loop serve
# others.
GROUP_BUDGET = 0.025

_Work = Callable[[Connection], Any]
_Queued = tuple[_Work, asyncio.Future, Hashable]


class TransactionLost(RuntimeError):
    """SQLite ended a group's transaction under one piece of work: none of it was kept."""


class GroupCommit:
    """Runs write work on the event loop, many pieces per transaction.

    Args:
        db: the gateway's database.
        max_group: the most pieces of work in one transaction.
        budget: seconds of CPU time after which a group takes no more work (at least one
            piece runs); 0 for no bound.
    """

    def __init__(
        self, db: Database, max_group: int = MAX_GROUP, budget: float = GROUP_BUDGET
    ) -> None:
        self.db = db
        self.max_group = max_group
        self.budget = budget
        # Per event loop (a gateway serves from one loop; tests may drive it from several).
        self._queues: dict[asyncio.AbstractEventLoop, list[_Queued]] = {}

    async def run(self, work: Callable[[Connection], T], key: Hashable = None) -> T:
        """``work(conn)`` inside a shared write transaction; its result once committed.

        ``key`` (the account) is whose work it is: groups take the keys in turn.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        queue = self._queues.get(loop)
        if queue is None:
            # The flush runs after every request handler that is ready now has queued its work,
            # and after one more poll for requests (see ``_flush``).
            queue = self._queues[loop] = []
            loop.call_soon(self._flush, loop)
        queue.append((work, future, key))
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop, polled: bool = False) -> None:
        if not polled:
            # Once more round the loop first: its poll for I/O picks up the requests already
            # waiting in the sockets, so that they join this group rather than wait for the next.
            loop.call_soon(self._flush, loop, True)
            return
        queue = _in_turn(self._queues.pop(loop))
        group = queue[: self.max_group]
        works = [work for work, _future, _key in group]
        try:
            outcomes = self._run(works)
        except BaseException as exc:  # an interrupt: nothing was kept, and it goes on up
            self._settle(group, [(False, exc)] * len(group))
            rest = queue[len(group) :]
            if rest:
                self._requeue(loop, rest)
            raise
        # What the budget left out waits for the next group, ahead of what came since.
        rest = queue[len(outcomes) :]
        if rest:
            self._requeue(loop, rest)
        self._settle(group[: len(outcomes)], outcomes)

    def _requeue(self, loop: asyncio.AbstractEventLoop, rest: list[_Queued]) -> None:
        queue = self._queues.get(loop)
        if queue is None:
            self._queues[loop] = rest
            loop.call_soon(self._flush, loop)
        else:
            queue[:0] = rest

    def _over_budget(self, started: float) -> bool:
        return self.budget > 0 and time.thread_time() - started >= self.budget

    def _run(self, works: list[_Work]) -> list[tuple[bool, Any]]:
        """The outcomes of the first works (all of them, unless the budget ran out first),
        committed together; each alone if the group cannot commit."""
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
        outcomes: list[tuple[bool, Any]] = []
        started = time.thread_time()
        for work in works:
            outcomes.append(self._run([work])[0])
            if self._over_budget(started):
                break
        return outcomes

    def _together(self, works: list[_Work]) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        started = time.thread_time()
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
                if self._over_budget(started):
                    break
        return outcomes

    @staticmethod
    def _settle(group: list[_Queued], outcomes: list[tuple[bool, Any]]) -> None:
        for (_work, future, _key), (ok, value) in zip(group, outcomes, strict=True):
            if future.cancelled():
                continue  # the request went away; its work is committed all the same
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


def _in_turn(queue: list[_Queued]) -> list[_Queued]:
    """The queue round-robin by key: every key's first piece, then every key's second, …"""
    first_key = queue[0][2]
    if all(item[2] == first_key for item in queue):
        return queue  # one account (the usual case): as it came
    seen: dict[Hashable, int] = {}
    ranked = []
    for position, item in enumerate(queue):
        turn = seen.get(item[2], 0)
        seen[item[2]] = turn + 1
        ranked.append((turn, position))
    ranked.sort()
    return [queue[position] for _turn, position in ranked]
