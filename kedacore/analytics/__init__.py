"""Finance analytics: KPIs, chart frames, figures and exports for the Spend page.

All aggregation runs in SQL (over the ledger's daily rollup); only aggregates reach pandas.
No Streamlit here: the page calls these functions and draws what they return.

    from kedacore.analytics import Filters, spend_page, figures
    data = spend_page(ledger, Filters.last_days(30))
"""

from kedacore.analytics.charts import (
    STATUS_COLORS,
    campaign_funnel_figure,
    country_colors,
    daily_spend_figure,
    delivery_rate_figure,
    empty_figure,
    figures,
    latency_figure,
    spend_by_campaign_figure,
    spend_by_sender_figure,
    status_figure,
)
from kedacore.analytics.export import to_csv, to_xlsx
from kedacore.analytics.filters import Filters
from kedacore.analytics.frames import (
    DataVersion,
    FilterOptions,
    SpendData,
    daily_spend_by_country,
    data_version,
    delivery_by_country,
    filter_options,
    funnel,
    latency_distribution,
    messages_by_status,
    spend_by_campaign,
    spend_by_sender,
    spend_page,
)
from kedacore.analytics.kpis import Delta, KpiComparison, Kpis, compare_kpis, kpis

__all__ = [
    "STATUS_COLORS",
    "DataVersion",
    "Delta",
    "FilterOptions",
    "Filters",
    "KpiComparison",
    "Kpis",
    "SpendData",
    "campaign_funnel_figure",
    "compare_kpis",
    "country_colors",
    "daily_spend_by_country",
    "daily_spend_figure",
    "data_version",
    "delivery_by_country",
    "delivery_rate_figure",
    "empty_figure",
    "figures",
    "filter_options",
    "funnel",
    "kpis",
    "latency_distribution",
    "latency_figure",
    "messages_by_status",
    "spend_by_campaign",
    "spend_by_campaign_figure",
    "spend_by_sender",
    "spend_by_sender_figure",
    "spend_page",
    "status_figure",
    "to_csv",
    "to_xlsx",
]
