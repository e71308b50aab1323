"""When a campaign goes, on New campaign: now, at a time, or at each recipient's local time,
with quiet hours; the parts and their times before Confirm; the scheduled start.

The time arithmetic is ``kedacore.campaign.schedule``'s. A campaign whose first part is ahead
is ``scheduled`` in the ledger: on SQLite this server starts it at its time (a timer armed at
Confirm, and again whenever the server starts: :func:`wake_once`, the times are in the
ledger); on PostgreSQL its job waits in the queue for its time (procrastinate's
``schedule_at``) and a worker runs it. Until its first part is sent it can be cancelled
(nothing sent, nothing charged) like any campaign not started.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, time, timedelta
from time import monotonic
from zoneinfo import available_timezones

import streamlit as st

from console import access
from console.messaging.campaign_state import engine_for, start_campaign
from console.messaging.campaigns import options_of
from console.shell import ON_SETUP, Console
from console.views import plain
from kedacore.campaign.engine import CampaignBusyError, CampaignEngine
from kedacore.campaign.plan import CampaignPlan
from kedacore.campaign.progress import holder
from kedacore.campaign.schedule import (
    DEFAULT_QUIET,
    Schedule,
    ScheduleError,
    armed,
    parts_of,
)
from kedacore.campaign.tasks import (
    QueuedCampaignEngine,
    cancel_waiting,
    enqueue,
    uses_workers,
)
from kedacore.team import Permission

logger = logging.getLogger(__name__)
WHEN = ("Now", "At a time", "At each recipient's local time")
MAX_PARTS_SHOWN = 50


@st.cache_data(show_spinner=False)
def zones() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z or z == "UTC")


def schedule_inputs(
    console: Console, *, prefix: str = "campaigns"
) -> tuple[Schedule | None, list[str]]:
    """The When and Quiet hours fields: the schedule (None: now) and what blocks sending."""
    when = st.radio("When", WHEN, key=f"{prefix}_when", horizontal=True)
    if when == WHEN[0]:
        return None, []
    member = getattr(console.tz, "key", "UTC")
    choices = zones()
    tomorrow = (datetime.now(console.tz) + timedelta(days=1)).date()
    day_col, time_col, zone_col = st.columns(3)
    day = day_col.date_input("Date", value=tomorrow, key=f"{prefix}_when_date")
    at = time_col.time_input("Time", value=time(9, 0), step=60, key=f"{prefix}_when_time")
    local = when == WHEN[2]
    zone = zone_col.selectbox(
        "Zone of numbers of no known zone" if local else "Time zone",
        choices,
        index=choices.index(member) if member in choices else choices.index("UTC"),
        key=f"{prefix}_when_zone",
        help="Your zone by default." + (" Each number's zone comes from its prefix." * local),
    )
    quiet_on = st.toggle(
        "Quiet hours (recipient's time): hold messages until they end",
        value=True,
        key=f"{prefix}_quiet",
    )
    quiet = None
    if quiet_on:
        start_col, end_col = st.columns(2)
        start = start_col.time_input(
            "Quiet from", value=DEFAULT_QUIET[0], step=900, key=f"{prefix}_quiet_from"
        )
        end = end_col.time_input(
            "Quiet until", value=DEFAULT_QUIET[1], step=900, key=f"{prefix}_quiet_until"
        )
        quiet = (start, end)
    try:
        if quiet is not None and quiet[0] == quiet[1]:
            raise ScheduleError("quiet hours must start and end at different times")
        schedule = Schedule("local" if local else "at", day, at, zone, quiet)
    except ScheduleError as exc:
        st.error(f"**The schedule cannot be used:** {plain(exc)}.", icon=":material/schedule:")
        return None, ["correct the schedule"]
    first = schedule.instant()
    if not local and first is not None and first <= datetime.now(first.tzinfo):
        return schedule, ["choose a time ahead (or Now)"]
    return schedule, []


def draw_parts(console: Console, plan: CampaignPlan, schedule: Schedule | None) -> None:
    """When each part goes, in the member's zone: time, recipients, zones, countries."""
    if schedule is None:
        return
    parts = parts_of(plan, schedule, datetime.now(console.tz))
    quiet = "off" if schedule.quiet is None else f"{schedule.quiet_text} recipient time"
    st.markdown(f"**When each part goes** (your time, {plain(console.tz)}; quiet hours {quiet}):")
    rows = [
        {
            "Time": "at once"
            if p.when is None
            else p.when.astimezone(console.tz).strftime("%Y-%m-%d %H:%M"),
            "Recipients": p.recipients,
            "Zones": ", ".join(f"{z} {n:,}" for z, n in p.zones[:3])
            + (" …" if len(p.zones) > 3 else ""),
            "Countries": ", ".join(f"{c} {n:,}" for c, n in p.countries[:4]),
        }
        for p in parts[:MAX_PARTS_SHOWN]
    ]
    st.dataframe(rows, hide_index=True, width="stretch")
    if len(parts) > MAX_PARTS_SHOWN:
        st.caption(f"… and {len(parts) - MAX_PARTS_SHOWN:,} more parts.")


def start_or_arm(console: Console, campaign_id: int, *, by: str) -> None:
    """After Confirm: a campaign whose first part is ahead waits for it (a timer here, or a
    job for then on PostgreSQL); any other is started now."""
    campaign = console.ledger.campaign(campaign_id)
    if campaign is None or campaign.status != "scheduled" or campaign.scheduled_at is None:
        start_campaign(console, campaign_id, by=by)
        return
    arm(console, campaign_id, campaign.scheduled_at)


def arm(console: Console, campaign_id: int, when: datetime, *, replace: bool = True) -> None:
    """Start the campaign at ``when``: a timer of this server (SQLite) or a job for then.
    ``replace=False`` (a look that read ``when`` a moment ago): a timer armed meanwhile, by
    a Move to another time, stands."""
    if uses_workers(console.ledger.url):
        enqueue(console.ledger.url, campaign_id, console.ledger.now(), at=when)
        return
    campaign = console.ledger.campaign(campaign_id)
    if campaign is None:
        return
    options = options_of(console.ledger, console.settings.data_dir, campaign)
    engine_for(console, options).arm(campaign_id, when, replace=replace)


_WOKEN_LOCK = threading.Lock()
SCHEDULE_POLL_S = 5.0  # how often this server looks for a scheduled part that is due
RETRY_AFTER_S = 60.0  # a due campaign this server started that is still scheduled: tried again
_TRIED: dict[tuple[str, int], float] = {}  # (ledger, campaign): when the watcher last started it


def wake_once(console: Console) -> None:
    """Once per server runtime (SQLite: the server runs campaigns itself): start each
    scheduled campaign whose part is due and arm a timer for the others — after a restart the
    times are in the ledger — then keep looking every ``SCHEDULE_POLL_S`` seconds until the
    runtime closes, for the campaigns this server did not arm itself: scheduled by the command
    line, left with later parts by a command-line run, or whose timer's start failed."""
    runtime = console.runtime
    if uses_workers(console.ledger.url):
        return
    with _WOKEN_LOCK:
        if runtime.schedule_watch is not None:
            return
        runtime.schedule_watch = threading.Thread(
            target=_watch, args=(console,), name="keda-schedule", daemon=True
        )
    runtime.schedule_watch.start()  # first: whatever the first look below meets
    try:
        wake_due(console, detail="its time came (server started)")
    except Exception:  # the ledger busy a moment: the watcher looks again in 5 s
        logger.exception("scheduled campaigns: the first look for due parts failed")


def wake_due(console: Console, *, detail: str, in_page: bool = True) -> list[int]:
    """One look: each scheduled campaign with a part due and no timer about to start it is
    started now; one whose next part is ahead and that no timer waits for gets one. Returns
    the campaigns started."""
    ledger, started = console.ledger, []
    for campaign_id in ledger.scheduled_campaigns():
        if armed(ledger.url, campaign_id) or holder(ledger.url, campaign_id)[0]:
            continue  # its timer starts it, or a run of it is under way here
        key = (ledger.url, campaign_id)
        if monotonic() - _TRIED.get(key, -RETRY_AFTER_S) < RETRY_AFTER_S:
            continue  # started a moment ago and still scheduled: its run failed; not again yet
        try:
            due, nxt = ledger.next_part_at(campaign_id)
            if due:
                _TRIED[key] = monotonic()
                start_campaign(console, campaign_id, by="schedule", detail=detail, keep=in_page)
                started.append(campaign_id)
            elif nxt is not None:
                arm(console, campaign_id, nxt, replace=False)
        except Exception:  # one campaign's trouble never keeps the others from their time
            logger.exception("scheduled campaign %s: its start failed", campaign_id)
    return started


def _watch(console: Console) -> None:
    while not console.runtime.closed.wait(SCHEDULE_POLL_S):
        try:
            wake_due(console, detail="its time came", in_page=False)
        except Exception:  # a ledger that went away for a moment: look again later
            logger.exception("scheduled campaigns: the look for due parts failed")


def scheduled_view(console: Console, engine: CampaignEngine, campaign_id: int) -> None:
    """A scheduled campaign on the list: when each part left goes, and (for members who run
    campaigns; re-checked at the click) Move to another time or Cancel, until it starts."""
    ledger = console.ledger
    parts, tried = ledger.planned_parts(campaign_id)  # grouped: not every batch each tick
    _, nxt = ledger.next_part_at(campaign_id)
    when = nxt.astimezone(console.tz).strftime("%Y-%m-%d %H:%M") if nxt else "now"
    st.info(
        f"**Scheduled:** the next part goes at {when} (your time, {plain(console.tz)}). "
        "Nothing is sent or frozen before then; it can be moved or cancelled until it starts.",
        icon=":material/schedule:",
    )
    rows = [
        {
            "Time": "now" if at is None else at.astimezone(console.tz).strftime("%Y-%m-%d %H:%M"),
            "Recipients": n,
            "Requests": k,
        }
        for at, n, k in parts[:MAX_PARTS_SHOWN]
    ]
    st.dataframe(rows, hide_index=True, width="stretch")
    if not console.actor.can(Permission.CAMPAIGNS):
        return
    target = f"campaign {campaign_id}"
    counts = ledger.campaign_batch_counts(campaign_id)
    started = any(state != "planned" for state in counts) or tried
    row = st.container(horizontal=True, vertical_alignment="center")
    if not started:
        with row.popover("Move…", icon=":material/schedule:"):
            schedule, blockers = schedule_inputs(console, prefix="campaigns_move")
            if st.button(
                "Move the campaign",
                key="campaigns_move_go",
                disabled=bool(blockers) or not schedule,
            ):
                actor = access.require(
                    ledger, Permission.CAMPAIGNS, "move campaigns", target=target
                )
                assert schedule is not None
                try:
                    release_job(engine, campaign_id)
                    first = engine.reschedule(campaign_id, None, schedule, by=actor.name)
                except (ValueError, CampaignBusyError) as exc:
                    rearm(console, engine, campaign_id)  # its old time stands
                    st.error(plain(exc))
                except Exception as exc:  # the ledger or the queue went away mid-way
                    not_done(console, engine, campaign_id, "moved", exc)
                else:
                    if ledger.campaign_status(campaign_id) == "scheduled":
                        arm(console, campaign_id, first)
                    else:
                        start_campaign(console, campaign_id, by=actor.name)
                    st.rerun()
    with row.popover("Cancel…", icon=":material/cancel:"):
        st.markdown("Nothing of it will be sent; nothing is charged for the parts not sent.")
        if st.button("Cancel the campaign", key="campaigns_cancel_scheduled"):
            actor = access.require(ledger, Permission.CAMPAIGNS, "cancel campaigns", target=target)
            try:
                release_job(engine, campaign_id)
                engine.cancel(campaign_id)
            except CampaignBusyError as exc:
                rearm(console, engine, campaign_id)
                st.error(plain(exc))
            except Exception as exc:  # the ledger or the queue went away mid-way
                not_done(console, engine, campaign_id, "cancelled", exc)
            else:
                ledger.audit(
                    actor.name,
                    "campaign_cancel",
                    target=target,
                    before={"status": "scheduled"},
                    after={"status": "cancelled", "recipients_left": sum(n for _, n, _ in parts)},
                )
                st.rerun()


def not_done(
    console: Console, engine: CampaignEngine, campaign_id: int, what: str, exc: Exception
) -> None:
    """A Move or Cancel that failed half-way (its job taken back, then the database
    unreachable): the campaign is given its job or timer back, and the member is told."""
    logger.error("campaign %s: not %s (%s)", campaign_id, what, type(exc).__name__)
    try:
        rearm(console, engine, campaign_id)
        kept = "It keeps its time."
    except Exception:
        logger.exception("campaign %s: its start could not be armed again", campaign_id)
        kept = "Its start could not be armed again either: once the database answers, Move it."
    st.error(
        f"**Not {what}:** the ledger could not be reached ({plain(type(exc).__name__)}). "
        f"{kept} Try again in a moment.",
        icon=":material/error:",
    )


def release_job(engine: CampaignEngine, campaign_id: int) -> None:
    """On PostgreSQL: take back the job that waits for the campaign's time, so it can be moved
    or cancelled (CampaignBusyError when a worker has taken it: it is being sent)."""
    if not isinstance(engine, QueuedCampaignEngine):
        return
    if campaign_id in engine.jobs() and not cancel_waiting(engine.ledger, campaign_id):
        raise CampaignBusyError(f"campaign {campaign_id} is being sent; stop it first")
    engine._cache = None  # read the jobs again


def rearm(console: Console, engine: CampaignEngine, campaign_id: int) -> None:
    """After a Move or Cancel that did not happen: the campaign still starts at its time (a
    timer here, or its job again when it was taken back)."""
    if console.ledger.campaign_status(campaign_id) != "scheduled":
        return
    if isinstance(engine, QueuedCampaignEngine):
        engine._cache = None
        if campaign_id in engine.jobs():  # never taken back: it stands
            return
    elif armed(console.ledger.url, campaign_id):
        return
    _, nxt = console.ledger.next_part_at(campaign_id)
    if nxt is not None:
        arm(console, campaign_id, nxt, replace=False)


if wake_once not in ON_SETUP:  # every page's setup (a restarted server: the first page run)
    ON_SETUP.append(wake_once)
