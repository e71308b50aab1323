"""Plotly figures for the Spend page, one plain function per chart (frames in, go.Figure out).

Empty state: a frame with no data gives a figure with no traces and a centred
"No data for this period" annotation (never None), so a page can always draw what it gets.
Money is plotted as float (a chart has no use for the sixth decimal) but every hover text is
the exact decimal; money and counts have their thousands grouped (``43,195.156``). A daily axis
shows days, whatever the number of days. Each country has one colour in every chart: the
figures take the mapping of every country the ledger knows (``country_colors``).
"""

from __future__ import annotations

import colorsys
import html
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
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
# One colour per country, the same in every chart: 20 colours far apart to the eye (ΔE*ab ≥ 24
# between any two; D3's category10 first, without its grey), then generated ones.
PALETTE = (
    "#1f77b4",  # blue
    "#ff7f0e",  # orange
    "#2ca02c",  # green
    "#d62728",  # red
    "#9467bd",  # purple
    "#8c564b",  # brown
    "#e377c2",  # pink
    "#bcbd22",  # olive yellow
    "#17becf",  # cyan
    "#b68100",  # ochre
    "#1616a7",  # navy
    "#f8a19f",  # salmon
    "#00a08b",  # teal
    "#b00068",  # raspberry
    "#98df8a",  # light green
    "#6c7c32",  # olive
    "#fb00d1",  # magenta
    "#aec7e8",  # light blue
    "#3283fe",  # azure
    "#c2b280",  # sand
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


COUNT_TICKS = ",d"  # 1,500 (not 1.5k)
MONEY_TICKS = ",~f"  # 1,500 and 0.25
DAY_MS = 86_400_000
DAY_TICKS = "%b %-d"  # Mar 7: a day, never a time of day


def _money(values: pd.Series) -> list[float]:
    return [float(v) for v in values]


def _money_text(values: pd.Series, currency: str | None) -> list[str]:
    unit = f" {currency}" if currency and currency != "mixed" else ""
    return [f"{format(Decimal(v), ',f')}{unit}" for v in values]


def _extra_color(index: int) -> str:
    """A colour past the palette: hues a golden angle apart, at two lightnesses."""
    hue = (index * 0.618033988749895) % 1.0
    light = 0.42 if index % 2 else 0.58
    r, g, b = colorsys.hls_to_rgb(hue, light, 0.75)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def country_colors(countries: Iterable[Any]) -> dict[str, str]:
    """One colour per country code, none shared: the palette in the codes' sorted order.

    Give it every country the charts may show (the ledger's, ``filter_options().countries``)
    and pass the mapping to each figure: a country keeps its colour in every chart and under
    any filter.
    """
    colors: dict[str, str] = {}
    used: set[str] = set()
    extra = 0
    for i, country in enumerate(sorted({str(c) for c in countries})):
        color = PALETTE[i] if i < len(PALETTE) else ""
        while not color or color in used:
            color, extra = _extra_color(extra), extra + 1
        colors[country] = color
        used.add(color)
    return colors


def _colors_for(frame: pd.DataFrame, colors: Mapping[str, str] | None) -> Mapping[str, str]:
    """The mapping given, completed for any country it lacks (never a KeyError)."""
    if colors is None:
        return country_colors(frame.country)
    missing = set(frame.country.astype(str)) - set(colors)
    if not missing:
        return colors
    return {**country_colors([*colors, *missing]), **colors}


def _as_day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()


def _day_axis(fig: go.Figure, days: Iterable[Any]) -> None:
    """A date axis of whole days: ticks on days (one day too), bars a day wide.

    Plotly picks ticks from the data's span: one day of data spans nothing, and the axis read
    "23:59:59.9996 … 00:00:00.0002". The range is the days with half a day each side.
    """
    seen = sorted({_as_day(d) for d in days})
    first, last = seen[0], seen[-1]
    count = (last - first).days + 1
    step = 1 if count <= 8 else 2 if count <= 16 else 7 * -(-count // 56)
    half = timedelta(hours=12)
    fig.update_traces(width=DAY_MS * 0.8)
    fig.update_xaxes(
        type="date",
        tickformat=DAY_TICKS,
        tick0=first.isoformat(),
        dtick=step * DAY_MS,
        range=[
            (datetime.combine(first, time()) - half).isoformat(),
            (datetime.combine(last, time()) + half).isoformat(),
        ],
        title_text="Day (UTC)",
    )


def daily_spend_figure(
    frame: pd.DataFrame, currency: str | None = None, *, colors: Mapping[str, str] | None = None
) -> go.Figure:
    """Daily spend, stacked by country (``colors``: country → colour, see country_colors)."""
    title = "Daily spend by country"
    if frame.empty or not any(frame.spend):
        return empty_figure(title)
    fig = go.Figure()
    colors = _colors_for(frame, colors)
    for country, part in frame.groupby("country", sort=True):
        fig.add_bar(
            x=part.day,
            y=_money(part.spend),
            name=str(country),
            marker_color=colors[str(country)],
            customdata=_money_text(part.spend, currency),
            hovertemplate="%{x|%Y-%m-%d} " + str(country) + ": %{customdata}<extra></extra>",
        )
    _day_axis(fig, frame.day)
    fig.update_yaxes(title_text=_money_axis(currency), tickformat=MONEY_TICKS)
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
    _day_axis(fig, frame.day)
    fig.update_yaxes(title_text="Messages", tickformat=COUNT_TICKS)
    return _layout(fig, title, barmode="stack")


def delivery_rate_figure(
    frame: pd.DataFrame, *, colors: Mapping[str, str] | None = None
) -> go.Figure:
    """Delivery rate (delivered / final) per country (``colors`` as for daily_spend_figure)."""
    title = "Delivery rate by country"
    rated = frame[frame.delivery_rate.notna()] if not frame.empty else frame
    if rated.empty:
        return empty_figure(title)
    colors = _colors_for(frame, colors)
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
    fig.update_yaxes(title_text="Delivered messages", tickformat=COUNT_TICKS)
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
    fig.update_xaxes(title_text=_money_axis(currency), tickformat=MONEY_TICKS)
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
            # The exact count ("17,222", not "17.2k") and the share of those sent.
            texttemplate="%{value:,}<br>%{percentInitial:.1%}",
            hovertemplate="%{y}: %{value:,} (%{percentInitial:.1%} of sent)<extra></extra>",
            marker={"color": list(FUNNEL_COLORS[: len(frame)])},
        )
    )
    return _layout(fig, title)


def figures(data: SpendData, colors: Mapping[str, str] | None = None) -> dict[str, go.Figure]:
    """Every chart of the Spend page, by name.

    ``colors``: country → colour (``country_colors`` of every country the ledger knows, so
    that a filter does not recolour them); by default, of the countries in ``data``.
    """
    currency = data.kpis.current.currency
    if colors is None:
        colors = country_colors([*data.daily_spend.country, *data.delivery_by_country.country])
    return {
        "daily_spend": daily_spend_figure(data.daily_spend, currency, colors=colors),
        "status_by_day": status_figure(data.status_by_day),
        "delivery_by_country": delivery_rate_figure(data.delivery_by_country, colors=colors),
        "latency": latency_figure(data.latency),
        "by_sender": spend_by_sender_figure(data.by_sender, currency),
        "by_campaign": spend_by_campaign_figure(data.by_campaign, currency),
        "funnel": campaign_funnel_figure(data.funnel),
    }
