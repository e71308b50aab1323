"""A campaign's click report, in its detail on the Campaigns page (docs/audiences.md).

Shown for a campaign sent with *Track clicks* (or one with clicks, as demo history has):
messages delivered, recipients who clicked, the click-through rate (clicked / delivered, from
the exact fraction), total clicks, clicks over time in the member's zone, clicks by link when
the campaign had several, and who clicked. Who clicked is personal data about what a person
did: it is drawn, and exported, only for members who hold ``links`` (tracked links and their
clicks: admin and marketing) — an approver who opens Campaigns (finance) sees the figures only.
The export is checked again at its click (``console.access.guarded``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from console.access import guarded
from console.messaging import campaigns as cv
from console.shell import Console
from console.views import local_time
from kedacore.analytics.charts import COUNT_TICKS
from kedacore.exports import to_csv
from kedacore.ledger.campaign_snapshot import CampaignFigures
from kedacore.ledger.clicks import Clicker, ClickTotals, LinkClicks
from kedacore.team import Permission, roles_needed

CLICKERS_SHOWN = 500  # rows of the who-clicked table; the CSV has them all
HOURLY_UP_TO = 48 * 3600  # clicks spread over two days or less: by hour, else by day


# -- plain functions ---------------------------------------------------------------------------


def rate_text(rate: Fraction | None) -> str:
    """``66.7%``: the exact fraction as a percentage rounded half up to one decimal; ``—``."""
    if rate is None:
        return "—"
    tenths = (rate.numerator * 2000 + rate.denominator) // (2 * rate.denominator)
    return f"{tenths // 10:,}.{tenths % 10}%"


def over_time_frame(slots: Sequence[tuple[datetime, int]], tz: ZoneInfo) -> pd.DataFrame:
    """Clicks by local hour (two days or less of clicks) or by local day: ``When``, ``Clicks``."""
    if not slots:
        return pd.DataFrame({"When": [], "Clicks": []})
    local = [(at.astimezone(tz), n) for at, n in slots]
    hourly = (slots[-1][0] - slots[0][0]).total_seconds() <= HOURLY_UP_TO
    sums: dict[datetime, int] = {}
    for at, n in local:
        key = at.replace(minute=0, second=0) if hourly else at.replace(hour=0, minute=0, second=0)
        key = key.replace(tzinfo=None)  # the member's wall clock, as the axis shows it
        sums[key] = sums.get(key, 0) + n
    return pd.DataFrame({"When": list(sums), "Clicks": list(sums.values())})


def over_time_figure(frame: pd.DataFrame, zone_name: str) -> go.Figure:
    """Bars of clicks per hour or day, the time axis in the member's zone."""
    fig = go.Figure(go.Bar(x=frame["When"], y=frame["Clicks"], name="Clicks"))
    fig.update_layout(
        title={"text": f"Clicks over time ({zone_name})", "x": 0.0},
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        height=300,
    )
    fig.update_yaxes(title="Clicks", tickformat=COUNT_TICKS, rangemode="tozero")
    return fig


def links_frame(links: Sequence[LinkClicks]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Link": [link.url for link in links],
            "Clicks": [link.clicks for link in links],
            "Recipients": [link.recipients for link in links],
        }
    )


def clickers_frame(clickers: Sequence[Clicker], tz: ZoneInfo) -> pd.DataFrame:
    """Who clicked as the page shows it: the last click in the member's zone."""
    return pd.DataFrame(
        {
            "Recipient": [c.recipient for c in clickers],
            "Clicks": [c.clicks for c in clickers],
            "Last click": [local_time(c.last_click_at, tz) for c in clickers],
        }
    )


def clickers_to_csv(clickers: Sequence[Clicker]) -> bytes:
    """Who clicked as CSV: formula-safe cells, times in UTC."""
    frame = pd.DataFrame(
        {
            "recipient": [c.recipient for c in clickers],
            "clicks": [c.clicks for c in clickers],
            "last_click_utc": [c.last_click_at for c in clickers],
        }
    )
    return to_csv(frame)


def timed_note(totals: ClickTotals) -> str:
    """Why the chart and the links may count fewer clicks than the total, when they do."""
    if totals.timed >= totals.clicks:
        return ""
    return (
        f"The chart and the links cover {totals.timed:,} of {totals.clicks:,} clicks: the ledger "
        "keeps a click's time and link only from its click callback, and the others were "
        "counted without one (demo history, or callbacks off)."
    )


# -- the view ----------------------------------------------------------------------------------


def click_report(console: Console, figures: CampaignFigures) -> None:
    """The *Clicks* part of a campaign's detail, when it tracked links or has clicks."""
    ledger = console.ledger
    tracked = cv.options_of(ledger, console.settings.data_dir, figures.campaign).track_click
    if not tracked and not figures.demo:  # no link was tracked: no click to read
        return
    totals = ledger.click_totals(figures.id)
    if not tracked and not totals.clicks:
        return
    st.markdown("##### Clicks")
    a, b, c, d = st.columns(4)
    a.metric("Delivered", f"{totals.delivered:,}")
    b.metric("Clicked", f"{totals.clicked:,}", help="Recipients who clicked at least once")
    c.metric("Click-through rate", rate_text(totals.rate), help="Clicked / delivered")
    d.metric("Total clicks", f"{totals.clicks:,}", help="Every click, a recipient's again too")
    if not totals.clicks:
        st.caption("No click yet.")
        return
    note = timed_note(totals)
    frame = over_time_frame(ledger.clicks_over_time(figures.id), console.tz)
    if len(frame):
        st.plotly_chart(
            over_time_figure(frame, str(console.tz)),
            key="campaigns_clicks_chart",
            config={"displaylogo": False},
        )
    links = ledger.clicks_by_link(figures.id) if totals.timed else []
    if len(links) > 1:
        st.dataframe(links_frame(links), hide_index=True, width="stretch", key="campaigns_links")
    if note:
        st.caption(note)
    who_clicked(console, figures)


def who_clicked(console: Console, figures: CampaignFigures) -> None:
    """The recipients who clicked, and their CSV, for members who hold ``links``."""
    if not console.actor.can(Permission.LINKS):
        roles = ", ".join(roles_needed(Permission.LINKS))
        st.caption(f"Who clicked is shown to members who may see links' clicks ({roles}).")
        return
    ledger = console.ledger
    shown = ledger.who_clicked(figures.id, limit=CLICKERS_SHOWN)
    st.dataframe(
        clickers_frame(shown, console.tz),
        hide_index=True,
        width="stretch",
        height=250,
        key="campaigns_clickers",
    )
    left, right = st.columns([3, 1], vertical_alignment="center")
    more = f"The {len(shown):,} latest. " if len(shown) == CLICKERS_SHOWN else ""
    left.caption(f"{more}The CSV has everyone who clicked, with UTC times.")
    right.download_button(
        "Export who clicked (CSV)",
        guarded(
            ledger,
            Permission.LINKS,
            "export who clicked a campaign's links",
            lambda: clickers_to_csv(ledger.who_clicked(figures.id)),
            target=f"campaign {figures.id}",
        ),
        file_name=f"campaign-{figures.number}{'-demo' if figures.demo else ''}-clicks.csv",
        mime="text/csv",
        on_click="ignore",
        icon=":material/download:",
        key="campaigns_clicks_export",
        width="stretch",
    )
