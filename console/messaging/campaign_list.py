"""The Campaigns page's list view: pick a campaign, follow it, pause, resume or cancel it; all
campaigns with their figures.

One view, one ledger read: the picked campaign's progress, its delivery line, its messages and
the list of all campaigns are drawn from one ``CampaignSnapshot`` (one transaction), so the
figures side by side are of one moment. The view is a fragment that ticks while the campaign
sends (every second) and while delivery reports are still to come (every two); each tick reads
a new snapshot. The page's full run reads one too and hands it to the fragment's first draw.
"""

from __future__ import annotations

import contextlib
import time

import streamlit as st

from console.access import guarded, require
from console.messaging import campaigns as cv
from console.messaging.approvals import campaign_approval
from console.messaging.campaign_clicks import click_report
from console.messaging.campaign_resend import resend_offer
from console.messaging.campaign_schedule import scheduled_view
from console.messaging.campaign_state import LIST, engine_for, pause, refusals, start_campaign
from console.shell import Console, account_changed
from console.views import StatusRow, money, plain, status_badge, status_csv, status_frame
from kedacore.campaign import CampaignBusyError, CampaignEngine, CampaignProgress
from kedacore.campaign.tasks import QueuedCampaignEngine, live_workers
from kedacore.ledger.campaign_snapshot import NEWEST, CampaignFigures, CampaignSnapshot
from kedacore.team import Permission

MESSAGES_SHOWN = 500  # rows of the messages table; the CSV export has them all
LIST_LENGTH = 100  # campaigns in the list, newest first
ACTIVE_SHOWN = 5  # campaigns still to finish named at the top of the page
MESSAGE_COLUMNS = ["Status", "Recipient", "Cost", "Final", "Latency (s)", "msgid", "Task"]
SCHEDULED_TICK_S = 5.0  # a scheduled campaign's view looks again this often
_HANDED = "_campaigns_snapshot"  # the full run's snapshot, for the fragment's first draw
Shape = tuple[bool, str, bool]


def _n(n: int, word: str) -> str:
    """``1 recipient``, ``3 recipients``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _were(n: int) -> str:
    return "was" if n == 1 else "were"


def campaign_list(console: Console) -> None:
    """Pick a campaign to follow; below, the list of all with their figures."""
    refusals()  # an action a callback refused (Pause, for a member without the permission)
    state = st.session_state
    pick = state.get("campaigns_pick")
    engine = engine_for(console, cv.CampaignOptions())
    snapshot = read(console, engine, pick)
    if not snapshot.campaigns:
        st.info("No campaign yet. Start one under **New campaign**.", icon=":material/campaign:")
        return
    if snapshot.get(pick) is None:
        state.pop("campaigns_pick", None)  # a campaign of another ledger: start afresh
    pick = st.selectbox(
        "Campaign",
        [f.id for f in snapshot.campaigns],
        format_func=lambda i: cv.campaign_choice(snapshot.get(i)),
        key="campaigns_pick",
    )
    if snapshot.messages_of not in (None, pick) and not engine.is_running(pick):
        snapshot = read(console, engine, pick)  # the picked one is not the newest: its messages
    figures = snapshot.get(pick)
    assert figures is not None
    options = cv.options_of(console.ledger, console.settings.data_dir, figures.campaign)
    engine = engine_for(console, options)
    shape = page_shape(engine, figures)
    # Tick while sending; slower while delivery reports are still coming in, or while it is
    # scheduled (to show it start at its time); else not at all.
    running_now, status_now, pending = shape
    every = 1.0 if running_now else (2.0 if pending else None)
    if every is None and status_now == "scheduled":
        every = SCHEDULED_TICK_S
    state[_HANDED] = (time.monotonic(), snapshot)
    st.fragment(campaign_view, run_every=every)(console, pick, engine, shape)


def active_campaigns(console: Console) -> None:
    """The campaigns still to finish (sending, pausing, paused, interrupted), at the top of
    the page whatever tab is open, each with a button that opens it."""
    snapshot = console.ledger.active_campaigns(limit=ACTIVE_SHOWN)
    state = st.session_state
    followed = state.get("campaigns_pick") if state.get("campaigns_tab") == LIST else None
    shown = [f for f in snapshot.campaigns if f.id != followed]  # not the one on show below
    if not shown:
        return
    engine = engine_for(console, cv.CampaignOptions())
    with st.container(border=True, key="campaigns_active"):
        for f in shown:
            label = cv.status_label(f.campaign.status, engine.is_running(f.id))
            left, right = st.columns([6, 1], vertical_alignment="center")
            left.markdown(
                f":{cv.STATUS_COLORS.get(label, 'gray')}[:material/campaign:] "
                + cv.active_line(f, label)
            )
            right.button(
                "Open",
                key=f"campaigns_open_{f.id}",
                type="tertiary",
                icon=":material/arrow_forward:",
                on_click=open_campaign,
                args=(f.id,),
            )
        more = console.ledger.count_active_campaigns() - len(snapshot.campaigns)
        if more > 0:
            st.caption(f"And {more:,} more under **{LIST}**.")


def open_campaign(campaign_id: int) -> None:
    """Follow a campaign: the list tab, the campaign picked (before the tabs are drawn)."""
    st.session_state["campaigns_pick"] = campaign_id
    st.session_state["campaigns_tab"] = LIST


def read(console: Console, engine: CampaignEngine, pick: int | None) -> CampaignSnapshot:
    """The one read of a view: the list, and the picked campaign's messages unless it sends
    (its table is shown once it stops)."""
    messages_of = NEWEST if pick is None else pick
    if pick is not None and engine.is_running(pick):
        messages_of = None
    return console.ledger.campaign_snapshot(
        limit=LIST_LENGTH,
        include=[pick] if pick is not None else [],
        messages_of=messages_of,
        messages_limit=MESSAGES_SHOWN,
    )


def page_shape(engine: CampaignEngine, figures: CampaignFigures) -> Shape:
    """What the whole page depends on: running, status, delivery reports still to come."""
    pending = cv.delivery(figures.statuses)["Pending"]
    return engine.is_running(figures.id), figures.campaign.status, bool(pending)


def campaign_view(console: Console, campaign_id: int, engine: CampaignEngine, shape: Shape) -> None:
    """The picked campaign and the list of all, from one snapshot."""
    handed = st.session_state.pop(_HANDED, None)
    if handed is not None and time.monotonic() - handed[0] < 1.0:
        snapshot = handed[1]  # the page's own read, a moment ago
    else:
        snapshot = read(console, engine, campaign_id)
    figures = snapshot.get(campaign_id)
    if figures is None:  # gone (demo data removed): the page starts afresh
        st.rerun()
        return
    if page_shape(engine, figures) != shape:
        # The run ended or the last report came in: redraw the whole page (the sidebar's
        # balance, the buttons) and tick at the new pace, or stop ticking. A click on Pause
        # in this run is not lost: its callback ran before (campaign_state.pause).
        account_changed()
        st.rerun()
    seen = st.session_state.setdefault("campaigns_debited", {})
    if seen.get(campaign_id) != figures.campaign.debited_micros:
        seen[campaign_id] = figures.campaign.debited_micros
        account_changed()
    with st.container(border=True):
        campaign_detail(console, engine, figures, snapshot)
    st.markdown("**All campaigns**")
    running = {f.id: engine.is_running(f.id) for f in snapshot.campaigns}
    draw_list(console, snapshot, running)


def campaign_detail(
    console: Console, engine: CampaignEngine, figures: CampaignFigures, snapshot: CampaignSnapshot
) -> None:
    """Progress, money, pause reason and actions, delivery and messages of one campaign."""
    campaign = figures.campaign
    progress = cv.progress_of(figures, engine.is_running(figures.id))
    label = cv.status_label(progress.status, progress.running, queued=queued(engine, figures.id))
    demo = " :gray-badge[demo data]" if figures.demo else ""
    st.markdown(
        f"#### {plain(figures.label)} {cv.status_badge(label)}{demo}",
        help="Generated history (Spend → demo data), not a campaign anyone sent."
        if figures.demo
        else None,
    )
    st.progress(
        progress.fraction,
        text=f"{progress.recipients_sent:,} of {_n(progress.recipients, 'recipient')} sent",
    )
    left_out_line(console, figures)
    a, b, c = st.columns(3)
    a.metric("Recipients sent", f"{progress.recipients_sent:,} / {progress.recipients:,}")
    b.metric("Requests sent", f"{progress.batches_sent:,} / {progress.batches:,}")
    c.metric(
        "Refused",
        f"{progress.recipients_refused:,}",
        help="Recipients in requests KedaSMS refused as invalid (never retried)",
    )
    cur = campaign.currency
    for column, (name, amount, why) in zip(st.columns(4), cv.money_figures(figures), strict=True):
        column.metric(name, money(amount, cur), help=why)
    draw_state(console, engine, progress, label, figures)
    if label == "paused" and console.balance is not None:
        note = cv.balance_note(progress, console.balance.balance, console.balance.currency)
        if note:
            st.caption(note)

    counts = figures.statuses
    if counts:
        order = ["QUEUED", "SENT", "DELIVERED", "UNDELIVERED", "FAILED"]
        st.markdown(
            "Delivery: "
            + " · ".join(f"{status_badge(s)} **{counts[s]:,}**" for s in order if counts.get(s))
        )
    resend_offer(console, figures, progress.running)  # its FAILED and UNDELIVERED, once
    if progress.running or not counts or snapshot.messages_of != figures.id:
        return
    rows = [StatusRow.from_ledger(m) for m in snapshot.messages]
    st.dataframe(
        status_frame(rows, console.tz)[MESSAGE_COLUMNS],
        hide_index=True,
        width="stretch",
        height=300,
        column_config={
            "Status": st.column_config.TextColumn(width="small"),
            "Final": st.column_config.TextColumn(help="When the status became final"),
            "Latency (s)": st.column_config.NumberColumn(help="From SENT to DELIVERED"),
        },
        key="campaigns_messages",
    )
    left, right = st.columns([3, 1], vertical_alignment="center")
    total = figures.messages
    shown = f"The first {len(rows):,} of {total:,} messages." if total > len(rows) else ""
    left.caption(f"{shown} The CSV has every message, with UTC times.".strip())
    right.download_button(
        "Export messages (CSV)",
        guarded(
            console.ledger,
            (Permission.CAMPAIGNS, Permission.APPROVE),  # whoever may open Campaigns
            "export a campaign's messages",
            lambda: status_csv([StatusRow.from_ledger(m) for m in engine.messages(figures.id)]),
            target=f"campaign {figures.id}",
        ),
        file_name=f"campaign-{figures.number}{'-demo' if figures.demo else ''}-messages.csv",
        mime="text/csv",
        on_click="ignore",
        icon=":material/download:",
        key="campaigns_export",
        width="stretch",
    )
    click_report(console, figures)  # a campaign that tracked links: its clicks


def draw_list(console: Console, snapshot: CampaignSnapshot, running: dict[int, bool]) -> None:
    """Every campaign of the snapshot: status, recipients, delivery and money."""
    money_help = {name: why for name, _, why in cv.money_figures(None)}
    st.dataframe(
        cv.campaigns_table(snapshot.campaigns, running, console.tz),
        hide_index=True,
        width="stretch",
        column_config={
            "Recipients": st.column_config.NumberColumn(format="localized"),
            "Sent": st.column_config.NumberColumn(
                format="localized", help="Messages accepted by KedaSMS"
            ),
            "Delivered": st.column_config.NumberColumn(format="localized"),
            "Not delivered": st.column_config.NumberColumn(
                format="localized",
                help="FAILED (refused by the channel, refunded) + UNDELIVERED (charged)",
            ),
            "Pending": st.column_config.NumberColumn(
                format="localized", help="QUEUED or SENT: no final status yet"
            ),
            **{name: st.column_config.TextColumn(help=why) for name, why in money_help.items()},
        },
        key="campaigns_list",
    )
    labels = {cv.status_label(f.campaign.status, running[f.id]) for f in snapshot.campaigns}
    if "interrupted" in labels:
        st.caption(
            "*interrupted*: the console stopped while the campaign was sending. Pick it and "
            "Resume: the requests already accepted are recognised by their clientRef, so no "
            "recipient gets the message twice."
        )
    if any(f.demo for f in snapshot.campaigns):
        st.caption(
            "*Demo* campaigns are generated history (Spend → demo data), numbered apart from "
            "yours; remove them on the Spend page."
        )


def left_out_line(console: Console, figures: CampaignFigures) -> None:
    """Who the campaign left out, as said when it was created (and at its starts): read once
    per campaign and status in the session, not at every tick."""
    if figures.demo:
        return
    cache = st.session_state.setdefault("campaigns_left_out", {})
    key = (figures.id, figures.campaign.status, figures.campaign.recipients)  # a part's check
    if key not in cache:
        cache[key] = console.ledger.left_out_of(figures.id)
    found = cache[key]
    parts = [
        words
        for name, words in (
            ("opted_out_left_out", "opted out"),
            ("recent_left_out", "messaged recently"),
            ("rows_left_out", "rows with problems"),
            ("opted_out_after", "opted out after it was planned"),
        )
        if found.get(name)
        for words in [f"{found[name]:,} {words}"]
    ]
    if parts:
        st.caption("Left out: " + "; ".join(parts) + ".")


def queued(engine: CampaignEngine, campaign_id: int) -> bool:
    """On PostgreSQL: the campaign's job waits for a worker (none has started it yet)."""
    if not isinstance(engine, QueuedCampaignEngine):
        return False
    job = engine.jobs().get(campaign_id)
    return job is not None and job[1] == "todo"


def worker_said(engine: CampaignEngine, campaign_id: int) -> bool:
    """On PostgreSQL a worker runs the campaign: say so when its job waits for one, and when no
    worker is alive to take it (True when something was said)."""
    if not isinstance(engine, QueuedCampaignEngine):
        return False
    job = engine.jobs().get(campaign_id)
    if job is None:
        return False
    if live_workers(engine.ledger) == 0:
        st.warning(
            "**No campaign worker is running**, so nothing is being sent. Start one on any "
            "machine that reaches this database, with this console's `KEDA_DATABASE_URL` and "
            "keys (in sandbox mode: on this machine, with its data folder, `KEDA_DATA_DIR`): "
            "`python -m kedacore.campaign worker` (docs/campaigns.md, Workers). It takes the "
            "campaign up where it is, each recipient once.",
            icon=":material/engineering:",
        )
        return True
    if job[1] == "todo":
        st.info(
            "**Queued**: a worker takes it within seconds (the workers may be busy with "
            "other campaigns). You can leave this page.",
            icon=":material/schedule:",
        )
        return True
    return False


def draw_state(
    console: Console,
    engine: CampaignEngine,
    progress: CampaignProgress,
    label: str,
    figures: CampaignFigures,
) -> None:
    """What the campaign is doing, why it stopped, what to do, and the buttons for it (for
    members who run campaigns; each re-checks the permission when it runs)."""
    campaign_id = figures.id
    may = console.actor.can(Permission.CAMPAIGNS)
    campaign_approval(console, campaign_id, label)  # waiting, rejected, or by whom approved
    if label in ("awaiting approval", "rejected"):
        return
    # Its next part is ahead (on PostgreSQL its job waits in the queue for that time).
    if label == "scheduled" and (not progress.running or queued(engine, campaign_id)):
        scheduled_view(console, engine, campaign_id)
        return
    failed = st.session_state.get("campaigns_runs", {}).get(campaign_id)
    if failed is not None and failed.error is not None and not progress.running:
        # Not a pause the engine chose (those have a reason below): the run itself broke.
        why = f"{type(failed.error).__name__}: {failed.error}"[:300]
        st.error(
            f"**The last run of this campaign stopped on an error** ({plain(why)}). Nothing was "
            "sent twice; Resume to try again. If it fails again, the console's log has the "
            "details.",
            icon=":material/error:",
        )
    if progress.running and label == "pausing…":
        st.info(
            f"**Pausing…** No new request goes out; the ones in flight are being answered. "
            f"{progress.recipients_sent:,} of {_n(progress.recipients, 'recipient')} sent so far.",
            icon=":material/pause_circle:",
        )
        return
    if progress.running:
        if not worker_said(engine, campaign_id):
            st.caption("Sending in the background: you can leave this page; the campaign goes on.")
        # A callback, not `if st.button(...)`: it runs before the script, so a click is heard
        # even when this run of the fragment redraws the page at once (page_shape changed).
        if may:
            st.button(
                "Pause",
                key="campaigns_stop",
                icon=":material/pause:",
                on_click=pause,
                args=(engine, campaign_id),
            )
        return
    if label == "done":
        if progress.error:  # requests refused as invalid
            st.warning(plain(progress.error), icon=":material/warning:")
        else:
            st.success(cv.done_sentence(figures), icon=":material/check_circle:")
        return
    if label == "cancelled":
        st.info(
            f"Cancelled: {_n(progress.recipients_left, 'recipient')} "
            f"{_were(progress.recipients_left)} not sent.",
            icon=":material/cancel:",
        )
        return
    if label == "interrupted":
        reason = (
            f"Interrupted: the console stopped while this campaign was sending. "
            f"{_n(progress.recipients_left, 'recipient')} in "
            f"{_n(progress.batches_left, 'request')} "
            f"{'is' if progress.recipients_left == 1 else 'are'} left."
        )
    elif label == "not started":
        left = progress.recipients_left
        reason = f"Not started: {_n(left, 'recipient')} {'is' if left == 1 else 'are'} waiting."
    else:
        reason = plain(progress.error) if progress.error else "Paused."
    st.warning(reason, icon=":material/pause_circle:")
    fix = cv.fix_for(progress.error if label == "paused" else None)
    row = st.container(horizontal=True, vertical_alignment="center")
    target = f"campaign {campaign_id}"
    if cv.resumable(progress) and may:
        if row.button(
            "Resume", key="campaigns_resume", type="primary", icon=":material/play_arrow:"
        ):
            actor = require(console.ledger, Permission.CAMPAIGNS, "resume campaigns", target=target)
            # Another session may have resumed it a moment ago: start returns that run then.
            start_campaign(console, campaign_id, by=actor.name, action="campaign_resume")
            st.rerun()
        with row.popover("Cancel the rest…", icon=":material/cancel:"):
            st.markdown(
                f"The {_n(progress.recipients_left, 'recipient')} not sent yet will never be sent."
            )
            if st.button("Cancel the campaign", key="campaigns_cancel_rest"):
                actor = require(
                    console.ledger, Permission.CAMPAIGNS, "cancel campaigns", target=target
                )
                # Resumed by another session meanwhile: the page then shows it sending.
                with contextlib.suppress(CampaignBusyError):
                    engine.cancel(campaign_id)
                    console.ledger.audit(
                        actor.name,
                        "campaign_cancel",
                        target=target,
                        before={"status": progress.status},
                        after={"status": "cancelled", "recipients_left": progress.recipients_left},
                    )
                st.rerun()
    if progress.batches_uncertain and may:
        with row.popover("Resend the unknown ones…", icon=":material/help:"):
            st.markdown(
                f"{_n(progress.recipients_uncertain, 'recipient')} in "
                f"{_n(progress.batches_uncertain, 'request')} may or may not have the message: "
                "the answer was lost more than 23 h ago, and the service no longer recognises "
                "the retry. Look them up on the Status page first; resend only if they got "
                "nothing."
            )
            if st.button("I checked: resend them", key="campaigns_resend_uncertain"):
                actor = require(
                    console.ledger, Permission.CAMPAIGNS, "resend campaign requests", target=target
                )
                with contextlib.suppress(CampaignBusyError):
                    released = engine.resend_uncertain(campaign_id)
                    start_campaign(
                        console,
                        campaign_id,
                        by=actor.name,
                        action="campaign_resume",
                        detail=f"{_n(released, 'request')} of unknown fate sent again, "
                        "checked first",
                    )
                st.rerun()
    if fix:
        row.page_link(fix[0], label=fix[1], icon=":material/arrow_forward:")
