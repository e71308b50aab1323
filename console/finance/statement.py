"""The Statement page's pieces: the period, the cached statement, its tables, its words.

The figures are ``Ledger.statement`` (kedacore/ledger/statement.py, where the money model and
the identity are written down); this module turns them into what a person reads — tables with
exact amounts, flagged days highlighted, a difference explained in words — and into exports
(through ``kedacore.exports``: exact decimals, UTC times, no cell a spreadsheet runs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from console.access import guarded
from console.finance.cards import Card, card_css, text_em
from console.finance.views import period_label
from console.shell import fail
from console.views import local_time, money
from kedacore.exports import to_csv, to_xlsx
from kedacore.ledger import Ledger
from kedacore.ledger.statement import (
    NONE,
    ZERO,
    Split,
    Statement,
    StatementDay,
    StatementGap,
    StatementGroup,
)
from kedacore.money import from_micros
from kedacore.team import Permission

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CACHE_TTL = 60  # seconds; the key holds the data version, so this only bounds memory
MAX_EXPLAINED = 5  # flagged days explained one by one (with the readings they fall between)
NOT_CHECKED = "not checked (no reading before)"
FLAG_STYLE = "background-color: rgba(255, 75, 75, 0.16)"
PRESETS = {
    "month": "This month",
    "last_month": "Last month",
    "30d": "Last 30 days",
    "custom": "Custom range",
}

IDENTITY = (
    "Each UTC day: **opening balance + top-ups − charged = closing balance**, where the "
    "balance is available + frozen. A send freezes its price (available → frozen), a message "
    "the channel accepts is charged (it leaves frozen), a FAILED one is released (back to "
    "available); so also **opening frozen + frozen by sends − charged − released = closing "
    "frozen**. Opening and closing are the balance at midnight UTC, from the last balance "
    "reading before it (the console reads the balance whenever a page shows it) carried to "
    "midnight with the ledger's movements — on the day of the very first reading, from that "
    "reading carried back. What the readings show beyond the ledger is **unexplained** and "
    "flagged."
)


def preset_period(preset: str, today: date) -> tuple[date, date]:
    """The first and last UTC day of a preset period (both included)."""
    first = today.replace(day=1)
    if preset == "last_month":
        end = first - timedelta(days=1)
        return end.replace(day=1), end
    if preset == "30d":
        return today - timedelta(days=29), today
    return first, today


def period_form(today: date) -> tuple[date, date]:
    """The period picker (default: this month); stops the page while a range lacks its end."""
    preset_col, range_col = st.columns([2, 3])
    preset = preset_col.selectbox(
        "Period (UTC days)", list(PRESETS), format_func=PRESETS.get, key="statement_period"
    )
    if preset != "custom":
        start, end = preset_period(preset, today)
        range_col.date_input(
            "From – to",
            value=(start, end),
            disabled=True,
            key=f"statement_range_{preset}",  # one per preset: a keyed widget keeps its value
            help="Choose “Custom range” to pick the days.",
        )
        return start, end
    picked = range_col.date_input(
        "From – to",
        value=preset_period("month", today),
        max_value=today,
        key="statement_range",
        help="Both days included, UTC; at most 366 days.",
    )
    if not isinstance(picked, tuple) or len(picked) != 2:
        range_col.caption("Pick the last day of the range.")
        st.stop()
    start, end = picked
    if (end - start).days >= 366:
        range_col.error("A statement covers at most 366 days.", icon=":material/date_range:")
        st.stop()
    return start, end


@st.cache_data(ttl=CACHE_TTL, max_entries=20, show_spinner="Adding up the month…")
def _cached(
    key: str, start: date, end: date, currency: str, version: tuple[int, ...], _ledger: Ledger
) -> Statement:
    return _ledger.statement(start, end, currency)


@st.cache_data(ttl=CACHE_TTL, max_entries=50, show_spinner=False)
def _cached_gaps(
    key: str, day: date, currency: str, version: tuple[int, ...], _ledger: Ledger
) -> list[StatementGap]:
    return _ledger.statement_gaps(day, currency)


def read_statement(key: str, ledger: Ledger, start: date, end: date, currency: str) -> Statement:
    """The statement (cached by the ledger's data version), or a clear error."""
    try:
        return _cached(key, start, end, currency, ledger.statement_version(), ledger)
    except SQLAlchemyError as exc:
        fail(
            f"**The statement could not be computed** ({type(exc).__name__}). Check the ledger "
            "database (KEDA_DATABASE_URL, or ledger.db in the data folder) and reload the page."
        )


def read_gaps(key: str, ledger: Ledger, day: date, currency: str) -> list[StatementGap]:
    return _cached_gaps(key, day, currency, ledger.statement_version(), ledger)


# -- words --------------------------------------------------------------------------------------


def money_of(micros: int | None, currency: str) -> str:
    """Micro-units shown exactly with the currency (``—`` when unknown)."""
    return money(None if micros is None else from_micros(micros), currency)


def _signed(micros: int, currency: str) -> str:
    sign = "+" if micros > 0 else "−" if micros < 0 else ""
    return sign + money(from_micros(abs(micros)), currency)


def note(day: StatementDay, tz: ZoneInfo) -> str:
    """The short remark of a day's row."""
    if day.opening is None:
        return "No balance reading yet: balances unknown"
    parts = []
    if day.checked_from is not None:
        first = local_time(day.checked_from, tz)
        if day.unchecked in (None, NONE):
            parts.append(f"Opening = first balance reading ({first}); nothing moved before it")
        else:
            parts.append(f"Opening = first balance reading ({first}) less what moved before it")
    elif not day.read_today:
        parts.append("No reading this day: closing carried from the ledger")
    if day.in_progress:
        parts.append("so far (today)")
    if day.flagged:
        parts.append("UNEXPLAINED DIFFERENCE")
    return "; ".join(parts)


def explain(
    day: StatementDay,
    following: StatementDay | None,
    gaps: Sequence[StatementGap],
    cur: str,
    tz: ZoneInfo,
) -> str:
    """Why a flagged day's readings differ from the ledger, in words (Markdown)."""
    d = day.difference or ZERO
    said = [f"**{day.day.isoformat()}** — "]
    if d.total > 0:
        said.append(
            f"the account holds **{money(from_micros(d.total), cur)} more** than the ledger "
            "explains: money came in that the console did not record — most likely a top-up "
            "made at the provider rather than through Settings, or a credit from the provider."
        )
    elif d.total < 0:
        said.append(
            f"the account holds **{money(from_micros(-d.total), cur)} less** than the ledger "
            "explains: money was spent that this console did not record. "
        )
        if d.frozen < 0 and d.available == 0:
            said.append(
                "It left the frozen part: messages were charged whose results the console has "
                "not heard yet (callbacks that did not arrive) — a status check on the Status "
                "page brings them in, and the statement then adds up."
            )
        else:
            said.append(
                "Most likely messages sent by another tool or script with the same API key "
                "(the provider froze and charged them), or callbacks not heard yet — a status "
                "check on the Status page brings those in."
            )
    else:
        said.append(
            f"the balance adds up, but {money(from_micros(abs(d.frozen)), cur)} moved between "
            "available and frozen at other times than the ledger recorded: a send in flight "
            "while the balance was read, messages another tool sent that are not charged "
            "yet, or a FAILED result not heard yet."
        )
    if d.total != 0 and d.frozen != 0 and d.available != 0:
        said.append(
            f" Of it, {_signed(d.available, cur)} available and {_signed(d.frozen, cur)} frozen."
        )
    next_difference = following.difference if following is not None else None
    if next_difference is not None and d + next_difference == ZERO:
        said.append(
            " The next day shows the opposite difference: a matter of timing (a movement "
            "the balance already showed was recorded just after the reading), not money "
            "gone."
        )
    if gaps:
        where = ", ".join(
            f"{local_time(g.after.read_at, tz)} and {local_time(g.before.read_at, tz)} "
            f"({_signed(g.difference.total or g.difference.frozen, cur)})"
            for g in gaps[:3]
        )
        more = f" and {len(gaps) - 3} more" if len(gaps) > 3 else ""
        said.append(f" It arose between the balance readings at {where}{more}.")
    return "".join(said)


# -- the period in five figures ------------------------------------------------------------------


def unexplained_card(statement: Statement) -> Card:
    """What the readings show beyond the ledger: not checked, adds up, or days flagged — in
    words under the figure, never an arrow (an arrow reads as the balance going up)."""
    cur, flagged, since = statement.currency, statement.flagged, statement.checked_from
    first = statement.days[0].day if statement.days else None
    if since is None:
        value, delta, color = "—", NOT_CHECKED, "off"
    else:
        value = money_of(statement.difference.total, cur)
        n = len(flagged)
        delta = f"{n} day{'s' if n > 1 else ''} flagged" if n else "adds up"
        if since != first:
            delta += f" since {since.isoformat()}"
        color = "red" if flagged else "green"
    return Card(
        "statement_card_unexplained",
        "Unexplained",
        value,
        delta=delta,
        delta_color=color,
        help="What the balance readings show beyond the ledger's movements, added up over the "
        "days checked (a day is checked from the last reading before it, or from its first "
        "reading).",
    )


def period_cards(statement: Statement) -> list[Card]:
    """Opening, top-ups, charged, closing, unexplained: the period at a glance."""
    cur, moved = statement.currency, statement.moved
    opening, closing = statement.opening, statement.closing
    return [
        Card(
            "statement_card_opening",
            "Opening balance",
            money_of(_total(opening), cur),
            help="Available + frozen at 00:00 UTC of the first day shown (the first day the "
            "console kept a record of, if later). Unknown only before the first balance "
            "reading's day.",
        ),
        Card("statement_card_topups", "Top-ups", money_of(moved.topups, cur)),
        Card("statement_card_charged", "Charged", money_of(moved.charged, cur)),
        Card(
            "statement_card_closing",
            "Closing balance",
            money_of(_total(closing), cur),
            help="Available + frozen at the end of the last day (now, for today).",
        ),
        unexplained_card(statement),
    ]


def summary_cards(cards: Sequence[Card]) -> None:
    """The cards side by side, all alike: bordered ``st.metric`` of one height (each stretched
    to the row's tallest, so a wrapped label or a line under a figure never makes one card
    differ), every value in one font size (the size the widest value fits in), no delta arrow
    (an arrow reads as a rise)."""
    widest = max((card.value for card in cards), key=text_em)
    for column, card in zip(st.columns(len(cards)), cards, strict=True):
        with column, st.container(key=card.key, height="stretch"):
            delta = f'.st-key-{card.key} [data-testid="stMetricDelta"]'
            st.html(
                f"<style>{card_css(card.key, widest)}\n{delta}, {delta} * {{ white-space: "
                "normal; text-overflow: clip; overflow: visible; height: auto; }</style>"
            )
            st.metric(
                card.label,
                card.value,
                delta=card.delta,
                delta_color=card.delta_color,  # type: ignore[arg-type]
                delta_arrow="off",
                help=card.help,
                border=True,
                height="stretch",
            )


def period_notes(statement: Statement, tz: ZoneInfo) -> str:
    """The line under the cards: the holds, and where the balances start."""
    cur, moved, closing = statement.currency, statement.moved, statement.closing
    said = (
        f"Frozen by sends {money_of(moved.frozen_by_sends, cur)} · released (FAILED) "
        f"{money_of(moved.released, cur)} · frozen at the end "
        f"{money_of(closing.frozen if closing else None, cur)}."
    )
    first = statement.first_reading
    read = any(day.closing is not None for day in statement.days)  # else a notice says it all
    if statement.opening is None and first is not None and read:
        said += (
            f" The opening balance is unknown: the first balance reading is from "
            f"{local_time(first, tz)}, and the days before its day moved money but had no "
            "reading to carry a balance from."
        )
    elif statement.opening is None and first is None:
        said += " The opening balance is unknown: the console has read no balance yet."
    return said


def record_notice(statement: Statement) -> str | None:
    """Why the table starts after the period's first day (None when it does not)."""
    since = statement.recorded_from
    if since is None or not statement.days:
        return None
    return (
        f"Before {since.isoformat()} the console kept no record (no balance reading, nothing "
        "sent or topped up): the days start there."
    )


def no_record_notice(statement: Statement, tz: ZoneInfo) -> str:
    """Why a period that has started shows no day at all."""
    first = statement.first_reading
    since = f" Its first balance reading is from {local_time(first, tz)}." if first else ""
    return (
        f"**The console kept no record from {statement.start.isoformat()} to "
        f"{statement.end.isoformat()}**: no balance reading, nothing sent or topped up.{since} "
        "Pick a later period."
    )


def no_reading_notice(statement: Statement, tz: ZoneInfo) -> str:
    """Why a period has no balances at all (it ends before the first reading)."""
    first = statement.first_reading
    since = f" Its first reading is from {local_time(first, tz)}." if first else ""
    return (
        "**No balance reading in this period.** The console keeps the account's balance "
        f"whenever a page shows it (at most every 10 s), and the statement starts there.{since} "
        "The movements below are the ledger's; pick a period from the first reading on to "
        "check them against the balance."
    )


# -- tables -------------------------------------------------------------------------------------


def _total(split: Split | None) -> int | None:
    return None if split is None else split.total


def days_frame(statement: Statement, tz: ZoneInfo) -> pd.DataFrame:
    """The daily table as the page shows it (amounts as text with the currency)."""
    cur = statement.currency
    rows = []
    for day in statement.days:
        closing = day.closing
        rows.append(
            {
                "Day": day.day.isoformat(),
                "Opening balance": money_of(_total(day.opening), cur),
                "Top-ups": money_of(day.moved.topups, cur),
                "Charged": money_of(day.moved.charged, cur),
                "Expected closing": money_of(_total(day.expected), cur),
                "Closing balance": money_of(_total(closing), cur),
                "Unexplained": "—"
                if day.difference is None
                else _signed(day.difference.total, cur),
                "Frozen by sends": money_of(day.moved.frozen_by_sends, cur),
                "Released (FAILED)": money_of(day.moved.released, cur),
                "Closing frozen": money_of(closing.frozen if closing else None, cur),
                "Closing available": money_of(closing.available if closing else None, cur),
                "Note": note(day, tz),
            }
        )
    return pd.DataFrame(rows)


NOTE_WIDTH = 620  # px: the longest remark whole ("Opening = first balance reading (…); …")
DAY_HELP = {
    "Expected closing": "Opening balance + top-ups − charged: what the ledger explains.",
    "Closing balance": "From the last balance reading of the day, carried to 24:00 UTC (now, "
    "for today).",
    "Unexplained": "Closing balance − expected closing, checked between balance readings.",
    "Released (FAILED)": "What went back to available for messages the channel refused.",
}


def days_columns() -> dict[str, object]:
    """The daily table's column settings: the day stays in view while it scrolls sideways."""
    columns: dict[str, object] = {"Day": st.column_config.TextColumn("Day", pinned=True)}
    for name, said in DAY_HELP.items():
        columns[name] = st.column_config.TextColumn(name, help=said)
    columns["Note"] = st.column_config.TextColumn("Note", width=NOTE_WIDTH)
    return columns


def highlight(frame: pd.DataFrame, statement: Statement) -> object:
    """The frame styled: a flagged day's row stands out."""
    flagged = [day.flagged for day in statement.days]

    def paint(row: pd.Series) -> list[str]:
        return [FLAG_STYLE if flagged[row.name] else ""] * len(row)

    return frame.style.apply(paint, axis=1)


GROUP_AMOUNT_WIDTH = 130  # px: "Released ⓘ" and a five-figure amount with its currency
GROUP_AMOUNTS = {  # the by-campaign / by-member columns: short headers, the words in help
    "Frozen": "Frozen by sends: what its sends froze when they were made.",
    "Charged": "Charged: what the channel accepted (SENT, DELIVERED, UNDELIVERED).",
    "Released": "Released (FAILED): what went back to available for refused messages.",
}


def groups_frame(groups: Sequence[StatementGroup], what: str, cur: str) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                what: g.label,
                "Frozen": money_of(g.frozen_by_sends, cur),
                "Charged": money_of(g.charged, cur),
                "Released": money_of(g.released, cur),
            }
            for g in groups
        ],
        columns=[what, *GROUP_AMOUNTS],
    )


def groups_columns(what: str, help: str) -> dict[str, object]:
    """The column settings of a by-campaign / by-member table: the amounts a fixed width
    (header and figure whole), the name the rest."""
    columns: dict[str, object] = {what: st.column_config.TextColumn(what, help=help)}
    for name, said in GROUP_AMOUNTS.items():
        columns[name] = st.column_config.TextColumn(name, help=said, width=GROUP_AMOUNT_WIDTH)
    return columns


# -- exports (exact decimals, UTC) --------------------------------------------------------------


def _dec(micros: int | None) -> Decimal | None:
    return None if micros is None else from_micros(micros)


def export_frames(statement: Statement) -> dict[str, pd.DataFrame]:
    """The statement's sheets: days, campaigns, members (amounts as exact decimals)."""
    days = []
    for day in statement.days:
        opening, closing, expected = day.opening, day.closing, day.expected
        diff = day.difference
        days.append(
            {
                "day": day.day,
                "currency": statement.currency,
                "opening_balance": _dec(_total(opening)),
                "opening_available": _dec(opening.available if opening else None),
                "opening_frozen": _dec(opening.frozen if opening else None),
                "frozen_by_sends": _dec(day.moved.frozen_by_sends),
                "charged": _dec(day.moved.charged),
                "released_failed": _dec(day.moved.released),
                "topups": _dec(day.moved.topups),
                "expected_closing_balance": _dec(_total(expected)),
                "expected_closing_frozen": _dec(expected.frozen if expected else None),
                "closing_balance": _dec(_total(closing)),
                "closing_available": _dec(closing.available if closing else None),
                "closing_frozen": _dec(closing.frozen if closing else None),
                "unexplained_balance": _dec(diff.total if diff else None),
                "unexplained_frozen": _dec(diff.frozen if diff else None),
                "flagged": day.flagged,
                "opening_from_reading_at": day.opening_read,
                "closing_from_reading_at": day.closing_read,
                "in_progress": day.in_progress,
            }
        )

    def groups(items: Sequence[StatementGroup], key: str, label: str) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    key: g.key,
                    label: g.label,
                    "currency": statement.currency,
                    "frozen_by_sends": _dec(g.frozen_by_sends),
                    "charged": _dec(g.charged),
                    "released_failed": _dec(g.released),
                }
                for g in items
            ],
            columns=[key, label, "currency", "frozen_by_sends", "charged", "released_failed"],
        )

    return {
        "days": pd.DataFrame(days),
        "campaigns": groups(statement.by_campaign, "campaign_id", "campaign"),
        "members": groups(statement.by_member, "member_key", "member").drop(columns="member_key"),
    }


def downloads(statement: Statement, ledger: Ledger) -> None:
    """CSV (the days) and XLSX (days, campaigns, members), built only when clicked — for
    someone who may still read statements then (``console.access.guarded``)."""
    stamp = f"{statement.start.isoformat()}_{statement.end.isoformat()}"

    def checked(build: Callable[[], bytes]) -> Callable[[], bytes]:
        return guarded(
            ledger, Permission.STATEMENTS, "export statements", build, target="Statement"
        )

    row = st.container(horizontal=True, gap="medium")
    row.download_button(
        "Days (CSV)",
        checked(lambda: to_csv(export_frames(statement)["days"])),
        file_name=f"statement-{stamp}.csv",
        mime="text/csv",
        key="statement_csv",
        icon=":material/download:",
        on_click="ignore",
    )
    row.download_button(
        "Days, campaigns and members (XLSX)",
        checked(lambda: to_xlsx(export_frames(statement))),
        file_name=f"statement-{stamp}.xlsx",
        mime=XLSX,
        key="statement_xlsx",
        icon=":material/download:",
        on_click="ignore",
    )


def period_caption(statement: Statement) -> str:
    days = period_label(statement.start, statement.end)
    return f"{days} · {statement.currency} · amounts exact to the micro-unit"
