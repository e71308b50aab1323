"""Finance → Audit log: the filters, the page of rows in words, paging, and the export.

The log is ``kedacore.ledger.team``'s append-only ``audit_log`` (the database refuses UPDATE
and DELETE): this module only reads it. The plain functions (periods, values in words, the
frames) take no Streamlit and tests call them directly; the rest draws them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

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
MONEY_KEYS = (APPROVAL_THRESHOLD, BALANCE_FLOOR, "amount", "estimate", "cost")
KEY_LABELS = {
    **FIELD_LABELS,
    APPROVAL_THRESHOLD: "Approval threshold",
    BALANCE_FLOOR: "Balance floor",
    NOTIFY_EMAILS: "Notification e-mails",
    NOTIFY_WEBHOOKS: "Notification webhooks",
    "roles": "Roles",
}
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


def value_words(key: str, value: Any, currency: str) -> str:
    """One recorded value for a person: a cap, an amount, roles, a list, on/off."""
    if key in CAP_FIELDS:
        return cap_text(key, value, currency)
    if value is None:
        return "off" if key in (APPROVAL_THRESHOLD, BALANCE_FLOOR) else "—"
    if isinstance(value, bool):
        return "on" if value else "off"
    if key in MONEY_KEYS and isinstance(value, (str, int)):
        try:
            return money(Decimal(str(value)), currency)
        except InvalidOperation:
            return str(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def change_words(entry: AuditEntry, currency: str) -> str:
    """``before → after`` of an entry in words, one clause per thing that changed."""
    before, after = entry.before, entry.after
    cur = currency
    if isinstance(after, dict) and isinstance(after.get("currency"), str):
        cur = after["currency"]  # a top-up names its own currency
    if entry.action == "topup" and isinstance(after, dict) and "amount" in after:
        return "+" + value_words("amount", after["amount"], cur)
    if not isinstance(before, dict) and not isinstance(after, dict):
        if before is None and after is None:
            return ""
        return f"{value_words('', before, cur)} → {value_words('', after, cur)}"
    old = before if isinstance(before, dict) else {}
    new = after if isinstance(after, dict) else {}
    order = [k for k in CAP_FIELDS if k in old or k in new]
    order += [k for k in (*old, *new) if k not in order]
    clauses = []
    for key in dict.fromkeys(order):
        label = KEY_LABELS.get(key, key.replace("_", " "))
        if key not in old:
            clauses.append(f"{label}: {value_words(key, new[key], cur)}")
        elif key not in new:
            clauses.append(f"{label}: {value_words(key, old[key], cur)} (removed)")
        else:
            was, now = value_words(key, old[key], cur), value_words(key, new[key], cur)
            clauses.append(f"{label}: {was} → {now}")
    return "; ".join(clauses)


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
            help="Found in who acted, the target or the detail (not case-sensitive).",
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

    row = st.container(horizontal=True, gap="medium", vertical_alignment="center")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    row.download_button(
        "Export CSV",
        lambda: to_csv(frame()),
        file_name=f"audit-log-{stamp}.csv",
        mime="text/csv",
        key="audit_csv",
        icon=":material/download:",
        on_click="ignore",
        disabled=total == 0,
    )
    row.download_button(
        "Export XLSX",
        lambda: to_xlsx({"audit_log": frame()}),
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
