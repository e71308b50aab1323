"""Messaging → Campaigns: a recipients file and a template, checked and priced, then sent once.

New campaign: every row is checked and priced before anything is sent; Confirm writes the
plan to the ledger and sends it in a background thread of the server (closing the tab does
not stop it). Campaigns: progress polled from the ledger, pause reasons with what to do,
Resume for paused and interrupted campaigns, each campaign's messages.
"""

from __future__ import annotations

import contextlib
import hashlib

import streamlit as st

from console.messaging import campaigns as cv
from console.shell import account_changed, country_select, keda_errors, page_setup
from console.views import StatusRow, money, status_badge, status_csv, status_frame
from kedacore.api.types import Pricing
from kedacore.campaign import CampaignBusyError, CampaignEngine, CampaignProgress, CampaignRun
from kedacore.campaign.plan import (
    CampaignPlan,
    CampaignPreview,
    check_funds,
    plan_requests,
    preview_campaign,
)
from kedacore.campaign.recipients import RecipientFile, RecipientsError, read_recipients

NEW, LIST = "New campaign", "Campaigns"
MESSAGES_SHOWN = 500  # rows of the messages table; the CSV export has them all
LIST_LENGTH = 100  # campaigns in the list, newest first
MESSAGE_COLUMNS = ["Status", "Recipient", "Cost", "Final", "Latency (s)", "msgid", "Task"]

console = page_setup(
    "Campaigns", "Many recipients from a CSV or XLSX file, each with their own variables."
)
with keda_errors("The price table could not be read", sandbox=console.sandbox):
    pricing = console.pricing()
state = st.session_state
cur = pricing.currency
data_dir = console.settings.data_dir

# Set by Confirm (after the tabs were drawn): show the new campaign on the next run.
if "campaigns_focus" in state:
    state["campaigns_pick"] = state["campaigns_started"] = state.pop("campaigns_focus")
    state["campaigns_tab"] = LIST
    state["campaigns_name"] = ""  # a second Send needs a new name: no double send by mistake


def engine_for(options: cv.CampaignOptions) -> CampaignEngine:
    """An engine sending with a campaign's options (each run makes its own async client)."""
    return CampaignEngine(
        console.ledger,
        console.runtime.async_client,
        callback_url=console.callback_url if options.callback else None,
        track_click=options.track_click,
    )


@st.cache_resource(max_entries=4, show_spinner=False)
def read_file(digest: str, name: str, _data: bytes) -> RecipientFile:
    """The uploaded file's rows (kept by content: a rerun does not read it again)."""
    return read_recipients(_data, filename=name)


@st.cache_resource(max_entries=8, show_spinner="Checking every row…")
def check(
    digest: str,
    template: str,
    country: str,
    sender: str | None,
    prices: tuple,
    _table: RecipientFile,
    _pricing: Pricing,
) -> tuple[CampaignPreview, CampaignPlan]:
    """Every row checked and priced, and the requests it makes (kept for the same inputs)."""
    preview = preview_campaign(
        _table, template, pricing=_pricing, default_country=country, sender=sender
    )
    return preview, plan_requests(preview)


def keep_run(campaign_id: int, run: CampaignRun) -> None:
    """Remember a background run this session started, to show its error if it breaks."""
    state.setdefault("campaigns_runs", {})[campaign_id] = run


def masked_callback_url() -> str:
    """The receiver's address with its secret token cut to the last 4 characters."""
    url, token = console.callback_url, console.settings.webhook_token
    return url.replace(token, f"…{token[-4:]}") if token and token in url else url


# -- new campaign --------------------------------------------------------------------------


def new_campaign() -> None:
    """The form: file, template, options; then the checks, the preview and the cost."""
    if "campaigns_started" in state:  # until the next campaign is confirmed
        st.success(
            f"Campaign #{state['campaigns_started']} was started: follow it under "
            f"**{LIST}**. The file and template are kept here for another campaign.",
            icon=":material/rocket_launch:",
        )
    compose, summary = st.columns([3, 2], gap="large")
    table: RecipientFile | None = None
    preview: CampaignPreview | None = None
    plan: CampaignPlan | None = None
    blockers: list[str] = []
    with compose:
        name = st.text_input(
            "Campaign name", key="campaigns_name", max_chars=200, placeholder="Spring sale"
        )
        upload = st.file_uploader(
            "Recipients (CSV or XLSX)",
            type=["csv", "txt", "xlsx"],
            key="campaigns_file",
            help="A phone column (phone, mobile, number…), optionally country and sender "
            "columns; every column can be used in the template. The header is row 1.",
        )
        st.download_button(
            "Download a sample CSV",
            cv.SAMPLE_CSV,
            file_name="campaign-sample.csv",
            mime="text/csv",
            on_click="ignore",
            icon=":material/download:",
            type="tertiary",
            key="campaigns_sample",
        )
        digest = ""
        if upload is not None:
            data = upload.getvalue()
            digest = hashlib.sha256(data).hexdigest()
            try:
                table = read_file(digest, upload.name, data)
            except RecipientsError as exc:
                st.error(
                    f"**This file cannot be used:** {exc}. Correct it and upload it again "
                    "(the sample CSV shows the expected shape).",
                    icon=":material/description:",
                )
            else:
                how = "Excel workbook" if table.encoding == "xlsx" else f"{table.encoding} text"
                extra = [f"country column **{table.country_column}**"] * bool(table.country_column)
                extra += [f"sender column **{table.sender_column}**"] * bool(table.sender_column)
                st.caption(
                    f"{len(table.rows) + len(table.broken):,} row(s) read ({how}); phone column "
                    f"**{table.phone_column}**" + "".join(f", {e}" for e in extra) + "."
                )
        left, right = st.columns(2)
        country = country_select(
            "Default country",
            pricing,
            cur,
            key="campaigns_country",
            help="For national numbers (without +) in rows that have no country of their own.",
            where=left,
        )
        sender = right.text_input(
            "Sender id (optional)",
            key="campaigns_sender",
            max_chars=15,
            help="Up to 11 letters and digits, or a number of up to 15 digits. A sender "
            "column in the file overrides it per row.",
        )
        template = st.text_area(
            "Message template",
            key="campaigns_template",
            height=120,
            placeholder=cv.SAMPLE_TEMPLATE,
            help="Write {column} for a column's value in each recipient's message; {{ and }} "
            "are literal braces.",
        )
        if table is not None:
            st.caption("Placeholders from your file: " + cv.placeholders(table.columns))
        else:
            st.caption("Upload the file to see the placeholders its columns give.")
        track = st.checkbox(
            "Track clicks (each link becomes a short link per recipient)", key="campaigns_track"
        )
        callback = st.checkbox(
            "Status callbacks to this console",
            value=True,
            key="campaigns_callback",
            help=f"Delivery reports are posted to {masked_callback_url()} and land in the "
            "ledger, so the campaign's delivered and failed counts fill in.",
        )
        if table is not None and template.strip():
            try:
                preview, plan = check(
                    digest,
                    template,
                    country,
                    sender.strip() or None,
                    (pricing.currency, tuple(sorted(pricing.prices.items()))),
                    table,
                    pricing,
                )
            except RecipientsError as exc:
                st.error(f"**The template cannot be used:** {exc}.", icon=":material/edit_note:")
                blockers.append("correct the template")

    if not name.strip():
        blockers.append("name the campaign")
    if upload is None:
        blockers.append("upload the recipients file")
    if not template.strip():
        blockers.append("write the message template")
    if preview is not None and not preview.rows:
        blockers.append("have at least one row without problems")

    with summary, st.container(border=True):
        draw_summary(preview, plan, track)
        clicked = st.button(
            "Send campaign…",
            key="campaigns_submit",
            type="primary",
            disabled=bool(blockers),
            width="stretch",
        )
        if blockers:
            st.caption("To send: " + "; ".join(blockers) + ".")
    if preview is not None:
        draw_checks(preview, plan)
    if clicked and not blockers and plan is not None and preview is not None:
        funds = check_funds(plan, console.balance, console.limits)
        state["campaigns_pending"] = {
            "name": name.strip(),
            "plan": plan,
            "skipped": preview.rejected_rows,
            "options": cv.CampaignOptions(track_click=track, callback=callback),
            "warnings": [line.text for line in cv.funds_lines(funds) if line.kind != "ok"],
        }


def draw_summary(preview: CampaignPreview | None, plan: CampaignPlan | None, track: bool) -> None:
    """The figures that decide: recipients, problems, requests, cost, balance and caps."""
    st.markdown("**Before sending**")
    a, b, c = st.columns(3)
    a.metric("Recipients", f"{len(preview.rows):,}" if preview else "—")
    b.metric("Rows left out", f"{preview.rejected_rows:,}" if preview else "—")
    c.metric("Requests", f"{len(plan.requests):,}" if plan else "—")
    total = money(plan.total, cur) if plan and plan.requests else "—"
    st.metric(
        "Total cost",
        total,
        help="Price per segment of each number's country × segments × recipients, as "
        "KedaSMS charges it.",
    )
    if plan is None or preview is None or not plan.requests:
        st.caption("Upload the recipients and write the template to see the cost.")
        return
    st.dataframe(
        cv.requests_by_country(plan),
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len({r.country for r in plan.requests}), 250),
        column_config={
            "Recipients": st.column_config.NumberColumn(format="localized"),
            "Requests": st.column_config.NumberColumn(format="localized"),
        },
        key="campaigns_requests",
    )
    st.caption(
        "Numbers are grouped by country and identical text into requests of at most 1,000: "
        "personalised texts make more requests."
    )
    if track:
        tracked, linked = cv.tracked_total(preview, console.runtime.short_link_base)
        if linked and tracked != plan.total:
            st.caption(
                f"With trackClick the {linked:,} message(s) with a link are counted with "
                f"short links: about **{money(tracked, cur)}**."
            )
    funds = check_funds(plan, console.balance, console.limits)
    for line in cv.funds_lines(funds):
        if line.kind == "ok":
            st.caption(f":green[:material/check:] {line.text}")
        elif line.kind == "alert":
            st.warning(line.text, icon=":material/notifications_active:")
        else:
            st.error(line.text, icon=":material/block:")
        if line.page and line.kind != "ok":
            st.page_link(line.page, label=line.action, icon=":material/arrow_forward:")


def draw_checks(preview: CampaignPreview, plan: CampaignPlan | None) -> None:
    """Problems by row (downloadable) and the first rendered messages."""
    if preview.problems:
        counts = ", ".join(f"{label.lower()}: {n:,}" for label, n in cv.problem_counts(preview))
        st.error(
            f"**{preview.rejected_rows:,} row(s) will not be sent** ({counts}). They are left "
            "out; the other rows can be sent. Correct the file and upload it again to "
            "include them.",
            icon=":material/rule:",
        )
        st.dataframe(
            cv.problems_table(preview),
            hide_index=True,
            width="stretch",
            height=min(38 + 35 * len(preview.problems), 300),
            key="campaigns_problems",
        )
        st.download_button(
            "Download the problems (CSV)",
            preview.problems_csv(),
            file_name="campaign-problems.csv",
            mime="text/csv",
            on_click="ignore",
            icon=":material/download:",
            key="campaigns_problems_csv",
        )
    elif preview.rows:
        st.success(f"All {len(preview.rows):,} rows can be sent.", icon=":material/check_circle:")
    if not preview.rows or plan is None:
        return
    shown = min(len(preview.rows), cv.PREVIEW_ROWS)
    st.markdown(f"**Preview** — the first {shown} of {len(preview.rows):,} messages")
    small = st.column_config.Column(width="small")
    st.dataframe(
        cv.preview_table(preview),
        hide_index=True,
        width="stretch",
        column_config={
            "Row": small,
            "Country": small,
            "Segments": small,
            "Message": st.column_config.TextColumn(width="large"),
        },
        key="campaigns_preview",
    )


def _dismiss() -> None:
    state.pop("campaigns_pending", None)


@st.dialog("Send this campaign?", on_dismiss=_dismiss)
def confirm(pending: dict) -> None:
    """Ask before spending money; the plan is written and sending starts only on Confirm."""
    plan: CampaignPlan = pending["plan"]
    countries = len({r.country for r in plan.requests})
    st.markdown(
        f"**{pending['name']}** to **{plan.recipients:,} recipient(s)** in {countries} "
        f"countr{'y' if countries == 1 else 'ies'}, {len(plan.requests):,} request(s)."
    )
    by_country = cv.requests_by_country(plan)
    st.markdown(
        " · ".join(
            f"{r.Country}: {r.Recipients:,} in {r.Requests:,} request(s), {r.Cost}"
            for r in by_country.itertuples()
        )
    )
    st.markdown(f"Total cost: **{money(plan.total, cur)}**")
    if pending["skipped"]:
        st.caption(f"{pending['skipped']:,} row(s) with problems are left out.")
    for text in pending["warnings"]:
        st.warning(text, icon=":material/warning:")
    st.caption(
        "Sending goes on in the background: you can close this page and come back; an "
        "interrupted campaign can be resumed and no recipient gets the message twice."
        + (" Sandbox: nothing leaves this machine." if console.sandbox else "")
    )
    yes, no = st.columns(2)
    if yes.button("Confirm and send", key="campaigns_confirm", type="primary", width="stretch"):
        engine = engine_for(pending["options"])
        who = console.runtime.account.email if console.runtime.account else "console"
        campaign_id = engine.create(plan, name=pending["name"], created_by=who)
        campaign = console.ledger.campaign(campaign_id)
        assert campaign is not None
        cv.save_options(data_dir, campaign, pending["options"])
        keep_run(campaign_id, engine.start(campaign_id))
        _dismiss()
        account_changed()
        state["campaigns_focus"] = campaign_id
        st.rerun()
    if no.button("Cancel", key="campaigns_cancel", width="stretch"):
        _dismiss()
        st.rerun()


# -- campaigns -----------------------------------------------------------------------------


def campaign_list() -> None:
    """Pick a campaign to follow; the list of all with their figures from the ledger."""
    campaigns = console.ledger.campaigns(limit=LIST_LENGTH)
    if not campaigns:
        st.info("No campaign yet. Start one under **New campaign**.", icon=":material/campaign:")
        return
    plain = engine_for(cv.CampaignOptions())
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
    options = cv.load_options(data_dir, campaign)
    engine = engine_for(options)
    shape = page_shape(pick, engine)
    # Tick while sending; slower while delivery reports are still coming in; else not at all.
    running_now, _, pending = shape
    every = 1.0 if running_now else (2.0 if pending else None)
    with st.container(border=True):
        st.fragment(campaign_detail, run_every=every)(pick, engine, shape)

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


def page_shape(campaign_id: int, engine: CampaignEngine) -> tuple[bool, str, bool]:
    """What the whole page depends on: running, status, delivery reports still to come."""
    progress = engine.progress(campaign_id)
    pending = cv.delivery(console.ledger.campaign_status_counts(campaign_id))["Pending"]
    return progress.running, progress.status, bool(pending)


def campaign_detail(
    campaign_id: int, engine: CampaignEngine, shape: tuple[bool, str, bool]
) -> None:
    """Progress, pause reason and actions, delivery and messages of one campaign."""
    if page_shape(campaign_id, engine) != shape:
        # The run ended or the last report came in: redraw the whole page (its list, the
        # sidebar's balance, the buttons) and tick at the new pace, or stop ticking.
        account_changed()
        st.rerun()
    progress = engine.progress(campaign_id)
    seen = state.setdefault("campaigns_debited", {})
    if seen.get(campaign_id) != progress.debited:
        seen[campaign_id] = progress.debited
        account_changed()
    campaign = console.ledger.campaign(campaign_id)
    assert campaign is not None
    label = cv.status_label(progress.status, progress.running)
    st.markdown(f"#### #{campaign.id} {campaign.name} {cv.status_badge(label)}")
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
    failed = state.get("campaigns_runs", {}).get(campaign_id)
    if failed is not None and failed.error is not None and not progress.running:
        # Not a pause the engine chose (those have a reason below): the run itself broke.
        why = f"{type(failed.error).__name__}: {failed.error}"[:300]
        st.error(
            f"**The last run of this campaign stopped on an error** ({why}). Nothing was sent "
            "twice; Resume to try again. If it fails again, the console's log has the details.",
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
            st.warning(progress.error, icon=":material/warning:")
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
        reason = progress.error or "Paused."
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


# The tabs track state so that Confirm can turn to the campaign; both are drawn on every run,
# so the uploaded file and the template survive a look at the list.
new_tab, list_tab = st.tabs([NEW, LIST], key="campaigns_tab", on_change="rerun")
with new_tab:
    new_campaign()
with list_tab:
    campaign_list()

if "campaigns_pending" in state:
    confirm(state["campaigns_pending"])
