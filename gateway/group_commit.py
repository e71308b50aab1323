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
keeping the IV record of a refused request). If the commit itself fails, every piece of work
in the group fails with that error and none of their writes is kept.
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
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self.db.write() as conn:
                for work, _future in group:
                    try:
                        outcomes.append((True, work(conn)))
                    except Exception as exc:  # a refusal or a bug: handed to its own request
                        outcomes.append((False, exc))
        except BaseException as exc:  # the commit failed (or an interrupt): nothing was kept
            outcomes = [(False, exc)] * len(group)
            if not isinstance(exc, Exception):
                self._settle(group, outcomes)
                raise
        self._settle(group, outcomes)

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
