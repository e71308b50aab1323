"""Audience → Templates: saved message templates (with a live segment and encoding preview) and
sender profiles. Send and New campaign start from them ("Start from a template", "Sender
profile"). Every change is audited. The pieces are in ``console.audience.templates``.
"""

from __future__ import annotations

import streamlit as st

from console.access import require
from console.audience import templates as tv
from console.shell import page_setup
from console.views import plain
from kedacore.ledger.templates import TemplateError
from kedacore.team import Permission

console = page_setup(
    "Templates",
    "Saved texts with {variables}, and sender profiles, to start a send or a campaign from.",
    needs=Permission.TEMPLATES,
    need_connection=False,  # kept in the ledger: editable while the service is down
)
ledger = console.ledger
state = st.session_state
NEW = 0  # the pickers' "new" choice


def _load_template() -> None:
    chosen = ledger.template(state.get("templates_pick") or NEW)
    state["templates_name"] = chosen.name if chosen else ""
    state["templates_body"] = chosen.body if chosen else ""


def _load_profile() -> None:
    chosen = ledger.sender_profile(state.get("profiles_pick") or NEW)
    state["profiles_name"] = chosen.name if chosen else ""
    state["profiles_sender"] = (chosen.sender or "") if chosen else ""
    state["profiles_country"] = (chosen.default_country or "") if chosen else ""


if "templates_pick_next" in state:  # a template just saved: keep it picked
    state["templates_pick"] = state.pop("templates_pick_next")
if state.pop("templates_reset", False):  # a template just deleted: a new one
    state["templates_pick"], state["templates_name"], state["templates_body"] = NEW, "", ""
said = state.pop("templates_said", None)
if said:
    st.success(said, icon=":material/check_circle:")

templates_tab, profiles_tab = st.tabs(["Templates", "Sender profiles"])

with templates_tab:
    templates = ledger.templates()
    if templates:
        st.dataframe(
            tv.templates_frame(templates, console.tz),
            hide_index=True,
            width="stretch",
            column_config={
                "Last used": st.column_config.TextColumn(
                    help="When a send or campaign started from it was confirmed"
                ),
                "Segments": st.column_config.NumberColumn(
                    help="Of the text as written: each recipient's values change the count"
                ),
                "Text": st.column_config.TextColumn(width="large"),
            },
            key="templates_table",
        )
    else:
        st.info("No template yet: write the first one below.", icon=":material/description:")
    names = {t.id: t.name for t in templates}
    if state.get("templates_pick") not in (None, NEW, *names):
        state.pop("templates_pick")  # deleted meanwhile
    pick = st.selectbox(
        "Edit",
        [NEW, *names],
        format_func=lambda i: "New template" if i == NEW else names[i],
        key="templates_pick",
        on_change=_load_template,
    )
    name = st.text_input("Name", key="templates_name", max_chars=120)
    body = st.text_area(
        "Text",
        key="templates_body",
        height=140,
        help="Write {column} for a value of each recipient (a campaign file's column, or a "
        "contact's attribute); {{ and }} are literal braces. The counter updates when you leave "
        "the box or press Ctrl+Enter.",
    )
    for line in tv.preview_lines(body):
        st.caption(line)
    row = st.container(horizontal=True)
    if row.button("Save", key="templates_save", type="primary", icon=":material/save:"):
        target = "template" if pick == NEW else f"template {pick}"
        actor = require(ledger, Permission.TEMPLATES, "save templates", target=target)
        try:
            if pick == NEW:
                new = ledger.create_template(name, body, by=actor.name)
                state["templates_said"] = f"Template “{plain(name.strip())}” saved."
                state["templates_pick_next"] = new
            else:
                ledger.update_template(pick, name=name, body=body, by=actor.name)
                state["templates_said"] = f"Template “{plain(name.strip())}” changed."
        except TemplateError as exc:
            st.error(f"**Not saved:** {plain(exc)}.", icon=":material/edit_note:")
        else:
            st.rerun()
    if pick != NEW:
        with row.popover("Delete…", icon=":material/delete:"):
            st.markdown(
                f"Delete the template **{plain(names[pick])}**? Sends and campaigns made from "
                "it keep their text."
            )
            if st.button("Delete the template", key="templates_delete"):
                actor = require(
                    ledger, Permission.TEMPLATES, "delete templates", target=f"template {pick}"
                )
                ledger.delete_template(pick, by=actor.name)
                state["templates_said"] = f"Template “{plain(names[pick])}” deleted."
                state["templates_reset"] = True
                st.rerun()

with profiles_tab:
    profiles = ledger.sender_profiles()
    if profiles:
        st.dataframe(
            tv.profiles_frame(profiles, console.tz),
            hide_index=True,
            width="stretch",
            key="profiles_table",
        )
    else:
        st.info(
            "No sender profile yet: a profile fills the sender id and the default country of a "
            "send or campaign.",
            icon=":material/badge:",
        )
    labels = {p.id: p.name for p in profiles}
    if state.get("profiles_pick") not in (None, NEW, *labels):
        state.pop("profiles_pick")
    ppick = st.selectbox(
        "Edit",
        [NEW, *labels],
        format_func=lambda i: "New sender profile" if i == NEW else labels[i],
        key="profiles_pick",
        on_change=_load_profile,
    )
    pname = st.text_input("Name", key="profiles_name", max_chars=120)
    left, right = st.columns(2)
    psender = left.text_input(
        "Sender id",
        key="profiles_sender",
        max_chars=16,
        help="1–11 letters and digits, or a number of up to 15 digits with an optional "
        "leading +. Empty: KedaSMS's default.",
    )
    pcountry = right.text_input(
        "Default country (ISO code)",
        key="profiles_country",
        max_chars=2,
        placeholder="US",
        help="For national numbers written without +.",
    )
    row = st.container(horizontal=True)
    if row.button("Save", key="profiles_save", type="primary", icon=":material/save:"):
        target = "sender profile" if ppick == NEW else f"sender profile {ppick}"
        actor = require(ledger, Permission.TEMPLATES, "save sender profiles", target=target)
        try:
            ledger.save_sender_profile(
                pname,
                sender=psender,
                default_country=pcountry,
                by=actor.name,
                profile_id=None if ppick == NEW else ppick,
            )
        except TemplateError as exc:
            st.error(f"**Not saved:** {plain(exc)}.", icon=":material/badge:")
        else:
            state["templates_said"] = f"Sender profile “{plain(pname.strip())}” saved."
            st.rerun()
    if ppick != NEW:
        with row.popover("Delete…", icon=":material/delete:"):
            if st.button("Delete the sender profile", key="profiles_delete"):
                actor = require(
                    ledger,
                    Permission.TEMPLATES,
                    "delete sender profiles",
                    target=f"sender profile {ppick}",
                )
                ledger.delete_sender_profile(ppick, by=actor.name)
                state["templates_said"] = f"Sender profile “{plain(labels[ppick])}” deleted."
                st.rerun()
