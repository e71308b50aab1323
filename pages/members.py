"""Admin → Members: who may use this console and with which roles — invite by e-mail, change
roles, remove, sign out everywhere. Each action re-checks the permission when it runs and is
audited. The pieces are in ``console.admin.members``.
"""

from __future__ import annotations

import streamlit as st

from console.access import team_config
from console.admin.members import (
    clear_finished,
    console_address,
    invite_form,
    manage,
    member_list,
    read_members,
    setup_note,
    show_outcome,
)
from console.shell import page_setup
from kedacore.team import Permission

console = page_setup(
    "Members",
    "Who may use this console, and what each may do.",
    needs=Permission.MEMBERS,
    need_connection=False,  # members live in the ledger: manageable while the service is down
)
config = team_config(st.secrets)
members = read_members(console.ledger)

setup_note(config)
clear_finished()  # empty the form of a member just added, the choice of one just removed
show_outcome()
member_list(members, config, console.tz)

st.subheader("Add a member")
invite_form(console.ledger, config, console_address(st.secrets, st.context.url))

if members:
    st.subheader("Change a member")
    manage(console.ledger, members, config, console.actor)
