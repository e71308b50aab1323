"""A hurried double click on a button that spends money spends it once.

Streamlit keeps a button clickable while the run its first click started is still going: the
second click asks for another run with the button pressed again. Both confirmations (a send, a
campaign) must come out of that with one send, one campaign, one charge.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from .conftest import Console, wait_ready
from .test_campaigns import compose
from .test_console import key, no_traceback, open_page

pytestmark = pytest.mark.browser


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchone()[0]


def click_twice(button) -> None:
    """A double click, then one more while the first click's run may still be going."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    button.dblclick()
    with contextlib.suppress(PlaywrightTimeoutError):  # the dialog may have closed already
        button.click(timeout=1_000)


def confirm_twice(page, form: str, asked: str, done: str) -> None:
    """The form's button, then its confirmation clicked twice (and once more); wait for what
    it did, with room for a second one, were there one."""
    page.locator(f"{key(f'{form}_submit')} button").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(asked).wait_for()
    click_twice(dialog.locator(f"{key(f'{form}_confirm')} button"))
    page.get_by_text(done).wait_for(timeout=60_000)
    page.wait_for_timeout(2000)
    wait_ready(page)
    no_traceback(page)


def test_a_double_click_on_confirm_and_send_sends_once(console: Console, page) -> None:
    gateway = console.data_dir / "gateway.db"
    open_page(page, console, "")
    before = count(gateway, "SELECT count(*) FROM messages")
    numbers = page.locator(f"{key('send_numbers')} textarea")
    numbers.fill("+12015550123\n+12015550124")
    numbers.press("Control+Enter")
    page.get_by_text("2 valid recipients").wait_for()
    content = page.locator(f"{key('send_content')} textarea")
    content.fill("Your code is 123456.")
    content.press("Control+Enter")
    page.get_by_text("0.10 USD", exact=True).first.wait_for()
    wait_ready(page)
    confirm_twice(page, "send", "Estimated cost", "Sent — task")
    assert count(gateway, "SELECT count(*) FROM messages") - before == 2
    assert page.get_by_text("99.90 USD").first.is_visible()  # the sidebar: charged once


def test_a_double_click_on_confirm_makes_one_campaign(console: Console, page) -> None:
    gateway = console.data_dir / "gateway.db"
    before = count(gateway, "SELECT count(*) FROM messages")
    compose(page, console, "Twice clicked", "Hi {name}, code {code}.")
    page.get_by_text("9.60 USD", exact=True).first.wait_for()
    wait_ready(page)
    confirm_twice(page, "campaigns", "Total cost", "All 200 recipients sent")
    campaigns = count(console.data_dir / "ledger.db", "SELECT count(*) FROM campaigns")
    assert (campaigns, count(gateway, "SELECT count(*) FROM messages") - before) == (1, 200)
