"""Finance → Audit log: every action that moves money, changes a control or touches access —
who (the signed-in identity), when, what, before → after — with filters, paging and a
formula-safe export. The log is append-only (the database refuses changes); this page only
reads it. The pieces are in ``console.finance.audit``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from console.finance.audit import (
    PAGE_SIZE,
    downloads,
    filter_form,
    page_caption,
    pager,
    table,
)
from console.shell import page_setup
from kedacore.team import Permission

console = page_setup(
    "Audit log",
    "Who did what, when: sends, campaigns, approvals, caps and controls, top-ups, members, "
    "sign-ins and refused actions.",
    needs=Permission.AUDIT,
    need_connection=False,  # the log is the ledger's: readable while the service is down
)
ledger = console.ledger
today = datetime.now(UTC).astimezone(console.tz).date()

chosen = filter_form(ledger, console.tz, today)
try:
    total = ledger.audit_count(chosen.where)
except SQLAlchemyError as exc:
    st.error(
        f"The audit log cannot be read ({type(exc).__name__}). Check the ledger database "
        "(KEDA_DATABASE_URL or the data folder).",
        icon=":material/error:",
    )
    st.stop()

offset = pager(chosen.where, total)
entries = ledger.audit_entries(chosen.where, limit=PAGE_SIZE, offset=offset)
st.caption(page_caption(offset, len(entries), total, chosen.period, console.tz))
if entries:
    table(entries, console.tz, console.currency, offset)
downloads(ledger, chosen.where, total, console.currency)
