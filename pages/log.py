"""Messaging → Message log: every message the console sent, newest first, with filters
(period, status, country, sender, campaign, contact list, text), 100 a page with Next and
Previous, a message's timeline, and the export of the filtered set. The pieces are in
``console.messaging.message_log``; the reads in ``kedacore.ledger.log``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from console.messaging.message_log import (
    cursor_stack,
    detail,
    downloads,
    empty_advice,
    filter_form,
    page_caption,
    pager,
    table,
)
from console.shell import page_setup
from kedacore.ledger.log import PAGE_ROWS, LogCount
from kedacore.team import Permission

console = page_setup(
    "Message log",
    "Every message, newest first: filter by period, status, country, sender, campaign, list "
    "or text, then open one to see its timeline.",
    needs=Permission.LOG,
    need_connection=False,  # the log is the ledger's: readable while the service is down
)
ledger = console.ledger
today = datetime.now(UTC).astimezone(console.tz).date()

chosen = filter_form(ledger, console.tz, today)
stack = cursor_stack(chosen.where)
try:
    page = ledger.message_log(chosen.where, after=stack[-1], limit=PAGE_ROWS)
    first = (len(stack) - 1) * PAGE_ROWS
    # The last page knows the count already; otherwise count (exact up to its bound).
    last = page.next is None
    count = LogCount(first + len(page.rows)) if last else ledger.message_log_count(chosen.where)
except SQLAlchemyError as exc:
    st.error(
        f"The message log cannot be read ({type(exc).__name__}). Check the ledger database "
        "(KEDA_DATABASE_URL or the data folder).",
        icon=":material/error:",
    )
    st.stop()

if not page.rows:
    st.info(empty_advice(chosen.where, chosen.period), icon=":material/search_off:")
    if len(stack) > 1:
        pager(stack, None)
    st.stop()

st.caption(page_caption(first, len(page.rows), count, chosen.period, console.tz))
picked = table(page.rows, console.tz, len(stack))
pager(stack, page.next)
if picked is not None:
    detail(ledger, picked, console.tz)
downloads(ledger, chosen.where, count)
