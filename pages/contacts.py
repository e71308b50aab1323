"""Audience → Contacts: named lists of numbers, imported from CSV or XLSX files (deduplicated
by E.164; the other columns kept as attributes a campaign's template can use), browsed,
searched, edited, exported. A campaign goes to a list from Campaigns → New campaign.

The pieces are in ``console.audience.contacts``; the ledger keeps the lists
(``kedacore.ledger.contacts``).
"""

from __future__ import annotations

import streamlit as st

from console.audience.contacts import (
    FOCUS,
    PAGE_SIZE,
    contacts_frame,
    downloads,
    edit_form,
    flash,
    import_form,
    import_result,
    lists_frame,
    manage,
    pager,
)
from console.shell import page_setup
from console.views import plain
from kedacore.team import Permission
from kedacore.words import counted

console = page_setup(
    "Contacts",
    "Named lists of numbers with their attributes: import a file, search, edit, export — and "
    "send a campaign to a list from Campaigns.",
    needs=Permission.CONTACTS,
    need_connection=False,  # the lists are the ledger's: usable while the service is down
)
ledger = console.ledger
flash()
import_result()

lists = ledger.contact_lists()
with st.expander("New list from a file", expanded=not lists, icon=":material/group_add:"):
    import_form(console, None)

if not lists:
    st.info("No contact list yet: create one from a file above.", icon=":material/info:")
    st.stop()

st.dataframe(
    lists_frame(lists, console.tz),
    hide_index=True,
    column_config={"Contacts": st.column_config.NumberColumn(format="localized")},
    key="contacts_lists",
)
by_id = {x.id: x for x in lists}
if FOCUS in st.session_state:  # set by an import or a deletion, before the picker is drawn
    st.session_state["contacts_pick"] = st.session_state.pop(FOCUS)
if st.session_state.get("contacts_pick") not in by_id:
    st.session_state["contacts_pick"] = lists[0].id
chosen = by_id[
    st.selectbox(
        "List",
        list(by_id),
        format_func=lambda i: f"{by_id[i].name} ({by_id[i].size:,})",
        key="contacts_pick",
    )
]

with st.expander(f"Add a file to {plain(chosen.name)}", icon=":material/upload_file:"):
    import_form(console, chosen)
with st.expander("Rename or delete the list", icon=":material/edit:"):
    manage(console, chosen)

search = st.text_input(
    "Search",
    key="contacts_search",
    placeholder="A number, a name, any value",
    help="Matches the number (its digits) or any attribute, case ignored.",
)
total = ledger.contact_count(chosen.id, search=search)
offset = pager(total)
shown = ledger.contacts(chosen.id, search=search, limit=PAGE_SIZE, offset=offset)
what = counted(total, "contact") + (" matching the search" if search.strip() else " in this list")
if total > len(shown):
    what += f"; {offset + 1:,}–{offset + len(shown):,} shown"
st.caption(what + ".")
if shown:
    st.dataframe(contacts_frame(shown, console.tz), hide_index=True, key="contacts_table")
    with st.expander("Edit or delete a contact", icon=":material/edit_note:"):
        edit_form(console, chosen, shown)
downloads(console, chosen)
