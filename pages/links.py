"""Messaging → Short links: create tracked links, see their clicks, copy them.

Every link of the account is in reach: the service pages, searches and sorts the list; hand-made
links and the tracking links of sends with *Track clicks* are shown apart. The list's pieces
are in ``console.messaging.links``.
"""

from __future__ import annotations

import streamlit as st

from console.messaging.links import (
    KINDS,
    SORTS,
    first_pages,
    link_table,
    read_listing,
    tab_label,
)
from console.shell import keda_errors, page_setup
from kedacore.team import Permission

console = page_setup(
    "Short links",
    "Tracked short links: every visit is counted (total, unique, last).",
    needs=Permission.LINKS,
)
state = st.session_state

with st.form("links_form", clear_on_submit=True, border=True):
    url_col, title_col = st.columns([3, 2])
    url = url_col.text_input(
        "Target address", key="links_url", placeholder="https://example.com/offer"
    )
    title = title_col.text_input("Title (optional)", key="links_title", placeholder="Spring offer")
    created = st.form_submit_button("Create short link", type="primary", key="links_create")

if created:
    target = url.strip()
    if not target.lower().startswith(("http://", "https://")):
        st.error("The target must be an http:// or https:// address.", icon=":material/link_off:")
    else:
        with keda_errors("The short link was not created", sandbox=console.sandbox):
            link = console.client.shortlinks.create(target, title=title.strip() or None)
        state["links_new"] = link.short_url
        first_pages()  # the new link is the first of the first page
        state["links_kind"] = "manual"  # … of the hand-made links

if "links_new" in state:
    st.success(
        "Short link created. Copy it from the box below (the copy icon shows on hover).",
        icon=":material/check_circle:",
    )
    st.code(state["links_new"], language=None)

# -- the list ----------------------------------------------------------------------------------

heading = st.empty()  # the count is known once the service has answered
search_col, sort_col = st.columns([3, 1])
search = search_col.text_input(
    "Search",
    key="links_search",
    placeholder="Title, address, code, msgid or number",
    on_change=first_pages,
).strip()
sort = sort_col.selectbox(
    "Order", list(SORTS), format_func=SORTS.get, key="links_sort", on_change=first_pages
)
choice = st.empty()  # the switch between the kinds, labelled with their counts
kind = state.setdefault("links_kind", "manual")  # the switch's value (set here, never twice)
with keda_errors("The short links could not be listed", sandbox=console.sandbox):
    listing = read_listing(console.client, kind, search, sort)

heading.subheader(f"Your links ({listing.total:,})")
if not listing.total:
    st.info(
        "No short link yet. Create one above, or send with *Track clicks* on.",
        icon=":material/link:",
    )
    st.stop()

choice.segmented_control(
    "Show",
    list(KINDS),
    required=True,
    format_func=lambda k: tab_label(k, listing.matching[k], listing.totals[k], bool(search)),
    key="links_kind",
    label_visibility="collapsed",
)
link_table(listing, console.tz)
