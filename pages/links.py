"""Messaging → Short links: create tracked links, see their clicks, copy them."""

from __future__ import annotations

import streamlit as st

from console.shell import keda_errors, page_setup
from console.views import links_frame

console = page_setup(
    "Short links", "Tracked short links: every visit is counted (total, unique, last)."
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

if "links_new" in state:
    st.success(
        "Short link created. Copy it from the box below (the copy icon shows on hover).",
        icon=":material/check_circle:",
    )
    st.code(state["links_new"], language=None)

with keda_errors("The short links could not be listed", sandbox=console.sandbox):
    links = console.client.shortlinks.list()

st.subheader(f"Your links ({len(links):,})")
if not links:
    st.info(
        "No short link yet. Create one above, or send with *Track clicks* on.",
        icon=":material/link:",
    )
    st.stop()

st.dataframe(
    links_frame(links, console.tz),
    hide_index=True,
    width="stretch",
    column_config={
        "Short link": st.column_config.LinkColumn(),
        # Typed by whoever made the link: shown as text, never as a link (docs/console.md).
        "Target": st.column_config.TextColumn(),
        "Clicks": st.column_config.NumberColumn(help="Every visit"),
        "Unique": st.column_config.NumberColumn(help="Distinct visitors (address and browser)"),
        "Last click": st.column_config.TextColumn(help=f"Times in {console.tz.key}"),
    },
    key="links_table",
)
by_url = {link.short_url: link for link in links}
pick = st.selectbox(
    "Copy a link",
    list(by_url),
    format_func=lambda u: f"{by_url[u].title or by_url[u].url} — {u}",
    key="links_copy",
)
if pick:
    st.code(pick, language=None)
