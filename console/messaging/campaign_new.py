"""The Campaigns page's "New campaign" view: the form, the checks and cost, the confirm dialog.

Every row is checked and priced before anything is sent (``check``, kept for the same
inputs, so a rerun does not check again); Confirm writes the plan to the ledger and starts
the run in a background thread of the server. The pending send waits in
``st.session_state["campaigns_pending"]`` between the Send click and the dialog.
"""

from __future__ import annotations

import hashlib

import streamlit as st

from console.messaging import campaigns as cv
from console.messaging.campaign_state import LIST, engine_for, keep_run
from console.shell import Console, account_changed, country_select
from console.views import money
from kedacore.api.types import Pricing
from kedacore.campaign.plan import (
    CampaignPlan,
    CampaignPreview,
    check_funds,
    plan_requests,
    preview_campaign,
)
from kedacore.campaign.recipients import RecipientFile, RecipientsError, read_recipients


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


def masked_callback_url(console: Console) -> str:
    """The receiver's address with its secret token cut to the last 4 characters."""
    url, token = console.callback_url, console.settings.webhook_token
    return url.replace(token, f"…{token[-4:]}") if token and token in url else url


def new_campaign(console: Console, pricing: Pricing) -> None:
    """The form: file, template, options; then the checks, the preview and the cost."""
    state = st.session_state
    cur = pricing.currency
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
            help=f"Delivery reports are posted to {masked_callback_url(console)} and land in the "
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
        draw_summary(console, cur, preview, plan, track)
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


def draw_summary(
    console: Console,
    cur: str,
    preview: CampaignPreview | None,
    plan: CampaignPlan | None,
    track: bool,
) -> None:
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
    st.session_state.pop("campaigns_pending", None)


@st.dialog("Send this campaign?", on_dismiss=_dismiss)
def confirm(console: Console, cur: str, pending: dict) -> None:
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
        engine = engine_for(console, pending["options"])
        who = console.runtime.account.email if console.runtime.account else "console"
        campaign_id = engine.create(plan, name=pending["name"], created_by=who)
        campaign = console.ledger.campaign(campaign_id)
        assert campaign is not None
        cv.save_options(console.settings.data_dir, campaign, pending["options"])
        keep_run(campaign_id, engine.start(campaign_id))
        _dismiss()
        account_changed()
        st.session_state["campaigns_focus"] = campaign_id
        st.rerun()
    if no.button("Cancel", key="campaigns_cancel", width="stretch"):
        _dismiss()
        st.rerun()
