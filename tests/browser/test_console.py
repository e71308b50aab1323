"""The console in Chromium: send a message, follow it to DELIVERED, screenshot every page.

Screenshots go to test-artifacts/ (see conftest.py); look at them after a change to a page.
"""

from __future__ import annotations

import re

import httpx
import pytest

from .conftest import Console, screenshot, wait_ready

pytestmark = pytest.mark.browser

PAGES = {
    "": "Send",  # the default page lives at the root
    "campaigns": "Campaigns",
    "status": "Status",
    "links": "Short links",
    "spend": "Spend",
    "limits": "Limits",
    "settings": "Settings",
}


def key(name: str) -> str:
    """The container Streamlit gives a widget with ``key=name``."""
    return f".st-key-{name}"


def open_page(page, console: Console, path: str) -> None:
    page.goto(f"{console.url}/{path}")
    wait_ready(page)
    page.get_by_role("heading", name=PAGES[path], exact=True).wait_for()


def no_traceback(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Traceback" not in page.content()


def test_send_one_message_and_see_it_delivered(console: Console, page) -> None:
    open_page(page, console, "")
    assert page.get_by_text("no real SMS is sent").is_visible()
    numbers = page.locator(f"{key('send_numbers')} textarea")
    numbers.fill("+12015550123")
    numbers.press("Control+Enter")
    page.get_by_text("1 valid recipient").wait_for()
    content = page.locator(f"{key('send_content')} textarea")
    content.fill("Your code is 123456. Welcome to KedaSMS!")
    content.press("Control+Enter")
    page.get_by_text("0.05 USD", exact=True).wait_for()
    screenshot(page, "send-composed")

    page.locator(f"{key('send_submit')} button").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Estimated cost").wait_for()
    screenshot(page, "send-confirm")
    dialog.locator(f"{key('send_confirm')} button").click()
    sent = page.get_by_text(re.compile(r"Sent — task \d{8}-\d{4}"))
    sent.wait_for()
    wait_ready(page)
    listing = page.locator('[data-testid="stCode"]').first.inner_text()
    msgid = re.search(r"msg_[0-9a-f]{12,}", listing).group(0)
    assert page.get_by_text("99.95 USD").first.is_visible()  # the sidebar's balance
    no_traceback(page)
    screenshot(page, "send-done")

    open_page(page, console, "status")
    query = page.locator(f"{key('status_query')} input")
    query.fill(msgid)
    query.press("Enter")  # submits the search form
    page.get_by_text(msgid).first.wait_for()
    # Not final at first, or already DELIVERED: the page refreshes on its own either way.
    page.get_by_role("heading", name=re.compile("DELIVERED")).wait_for(timeout=20_000)
    wait_ready(page)
    no_traceback(page)
    screenshot(page, "status-delivered")


def test_bad_numbers_and_ucs2_are_explained_before_sending(console: Console, page) -> None:
    open_page(page, console, "")
    numbers = page.locator(f"{key('send_numbers')} textarea")
    numbers.fill("12345\n+8613800138000\n2015550123")
    numbers.press("Control+Enter")
    page.get_by_text("belongs to CN, not US").wait_for()
    content = page.locator(f"{key('send_content')} textarea")
    content.fill("Merci ! Prix : 5€ — à bientôt 😀")
    content.press("Control+Enter")
    page.get_by_text("UCS-2 because of").wait_for()
    assert page.locator(f"{key('send_submit')} button").is_disabled()
    no_traceback(page)
    screenshot(page, "send-invalid")


def test_every_page_renders(console: Console, page) -> None:
    for path in PAGES:
        open_page(page, console, path)
        no_traceback(page)
        assert page.get_by_text("no real SMS is sent").is_visible(), path
        if path == "links":  # a page with content says more than an empty one
            page.locator(f"{key('links_url')} input").fill("https://example.com/spring-offer")
            page.locator(f"{key('links_title')} input").fill("Spring offer")
            page.locator(f"{key('links_create')} button").click()
            page.get_by_text("Short link created").wait_for()
            wait_ready(page)
        if path == "settings":
            page.locator(f"{key('settings_test')} button").click()
            page.get_by_text("Everything answers.").wait_for()
            wait_ready(page)
        no_traceback(page)
        screenshot(page, f"page-{path or 'send'}")


def test_the_callback_receiver_is_served_beside_the_pages(console: Console) -> None:
    answer = httpx.post(f"{console.url}/hooks/keda/not-the-token", json={})
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
