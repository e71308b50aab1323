"""One run of a campaign: workers send the planned batches, a writer records their answers.

``CampaignEngine`` (kedacore.campaign) makes a :class:`Sender` and a :class:`RunState` per run,
starts ``concurrency`` workers and one writer. What a worker does with each answer is the table
of docs/campaigns.md.

:class:`Attempts` keeps each batch's ``attempted_at`` (kedacore.ledger.batches): it is written
before a request goes out — for a few batches ahead of the workers, one transaction each time —
and cleared at the end of the run for the batches whose requests are known to have sent
nothing (never sent; refused by a cap or the balance; rate limited, refused credentials). What
stays is the time of a request whose answer was lost: a resume more than 23 h later holds that
batch for a check instead of sending it again, since its ``clientRef`` may be forgotten by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from kedacore.api.async_client import AsyncKedaClient
from kedacore.api.errors import (
    APIConnectionError,
    AuthenticationError,
    CapReachedError,
    ConfigurationError,
    InsufficientBalanceError,
    KedaError,
    RateLimitError,
    ValidationError,
)
from kedacore.api.types import SendResult
from kedacore.campaign.progress import RunTally
from kedacore.ledger import CampaignBatch, Ledger
from kedacore.money import recurring_micros
from kedacore.redaction import redact_secrets, url_secrets

Results = asyncio.Queue[tuple[str, CampaignBatch, Any] | None]

# The fate of a batch's last request in this run.
UNKNOWN = "unknown"  # it went out and no answer says what happened: it may have been sent
NOTHING = "nothing"  # the answer says this request sent nothing (rate limit, credentials)
# A cap or the balance refused it: the service checks clientRef first, so it does not know
# this batch's clientRef, and no earlier request of the batch was accepted either.
NOT_KNOWN = "not known"


class Pacer:
    """At most ``rate`` requests a second (a token bucket of ``burst``); ``rate`` None: no pace.

    The service limits each API key (KedaSMS and the sandbox: 100 requests/s, then 4029 with
    ``Retry-After``), and the console's own pages read with the same key: a campaign sent as
    fast as it can leaves them nothing ("too many requests" on a reload). Paced at a share of
    the limit, it leaves the rest to them. A 4029 all the same (someone else uses the key too)
    halves the pace, down to a tenth; each second without one gives a tenth back.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be > 0 requests/s (or None), got {rate!r}")
        self.ceiling = rate
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else (rate or 4) / 4)
        self.clock = clock
        self.tokens = self.burst
        self.at = clock()
        self.slowed_at = -1e9
        self.slowed_to = rate  # the pace right after the last 4029
        self.slowdowns = 0

    async def take(self) -> None:
        """Wait for this request's turn (tokens are reserved in order: no lock is needed)."""
        if self.rate is None:
            return
        now = self.clock()
        self._recover(now)
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate) - 1
        self.at = now
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / self.rate)

    def slow_down(self) -> None:
        """The service said 4029: halve the pace (a tenth of the ceiling at least)."""
        self.slowdowns += 1
        if self.rate is None or self.ceiling is None:
            return
        now = self.clock()
        if now - self.slowed_at < 0.5:  # the requests in flight answered together: once
            return
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.rate = self.slowed_to = max(self.ceiling / 10, self.rate / 2)
        self.slowed_at = now

    def _recover(self, now: float) -> None:
        """A tenth of the ceiling back per calm second, from a second after the last 4029."""
        if self.ceiling is None or self.rate is None or self.rate >= self.ceiling:
            return
        calm = now - self.slowed_at - 1.0
        if calm > 0 and self.slowed_to is not None:
            self.rate = min(self.ceiling, self.slowed_to + self.ceiling / 10 * calm)


def _quiet(task: asyncio.Task[None]) -> None:
    """A background stamping that failed: the next worker stamps its own batch (and fails
    loudly if the ledger still cannot be written)."""
    if not task.cancelled():
        task.exception()


# Planned batches read from the ledger at a time (Pending): a page of personalised batches
# is a few hundred kB; one of shared-text batches (≤ 1,000 numbers each) at most the whole
# campaign, as before (KEDA_MAX_ROWS).
PAGE = 1000


class Pending:
    """The batches a run has still to send, read from the ledger a page at a time.

    In plan order: the next page is read (in a thread) while the workers send the last half
    of this one, so that a run holds about a page of batches — not the whole campaign — and
    starts sending after one page is read. Only this run sends the campaign's planned
    batches (one runner per campaign), so a page past the last one read holds exactly the
    batches that were planned and not yet read. A batch given back (``appendleft``: rate
    limited, or not sent at all) is the next one out.
    """

    def __init__(
        self,
        ledger: Ledger,
        campaign_id: int,
        *,
        page: int | None = None,
        due_by: Callable[[], datetime] | None = None,
    ) -> None:
        self.ledger = ledger
        self.campaign_id = campaign_id
        # A scheduled campaign: only the batches due by then (its clock, read at each page).
        self.due_by = due_by
        self.page = page or PAGE
        self.buffer: deque[CampaignBatch] = deque()
        self.after = 0  # the seq of the last batch read
        self.more = True  # pages past ``after`` may hold planned batches
        self.loading: asyncio.Task[None] | None = None
        self.readers: list[Callable[[list[CampaignBatch]], None]] = []  # told of each page

    def first_page(self) -> None:
        """Read the first page (in the calling thread, before the run starts)."""
        self._add(self._read())

    def _read(self) -> list[CampaignBatch]:
        due = self.due_by() if self.due_by is not None else None
        return self.ledger.planned_batches(
            self.campaign_id, after_seq=self.after, limit=self.page, due_by=due
        )

    def _add(self, batches: list[CampaignBatch]) -> None:
        self.buffer.extend(batches)
        self.more = len(batches) >= self.page
        if batches:
            self.after = batches[-1].seq
        for reader in self.readers:
            reader(batches)

    def __bool__(self) -> bool:
        return bool(self.buffer) or self.more

    def __iter__(self) -> Iterator[CampaignBatch]:
        """The batches read and not yet taken, in order."""
        return iter(self.buffer)

    def peek(self, count: int) -> CampaignBatch | None:
        """The last of the next ``count`` batches read (None when none is)."""
        buffer = self.buffer
        return buffer[min(count, len(buffer)) - 1] if buffer else None

    def at_most(self, count: int) -> int:
        """``count``, or fewer when fewer batches are left (the first page was the last)."""
        return count if self.more else min(count, len(self.buffer))

    async def take(self) -> CampaignBatch | None:
        """The next batch to send; None when none is left."""
        while not self.buffer and self.more:
            await asyncio.shield(self._load())
        if self.more and len(self.buffer) <= self.page // 2:
            self._load()  # the next page, read while these are sent
        return self.buffer.popleft() if self.buffer else None

    def appendleft(self, batch: CampaignBatch) -> None:
        """Give a batch back: it is the next one taken."""
        self.buffer.appendleft(batch)

    def _load(self) -> asyncio.Task[None]:
        """The page being read (one at a time), started if none is."""
        if self.loading is None or self.loading.done():
            self.loading = asyncio.create_task(self._next_page())
            self.loading.add_done_callback(_quiet)  # a failure is met by the next reader
        return self.loading

    async def _next_page(self) -> None:
        self._add(await asyncio.to_thread(self._read))

    async def close(self) -> None:
        """Wait for a page being read (a run ends with no task of its own left running)."""
        if self.loading is not None:
            with contextlib.suppress(BaseException):
                await self.loading


class Attempts:
    """``attempted_at`` of this run's batches: written before their requests go out.

    Only the batches not yet settled are remembered: a run of 100,000 batches keeps about a
    page of them, and those whose fate is unknown.
    """

    def __init__(self, ledger: Ledger, pending: Pending, *, ahead: int) -> None:
        self.ledger = ledger
        self.pending = pending
        self.ahead = ahead
        self.lock = asyncio.Lock()
        # attempted_at of each batch that has one: from an earlier run, or set by this one
        self.times: dict[int, datetime] = {}
        self.stamped: set[int] = set()  # set by this run (there was none before), not settled
        self.fate: dict[int, str] = {}
        self.refill: asyncio.Task[None] | None = None
        self.read(list(pending))
        pending.readers.append(self.read)

    def read(self, batches: list[CampaignBatch]) -> None:
        """Batches read from the ledger: the attempts earlier runs left on them."""
        self.times.update((b.id, b.attempted_at) for b in batches if b.attempted_at is not None)

    async def before_send(self, batch: CampaignBatch) -> None:
        """Return once ``batch`` has its ``attempted_at`` in the ledger (committed).

        The next batches are stamped in the background while the first ones are sent, so
        that a worker seldom waits for a ledger transaction.
        """
        if batch.id not in self.times:
            await self._stamp(batch)
        if self.refill is None or self.refill.done():
            # Stamping takes the first batches without a stamp, and batches leave from the
            # front: the stamped ones lead the line, so the last of the next ahead/2 tells
            # whether all of them have one (looking at each cost 5 % of a run's CPU).
            edge = self.pending.peek(self.ahead // 2)
            if edge is not None and edge.id not in self.times:
                self.refill = asyncio.create_task(self._stamp(None))
                self.refill.add_done_callback(_quiet)

    async def _stamp(self, first: CampaignBatch | None) -> None:
        async with self.lock:
            if first is not None and first.id in self.times:  # done while this waited
                return
            # The next `ahead` batches without one (past those stamped already).
            fresh = (b.id for b in self.pending if b.id not in self.times)
            ids = list(itertools.islice(fresh, self.ahead))
            if first is not None and first.id not in ids:
                ids.insert(0, first.id)
            if not ids:
                return
            at = self.ledger.now()
            await asyncio.to_thread(self.ledger.mark_batches_attempted, ids, at=at)
            self.stamped.update(ids)
            self.times.update(dict.fromkeys(ids, at))

    async def close(self) -> None:
        """Wait for a background stamping (its batches must be known before ``to_clear``)."""
        if self.refill is not None:
            with contextlib.suppress(BaseException):
                await self.refill

    def went_out(self, batch: CampaignBatch, fate: str = UNKNOWN) -> None:
        """Its request went out (``UNKNOWN``), or this is what its answer showed."""
        self.fate[batch.id] = fate

    def settled(self, batch: CampaignBatch) -> None:
        """Sent or refused for good: the batch is no longer planned (and forgotten here: it
        is never taken again, and it was stamped before its request went out)."""
        self.fate.pop(batch.id, None)
        self.stamped.discard(batch.id)
        self.times.pop(batch.id, None)

    def to_clear(self) -> list[int]:
        """Batches whose attempted_at should go: this run's requests sent nothing."""
        stamped = [i for i in self.stamped if self.fate.get(i) != UNKNOWN]
        return sorted({*stamped, *(i for i, f in self.fate.items() if f == NOT_KNOWN)})

    def unanswered(self) -> list[datetime]:
        """When the batches whose requests may have been sent (no answer) were attempted."""
        return sorted(self.times[i] for i, f in self.fate.items() if f == UNKNOWN)


@dataclass
class RunState:
    """One run's counters and the reason it must stop launching requests."""

    halt: str | None = None  # the pause reason (cap, balance, credentials, unreachable)
    short_balance: bool = False
    not_before: float = 0.0  # rate limited: no request before this loop time
    failures_in_a_row: int = 0
    patience: int = 32  # failures in a row (unreachable, 5xx) that pause the campaign
    balance: Decimal | None = None  # read when the balance ran short
    balance_at: datetime | None = None  # when it was read
    crash: BaseException | None = None
    write_error: Exception | None = None
    last_error: str | None = None
    tally: RunTally | None = None
    attempts: Attempts | None = None
    pause_requested: bool = False  # heard from the ledger (engine._watch)
    pacer: Pacer | None = None

    def stopping(self, stop: threading.Event | None) -> bool:
        """Whether to launch no more requests."""
        if self.halt is not None or self.pause_requested:
            return True
        if self.tally and self.tally.callback_error:
            return True
        return stop is not None and stop.is_set()


class Sender:
    """Sends batches and records the answers, for the options of one CampaignEngine."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        callback_url: str | None,
        track_click: bool,
        write_group: int,
        linger: float,
    ) -> None:
        self.ledger = ledger
        self.callback_url = callback_url
        self.track_click = track_click
        self.write_group = write_group
        self.linger = linger
        # Set once no more answers can come: the writer stops lingering for company.
        self.finished = asyncio.Event()
        # The callback URL carries the receiver's secret token: never let an error echo it.
        self.secrets = url_secrets(callback_url)

    def say(self, error: BaseException | str) -> str:
        """An error as the ledger may keep it: no callback token, no URL secret."""
        return redact_secrets(str(error), self.secrets)

    async def worker(
        self,
        client: AsyncKedaClient,
        pending: Pending,
        results: Results,
        state: RunState,
        stop: threading.Event | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        attempts = state.attempts
        assert attempts is not None
        while pending and not state.stopping(stop):
            wait = state.not_before - loop.time()
            if wait > 0:  # in steps, so that a stop is heard during a long Retry-After
                await asyncio.sleep(min(wait, 0.5))
                continue
            if state.pacer is not None:
                await state.pacer.take()
                if not pending or state.stopping(stop):  # heard while waiting its turn
                    break
            batch = await pending.take()
            if batch is None:
                break
            if state.stopping(stop):  # heard while a page was read
                pending.appendleft(batch)
                break
            try:
                await attempts.before_send(batch)
            except BaseException:
                pending.appendleft(batch)  # not sent: no attempted_at, no request
                raise
            attempts.went_out(batch)
            try:
                # Sent with its clientRef: a repeat (resume, client retry) returns the first
                # answer instead of sending again. That is also why the client may retry it.
                result = await client.sms.send(
                    batch.country,
                    list(batch.recipients),
                    batch.content,
                    sender_id=batch.sender,
                    track_click=self.track_click,
                    callback_url=self.callback_url,
                    client_ref=batch.client_ref,
                )
            except CapReachedError as exc:
                attempts.went_out(batch, NOT_KNOWN)
                which = exc.cap or "a daily cap"
                state.halt = state.halt or (
                    f"Paused: {which} reached — {self.say(exc.message)}. Raise the cap in "
                    "Limits and resume, or resume once it resets at 00:00 UTC."
                )
                await results.put(("error", batch, self.say(exc)))
            except InsufficientBalanceError as exc:
                attempts.went_out(batch, NOT_KNOWN)
                state.short_balance = True
                state.halt = state.halt or "Paused: insufficient balance"
                await results.put(("error", batch, self.say(exc)))
            except ValidationError as exc:
                attempts.settled(batch)
                await results.put(("refused", batch, self.say(exc)))
            except RateLimitError as exc:
                attempts.went_out(batch, NOTHING)
                if state.pacer is not None:
                    state.pacer.slow_down()
                # Wait as told, then carry on: the batch goes back to the front of the line.
                delay = exc.retry_after if exc.retry_after is not None else 1.0
                state.not_before = max(state.not_before, loop.time() + delay)
                pending.appendleft(batch)
            except (AuthenticationError, ConfigurationError) as exc:
                attempts.went_out(batch, NOTHING)
                why = self.say(exc)
                state.halt = state.halt or f"Paused: KedaSMS refused the credentials — {why}"
                await results.put(("error", batch, why))
            except KedaError as exc:  # unreachable, timed out, 5xx: stays planned, resend later
                why = self.say(exc)  # the fate stays UNKNOWN: it may have been accepted
                state.failures_in_a_row += 1
                state.last_error = why
                await results.put(("error", batch, why))
                # Every request failing in a row: the service is down; do not try them all.
                if state.failures_in_a_row >= state.patience:
                    down = "cannot be reached" if isinstance(exc, APIConnectionError) else "fails"
                    state.halt = state.halt or f"Paused: KedaSMS {down} — {why}"
            else:
                attempts.settled(batch)
                state.failures_in_a_row = 0
                await results.put(("sent", batch, result))

    async def writer(self, results: Results, tally: RunTally, state: RunState) -> None:
        """Record answers in groups: what arrives during one transaction joins the next."""
        done = False
        while not done:
            group = [await results.get()]
            if group[0] is not None and results.qsize() < self.write_group:
                # One transaction costs ~3 ms however many answers it holds: let them gather,
                # unless the sending is over (the last answers are all there already).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.finished.wait(), self.linger)
            recipients = 0
            while not results.empty() and len(group) < self.write_group and recipients < 20_000:
                item = results.get_nowait()
                group.append(item)
                recipients += len(item[1].recipients) if item is not None else 0
            done = group[-1] is None
            items = [item for item in group if item is not None]
            if not items:
                continue
            sent = [(batch.id, result) for kind, batch, result in items if kind == "sent"]
            refused = [(batch, why) for kind, batch, why in items if kind == "refused"]
            errors = [(batch.id, why) for kind, batch, why in items if kind == "error"]
            try:
                await asyncio.to_thread(self.record, sent, refused, errors)
            except Exception as exc:
                # Sending on without a record would only make work for the resume (the
                # unrecorded answers are replayed by clientRef then): stop here.
                state.write_error = exc
                why = self.say(exc)
                state.halt = state.halt or f"Paused: the ledger could not be written — {why}"
                return
            for kind, batch, result in items:
                if kind == "sent":
                    tally.sent(len(batch.recipients), recurring_micros(result.debited_amount))
                elif kind == "refused":
                    tally.refused(len(batch.recipients))
            tally.maybe_notify()

    def record(
        self,
        sent: list[tuple[int, SendResult]],
        refused: list[tuple[CampaignBatch, str]],
        errors: list[tuple[int, str]],
    ) -> None:
        if sent:
            self.ledger.mark_batches_sent(sent)
        for batch, why in refused:
            self.ledger.mark_batch_refused(batch.id, why)
        for batch_id, why in errors:
            self.ledger.note_batch_error(batch_id, why)
