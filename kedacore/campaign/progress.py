"""What a campaign run reports, and the runs under way in this process.

``CampaignProgress`` is read from the ledger (``CampaignEngine.progress``) or handed to a
run's ``on_progress`` callback; ``CampaignRun`` is a background run's handle; :func:`end_of_run`
words the status a run leaves its campaign in. One run per campaign at a time in a process:
:func:`claim` holds it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from kedacore.ledger.batches import CLIENT_REF_SAFE_AGE, UNCERTAIN
from kedacore.money import from_micros, money_str


@dataclass(frozen=True, slots=True)
class CampaignProgress:
    """How far a campaign got: batches and recipients sent or refused, money debited."""

    campaign_id: int
    status: str
    error: str | None
    batches: int
    batches_sent: int
    batches_refused: int
    recipients: int
    recipients_sent: int
    recipients_refused: int
    estimated: Decimal
    debited: Decimal
    currency: str
    running: bool = False  # a run of this campaign is under way in this process
    # Held for a check: sent status unknown, answer lost more than 23 h ago (left, not sent)
    batches_uncertain: int = 0
    recipients_uncertain: int = 0
    estimated_left: Decimal = Decimal(0)  # the estimate of the batches still planned

    @property
    def batches_left(self) -> int:
        return self.batches - self.batches_sent - self.batches_refused

    @property
    def recipients_left(self) -> int:
        return self.recipients - self.recipients_sent - self.recipients_refused

    @property
    def fraction(self) -> float:
        """Share of recipients dealt with (sent or refused), 0–1, for a progress bar."""
        done = self.recipients_sent + self.recipients_refused
        return done / self.recipients if self.recipients else 1.0


@dataclass(frozen=True, slots=True)
class CampaignReport:
    """What one run did, and where it left the campaign."""

    campaign_id: int
    status: str  # done or paused
    reason: str | None  # why it paused, or which batches were refused
    batches_sent: int  # by this run
    recipients_sent: int
    debited: Decimal
    batches_refused: int
    seconds: float
    progress: CampaignProgress


class CampaignBusyError(RuntimeError):
    """The campaign is already being sent by another run in this process."""


# Runs under way in this process, by (ledger URL, campaign id): one at a time per campaign.
# A foreground run (run, run_sync) holds None; a background run (start) its handle.
_RUNS: dict[tuple[str, int], CampaignRun | None] = {}
_RUNS_LOCK = threading.Lock()


@dataclass
class CampaignRun:
    """A campaign being sent in a background thread; ``progress`` is its latest report."""

    campaign_id: int
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    progress: CampaignProgress | None = None
    report: CampaignReport | None = None
    error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def stop(self) -> None:
        """Ask the run to launch no new request; the campaign pauses once in-flight ones end."""
        self.stop_event.set()

    def wait(self, timeout: float | None = None) -> CampaignReport | None:
        """Wait for the run to end (at most ``timeout`` s); its report, or None if still running."""
        if self.thread is not None:
            self.thread.join(timeout)
        return self.report


def progress_of(
    campaign: Any, counts: dict[str, dict[str, int]], *, running: bool
) -> CampaignProgress:
    """Progress from a ledger Campaign row and its campaign_batch_counts."""
    sent, refused, held = (counts.get(k, {}) for k in ("sent", "refused", UNCERTAIN))
    planned = counts.get("planned", {})
    return CampaignProgress(
        campaign.id,
        campaign.status,
        campaign.error,
        campaign.batches,
        sent.get("batches", 0),
        refused.get("batches", 0),
        campaign.recipients,
        sent.get("recipients", 0),
        refused.get("recipients", 0),
        from_micros(campaign.estimated_micros),
        from_micros(campaign.debited_micros),
        campaign.currency,
        running,
        held.get("batches", 0),
        held.get("recipients", 0),
        from_micros(planned.get("estimated_micros", 0)),
    )


def progress_setter(handle: CampaignRun) -> Callable[[CampaignProgress], None]:
    """An on_progress callback that keeps the latest progress on the handle."""

    def update(progress: CampaignProgress) -> None:
        handle.progress = progress

    return update


def claim(url: str, campaign_id: int, handle: CampaignRun | None = None) -> CampaignRun | None:
    """Hold a campaign for one run in this process; returns what holds it.

    A foreground run (``handle`` None) is refused while any run holds the campaign; a
    background one gets the background run already holding it (the caller compares).

    Raises:
        CampaignBusyError: another run holds the campaign.
    """
    key = (url, campaign_id)
    with _RUNS_LOCK:
        if key in _RUNS:
            holder = _RUNS[key]
            if handle is not None and holder is not None:
                return holder
            raise CampaignBusyError(f"campaign {campaign_id} is being sent in this process")
        _RUNS[key] = handle
        return handle


def release(url: str, campaign_id: int) -> None:
    """Let go of a campaign held by :func:`claim`."""
    with _RUNS_LOCK:
        _RUNS.pop((url, campaign_id), None)


def holder(url: str, campaign_id: int) -> tuple[bool, CampaignRun | None]:
    """Whether a run holds the campaign in this process, and its background handle if any."""
    with _RUNS_LOCK:
        key = (url, campaign_id)
        return key in _RUNS, _RUNS.get(key)


class RunTally:
    """One run's counts on top of the ledger's at its start; calls on_progress now and then.

    The callback runs on the run's loop thread, at most every ``interval`` seconds and once
    at the end. If it raises (Streamlit stopping the script, say), the run launches nothing
    more, records what is in flight, pauses the campaign, then raises it again.
    """

    def __init__(
        self,
        campaign: Any,
        base: dict[str, dict[str, int]],
        callback: Callable[[CampaignProgress], Any] | None,
        interval: float,
    ) -> None:
        self.campaign = campaign
        self.base = base
        self.callback = callback
        self.interval = interval
        self.sent_batches = self.sent_recipients = self.debited_micros = 0
        self.refused_batches = self.refused_recipients = 0
        self.callback_error: BaseException | None = None
        self._last = 0.0

    def sent(self, recipients: int, debited_micros: int) -> None:
        self.sent_batches += 1
        self.sent_recipients += recipients
        self.debited_micros += debited_micros

    def refused(self, recipients: int) -> None:
        self.refused_batches += 1
        self.refused_recipients += recipients

    def current(self) -> CampaignProgress:
        """Progress so far: the ledger's counts at the start plus what this run recorded."""
        c, sent, refused = self.campaign, self.base.get("sent", {}), self.base.get("refused", {})
        return CampaignProgress(
            c.id,
            "sending",
            None,
            c.batches,
            sent.get("batches", 0) + self.sent_batches,
            refused.get("batches", 0) + self.refused_batches,
            c.recipients,
            sent.get("recipients", 0) + self.sent_recipients,
            refused.get("recipients", 0) + self.refused_recipients,
            from_micros(c.estimated_micros),
            from_micros(c.debited_micros + self.debited_micros),
            c.currency,
            running=True,
            batches_uncertain=self.base.get(UNCERTAIN, {}).get("batches", 0),
            recipients_uncertain=self.base.get(UNCERTAIN, {}).get("recipients", 0),
        )

    def maybe_notify(self) -> None:
        """Report progress unless the last report was less than ``interval`` ago."""
        now = time.monotonic()
        if self.callback is not None and now - self._last >= self.interval:
            self._last = now
            self.notify(self.current())

    def notify(self, progress: CampaignProgress) -> None:
        """Report ``progress`` to the callback (never again once it has raised)."""
        if self.callback is None or self.callback_error is not None:
            return
        try:
            self.callback(progress)
        except BaseException as exc:  # kept, and raised by the run once it has paused
            self.callback_error = exc

    def report(
        self, status: str, reason: str | None, seconds: float, final: CampaignProgress
    ) -> CampaignReport:
        """What this run did."""
        return CampaignReport(
            self.campaign.id,
            status,
            reason,
            self.sent_batches,
            self.sent_recipients,
            from_micros(self.debited_micros),
            self.refused_batches,
            seconds,
            final,
        )


def end_of_run(
    counts: dict[str, dict[str, int]],
    *,
    halt: str | None,
    short_balance: bool,
    balance: Decimal | None,
    currency: str,
    interrupted: BaseException | None,
    stopped: bool,
    last_error: str | None,
    unanswered: Sequence[datetime] = (),
    balance_at: datetime | None = None,
) -> tuple[str, str | None]:
    """The status a run leaves its campaign in (done or paused) and why, for a person.

    ``unanswered``: when the requests that got no answer (and may have been sent) went out;
    ``balance_at``: when ``balance`` was read.
    """
    left, refused, held = (counts.get(k, {}) for k in ("planned", "refused", UNCERTAIN))
    if not left.get("batches") and not held.get("batches"):
        if not refused.get("batches"):
            return "done", None
        return "done", (
            f"{refused['batches']} batches ({refused['recipients']} recipients) were refused "
            "by KedaSMS; see each batch's error."
        )
    notes = []
    if held.get("batches"):
        notes.append(
            f"{held['recipients']} recipients in {held['batches']} batches need a check: sent "
            "status unknown, the answer was lost more than 23 h ago (longer than KedaSMS "
            "remembers a clientRef). Check them on the Status page before resending them."
        )
    if unanswered:
        by = (unanswered[0] + CLIENT_REF_SAFE_AGE).strftime("%Y-%m-%d %H:%M UTC")
        notes.append(
            f"{len(unanswered)} requests got no answer and may have been sent: resume before "
            f"{by} so that KedaSMS recognises them by their clientRef; after that they are "
            "held for a check instead of being sent again."
        )
    if not left.get("batches"):
        return "paused", "Paused: " + " ".join(notes)
    remaining = f"{left['recipients']:,} recipients in {left['batches']:,} batches are left"
    if short_balance:
        needed = from_micros(left["estimated_micros"])
        reason = f"{_balance_reason(needed, balance, currency, balance_at)} ({remaining}.)"
    elif halt is not None:
        reason = f"{halt} ({remaining}.)"
    elif interrupted is not None:
        reason = f"Interrupted ({type(interrupted).__name__}); {remaining}. Resume to send them."
    elif stopped:
        reason = f"{paused_here(counts)}; {remaining}. Resume to send them."
    else:
        reason = (
            f"{remaining}: {last_error or 'the run ended early'}. Resume to try them again "
            "(no recipient is sent twice)."
        )
    return "paused", " ".join([reason, *notes])


def paused_here(counts: dict[str, dict[str, int]]) -> str:
    """Where a pause someone asked for left the campaign: ``Paused at your request: 1,380 of
    1,983 recipients sent``."""
    total = sum(v.get("recipients", 0) for v in counts.values())
    sent = counts.get("sent", {}).get("recipients", 0)
    return f"Paused at your request: {sent:,} of {total:,} recipients sent"


def _balance_reason(
    needed: Decimal, balance: Decimal | None, currency: str, read_at: datetime | None
) -> str:
    """Why a run paused for the balance. The reason is kept and shown later, after top-ups
    perhaps: the balance is said as it was, with the time it was read."""
    need = f"Paused: insufficient balance — the batches left need {money_str(needed)} {currency}"
    if balance is None:
        return f"{need}. Top up, then resume."
    short = max(needed - balance, Decimal(0))
    when = f" at {read_at.astimezone(UTC):%H:%M} UTC" if read_at is not None else ""
    return (
        f"{need}; the balance was {money_str(balance)} {currency}{when}: top up at least "
        f"{money_str(short)} {currency}, then resume."
    )
