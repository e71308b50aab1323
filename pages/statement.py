"""Finance → Statement: the account's money by UTC day — opening balance, frozen by sends,
charged, released, top-ups, closing balance — from the ledger and the balance readings it
keeps, any unexplained difference flagged and explained; by campaign and by member; exports.

The figures are ``Ledger.statement`` (kedacore/ledger/statement.py); the tables and words are
``console.finance.statement``.
"""

from __future__ import annotations

import streamlit as st

from console.finance.statement import (
    IDENTITY,
    MAX_EXPLAINED,
    days_columns,
    days_frame,
    downloads,
    explain,
    groups_columns,
    groups_frame,
    highlight,
    no_reading_notice,
    no_record_notice,
    period_caption,
    period_cards,
    period_form,
    period_notes,
    read_gaps,
    read_statement,
    record_notice,
    summary_cards,
)
from console.shell import page_setup
from kedacore.team import Permission

console = page_setup(
    "Statement",
    "The account's money by day: opening balance, frozen by sends, charged, released, "
    "top-ups and closing balance — and anything the ledger cannot explain.",
    needs=Permission.STATEMENTS,
)
ledger, tz, cur = console.ledger, console.tz, console.currency
key = console.runtime.key  # which ledger: the cached readers take it in their key

st.caption(IDENTITY)
start, end = period_form(ledger.now().date())
statement = read_statement(key, ledger, start, end, cur)
st.caption(period_caption(statement))

if statement.demo_left_out:
    st.info(
        "**Demo history is left out.** It was generated for the Spend page and moved no "
        "money; the statement counts only what this console sent and the top-ups it made.",
        icon=":material/science:",
    )
if not statement.days and not statement.left_out:
    st.info(
        "**This period has not started yet.** Pick a period up to today.", icon=":material/event:"
    )
    st.stop()
if not statement.days:
    st.info(no_record_notice(statement, tz), icon=":material/event_busy:")
    st.stop()
if all(d.closing is None for d in statement.days):
    st.info(no_reading_notice(statement, tz), icon=":material/account_balance:")

# -- the period in five figures ------------------------------------------------------------------

summary_cards(period_cards(statement))
st.caption(period_notes(statement, tz))

# -- flagged days, in words --------------------------------------------------------------------

by_day = {d.day: i for i, d in enumerate(statement.days)}
for day in statement.flagged[:MAX_EXPLAINED]:
    i = by_day[day.day]
    following = statement.days[i + 1] if i + 1 < len(statement.days) else None
    gaps = read_gaps(key, ledger, day.day, cur)
    st.warning(explain(day, following, gaps, cur, tz), icon=":material/report:")
if len(statement.flagged) > MAX_EXPLAINED:
    st.caption(f"{len(statement.flagged) - MAX_EXPLAINED} more flagged day(s) in the table below.")

# -- the days, then by campaign and by member ------------------------------------------------------

st.subheader("By day")
if (unrecorded := record_notice(statement)) is not None:
    st.caption(unrecorded)
frame = days_frame(statement, tz)
st.dataframe(
    highlight(frame, statement),
    hide_index=True,
    width="stretch",
    column_config=days_columns(),
    key="statement_days",
)
downloads(statement, ledger)

# One under the other, the width of the page: a long campaign name never pushes a figure out.
st.subheader("By campaign")
st.dataframe(
    groups_frame(statement.by_campaign, "Campaign", cur),
    hide_index=True,
    width="stretch",
    column_config=groups_columns("Campaign", "Single sends: the Send page's, together."),
    key="statement_campaigns",
)
st.subheader("By member")
st.dataframe(
    groups_frame(statement.by_member, "Member", cur),
    hide_index=True,
    width="stretch",
    column_config=groups_columns("Member", "Who created the campaign or made the send."),
    key="statement_members",
)
st.caption(
    "Over the whole period, by UTC time: frozen by sends when sent, charged when the channel "
    "accepted the message, released when it FAILED. A campaign's money is its creator's; a single "
    'send\'s, whoever sent it ("local operator" without sign-in).'
)
