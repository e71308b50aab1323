"""What the Campaigns page's two views share: the tab names, the engine, this session's runs.

The new-campaign view starts runs and the list view resumes them; both build an engine the
same way and remember the runs they start in ``st.session_state["campaigns_runs"]`` so the
list can show the error of a run that broke.
"""

from __future__ import annotations

import os

import streamlit as st

from console.messaging.campaigns import CampaignOptions
from console.shell import Console
from kedacore.campaign import CampaignEngine, CampaignRun

NEW, LIST = "New campaign", "Campaigns"


# The service's limit of requests per second for one API key (KedaSMS's, and the sandbox
# gateway's), and the share of it a campaign may use: the rest is left to the console's own
# pages (balance, caps, lookups), which use the same key.
RATE_LIMIT = 100.0  # KEDA_RATE_LIMIT (0: no limit, campaigns are not paced)
RATE_SHARE = 0.8  # KEDA_CAMPAIGN_RATE_SHARE, between 0.05 and 1


def engine_for(console: Console, options: CampaignOptions) -> CampaignEngine:
    """An engine sending with a campaign's options (each run makes its own async client),
    paced at ``campaign_rate()``."""
    return CampaignEngine(
        console.ledger,
        console.runtime.async_client,
        callback_url=console.callback_url if options.callback else None,
        track_click=options.track_click,
        rate=campaign_rate(),
    )


def campaign_rate() -> float | None:
    """Requests per second a campaign may send: KEDA_RATE_LIMIT × KEDA_CAMPAIGN_RATE_SHARE
    (environment, then ``[keda]`` in secrets); None when the limit is 0 (no pace). A value
    that is not a number is ignored (the default is used)."""
    limit = _number("KEDA_RATE_LIMIT", RATE_LIMIT)
    share = min(max(_number("KEDA_CAMPAIGN_RATE_SHARE", RATE_SHARE), 0.05), 1.0)
    return limit * share if limit > 0 else None


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        try:
            raw = (st.secrets.get("keda") or {}).get(name.lower())
        except Exception:  # no secrets file
            raw = None
    try:
        return float(str(raw).replace("_", "")) if raw not in (None, "") else default
    except ValueError:
        return default


def pause(engine: CampaignEngine, campaign_id: int) -> None:
    """Pause's callback: it runs before the script does, so a click is never lost to a rerun
    (the campaign is "pausing…" in the ledger until its run confirms with "paused")."""
    engine.stop(campaign_id)


def keep_run(campaign_id: int, run: CampaignRun) -> None:
    """Remember a background run this session started, to show its error if it breaks."""
    st.session_state.setdefault("campaigns_runs", {})[campaign_id] = run
