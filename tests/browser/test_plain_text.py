"""User text in Chromium: a campaign and a short link named with Markdown links, an image and
bare URLs show as the text typed — no ``<a href>``, no ``<img src>`` and no request to the
address in it, on any page.

Screenshots (test-artifacts/): the campaign list, the short links and the Spend page with the
hostile names on them.
"""

from __future__ import annotations

import re

import pytest

from console.views import WORD_JOINER

from .conftest import Console, after_run, screenshot, wait_ready
from .test_console import PAGES, key, no_traceback, open_page

pytestmark = pytest.mark.browser

HOSTILE = (
    "[click](https://evil.example) ![x](https://evil.example/i.png) https://evil.example "
    '**bold** www.evil.example/w x@evil.example <a href="https://evil.example/a">a</a>'
)
EVIL = re.compile(r"^[a-z]+://([^/]*\.)?evil\.example([:/]|$)")
LINKS_OR_IMAGES = """() => [...document.querySelectorAll('a, img, image, [src], [href]')]
    .map(e => e.getAttribute('href') || e.getAttribute('src') || e.getAttribute('xlink:href')
              || '')
    .filter(u => u.includes('evil.example'))"""


def visible_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text().replace(WORD_JOINER, "")


def no_live_user_text(page, requests: list[str], where: str) -> None:
    no_traceback(page)
    assert page.evaluate(LINKS_OR_IMAGES) == [], where
    assert requests == [], where


def test_hostile_names_show_as_text_and_nothing_is_fetched(console: Console, page) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if EVIL.match(r.url) else None)
    page.route(EVIL, lambda route: route.abort())  # nothing leaves the machine, even so

    # A campaign named with hostile text, sent to its end.
    open_page(page, console, "campaigns")
    name = page.locator(f"{key('campaigns_name')} input")
    name.fill(HOSTILE)
    after_run(page, lambda: name.press("Enter"))
    page.locator(f"{key('campaigns_file')} input[type=file]").set_input_files(
        {
            "name": "recipients.csv",
            "mimeType": "text/csv",
            "buffer": b"phone,name\n+12064000001,Ann\n+12064000002,Bo\n",
        }
    )
    page.get_by_text("2 row(s) read").wait_for()
    template = page.locator(f"{key('campaigns_template')} textarea")
    template.fill("Hi {name}")
    template.press("Control+Enter")
    page.get_by_text("All 2 rows can be sent").wait_for()
    wait_ready(page)
    page.locator(f"{key('campaigns_submit')} button").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Total cost").wait_for()
    no_live_user_text(page, requests, "confirm dialog")
    assert HOSTILE in dialog.inner_text().replace(WORD_JOINER, "")  # as typed
    dialog.locator(f"{key('campaigns_confirm')} button").click()
    page.get_by_text("All 2 recipients sent").wait_for(timeout=30_000)
    page.get_by_text(re.compile(r"DELIVERED\s*2")).wait_for(timeout=30_000)
    wait_ready(page)
    no_live_user_text(page, requests, "campaign list")
    assert f"#1 {HOSTILE}" in visible_text(page)  # the heading: the name as typed
    # The tables offer no "Download as CSV" of raw cells (client.disableDataExport).
    page.locator('[data-testid="stDataFrame"]').last.hover()
    page.locator('[data-testid="stElementToolbar"]').last.wait_for()
    assert page.get_by_role("button", name="Download as CSV").count() == 0
    screenshot(page, "plain-text-campaigns")

    # A short link titled with hostile text, to an address on the same host.
    open_page(page, console, "links")
    page.locator(f"{key('links_url')} input").fill("https://evil.example/landing")
    page.locator(f"{key('links_title')} input").fill(HOSTILE)
    page.locator(f"{key('links_create')} button").click()
    page.get_by_text("Short link created").wait_for()
    wait_ready(page)
    page.locator('[data-testid="stDataFrame"]').wait_for()
    page.locator(key("links_copy")).wait_for()
    page.wait_for_timeout(500)  # the table draws its cells on a canvas after it appears
    no_live_user_text(page, requests, "short links")
    screenshot(page, "plain-text-links")

    # Every page, the Spend charts naming the campaign included.
    for path in PAGES:
        open_page(page, console, path)
        if path == "spend":  # the campaign chart names it (and Plotly reads <a href> in labels)
            page.get_by_text("Spend by campaign").wait_for()
            page.wait_for_timeout(500)  # let Plotly finish drawing its labels
            screenshot(page, "plain-text-spend")
        no_live_user_text(page, requests, path or "send")
