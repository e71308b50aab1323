"""The Campaigns page in Chromium: a 200-recipient CSV uploaded, checked and sent to the end.

Screenshots (test-artifacts/): the checked file before confirming, the confirmation, and the
finished campaign with its delivery reports.
"""

from __future__ import annotations

import re
import sqlite3
import time

import pytest

from .conftest import Console, after_run, screenshot, wait_ready
from .test_console import key, no_traceback, open_page

pytestmark = pytest.mark.browser

NAMES = ("Ana", "Ben", "Chloé", "Dev", "Emma")


def recipients_csv() -> bytes:
    """200 recipients (120 US, 80 GB, national and E.164 mixed) and one bad row at the end."""
    lines = ["phone,name,country,code"]
    for i in range(200):
        name = NAMES[i % len(NAMES)]
        if i % 5 < 3:
            phone = f"+1206{3_000_000 + i:07d}" if i % 2 else f"206{3_000_000 + i:07d}"
            lines.append(f"{phone},{name},US,SPRING")
        else:
            lines.append(f"+4474{10_000_000 + i:08d},{name},GB,PRINTEMPS")
    lines.append("555,Zed,US,SPRING")
    return ("\n".join(lines) + "\n").encode()


def compose(page, console: Console, name: str, text: str) -> None:
    """New campaign: its name, the 200-recipient file (and its bad row), the template."""
    open_page(page, console, "campaigns")
    box = page.locator(f"{key('campaigns_name')} input")
    box.fill(name)
    after_run(page, lambda: box.press("Enter"))
    page.locator(f"{key('campaigns_file')} input[type=file]").set_input_files(
        {"name": "spring.csv", "mimeType": "text/csv", "buffer": recipients_csv()}
    )
    page.get_by_text("201 row(s) read").wait_for()
    template = page.locator(f"{key('campaigns_template')} textarea")
    template.fill(text)
    template.press("Control+Enter")


def test_a_200_recipient_csv_campaign_runs_to_completion(console: Console, page) -> None:
    compose(
        page,
        console,
        "Spring sale",
        "Hi {name}, 20% off this week with code {code}. Reply STOP to opt out.",
    )
    page.get_by_text("1 row(s) will not be sent").wait_for()
    # 120 × 0.05 + 80 × 0.045 USD, one segment each: drawn by the run that read the template.
    page.get_by_text("9.60 USD", exact=True).first.wait_for()
    wait_ready(page)
    no_traceback(page)
    screenshot(page, "campaigns-checked")

    started = time.monotonic()
    page.locator(f"{key('campaigns_submit')} button").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Total cost").wait_for()
    screenshot(page, "campaigns-confirm")
    dialog.locator(f"{key('campaigns_confirm')} button").click()

    # The page turns to the campaign and follows it live until every request is sent.
    page.get_by_text("200 / 200").first.wait_for(timeout=30_000)
    page.get_by_text("All 200 recipients sent").wait_for(timeout=30_000)
    sent_in = time.monotonic() - started
    # Delivery reports arrive through the console's receiver (deterministic sandbox: ~1.5 s).
    page.get_by_text(re.compile(r"DELIVERED\s*200")).wait_for(timeout=30_000)
    wait_ready(page)
    no_traceback(page)
    assert page.get_by_text("90.40 USD").first.is_visible()  # the sidebar: 100 − 9.60
    screenshot(page, "campaigns-done")
    assert sent_in < 60, f"200 recipients took {sent_in:.1f} s to send"

    with sqlite3.connect(f"file:{console.data_dir / 'gateway.db'}?mode=ro", uri=True) as db:
        count, distinct = db.execute(
            "SELECT count(*), count(DISTINCT recipient) FROM messages"
        ).fetchone()
    assert (count, distinct) == (200, 200)


def test_a_quick_pause_is_heard_and_the_page_says_where_it_stopped(console: Console, page) -> None:
    """The finding: Pause clicked about a second after Confirm on a 2,000-row campaign did
    nothing — it kept sending, Pause still shown, no feedback; only a second click worked."""
    lines = ["phone,name,code"] + [f"+1206{5_000_000 + i:07d},N{i},C{i}" for i in range(2_000)]
    open_page(page, console, "campaigns")
    name = page.locator(f"{key('campaigns_name')} input")
    name.fill("Quick pause")
    after_run(page, lambda: name.press("Enter"))
    page.locator(f"{key('campaigns_file')} input[type=file]").set_input_files(
        {"name": "big.csv", "mimeType": "text/csv", "buffer": ("\n".join(lines) + "\n").encode()}
    )
    page.get_by_text("2,000 row(s) read").wait_for()
    template = page.locator(f"{key('campaigns_template')} textarea")
    template.fill("Hi {name}, your code {code}")
    template.press("Control+Enter")
    page.get_by_text("All 2,000 rows can be sent").wait_for()
    wait_ready(page)
    page.locator(f"{key('campaigns_submit')} button").click()
    page.get_by_role("dialog").locator(f"{key('campaigns_confirm')} button").click()

    pause = page.locator(f"{key('campaigns_stop')} button")
    pause.wait_for()
    page.wait_for_timeout(250)  # "about one second after Confirm": the first tick is yet to come
    pause.click()
    # Heard at once: "Pausing…" until the engine confirms, then where it stopped.
    # (plain() puts a word joiner after the colon: no link can start there.)
    said = re.compile(r"Paused at your request:\W*[\d,]+ of 2,000 recipients")
    stopped = page.get_by_text(said).first
    stopped.wait_for(timeout=8_000)
    wait_ready(page)
    no_traceback(page)
    assert page.locator(f"{key('campaigns_stop')} button").count() == 0
    assert page.locator(f"{key('campaigns_resume')} button").is_visible()
    sent = int(re.search(r"([\d,]+) of 2,000", stopped.inner_text()).group(1).replace(",", ""))
    assert sent < 1_000, f"{sent} of 2,000 sent before the pause took effect"
    screenshot(page, "campaigns-paused")
    with sqlite3.connect(f"file:{console.data_dir / 'gateway.db'}?mode=ro", uri=True) as db:
        time.sleep(2)  # nothing more goes out once paused
        (count,) = db.execute(
            "SELECT count(*) FROM messages WHERE recipient LIKE '+12065%'"
        ).fetchone()
    assert count == sent
