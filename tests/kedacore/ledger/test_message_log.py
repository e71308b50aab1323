"""The message log (kedacore.ledger.log): every filter alone and together, keyset paging that
never repeats nor skips a row (messages recorded between pages too), folded text search, the
bounded count, and the export's rows equal to the filtered set — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert

from kedacore.api.types import SendResult, SentMessage
from kedacore.ledger import Ledger, StatusUpdate
from kedacore.ledger import schema as s
from kedacore.ledger.log import LogFilter, LogRow, fold

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def result(task_id: str, recipients: list[str]) -> SendResult:
    return SendResult(
        task_id=task_id,
        message="SMS task created",
        debited_amount=Decimal("0.05") * len(recipients),
        currency="USD",
        segments=len(recipients),
        messages=tuple(
            SentMessage(f"msg_{task_id}_{i:04d}", phone) for i, phone in enumerate(recipients)
        ),
    )


def send(
    ledger: Ledger,
    task_id: str,
    recipients: list[str],
    *,
    content: str = "Hello",
    country: str = "US",
    sender: str | None = None,
    campaign_id: int | None = None,
    at: datetime = T0,
) -> list[str]:
    sent = result(task_id, recipients)
    ledger.record_send(
        sent, country=country, sender=sender, content=content, campaign_id=campaign_id,
        created_at=at,
    )  # fmt: skip
    return [m.msgid for m in sent.messages]


@pytest.fixture
def ledger(ledger_url: Callable[..., str]) -> Iterator[Ledger]:
    with Ledger(ledger_url()) as led:
        yield led


@pytest.fixture
def filled(ledger: Ledger) -> dict[str, list[str]]:
    """Three sends and two campaigns (one to a contact list), over three days."""
    with ledger.engine.begin() as conn:
        list_id = conn.execute(
            insert(s.contact_lists).values(
                name="VIP", description="", created_by="m@example.com", created_at=T0,
                updated_at=T0,
            )
        ).inserted_primary_key[0]  # fmt: skip
    spring = ledger.create_campaign("Spring sale", list_id=list_id)
    news = ledger.create_campaign("News")
    ids = {
        "otp": send(ledger, "t-otp", ["+12065550100", "+12065550101"], content="Your code 123",
                    sender="KedaOTP", at=T0 - timedelta(days=2)),
        "spring": send(ledger, "t-spring", [f"+4477009001{i:02d}" for i in range(5)],
                       content="Été: -20% sur TOUT", country="GB", sender="KedaShop",
                       campaign_id=spring, at=T0 - timedelta(days=1)),
        "news": send(ledger, "t-news", ["+33612345678", "+33612345679"], content="Nouvelles",
                     country="FR", campaign_id=news, at=T0),
    }  # fmt: skip
    ledger.apply_statuses(
        [StatusUpdate(ids["spring"][0], "FAILED", occurred_at=T0 - timedelta(hours=20)),
         StatusUpdate(ids["otp"][1], "DELIVERED", sent_at=T0 - timedelta(days=2),
                      delivered_at=T0 - timedelta(days=2), cost_micros=50_000)]
    )  # fmt: skip
    ids["campaigns"] = [str(spring), str(news), str(list_id)]
    return ids


def msgids(rows: list[LogRow]) -> list[str]:
    return [r.msgid for r in rows]


def everything(ledger: Ledger, where: LogFilter | None = None, size: int = 2) -> list[str]:
    """Every row through pages of ``size``, following the cursors."""
    seen, cursor = [], None
    while True:
        page = ledger.message_log(where, after=cursor, limit=size)
        seen += msgids(page.rows)
        if page.next is None:
            return seen
        cursor = page.next


def test_newest_first_and_every_filter(ledger: Ledger, filled: dict[str, list[str]]) -> None:
    spring, news, list_id = (int(x) for x in filled["campaigns"])
    page = ledger.message_log()
    assert len(page.rows) == 9 and page.next is None
    assert [r.created_at for r in page.rows] == sorted(
        (r.created_at for r in page.rows), reverse=True
    )
    assert set(msgids(page.rows[:2])) == set(filled["news"])
    first = page.rows[0]
    assert first.campaign == "News" and first.content == "Nouvelles" and first.country == "FR"

    def only(**kw: object) -> set[str]:
        return set(msgids(ledger.message_log(LogFilter(**kw)).rows))  # type: ignore[arg-type]

    assert only(since=T0 - timedelta(days=1), until=T0) == set(filled["spring"])
    assert only(statuses=["FAILED"]) == {filled["spring"][0]}
    assert only(statuses=["DELIVERED", "FAILED"]) == {filled["spring"][0], filled["otp"][1]}
    assert only(countries=["FR", "GB"]) == set(filled["news"] + filled["spring"])
    assert only(senders=["KedaOTP"]) == set(filled["otp"])
    assert only(senders=[""]) == set(filled["news"])  # the account's default sender
    assert only(campaign_ids=[news]) == set(filled["news"])
    assert only(campaign_ids=[spring, 0]) == set(filled["spring"] + filled["otp"])
    assert only(campaign_ids=[0]) == set(filled["otp"])  # not a campaign
    assert only(list_id=list_id) == set(filled["spring"])
    assert only(list_id=list_id + 99) == set()
    # Combined: each narrows the others.
    assert only(countries=["GB"], statuses=["QUEUED"], since=T0 - timedelta(days=1)) == set(
        filled["spring"][1:]
    )
    assert only(countries=["GB"], campaign_ids=[news]) == set()
    assert only(statuses=["DELIVERED"], text="code", senders=["KedaOTP"]) == {filled["otp"][1]}
    assert ledger.message_log(LogFilter(statuses=["DELIVERED"])).rows[0].cost == Decimal("0.05")


def test_text_is_folded_and_ids_and_numbers_match_as_typed(
    ledger: Ledger, filled: dict[str, list[str]]
) -> None:
    assert fold("ÉTÉ Øre") == "ete ore"
    for typed in ("été", "ETE", "Été: -20%", "tout", "20%"):
        assert set(msgids(ledger.message_log(LogFilter(text=typed)).rows)) == set(
            filled["spring"]
        ), typed
    assert ledger.message_log(LogFilter(text="2_%")).rows == []  # LIKE's signs are literal
    assert msgids(ledger.message_log(LogFilter(text=filled["otp"][1])).rows) == [filled["otp"][1]]
    assert set(msgids(ledger.message_log(LogFilter(text="t-news")).rows)) == set(filled["news"])
    by_number = ledger.message_log(LogFilter(text="+1 206 555-0101")).rows
    assert msgids(by_number) == [filled["otp"][1]]


def test_paging_never_repeats_nor_skips_even_with_new_messages_between_pages(
    ledger: Ledger,
) -> None:
    # Many messages at the very same time: the msgid breaks the ties.
    sent = send(ledger, "t-a", [f"+1206555{i:04d}" for i in range(7)], at=T0)
    sent += send(ledger, "t-b", [f"+1206556{i:04d}" for i in range(6)], at=T0 - timedelta(1))
    assert sorted(everything(ledger, size=3)) == sorted(sent)
    assert len(everything(ledger, size=1)) == 13

    seen: list[str] = []
    page = ledger.message_log(limit=4)
    seen += msgids(page.rows)
    send(ledger, "t-new", ["+12065559999", "+12065559998"], at=T0 + timedelta(minutes=5))
    while page.next is not None:
        page = ledger.message_log(after=page.next, limit=4)
        seen += msgids(page.rows)
        send(ledger, f"t-{len(seen)}", ["+12065557777"], at=T0 + timedelta(minutes=len(seen)))
    assert len(seen) == len(set(seen)) == 13 and set(seen) == set(sent)


def test_the_count_is_exact_up_to_its_bound(ledger: Ledger) -> None:
    send(ledger, "t-c", [f"+1206555{i:04d}" for i in range(12)])
    assert (ledger.message_log_count().n, ledger.message_log_count().exact) == (12, True)
    assert str(ledger.message_log_count()) == "12"
    bounded = ledger.message_log_count(bound=10)
    assert (bounded.n, bounded.exact, str(bounded)) == (10, False, "10+")
    assert ledger.message_log_count(LogFilter(countries=["GB"])).n == 0
    assert str(ledger.message_log_count(bound=12)) == "12"


def test_the_export_rows_are_the_filtered_set_and_bounded(
    ledger: Ledger, filled: dict[str, list[str]]
) -> None:
    where = LogFilter(countries=["GB", "US"])
    rows = list(ledger.message_log_rows(where, chunk=2))
    assert msgids(rows) == everything(ledger, where, size=100)
    assert set(msgids(rows)) == set(filled["spring"] + filled["otp"])
    assert len(list(ledger.message_log_rows(where, limit=3, chunk=2))) == 3
    assert msgids(list(ledger.message_log_rows(LogFilter(text="zzz")))) == []


def test_a_bad_limit_is_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="limit"):
        ledger.message_log(limit=0)
