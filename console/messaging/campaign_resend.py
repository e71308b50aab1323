"""The Campaigns page's resend: a finished campaign's FAILED and UNDELIVERED recipients sent
again as a new campaign, in two clicks (the offer, then Confirm), exactly once.

The plan is ``kedacore.campaign.resend`` (each recipient with the text they were sent, opted-out
numbers left out and counted); Confirm writes the new campaign with ``resend_of`` (a unique
index: a second Confirm — another tab, another replica — learns it was resent already, as
which campaign) and then starts it, or holds it for approval over the team's threshold like
any campaign. Confirm is a callback: it runs before the script, re-checks the permission
(``campaign_state.permitted``) and can open the new campaign before the picker is drawn.
"""

from __future__ import annotations

import streamlit as st

from console.messaging import approval_rules as rules
from console.messaging.campaign_state import permitted, start_campaign
from console.shell import Console, account_changed
from console.views import money, plain
from kedacore import KedaError
from kedacore.campaign.resend import AlreadyResent, ResendPlan, create_resend, plan_resend
from kedacore.ledger.campaign_snapshot import CampaignFigures
from kedacore.ledger.resends import RESENDABLE
from kedacore.team import Permission
from kedacore.words import counted

RESENT = ("FAILED", "UNDELIVERED")
_ASK = "campaigns_resend_ask"  # the campaign whose resend is being confirmed
_SAID = "campaigns_resend_said"  # (kind, sentence) of the last resend, said once
_RERUN = "campaigns_resend_rerun"  # a resend made in a fragment's run: redraw the page


def resend_offer(console: Console, figures: CampaignFigures, running: bool) -> None:
    """Under a campaign's delivery line: "Resend the N failed and undelivered", its
    confirmation, or the campaign it was resent as."""
    if st.session_state.pop(_RERUN, False):
        st.rerun()  # the whole page: the new campaign picked, the sidebar's balance
    said = st.session_state.pop(_SAID, None)
    if said:
        getattr(st, said[0])(said[1], icon=":material/replay:")
    failed = sum(figures.statuses.get(s, 0) for s in RESENT)
    if running or not failed or figures.demo or not console.actor.can(Permission.CAMPAIGNS):
        return
    if figures.campaign.status not in RESENDABLE:  # paused, or sending on a worker
        return
    campaign_id = figures.id
    resent = console.ledger.resend_of(campaign_id)
    if resent is not None:
        label = console.ledger.campaign_label(resent) or f"campaign {resent}"
        st.caption(f"Its failed and undelivered recipients were resent as {plain(label)}.")
        return
    if st.session_state.get(_ASK) != campaign_id:
        st.button(
            f"Resend the {failed:,} failed and undelivered",
            key="campaigns_resend",
            icon=":material/replay:",
            on_click=lambda: st.session_state.__setitem__(_ASK, campaign_id),
        )
        return
    try:
        resend = plan_resend(console.ledger, campaign_id, console.pricing())
    except KedaError as exc:
        st.error(f"The price table could not be read ({plain(exc)}): try again.")
        return
    confirmation(console, resend)


def confirmation(console: Console, resend: ResendPlan) -> None:
    """The second click: the count, what is left out, the estimate, the approval it needs."""
    cur = resend.plan.currency
    with st.container(border=True, key="campaigns_resend_box"):
        if not resend.plan.requests:
            st.info(
                "Nothing to resend: " + ("; ".join(resend.left_out()) or "no recipient") + ".",
                icon=":material/info:",
            )
            st.button("Close", key="campaigns_resend_cancel", on_click=_close)
            return
        st.markdown(
            f"Resend to **{counted(resend.recipients, 'recipient')}** "
            f"({resend.failed:,} FAILED, {resend.undelivered:,} UNDELIVERED), each with the text "
            f"they were sent, as the new campaign **{plain(resend.name)}**. "
            f"Estimated cost: **{money(resend.total, cur)}**."
        )
        if resend.left_out():
            st.caption(plain("; ".join(resend.left_out()).capitalize() + "."))
        gate = rules.gate(console.ledger, console.actor)
        if gate.holds(resend.total):
            st.info(
                f"**It waits for approval:** {money(resend.total, cur)} is over the team's "
                f"approval threshold of {money(gate.threshold, cur)}.",
                icon=":material/approval:",
            )
        row = st.container(horizontal=True)
        row.button(
            "Confirm resend",
            key="campaigns_resend_confirm",
            type="primary",
            on_click=confirm,
            args=(console, resend),
        )
        row.button("Cancel", key="campaigns_resend_cancel", on_click=_close)


def _close() -> None:
    st.session_state.pop(_ASK, None)


def confirm(console: Console, resend: ResendPlan) -> None:
    """Confirm's callback: the permission checked again, the resend written once, started (or
    held for approval), and opened."""
    _close()
    original = resend.original.id
    target = f"campaign {original}"
    actor = permitted(console.ledger, Permission.CAMPAIGNS, "resend campaigns", target)
    if actor is None:
        return
    try:
        new = create_resend(console.ledger, resend, created_by=actor.name)
    except AlreadyResent as exc:
        label = console.ledger.campaign_label(exc.resend_id or 0) or f"campaign {exc.resend_id}"
        st.session_state[_SAID] = ("warning", f"Already resent as {plain(label)}: nothing new.")
        return
    except ValueError as exc:  # resumed meanwhile, or nobody left to resend to
        st.session_state[_SAID] = ("warning", f"Not resent: {plain(exc)}.")
        return
    gate = rules.gate(console.ledger, actor)  # read again: finance may have changed it
    if gate.holds(resend.total):
        assert gate.threshold_micros is not None
        console.ledger.hold_campaign(new, by=actor.name, threshold_micros=gate.threshold_micros)
        how = "waits for approval"
    else:
        start_campaign(console, new, by=actor.name)
        how = "was started"
    label = console.ledger.campaign_label(new) or resend.name
    st.session_state[_SAID] = ("success", f"Campaign {plain(label)} {how}.")
    st.session_state["campaigns_pick"] = new  # callbacks run before the picker is drawn
    st.session_state[_RERUN] = True
    account_changed()
