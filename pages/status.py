"""Messaging → Status: what became of messages, by msgid, task id, phone number or a list."""

from __future__ import annotations

import time

import streamlit as st

from console.access import guarded
from console.audience import optouts
from console.messaging import status_view as view
from console.messaging.lookup import MAX_IDS, Refresh, classify, parse_msgids, refresh, rows_for
from console.shell import keda_errors, page_setup
from console.views import StatusRow, plain, status_csv
from kedacore import KedaError
from kedacore.phones import supported_regions
from kedacore.team import Permission
from kedacore.words import counted

# Open messages are asked about again after this many seconds, slower for big sets (a round
# for 10,000 open messages takes a few seconds); between rounds the page re-reads the ledger,
# where callbacks land.
REFRESH_AFTER = 1.5
PROGRESS_FROM = 100  # ids: from this many, a progress bar and a Stop button
STATE = ("status_ids", "status_label", "status_api_only", "status_not_found", "status_errors")

console = page_setup(
    "Status",
    "Look up messages by msgid, task id or phone number, or a list of msgids.",
    needs=Permission.LOOKUP,
)
state = st.session_state


def clear_result() -> None:
    for name in (*STATE, "status_pending", "status_checked_at", "status_rows", "status_phone"):
        state.pop(name, None)


def keep(found: Refresh) -> None:
    """What the lookup learnt so far, kept at once: a Stop keeps it too."""
    state["status_api_only"] = dict(found.api_only)
    state["status_not_found"] = set(found.not_found)
    state["status_errors"] = dict(found.errors)
    state["status_pending"] = set(found.pending)


def look_up(msgids: list[str], label: str) -> None:
    """Ask about ``msgids`` now and make them the page's result."""
    clear_result()
    state.update(status_ids=msgids, status_label=label)
    keep(Refresh(pending=set(msgids)))  # stopped before any answer: nothing was asked
    with keda_errors("The lookup failed", sandbox=console.sandbox):
        try:
            found = ask(msgids)
        except KedaError:  # nothing was looked up: no result to show
            clear_result()
            raise
    keep(found)
    state["status_pending"] = set()
    state["status_checked_at"] = time.monotonic()


def ask(msgids: list[str]) -> Refresh:
    """The lookup, with a progress bar and a Stop button from PROGRESS_FROM ids."""
    if len(msgids) < PROGRESS_FROM:
        with st.spinner(f"Looking up {counted(len(msgids), 'message')}…"):
            return console.call_async(lambda client: refresh(console.ledger, client, msgids))
    box = st.container(border=True)
    bar = box.progress(0.0, text=f"Looking up {len(msgids):,} msgids…")
    # A click reruns the page; the run under way stops at its next element: the bar below.
    box.button("Stop", key="status_stop", help="Stop asking; keep what was found")

    def progress(done: int, total: int, found: Refresh) -> None:
        keep(found)  # before the bar, so a Stop keeps it
        bar.progress(done / max(total, 1), text=f"Looked up {done:,} of {total:,}…")

    found = console.call_async(
        lambda client: refresh(console.ledger, client, msgids, on_progress=progress)
    )
    box.empty()
    return found


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

if clicked:
    clear_result()  # a new search replaces the last result, whatever it finds
    if not query_text.strip():
        st.info(view.WHAT_TO_TYPE, icon=":material/search:")
        st.stop()
    q = classify(query_text, country)
    if q.kind == "invalid":
        st.error(f"**{plain(q.value)}** {plain(q.problem)}.", icon=":material/search_off:")
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
            optouts.show_state(console.ledger, q.value, console.tz)
            st.info(
                f"No message to **{plain(q.value)}** in this console's ledger. (The status API "
                "cannot search by number: only messages sent from this console are found.)",
                icon=":material/search_off:",
            )
            st.stop()
        look_up(ids, f"messages to {q.value}")
        state["status_phone"] = q.value  # its opt-out state is shown with the result

if many:
    clear_result()
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
    look_up(ids, "")  # the headline counts them


def current_rows() -> list[StatusRow]:
    return rows_for(console.ledger, state["status_ids"], state["status_api_only"], console.currency)


def results() -> None:
    """The result table, its timeline and export; open messages are asked about again."""
    # 10,000 rows take a while to read: once a run (the page's own read, on a full run), and
    # again after news from the service.
    rows = state.pop("status_rows", None) or current_rows()
    open_ids = [r.msgid for r in rows if not r.final]
    pace = max(REFRESH_AFTER, len(open_ids) / 1000 * 3)
    stale = time.monotonic() - state.get("status_checked_at", 0) > pace
    if open_ids and stale:
        try:
            found = console.call_async(lambda client: refresh(console.ledger, client, open_ids))
            state["status_api_only"] = {**state["status_api_only"], **found.api_only}
        except Exception as exc:  # a passing failure must not break the page: say it, retry
            st.warning(
                f"Could not refresh just now ({plain(exc)}); retrying.",
                icon=":material/hourglass_top:",
            )
        state["status_checked_at"] = time.monotonic()
        rows = current_rows()
    ids = state["status_ids"]
    view.summary(
        ids,
        state["status_label"],
        rows,
        state["status_not_found"],
        state["status_errors"],
        state["status_pending"],
    )
    if len(ids) == 1 and rows:
        view.message_card(rows[0], console.tz)
    if not rows:
        return
    view.table(rows, console.tz)
    still_open = sum(not r.final for r in rows)
    left, right = st.columns([3, 1], vertical_alignment="center")
    zone_note = (
        "Times in UTC, as in the CSV export."
        if console.tz.key == "UTC"
        else f"Times in {console.tz.key}; the CSV export has UTC."
    )
    progress = (
        f"{counted(still_open, 'message')} not final yet: refreshing on their own."
        if still_open
        else "Every message has its final status."
    )
    left.caption(f"{zone_note} {progress}")
    right.download_button(
        "Export CSV",
        guarded(  # built only when clicked, for someone who may still look up then
            console.ledger,
            Permission.LOOKUP,
            "export message statuses",
            lambda: status_csv(rows),
            target="Status",
        ),
        file_name="message-status.csv",
        mime="text/csv",
        on_click="ignore",
        key="status_export",
        width="stretch",
    )
    view.timeline(rows, console.ledger, console.tz)
    if not still_open and state.get("status_refreshing"):
        state["status_refreshing"] = False
        st.rerun()  # redraw the whole page once, so the ticking stops


if "status_ids" in state:
    if state.get("status_phone"):
        optouts.show_state(console.ledger, state["status_phone"], console.tz)
    for name, empty in (("status_api_only", {}), ("status_errors", {})):
        state.setdefault(name, empty)
    state.setdefault("status_not_found", set())
    state.setdefault("status_pending", set())
    state["status_rows"] = current_rows()  # used by the fragment's first run, just below
    n_open = sum(not r.final for r in state["status_rows"])
    state["status_refreshing"] = bool(n_open)
    # Open messages refresh on their own; a big table is redrawn less often.
    every = (2.0 if n_open <= 1000 else 5.0) if n_open else None
    st.fragment(results, run_every=every)()
