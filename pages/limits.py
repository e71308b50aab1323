"""Finance → Limits: today's usage against the caps, changing the caps, the team controls
(approval threshold, balance floor), and who changed what.

Every change is recorded as made by the actor — the signed-in member's e-mail, or "local
operator" — and re-checks the permission when it runs. The pieces are in
``console.finance.limits`` and ``console.finance.controls``.
"""

from __future__ import annotations

import streamlit as st

from console.access import team_config
from console.finance.controls import team_controls
from console.finance.limits import (
    alert_today,
    audit_trail,
    balance_today,
    caps_differ,
    change_form,
    confirm,
    reset_form_after_change,
    reset_note,
    review,
    show_outcome,
    sms_today,
    spend_today,
    today_heading,
)
from console.shell import account_changed, keda_errors, page_setup
from kedacore.team import Permission

console = page_setup(
    "Limits",
    "The daily SMS and spend caps, the alert threshold, the team controls, and who changed what.",
    needs=Permission.CAPS,
)
state = st.session_state
cur = console.currency
reset_form_after_change()

# Read afresh (the sidebar's figures may be a few seconds old): the form starts from these.
with keda_errors("The caps could not be read", sandbox=console.sandbox):
    limits = console.client.limits.get()
    balance = console.client.account.balance()
# Caps changed elsewhere since the sidebar's figures were read (another member, another
# replica, the service's own site): forget those, so this page's sidebar and every page's
# banner say the caps shown here — once, however busy the usage.
if caps_differ(console.limits, limits) and not state.get("limits_synced"):
    state["limits_synced"] = True
    account_changed()
    st.rerun()
state.pop("limits_synced", None)

# -- today -------------------------------------------------------------------------------------

outcome = st.container()  # the last change's result, at the top where it is seen
st.subheader(today_heading(limits))
sms_col, spend_col, money_col = st.columns([4, 4, 3], gap="large")
with sms_col:
    sms_today(limits)
with spend_col:
    spend_today(limits, cur)
with money_col:
    balance_today(balance)
    alert_today(limits, console.tz)
st.caption(reset_note(limits, console.tz))

# -- change ------------------------------------------------------------------------------------

st.subheader("Change the caps")
entry = change_form(limits, cur, console.actor)
if entry is not None:
    review(entry, limits, cur)
if "limits_pending" in state:
    confirm(state["limits_pending"], console, limits)
show_outcome(outcome)

# -- team controls -----------------------------------------------------------------------------

if console.actor.can(Permission.THRESHOLDS):
    st.subheader("Team controls")
    team_controls(console, sign_in=team_config(st.secrets).sign_in)

# -- audit trail -------------------------------------------------------------------------------

st.subheader("Who changed what")
audit_trail(console.ledger, console.tz, cur)
