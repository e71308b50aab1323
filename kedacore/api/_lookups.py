"""``AsyncKedaClient.sms.status_many``: many status lookups, in batches where the service can.

Our gateway answers up to 1,000 msgids in one request (``POST /sms/status/batch``, an
extension: docs/protocol.md). A service without it — the real KedaSMS, an older gateway —
answers that call with a 404 (or another "no such call"), and the lookups fall back to the
seed's ``GET /sms/status?msgid=``, one request per msgid, within the service's rate limit:
a ``4029`` pauses every request of the lookup for its ``Retry-After`` and is not counted as
one of a request's retries, so no msgid is given up merely for being throttled.

Work goes in rounds (a few batches, or about a hundred single lookups); between rounds the
caller's ``on_progress(done, total, answers)`` is called from the calling task, outside any
task group, so an exception it raises — or the cancellation of the calling task — stops the
lookup there, with nothing more sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import anyio

from . import _endpoints as ep
from ._http import MAX_RETRY_AFTER, POOL_LIMITS, Endpoint, log_retry, retry_delay
from .errors import APIConnectionError, APIError, KedaError, NotFoundError, RateLimitError
from .types import MessageStatus, StatusBatch

logger = logging.getLogger("kedacore")

T = TypeVar("T")
Answer = MessageStatus | KedaError
ProgressCallback = Callable[[int, int, dict[str, Answer]], object]

BATCH_ROUND = 4  # batch requests in flight between two progress reports (4,000 msgids)
SINGLE_ROUND = 100  # single lookups between two progress reports (1 s at 100 requests/s)
MAX_THROTTLED = 50  # 4029 answers to one request before its msgid is given up as throttled
# How a service without the batch call answers it: no such path or method, or a body it
# does not understand. (Our gateway answers the batch call with none of these.)
UNSUPPORTED = frozenset({400, 404, 405, 422, 501})


class LookupClient(Protocol):
    """What the lookups need of AsyncKedaClient."""

    max_retries: int
    _status_batch: bool | None  # None: not known yet whether the service has the batch call
    _jitter: Callable[[], float]
    _sleep: Callable[[float], Any]

    async def _attempt(self, endpoint: Endpoint[T]) -> T: ...


class Pace:
    """The requests of one lookup, paced together after a ``4029``."""

    def __init__(self, client: LookupClient) -> None:
        self.client = client
        self.resume_at = 0.0  # time.monotonic() before which no request of this lookup goes

    async def call(self, endpoint: Endpoint[T]) -> T:
        """One call: throttled calls wait for the service, others are retried as usual."""
        client = self.client
        retries = throttled = 0
        while True:
            wait = self.resume_at - time.monotonic()
            if wait > 0:
                await client._sleep(wait)
            try:
                return await client._attempt(endpoint)
            except RateLimitError as exc:
                throttled += 1
                delay = 1.0 if exc.retry_after is None else exc.retry_after
                if throttled > MAX_THROTTLED or delay > MAX_RETRY_AFTER:
                    raise
                self.resume_at = max(self.resume_at, time.monotonic() + delay)
            except (APIError, APIConnectionError) as exc:
                delay = retry_delay(endpoint, exc, retries, client.max_retries, client._jitter)
                if delay is None or getattr(exc, "http_status", None) == 501:  # never passes
                    raise
                log_retry(endpoint, exc, delay, retries)
                await client._sleep(delay)
                retries += 1


def not_found(msgid: str) -> NotFoundError:
    """What a batch's ``notFound`` means for one msgid: as the single lookup's 404."""
    return NotFoundError(f"message {msgid!r} not found", code="404", http_status=404)


def batch_answers(msgids: Sequence[str], batch: StatusBatch) -> dict[str, Answer]:
    found = {m.msgid: m for m in batch.messages}
    return {m: found[m] if m in found else not_found(m) for m in msgids}


def unsupported(exc: KedaError) -> bool:
    """Whether an answer to the batch call says the service does not have it."""
    return isinstance(exc, APIError) and exc.http_status in UNSUPPORTED


async def status_many(
    client: LookupClient,
    msgids: Sequence[str],
    *,
    concurrency: int,
    batch_size: int,
    on_progress: ProgressCallback | None,
) -> dict[str, Answer]:
    """Every msgid (checked, each once) with its MessageStatus or its KedaError."""
    total = len(msgids)
    results: dict[str, Answer] = {}

    def report(answers: dict[str, Answer]) -> None:
        results.update(answers)
        if on_progress is not None and answers:
            on_progress(len(results), total, answers)

    pace = Pace(client)
    singles: Sequence[str] = msgids
    if total > 1 and client._status_batch is not False:
        batchable = [m for m in msgids if len(m) <= ep.MAX_BATCH_MSGID]
        await _in_batches(client, pace, batchable, batch_size, concurrency, report)
        singles = [m for m in msgids if m not in results]  # a long id; all, without the call
    if singles:
        await _one_by_one(pace, singles, concurrency, report)
    return {m: results[m] for m in msgids}


async def _in_batches(
    client: LookupClient,
    pace: Pace,
    msgids: list[str],
    size: int,
    concurrency: int,
    report: Callable[[dict[str, Answer]], None],
) -> None:
    """Ask in batches of ``size``; nothing is answered when the service lacks the call."""
    chunks = [msgids[i : i + size] for i in range(0, len(msgids), size)]
    if chunks and client._status_batch is None:  # the first batch alone: is the call there?
        first = chunks.pop(0)
        try:
            batch = await pace.call(ep.sms_status_batch(first))
        except KedaError as exc:
            if unsupported(exc):
                client._status_batch = False
                logger.info("sms.status_batch: not offered by the service; one msgid a request")
                return
            report(dict.fromkeys(first, exc))
        else:
            client._status_batch = True
            report(batch_answers(first, batch))
    width = max(1, min(BATCH_ROUND, concurrency))
    for start in range(0, len(chunks), width):
        answers: dict[str, Answer] = {}
        async with anyio.create_task_group() as group:
            for chunk in chunks[start : start + width]:
                group.start_soon(_ask_batch, pace, chunk, answers)
        report(answers)


async def _ask_batch(pace: Pace, chunk: list[str], answers: dict[str, Answer]) -> None:
    try:
        answers.update(batch_answers(chunk, await pace.call(ep.sms_status_batch(chunk))))
    except KedaError as exc:
        answers.update(dict.fromkeys(chunk, exc))


async def _one_by_one(
    pace: Pace,
    msgids: Sequence[str],
    concurrency: int,
    report: Callable[[dict[str, Answer]], None],
) -> None:
    """The seed's call, one msgid a request, ``concurrency`` in flight."""
    workers = min(concurrency, POOL_LIMITS.max_connections or concurrency)
    size = max(SINGLE_ROUND, workers)
    for start in range(0, len(msgids), size):
        part = msgids[start : start + size]
        pending = iter(part)  # shared: each id is taken by exactly one worker
        answers: dict[str, Answer] = {}
        async with anyio.create_task_group() as group:
            for _ in range(min(workers, len(part))):
                group.start_soon(_ask_each, pace, pending, answers)
        report({m: answers[m] for m in part})


async def _ask_each(pace: Pace, pending: Iterator[str], answers: dict[str, Answer]) -> None:
    for msgid in pending:
        try:
            answers[msgid] = await pace.call(ep.sms_status(msgid))
        except KedaError as exc:
            answers[msgid] = exc
