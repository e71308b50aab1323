"""Plotly figures for the Spend page, one plain function per chart (frames in, go.Figure out).

Empty state: a frame with no data gives a figure with no traces and a centred
"No data for this period" annotation (never None), so a page can always draw what it gets.
Money is plotted as float (a chart has no use for the sixth decimal) but every hover text is
the exact decimal.
"""

from __future__ import annotations

import html
from decimal import Decimal
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from kedacore.analytics.frames import SpendData

NO_DATA = "No data for this period"
STATUS_COLORS = {
    "DELIVERED": "#2ca02c",  # green
    "UNDELIVERED": "#f0a30a",  # amber
    "FAILED": "#d62728",  # red
    "SENT": "#1f77b4",  # blue
    "QUEUED": "#9e9e9e",  # grey
}
STATUS_ORDER = ("DELIVERED", "UNDELIVERED", "FAILED", "SENT", "QUEUED")
# One colour per country, the same in every chart (Plotly's qualitative palette, extended).
PALETTE = (
    "#636efa",
    "#ef553b",
    "#00cc96",
    "#ab63fa",
    "#ffa15a",
    "#19d3f3",
    "#ff6692",
    "#b6e880",
    "#ff97ff",
    "#fecb52",
)
FUNNEL_COLORS = ("#1f77b4", "#2ca02c", "#9467bd")


def _layout(fig: go.Figure, title: str, **kwargs: Any) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.0},
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        legend={"orientation": "h", "y": -0.2},
        hoverlabel={"namelength": -1},
        **kwargs,
    )
    return fig


def empty_figure(title: str, message: str = NO_DATA) -> go.Figure:
    """A figure with no data and a centred note saying so."""
    fig = go.Figure()
    fig.add_annotation(
        text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font={"size": 16}
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title)


def _label(value: Any) -> str:
    """Text from the ledger (a campaign name, a sender id) as Plotly shows it, literally.

    Plotly reads ``<a href=…>``, ``<b>``, ``<br>`` in labels and hover texts — a campaign named
    ``<a href="https://…">`` would be a live link in the chart — so ``<``, ``>`` and ``&`` go
    as entities, which it shows as the characters.
    """
    return html.escape(str(value), quote=False)


def _money_axis(currency: str | None) -> str:
    return f"Spend ({currency})" if currency and currency != "mixed" else "Spend"


def _money(values: pd.Series) -> list[float]:
    return [float(v) for v in values]


def _money_text(values: pd.Series, currency: str | None) -> list[str]:
    unit = f" {currency}" if currency and currency != "mixed" else ""
    return [f"{format(Decimal(v), 'f')}{unit}" for v in values]


def country_colors(countries: Any) -> dict[str, str]:
    """A stable colour per country code (sorted order, so charts agree with each other)."""
    return {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(sorted(set(countries)))}


def daily_spend_figure(frame: pd.DataFrame, currency: str | None = None) -> go.Figure:
    """Daily spend, stacked by country."""
    title = "Daily spend by country"
    if frame.empty or not any(frame.spend):
        return empty_figure(title)
    fig = go.Figure()
    colors = country_colors(frame.country)
    for country, part in frame.groupby("country", sort=True):
        fig.add_bar(
            x=part.day,
            y=_money(part.spend),
            name=str(country),
            marker_color=colors[str(country)],
            customdata=_money_text(part.spend, currency),
            hovertemplate="%{x|%Y-%m-%d} " + str(country) + ": %{customdata}<extra></extra>",
        )
    fig.update_xaxes(title_text="Day (UTC)")
    fig.update_yaxes(title_text=_money_axis(currency))
    return _layout(fig, title, barmode="stack")


def status_figure(frame: pd.DataFrame) -> go.Figure:
    """Messages per day, stacked by status (fixed colours per status)."""
    title = "Messages by status"
    if frame.empty:
        return empty_figure(title)
    fig = go.Figure()
    for status in STATUS_ORDER:
        part = frame[frame.status == status]
        if part.empty:
            continue
        fig.add_bar(
            x=part.day,
            y=part.messages,
            name=status,
            marker_color=STATUS_COLORS[status],
            hovertemplate="%{x|%Y-%m-%d} " + status + ": %{y:,}<extra></extra>",
        )
    fig.update_xaxes(title_text="Day (UTC)")
    fig.update_yaxes(title_text="Messages")
    return _layout(fig, title, barmode="stack")


def delivery_rate_figure(frame: pd.DataFrame) -> go.Figure:
    """Delivery rate (delivered / final) per country."""
    title = "Delivery rate by country"
    rated = frame[frame.delivery_rate.notna()] if not frame.empty else frame
    if rated.empty:
        return empty_figure(title)
    colors = country_colors(frame.country)
    fig = go.Figure(
        go.Bar(
            x=rated.country,
            y=[float(r) for r in rated.delivery_rate],
            marker_color=[colors[c] for c in rated.country],
            customdata=list(zip(rated.delivered, rated.final, strict=True)),
            hovertemplate="%{x}: %{y:.1%} (%{customdata[0]:,} of %{customdata[1]:,})"
            "<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="Country")
    fig.update_yaxes(title_text="Delivered / final", tickformat=".0%", range=[0, 1])
    return _layout(fig, title)


def latency_figure(frame: pd.DataFrame) -> go.Figure:
    """The distribution of time to delivery (histogram buckets, empty edges trimmed)."""
    title = "Time to delivery"
    if frame.empty or not frame.messages.any():
        return empty_figure(title)
    used = frame.index[frame.messages > 0]
    part = frame.loc[used.min() : used.max()]
    fig = go.Figure(
        go.Bar(
            x=part.label,
            y=part.messages,
            marker_color=STATUS_COLORS["DELIVERED"],
            customdata=[s * 100 for s in part.share],
            hovertemplate="%{x}: %{y:,} messages (%{customdata:.1f}%)<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="Sent → delivered", type="category")
    fig.update_yaxes(title_text="Delivered messages")
    return _layout(fig, title)


def spend_by_sender_figure(frame: pd.DataFrame, currency: str | None = None) -> go.Figure:
    """Spend per sender id (horizontal bars, dearest on top)."""
    return _spend_bars(frame, "label", "Spend by sender id", "Sender id", currency)


def spend_by_campaign_figure(frame: pd.DataFrame, currency: str | None = None) -> go.Figure:
    """Spend per campaign (horizontal bars, dearest on top)."""
    return _spend_bars(frame, "campaign", "Spend by campaign", "Campaign", currency)


def _spend_bars(
    frame: pd.DataFrame, label: str, title: str, axis: str, currency: str | None
) -> go.Figure:
    if frame.empty or not any(frame.spend):
        return empty_figure(title)
    part = frame.iloc[::-1]  # Plotly draws the first category at the bottom
    fig = go.Figure(
        go.Bar(
            x=_money(part.spend),
            y=[_label(v) for v in part[label]],
            orientation="h",
            marker_color="#636efa",
            customdata=list(zip(_money_text(part.spend, currency), part.messages, strict=True)),
            hovertemplate="%{y}: %{customdata[0]} (%{customdata[1]:,} messages)<extra></extra>",
        )
    )
    fig.update_xaxes(title_text=_money_axis(currency))
    fig.update_yaxes(title_text=axis, type="category")
    return _layout(fig, title, height=max(300, 40 + 28 * len(part)))


def campaign_funnel_figure(frame: pd.DataFrame) -> go.Figure:
    """Sent → delivered → clicked."""
    title = "Campaign funnel"
    if frame.empty or not frame.messages.any():
        return empty_figure(title)
    fig = go.Figure(
        go.Funnel(
            y=frame.stage,
            x=frame.messages,
            textinfo="value+percent initial",
            marker={"color": list(FUNNEL_COLORS[: len(frame)])},
        )
    )
    return _layout(fig, title)


def figures(data: SpendData) -> dict[str, go.Figure]:
    """Every chart of the Spend page, by name."""
    currency = data.kpis.current.currency
    return {
        "daily_spend": daily_spend_figure(data.daily_spend, currency),
        "status_by_day": status_figure(data.status_by_day),
        "delivery_by_country": delivery_rate_figure(data.delivery_by_country),
        "latency": latency_figure(data.latency),
        "by_sender": spend_by_sender_figure(data.by_sender, currency),
        "by_campaign": spend_by_campaign_figure(data.by_campaign, currency),
        "funnel": campaign_funnel_figure(data.funnel),
    }
