"""The Campaigns page's list view: pick a campaign, follow it, resume or cancel it; all campaigns.

Progress is read from the ledger, where the background run writes it; the picked campaign's
part is a fragment that ticks while it sends and while delivery reports are still to come.
"""

from __future__ import annotations

import contextlib

import streamlit as st

from console.messaging import campaigns as cv
from console.messaging.campaign_state import engine_for, keep_run
from console.shell import Console, account_changed
from console.views import StatusRow, money, plain, status_badge, status_csv, status_frame
from kedacore.campaign import CampaignBusyError, CampaignEngine, CampaignProgress

MESSAGES_SHOWN = 500  # rows of the messages table; the CSV export has them all
LIST_LENGTH = 100  # campaigns in the list, newest first
MESSAGE_COLUMNS = ["Status", "Recipient", "Cost", "Final", "Latency (s)", "msgid", "Task"]


def campaign_list(console: Console) -> None:
    """Pick a campaign to follow; the list of all with their figures from the ledger."""
    state = st.session_state
    campaigns = console.ledger.campaigns(limit=LIST_LENGTH)
    if not campaigns:
        st.info("No campaign yet. Start one under **New campaign**.", icon=":material/campaign:")
        return
    plain = engine_for(console, cv.CampaignOptions())
    running = {c.id: plain.is_running(c.id) for c in campaigns}
    by_id = {c.id: c for c in campaigns}
    if state.get("campaigns_pick") not in by_id:
        state.pop("campaigns_pick", None)  # a campaign of another ledger: start afresh
    pick = st.selectbox(
        "Campaign",
        list(by_id),
        format_func=lambda i: cv.campaign_choice(by_id[i]),
        key="campaigns_pick",
    )
    campaign = by_id[pick]
    options = cv.load_options(console.settings.data_dir, campaign)
    engine = engine_for(console, options)
    shape = page_shape(console, pick, engine)
    # Tick while sending; slower while delivery reports are still coming in; else not at all.
    running_now, _, pending = shape
    every = 1.0 if running_now else (2.0 if pending else None)
    with st.container(border=True):
        st.fragment(campaign_detail, run_every=every)(console, pick, engine, shape)

    st.markdown("**All campaigns**")
    counts = {c.id: console.ledger.campaign_status_counts(c.id) for c in campaigns}
    st.dataframe(
        cv.campaigns_table(campaigns, counts, running, console.tz),
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
                help="FAILED (refused by the channel, not charged) + UNDELIVERED (charged)",
            ),
            "Pending": st.column_config.NumberColumn(
                format="localized", help="QUEUED or SENT: no final status yet"
            ),
            "Cost": st.column_config.TextColumn(help="Debited by KedaSMS"),
        },
        key="campaigns_list",
    )
    if any(cv.status_label(c.status, running[c.id]) == "interrupted" for c in campaigns):
        st.caption(
            "*interrupted*: the console stopped while the campaign was sending. Pick it and "
            "Resume: the requests already accepted are recognised by their clientRef, so no "
            "recipient gets the message twice."
        )


def page_shape(
    console: Console, campaign_id: int, engine: CampaignEngine
) -> tuple[bool, str, bool]:
    """What the whole page depends on: running, status, delivery reports still to come."""
    progress = engine.progress(campaign_id)
    pending = cv.delivery(console.ledger.campaign_status_counts(campaign_id))["Pending"]
    return progress.running, progress.status, bool(pending)


def campaign_detail(
    console: Console, campaign_id: int, engine: CampaignEngine, shape: tuple[bool, str, bool]
) -> None:
    """Progress, pause reason and actions, delivery and messages of one campaign."""
    if page_shape(console, campaign_id, engine) != shape:
        # The run ended or the last report came in: redraw the whole page (its list, the
        # sidebar's balance, the buttons) and tick at the new pace, or stop ticking.
        account_changed()
        st.rerun()
    progress = engine.progress(campaign_id)
    seen = st.session_state.setdefault("campaigns_debited", {})
    if seen.get(campaign_id) != progress.debited:
        seen[campaign_id] = progress.debited
        account_changed()
    campaign = console.ledger.campaign(campaign_id)
    assert campaign is not None
    label = cv.status_label(progress.status, progress.running)
    st.markdown(f"#### #{campaign.id} {plain(campaign.name)} {cv.status_badge(label)}")
    st.progress(
        progress.fraction,
        text=f"{progress.recipients_sent:,} of {progress.recipients:,} recipients sent",
    )
    a, b, c, d = st.columns(4)
    a.metric("Recipients sent", f"{progress.recipients_sent:,} / {progress.recipients:,}")
    b.metric("Requests sent", f"{progress.batches_sent:,} / {progress.batches:,}")
    c.metric(
        "Debited",
        money(progress.debited, progress.currency),
        help=f"Estimated before sending: {money(progress.estimated, progress.currency)}",
    )
    d.metric(
        "Refused",
        f"{progress.recipients_refused:,}",
        help="Recipients in requests KedaSMS refused as invalid (never retried)",
    )
    draw_state(campaign_id, engine, progress, label)

    counts = console.ledger.campaign_status_counts(campaign_id)
    if counts:
        order = ["QUEUED", "SENT", "DELIVERED", "UNDELIVERED", "FAILED"]
        st.markdown(
            "Delivery: "
            + " · ".join(f"{status_badge(s)} **{counts[s]:,}**" for s in order if counts.get(s))
        )
    if progress.running or not counts:
        return
    messages = engine.messages(campaign_id, limit=MESSAGES_SHOWN)
    rows = [StatusRow.from_ledger(m) for m in messages]
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
    total = sum(counts.values())
    shown = f"The first {len(rows):,} of {total:,} messages." if total > len(rows) else ""
    left.caption(f"{shown} The CSV has every message, with UTC times.".strip())
    right.download_button(
        "Export messages (CSV)",
        lambda: status_csv([StatusRow.from_ledger(m) for m in engine.messages(campaign_id)]),
        file_name=f"campaign-{campaign_id}-messages.csv",
        mime="text/csv",
        on_click="ignore",
        icon=":material/download:",
        key="campaigns_export",
        width="stretch",
    )


def draw_state(
    campaign_id: int, engine: CampaignEngine, progress: CampaignProgress, label: str
) -> None:
    """What the campaign is doing, why it stopped, what to do, and the buttons for it."""
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
    if progress.running:
        st.caption("Sending in the background: you can leave this page; the campaign goes on.")
        if st.button("Pause", key="campaigns_stop", icon=":material/pause:"):
            engine.stop(campaign_id)
            st.rerun()
        return
    if label == "done":
        if progress.error:  # requests refused as invalid
            st.warning(plain(progress.error), icon=":material/warning:")
        else:
            st.success(
                f"All {progress.recipients_sent:,} recipients sent; "
                f"{money(progress.debited, progress.currency)} debited.",
                icon=":material/check_circle:",
            )
        return
    if label == "cancelled":
        st.info(
            f"Cancelled: {progress.recipients_left:,} recipient(s) were not sent.",
            icon=":material/cancel:",
        )
        return
    if label == "interrupted":
        reason = (
            f"Interrupted: the console stopped while this campaign was sending. "
            f"{progress.recipients_left:,} recipient(s) in {progress.batches_left:,} "
            "request(s) are left."
        )
    elif label == "not started":
        reason = f"Not started: {progress.recipients_left:,} recipient(s) are waiting."
    else:
        reason = plain(progress.error) if progress.error else "Paused."
    st.warning(reason, icon=":material/pause_circle:")
    fix = cv.fix_for(progress.error if label == "paused" else None)
    row = st.container(horizontal=True, vertical_alignment="center")
    if cv.resumable(progress):
        if row.button(
            "Resume", key="campaigns_resume", type="primary", icon=":material/play_arrow:"
        ):
            # Another session may have resumed it a moment ago: start returns that run then.
            keep_run(campaign_id, engine.start(campaign_id))
            st.rerun()
        with row.popover("Cancel the rest…", icon=":material/cancel:"):
            st.markdown(
                f"The {progress.recipients_left:,} recipient(s) not sent yet will never be sent."
            )
            if st.button("Cancel the campaign", key="campaigns_cancel_rest"):
                # Resumed by another session meanwhile: the page then shows it sending.
                with contextlib.suppress(CampaignBusyError):
                    engine.cancel(campaign_id)
                st.rerun()
    if progress.batches_uncertain:
        with row.popover("Resend the unknown ones…", icon=":material/help:"):
            st.markdown(
                f"{progress.recipients_uncertain:,} recipient(s) in "
                f"{progress.batches_uncertain:,} request(s) may or may not have the message: "
                "the answer was lost more than 23 h ago, and the service no longer recognises "
                "the retry. Look them up on the Status page first; resend only if they got "
                "nothing."
            )
            if st.button("I checked: resend them", key="campaigns_resend_uncertain"):
                with contextlib.suppress(CampaignBusyError):
                    engine.resend_uncertain(campaign_id)
                    keep_run(campaign_id, engine.start(campaign_id))
                st.rerun()
    if fix:
        row.page_link(fix[0], label=fix[1], icon=":material/arrow_forward:")
