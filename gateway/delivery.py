"""The callback sender: a background task posting outbox events, at least once, signed.

Design, for throughput on a small machine (≥ 1,000 events/s into the console's ledger):
rows are claimed in batches (one transaction leases many), posted concurrently over one
aiohttp session (keep-alive connections; httpx's pool was the bottleneck), and their
outcomes settled in batches. A 2xx settles an event as delivered; anything else schedules
a retry with exponential backoff, until the event is too old (or has used its attempts)
and is dead-lettered with the reason. A destination the address rules refuse is
dead-lettered at once. Each attempt is signed afresh with the current time, so a retry
hours later still passes the receiver's timestamp window.

The host's address is checked by the resolver the connection itself uses: the addresses
checked are exactly the ones connected to, so DNS cannot swap a refused one in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import socket
from collections.abc import Callable

import aiohttp
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

from gateway.addresses import AddressRules
from gateway.clock import to_ms
from gateway.outbox import DEAD, DONE, PENDING, Claimed, Outbox, Settlement
from kedacore.signing import sign_event

log = logging.getLogger("gateway.callbacks")

USER_AGENT = "KedaSMS-Gateway/1 (callbacks)"
MAX_RESPONSE = 64 * 1024  # what is read of an answer; the rest is not our business


class RefusedDestination(OSError):
    """The destination breaks the callback address rules."""


class GuardedResolver(ThreadedResolver):
    """Resolves like aiohttp's default, then refuses when any address breaks the rules."""

    def __init__(self, rules: AddressRules) -> None:
        super().__init__()
        self.rules = rules

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        problem = self.rules.name_problem(host, port)
        if problem:
            raise RefusedDestination(problem)
        hosts = await super().resolve(host, port, family)
        for entry in hosts:
            ip = ipaddress.ip_address(entry["host"].split("%", 1)[0])
            problem = self.rules.address_problem(ip, port)
            if problem:  # one bad answer is enough: rebinding tricks mix good and bad
                raise RefusedDestination(f"{host} resolves to {problem}")
        return hosts


def _refusal(exc: BaseException) -> RefusedDestination | None:
    """The address refusal behind an aiohttp error, if that is what it was."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, RefusedDestination):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _describe(exc: BaseException) -> str:
    """A short reason without the URL (its path may hold the receiver's token)."""
    os_error = getattr(exc, "os_error", None)
    detail = getattr(os_error, "strerror", None) or ""
    return f"{type(exc).__name__}{': ' + detail if detail else ''}"


class CallbackSender:
    """Delivers the outbox of one gateway, from ``run()`` until cancelled."""

    def __init__(
        self,
        outbox: Outbox,
        rules: AddressRules,
        clock: Callable[[], float],
        *,
        concurrency: int = 128,
        timeout: float = 10.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        max_attempts: int | None = None,
        dead_after: float = 24 * 3600,
        batch: int = 500,
        interval: float = 0.05,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency!r}")
        self.outbox = outbox
        self.rules = rules
        self.clock = clock
        self.concurrency = concurrency
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_attempts = max_attempts
        self.dead_after = dead_after
        self.batch = max(1, batch)
        self.interval = interval
        # Claimed rows may wait their turn behind others; the lease outlasts that wait.
        self.max_outstanding = 2 * concurrency
        self.lease_seconds = timeout * (self.max_outstanding / concurrency + 1) + 30
        self._outstanding = 0
        self._results: list[Settlement] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gate: asyncio.Semaphore | None = None
        self._session: aiohttp.ClientSession | None = None
        self._jitter = random.Random()
        outbox.wake = self.wake

    def wake(self) -> None:
        """New events to send: look at the outbox now rather than at the next poll."""
        loop, event = self._loop, self._event
        if loop is None or event is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(event.set)

    async def run(self) -> None:
        """Send until cancelled; events claimed by a dead predecessor are sent again first."""
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self._outstanding, self._results = 0, []  # a restarted run owes nothing
        self._gate = asyncio.Semaphore(self.concurrency)
        released = self.outbox.release_leases()
        if released:
            log.info("%d callback events claimed before a restart are due again", released)
        connector = aiohttp.TCPConnector(
            limit=self.concurrency, resolver=GuardedResolver(self.rules), ttl_dns_cache=10
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"User-Agent": USER_AGENT, "Content-Type": "application/json"},
            auto_decompress=False,
        )
        try:
            while True:
                try:
                    more = self._step()
                except Exception:
                    log.exception("callback sender step failed; retrying")
                    more = False
                if more:
                    await asyncio.sleep(0)  # a full claim: more may be due already
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._event.wait(), self._idle_wait())
        finally:
            await self._shutdown()

    def _step(self) -> bool:
        """Settle what finished, claim what fits; True when the claim came back full."""
        self._event.clear()  # type: ignore[union-attr]
        self._flush()
        room = self.max_outstanding - self._outstanding
        if room < self.concurrency and self._outstanding:
            return False  # claim in batches, not a row at a time
        size = min(room, self.batch)
        claimed = self.outbox.claim(size, self.lease_seconds)
        for item in claimed:
            self._outstanding += 1
            task = asyncio.create_task(self._deliver(item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(claimed) == size

    def _flush(self) -> None:
        if not self._results:
            return
        results, self._results = self._results, []
        try:
            self.outbox.settle(results)
        except Exception:
            self._results[:0] = results  # keep them; the next step tries again
            raise
        for s in results:
            if s.state == DEAD:
                log.warning("callback event #%d dead-lettered: %s", s.id, s.error)

    def _idle_wait(self) -> float:
        if self._outstanding or self._results:
            return self.interval
        due = self.outbox.next_due()
        if due is None:
            return 1.0  # new rows wake us; this is only a safety net
        return min(1.0, max(self.interval, (due - to_ms(self.clock())) / 1000))

    async def _deliver(self, item: Claimed) -> None:
        try:
            settlement = await self._attempt(item)
        except Exception as exc:  # never lose an outcome: a surprise is a failed attempt
            log.exception("callback event #%d: unexpected error", item.id)
            settlement = self._failed(item, None, _describe(exc))
        self._outstanding -= 1
        self._results.append(settlement)
        # Wake the loop when a batch can be claimed or settled, or all is done; otherwise the
        # next poll settles: one transaction per completion would cost more than the posts.
        if self._outstanding in (0, self.concurrency) or len(self._results) >= self.batch:
            self.wake()

    async def _attempt(self, item: Claimed) -> Settlement:
        problem = self.rules.url_problem(item.url)  # literal addresses skip the resolver
        if problem:
            return Settlement(item.id, DEAD, error=f"refused destination: {problem}")
        stamp = str(int(self.clock()))
        headers = {
            "X-Keda-Event-Id": item.event_id,
            "X-Keda-Timestamp": stamp,
            "X-Keda-Signature": sign_event(item.body, stamp, item.key),
        }
        assert self._gate is not None and self._session is not None
        async with self._gate:
            try:
                async with self._session.post(
                    item.url, data=item.body, headers=headers, allow_redirects=False
                ) as response:
                    read = 0
                    async for chunk in response.content.iter_any():
                        read += len(chunk)
                        if read > MAX_RESPONSE:
                            break  # the connection is dropped rather than drained
                    code = response.status
            except TimeoutError:
                return self._failed(item, None, f"timed out after {self.timeout:g} s")
            except (aiohttp.ClientError, OSError) as exc:
                refused = _refusal(exc)
                if refused is not None:
                    return Settlement(item.id, DEAD, error=f"refused destination: {refused}")
                return self._failed(item, None, _describe(exc))
        if 200 <= code < 300:
            return Settlement(item.id, DONE, code=code)
        return self._failed(item, code, f"HTTP {code}")

    def _failed(self, item: Claimed, code: int | None, error: str) -> Settlement:
        """Retry later with exponential backoff, or dead-letter when too old or tried out."""
        now = self.clock()
        deadline = item.created_at / 1000 + self.dead_after
        out_of_attempts = self.max_attempts is not None and item.attempts >= self.max_attempts
        if out_of_attempts or now >= deadline:
            why = f"{item.attempts} attempts" if out_of_attempts else f"{self.dead_after:g} s"
            return Settlement(item.id, DEAD, code=code, error=f"{error}; gave up after {why}")
        delay = min(self.backoff_cap, self.backoff_base * 2 ** (item.attempts - 1))
        delay *= self._jitter.uniform(0.75, 1.0)  # spread a burst of failures apart
        next_at = min(now + delay, deadline)  # one last try at the deadline
        return Settlement(item.id, PENDING, next_at=to_ms(next_at), code=code, error=error)

    async def _shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # Finished attempts are recorded; cancelled ones keep their lease until the next
        # start releases it (their outcome is unknown, so they are sent again).
        with contextlib.suppress(Exception):
            self._flush()
        if self._session is not None:
            await self._session.close()
        self._loop = self._event = None
