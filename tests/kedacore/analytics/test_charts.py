"""The Spend page's figures: a daily axis shows days, a colour per country everywhere, counts
and money with thousands separators (kedacore/analytics/charts.py)."""

from __future__ import annotations

import itertools
import math
import re
from datetime import date, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from kedacore.analytics.charts import (
    PALETTE,
    campaign_funnel_figure,
    country_colors,
    daily_spend_figure,
    delivery_rate_figure,
    spend_by_sender_figure,
    status_figure,
)

DAY_MS = 86_400_000
ELEVEN = ["AE", "BR", "CN", "DE", "FR", "GB", "ID", "IN", "MX", "NG", "US"]


def spend_frame(days: list[date], countries: list[str]) -> pd.DataFrame:
    rows = [
        {
            "day": d,
            "country": c,
            "messages": 1000 + i,
            "spend": Decimal("1234.5") + i,
            "pending": Decimal(0),
        }
        for d in days
        for i, c in enumerate(countries)
    ]
    return pd.DataFrame(rows, columns=["day", "country", "messages", "spend", "pending"])


def status_frame(days: list[date]) -> pd.DataFrame:
    rows = [
        {"day": d, "status": s, "messages": 1500} for d in days for s in ("DELIVERED", "FAILED")
    ]
    return pd.DataFrame(rows)


def rate_frame(countries: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "country": countries,
            "messages": [2000] * len(countries),
            "final": [2000] * len(countries),
            "delivered": [1900] * len(countries),
            "undelivered": [60] * len(countries),
            "failed": [40] * len(countries),
            "delivery_rate": [0.95] * len(countries),
        }
    )


def _ms(value: object) -> float:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime), value
    return value.timestamp() * 1000


@pytest.mark.parametrize("days", [1, 2, 7, 90])
def test_a_daily_axis_shows_dates_whatever_the_number_of_days(days: int) -> None:
    first = date(2026, 3, 1)
    span = [first + timedelta(days=i) for i in range(days)]
    for fig in (
        daily_spend_figure(spend_frame(span, ["US", "BR"]), "USD"),
        status_figure(status_frame(span)),
    ):
        axis = fig.layout.xaxis
        assert axis.type == "date"
        # Days only: never a time of day (one day used to read "23:59:59.9996 … 00:00:00.0002").
        assert "%H" not in (axis.tickformat or "") and re.search("%-?d", axis.tickformat or "")
        assert isinstance(axis.dtick, (int, float)) and axis.dtick % DAY_MS == 0
        low, high = (_ms(v) for v in axis.range)
        assert high - low >= days * DAY_MS  # every day, whole, with half a day each side
        assert low <= _ms(datetime(2026, 3, 1)) - DAY_MS / 2
        assert {trace.width for trace in fig.data} == {DAY_MS * 0.8}  # bars a day wide


def _lab(color: str) -> tuple[float, float, float]:
    """CIE L*a*b* of an sRGB colour (D65), for a distance the eye agrees with (ΔE)."""
    rgb = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def test_the_palette_has_twenty_colours_the_eye_tells_apart() -> None:
    assert len(PALETTE) >= 20 and len(set(PALETTE)) == len(PALETTE)
    closest = min(math.dist(_lab(a), _lab(b)) for a, b in itertools.combinations(PALETTE, 2))
    assert closest >= 20  # ΔE*ab: 2.3 is "just noticeable"; US and BR were the same blue


def test_every_country_has_its_own_colour_the_same_in_every_chart() -> None:
    colors = country_colors(ELEVEN)
    assert len(set(colors.values())) == 11  # eleven countries, eleven colours
    assert colors["US"] != colors["BR"]
    # More countries than the palette: still one colour each.
    many = [f"{a}{b}" for a in "ABCDEFG" for b in "ABCDEFG"]
    assert len(set(country_colors(many).values())) == len(many)

    # The charts take the mapping of every country the ledger knows: a chart showing a few
    # countries (a filter, a day without some) keeps each one's colour.
    days = [date(2026, 3, 1), date(2026, 3, 2)]
    spend = daily_spend_figure(spend_frame(days, ["BR", "US"]), "USD", colors=colors)
    rates = delivery_rate_figure(rate_frame(["US", "NG", "BR"]), colors=colors)
    assert {t.name: t.marker.color for t in spend.data} == {"BR": colors["BR"], "US": colors["US"]}
    assert dict(zip(rates.data[0].x, rates.data[0].marker.color, strict=True)) == {
        c: colors[c] for c in ("US", "NG", "BR")
    }
    # Without a mapping a figure colours what it has the same way for the same countries.
    alone = delivery_rate_figure(rate_frame(["US", "BR"]))
    again = daily_spend_figure(spend_frame(days, ["US", "BR"]), "USD")
    assert list(alone.data[0].marker.color) == [t.marker.color for t in again.data][::-1]


def test_counts_and_money_are_shown_with_thousands_separators() -> None:
    days = [date(2026, 3, 1)]
    spend = daily_spend_figure(spend_frame(days, ["US"]), "USD")
    assert spend.data[0].customdata[0] == "1,234.5 USD"  # the exact decimal, grouped
    assert "," in (spend.layout.yaxis.tickformat or "")  # 1,500 on the axis, not 1.5k
    assert "," in (status_figure(status_frame(days)).layout.yaxis.tickformat or "")
    sender = pd.DataFrame(
        {
            "sender": ["KedaShop"],
            "label": ["KedaShop"],
            "messages": [12345],
            "segments": [12345],
            "spend": [Decimal("43195.156")],
            "pending": [Decimal(0)],
        }
    )
    bars = spend_by_sender_figure(sender, "USD")
    assert bars.data[0].customdata[0][0] == "43,195.156 USD"
    funnel = pd.DataFrame(
        {
            "stage": ["Sent", "Delivered", "Clicked"],
            "messages": [17222, 16626, 431],
            "share_of_sent": [1.0, 0.965, 0.025],
        }
    )
    fig = campaign_funnel_figure(funnel)
    # The exact count ("17,222"), not Plotly's "17.222k".
    assert fig.data[0].texttemplate and "%{value:,}" in fig.data[0].texttemplate
