"""What the Campaigns page's views (and the Approvals page) share: the tab names, the engine,
starting a campaign, this session's runs.

The new-campaign view starts runs, the list view resumes them, an approval starts the
campaign it approves: all through :func:`start_campaign`, which builds the engine with the
campaign's saved options, remembers the run in ``st.session_state["campaigns_runs"]`` (so the
list can show the error of a run that broke) and writes the audit entry with who did it.

Where the run happens (``kedacore.campaign.tasks``): with the SQLite ledger in a background
thread of this server; with PostgreSQL a job for the workers (``python -m kedacore.campaign
worker``) — the engine is then a ``QueuedCampaignEngine``: ``start`` enqueues, ``is_running``
means a job of the campaign waits or runs anywhere, ``stop`` cancels a waiting job and asks a
running one to pause through the ledger.
"""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from console import access
from console.messaging.campaigns import CampaignOptions, options_json, options_of
from console.shell import Console
from kedacore.campaign import CampaignEngine, CampaignRun
from kedacore.campaign.tasks import QueuedCampaignEngine, kept_callback, uses_workers
from kedacore.campaign.tasks import campaign_rate as tasks_rate
from kedacore.ledger import Ledger
from kedacore.money import from_micros
from kedacore.team import Actor, Permission

NEW, LIST = "New campaign", "Campaigns"


def engine_for(console: Console, options: CampaignOptions) -> CampaignEngine:
    """An engine sending with a campaign's options (each run makes its own async client),
    paced at ``campaign_rate()``; on PostgreSQL one that enqueues for the workers."""
    kind = QueuedCampaignEngine if uses_workers(console.ledger.url) else CampaignEngine
    return kind(
        console.ledger,
        console.runtime.async_client,
        callback_url=console.callback_url if options.callback else None,
        track_click=options.track_click,
        rate=campaign_rate(),
    )


def campaign_rate() -> float | None:
    """Requests per second a campaign may send (``kedacore.campaign.tasks.campaign_rate``:
    the environment, then ``[keda]`` in secrets), the pace the workers take too."""
    try:
        section = st.secrets.get("keda") or {}
    except Exception:  # no secrets file
        section = {}
    return tasks_rate(os.environ, section)


REFUSED = "campaigns_refused"  # a refusal heard in a callback, said by the next run


def permitted(ledger: Ledger, permission: Permission, what: str, target: str) -> Actor | None:
    """``console.access.require`` for a callback (which must not stop the script): the
    actor, or None after auditing the refusal and keeping its sentence for :func:`refusals`."""
    actor = access.who(ledger)
    if actor is not None and actor.can(permission):
        return actor
    ledger.audit(
        actor.name if actor else "someone signed out",
        "refused",
        target=target,
        detail=f"{what} (needs {permission.value})",
        outcome="refused",
    )
    st.session_state[REFUSED] = access.refusal(permission, what)
    return None


def refusals() -> None:
    """Say a refusal a callback heard (once)."""
    text = st.session_state.pop(REFUSED, None)
    if text:
        st.error(text, icon=":material/block:")


def pause(engine: CampaignEngine, campaign_id: int) -> None:
    """Pause's callback: it runs before the script does, so a click is never lost to a rerun
    (the campaign is "pausing…" in the ledger until its run confirms with "paused")."""
    target = f"campaign {campaign_id}"
    actor = permitted(engine.ledger, Permission.CAMPAIGNS, "pause campaigns", target)
    if actor is not None and engine.stop(campaign_id):
        engine.ledger.audit(actor.name, "campaign_pause", target=target)


def keep_run(campaign_id: int, run: CampaignRun) -> None:
    """Remember a background run this session started, to show its error if it breaks."""
    st.session_state.setdefault("campaigns_runs", {})[campaign_id] = run


def start_campaign(
    console: Console,
    campaign_id: int,
    *,
    by: str,
    action: str = "campaign_start",
    detail: str = "",
    keep: bool = True,
) -> CampaignRun:
    """Start (or resume) a campaign in the background with its saved send options and audit
    it (``action``: campaign_start or campaign_resume) with who did it; the run already under
    way, if another session started it a moment ago. ``keep``: remember the run in this
    session (False off a page run: the schedule's watcher thread)."""
    campaign = console.ledger.campaign(campaign_id)
    if campaign is None:
        raise KeyError(f"no campaign {campaign_id!r}")
    options = options_of(console.ledger, console.settings.data_dir, campaign)
    engine = engine_for(console, options)
    if isinstance(engine, QueuedCampaignEngine) and options.callback:
        # A worker elsewhere posts the statuses to this console's receiver (KEDA_CALLBACK_URL
        # when set, which a team behind a proxy sets), kept with the options.
        # The receiver's token is not kept in the ledger: each runner puts back its own.
        url = kept_callback(console.callback_url, console.settings.webhook_token)
        kept = {**options_json(options), "callback_url": url}
        console.ledger.set_campaign_options(campaign_id, kept)
    run = engine.start(campaign_id)
    if keep:
        keep_run(campaign_id, run)
    after: dict[str, Any] = {
        "name": campaign.name,
        "recipients": campaign.recipients,
        "estimate": from_micros(campaign.estimated_micros),
        "currency": campaign.currency,
    }
    console.ledger.audit(by, action, target=f"campaign {campaign_id}", after=after, detail=detail)
    return run
