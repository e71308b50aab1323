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
from collections.abc import Callable
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


class Attempts:
    """``attempted_at`` of this run's batches: written before their requests go out."""

    def __init__(self, ledger: Ledger, pending: deque[CampaignBatch], *, ahead: int) -> None:
        self.ledger = ledger
        self.pending = pending
        self.ahead = ahead
        self.lock = asyncio.Lock()
        # attempted_at of each batch that has one: from an earlier run, or set by this one
        self.times: dict[int, datetime] = {
            b.id: b.attempted_at for b in pending if b.attempted_at is not None
        }
        self.stamped: set[int] = set()  # set by this run (there was none before)
        self.fate: dict[int, str] = {}
        self.done: set[int] = set()  # sent or refused: no longer planned
        self.refill: asyncio.Task[None] | None = None

    async def before_send(self, batch: CampaignBatch) -> None:
        """Return once ``batch`` has its ``attempted_at`` in the ledger (committed).

        The next batches are stamped in the background while the first ones are sent, so
        that a worker seldom waits for a ledger transaction.
        """
        if batch.id not in self.times:
            await self._stamp(batch)
        soon = itertools.islice(self.pending, self.ahead // 2)
        if (self.refill is None or self.refill.done()) and any(
            b.id not in self.times for b in soon
        ):
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
        """Sent or refused for good: the batch is no longer planned."""
        self.fate.pop(batch.id, None)
        self.done.add(batch.id)

    def to_clear(self) -> list[int]:
        """Batches whose attempted_at should go: this run's requests sent nothing."""
        stamped = [i for i in self.stamped - self.done if self.fate.get(i) != UNKNOWN]
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
        pending: deque[CampaignBatch],
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
            batch = pending.popleft()
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
