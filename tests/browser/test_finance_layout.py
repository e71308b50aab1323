"""Finance pages as people see them at 1280 and 1400 px: no figure cut off, no labels on top of
each other, a daily axis of days.

The state is made through the client against the console's own sandbox: a few thousand USD of
balance, 1,580 messages sent today (79 USD) against caps of 2,025 messages and 100 USD with
the alert at 80 % (1,620 and 80: usage just under the alert), then demo history on Spend.
Screenshots: test-artifacts/finance-layout-*.png.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kedacore import KedaClient

from .conftest import ROOT, Console, after_run, screenshot, wait_ready

pytestmark = pytest.mark.browser

WIDTHS = (1280, 1400)

# Every metric's value and label in the main area: text wider than its box is cut (Streamlit
# draws "…" and hides the rest).
CUT_METRICS = """() => [...document.querySelectorAll(
    '[data-testid=stMain] [data-testid=stMetricValue],'
    + ' [data-testid=stMain] [data-testid=stMetricLabel]'
  )].map(box => {
    const text = box.querySelector('[data-testid=stMarkdownContainer]') || box;
    const range = document.createRange();
    range.selectNodeContents(text);
    let cut = range.getBoundingClientRect().width > text.getBoundingClientRect().width + 1;
    for (let el = text; el && el !== box.parentElement; el = el.parentElement) {
      if (el.scrollWidth > el.clientWidth + 1) cut = true;
    }
    return [text.textContent.trim(), cut];
  }).filter(([, cut]) => cut).map(([t]) => t)"""

# Texts of an SVG chart that overlap another text of the same chart.
OVERLAPPING_TEXTS = """(root) => {
  const boxes = [...root.querySelectorAll('svg text')]
    .filter(t => t.textContent.trim() && t.getBBox().width > 0)
    .map(t => [t.textContent.trim(), t.getBoundingClientRect()]);
  const hits = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [a, p] = boxes[i], [b, q] = boxes[j];
    const across = p.left < q.right - 1 && q.left < p.right - 1;
    if (across && p.top < q.bottom - 1 && q.top < p.bottom - 1) hits.push(a + ' / ' + b);
  }
  return hits;
}"""


def sandbox_client(console: Console) -> KedaClient:
    folder = console.data_dir
    for _ in range(100):
        if (folder / "sandbox_account.json").exists() and (folder / "sandbox_port").exists():
            break
        time.sleep(0.2)
    account = json.loads((folder / "sandbox_account.json").read_text())
    url = f"http://127.0.0.1:{(folder / 'sandbox_port').read_text().strip()}/api"
    return KedaClient(account["apiKey"], account["encryptionKey"], base_url=url, backup_url=url)


def top_up(console: Console, amount: str) -> None:
    account = json.loads((console.data_dir / "sandbox_account.json").read_text())
    db = str(console.data_dir / "gateway.db")
    command = ["-m", "gateway", "account", "topup", "--db", db, "--email", account["email"]]
    subprocess.run([sys.executable, *command, "--amount", amount], cwd=ROOT, check=True)


def open_page(page, console: Console, path: str, title: str) -> None:
    page.goto(f"{console.url}/{path}")
    wait_ready(page)
    page.get_by_role("heading", name=title, exact=True).wait_for()


def at_width(page, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 1000})
    page.wait_for_timeout(500)  # the layout settles, the charts redraw


def assert_nothing_cut(page, where: str) -> None:
    assert page.evaluate(CUT_METRICS) == [], where


@pytest.fixture(scope="module")
def usage_near_the_alert(console: Console, browser) -> Path:
    """The console started once (its sandbox account made), then today's usage and caps."""
    tab = browser.new_page()
    tab.goto(console.url)
    wait_ready(tab)
    tab.close()
    top_up(console, "1100.077")
    with sandbox_client(console) as client:
        for first, count in ((1000, 1000), (3000, 580)):
            numbers = [f"+1201555{first + i:04d}" for i in range(count)]
            client.sms.send("US", numbers, "Your code is 123456")
        client.limits.update(
            daily_sms_cap=2025, daily_spend_cap="100", alert_threshold="0.8", block_on_limit=True
        )
    return console.data_dir


def test_limits_shows_every_figure_whole_and_its_gauge_labels_apart(
    console: Console, page, usage_near_the_alert
) -> None:
    open_page(page, console, "limits", "Limits")
    for width in WIDTHS:
        at_width(page, width)
        page.get_by_text("1,580", exact=True).wait_for()
        assert_nothing_cut(page, f"Limits at {width} px")
        for gauge in ("limits_sms_gauge", "limits_spend_gauge"):
            chart = page.locator(f".st-key-{gauge}")
            chart.locator("svg text").first.wait_for()
            assert chart.evaluate(OVERLAPPING_TEXTS) == [], (gauge, width)
        texts = page.locator(".st-key-limits_sms_gauge svg text").all_text_contents()
        assert "alert 1,620" in texts and "cap 2,025" in texts
        screenshot(page, f"finance-layout-limits-{width}")


def test_spend_shows_every_kpi_whole(console: Console, page, usage_near_the_alert) -> None:
    open_page(page, console, "spend", "Spend")
    page.locator(".st-key-spend_demo_load button").click()
    page.locator(".st-key-spend_chart_daily_spend svg").first.wait_for(timeout=120_000)
    wait_ready(page)
    for width in WIDTHS:
        at_width(page, width)
        assert_nothing_cut(page, f"Spend at {width} px")
        screenshot(page, f"finance-layout-spend-{width}")


def test_one_day_of_data_gives_a_daily_axis_of_dates(
    console: Console, page, usage_near_the_alert
) -> None:
    open_page(page, console, "spend", "Spend")
    remove = page.locator(".st-key-spend_demo_remove button")
    days = page.locator(".st-key-spend_demo_days input")
    # Either is drawn once the page has read the ledger (demo history there, or none yet):
    # counting the button before that would skip the removal under load.
    remove.or_(days).first.wait_for(timeout=60_000)
    if remove.count():
        remove.click()
        page.get_by_text("Nothing to add up yet").wait_for(timeout=60_000)
        wait_ready(page)
    days.wait_for(timeout=60_000)
    days.fill("1")
    after_run(page, lambda: days.press("Enter"))
    after_run(page, page.locator(".st-key-spend_demo_load button").click)
    page.get_by_text("Loaded demo history").wait_for(timeout=120_000)
    chart = page.locator(".st-key-spend_chart_daily_spend")
    chart.locator("svg .xtick text").first.wait_for(timeout=120_000)
    wait_ready(page)
    for name in ("daily_spend", "status_by_day"):
        ticks = page.locator(f".st-key-spend_chart_{name} svg .xtick text").all_text_contents()
        assert ticks, name
        for tick in ticks:  # "Mar 1" or "2026-03-01", never "23:59:59.9996"
            assert ":" not in tick and re.search(r"\d", tick), (name, ticks)
    screenshot(page, "finance-layout-spend-one-day")
