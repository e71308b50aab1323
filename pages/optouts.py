"""Audience → Opt-outs: the numbers that must not receive marketing. Add them by hand with a
reason or import a file's phone column (all or nothing: invalid rows are listed and nothing is
added); finance and admin take a number off the list, with a reason (the row is kept, marked
removed). Every change is audited. Sends, campaigns and the command line leave these numbers
out and say how many (docs/audiences.md). The pieces are in ``console.audience.optouts``.
"""

from __future__ import annotations

import phonenumbers
import streamlit as st

from console import access
from console.audience import optouts as ov
from console.shell import page_setup
from kedacore.team import Permission

console = page_setup(
    "Opt-outs",
    "Numbers that must not receive marketing: every send and campaign leaves them out.",
    needs=Permission.OPTOUTS,
    need_connection=False,  # the list is the ledger's: usable while the service is down
)
ledger = console.ledger
ov.flash()

add, look = st.columns([2, 3], gap="large")
with add:
    st.subheader("Add numbers")
    country = st.selectbox(
        "Country of national numbers",
        ["(E.164 only)", *sorted(phonenumbers.SUPPORTED_REGIONS)],
        key="optouts_country",
        help="Numbers written without +country code are read as this country's.",
    )
    chosen = None if country == "(E.164 only)" else str(country)
    ov.add_by_hand(console, chosen)
    ov.import_file(console, chosen)

with look:
    st.subheader("The list")
    search = st.text_input("Search (number, reason, who)", key="optouts_search")
    which = st.radio("Show", ["Opted out", "Removed", "All"], horizontal=True, key="optouts_which")
    active = {"Opted out": True, "Removed": False, "All": None}[str(which)]
    total = ledger.optout_count(search, active=active)
    pages = max(1, -(-total // ov.PAGE_SIZE))
    page = st.number_input("Page", 1, pages, 1, key="optouts_page") if pages > 1 else 1
    offset = (int(page) - 1) * ov.PAGE_SIZE
    rows = ledger.optouts(search, active=active, limit=ov.PAGE_SIZE, offset=offset)
    st.caption(
        f"{total:,} number(s)" + (f" · rows {offset + 1:,}–{offset + len(rows):,}" if rows else "")
    )
    if rows:
        st.dataframe(ov.frame(rows, console.tz), hide_index=True, key="optouts_table")
    st.download_button(
        "Export (CSV)",
        access.guarded(
            ledger,
            Permission.OPTOUTS,
            "export the opt-out list",
            lambda: ov.optouts_to_csv(ledger, search, active),
            target="opt-outs",
        ),
        file_name="opt-outs.csv",
        mime="text/csv",
        key="optouts_export",
        disabled=total == 0,
    )
    st.subheader("Take a number off the list")
    ov.remove(console, rows)
