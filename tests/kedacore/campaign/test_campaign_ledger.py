"""The ledger's group writes for the campaign engine: the same rows as one batch at a time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from kedacore.api.types import SendResult, SentMessage
from kedacore.ledger import Ledger, PlannedBatch
from kedacore.ledger import schema as s

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def answer(task_id: str, recipients: tuple[str, ...], debited: str, segments: int) -> SendResult:
    return SendResult(
        task_id=task_id,
        message="SMS task created",
        debited_amount=Decimal(debited),
        currency="USD",
        segments=segments,
        messages=tuple(
            SentMessage(f"msg_{task_id[-4:]}{i:08x}", r) for i, r in enumerate(recipients)
        ),
    )


def plan(led: Ledger) -> tuple[int, list]:
    cid = led.create_campaign("Spring", template="Hi {name}", sender="Shop")
    batches = led.plan_campaign(
        cid,
        [
            PlannedBatch("US", "Hi Ann", ("+12062000001",), 50_000, "Shop"),
            PlannedBatch("US", "Hi all", ("+12062000002", "+12062000003", "+12062000004"), 100_000),
            PlannedBatch("GB", "Hi Bo", ("+447400123456",), 45_000, "Shop"),
        ],
    )
    return cid, batches


def rows(led: Ledger, table, *skip: str) -> list[dict]:
    cols = [c for c in table.c if c.name not in skip]
    with led.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(*cols).order_by(cols[0]))]


def test_group_write_records_what_one_at_a_time_records(ledger_url: Callable[..., str]) -> None:
    one = Ledger(ledger_url("one"), clock=lambda: T0)
    group = Ledger(ledger_url("group"), clock=lambda: T0)
    answers = [
        ("20240101-0001", "0.05", 1),
        ("20240101-0002", "0.1", 3),  # 3 messages, 2 segments in all: not per message
        ("20240101-0003", "0.045", 1),
    ]
    results = {}
    for led in (one, group):
        _, batches = plan(led)
        results[led] = [
            (b.id, answer(t, b.recipients, d, seg))
            for b, (t, d, seg) in zip(batches, answers, strict=True)
        ]
    for batch_id, result in results[one]:
        one.mark_batch_sent(batch_id, result)
    assert group.mark_batches_sent(results[group]) == 5
    assert group.mark_batches_sent(results[group]) == 0  # already sent: nothing twice
    for table, skip in (
        (s.tasks, ("client_ref",)),  # random per plan
        (s.messages, ()),
        (s.campaign_batches, ("client_ref",)),
        (s.campaigns, ()),
    ):
        assert rows(group, table, *skip) == rows(one, table, *skip), table.name
    cid = group.campaigns()[0].id
    assert group.campaign_batch_counts(cid) == {
        "sent": {
            "batches": 3,
            "recipients": 5,
            "estimated_micros": 195_000,
            "debited_micros": 195_000,
        }
    }


def test_group_write_skips_sent_batches_and_refuses_unknown_ones(
    ledger_url: Callable[..., str],
) -> None:
    led = Ledger(ledger_url("l"), clock=lambda: T0)
    cid, batches = plan(led)
    first = answer("20240101-0001", batches[0].recipients, "0.05", 1)
    led.mark_batch_sent(batches[0].id, first)
    second = answer("20240101-0002", batches[1].recipients, "0.1", 3)
    # the first batch again (a lost answer replayed by clientRef) and a new one, together
    assert led.mark_batches_sent([(batches[0].id, first), (batches[1].id, second)]) == 3
    assert led.campaign(cid).debited_micros == 150_000
    counts = led.campaign_batch_counts(cid)
    assert (counts["sent"]["batches"], counts["planned"]["batches"]) == (2, 1)
    with pytest.raises(KeyError):
        led.mark_batches_sent([(999, first)])
    assert led.mark_batches_sent([]) == 0
