"""A campaign's click report from the ledger, on SQLite and PostgreSQL: exact click-through
rate, unique recipients against total clicks, clicks by quarter hour and by link, who clicked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from kedacore.api.types import SendResult, SentMessage
from kedacore.ledger import Ledger, Outcome, PlannedBatch, StatusUpdate
from kedacore.ledger.clicks import Clicker, LinkClicks

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SPRING = "https://example.com/spring"
TERMS = "https://example.com/terms"
FATES = {  # three delivered, one failed
    "+12062000001": "DELIVERED",
    "+12062000002": "DELIVERED",
    "+12062000003": "DELIVERED",
    "+12062000004": "FAILED",
}


def click(msgid: str, recipient: str, url: str, minute: int) -> dict[str, str]:
    """A CLICKED callback body as the gateway sends it (gateway/outbox.py ``add_click``)."""
    at = T0 + timedelta(minutes=minute)
    return {
        "msgid": msgid,
        "status": "CLICKED",
        "recipient": recipient,
        "url": url,
        "shortUrl": "http://gw/s/abc",
        "clicked_time": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }


def clicked_campaign(ledger: Ledger, name: str = "Spring") -> int:
    """A finished campaign of four with two links; recipients 1 and 2 clicked (4 clicks).

    Recipient 1: Spring at 10:05 and 10:20, Terms at 11:10; recipient 2: Spring at 10:07, whose
    callback then comes again (a duplicate, not counted).
    """
    cid = ledger.create_campaign(name, template="Hi {name}", created_by="local operator")
    ledger.set_campaign_options(cid, {"track_click": True, "callback": True})
    ledger.plan_campaign(
        cid, [PlannedBatch("US", "Hi", (n,), 50_000) for n in FATES], returned=False
    )
    ids = [f"msg_{cid:08x}{i:04x}" for i in range(len(FATES))]
    for i, number in enumerate(FATES):
        result = SendResult(
            f"t{cid}-{i}", "ok", Decimal("0.05"), "USD", 1, (SentMessage(ids[i], number),)
        )
        ledger.record_send(result, country="US", sender=None, content="Hi", campaign_id=cid)
    ledger.apply_statuses(
        [StatusUpdate(m, f, occurred_at=T0) for m, f in zip(ids, FATES.values(), strict=True)]
    )
    one, two = list(FATES)[:2]
    bodies = [
        click(ids[0], one, SPRING, 5),
        click(ids[0], one, SPRING, 20),
        click(ids[0], one, TERMS, 70),
        click(ids[1], two, SPRING, 7),
        click(ids[1], two, SPRING, 7),  # the same callback again
    ]
    outcomes = [ledger.apply_event(b) for b in bodies]
    assert outcomes == [Outcome.APPLIED] * 4 + [Outcome.DUPLICATE]
    ledger.set_campaign_status(cid, "done")
    return cid


@pytest.fixture
def ledger(ledger_url: Callable[..., str]) -> Iterator[Ledger]:
    with Ledger(ledger_url()) as led:
        yield led


def test_totals_count_unique_recipients_apart_from_clicks(ledger: Ledger) -> None:
    cid = clicked_campaign(ledger)
    totals = ledger.click_totals(cid)
    assert (totals.delivered, totals.clicked, totals.clicks, totals.timed) == (3, 2, 4, 4)
    assert totals.rate == Fraction(2, 3)  # exact: 66.7 % shown


def test_clicks_over_time_are_by_utc_quarter_hour(ledger: Ledger) -> None:
    cid = clicked_campaign(ledger)
    assert ledger.clicks_over_time(cid) == [
        (T0, 2),
        (T0 + timedelta(minutes=15), 1),
        (T0 + timedelta(hours=1), 1),
    ]


def test_clicks_by_link_and_who_clicked(ledger: Ledger) -> None:
    cid = clicked_campaign(ledger)
    assert ledger.clicks_by_link(cid) == [LinkClicks(SPRING, 3, 2), LinkClicks(TERMS, 1, 1)]
    assert ledger.who_clicked(cid) == [
        Clicker("+12062000001", 3, T0 + timedelta(minutes=70)),
        Clicker("+12062000002", 1, T0 + timedelta(minutes=7)),
    ]
    assert ledger.who_clicked(cid, limit=1) == ledger.who_clicked(cid)[:1]


def test_another_campaigns_clicks_stay_apart(ledger: Ledger) -> None:
    first = clicked_campaign(ledger)
    quiet = ledger.create_campaign("Quiet", template="Hi", created_by="local operator")
    assert ledger.click_totals(quiet).clicks == 0
    assert ledger.click_totals(quiet).rate is None  # nothing delivered: no rate
    assert ledger.clicks_over_time(quiet) == [] and ledger.who_clicked(quiet) == []
    assert ledger.click_totals(first).clicks == 4


def test_a_click_counted_without_its_callback_has_no_time(ledger: Ledger) -> None:
    cid = clicked_campaign(ledger)
    ledger.record_click(f"msg_{cid:08x}{2:04x}", clicked_at=T0 + timedelta(minutes=3))
    totals = ledger.click_totals(cid)
    assert (totals.clicked, totals.clicks, totals.timed) == (3, 5, 4)
    assert sum(n for _, n in ledger.clicks_over_time(cid)) == 4
