"""Audiences in Chromium (issue 14's walk): a contact list imported from a file, one of its
numbers opted out, a campaign to the list scheduled a minute ahead — it waits, starts at its
time by itself, leaves the opted-out number out and says so.

Screenshots (test-artifacts/): the imported list, the scheduled campaign's confirmation, the
campaign waiting, and the campaign sent.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from .conftest import Console, after_run, screenshot, wait_ready
from .test_console import key, no_traceback

pytestmark = pytest.mark.browser

NUMBERS = ("+447400100001", "+447400100002", "+447400100003")
OPTED_OUT = NUMBERS[1]


def goto(page, console: Console, path: str, title: str) -> None:
    page.goto(f"{console.url}/{path}")
    wait_ready(page)
    page.get_by_role("heading", name=title, exact=True).wait_for()


def contacts_csv() -> bytes:
    rows = ["phone,name,city"] + [
        f"{n},{name},{city}"
        for n, name, city in zip(
            NUMBERS, ("Ana", "Ben", "Cleo"), ("Leeds", "York", "Bath"), strict=True
        )
    ]
    return ("\n".join(rows) + "\n").encode()


def segments(page, widget: str, values: dict[str, str]) -> None:
    """Type into a date or time input's segments (``year``, ``month``, ``day``, ``hour``,
    ``minute``), then leave it so the value is sent."""
    for kind, value in values.items():
        page.locator(f"{key(widget)} [data-type={kind}]").click()
        page.keyboard.type(value)
    page.keyboard.press("Tab")
    wait_ready(page)
    for kind, value in values.items():
        shown = page.locator(f"{key(widget)} [data-type={kind}]").get_attribute("aria-valuenow")
        assert int(shown or -1) == int(value), (widget, kind, shown, value)


def test_a_list_campaign_scheduled_a_minute_ahead_starts_and_leaves_the_opted_out_out(
    console: Console, page
) -> None:
    # 1. The list, from a file.
    goto(page, console, "contacts", "Contacts")
    list_name = page.locator(f"{key('contacts_new_name')} input")
    list_name.fill("Yorkshire")
    after_run(page, lambda: list_name.press("Enter"))
    page.locator(f"{key('contacts_new_file')} input[type=file]").set_input_files(
        {"name": "yorkshire.csv", "mimeType": "text/csv", "buffer": contacts_csv()}
    )
    page.get_by_text("yorkshire.csv").wait_for()
    wait_ready(page)
    page.locator(f"{key('contacts_new_import')} button").click()
    page.get_by_text("3 added", exact=False).first.wait_for()
    wait_ready(page)
    no_traceback(page)
    screenshot(page, "audiences-list")

    # 2. One of its numbers opts out.
    goto(page, console, "optouts", "Opt-outs")
    page.locator(f"{key('optouts_numbers')} textarea").fill(OPTED_OUT)
    page.locator(f"{key('optouts_reason')} input").fill("Replied STOP")
    page.get_by_role("button", name="Add to the opt-out list").click()
    page.get_by_text("1 number opted out").wait_for()
    wait_ready(page)
    no_traceback(page)

    # 3. A campaign to the list, a minute ahead (UTC), quiet hours off (the test runs at any
    # hour; quiet hours across zones are the unit tests' part).
    goto(page, console, "campaigns", "Campaigns")
    name = page.locator(f"{key('campaigns_name')} input")
    name.fill("Yorkshire spring")
    after_run(page, lambda: name.press("Enter"))
    page.locator(key("campaigns_source")).get_by_text("A contact list").click()
    wait_ready(page)
    template = page.locator(f"{key('campaigns_template')} textarea")
    template.fill("Hi {name}, spring in {city}: 20% off this week.")
    template.press("Control+Enter")
    wait_ready(page)
    page.get_by_text("1 opted out, left out").first.wait_for()
    page.locator(key("campaigns_when")).get_by_text("At a time", exact=True).click()
    wait_ready(page)
    assert page.locator(f"{key('campaigns_when_zone')} input").input_value() == "UTC"
    page.locator(key("campaigns_quiet")).get_by_text("Quiet hours").click()
    wait_ready(page)
    # At least a minute ahead, and the next whole minute after that (the input's step).
    at = (datetime.now(UTC) + timedelta(seconds=75)).replace(second=0, microsecond=0)
    segments(
        page, "campaigns_when_date", {"year": f"{at:%Y}", "month": f"{at:%m}", "day": f"{at:%d}"}
    )
    segments(page, "campaigns_when_time", {"hour": f"{at:%H}", "minute": f"{at:%M}"})
    no_traceback(page)
    page.locator(f"{key('campaigns_submit')} button").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("When each part goes").wait_for()
    dialog.get_by_text("1 opted out, left out").first.wait_for()
    screenshot(page, "audiences-confirm")
    dialog.locator(f"{key('campaigns_confirm')} button").click()

    # 4. It waits: nothing sent before its time.
    page.get_by_text(re.compile("scheduled", re.I)).first.wait_for(timeout=30_000)
    wait_ready(page)
    no_traceback(page)
    screenshot(page, "audiences-scheduled")
    assert datetime.now(UTC) < at, "the page took too long: the test cannot see it wait"
    assert sent(console) == []

    # 5. It starts at its time by itself (no click), both recipients once, the opted-out none.
    wait_s = (at - datetime.now(UTC)).total_seconds()
    page.get_by_text(re.compile(r"All 2 recipients sent")).wait_for(timeout=(wait_s + 60) * 1000)
    started = first_sent_at(console)
    assert started is not None and at - timedelta(seconds=1) <= started, (started, at)
    assert started <= at + timedelta(seconds=30), f"started {started - at} after its time"
    assert sorted(sent(console)) == sorted(n for n in NUMBERS if n != OPTED_OUT)
    wait_ready(page)
    no_traceback(page)
    screenshot(page, "audiences-sent")


def sent(console: Console) -> list[str]:
    with sqlite3.connect(f"file:{console.data_dir / 'gateway.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT recipient FROM messages").fetchall()
    return ["+" + r.lstrip("+") for (r,) in rows]


def first_sent_at(console: Console) -> datetime | None:
    with sqlite3.connect(f"file:{console.data_dir / 'ledger.db'}?mode=ro", uri=True) as db:
        (first,) = db.execute("SELECT min(created_at) FROM messages").fetchone()
    return None if first is None else datetime.fromisoformat(first).replace(tzinfo=UTC)
