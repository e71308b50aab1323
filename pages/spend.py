"""Finance → Spend: KPIs against the previous period, charts and exports, from the ledger.

Every figure comes from ``kedacore.analytics`` (SQL over the ledger's daily rollup); this page
only chooses the filters, caches the answer keyed by (filters, data version) and draws it.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from console.finance.views import (
    PRESETS,
    kpi_cards,
    period_label,
    preset_range,
    previous_range,
)
from console.shell import fail, page_setup
from console.views import money
from kedacore import demo
from kedacore.analytics import (
    DataVersion,
    FilterOptions,
    Filters,
    SpendData,
    data_version,
    figures,
    filter_options,
    spend_by_campaign_figure,
    spend_page,
    to_csv,
    to_xlsx,
)
from kedacore.ledger import Ledger

CACHE_TTL = 300  # seconds; the data version in the key already drops stale answers
DEMO_DAYS = 90
DEMO_MESSAGES = 50_000  # a quick default (≈ 2 s); the command line makes millions
TOP_CAMPAIGNS = 15  # bars in the campaign chart; the export has them all
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

console = page_setup("Spend", "What was spent and delivered, by day, country, sender and campaign.")
state = st.session_state
ledger = console.ledger
key = console.runtime.key  # which ledger: the cached functions take it in their key


@st.cache_data(ttl=CACHE_TTL, max_entries=20, show_spinner=False)
def cached_options(key: str, version: DataVersion, _ledger: Ledger) -> FilterOptions:
    """The filters' choices (countries, senders, campaigns…) for this data version."""
    return filter_options(_ledger)


@st.cache_data(ttl=CACHE_TTL, max_entries=50, show_spinner="Adding up the ledger…")
def cached_page(key: str, filters: Filters, version: DataVersion, _ledger: Ledger) -> SpendData:
    """Every KPI and chart frame for the filters, at this data version."""
    data = spend_page(_ledger, filters)
    return data


@st.cache_data(ttl=CACHE_TTL, max_entries=50, show_spinner=False)
def cached_figures(
    key: str, filters: Filters, version: DataVersion, _data: SpendData
) -> dict[str, go.Figure]:
    """The Plotly figures of one answer (building them costs more than the queries)."""
    charts = figures(_data)
    # Single sends outside campaigns dwarf every campaign: the chart compares campaigns only
    # (the export keeps the "(no campaign)" row).
    campaigns = _data.by_campaign[_data.by_campaign.campaign_id.notna()]
    currency = _data.kpis.current.currency
    charts["by_campaign"] = spend_by_campaign_figure(campaigns.head(TOP_CAMPAIGNS), currency)
    return charts


def read_version() -> DataVersion:
    """The ledger's data version (one small query), or a clear error."""
    try:
        return data_version(ledger)
    except SQLAlchemyError as exc:
        fail(
            f"**The ledger cannot be read** ({type(exc).__name__}). Check the ledger database "
            "(KEDA_DATABASE_URL, or ledger.db in the data folder) and reload the page."
        )


def load_demo(days: int, messages: int) -> None:
    """Fill the ledger with generated demo history, showing progress."""
    bar = st.progress(0.0, text="Generating demo history…")

    def report(done: int, total: int) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"{done:,} of {total:,} demo messages")

    try:
        result = demo.generate(
            ledger,
            days=days,
            messages=messages,
            chunk=max(5_000, messages // 20),  # ~20 progress steps
            progress=report,
        )
    except SQLAlchemyError as exc:
        fail(
            f"**The demo history could not be written** ({type(exc).__name__}). Check that "
            "the data folder is writable, then try again."
        )
    state["spend_notice"] = (
        f"Loaded **demo history**: {result.messages:,} generated messages over {days} days "
        f"({result.first_day} … {result.last_day}, {result.campaigns} campaigns). It is "
        "marked as demo data; **Remove demo data** takes it out again."
    )
    st.rerun()


def demo_form(expanded: bool) -> None:
    """The sandbox's "Load demo history" controls."""
    with st.expander("Load demo history (sandbox)", expanded=expanded, icon=":material/science:"):
        st.caption(
            "Generated traffic (nine countries, three transactional senders, a campaign every "
            "few days, realistic failures, latencies and clicks), **marked as demo data** and "
            "removable at any time. It lives in this console's ledger only: the sandbox "
            "balance and caps are not touched."
        )
        a, b, c = st.columns([2, 2, 3], vertical_alignment="bottom")
        days = a.number_input(
            "Days", min_value=1, max_value=365, value=DEMO_DAYS, step=1, key="spend_demo_days"
        )
        messages = b.number_input(
            "Messages",
            min_value=1_000,
            max_value=2_000_000,
            value=DEMO_MESSAGES,
            step=10_000,
            key="spend_demo_messages",
            help="50,000 take about 2 s; a million about 30 s.",
        )
        if c.button("Load demo history", key="spend_demo_load", type="primary"):
            load_demo(int(days), int(messages))


def remove_demo() -> None:
    """Take every demo row out of the ledger (real sends stay)."""
    try:
        with st.spinner("Removing demo data…"):
            removed = ledger.remove_demo_data()
    except SQLAlchemyError as exc:
        fail(f"**The demo data could not be removed** ({type(exc).__name__}). Try again.")
    state["spend_notice"] = f"Removed {removed:,} demo messages. Real sends are untouched."
    st.rerun()


version = read_version()
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
        demo_form(expanded=True)
    st.stop()

if options.has_demo:
    note, button = st.columns([4, 1], vertical_alignment="center")
    note.warning(
        "**Demo data:** this ledger holds generated demo history (not real traffic); the "
        "figures below include it.",
        icon=":material/science:",
    )
    if button.button("Remove demo data", key="spend_demo_remove", icon=":material/delete:"):
        remove_demo()

# -- filters -----------------------------------------------------------------------------------

today = ledger.now().date()
NO_SENDER, NO_CAMPAIGN = "", 0  # widget values standing for "none" (None cannot be chosen)
sender_names = {s or NO_SENDER: s or "(no sender id)" for s in options.senders}
campaign_names = {cid or NO_CAMPAIGN: name for cid, name in options.campaigns}

with st.container(border=True):
    period_col, range_col, country_col = st.columns([2, 3, 3])
    preset = period_col.selectbox(
        "Period (UTC days)",
        list(PRESETS),
        index=1,
        format_func=PRESETS.get,
        key="spend_period",
    )
    if preset == "custom":
        default = (preset_range("30d", today)[0], today)
        picked = range_col.date_input(
            "From – to",
            value=default,
            max_value=today,
            key="spend_range",
            help="Both days included, UTC.",
        )
        if not isinstance(picked, tuple) or len(picked) != 2:
            range_col.caption("Pick the last day of the range.")
            st.stop()
        start, end = picked
    else:
        start, end = preset_range(preset, today)
        range_col.date_input(
            "From – to",
            value=(start, end),
            disabled=True,
            key=f"spend_range_{preset}",  # one per preset: a keyed widget keeps its value
            help="Choose “Custom range” to pick the days.",
        )
    countries = country_col.multiselect(
        "Country", list(options.countries), key="spend_countries", placeholder="All countries"
    )
    sender_col, campaign_col, status_col = st.columns([2, 3, 3])
    senders = sender_col.multiselect(
        "Sender id",
        list(sender_names),
        format_func=sender_names.get,
        key="spend_senders",
        placeholder="All senders",
    )
    campaigns = campaign_col.multiselect(
        "Campaign",
        list(campaign_names),
        format_func=campaign_names.get,
        key="spend_campaigns",
        placeholder="All campaigns and single sends",
    )
    statuses = status_col.multiselect(
        "Status", list(options.statuses), key="spend_statuses", placeholder="All statuses"
    )
    currency = None
    if len(options.currencies) > 1:  # an account has one; a shared ledger may mix them
        currency = st.selectbox("Currency", list(options.currencies), key="spend_currency")

filters = Filters(
    start,
    end,
    countries=countries,
    senders=[s or None for s in senders],
    campaign_ids=[c or None for c in campaigns],
    statuses=statuses,
    currency=currency,
)
prev_start, prev_end = previous_range(filters)
st.caption(
    f"**{period_label(start, end)}**, compared with the {(end - start).days + 1} days before "
    f"({prev_start} … {prev_end}). A message counts on the UTC day it was sent; its charge, "
    "delivery and clicks count with it."
)

try:
    data = cached_page(key, filters, version, ledger)
except SQLAlchemyError as exc:
    fail(
        f"**The spend figures could not be computed** ({type(exc).__name__}). Check the ledger "
        "database and reload the page."
    )

if data.empty:
    st.info(
        "**No messages in this period with these filters.** Choose a longer period or clear a "
        f"filter. The ledger holds messages from {options.first_day} to {options.last_day}.",
        icon=":material/filter_alt_off:",
    )
    if console.sandbox and not options.has_demo:
        demo_form(expanded=False)
    st.stop()

cur = data.kpis.current.currency or console.currency
if cur == "mixed":
    cur = ""  # several currencies (a shared ledger): no unit rather than a wrong one

# -- KPIs --------------------------------------------------------------------------------------

cards = kpi_cards(data.kpis, cur)
for row in (cards[:5], cards[5:]):
    for col, card in zip(st.columns(len(row)), row, strict=True):
        col.metric(
            card.label,
            card.value,
            delta=card.delta,
            delta_color=card.delta_color,  # type: ignore[arg-type]
            help=card.help,
            border=True,
        )

stamp = f"{start.isoformat()}_{end.isoformat()}"


def downloads(name: str, frame: pd.DataFrame, label: str = "") -> None:
    """CSV and XLSX buttons for one view (built only when clicked)."""
    row = st.container(horizontal=True, gap="medium")
    row.download_button(
        f"{label}CSV",
        lambda: to_csv(frame),
        file_name=f"spend-{name}-{stamp}.csv",
        mime="text/csv",
        key=f"spend_csv_{name}",
        icon=":material/download:",
        on_click="ignore",
        type="tertiary",
    )
    row.download_button(
        f"{label}XLSX",
        lambda: to_xlsx({name: frame}),
        file_name=f"spend-{name}-{stamp}.xlsx",
        mime=XLSX,
        key=f"spend_xlsx_{name}",
        icon=":material/download:",
        on_click="ignore",
        type="tertiary",
    )


downloads("kpis", data.kpis.frame(), "KPIs ")

# -- charts ------------------------------------------------------------------------------------

charts = cached_figures(key, filters, version, data)
frames = data.frames()


def chart(name: str, note: str | None = None) -> None:
    """One chart with its exports underneath."""
    with st.container(border=True):
        st.plotly_chart(charts[name], key=f"spend_chart_{name}", config={"displaylogo": False})
        if note:
            st.caption(note)
        downloads(name, frames[name])


chart("daily_spend", "Charged money; frozen amounts of messages not charged yet are not included.")
left, right = st.columns(2)
with left:
    chart("status_by_day")
with right:
    chart("delivery_by_country", "Delivered ÷ final (DELIVERED + UNDELIVERED + FAILED).")
chart("latency", "SENT → DELIVERED by the service's clock; delivered messages only.")
left, right = st.columns(2)
with left:
    chart("by_sender")
with right:
    chart(
        "funnel",
        "The messages of the filters above; choose campaigns in the filter to see theirs.",
    )
in_campaigns = data.by_campaign[data.by_campaign.campaign_id.notna()]
outside = data.by_campaign[data.by_campaign.campaign_id.isna()]
notes = []
if len(in_campaigns) > TOP_CAMPAIGNS:
    notes.append(f"The {TOP_CAMPAIGNS} dearest of {len(in_campaigns)} campaigns.")
if not outside.empty:
    notes.append(
        f"Single sends outside campaigns ({money(outside.spend.iloc[0], cur)}) are not drawn."
    )
if notes:
    notes.append("The export has every row.")
chart("by_campaign", " ".join(notes) or None)

with st.container(border=True):
    st.markdown("**Everything in one workbook**")
    st.download_button(
        "Export all views (XLSX, one sheet each)",
        lambda: to_xlsx(frames),
        file_name=f"spend-{stamp}.xlsx",
        mime=XLSX,
        key="spend_xlsx_all",
        icon=":material/download:",
        on_click="ignore",
    )
    st.caption(
        "Money as exact decimals, days as UTC dates, times in UTC. "
        f"Data version {version.revision} ({version.messages:,} messages in the ledger)."
    )

if console.sandbox and not options.has_demo:
    demo_form(expanded=False)
