"""The Spend page's pieces: cached readers, demo history, the filter block, KPIs, charts, exports.

Every figure is ``kedacore.analytics``'s; the readers cache its answers under the ledger's key,
the filters and the ledger's data version, so that a new event is never hidden by the cache.
``pages/spend.py`` lays these out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import NoReturn

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from console.access import guarded
from console.finance.cards import Card, metric_card
from console.finance.views import (
    KPI_ROWS,
    PRESETS,
    kpi_cards,
    period_label,
    preset_range,
    previous_range,
)
from console.shell import fail
from console.views import money
from kedacore import demo
from kedacore.analytics import (
    DataVersion,
    FilterOptions,
    Filters,
    SpendData,
    country_colors,
    data_version,
    figures,
    filter_options,
    spend_by_campaign_figure,
    spend_page,
)
from kedacore.analytics.queries import spend_of_tests
from kedacore.exports import to_csv, to_xlsx
from kedacore.ledger import Ledger
from kedacore.money import from_micros
from kedacore.team import Permission

CACHE_TTL = 300  # seconds; the data version in the key already drops stale answers
DEMO_DAYS = 90
DEMO_MESSAGES = 50_000  # a quick default (≈ 2 s); the command line makes millions
TOP_CAMPAIGNS = 15  # bars in the campaign chart; the export has them all
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
WHAT = "export the spend"  # the exports re-check this at the click (console.access.guarded)
NO_SENDER, NO_CAMPAIGN = "", 0  # widget values standing for "none" (None cannot be chosen)

# -- cached readers (``key`` is the ledger's: two ledgers in one process never share answers) --


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
    key: str,
    filters: Filters,
    version: DataVersion,
    countries: tuple[str, ...],
    _data: SpendData,
) -> dict[str, go.Figure]:
    """The Plotly figures of one answer (building them costs more than the queries).

    ``countries``: every country of the ledger. Their colours are given out over all of them,
    so that a country keeps its colour whatever the filters show.
    """
    charts = figures(_data, country_colors(countries))
    # Single sends outside campaigns dwarf every campaign: the chart compares campaigns only
    # (the export keeps the "(no campaign)" row).
    campaigns = _data.by_campaign[_data.by_campaign.campaign_id.notna()]
    currency = _data.kpis.current.currency
    charts["by_campaign"] = spend_by_campaign_figure(campaigns.head(TOP_CAMPAIGNS), currency)
    return charts


def read_version(ledger: Ledger) -> DataVersion:
    """The ledger's data version (one small query), or a clear error."""
    try:
        return data_version(ledger)
    except SQLAlchemyError as exc:
        fail(
            f"**The ledger cannot be read** ({type(exc).__name__}). Check the ledger database "
            "(KEDA_DATABASE_URL, or ledger.db in the data folder) and reload the page."
        )


def read_page(key: str, filters: Filters, version: DataVersion, ledger: Ledger) -> SpendData:
    """The figures for the filters (cached), or a clear error."""
    try:
        return cached_page(key, filters, version, ledger)
    except SQLAlchemyError as exc:
        fail(
            f"**The spend figures could not be computed** ({type(exc).__name__}). Check the "
            "ledger database and reload the page."
        )


# -- demo history (sandbox) --------------------------------------------------------------------


def load_demo(ledger: Ledger, days: int, messages: int) -> NoReturn:
    """Fill the ledger with generated demo history, showing progress; then rerun the page."""
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
    st.session_state["spend_notice"] = (
        f"Loaded **demo history**: {result.messages:,} generated messages over {days} days "
        f"({result.first_day} … {result.last_day}, {result.campaigns} campaigns). It is "
        "marked as demo data; **Remove demo data** takes it out again."
    )
    st.rerun()


def demo_form(ledger: Ledger, *, expanded: bool) -> None:
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
            load_demo(ledger, int(days), int(messages))


def remove_demo(ledger: Ledger) -> NoReturn:
    """Take every demo row out of the ledger (real sends stay); then rerun the page."""
    try:
        with st.spinner("Removing demo data…"):
            removed = ledger.remove_demo_data()
    except SQLAlchemyError as exc:
        fail(f"**The demo data could not be removed** ({type(exc).__name__}). Try again.")
    st.session_state["spend_notice"] = (
        f"Removed {removed:,} demo messages. Real sends are untouched."
    )
    st.rerun()


def demo_notice(ledger: Ledger) -> None:
    """Say that the figures include demo history, beside the button that removes it."""
    note, button = st.columns([3, 1], vertical_alignment="center")
    note.warning(
        "**Demo data:** this ledger holds generated demo history (not real traffic); the "
        "figures below include it.",
        icon=":material/science:",
    )
    if button.button("Remove demo data", key="spend_demo_remove", icon=":material/delete:"):
        remove_demo(ledger)


# -- filters -----------------------------------------------------------------------------------


def filter_form(options: FilterOptions, today: date) -> Filters:
    """The bordered filter block; stops the page while a custom range lacks its last day."""
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
    return Filters(
        start,
        end,
        countries=countries,
        senders=[s or None for s in senders],
        campaign_ids=[c or None for c in campaigns],
        statuses=statuses,
        currency=currency,
    )


def period(filters: Filters) -> tuple[date, date]:
    """The first and last UTC day of the filters' period (the filter block sets days)."""
    assert isinstance(filters.start, date) and isinstance(filters.end, date)
    return filters.start, filters.end


def period_caption(filters: Filters) -> str:
    """The period shown, the one it is compared with, and how messages are counted."""
    start, end = period(filters)
    prev_start, prev_end = previous_range(filters)
    return (
        f"**{period_label(start, end)}**, compared with the {(end - start).days + 1} days before "
        f"({prev_start} … {prev_end}). A message counts on the UTC day it was sent; its charge, "
        "delivery and clicks count with it."
    )


def currency_unit(data: SpendData, account_currency: str) -> str:
    """The currency the figures are in, or "" when a shared ledger mixes several."""
    cur = data.kpis.current.currency or account_currency
    return "" if cur == "mixed" else cur  # no unit rather than a wrong one


# -- KPIs, charts, exports ---------------------------------------------------------------------


def kpi_metrics(data: SpendData, cur: str) -> None:
    """The KPI cards in rows by what they measure, each against the previous period.

    Fitted cards (``console.finance.cards``): no figure is ever cut.
    """
    cards = {card.name: card for card in kpi_cards(data.kpis, cur)}
    width = max(len(row) for row in KPI_ROWS)
    for row in KPI_ROWS:
        for col, name in zip(st.columns(width), row, strict=False):
            card = cards[name]
            with col:
                metric_card(
                    Card(
                        f"spend_kpi_{name}",
                        card.label,
                        card.value,
                        card.delta,
                        card.delta_color,
                        card.help,
                    ),
                    border=True,
                )


def downloads(
    name: str, frame: pd.DataFrame, stamp: str, label: str = "", *, ledger: Ledger
) -> None:
    """CSV and XLSX buttons for one view, built only when clicked — for someone who may still
    see the spend then (``console.access.guarded``)."""
    row = st.container(horizontal=True, gap="medium")
    row.download_button(
        f"{label}CSV",
        guarded(ledger, Permission.SPEND, WHAT, lambda: to_csv(frame), target="Spend"),
        file_name=f"spend-{name}-{stamp}.csv",
        mime="text/csv",
        key=f"spend_csv_{name}",
        icon=":material/download:",
        on_click="ignore",
        type="tertiary",
    )
    row.download_button(
        f"{label}XLSX",
        guarded(ledger, Permission.SPEND, WHAT, lambda: to_xlsx({name: frame}), target="Spend"),
        file_name=f"spend-{name}-{stamp}.xlsx",
        mime=XLSX,
        key=f"spend_xlsx_{name}",
        icon=":material/download:",
        on_click="ignore",
        type="tertiary",
    )


def export_stamp(filters: Filters) -> str:
    """The period as export file names carry it: ``2026-01-01_2026-01-30``."""
    start, end = period(filters)
    return f"{start.isoformat()}_{end.isoformat()}"


@dataclass(frozen=True)
class Views:
    """One answer's figures and tables, and the stamp its exports are named with."""

    charts: dict[str, go.Figure]
    frames: dict[str, pd.DataFrame]
    stamp: str
    ledger: Ledger  # whom the exports re-check at the click

    def chart(self, name: str, note: str | None = None) -> None:
        """One chart with its exports underneath."""
        with st.container(border=True):
            st.plotly_chart(
                self.charts[name], key=f"spend_chart_{name}", config={"displaylogo": False}
            )
            if note:
                st.caption(note)
            downloads(name, self.frames[name], self.stamp, ledger=self.ledger)

    def workbook(self, version: DataVersion) -> None:
        """Every view in one XLSX, with the data version the figures are of."""
        with st.container(border=True):
            st.markdown("**Everything in one workbook**")
            st.download_button(
                "Export all views (XLSX, one sheet each)",
                guarded(
                    self.ledger,
                    Permission.SPEND,
                    WHAT,
                    lambda: to_xlsx(self.frames),
                    target="Spend",
                ),
                file_name=f"spend-{self.stamp}.xlsx",
                mime=XLSX,
                key="spend_xlsx_all",
                icon=":material/download:",
                on_click="ignore",
            )
            st.caption(
                "Money as exact decimals, days as UTC dates, times in UTC. "
                f"Data version {version.revision} ({version.messages:,} messages in the ledger)."
            )


def campaign_note(data: SpendData, cur: str) -> str | None:
    """What the campaign chart leaves out: campaigns past the top ones, and single sends."""
    in_campaigns = data.by_campaign[data.by_campaign.campaign_id.notna()]
    outside = data.by_campaign[data.by_campaign.campaign_id.isna()]
    notes = []
    if len(in_campaigns) > TOP_CAMPAIGNS:
        notes.append(f"The {TOP_CAMPAIGNS} dearest of {len(in_campaigns):,} campaigns.")
    if not outside.empty:
        notes.append(
            f"Single sends outside campaigns ({money(outside.spend.iloc[0], cur)}) are not drawn."
        )
    if notes:
        notes.append("The export has every row.")
    return " ".join(notes) or None


def tests_note(ledger: Ledger, filters: Filters, cur: str) -> str | None:
    """How much of the filtered spend was campaign test sends (None: none, or unreadable)."""
    try:
        n, cost, frozen = spend_of_tests(ledger, filters)
    except SQLAlchemyError:
        return None
    if not n:
        return None
    more = f" and {money(from_micros(frozen), cur)} frozen, not charged yet" if frozen else ""
    return (
        f"Of which campaign tests (New campaign → Send a test, to the members' own numbers): "
        f"{n:,} message{'s' if n != 1 else ''}, **{money(from_micros(cost), cur)}** "
        f"charged{more}; counted with the single sends outside campaigns."
    )
