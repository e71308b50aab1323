"""A campaign's click report on the Campaigns page, through AppTest from app.py.

The campaign (tests/kedacore/ledger/test_clicks.py ``clicked_campaign``): three delivered of four,
two recipients clicked, four clicks over two links, one callback that came twice. The page
shows the figures, the chart and the links; who clicked only to a member holding ``links``.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import pandas as pd
from streamlit.testing.v1 import AppTest

from console import runtime as _runtime
from console.messaging.campaign_clicks import clickers_to_csv, rate_text
from kedacore.ledger import Ledger
from kedacore.ledger.clicks import Clicker
from kedacore.settings import load_settings
from tests.console.test_app import metric, start
from tests.console.test_app_team import BOSS, signed_in
from tests.kedacore.ledger.test_clicks import T0, clicked_campaign

CAMPAIGNS = "pages/campaigns.py"


def book() -> Ledger:
    return _runtime.runtime(load_settings(None, os.environ)).ledger  # the page's own


def table(at: AppTest, column: str) -> pd.DataFrame | None:
    """The page's table with this column (AppTest's dataframes carry no key)."""
    return next((d.value for d in at.dataframe if column in d.value.columns), None)


def test_the_campaign_shows_its_click_figures_links_and_who_clicked(data_dir: Path) -> None:
    clicked_campaign(book())
    at = start(CAMPAIGNS)
    assert not at.exception, at.exception
    assert metric(at, "Delivered") == "3"
    assert metric(at, "Clicked") == "2"
    assert metric(at, "Click-through rate") == "66.7%"
    assert metric(at, "Total clicks") == "4"
    links = table(at, "Link")
    assert list(links["Link"]) == ["https://example.com/spring", "https://example.com/terms"]
    assert list(links["Clicks"]) == [3, 1] and list(links["Recipients"]) == [2, 1]
    who = table(at, "Last click")
    assert list(who["Recipient"]) == ["+12062000001", "+12062000002"]
    assert list(who["Clicks"]) == [3, 1]
    assert list(who["Last click"]) == ["2026-03-02 11:10:00", "2026-03-02 10:07:00"]  # UTC here
    assert "campaigns_clicks_export" in {b.key for b in at.get("download_button")}


def test_an_approver_sees_the_figures_but_not_who_clicked(data_dir: Path) -> None:
    ledger = book()
    ledger.add_member("fin@example.com", ["finance"], by=BOSS)
    clicked_campaign(ledger)
    fin = signed_in("fin@example.com").run()
    fin.switch_page(CAMPAIGNS).run()
    assert not fin.exception, fin.exception
    assert metric(fin, "Click-through rate") == "66.7%"
    assert table(fin, "Link") is not None and table(fin, "Last click") is None
    assert "campaigns_clicks_export" not in {b.key for b in fin.get("download_button")}
    assert any("Who clicked is shown to members" in c.value for c in fin.caption)


def test_a_campaign_without_tracking_or_clicks_has_no_clicks_part(data_dir: Path) -> None:
    ledger = book()
    cid = ledger.create_campaign("Plain", template="Hi", created_by="local operator")
    ledger.set_campaign_options(cid, {"track_click": False, "callback": False})
    at = start(CAMPAIGNS)
    assert not at.exception, at.exception
    assert not any(m.label == "Click-through rate" for m in at.metric)


def test_the_rate_is_rounded_half_up_from_the_exact_fraction() -> None:
    assert rate_text(Fraction(2, 3)) == "66.7%"
    assert rate_text(Fraction(1, 2000)) == "0.1%"  # 0.05 % → 0.1 %
    assert rate_text(Fraction(1, 1)) == "100.0%"
    assert rate_text(None) == "—"


def test_the_who_clicked_csv_is_formula_safe_with_utc_times() -> None:
    csv = clickers_to_csv([Clicker("=1+1", 2, T0)]).decode()
    assert csv == "recipient,clicks,last_click_utc\n'=1+1,2,2026-03-02T10:00:00Z\n"
