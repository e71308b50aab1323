"""The campaign engine: plan into the ledger first, then send every planned batch exactly once.

``CampaignEngine.create`` writes the campaign and all its batches (each with its own
``clientRef``) before any request. ``run`` sends every batch still ``planned`` concurrently and
records each answer; a cap or balance refusal pauses the campaign; ``resume`` is ``run`` again.
A batch whose request went out but whose answer was lost (a crash, a killed process) is still
``planned``: it is sent again with the same ``clientRef``, and the service answers with the first
send's result instead of sending again — so every recipient gets the message exactly once. The
service remembers a ``clientRef`` for 24 h only: a batch whose request went out more than 23 h
before the resume is not sent again but held as ``uncertain`` (kedacore.ledger.batches), for
someone to check on the Status page and then ``resend_uncertain`` (or cancel).

Streamlit runs a page's script in a thread without an event loop: ``run_sync`` runs the engine
there on a loop of its own (uvloop where installed: :func:`run_loop`); ``start`` runs it in a
background thread of the server process that outlives the browser session, and ``progress``
reads how far it got from the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from kedacore.api.async_client import AsyncKedaClient
from kedacore.api.errors import KedaError
from kedacore.campaign.plan import CampaignPlan
from kedacore.campaign.progress import (
    CampaignBusyError,
    CampaignProgress,
    CampaignReport,
    CampaignRun,
    RunTally,
    claim,
    end_of_run,
    holder,
    paused_here,
    progress_of,
    progress_setter,
    release,
)
from kedacore.campaign.run import Attempts, Pacer, Pending, Results, RunState, Sender
from kedacore.campaign.schedule import (
    Schedule,
    arm_timer,
    disarm,
    first_time,
    reschedule_batches,
    schedule_plan,
)
from kedacore.ledger import Ledger, LedgerMessage, PlannedBatch
from kedacore.ledger import schema as ledger_schema

logger = logging.getLogger("kedacore.campaign")
T = TypeVar("T")

# Requests in flight at once. A gateway that commits the requests arriving together in one
# transaction (ours does) spends less per request the more arrive together, and with more in
# flight it works on the next group while this process reads the answers to the last: on
# the 2-core machine, 64 sent a personalised campaign of 10,000 in 3.6 s where 32 took 4.1 s
# and 16 took 4.9 s (docs/benchmarks.md). A rate limit is handled by retries.
DEFAULT_CONCURRENCY = 64
# Statuses no run may send: waiting for another member's approval, or rejected by one
# (kedacore.ledger.approvals). An approval makes the campaign planned again.
HELD = {"awaiting": "waits for approval", "rejected": "was rejected"}

ClientFactory = Callable[[], AsyncKedaClient]


class CampaignEngine:
    """Plans campaigns into the ledger and sends them through an ``AsyncKedaClient``.

    Args:
        ledger: where plans, tasks and messages are recorded.
        client_factory: makes a new ``AsyncKedaClient`` (called once per run, on its loop).
        callback_url: passed with every send, for status callbacks.
        track_click: replace URLs with per-recipient short links (the estimate is of the text
            as written; the service bills the rewritten text).
        write_group: the most answers recorded per ledger transaction.
        linger: seconds the writer lets answers gather before a transaction.
        progress_interval: the least time between two progress callbacks, in seconds.
        watch_interval: how often a run looks at the ledger for a pause asked elsewhere.
        rate: at most this many requests a second (``kedacore.campaign.run.Pacer``): a share
            of the service's per-key limit, so that the key's other users (the console's
            pages) keep some. None: as fast as ``concurrency`` allows.
    """

    def __init__(
        self,
        ledger: Ledger,
        client_factory: ClientFactory,
        *,
        callback_url: str | None = None,
        track_click: bool = False,
        write_group: int = 500,
        linger: float = 0.1,
        progress_interval: float = 0.25,
        watch_interval: float = 0.25,
        rate: float | None = None,
    ) -> None:
        self.ledger = ledger
        self.client_factory = client_factory
        self.callback_url = callback_url
        self.track_click = track_click
        self.write_group = write_group
        self.linger = linger
        self.progress_interval = progress_interval
        self.watch_interval = watch_interval
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be > 0 requests/s (or None), got {rate!r}")
        self.rate = rate

    # -- planning and reading ----------------------------------------------------------------

    def create(
        self,
        plan: CampaignPlan,
        *,
        name: str,
        created_by: str | None = None,
        options: dict[str, Any] | None = None,
        list_id: int | None = None,
        schedule: Schedule | None = None,
    ) -> int:
        """Write the campaign and every batch of ``plan`` to the ledger; returns its id.

        ``schedule``: when each part goes (kedacore.campaign.schedule): each batch gets its
        ``not_before``, and a campaign whose first part is ahead is ``scheduled``.

        Nothing is sent: the plan (with a unique clientRef per batch) is in the ledger before
        the first request, which is what makes a resume send every recipient exactly once.
        ``options``: its send options (``kedacore.campaign.tasks.SendOptions.as_json``), kept
        in the ledger for whichever process runs it. ``list_id``: the contact list it goes to.
        """
        if not plan.requests:
            raise ValueError("the plan has no recipients to send to")
        campaign_id = self.ledger.create_campaign(
            name,
            template=plan.template,
            sender=plan.sender,
            created_by=created_by,
            currency=plan.currency,
            options=options,
            list_id=list_id,
        )
        try:
            if schedule is None or (schedule.mode == "now" and schedule.quiet is None):
                self.ledger.plan_campaign(campaign_id, plan.batches(), returned=False)
            else:
                self._plan_scheduled(campaign_id, plan, schedule)
        except BaseException:
            self.ledger.set_campaign_status(campaign_id, "cancelled", error="planning failed")
            raise
        return campaign_id

    def _plan_scheduled(
        self,
        campaign_id: int,
        plan: CampaignPlan | None,
        schedule: Schedule,
        *,
        replan: bool = False,
    ) -> datetime:
        """Plan (or replan) with each batch's ``not_before``; returns when the first part
        goes. ``scheduled`` when that is ahead, else ``planned`` (start it now). ``plan``
        None (a replan): the campaign's planned batches, with new times."""
        now = self.ledger.now()
        if plan is not None:
            batches = schedule_plan(plan, schedule, now)
        else:
            planned = [
                PlannedBatch(b.country, b.content, b.recipients, b.estimated_micros, b.sender)
                for b in self.ledger.campaign_batches(campaign_id, states=("planned",))
            ]
            batches = reschedule_batches(planned, schedule, now)
        if replan:
            self.ledger.replan_campaign(campaign_id, batches)
        else:
            self.ledger.plan_campaign(campaign_id, batches, returned=False)
        first = first_time(batches) or now
        status = "scheduled" if first > now else "planned"
        self.ledger.set_campaign_schedule(campaign_id, first, schedule.as_json(), status=status)
        return first

    def reschedule(
        self,
        campaign_id: int,
        plan: CampaignPlan | None,
        schedule: Schedule,
        *,
        by: str | None = None,
    ) -> datetime:
        """New times for a campaign none of whose batches was sent or tried (ValueError
        otherwise): its plan is made again from ``plan`` (None: its own planned batches),
        with fresh clientRefs. Returns when its first part goes now; audited
        ``campaign_reschedule`` when ``by`` is given."""
        if self.is_running(campaign_id):
            raise CampaignBusyError(f"campaign {campaign_id} is being sent; stop it first")
        before = self.ledger.campaign_schedule(campaign_id)
        disarm(self.ledger.url, campaign_id)
        first = self._plan_scheduled(campaign_id, plan, schedule, replan=True)
        if by is not None:
            self.ledger.audit(
                by,
                "campaign_reschedule",
                target=f"campaign {campaign_id}",
                before=before,
                after={**schedule.as_json(), "first_part_at": first},
            )
        return first

    def wake_scheduled(self) -> list[int]:
        """Start every scheduled campaign with a part due now, and arm a timer for the others
        (what a runner does when it starts: after a restart the times are in the ledger).
        Returns the campaigns started."""
        started = []
        for campaign_id in self.ledger.scheduled_campaigns():
            due, nxt = self.ledger.next_part_at(campaign_id)
            if due and not self.is_running(campaign_id):
                self.start(campaign_id)
                started.append(campaign_id)
            elif nxt is not None:
                self.arm(campaign_id, nxt, replace=False)  # a timer armed since stands
        return started

    def arm(self, campaign_id: int, when: datetime, *, replace: bool = True) -> bool:
        """Start the campaign at ``when`` (a timer of this process; real time, from the
        ledger's clock), if it is still scheduled then. ``replace=False``: only if no timer
        is armed for it (``arm_timer``). Returns whether this timer was armed."""
        delay = max(0.0, (when - self.ledger.now()).total_seconds())

        def wake() -> None:
            # Still armed until the run holds the campaign: a watcher looking meanwhile
            # (console.messaging.campaign_schedule.wake_due) sees one or the other, never
            # neither, and leaves it to this start.
            try:
                if self.ledger.campaign_status(campaign_id) == "scheduled":
                    self.start(campaign_id)
                    self.ledger.audit(
                        "schedule",
                        "campaign_start",
                        target=f"campaign {campaign_id}",
                        detail="its time came (timer)",
                    )
            except Exception:
                logger.exception("campaign %s: the scheduled start failed", campaign_id)
            finally:
                disarm(self.ledger.url, campaign_id, only=timer)

        timer = threading.Timer(delay, wake)
        timer.daemon = True
        return arm_timer(self.ledger.url, campaign_id, timer, replace=replace)

    def progress(self, campaign_id: int) -> CampaignProgress:
        """The campaign's progress as the ledger has it (what a page polls)."""
        campaign = self.ledger.campaign(campaign_id)
        if campaign is None:
            raise KeyError(f"no campaign {campaign_id!r}")
        counts = self.ledger.campaign_batch_counts(campaign_id)
        return progress_of(campaign, counts, running=self.is_running(campaign_id))

    def messages(self, campaign_id: int, *, limit: int | None = None) -> list[LedgerMessage]:
        """The campaign's recorded messages (status, cost, times), oldest first."""
        where = ledger_schema.messages.c.campaign_id == campaign_id
        return self.ledger._messages(where, limit=limit)  # the ledger's own message reader

    def is_running(self, campaign_id: int) -> bool:
        """Whether a run of this campaign is under way in this process."""
        return holder(self.ledger.url, campaign_id)[0]

    def background_run(self, campaign_id: int) -> CampaignRun | None:
        """The background run of this campaign started by :meth:`start`, if any."""
        return holder(self.ledger.url, campaign_id)[1]

    def resend_uncertain(self, campaign_id: int, batch_ids: list[int] | None = None) -> int:
        """Let batches held as ``uncertain`` be sent by the next run (someone checked on the
        Status page that their recipients got nothing); returns how many. Start the run next.
        """
        if self.is_running(campaign_id):
            raise CampaignBusyError(f"campaign {campaign_id} is being sent; stop it first")
        return self.ledger.release_uncertain_batches(campaign_id, batch_ids)

    def cancel(self, campaign_id: int) -> None:
        """Cancel a campaign that is not running: its planned batches will never be sent."""
        if self.is_running(campaign_id):
            raise CampaignBusyError(f"campaign {campaign_id} is being sent; stop it first")
        self._not_held(campaign_id)
        disarm(self.ledger.url, campaign_id)  # a scheduled start: never
        # A run a timer began a moment ago (between the check above and here) hears the cancel
        # within a watch interval and stops (_watch), as a cancel from another process.
        self.ledger.set_campaign_status(campaign_id, "cancelled", error="cancelled")

    def _not_held(self, campaign_id: int, status: str | None = None) -> None:
        """ValueError when the campaign waits for approval or was rejected."""
        status = status if status is not None else self.ledger.campaign_status(campaign_id)
        if status in HELD:
            raise ValueError(f"campaign {campaign_id} {HELD[status]}; it cannot be sent")

    # -- running -----------------------------------------------------------------------------

    async def run(
        self,
        campaign_id: int,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        on_progress: Callable[[CampaignProgress], Any] | None = None,
        stop: threading.Event | None = None,
    ) -> CampaignReport:
        """Send every batch still planned, at most ``concurrency`` requests in flight.

        Args:
            campaign_id: a campaign made by :meth:`create`.
            concurrency: requests in flight at once.
            on_progress: called (on this loop's thread) with a :class:`CampaignProgress`
                after answers are recorded, at most every ``progress_interval`` seconds,
                and once at the end.
            stop: set it (from any thread) to launch no new request and pause.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be ≥ 1, got {concurrency!r}")
        claim(self.ledger.url, campaign_id)
        try:
            await asyncio.to_thread(self.ledger.settle_stale_pause, campaign_id)
            return await self._run(campaign_id, concurrency, on_progress, stop)
        finally:
            release(self.ledger.url, campaign_id)

    resume = run

    def run_sync(self, campaign_id: int, **options: Any) -> CampaignReport:
        """:meth:`run` in the calling thread, on a loop of its own (for a Streamlit script)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return run_loop(self.run(campaign_id, **options))
        raise RuntimeError("run_sync was called inside an event loop: await engine.run() there")

    resume_sync = run_sync

    def start(self, campaign_id: int, *, concurrency: int = DEFAULT_CONCURRENCY) -> CampaignRun:
        """Run in a background thread that outlives the page; returns the one already running.

        The thread belongs to the server process, not to a browser session: closing the tab
        does not stop it. A page polls :meth:`progress` (from the ledger) or ``run.progress``.
        """
        self._not_held(campaign_id)  # said here, not in a thread nobody watches
        handle = CampaignRun(campaign_id)
        current = claim(self.ledger.url, campaign_id, handle)  # before the thread: no race
        if current is not handle:
            assert current is not None
            return current
        try:  # from here a stop() reaches this run: its handle, and "pausing" in the ledger
            self.ledger.settle_stale_pause(campaign_id)
        except BaseException:
            release(self.ledger.url, campaign_id)
            raise

        def target() -> None:
            try:
                handle.report = run_loop(
                    self._run(campaign_id, concurrency, progress_setter(handle), handle.stop_event)
                )
                handle.progress = handle.report.progress
            except BaseException as exc:
                handle.error = exc
                logger.exception("campaign %s: the background run failed", campaign_id)
            finally:
                release(self.ledger.url, campaign_id)
            if handle.report is not None and handle.report.status == "scheduled":
                due, nxt = self.ledger.next_part_at(campaign_id)
                when = self.ledger.now() if due else nxt
                if when is not None:  # the next part: started again then (not held meanwhile)
                    self.arm(campaign_id, when)

        handle.thread = threading.Thread(target=target, name=f"campaign-{campaign_id}", daemon=True)
        handle.thread.start()
        return handle

    def stop(self, campaign_id: int) -> bool:
        """Pause the campaign whenever it is asked: the run launches no new request and pauses
        once the requests in flight are answered. Returns False when there is nothing to pause
        (done, cancelled, paused already).

        A run of this process hears it at once (its handle, even before its thread has sent
        anything); any run, of this process or another, hears it from the ledger: the campaign
        is ``pausing`` until the run confirms with ``paused`` and says where it stopped. A
        campaign that no run here sends (interrupted, not started) is paused at once; a run in
        another process then stops at its next look at the ledger.
        """
        handle = self.background_run(campaign_id)
        if handle is not None:
            handle.stop()
        if self.is_running(campaign_id):
            asked = self.ledger.request_pause(campaign_id)
            return asked or handle is not None
        counts = self.ledger.campaign_batch_counts(campaign_id)
        left = counts.get("planned", {})
        reason = f"{paused_here(counts)}; {left.get('recipients', 0):,} recipients in "
        reason += f"{left.get('batches', 0):,} batches are left. Resume to send them."
        return self.ledger.pause_campaign(campaign_id, reason)

    async def _run(
        self,
        campaign_id: int,
        concurrency: int,
        on_progress: Callable[[CampaignProgress], Any] | None,
        stop: threading.Event | None,
    ) -> CampaignReport:
        started = time.monotonic()
        campaign = self.ledger.campaign(campaign_id)
        if campaign is None:
            raise KeyError(f"no campaign {campaign_id!r}")
        if campaign.status == "cancelled":
            raise ValueError(f"campaign {campaign_id} was cancelled; it cannot be sent")
        self._not_held(campaign_id, campaign.status)
        # Of a scheduled campaign this run sends the parts due now, no later one: a part that
        # comes due while it sends is a next run's, which checks the opt-outs again first.
        cutoff = self.ledger.now()
        # Numbers opted out since the plan (while it waited): left out of requests not tried.
        if self.ledger.leave_out_opted_out(campaign_id):
            campaign = self.ledger.campaign(campaign_id) or campaign
        # Requests that went out more than 23 h ago, answer lost: held, not sent again.
        self.ledger.hold_uncertain_batches(campaign_id)
        # Read a page at a time, not all at once (kedacore.campaign.run.Pending); of a
        # scheduled campaign only the batches due (by the ledger's clock).
        due_by = (lambda: cutoff) if campaign.scheduled_at is not None else None
        pending = Pending(self.ledger, campaign_id, due_by=due_by)
        pending.first_page()
        tally = RunTally(
            campaign,
            self.ledger.campaign_batch_counts(campaign_id),
            on_progress,
            self.progress_interval,
        )
        sender = Sender(
            self.ledger,
            callback_url=self.callback_url,
            track_click=self.track_click,
            write_group=self.write_group,
            linger=self.linger,
        )
        attempts = Attempts(self.ledger, pending, ahead=max(64, 4 * concurrency))
        state = RunState(
            patience=max(8, 2 * concurrency),
            tally=tally,
            attempts=attempts,
            pacer=Pacer(self.rate, burst=max(1.0, self.rate / 4)) if self.rate else None,
        )
        if pending and not self.ledger.mark_campaign_sending(campaign_id):
            # Held for approval, rejected or cancelled since the check above: nothing is sent
            # and its status stays. Otherwise Pause was clicked before the first request.
            now = self.ledger.campaign_status(campaign_id)
            if now == "cancelled":
                raise ValueError(f"campaign {campaign_id} was cancelled; it cannot be sent")
            self._not_held(campaign_id, now)
            state.pause_requested = True
        results: Results = asyncio.Queue()
        writer = asyncio.create_task(sender.writer(results, tally, state))
        watcher = asyncio.create_task(self._watch(campaign_id, state, sender.finished))
        try:
            if pending:
                async with self.client_factory() as client:
                    workers = [
                        asyncio.create_task(sender.worker(client, pending, results, state, stop))
                        for _ in range(pending.at_most(concurrency))
                    ]
                    try:
                        await asyncio.gather(*workers)
                    finally:
                        for task in workers:  # after a failure, in-flight batches stay planned
                            task.cancel()
                        await asyncio.gather(*workers, return_exceptions=True)
                    if state.short_balance:
                        state.balance = await _balance(client)
                        state.balance_at = self.ledger.now()
        except BaseException as exc:
            state.crash = exc
            raise
        finally:
            sender.finished.set()
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await results.put(None)
            await writer  # every answer received is recorded (unless the ledger failed)
            await attempts.close()
            await pending.close()
            status, reason = self._finish(campaign_id, state, stop)
            final = progress_of(
                self.ledger.campaign(campaign_id),
                self.ledger.campaign_batch_counts(campaign_id),
                running=False,
            )
            tally.notify(final)
        if state.write_error is not None:
            raise state.write_error
        if tally.callback_error is not None:
            raise tally.callback_error
        return tally.report(status, reason, time.monotonic() - started, final)

    async def _watch(self, campaign_id: int, state: RunState, finished: asyncio.Event) -> None:
        """Look at the campaign's status in the ledger every ``watch_interval`` s: ``pausing``
        (a Pause from any process), ``paused`` or ``cancelled`` stop the run like ``stop``."""
        while not finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), self.watch_interval)
                return
            try:
                status = await asyncio.to_thread(self.ledger.campaign_status, campaign_id)
            except Exception:  # the ledger is busy or gone: the writer will say so
                continue
            if status in ("pausing", "paused", "cancelled"):
                state.pause_requested = True
                return

    def _finish(
        self, campaign_id: int, state: RunState, stop: threading.Event | None
    ) -> tuple[str, str | None]:
        """Forget the attempts that sent nothing; set the campaign's status and say why."""
        assert state.attempts is not None
        self.ledger.clear_batch_attempts(state.attempts.to_clear())
        campaign = self.ledger.campaign(campaign_id)
        status, reason = end_of_run(
            self.ledger.campaign_batch_counts(campaign_id),
            halt=state.halt,
            short_balance=state.short_balance,
            balance=state.balance,
            currency=getattr(campaign, "currency", ""),
            interrupted=(state.tally and state.tally.callback_error) or state.crash,
            stopped=(stop is not None and stop.is_set()) or state.pause_requested,
            last_error=state.last_error,
            unanswered=state.attempts.unanswered(),
            balance_at=state.balance_at,
        )
        if status == "paused" and not (
            state.halt or state.short_balance or state.crash or state.pause_requested
        ):
            # Only later parts of a scheduled campaign are left: it waits for them. One that
            # came due while this run sent (past its cutoff) goes at once, in a run of its own.
            stopped = (stop is not None and stop.is_set()) or bool(
                state.tally and state.tally.callback_error
            )  # a run that stopped for a reason: paused, as any
            due, nxt = self.ledger.next_part_at(campaign_id)
            held = self.ledger.campaign_batch_counts(campaign_id).get("uncertain")
            scheduled = campaign is not None and campaign.scheduled_at is not None
            if not stopped and not held and ((due and scheduled) or (not due and nxt)):
                status = "scheduled"
                reason = (
                    "Its next part came due while this part was sent: it goes now."
                    if due
                    else f"The next part goes at {nxt:%Y-%m-%d %H:%M:%S} UTC."
                )
        # Cancelled while it ran (the command line, another replica): it stays cancelled, and
        # what is left is never sent (a cancelled campaign cannot be resumed).
        if not self.ledger.set_campaign_status(
            campaign_id, status, error=reason, unless=("cancelled",)
        ):
            return "cancelled", "cancelled while it was being sent"
        return status, reason


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop where it is installed (not on Windows).

    A campaign of personalised texts is one request per recipient, and the sending process
    shares the machine's cores with the gateway: uvloop's event loop takes 10–15 % less CPU per
    request than asyncio's own (README.md, "Using the library"). Everything the engine does
    is plain asyncio, so either loop runs it the same way.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def _balance(client: AsyncKedaClient) -> Decimal | None:
    """The balance, to say how short it is; None when it cannot be read."""
    try:
        return (await client.account.balance()).balance
    except KedaError:
        return None


__all__ = [
    "CampaignBusyError",
    "CampaignEngine",
    "CampaignProgress",
    "CampaignReport",
    "CampaignRun",
    "ClientFactory",
]
