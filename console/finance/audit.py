"""Finance → Audit log: the filters, the page of rows in words, paging, and the export.

The log is ``kedacore.ledger.team``'s append-only ``audit_log`` (the database refuses UPDATE
and DELETE): this module only reads it. The plain functions (periods, values in words, the
frames) take no Streamlit and tests call them directly; the rest draws them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from console.access import guarded
from console.finance.views import FIELD_LABELS, cap_text
from console.views import local_time, money
from kedacore.exports import to_csv, to_xlsx
from kedacore.ledger import Ledger
from kedacore.ledger.audit import ACTIONS, OUTCOMES, AuditEntry, AuditFilter
from kedacore.ledger.caps import CAP_FIELDS
from kedacore.ledger.team import (
    APPROVAL_THRESHOLD,
    BALANCE_FLOOR,
    NOTIFY_EMAILS,
    NOTIFY_WEBHOOKS,
)
from kedacore.team import Permission

PAGE_SIZE = 50
EXPORT_ROWS = 100_000  # the export's bound: a year of a busy team's log
PERIODS = {
    "1d": "Today",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "all": "All time",
    "custom": "Custom range",
}
OUTCOME_LABELS = {"done": "Done", "refused": "Refused", "failed": "Failed"}
MONEY_KEYS = (
    APPROVAL_THRESHOLD,
    BALANCE_FLOOR,
    "amount",
    "estimate",
    "estimate_requested",
    "threshold",
    "debited",
    "cost",
)
KEY_LABELS = {
    **FIELD_LABELS,
    APPROVAL_THRESHOLD: "Approval threshold",
    BALANCE_FLOOR: "Balance floor",
    NOTIFY_EMAILS: "Notification e-mails",
    NOTIFY_WEBHOOKS: "Notification webhooks",
    "roles": "Roles",
    "name": "Name",
    "subject": "Subject",
    "state": "State",
    "status": "Status",
    "recipients": "Recipients",
    "recipients_left": "Recipients left",
    "country": "Country",
    "amount": "Amount",
    "estimate": "Estimate",
    "estimate_requested": "Estimate when asked",
    "threshold": "Threshold",
    "debited": "Debited",
    "currency": "Currency",
    "requested_by": "Asked by",
    "approval": "Approval request",
    "requests": "Requests",
    "rows_left_out": "Rows left out",
    "task_id": "Task",
    "client_ref": "Client ref",
    "code": "Error code",
    "concurrency": "Concurrency",
    "rate": "Rate",
    "deliveries": "Deliveries",
    "attempt": "Attempt",
}
# The order of clauses in "before → after" (what a person looks for first); the rest follow.
KEY_ORDER = (
    *CAP_FIELDS,
    "name",
    "subject",
    "state",
    "status",
    "recipients",
    "recipients_left",
    "country",
    "amount",
    "estimate",
    "estimate_requested",
    "threshold",
    "debited",
    "requested_by",
    "approval",
    "deliveries",
)
COLUMNS = ["When", "Who", "Action", "Outcome", "Target", "Before → after", "Detail"]
EXPORT_COLUMNS = [
    "at",
    "actor",
    "action",
    "action_label",
    "outcome",
    "target",
    "change",
    "before",
    "after",
    "detail",
]
XLSX_AT = "at (UTC)"  # a worksheet's time cell has no zone: its header says it
XLSX_WIDTHS = {
    XLSX_AT: 20,
    "actor": 28,
    "action": 18,
    "action_label": 26,
    "outcome": 10,
    "target": 28,
    "change": 60,
    "before": 40,
    "after": 40,
    "detail": 60,
}
XLSX_WRAP = ("change", "detail")
XLSX_OPTIONS: dict[str, Any] = {"datetimes": True, "widths": XLSX_WIDTHS, "wrap": XLSX_WRAP}


# -- periods -----------------------------------------------------------------------------------


def period_days(preset: str, today: date) -> tuple[date, date] | None:
    """The first and last local day of a preset (both included); None for all time."""
    if preset == "all":
        return None
    days = {"1d": 1, "7d": 7, "30d": 30, "90d": 90}[preset]
    return today - timedelta(days=days - 1), today


def period_bounds(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """From the start of ``first`` to the end of ``last`` in the user's zone, as UTC times."""
    since = datetime.combine(first, time(), tz).astimezone(UTC)
    until = datetime.combine(last + timedelta(days=1), time(), tz).astimezone(UTC)
    return since, until


# -- values in words ---------------------------------------------------------------------------


def label_of(key: str) -> str:
    return KEY_LABELS.get(key, key.replace("_", " ").capitalize())


def deliveries_words(items: Sequence[Any]) -> str:
    """Where a notification went: ``webhook https://h/…abcd: delivered · e-mail a@x.com,
    b@x.com: not delivered — SMTP is not configured …`` (targets with the same outcome
    said together)."""
    said: dict[tuple[str, bool, str], list[str]] = {}
    other = []
    for item in items:
        if not isinstance(item, dict):
            other.append(value_words("", item, ""))
            continue
        raw = str(item.get("channel") or "")
        channel = {"email": "e-mail", "none": "nobody"}.get(raw, raw)
        outcome = (channel, bool(item.get("ok")), str(item.get("error") or ""))
        said.setdefault(outcome, []).append(str(item.get("to") or ""))
    parts = []
    for (channel, ok, why), targets in said.items():
        where = " ".join(p for p in (channel, ", ".join(t for t in targets if t)) if p)
        if ok:
            parts.append(f"{where}: delivered")
        else:
            parts.append(f"{where}: not delivered — {why}" if why else f"{where}: not delivered")
    return " · ".join(parts + other) or "nobody"


def value_words(key: str, value: Any, currency: str) -> str:
    """One recorded value for a person: a cap, an amount, roles, a list, a record, on/off —
    never a program's notation."""
    if key in CAP_FIELDS:
        return cap_text(key, value, currency)
    if value is None:
        return "off" if key in (APPROVAL_THRESHOLD, BALANCE_FLOOR) else "—"
    if isinstance(value, bool):
        return "on" if value else "off"
    if key in MONEY_KEYS and isinstance(value, (str, int, float)):
        try:
            return money(Decimal(str(value)), currency)
        except InvalidOperation:
            return str(value)
    if key == "deliveries" and isinstance(value, list):
        return deliveries_words(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(value_words(key, v, currency) for v in value) or "none"
    if isinstance(value, dict):
        inner = [f"{label_of(k)}: {value_words(k, v, currency)}" for k, v in value.items()]
        return "(" + ", ".join(inner) + ")" if inner else "—"
    return str(value)


def change_clauses(entry: AuditEntry, currency: str) -> list[str]:
    """``before → after`` of an entry in words: one clause per thing recorded or changed."""
    before, after = entry.before, entry.after
    cur = currency
    for side in (after, before):
        if isinstance(side, dict) and isinstance(side.get("currency"), str):
            cur = side["currency"]  # a top-up, a send, an approval name their own currency
            break
    if entry.action == "topup" and isinstance(after, dict) and "amount" in after:
        return ["+" + value_words("amount", after["amount"], cur)]
    if not isinstance(before, dict) and not isinstance(after, dict):
        if before is None and after is None:
            return []
        return [f"{value_words('', before, cur)} → {value_words('', after, cur)}"]
    old = before if isinstance(before, dict) else {}
    new = after if isinstance(after, dict) else {}
    keys = [k for k in KEY_ORDER if k in old or k in new]
    keys += [k for k in (*old, *new) if k not in keys]
    if any(k in MONEY_KEYS for k in keys):
        keys = [k for k in keys if k != "currency"]  # each amount names it
    clauses = []
    for key in dict.fromkeys(keys):
        label = label_of(key)
        if key not in old:
            clauses.append(f"{label}: {value_words(key, new[key], cur)}")
        elif key not in new:
            clauses.append(f"{label}: {value_words(key, old[key], cur)} (removed)")
        else:
            was, now = value_words(key, old[key], cur), value_words(key, new[key], cur)
            clauses.append(f"{label}: {was} → {now}")
    return clauses


def change_words(entry: AuditEntry, currency: str) -> str:
    """``before → after`` of an entry in words, one clause per thing that changed."""
    return "; ".join(change_clauses(entry, currency))


def entry_text(entry: AuditEntry, tz: ZoneInfo, currency: str) -> str:
    """One entry in full, as plain text (the details under the table)."""
    lines = [
        f"When: {local_time(entry.at, tz)} ({tz.key})",
        f"Who: {entry.actor}",
        f"Action: {entry.action_label}",
        f"Outcome: {OUTCOME_LABELS.get(entry.outcome, entry.outcome)}",
    ]
    if entry.target:
        lines.append(f"Target: {entry.target}")
    clauses = change_clauses(entry, currency)
    if clauses:
        lines.append("Before → after:")
        lines += [f"  {clause}" for clause in clauses]
    if entry.detail:
        lines.append(f"Detail: {entry.detail}")
    return "\n".join(lines)


def rows_frame(entries: Sequence[AuditEntry], tz: ZoneInfo, currency: str) -> pd.DataFrame:
    """The page's table: local times, labels and values in words (shown as plain cells)."""
    return pd.DataFrame(
        {
            "When": [local_time(e.at, tz) for e in entries],
            "Who": [e.actor for e in entries],
            "Action": [e.action_label for e in entries],
            "Outcome": [OUTCOME_LABELS.get(e.outcome, e.outcome) for e in entries],
            "Target": [e.target for e in entries],
            "Before → after": [change_words(e, currency) for e in entries],
            "Detail": [e.detail for e in entries],
        },
        columns=COLUMNS,
    )


def _raw_json(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def export_frame(entries: Sequence[AuditEntry], currency: str) -> pd.DataFrame:
    """The export (through ``kedacore.exports``): UTC times, action names, the words and the
    recorded JSON both, so a spreadsheet and a script can each read it."""
    return pd.DataFrame(
        {
            "at": [e.at for e in entries],
            "actor": [e.actor for e in entries],
            "action": [e.action for e in entries],
            "action_label": [e.action_label for e in entries],
            "outcome": [e.outcome for e in entries],
            "target": [e.target for e in entries],
            "change": [change_words(e, currency) for e in entries],
            "before": [_raw_json(e.before) for e in entries],
            "after": [_raw_json(e.after) for e in entries],
            "detail": [e.detail for e in entries],
        },
        columns=EXPORT_COLUMNS,
    )


def xlsx_sheets(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The export's workbook, written with ``XLSX_OPTIONS``: times as date-time cells in UTC
    (the header says so), the columns wide enough to read, the long ones wrapped."""
    return {"audit_log": frame.rename(columns={"at": XLSX_AT})}


# -- the page ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chosen:
    """What the filters hold: the ledger's filter, and the period in words."""

    where: AuditFilter
    period: str


def filter_form(ledger: Ledger, tz: ZoneInfo, today: date) -> Chosen:
    """The bordered filter block; stops the page while a custom range lacks its last day."""
    with st.container(border=True):
        period_col, range_col, text_col = st.columns([2, 3, 3])
        preset = period_col.selectbox(
            f"Period (days in {tz.key})",
            list(PERIODS),
            index=2,
            format_func=PERIODS.get,
            key="audit_period",
        )
        days = period_days(preset, today) if preset != "custom" else None
        if preset == "custom":
            picked = range_col.date_input(
                "From – to",
                value=(today - timedelta(days=29), today),
                max_value=today,
                key="audit_range",
                help="Both days included, in your zone.",
            )
            if not isinstance(picked, tuple) or len(picked) != 2:
                range_col.caption("Pick the last day of the range.")
                st.stop()
            days = (picked[0], picked[1])
        elif days is not None:
            range_col.date_input(
                "From – to",
                value=days,
                disabled=True,
                key=f"audit_range_{preset}",  # one per preset: a keyed widget keeps its value
                help="Choose “Custom range” to pick the days.",
            )
        else:
            range_col.caption("Every entry since the log began.")
        text = text_col.text_input(
            "Search",
            key="audit_text",
            placeholder="an e-mail, a campaign, a reason…",
            help="Found in who acted, the target (a campaign also by its name), what changed "
            "or the detail (not case-sensitive).",
        )
        who_col, action_col, outcome_col = st.columns([3, 3, 2])
        actors = who_col.multiselect(
            "Who", ledger.audit_actors(), key="audit_who", placeholder="Everyone"
        )
        actions = action_col.multiselect(
            "Action", list(ACTIONS), format_func=ACTIONS.get, key="audit_action",
            placeholder="Every action",
        )  # fmt: skip
        outcomes = outcome_col.multiselect(
            "Outcome", list(OUTCOMES), format_func=OUTCOME_LABELS.get, key="audit_outcome",
            placeholder="Any outcome",
        )  # fmt: skip
    since, until = period_bounds(*days, tz) if days else (None, None)
    label = "all time" if days is None else f"{days[0].isoformat()} … {days[1].isoformat()}"
    where = AuditFilter(
        since=since, until=until, actors=actors, actions=actions, outcomes=outcomes, text=text
    )
    return Chosen(where, label)


def table(entries: Sequence[AuditEntry], tz: ZoneInfo, currency: str, offset: int) -> None:
    """The page of entries (the short columns sized to be read whole), and the one a person
    selects in full below it, as plain text."""
    signature = f"{st.session_state.get('audit_signature')}|{offset}"
    digest = hashlib.sha256(signature.encode()).hexdigest()[:12]
    shown = st.dataframe(
        rows_frame(entries, tz, currency),
        hide_index=True,
        width="stretch",
        # One per filter and page: a selection never points at a row of another page.
        key=f"audit_table_{digest}",
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            "When": st.column_config.TextColumn(width=145),
            "Who": st.column_config.TextColumn(width=185),
            "Action": st.column_config.TextColumn(width=190),
            "Outcome": st.column_config.TextColumn(width=75),
            "Target": st.column_config.TextColumn(width=150),
            "Before → after": st.column_config.TextColumn(width=420),
            "Detail": st.column_config.TextColumn(width=320),
        },
    )
    rows = list(shown.selection.rows) if shown is not None else []
    if rows and rows[0] < len(entries):
        with st.container(border=True, key="audit_details"):
            st.code(entry_text(entries[rows[0]], tz, currency), language=None, wrap_lines=True)
    else:
        st.caption(
            ":material/touch_app: Select a row (the box at its left) to read the entry in full."
        )


def pager(where: AuditFilter, total: int) -> int:
    """The page number box (back to 1 whenever the filters change); the offset to read."""
    state = st.session_state
    pages = max(1, math.ceil(total / PAGE_SIZE))
    signature = repr(where)
    if state.get("audit_signature") != signature:
        state["audit_signature"] = signature
        state["audit_page"] = 1
    if state.get("audit_page", 1) > pages:
        state["audit_page"] = pages
    if pages == 1:
        return 0
    number = st.number_input(
        f"Page (of {pages:,})", min_value=1, max_value=pages, step=1, key="audit_page"
    )
    return (int(number) - 1) * PAGE_SIZE


def page_caption(offset: int, shown: int, total: int, period: str, tz: ZoneInfo) -> str:
    if total == 0:
        return f"No entry matches ({period})."
    return (
        f"Entries {offset + 1:,}–{offset + shown:,} of {total:,} ({period}), newest first; "
        f"times in your zone ({tz.key}), in UTC in the exports."
    )


def downloads(ledger: Ledger, where: AuditFilter, total: int, currency: str) -> None:
    """CSV and XLSX of every entry the filters match (newest first), built when clicked."""

    def frame() -> pd.DataFrame:
        return export_frame(ledger.audit_entries(where, limit=EXPORT_ROWS), currency)

    def checked(build: Callable[[], bytes]) -> Callable[[], bytes]:
        """Built at the click, for someone who may still read the audit log then."""
        return guarded(ledger, Permission.AUDIT, "export the audit log", build, target="Audit log")

    row = st.container(horizontal=True, gap="medium", vertical_alignment="center")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    row.download_button(
        "Export CSV",
        checked(lambda: to_csv(frame())),
        file_name=f"audit-log-{stamp}.csv",
        mime="text/csv",
        key="audit_csv",
        icon=":material/download:",
        on_click="ignore",
        disabled=total == 0,
    )

    row.download_button(
        "Export XLSX",
        checked(lambda: to_xlsx(xlsx_sheets(frame()), **XLSX_OPTIONS)),
        file_name=f"audit-log-{stamp}.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        key="audit_xlsx",
        icon=":material/download:",
        on_click="ignore",
        disabled=total == 0,
    )
    if total > EXPORT_ROWS:
        row.caption(f"The export holds the newest {EXPORT_ROWS:,} entries: narrow the filters.")
    else:
        row.caption("The export holds every entry the filters match, not only this page.")
