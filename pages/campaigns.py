"""Messaging → Campaigns: a recipients file and a template, checked and priced, then sent once.

New campaign: every row is checked and priced before anything is sent; Confirm writes the
plan to the ledger and sends it in a background thread of the server (closing the tab does
not stop it). Campaigns: progress polled from the ledger, pause reasons with what to do,
Resume for paused and interrupted campaigns, each campaign's messages. Over the team's
approval threshold, Confirm holds the campaign for approval (Approvals page) instead of
sending it. Campaigns still to finish are named at the top whatever the tab;
``?campaign=<id>`` (the sidebar's links) opens one. An approver without the campaigns role
sees the campaigns, not the form.

The two views live in ``console.messaging.campaign_new`` and ``console.messaging.campaign_list``.
"""

from __future__ import annotations

import streamlit as st

from console.messaging.approvals import flash
from console.messaging.campaign_list import active_campaigns, campaign_list, open_campaign
from console.messaging.campaign_new import confirm, new_campaign
from console.messaging.campaign_state import LIST, NEW
from console.shell import keda_errors, page_setup
from kedacore.team import Permission

console = page_setup(
    "Campaigns",
    "Many recipients from a CSV or XLSX file or a contact list, each with their own variables.",
    needs=(Permission.CAMPAIGNS, Permission.APPROVE),
)
with keda_errors("The price table could not be read", sandbox=console.sandbox):
    pricing = console.pricing()
state = st.session_state

# A link to a campaign (the sidebar's, on every page): follow it.
if (wanted := st.query_params.get("campaign")) is not None:
    del st.query_params["campaign"]
    if wanted.isdigit():
        open_campaign(int(wanted))

# Set by Confirm (after the tabs were drawn): show the new campaign on the next run.
if "campaigns_focus" in state:
    state["campaigns_pick"] = state["campaigns_started"] = state.pop("campaigns_focus")
    state["campaigns_tab"] = LIST
    state["campaigns_name"] = ""  # a second Send needs a new name: no double send by mistake

flash()  # what a withdrawal of an approval request did
active_campaigns(console)  # sending, paused or awaiting approval: named whatever the tab

if not console.actor.can(Permission.CAMPAIGNS):  # an approver: the campaigns, not the form
    campaign_list(console)
    st.stop()

# The tabs track state so that Confirm can turn to the campaign; both are drawn on every run,
# so the uploaded file and the template survive a look at the list.
new_tab, list_tab = st.tabs([NEW, LIST], key="campaigns_tab", on_change="rerun")
with new_tab:
    new_campaign(console, pricing)
with list_tab:
    campaign_list(console)

if "campaigns_pending" in state:
    confirm(console, pricing.currency, state["campaigns_pending"])
