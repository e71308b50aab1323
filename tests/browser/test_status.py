"""The Status page in Chromium: what the browser itself shows (AppTest cannot see it).

A selectbox's value in the browser is the label of its option. The *Timeline of* picker once
labelled each message with its status, so when the picked message moved on (SENT →
DELIVERED) the browser kept the old label: "· SENT" above a DELIVERED timeline.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from kedacore import KedaClient
from kedacore.ledger import Ledger
from kedacore.ledger.state import StatusUpdate

from .conftest import Console, screenshot, wait_ready

pytestmark = pytest.mark.browser


def key(name: str) -> str:
    return f".st-key-{name}"


def ledger(console: Console) -> Ledger:
    return Ledger(f"sqlite:///{console.data_dir / 'ledger.db'}")


def send(console: Console, numbers: list[str], content: str) -> list[str]:
    """Send through the console's sandbox and record it in its ledger (as the Send page does)."""
    account = json.loads((console.data_dir / "sandbox_account.json").read_text())
    port = (console.data_dir / "sandbox_port").read_text().strip()
    url = f"http://127.0.0.1:{port}/api"
    with KedaClient(
        account["apiKey"], account["encryptionKey"], base_url=url, backup_url=url
    ) as client:
        result = client.sms.send("US", numbers, content)
    with ledger(console) as book:
        book.record_send(result, country="US", sender=None, content=content)
    return [m.msgid for m in result.messages]


def test_the_timeline_picker_shows_the_status_the_message_has_now(console: Console, page) -> None:
    page.goto(f"{console.url}/status")  # starts the console's sandbox
    wait_ready(page)
    # +15005550003 is delivered only after 30 s: still open while we pick it.
    other, slow = send(console, ["+12015550151", "+15005550003"], "Timeline")
    page.get_by_text("Look up a list of msgids").click()
    page.locator(f"{key('status_list')} textarea").fill(f"{other}\n{slow}")
    page.locator(f"{key('status_lookup_many')} button").click()
    picker = page.locator(f"{key('status_timeline')} input")
    picker.wait_for()
    wait_ready(page)
    picker.click()
    page.get_by_role("option", name=re.compile(slow)).click()
    wait_ready(page)
    assert slow in picker.input_value()

    with ledger(console) as book:  # its delivery report arrives
        now = datetime.now(UTC)
        book.apply_status(
            StatusUpdate(slow, "DELIVERED", sent_at=now, delivered_at=now, occurred_at=now)
        )
    page.get_by_text("Every message has its final status.").wait_for(timeout=20_000)
    wait_ready(page)
    page.wait_for_timeout(500)
    label = picker.input_value()
    screenshot(page, "status-timeline-picker")
    assert slow in label
    assert "SENT" not in label and "QUEUED" not in label, label
