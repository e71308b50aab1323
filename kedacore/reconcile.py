"""Reconciliation: ask the status API about every message the ledger still thinks is open.

Callbacks can fail to reach the console (it was down, a firewall, no public address); this
brings the ledger up to date anyway. A task with enough of its messages open is asked about
as a whole (``client.sms.task``: one request for up to 1,000 messages); the rest one msgid at a
time (``client.sms.status``), with at most ``concurrency`` requests in flight. Against the
gateway on loopback one answer for a 1,000-message task took as long as ~16 single lookups,
so a task is asked about whole once 5 % of it (``task_share``) is open. Answers go
through the ledger's no-regression rule and are recorded as lookups, in groups (one
transaction per group, written while the next answers arrive).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kedacore.api.types import FINAL_STATUSES, MessageStatus
from kedacore.ledger import Ledger, Outcome

MAX_ERROR_SAMPLES = 5


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What a reconciliation did."""

    checked: int  # open messages the service answered for
    updated: int  # of those, whose status moved forward
    now_final: int  # of those, now in a final status
    errors: int  # open messages that could not be checked (not_found included)
    not_found: int  # the service does not know the msgid
    task_requests: int
    status_requests: int
    seconds: float
    error_samples: tuple[str, ...] = ()


@dataclass
class _Tally:
    checked: int = 0
    updated: int = 0
    now_final: int = 0
    errors: int = 0
    not_found: int = 0
    task_requests: int = 0
    status_requests: int = 0
    samples: list[str] = field(default_factory=list)

    def error(self, what: str, exc: BaseException) -> None:
        self.errors += 1
        if _is_not_found(exc):
            self.not_found += 1
        if len(self.samples) < MAX_ERROR_SAMPLES:
            self.samples.append(f"{what}: {type(exc).__name__}: {exc}")


def _is_not_found(exc: BaseException) -> bool:
    """A NotFoundError of kedacore.api.errors, or anything else carrying a 404 / 4004."""
    return getattr(exc, "http_status", None) == 404 or getattr(exc, "code", None) in (
        "4004",
        "404",
        404,
    )


async def reconcile(
    ledger: Ledger,
    client: Any,
    *,
    concurrency: int = 16,
    limit: int | None = None,
    task_share: float = 0.05,
    group_size: int = 1000,
) -> ReconcileReport:
    """Bring every non-final message of the ledger up to date from the status API.

    Args:
        ledger: the ledger to read open messages from and write answers to.
        client: an AsyncKedaClient (anything with ``await client.sms.status(msgid)`` and
            ``await client.sms.task(task_id)``).
        concurrency: the most requests in flight at once.
        limit: check at most this many open messages (the oldest first).
        task_share: ask about a whole task when at least this share of it is open.
        group_size: the most answers written to the ledger in one transaction.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency!r}")
    started = time.perf_counter()
    tally = _Tally()
    open_messages = await asyncio.to_thread(ledger.non_final_messages, limit=limit)
    by_task: dict[str, list[str]] = defaultdict(list)
    for m in open_messages:
        by_task[m.task_id].append(m.msgid)
    sizes = await asyncio.to_thread(ledger.task_message_counts, list(by_task))
    whole_tasks = {
        t for t, ids in by_task.items() if len(ids) > 1 and len(ids) >= task_share * sizes.get(t, 0)
    }
    singles = [m for t, ids in by_task.items() if t not in whole_tasks for m in ids]

    answers: asyncio.Queue[list[MessageStatus] | None] = asyncio.Queue()
    gate = asyncio.Semaphore(concurrency)

    async def one(msgid: str) -> None:
        async with gate:
            tally.status_requests += 1
            try:
                result = await client.sms.status(msgid)
            except Exception as exc:
                tally.error(msgid, exc)
                return
        if result.msgid != msgid:
            tally.error(msgid, ValueError(f"the answer was about {result.msgid!r}"))
            return
        answers.put_nowait([result])

    async def whole(task_id: str) -> None:
        wanted = set(by_task[task_id])
        async with gate:
            tally.task_requests += 1
            try:
                results = await client.sms.task(task_id)
            except Exception:
                results = []  # asked again one msgid at a time below, errors counted there
        found = [r for r in results if r.msgid in wanted]
        if found:
            answers.put_nowait(found)
        missing = wanted - {r.msgid for r in found}
        await asyncio.gather(*(one(m) for m in by_task[task_id] if m in missing))

    writer = asyncio.create_task(_write(ledger, answers, tally, group_size))
    try:
        await asyncio.gather(*(whole(t) for t in whole_tasks), *(one(m) for m in singles))
    finally:
        answers.put_nowait(None)
        await writer
    return ReconcileReport(
        checked=tally.checked,
        updated=tally.updated,
        now_final=tally.now_final,
        errors=tally.errors,
        not_found=tally.not_found,
        task_requests=tally.task_requests,
        status_requests=tally.status_requests,
        seconds=time.perf_counter() - started,
        error_samples=tuple(tally.samples),
    )


async def _write(
    ledger: Ledger,
    answers: asyncio.Queue[list[MessageStatus] | None],
    tally: _Tally,
    group_size: int,
) -> None:
    """Write answers as they come: everything waiting, up to ``group_size``, per transaction."""
    done = False
    while not done:
        group: list[MessageStatus] = []
        item = await answers.get()
        while True:
            if item is None:
                done = True
            else:
                group.extend(item)
            if done or len(group) >= group_size or answers.empty():
                break
            item = answers.get_nowait()
        if group:
            outcomes = await asyncio.to_thread(ledger.apply_lookups, group, source="reconcile")
            _count(tally, group, outcomes)


def _count(tally: _Tally, group: Sequence[MessageStatus], outcomes: Sequence[Outcome]) -> None:
    for result, outcome in zip(group, outcomes, strict=True):
        tally.checked += 1
        if outcome is Outcome.APPLIED:
            tally.updated += 1
            if result.status in FINAL_STATUSES:
                tally.now_final += 1
