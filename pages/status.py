"""Messaging → Status: what became of messages, by msgid, task id, phone number or a list."""

from __future__ import annotations

import time

import streamlit as st

from console.messaging.lookup import MAX_IDS, classify, parse_msgids, refresh, rows_for
from console.shell import keda_errors, page_setup
from console.views import (
    STATUS_STYLE,
    StatusRow,
    local_time,
    money,
    plain,
    status_badge,
    status_counts,
    status_csv,
    status_frame,
    timeline_frame,
)
from kedacore.phones import supported_regions

# Open messages are asked about again after this many seconds, slower for big sets (a round
# for 10,000 open messages takes a few seconds); between rounds the page re-reads the ledger,
# where callbacks land.
REFRESH_AFTER = 1.5
TIMELINE_CHOICES = 1000

console = page_setup(
    "Status", "Look up messages by msgid, task id or phone number, or a list of msgids."
)
state = st.session_state


def look_up(msgids: list[str], label: str) -> None:
    """Ask about ``msgids`` now and make them the page's result."""
    with (
        keda_errors("The lookup failed", sandbox=console.sandbox),
        st.spinner(f"Looking up {len(msgids):,} message(s)…"),
    ):
        found = console.call_async(lambda client: refresh(console.ledger, client, msgids))
    state["status_ids"] = msgids
    state["status_label"] = label
    state["status_api_only"] = found.api_only
    state["status_errors"] = found.errors
    state["status_checked_at"] = time.monotonic()


# A form, so that Enter in the search box looks up at once.
with st.form("status_search", border=False):
    search, country_box, go = st.columns([4, 2, 1], vertical_alignment="bottom")
    query_text = search.text_input(
        "msgid, task id or phone number",
        key="status_query",
        placeholder="msg_1a2b3c4d5e6f · 20260131-0001 · +12015550123",
    )
    regions = sorted(supported_regions())
    country = country_box.selectbox(
        "Country of national numbers",
        regions,
        index=regions.index("US"),
        key="status_country",
    )
    clicked = go.form_submit_button("Look up", key="status_lookup", type="primary", width="stretch")

with st.expander(f"Look up a list of msgids (up to {MAX_IDS:,})"):
    pasted = st.text_area(
        "msgids", key="status_list", height=100, placeholder="One per line, or comma separated"
    )
    upload = st.file_uploader(
        "…or a CSV / text file with a column of msgids", type=["csv", "txt"], key="status_upload"
    )
    many = st.button("Look up the list", key="status_lookup_many")

if clicked and query_text.strip():
    q = classify(query_text, country)
    if q.kind == "invalid":
        st.error(f"**{plain(q.value)}** is {plain(q.problem)}.", icon=":material/search_off:")
        st.stop()
    if q.kind == "msgid":
        look_up([q.value], f"msgid {q.value}")
    elif q.kind == "task":
        ids = [m.msgid for m in console.ledger.task_messages(q.value)]
        if not ids:  # sent by another tool: the status API knows the task
            with keda_errors(f"Task {q.value} could not be looked up", sandbox=console.sandbox):
                statuses = console.client.sms.task(q.value)
            console.ledger.record_lookups(statuses)
            ids = [s.msgid for s in statuses]
        look_up(ids, f"task {q.value}")
    else:
        ids = [m.msgid for m in console.ledger.messages_by_recipient(q.value)]
        if not ids:
            st.info(
                f"No message to **{plain(q.value)}** in this console's ledger. (The status API "
                "cannot search by number: only messages sent from this console are found.)",
                icon=":material/search_off:",
            )
            st.stop()
        look_up(ids, f"messages to {q.value}")

if many:
    text = pasted
    if upload is not None:
        text += "\n" + upload.getvalue().decode("utf-8", errors="replace")
    ids, rejected = parse_msgids(text)
    if rejected:
        shown = ", ".join(f"“{plain(r)}”" for r in rejected[:10])
        st.warning(f"Not msgids, left out ({len(rejected):,}): {shown}", icon=":material/warning:")
    if len(ids) > MAX_IDS:
        st.error(f"{len(ids):,} msgids: at most {MAX_IDS:,} at a time.", icon=":material/error:")
        st.stop()
    if not ids:
        st.error("No msgid found (they look like msg_1a2b3c4d5e6f).", icon=":material/search_off:")
        st.stop()
    look_up(ids, f"{len(ids):,} msgids")


def current_rows() -> list[StatusRow]:
    return rows_for(console.ledger, state["status_ids"], state["status_api_only"], console.currency)


def message_card(row: StatusRow) -> None:
    """One message in words (status first: it is what people look for)."""
    color, icon = STATUS_STYLE.get(row.status, ("gray", ""))
    facts = [f"to {plain(row.recipient)}"]
    if row.sent_at:
        facts.append(f"sent {local_time(row.sent_at, console.tz)}")
    if row.final_at and row.final:
        facts.append(f"final {local_time(row.final_at, console.tz)}")
    if row.latency_ms is not None:
        facts.append(f"delivered in {row.latency_ms / 1000:.2f} s")
    if row.cost is not None:
        facts.append(f"cost {money(row.cost, row.currency)}")
    st.markdown(f"### :{color}[{icon} {plain(row.status)}]")
    st.markdown(f"`{row.msgid}` · " + " · ".join(facts))


def open_count() -> int:
    return sum(not r.final for r in current_rows())


def results() -> None:
    """The result table, its timeline and export; open messages are asked about again."""
    open_ids = [r.msgid for r in current_rows() if not r.final]
    pace = max(REFRESH_AFTER, len(open_ids) / 1000 * 3)
    stale = time.monotonic() - state.get("status_checked_at", 0) > pace
    if open_ids and stale:
        try:
            found = console.call_async(lambda client: refresh(console.ledger, client, open_ids))
            state["status_api_only"] = {**state["status_api_only"], **found.api_only}
            state["status_errors"] = {
                k: v for k, v in state["status_errors"].items() if k not in open_ids
            } | found.errors
        except Exception as exc:  # a passing failure must not break the page: say it, retry
            st.warning(
                f"Could not refresh just now ({plain(exc)}); retrying.",
                icon=":material/hourglass_top:",
            )
        state["status_checked_at"] = time.monotonic()
    rows = current_rows()
    ids = state["status_ids"]
    if not rows:
        st.info(f"Nothing found for {plain(state['status_label'])}.", icon=":material/search_off:")
    elif len(ids) == 1:
        message_card(rows[0])
    else:
        counts = status_counts(rows)
        st.markdown(
            f"**{len(rows):,} message(s)** for {plain(state['status_label'])}: "
            + " · ".join(f"{status_badge(s)} **{n:,}**" for s, n in counts.items())
        )
    errors = state.get("status_errors") or {}
    missing = len(ids) - len(rows)
    if errors or missing:
        sample = "; ".join(f"{plain(k)}: {plain(v)}" for k, v in list(errors.items())[:3])
        st.warning(
            f"{missing:,} msgid(s) unknown to the ledger and the status API. {sample}",
            icon=":material/warning:",
        )
    if not rows:
        return
    st.dataframe(
        status_frame(rows, console.tz),
        hide_index=True,
        width="stretch",
        column_config={
            "Final": st.column_config.TextColumn(help="When the status became final"),
            "Latency (s)": st.column_config.NumberColumn(help="From SENT to DELIVERED"),
            "Cost": st.column_config.TextColumn(help="Charged, once the service reports it"),
        },
        key="status_table",
    )
    still_open = sum(not r.final for r in rows)
    left, right = st.columns([3, 1], vertical_alignment="center")
    zone_note = (
        "Times in UTC, as in the CSV export."
        if console.tz.key == "UTC"
        else f"Times in {console.tz.key}; the CSV export has UTC."
    )
    progress = (
        f"{still_open:,} message(s) not final yet: refreshing on their own."
        if still_open
        else "Every message has its final status."
    )
    left.caption(f"{zone_note} {progress}")
    right.download_button(
        "Export CSV",
        lambda: status_csv(rows),  # built only when clicked
        file_name="message-status.csv",
        mime="text/csv",
        on_click="ignore",
        key="status_export",
        width="stretch",
    )
    choices = [r.msgid for r in rows[:TIMELINE_CHOICES]]
    by_id = {r.msgid: r for r in rows}
    pick = st.selectbox(
        "Timeline of",
        choices,
        format_func=lambda m: f"{m} · {by_id[m].recipient} · {by_id[m].status}",
        key="status_timeline",
    )
    if pick:
        st.dataframe(
            timeline_frame(by_id[pick], console.ledger.message_events(pick), console.tz),
            hide_index=True,
            width="stretch",
            key="status_timeline_table",
        )
    if not still_open and state.get("status_refreshing"):
        state["status_refreshing"] = False
        st.rerun()  # redraw the whole page once, so the ticking stops


if "status_ids" in state:
    state.setdefault("status_api_only", {})
    state.setdefault("status_errors", {})
    n_open = open_count()
    state["status_refreshing"] = bool(n_open)
    # Open messages refresh on their own; a big table is redrawn less often.
    every = (2.0 if n_open <= 1000 else 5.0) if n_open else None
    st.fragment(results, run_every=every)()
