"""Campaigns: one text (or a template) to thousands of recipients, exactly once each.

The modules, in the order a campaign goes through them:

- :mod:`~kedacore.campaign.recipients` reads the recipients file (CSV/XLSX) and the template;
- :mod:`~kedacore.campaign.preview` checks every row (number, variables, segments, price);
- :mod:`~kedacore.campaign.plan` groups the rows into requests and checks the funds;
- :mod:`~kedacore.campaign.engine` writes the plan to the ledger and sends it
  (:class:`CampaignEngine`);
- :mod:`~kedacore.campaign.run` is one run's sending and recording;
- :mod:`~kedacore.campaign.progress` reads how far a campaign got;
- :mod:`~kedacore.campaign.tasks` is the one task code that runs a campaign, and its
  procrastinate jobs on PostgreSQL; :mod:`~kedacore.campaign.worker` runs them;
- :mod:`~kedacore.campaign.cli` is ``python -m kedacore.campaign`` (``send`` in
  :mod:`~kedacore.campaign.send`, the shared parts in :mod:`~kedacore.campaign.command`).
"""

from kedacore.campaign.engine import (
    DEFAULT_CONCURRENCY,
    CampaignBusyError,
    CampaignEngine,
    CampaignProgress,
    CampaignReport,
    CampaignRun,
    ClientFactory,
    run_loop,
)

__all__ = [
    "DEFAULT_CONCURRENCY",
    "CampaignBusyError",
    "CampaignEngine",
    "CampaignProgress",
    "CampaignReport",
    "CampaignRun",
    "ClientFactory",
    "run_loop",
]
