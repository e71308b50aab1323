"""The Campaigns page's "New campaign" view: the form, the checks and cost, the confirm dialog.

Every row is checked and priced before anything is sent (``check``, kept for the same
inputs, so a rerun does not check again); Confirm writes the plan to the ledger and starts
the run in a background thread of the server. The pending send waits in
``st.session_state["campaigns_pending"]`` between the Send click and the dialog.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections import OrderedDict
from dataclasses import replace
from decimal import Decimal

import streamlit as st

from console import access
from console.audience import optouts
from console.audience import templates as tv
from console.audience.contacts import list_choice
from console.messaging import approval_rules as rules
from console.messaging import campaigns as cv
from console.messaging.campaign_schedule import draw_parts, schedule_inputs, start_or_arm
from console.messaging.campaign_state import LIST, engine_for
from console.messaging.campaign_test import offer_test
from console.shell import Console, account_changed, country_select
from console.views import URL_RE, money, plain, rewritten_for_estimate
from kedacore.api.types import Pricing
from kedacore.campaign.contacts import list_recipients
from kedacore.campaign.plan import (
    CampaignPlan,
    CampaignPreview,
    check_funds,
    plan_requests,
    preview_campaign,
)
from kedacore.campaign.recipients import (
    MB,
    RecipientFile,
    RecipientLimits,
    RecipientsError,
    RecipientsLimitError,
    load_limits,
    read_recipients,
)
from kedacore.campaign.recipients.encoding import ENCODINGS, label
from kedacore.ledger.contacts import ContactList
from kedacore.segments import count_segments
from kedacore.team import Permission
from kedacore.words import counted


class ParsedCache:
    """The files read and checked lately, by content, kept within a budget of bytes.

    A least-recently-used cache shared by every session of the process: a rerun of the page
    (every widget change) finds its file and preview here instead of reading a million rows
    again, and what it keeps is bounded by their estimated size (``approx_size``), not by
    their number — four small files or one large one. A refusal is kept too (it is small),
    so a file over a limit is not read again on every rerun. An entry larger than the budget
    is not kept at all.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._items: OrderedDict[tuple, tuple[object, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> object | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
            return found[0]

    def put(self, key: tuple, value: object, size: int) -> None:
        with self._lock:
            if key in self._items:
                self.used -= self._items.pop(key)[1]
            if size > self.budget:
                return
            while self._items and self.used + size > self.budget:
                self.used -= self._items.popitem(last=False)[1][1]
            self._items[key] = (value, size)
            self.used += size

    def __len__(self) -> int:
        return len(self._items)


CACHE_MB = 1024  # KEDA_CAMPAIGN_CACHE_MB: files and previews kept between reruns
_SAMPLE = 256  # items of a long sequence measured to estimate its size


def approx_size(obj: object) -> int:
    """Bytes ``obj`` holds (sys.getsizeof of it and what it refers to), each object once; a
    sequence of more than 256 items is estimated from 256 of them spread over it, so a
    million-row preview is measured in a millisecond."""
    return _size(obj, set())


def _size(obj: object, seen: set[int]) -> int:
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, (str, bytes, int, float, Decimal)) or obj is None:
        return size
    if isinstance(obj, (tuple, list)):
        if len(obj) <= _SAMPLE:
            return size + sum(_size(item, seen) for item in obj)
        step = len(obj) / _SAMPLE
        sample = sum(_size(obj[int(i * step)], seen) for i in range(_SAMPLE))
        return size + sample * len(obj) // _SAMPLE
    if isinstance(obj, dict):
        return size + sum(_size(k, seen) + _size(v, seen) for k, v in obj.items())
    for name in getattr(type(obj), "__slots__", ()):
        size += _size(getattr(obj, name, None), seen)
    if hasattr(obj, "__dict__"):
        size += _size(vars(obj), seen)
    return size


@st.cache_resource(show_spinner=False)
def parsed_cache() -> ParsedCache:
    """The process's cache of files and previews (its budget read once, at the first use)."""
    raw = os.environ.get("KEDA_CAMPAIGN_CACHE_MB") or _secret("keda_campaign_cache_mb")
    try:
        megabytes = int(str(raw).replace("_", "").replace(",", "")) if raw else CACHE_MB
    except ValueError:
        megabytes = CACHE_MB
    return ParsedCache(max(megabytes, 0) * MB)


def _secret(name: str) -> object:
    try:
        return (st.secrets.get("keda") or {}).get(name)
    except Exception:  # no secrets file
        return None


def recipient_limits() -> RecipientLimits:
    """The operator's limits (KEDA_MAX_UPLOAD_MB, KEDA_MAX_ROWS … or ``[keda]`` in secrets)."""
    try:
        secrets: object = st.secrets
    except Exception:
        secrets = None
    return load_limits(secrets, os.environ)  # type: ignore[arg-type]


def read_file(
    digest: str, name: str, data: bytes, limits: RecipientLimits, encoding: str | None = None
) -> RecipientFile:
    """The uploaded file's rows, kept by content (a rerun does not read it again).

    ``encoding``: the CSV's, as chosen on the page; None detects it.

    Raises:
        RecipientsError: the file cannot be used (kept too: it is not read again either).
    """
    cache = parsed_cache()
    key = ("file", digest, name, limits, encoding)
    found = cache.get(key)
    if found is None:
        with st.spinner("Reading the file…"):
            try:
                found = read_recipients(data, filename=name, limits=limits, encoding=encoding)
            except RecipientsError as exc:
                found = exc
        cache.put(key, found, approx_size(found))
    if isinstance(found, RecipientsError):
        raise found
    assert isinstance(found, RecipientFile)
    return found


def read_list(console: Console, chosen: ContactList, limits: RecipientLimits) -> RecipientFile:
    """A contact list as the recipients table (``phone`` and its attributes), kept while the
    list is unchanged (its last change and size are in the key).

    Raises:
        RecipientsError: more contacts than a campaign takes (KEDA_MAX_ROWS).
    """
    cache = parsed_cache()
    key = ("list", console.ledger.url, chosen.id, chosen.updated_at, chosen.size, limits)
    found = cache.get(key)
    if found is None:
        with st.spinner("Reading the list…"):
            try:
                found = list_recipients(console.ledger.all_contacts(chosen.id), limits=limits)
            except RecipientsError as exc:
                found = exc
        cache.put(key, found, approx_size(found))
    if isinstance(found, RecipientsError):
        raise found
    assert isinstance(found, RecipientFile)
    return found


def encoding_choice(name: str, data: bytes) -> str | None:
    """The CSV's encoding as chosen on the page (None: detect it); no choice for a workbook."""
    if data[:4] == b"PK\x03\x04" or name.lower().endswith((".xlsx", ".xlsm")):
        return None
    choice = st.selectbox(
        "Encoding",
        ["", *ENCODINGS],
        format_func=lambda c: label(c) if c else "Detect automatically",
        key="campaigns_encoding",
        help="How the file's characters are written. Excel's CSV uses the Windows code page "
        "of the computer that saved it (Korean cp949, Japanese Shift-JIS, Chinese GBK or "
        "Big5, Western Windows-1252): if names or column names look wrong, choose another.",
    )
    return choice or None


def check(
    digest: str,
    template: str,
    country: str,
    sender: str | None,
    prices: tuple,
    table: RecipientFile,
    pricing: Pricing,
) -> tuple[CampaignPreview, CampaignPlan]:
    """Every row checked and priced, and the requests it makes (kept for the same inputs)."""
    cache = parsed_cache()
    shape = (table.columns, len(table.rows), len(table.broken))  # the file as read (limits)
    key = ("check", digest, shape, template, country, sender, prices)
    found = cache.get(key)
    if found is None:
        with st.spinner("Checking every row…"):
            preview = preview_campaign(
                table, template, pricing=pricing, default_country=country, sender=sender
            )
            found = (preview, plan_requests(preview))
        cache.put(key, found, approx_size(found))
    return found  # type: ignore[return-value]


def tracked_plan(plan: CampaignPlan, short_base: str) -> CampaignPlan:
    """The plan as KedaSMS bills it with trackClick: each request with a link counted with
    its links replaced by short links (the text sent stays as written; the service rewrites
    it). Its total is what is compared with the approval threshold, the balance and the caps,
    and what the ledger keeps as the campaign's estimate."""
    counted_segments: dict[str, int] = {}
    requests = []
    for r in plan.requests:
        if URL_RE.search(r.content):
            if r.content not in counted_segments:
                rewritten = rewritten_for_estimate(r.content, short_base)
                counted_segments[r.content] = count_segments(rewritten).segments
            r = replace(r, segments=counted_segments[r.content])
        requests.append(r)
    return replace(plan, requests=tuple(requests))


def masked_callback_url(console: Console) -> str:
    """The receiver's address with its secret token cut to the last 4 characters."""
    url, token = console.callback_url, console.settings.webhook_token
    return url.replace(token, f"…{token[-4:]}") if token and token in url else url


def new_campaign(console: Console, pricing: Pricing) -> None:
    """The form: file, template, options; then the checks, the preview and the cost."""
    state = st.session_state
    cur = pricing.currency
    if "campaigns_started" in state:  # until the next campaign is confirmed
        started = console.ledger.campaign_label(state["campaigns_started"]) or "The campaign"
        waits = console.ledger.campaign_status(state["campaigns_started"]) == "awaiting"
        st.success(
            f"Campaign {plain(started)} "
            + ("waits for approval" if waits else "was started")
            + f": follow it under **{LIST}**. The file and template are kept here for another "
            "campaign.",
            icon=":material/approval:" if waits else ":material/rocket_launch:",
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
        try:
            limits = recipient_limits()
        except ValueError as exc:  # the operator's setting, named in the message
            st.error(
                f"**Campaign files cannot be read:** {plain(exc)}. Correct the setting "
                "(environment or `[keda]` in secrets) and restart the console.",
                icon=":material/settings:",
            )
            return
        chosen = list_choice(console)  # a contact list, or None: a file
        upload = None
        digest = ""
        if chosen is not None:
            digest = f"list {chosen.id} {chosen.updated_at.isoformat()}"  # a change: again
            try:
                table = read_list(console, chosen, limits)
            except RecipientsError as exc:  # a whole sentence: the limit and what to do
                st.error(plain(exc), icon=":material/groups:")
            else:
                st.caption(
                    f"{counted(len(table.rows), 'contact')} in the list; attributes: "
                    + (", ".join(f"**{plain(c)}**" for c in table.columns[1:]) or "none")
                    + "."
                )
        else:
            upload = st.file_uploader(
                "Recipients (CSV or XLSX)",
                type=["csv", "txt", "xlsx"],
                key="campaigns_file",
                max_upload_size=limits.upload_mb,
                help="A phone column (phone, mobile, number…), optionally country and sender "
                f"columns; every column can be used in the template. The header is row 1. Up to "
                f"{limits.rows:,} rows, {limits.columns:,} columns and {limits.upload_mb:,} MB.",
                on_change=lambda: state.pop("campaigns_encoding", None),  # a new file: detect
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
            if upload is not None:
                data = upload.getvalue()
                digest = hashlib.sha256(data).hexdigest()
                encoding = encoding_choice(upload.name, data)
                try:
                    table = read_file(digest, upload.name, data, limits, encoding)
                except RecipientsLimitError as exc:  # a whole sentence: the limit and what to do
                    st.error(plain(exc), icon=":material/description:")
                except RecipientsError as exc:
                    st.error(
                        f"**This file cannot be used:** {plain(exc)}. Correct it and upload it "
                        "again (the sample CSV shows the expected shape).",
                        icon=":material/description:",
                    )
                else:
                    how = "Excel workbook"
                    if table.encoding != "xlsx":
                        how = plain(label(table.encoding))
                        how += ", chosen" if encoding else ", detected"
                    extra = [f"country column **{plain(table.country_column)}**"] * bool(
                        table.country_column
                    )
                    extra += [f"sender column **{plain(table.sender_column)}**"] * bool(
                        table.sender_column
                    )
                    st.caption(
                        f"{len(table.rows) + len(table.broken):,} row(s) read ({how}); phone "
                        f"column **{plain(table.phone_column)}**"
                        + "".join(f", {e}" for e in extra)
                        + "."
                    )
        tv.starters(  # a saved template fills the text, a sender profile sender and country
            console.ledger,
            "campaigns",
            text_key="campaigns_template",
            sender_key="campaigns_sender",
            country_key="campaigns_country",
            countries=sorted(pricing.prices),
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
        schedule, not_yet = schedule_inputs(console)
        blockers.extend(not_yet)
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
                st.error(
                    f"**The template cannot be used:** {plain(exc)}.", icon=":material/edit_note:"
                )
                blockers.append("correct the template")
        if preview is not None and plan is not None:  # opt-outs, frequency: read each run
            preview, plan = optouts.campaign_guard(console, preview, plan)

    written = plan
    if track and plan is not None:  # the cost as billed: links counted as short links
        plan = tracked_plan(plan, console.runtime.short_link_base)
    if not name.strip():
        blockers.append("name the campaign")
    if chosen is not None:
        if table is None or not table.rows:
            blockers.append("choose a list that has contacts")
    elif upload is None:
        blockers.append("upload the recipients file")
    elif table is None:
        blockers.append("upload a file that can be used")
    if not template.strip():
        blockers.append("write the message template")
    if preview is not None and not preview.rows:
        blockers.append("have at least one row without problems")

    with summary, st.container(border=True):
        draw_summary(console, cur, preview, plan, written if track else None)
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
        if preview.rows:  # before sending: the first rows to the member's own numbers
            offer_test(console, pricing, preview, country)
    if clicked and not blockers and plan is not None and preview is not None:
        funds = check_funds(plan, console.balance, console.limits)
        state["campaigns_pending"] = {
            "name": name.strip(),
            "plan": plan,
            "skipped": preview.rejected_rows,
            "opted_out": len(preview.opted_out),
            "recent_left_out": len(preview.recent_left_out),
            "options": cv.CampaignOptions(track_click=track, callback=callback),
            "list_id": chosen.id if chosen is not None else None,
            "warnings": [line.text for line in cv.funds_lines(funds) if line.kind != "ok"],
            "schedule": schedule,
        }


def draw_summary(
    console: Console,
    cur: str,
    preview: CampaignPreview | None,
    plan: CampaignPlan | None,
    written: CampaignPlan | None = None,
) -> None:
    """The figures that decide: recipients, problems, requests, cost, balance and caps.

    ``written``: with trackClick, the plan counted with the text as written (``plan`` is
    counted with short links, as KedaSMS bills it)."""
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
        "KedaSMS charges it (with trackClick, each link counted as a short link).",
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
    if written is not None and written.total != plan.total:
        linked = sum(len(r.recipients) for r in plan.requests if URL_RE.search(r.content))
        st.caption(
            f"With trackClick the {counted(linked, 'message')} with a link are counted with "
            f"short links, as KedaSMS bills them: **{money(plan.total, cur)}** "
            f"({money(written.total, cur)} with the links as written)."
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
        st.error(cv.problems_summary(preview), icon=":material/rule:")
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
    recipients = counted(plan.recipients, "recipient")
    st.markdown(
        f"**{plain(pending['name'])}** to **{recipients}** in {countries} "
        f"countr{'y' if countries == 1 else 'ies'}, {counted(len(plan.requests), 'request')}."
    )
    by_country = cv.requests_by_country(plan)
    st.markdown(
        " · ".join(
            f"{plain(r.Country)}: {r.Recipients:,} in {counted(r.Requests, 'request')}, {r.Cost}"
            for r in by_country.itertuples()
        )
    )
    st.markdown(f"Total cost: **{money(plan.total, cur)}**")
    draw_parts(console, plan, pending.get("schedule"))
    if pending["skipped"]:
        st.caption(f"{pending['skipped']:,} row(s) with problems are left out.")
    if left_out := optouts.left_out_sentence(pending):
        st.caption(left_out)
    for text in pending["warnings"]:
        st.warning(text, icon=":material/warning:")
    gate = rules.gate(console.ledger, console.actor)
    holds = gate.holds(plan.total)
    if holds:
        approvers = console.ledger.approvers(besides=console.actor.name)
        st.info(
            f"**It waits for approval:** {money(plan.total, cur)} is over the team's approval "
            f"threshold of {money(gate.threshold, cur)}. Nothing is sent or frozen until "
            f"{plain(rules.who_approves(approvers))} approves it on the Approvals page.",
            icon=":material/approval:",
        )
    elif note := gate.unheld(plan.total, cur):
        st.caption(note)
    st.caption(
        "Sending goes on in the background: you can close this page and come back; an "
        "interrupted campaign can be resumed and no recipient gets the message twice."
        + (" Sandbox: nothing leaves this machine." if console.sandbox else "")
    )
    yes, no = st.columns(2)
    label = "Confirm and ask for approval" if holds else "Confirm and send"
    if yes.button(label, key="campaigns_confirm", type="primary", width="stretch"):
        campaign_id = create_campaign(console, pending)
        _dismiss()
        account_changed()
        st.session_state["campaigns_focus"] = campaign_id
        st.rerun()
    if no.button("Cancel", key="campaigns_cancel", width="stretch"):
        _dismiss()
        st.rerun()


def create_campaign(console: Console, pending: dict, *, form: str = "campaigns") -> int:
    """Confirm: the permission checked again, the plan written (audited), then the campaign
    started — or, over the approval threshold, held for another member's approval.

    ``form`` is the page whose template picker the text came from (``send`` for a send for
    later): that template is the one marked used."""
    actor = access.require(
        console.ledger, Permission.CAMPAIGNS, "start campaigns", target="campaign"
    )
    plan: CampaignPlan = pending["plan"]
    engine = engine_for(console, pending["options"])
    campaign_id = engine.create(
        plan,
        name=pending["name"],
        created_by=actor.name,
        options=cv.options_json(pending["options"]),  # in the ledger: any worker reads them
        list_id=pending.get("list_id"),
        schedule=pending.get("schedule"),
    )
    campaign = console.ledger.campaign(campaign_id)
    assert campaign is not None
    if pending.get("schedule") is not None:
        console.ledger.audit(
            actor.name,
            "campaign_schedule",
            target=f"campaign {campaign_id}",
            after={**pending["schedule"].as_json(), "first_part_at": campaign.scheduled_at},
        )
    tv.mark_used(console.ledger, form)  # its template (if it started from one)
    console.ledger.audit(
        actor.name,
        "campaign_create",
        target=f"campaign {campaign_id}",
        after={
            "name": campaign.name,
            "recipients": campaign.recipients,
            "requests": campaign.batches,
            "estimate": plan.total,
            "currency": campaign.currency,
            "rows_left_out": pending["skipped"],
            **({"opted_out_left_out": pending["opted_out"]} if pending.get("opted_out") else {}),
            **(
                {"recent_left_out": pending["recent_left_out"]}
                if pending.get("recent_left_out")
                else {}
            ),
            **({"list": pending["list_id"]} if pending.get("list_id") else {}),
        },
    )
    gate = rules.gate(console.ledger, actor)  # read again: finance may have changed it
    if gate.holds(plan.total):
        assert gate.threshold_micros is not None
        console.ledger.hold_campaign(
            campaign_id, by=actor.name, threshold_micros=gate.threshold_micros
        )
    else:
        start_or_arm(console, campaign_id, by=actor.name)  # now, or at its first part's time
    return campaign_id
