"""Finance → Spend: KPIs against the previous period, charts and exports, from the ledger.

Every figure comes from ``kedacore.analytics`` (SQL over the ledger's daily rollup); this page
only chooses the filters, caches the answer keyed by (filters, data version) and draws it. The
pieces are in ``console.finance.spend``.
"""

from __future__ import annotations

import streamlit as st

from console.finance.spend import (
    Views,
    cached_figures,
    cached_options,
    campaign_note,
    currency_unit,
    demo_form,
    demo_notice,
    downloads,
    export_stamp,
    filter_form,
    kpi_metrics,
    period_caption,
    read_page,
    read_version,
    tests_note,
)
from console.shell import page_setup
from kedacore.team import Permission

console = page_setup(
    "Spend",
    "What was spent and delivered, by day, country, sender and campaign.",
    needs=Permission.SPEND,
)
state = st.session_state
ledger = console.ledger
key = console.runtime.key  # which ledger: the cached readers take it in their key

version = read_version(ledger)
options = cached_options(key, version, ledger)
if "spend_notice" in state:
    st.success(state.pop("spend_notice"), icon=":material/check_circle:")

# -- empty ledger ------------------------------------------------------------------------------

if options.first_day is None:
    st.info(
        "**Nothing to add up yet.** This page shows what this console has sent (from **Send** "
        "and **Campaigns**) and what KedaSMS reported back: spend by day, country, sender and "
        "campaign, delivery rates, time to delivery and clicks. Send a message and it "
        "appears here.",
        icon=":material/query_stats:",
    )
    if console.sandbox:
        st.markdown("Or load generated **demo history** to see what the page shows:")
        demo_form(ledger, expanded=True)
    st.stop()

if options.has_demo:
    demo_notice(ledger)

# -- filters -----------------------------------------------------------------------------------

filters = filter_form(options, ledger.now().date())
st.caption(period_caption(filters))
data = read_page(key, filters, version, ledger)

if data.empty:
    st.info(
        "**No messages in this period with these filters.** Choose a longer period or clear a "
        f"filter. The ledger holds messages from {options.first_day} to {options.last_day}.",
        icon=":material/filter_alt_off:",
    )
    if console.sandbox and not options.has_demo:
        demo_form(ledger, expanded=False)
    st.stop()

cur = currency_unit(data, console.currency)
stamp = export_stamp(filters)

# -- KPIs --------------------------------------------------------------------------------------

kpi_metrics(data, cur)
if note := tests_note(ledger, filters, cur):
    st.caption(note)
downloads("kpis", data.kpis.frame(), stamp, "KPIs ", ledger=ledger)

# -- charts ------------------------------------------------------------------------------------

charts = cached_figures(key, filters, version, options.countries, data)
views = Views(charts, data.frames(), stamp, ledger)
views.chart(
    "daily_spend", "Charged money; frozen amounts of messages not charged yet are not included."
)
left, right = st.columns(2)
with left:
    views.chart("status_by_day")
with right:
    views.chart("delivery_by_country", "Delivered ÷ final (DELIVERED + UNDELIVERED + FAILED).")
views.chart("latency", "SENT → DELIVERED by the service's clock; delivered messages only.")
left, right = st.columns(2)
with left:
    views.chart("by_sender")
with right:
    views.chart(
        "funnel",
        "The messages of the filters above; choose campaigns in the filter to see theirs.",
    )
views.chart("by_campaign", campaign_note(data, cur))

views.workbook(version)

if console.sandbox and not options.has_demo:
    demo_form(ledger, expanded=False)
