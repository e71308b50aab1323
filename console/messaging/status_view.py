"""The Status page's views (Streamlit): one message's card, the summary of a lookup, the
table of messages and one message's timeline. The lookups themselves are in ``lookup.py``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from zoneinfo import ZoneInfo

import streamlit as st

from console.messaging.lookup import STATUS_COLORS, status_table, summarize
from console.views import (
    STATUS_STYLE,
    StatusRow,
    local_time,
    money,
    plain,
    status_badge,
    status_counts,
    timeline_frame,
)
from kedacore.ledger import Ledger

TIMELINE_CHOICES = 1000
WHAT_TO_TYPE = (
    "Type a msgid (msg_1a2b3c4d5e6f), a task id (20260131-0001) or a phone number, "
    "then **Look up**; or open *Look up a list of msgids*."
)
# Every column a width: sized to their first content, they kept it when a status or a time
# arrived later ("DELIVEF", "2026-1").
COLUMNS = {
    "Status": st.column_config.MultiselectColumn(
        options=list(STATUS_COLORS), color=list(STATUS_COLORS.values()), width=130
    ),
    "Recipient": st.column_config.TextColumn(width=125),
    "Final": st.column_config.TextColumn(width=150, help="When the status became final"),
    "Latency (s)": st.column_config.NumberColumn(
        width=90, format="%.3f", help="From SENT to DELIVERED"
    ),
    "Cost": st.column_config.TextColumn(width=95, help="Charged, once the service reports it"),
    "Clicks": st.column_config.NumberColumn(width=60),
    "msgid": st.column_config.TextColumn(width=175),
    "Task": st.column_config.TextColumn(width=125),
    "Sender": st.column_config.TextColumn(width=90),
    "Accepted": st.column_config.TextColumn(width=150),
    "Sent": st.column_config.TextColumn(width=150),
    "Last click": st.column_config.TextColumn(width=150),
}


def message_card(row: StatusRow, tz: ZoneInfo) -> None:
    """One message in words (status first: it is what people look for)."""
    color, icon = STATUS_STYLE.get(row.status, ("gray", ""))
    facts = [f"to {plain(row.recipient)}"]
    if row.sent_at:
        facts.append(f"sent {local_time(row.sent_at, tz)}")
    if row.final_at and row.final:
        facts.append(f"final {local_time(row.final_at, tz)}")
    if row.latency_ms is not None:
        facts.append(f"delivered in {row.latency_ms / 1000:.2f} s")
    if row.cost is not None:
        facts.append(f"cost {money(row.cost, row.currency)}")
    st.markdown(f"### :{color}[{icon} {plain(row.status)}]")
    st.markdown(f"`{row.msgid}` · " + " · ".join(facts))


def summary(
    msgids: Sequence[str],
    label: str,
    rows: Sequence[StatusRow],
    not_found: Collection[str],
    errors: Mapping[str, str],
    pending: Collection[str],
) -> None:
    """How many ids were found; the others in a table, with why (never a sentence each)."""
    done = summarize(msgids, rows, not_found, errors, pending)
    if len(msgids) == 1 and not rows:
        st.warning(
            f"**{plain(msgids[0])}** is unknown to this console and to the service: no message "
            "of this account has that id.",
            icon=":material/search_off:",
        )
    elif len(msgids) > 1:
        badges = " · ".join(f"{status_badge(s)} {n:,}" for s, n in status_counts(rows).items())
        what = f" for {plain(label)}" if label else ""
        st.markdown(f"**{plain(done.headline())}**{what}  {badges}")
    for n, why in done.failures():
        st.warning(f"{n:,} id(s) could not be looked up: {plain(why)}", icon=":material/warning:")
    if done.missing and len(msgids) > 1:
        with st.expander(f"Ids without a status ({done.missing:,})", expanded=done.missing <= 20):
            st.dataframe(done.missing_frame(), hide_index=True, width="stretch")


def table(rows: Sequence[StatusRow], tz: ZoneInfo) -> None:
    """The messages: status as a coloured badge, every column wide enough, no "None"."""
    st.dataframe(
        status_table(rows, tz),
        hide_index=True,
        width="stretch",
        placeholder="",  # a missing value is an empty cell
        column_config=COLUMNS,
        key="status_table",
    )


def timeline(rows: Sequence[StatusRow], ledger: Ledger, tz: ZoneInfo) -> None:
    """Pick one message; its story, callbacks included."""
    by_id = {r.msgid: r for r in rows}
    # A selectbox's value in the browser is its option's label: a label that changes with
    # the message (it said "· SENT") stays on screen after the message has moved on. So the
    # label holds what never changes, and the status is shown beside it.
    pick = st.selectbox(
        "Timeline of",
        [r.msgid for r in rows[:TIMELINE_CHOICES]],
        format_func=lambda m: f"{m} · {by_id[m].recipient}" if m in by_id else m,
        key="status_timeline",
    )
    if pick in by_id:
        row = by_id[pick]
        st.markdown(f"`{pick}` {status_badge(row.status)} to {plain(row.recipient)}")
        st.dataframe(
            timeline_frame(row, ledger.message_events(pick), tz),
            hide_index=True,
            width="stretch",
            key="status_timeline_table",
        )
