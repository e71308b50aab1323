"""Messaging → Message log: the filters, a page of 100 messages with Next/Previous, one
message's detail, and the export of the filtered set.

The rows come from ``kedacore.ledger.log`` (keyset paging: the page's cursors are kept in the
session, a stack of where each page shown so far began). The plain functions (frames, the
period) take no Streamlit and tests call them directly; the rest draws them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from console.access import guarded
from console.finance.audit import PERIODS, period_bounds, period_days
from console.views import StatusRow, local_time, money, plain, status_badge, timeline_frame
from kedacore.api.types import FINAL_STATUSES
from kedacore.exports import to_csv, to_xlsx
from kedacore.ledger import Ledger
from kedacore.ledger.log import EXPORT_ROWS, LogCount, LogCursor, LogFilter, LogRow
from kedacore.money import from_micros
from kedacore.team import Permission

STATUSES = ["QUEUED", "SENT", *sorted(FINAL_STATUSES)]
TEXT_SHOWN = 60  # characters of a message's text in the table
COLUMNS = ["When", "To", "Country", "Sender", "Status", "Cost", "Campaign", "Text"]
EXPORT_COLUMNS = [
    "created_utc", "msgid", "task_id", "recipient", "country", "sender", "status", "segments",
    "cost", "estimate", "currency", "campaign_id", "campaign", "final_utc", "text",
]  # fmt: skip
DEFAULT_SENDER = "(default sender)"
NO_CAMPAIGN = "(not a campaign)"


@dataclass(frozen=True, slots=True)
class Chosen:
    where: LogFilter
    period: str


def shortened(text: str, limit: int = TEXT_SHOWN) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def rows_frame(rows: Sequence[LogRow], tz: ZoneInfo) -> pd.DataFrame:
    """The page's table: local times, exact cost with its currency, the text shortened."""
    return pd.DataFrame(
        {
            "When": [local_time(r.created_at, tz) for r in rows],
            "To": [r.recipient for r in rows],
            "Country": [r.country for r in rows],
            "Sender": [r.sender or "" for r in rows],
            "Status": [r.status for r in rows],
            "Cost": [money(r.cost, r.currency) if r.cost is not None else "" for r in rows],
            "Campaign": [r.campaign or ("test" if r.test else "") for r in rows],
            "Text": [shortened(r.content) for r in rows],
        },
        columns=COLUMNS,
    )


def export_frame(rows: Sequence[LogRow]) -> pd.DataFrame:
    """The export (through ``kedacore.exports``): UTC times, exact amounts, the whole text."""
    return pd.DataFrame(
        {
            "created_utc": [r.created_at for r in rows],
            "msgid": [r.msgid for r in rows],
            "task_id": [r.task_id for r in rows],
            "recipient": [r.recipient for r in rows],
            "country": [r.country for r in rows],
            "sender": [r.sender or "" for r in rows],
            "status": [r.status for r in rows],
            "segments": pd.array([r.segments for r in rows], dtype="Int64"),
            "cost": [r.cost for r in rows],
            "estimate": [
                from_micros(r.estimated_micros) if r.estimated_micros is not None else None
                for r in rows
            ],
            "currency": [r.currency for r in rows],
            "campaign_id": pd.array([r.campaign_id for r in rows], dtype="Int64"),
            "campaign": [r.campaign or "" for r in rows],
            "final_utc": [r.final_at for r in rows],
            "text": [r.content for r in rows],
        },
        columns=EXPORT_COLUMNS,
    )


def page_caption(first: int, shown: int, count: LogCount, period: str, tz: ZoneInfo) -> str:
    if shown == 0:
        return ""
    return (
        f"Messages {first + 1:,}–{first + shown:,} of {count} ({period}), newest first; times in "
        f"your zone ({tz.key}), in UTC in the exports."
    )


def empty_advice(where: LogFilter, period: str) -> str:
    """What to change when nothing matches (the filters that are set, in words)."""
    set_ = []
    if where.text.strip():
        set_.append("clear the search")
    if where.statuses or where.countries or where.senders:
        set_.append("remove a status, country or sender")
    if where.campaign_ids or where.list_id is not None:
        set_.append("choose another campaign or list")
    if where.since is not None:
        set_.append("widen the period")
    if not set_:
        return "No message yet: what Send and Campaigns send is listed here."
    return f"No message matches ({plain(period)}). Try to " + ", or ".join(set_) + "."


# -- the page ----------------------------------------------------------------------------------


def filter_form(ledger: Ledger, tz: ZoneInfo, today: date) -> Chosen:
    """The filters, in two rows."""
    choices = ledger.log_choices()
    with st.container(border=True):
        a, b, c, d = st.columns([2, 2, 2, 3])
        preset = a.selectbox(
            f"Period (days in {tz.key})",
            [p for p in PERIODS if p != "custom"],
            index=1,
            format_func=PERIODS.get,
            key="log_period",
        )
        statuses = b.multiselect("Status", STATUSES, key="log_status", placeholder="Any status")
        countries = c.multiselect(
            "Country", choices["countries"], key="log_country", placeholder="Every country"
        )
        text = d.text_input(
            "Search",
            key="log_text",
            placeholder="words of the text, a number, a msgid…",
            help="In the message's text (not case- or accent-sensitive), the recipient, the "
            "msgid or the task id.",
        )
        e, f, g = st.columns([2, 3, 3])
        senders = e.multiselect(
            "Sender",
            choices["senders"],
            format_func=lambda x: x or DEFAULT_SENDER,
            key="log_sender",
            placeholder="Every sender",
        )
        names = {cid: name for cid, name in choices["campaigns"]}
        campaigns = f.multiselect(
            "Campaign",
            [0, *names],
            format_func=lambda x: NO_CAMPAIGN if x == 0 else f"{names.get(x, x)} (#{x})",
            key="log_campaign",
            placeholder="Every campaign and send",
        )
        lists = {lid: name for lid, name in choices["lists"]}
        picked_list = g.selectbox(
            "Contact list",
            [None, *lists],
            format_func=lambda x: "Any list (or none)" if x is None else lists.get(x, str(x)),
            key="log_list",
        )
    days = period_days(preset, today)
    since, until = period_bounds(*days, tz) if days else (None, None)
    label = "all time" if days is None else f"{days[0].isoformat()} … {days[1].isoformat()}"
    where = LogFilter(
        since=since,
        until=until,
        statuses=tuple(statuses),
        countries=tuple(countries),
        senders=tuple(senders),
        campaign_ids=tuple(campaigns),
        list_id=picked_list,
        text=text,
    )
    return Chosen(where, label)


def cursor_stack(where: LogFilter) -> list[LogCursor | None]:
    """Where each page shown so far began (the last is the current one); back to page 1 when
    the filters change."""
    state = st.session_state
    if state.get("log_signature") != where.key():
        state["log_signature"] = where.key()
        state["log_pages"] = [None]
    return state["log_pages"]


def pager(stack: list[LogCursor | None], next_cursor: LogCursor | None) -> None:
    """Previous and Next (Next only when there is more)."""
    row = st.container(horizontal=True, gap="small", vertical_alignment="center")
    if row.button(
        "Previous", key="log_prev", icon=":material/chevron_left:", disabled=len(stack) == 1
    ):
        stack.pop()
        st.rerun()
    if row.button(
        "Next", key="log_next", icon=":material/chevron_right:", disabled=next_cursor is None
    ):
        stack.append(next_cursor)
        st.rerun()
    row.caption(f"Page {len(stack):,}")


def _digest(text: object) -> str:
    return hashlib.sha256(str(text).encode()).hexdigest()[:12]


def table(rows: Sequence[LogRow], tz: ZoneInfo, page: int) -> LogRow | None:
    """The page of messages; the row a person selects, or None."""
    shown = st.dataframe(
        rows_frame(rows, tz),
        hide_index=True,
        width="stretch",
        # One per filter and page: a selection never points at a row of another page.
        key=f"log_table_{_digest(st.session_state.get('log_signature'))}_{page}",
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            "When": st.column_config.TextColumn(width=145),
            "To": st.column_config.TextColumn(width=130),
            "Country": st.column_config.TextColumn(width=60),
            "Sender": st.column_config.TextColumn(width=100),
            "Status": st.column_config.TextColumn(width=105),
            "Cost": st.column_config.TextColumn(width=95),
            "Campaign": st.column_config.TextColumn(width=160),
            "Text": st.column_config.TextColumn(width=420),
        },
    )
    picked = list(shown.selection.rows) if shown is not None else []
    if picked and picked[0] < len(rows):
        return rows[picked[0]]
    st.caption(":material/touch_app: Select a row (the box at its left) to see its timeline.")
    return None


def detail(ledger: Ledger, row: LogRow, tz: ZoneInfo) -> None:
    """One message in full: what Status shows (its timeline, callbacks included), its text."""
    message = ledger.message(row.msgid)
    if message is None:
        return
    status = StatusRow.from_ledger(message)
    with st.container(border=True, key="log_detail"):
        campaign = f" · campaign {plain(row.campaign)}" if row.campaign else ""
        campaign += " · a campaign's **test**" if row.test else ""
        st.markdown(
            f"`{row.msgid}` {status_badge(status.status)} to {plain(row.recipient)} · task "
            f"`{row.task_id}`{campaign}"
        )
        st.code(row.content, language=None, wrap_lines=True)
        st.dataframe(
            timeline_frame(status, ledger.message_events(row.msgid), tz),
            hide_index=True,
            width="stretch",
            key="log_timeline",
        )


def downloads(ledger: Ledger, where: LogFilter, count: LogCount) -> None:
    """CSV and XLSX of the filtered set (newest first, at most EXPORT_ROWS), built when clicked
    for someone who may still read the log then."""

    def frame() -> pd.DataFrame:
        return export_frame(list(ledger.message_log_rows(where, limit=EXPORT_ROWS)))

    def checked(build: Callable[[], bytes]) -> Callable[[], bytes]:
        return guarded(
            ledger, Permission.LOG, "export the message log", build, target="Message log"
        )

    row = st.container(horizontal=True, gap="medium", vertical_alignment="center")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    row.download_button(
        "Export CSV",
        checked(lambda: to_csv(frame())),
        file_name=f"message-log-{stamp}.csv",
        mime="text/csv",
        key="log_csv",
        icon=":material/download:",
        on_click="ignore",
        disabled=count.n == 0,
    )
    row.download_button(
        "Export XLSX",
        checked(lambda: to_xlsx({"messages": frame()}, datetimes=True)),
        file_name=f"message-log-{stamp}.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        key="log_xlsx",
        icon=":material/download:",
        on_click="ignore",
        disabled=count.n == 0,
    )
    if not count.exact or count.n > EXPORT_ROWS:
        row.caption(
            f"The export holds the newest {EXPORT_ROWS:,} messages that match: narrow the "
            "filters for the rest."
        )
    else:
        row.caption("The export holds every message the filters match, not only this page.")
