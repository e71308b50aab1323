"""What the Campaigns page's two views share: the tab names, the engine, this session's runs.

The new-campaign view starts runs and the list view resumes them; both build an engine the
same way and remember the runs they start in ``st.session_state["campaigns_runs"]`` so the
list can show the error of a run that broke.
"""

from __future__ import annotations

import streamlit as st

from console.messaging.campaigns import CampaignOptions
from console.shell import Console
from kedacore.campaign import CampaignEngine, CampaignRun

NEW, LIST = "New campaign", "Campaigns"


def engine_for(console: Console, options: CampaignOptions) -> CampaignEngine:
    """An engine sending with a campaign's options (each run makes its own async client)."""
    return CampaignEngine(
        console.ledger,
        console.runtime.async_client,
        callback_url=console.callback_url if options.callback else None,
        track_click=options.track_click,
    )


def keep_run(campaign_id: int, run: CampaignRun) -> None:
    """Remember a background run this session started, to show its error if it breaks."""
    st.session_state.setdefault("campaigns_runs", {})[campaign_id] = run
