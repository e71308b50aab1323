"""A send for later, on the Send page: kept as a small campaign (this text to these numbers).

A send goes out at once, in one request, with its clientRef recorded first
(``console.messaging.send``). One for later needs what a campaign already has: the time and
quiet hours of each recipient (``kedacore.campaign.schedule``), stored in the ledger so a
restart loses nothing, started by this server's timer and watcher (SQLite) or a worker
(PostgreSQL), movable and cancellable until it goes, opt-outs checked again when it starts, the
approval threshold, the audit. So it *is* one: ``create_campaign`` writes it as the campaign
"Send: <its text>", listed on Campaigns, where it is moved or cancelled. A transactional send is
never scheduled (opted-out numbers are left out again when a campaign starts).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from console.messaging import campaigns as cv
from console.messaging.campaign_new import create_campaign
from console.messaging.campaign_schedule import draw_parts, schedule_inputs
from console.shell import Console, account_changed
from console.views import money, plain
from kedacore.api.types import Pricing
from kedacore.campaign.plan import CampaignPlan, PlannedRequest
from kedacore.campaign.schedule import Schedule
from kedacore.segments import count_segments
from kedacore.team import Permission
from kedacore.words import counted


def when_inputs(console: Console) -> tuple[Schedule | None, list[str]]:
    """The Send page's When (now, or later: for members who may run campaigns, which a send
    for later becomes) and what it blocks."""
    if not console.actor.can(Permission.CAMPAIGNS):
        return None, []
    return schedule_inputs(console, prefix="send")


def send_plan(pending: dict[str, Any], pricing: Pricing) -> CampaignPlan:
    """The pending send as a campaign's plan: one request, priced as the page estimated it
    (its segments counted with tracked links shortened)."""
    price = pricing.price_for(pending["country"])
    if price is None:
        raise ValueError(f"country {pending['country']} has no price")
    request = PlannedRequest(
        pending["country"],
        pending["sender"],
        pending["content"],
        tuple(pending["numbers"]),
        pending["segments"],
        count_segments(pending["content"]).encoding,
        price,
    )
    return CampaignPlan(pending["content"], pending["sender"], pricing.currency, (request,))


SAID = "send_later_said"  # what the last send for later became, said above the form


def _dismiss() -> None:
    st.session_state.pop("send_pending", None)


@st.dialog("Send this message later?", on_dismiss=_dismiss)
def confirm_later(console: Console, pending: dict[str, Any], pricing: Pricing) -> None:
    """The confirmation of a send for later: when it goes, then Confirm writes the campaign
    (permission, threshold and audit as New campaign's) and arms its start."""
    schedule: Schedule = pending["schedule"]
    plan = send_plan(pending, pricing)
    n = len(pending["numbers"])
    st.markdown(
        f"To **{counted(n, 'recipient')}** in **{plain(pending['country'])}**, later: "
        f"estimated **{money(plan.total, pricing.currency)}**, frozen only when it goes."
    )
    st.text(pending["content"])
    draw_parts(console, plan, schedule)
    if pending.get("opted_out") or pending.get("recent_left_out"):
        from console.audience.optouts import left_out_sentence

        st.caption(left_out_sentence(pending))
    st.caption(
        "Kept as a campaign (Campaigns), where it can be moved or cancelled until it goes. "
        "When it goes, the daily caps and the balance of that moment decide, and numbers opted "
        "out meanwhile are left out."
    )
    yes, no = st.columns(2)
    if yes.button("Confirm for later", key="send_later_confirm", type="primary", width="stretch"):
        text = " ".join(pending["content"].split())
        name = "Send: " + (text if len(text) <= 40 else text[:39] + "…")
        campaign_id = create_campaign(
            console,
            {
                "name": name,
                "plan": plan,
                "skipped": 0,
                "opted_out": pending.get("opted_out", 0),
                "recent_left_out": pending.get("recent_left_out", 0),
                "options": cv.CampaignOptions(track_click=bool(pending["track"]), callback=True),
                "list_id": None,
                "schedule": schedule,
            },
            form="send",
        )
        label = console.ledger.campaign_label(campaign_id) or f"campaign {campaign_id}"
        status = console.ledger.campaign_status(campaign_id)
        said = {"awaiting": "waits for approval", "scheduled": "is scheduled"}.get(
            status or "", "was started now (its time had come)"
        )
        st.session_state.pop("send_last", None)
        st.session_state[SAID] = (
            f"**Not sent yet:** {plain(label)} {said} — see it on Campaigns, where it can be "
            "moved or cancelled."
        )
        _dismiss()
        account_changed()
        st.rerun()
    if no.button("Cancel", key="send_later_cancel", width="stretch"):
        _dismiss()
        st.rerun()


def said_later() -> None:
    """What this session's last send for later became (once)."""
    said = st.session_state.pop(SAID, None)
    if said:
        st.success(said, icon=":material/schedule_send:")
