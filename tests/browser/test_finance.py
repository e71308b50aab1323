"""Finance in Chromium: a cap changed on Limits refuses the next send on Send; Spend draws charts.

Screenshots go to test-artifacts/ (finance-*.png); look at them after a change to a page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kedacore.words import counted

from .conftest import Console, after_run, screenshot, wait_ready

pytestmark = pytest.mark.browser


def key(name: str) -> str:
    """The container Streamlit gives a widget with ``key=name``."""
    return f".st-key-{name}"


def open_page(page, console: Console, path: str, title: str) -> None:
    page.goto(f"{console.url}/{path}")
    wait_ready(page)
    page.get_by_role("heading", name=title, exact=True).wait_for()


def no_traceback(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Traceback" not in page.content()


def compose(page, numbers: str, text: str) -> None:
    """Fill the Send page's form and wait for the run that read it."""
    count = len([n for n in numbers.splitlines() if n.strip()])
    box = page.locator(f"{key('send_numbers')} textarea")
    box.fill(numbers)
    box.press("Control+Enter")
    # Wait for the rerun that read these values, not just any finished run: a click on a
    # page still drawn from the previous values would confirm the previous send.
    page.get_by_text(counted(count, "valid recipient")).wait_for()
    content = page.locator(f"{key('send_content')} textarea")
    content.fill(text)
    content.press("Control+Enter")
    characters = page.locator('[data-testid="stMetric"]').filter(has_text="Characters")
    characters.get_by_text(f"{len(text):,}", exact=True).wait_for()
    wait_ready(page)


def send(page, numbers: str, text: str) -> None:
    """Compose on the Send page and confirm."""
    count = len([n for n in numbers.splitlines() if n.strip()])
    compose(page, numbers, text)
    page.locator(f"{key('send_submit')} button").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(counted(count, "recipient")).wait_for()
    dialog.locator(f"{key('send_confirm')} button").click()
    wait_ready(page)


def test_a_cap_changed_on_limits_refuses_the_next_send(console: Console, page) -> None:
    open_page(page, console, "limits", "Limits")
    page.get_by_text("No cap", exact=True).wait_for()  # the alert state: no cap set yet
    sms = page.locator(f"{key('limits_sms_cap')} input")
    sms.fill("1")
    page.locator(f"{key('limits_block')} label").click()
    page.locator(f"{key('limits_review')} button").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("1 message", exact=True).wait_for()  # old → new, in a table
    assert dialog.get_by_text("no cap").first.is_visible()
    screenshot(page, "finance-limits-confirm")
    dialog.locator(f"{key('limits_confirm')} button").click()
    page.get_by_text(re.compile("Caps changed by .+")).wait_for()
    wait_ready(page)
    page.get_by_role("heading", name="Who changed what").wait_for()
    page.locator('[data-testid="stDataFrame"]').first.wait_for()  # the audit trail
    no_traceback(page)
    screenshot(page, "finance-limits-changed")

    # Two messages against a cap of one: the Send page says before sending that KedaSMS
    # will refuse the whole send, with today's figures, and does not offer Send.
    open_page(page, console, "", "Send")
    compose(page, "+12015550123\n+12015550124", "Two messages over a cap of one")
    refused = page.locator('[data-testid="stAlert"]').filter(has_text="will refuse this send")
    refused.wait_for()
    assert "today's SMS cap (0 of 1 sent, 1 left)" in refused.inner_text()
    assert page.locator(f"{key('send_submit')} button").is_disabled()
    no_traceback(page)
    screenshot(page, "finance-send-refused")

    # One message reaches the cap exactly; then every page says that sending is blocked.
    send(page, "+12015550125", "Exactly at the cap")
    page.get_by_text(re.compile(r"Sent — task \d{8}-\d{4}")).wait_for()
    page.get_by_text("Sending is blocked:").wait_for()
    open_page(page, console, "status", "Status")
    assert page.get_by_text("Sending is blocked:").is_visible()
    open_page(page, console, "limits", "Limits")
    page.get_by_text("Blocked", exact=True).wait_for()  # the state beside the gauges
    no_traceback(page)
    screenshot(page, "finance-limits-blocked")


def test_spend_loads_demo_history_and_draws_its_charts(console: Console, page) -> None:
    open_page(page, console, "spend", "Spend")
    messages = page.locator(f"{key('spend_demo_messages')} input")
    if not messages.is_visible():  # open on an empty ledger, folded once something was sent
        page.get_by_text("Load demo history (sandbox)").click()
    messages.fill("20000")
    after_run(page, lambda: messages.press("Enter"))
    page.locator(f"{key('spend_demo_load')} button").click()
    page.get_by_text(re.compile("Loaded demo history")).wait_for(timeout=60_000)
    wait_ready(page)
    page.get_by_text("Demo data:").wait_for()
    charts = page.locator('[data-testid="stPlotlyChart"]')
    charts.nth(6).wait_for()
    assert charts.count() == 7
    # Plotly has drawn its bars (an SVG per chart, not only an empty frame).
    page.locator(".stPlotlyChart .main-svg").first.wait_for()
    page.wait_for_timeout(500)
    no_traceback(page)
    screenshot(page, "finance-spend")

    # An export is built on click: exact decimals, UTC days.
    with page.expect_download() as download:
        page.locator(f"{key('spend_csv_daily_spend')} button").click()
    text = Path(download.value.path()).read_text()
    header, first = text.splitlines()[:2]
    assert header == "day,country,messages,spend,pending"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2},[A-Z]{2},\d+,\d+(\.\d{1,6})?,\d+(\.\d{1,6})?", first)

    # A filter changes the figures: one country only.
    values = '[data-testid="stMain"] [data-testid="stMetricValue"]'
    before = page.locator(values).first.inner_text()
    countries = page.locator(f"{key('spend_countries')} input")
    countries.scroll_into_view_if_needed()
    countries.click()
    countries.fill("US")
    page.get_by_role("option", name="US", exact=True).click()
    page.keyboard.press("Escape")
    wait_ready(page)
    page.wait_for_function(
        "([sel, before]) => document.querySelector(sel).innerText !== before", arg=[values, before]
    )
    no_traceback(page)

    page.locator(f"{key('spend_demo_remove')} button").click()
    page.get_by_text(re.compile(r"Removed [\d,]+ demo messages")).wait_for()
    wait_ready(page)
    assert page.get_by_text("Demo data:").count() == 0
    no_traceback(page)
