"""The daily rollup stays equal to GROUP BY over the messages through every write path."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from kedacore.api.types import MessageStatus, SendResult, SentMessage
from kedacore.ledger import Ledger, PlannedBatch, StatusUpdate, rollup
from kedacore.ledger import schema as s
from kedacore.ledger.engine import reading

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
_ids = itertools.count()


def in_sync(ledger: Ledger) -> bool:
    with reading(ledger.engine) as conn:
        diff = rollup.differences(conn)
    assert diff == {}
    return True


def send(
    ledger: Ledger, n: int, *, country: str = "US", sender: str | None = "Shop", segments: int = 0
) -> list[str]:
    """Record one task of ``n`` messages; returns their msgids."""
    k = next(_ids)
    mids = [f"msg_{k:06x}{i:06x}" for i in range(n)]
    result = SendResult(
        task_id=f"T-{k}",
        message="ok",
        debited_amount=Decimal("0.05") * n,
        currency="USD",
        segments=segments or n,
        messages=tuple(SentMessage(m, f"+1206555{i:04d}") for i, m in enumerate(mids)),
    )
    ledger.record_send(result, country=country, sender=sender, content="hi")
    return mids


def body(mid: str, status: str, when: datetime, **extra: Any) -> dict[str, Any]:
    iso = when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    out: dict[str, Any] = {"msgid": mid, "status": status, "recipient": "+12065550000"}
    if status == "CLICKED":
        return out | {"url": "https://example.com/", "clicked_time": iso}
    out |= {"sender": "Shop", "cost": "0" if status == "FAILED" else "0.05"}
    out |= {"sent_time": iso if status != "FAILED" else None, "delivered_time": None}
    if status == "DELIVERED":
        out["delivered_time"] = (when + timedelta(milliseconds=2_345)).strftime(
            "%Y-%m-%dT%H:%M:%S.%f"
        )[:-3] + "Z"
    return out | extra


@pytest.fixture
def ledger(ledger_url: Callable[..., str]) -> Iterator[Ledger]:
    clock = itertools.count()
    with Ledger(ledger_url(), clock=lambda: T0 + timedelta(seconds=next(clock))) as led:
        yield led


def test_every_write_path_keeps_the_rollup_exact(ledger: Ledger) -> None:
    a = send(ledger, 4)
    b = send(ledger, 3, country="GB", sender=None, segments=7)  # segments unknown per message
    assert in_sync(ledger)
    ledger.apply_event(body(a[0], "SENT", T0))
    ledger.apply_event(body(a[0], "DELIVERED", T0))
    ledger.apply_event(body(a[1], "FAILED", T0, updated_time="2024-03-01T09:00:03Z"))
    ledger.apply_event(body(a[2], "UNDELIVERED", T0, updated_time="2024-03-01T09:01:00Z"))
    ledger.apply_event(body(a[0], "SENT", T0))  # stale
    ledger.apply_event(body(a[0], "SENT", T0))  # duplicate
    ledger.record_click(a[0])
    ledger.apply_event(body(a[0], "CLICKED", T0 + timedelta(minutes=5)))
    assert in_sync(ledger)
    ledger.apply_lookups(
        [
            MessageStatus(
                msgid=b[0],
                status="DELIVERED",
                recipient="+447400000000",
                sender=None,
                sent_time=T0,
                delivered_time=T0 + timedelta(seconds=90),
                cost=Decimal("0.09"),
                segments=3,
                message="hi",
                task_id="T-x",
                created_time=T0,
                updated_time=T0 + timedelta(seconds=90),
            )
        ]
    )
    ledger.apply_statuses([StatusUpdate(b[1], "SENT", sent_at=T0, cost_micros=45_000)])
    assert in_sync(ledger)
    # An event that overtakes its send is replayed when the send is recorded.
    k = next(_ids)
    early = f"msg_{k:06x}{0:06x}"
    ledger.apply_event(body(early, "DELIVERED", T0))
    result = SendResult(
        f"T-{k}", "ok", Decimal("0.05"), "USD", 1, (SentMessage(early, "+12065550000"),)
    )
    ledger.record_send(result, country="US", sender="Shop", content="hi")
    assert ledger.message(early).status == "DELIVERED"
    assert in_sync(ledger)


def lookup(mid: str, status: str, cost: str) -> MessageStatus:
    final = status in ("DELIVERED", "UNDELIVERED", "FAILED")
    return MessageStatus(
        msgid=mid,
        status=status,
        recipient="+12065550000",
        sender="Shop",
        message="hi",
        task_id=None,
        segments=1,
        cost=Decimal(cost),
        sent_time=T0 if status != "QUEUED" else None,
        delivered_time=T0 + timedelta(seconds=2) if status == "DELIVERED" else None,
        created_time=T0,
        updated_time=T0 + timedelta(seconds=2) if final else T0,
    )


def rollup_money(ledger: Ledger) -> tuple[int, int, int]:
    t = s.message_rollup.c
    with reading(ledger.engine) as conn:
        row = conn.execute(
            select(func.sum(t.pending_micros), func.sum(t.cost_micros), func.sum(t.priced))
        ).one()
    return tuple(int(v or 0) for v in row)


def test_a_lookup_of_a_queued_message_keeps_its_pending_estimate(ledger: Ledger) -> None:
    # The service reports cost 0 for a message it has not charged yet: that is not a charge.
    a, b = send(ledger, 2)
    assert rollup_money(ledger) == (100_000, 0, 0)
    ledger.apply_lookups([lookup(a, "QUEUED", "0"), lookup(b, "QUEUED", "0")])
    assert ledger.message(a).cost_micros is None
    assert rollup_money(ledger) == (100_000, 0, 0)  # still pending, nothing charged
    assert in_sync(ledger)
    ledger.apply_lookups([lookup(a, "DELIVERED", "0.05"), lookup(b, "FAILED", "0")])
    assert (ledger.message(a).cost_micros, ledger.message(b).cost_micros) == (50_000, 0)
    assert rollup_money(ledger) == (0, 50_000, 2)  # charged, and released
    assert in_sync(ledger)
    ledger.apply_lookups([lookup(a, "QUEUED", "0")])  # a late, stale answer changes nothing
    assert ledger.message(a).cost_micros == 50_000
    assert in_sync(ledger)


def test_campaign_writes_keep_the_rollup_exact(ledger: Ledger) -> None:
    cid = ledger.create_campaign("Spring", template="Hi", sender="Shop")
    batches = ledger.plan_campaign(
        cid,
        [
            PlannedBatch("US", "Hi", ("+12062000001", "+12062000002"), 100_000, "Shop"),
            PlannedBatch("GB", "Hi", ("+447400123456",), 45_000, "Shop"),
            PlannedBatch("US", "Hi", ("+12062000003",), 50_000, "Shop"),
        ],
    )

    def answer(task: str, n: int) -> SendResult:
        msgs = tuple(SentMessage(f"msg_c{task}{i:011x}", "+12062000001") for i in range(n))
        return SendResult(f"C-{task}", "ok", Decimal("0.05") * n, "USD", n, msgs)

    ledger.mark_batch_sent(batches[0].id, answer("1", 2))
    if hasattr(ledger, "mark_batches_sent"):
        ledger.mark_batches_sent([(batches[1].id, answer("2", 1)), (batches[2].id, answer("3", 1))])
    assert in_sync(ledger)
    ledger.apply_event(body("msg_c100000000000", "DELIVERED", T0))
    assert in_sync(ledger)


def test_an_old_ledger_gets_its_rollup_on_open(ledger_url: Callable[..., str]) -> None:
    url = ledger_url()
    with Ledger(url) as led:
        send(led, 3)
        with led.engine.begin() as conn:
            s.message_rollup.drop(conn)
            conn.exec_driver_sql("DROP TABLE alembic_version")  # from before migrations
    with Ledger(url) as led:
        assert in_sync(led)
        with reading(led.engine) as conn:
            total = conn.scalar(select(s.message_rollup.c.messages))
        assert total == 3


def test_python_and_sql_buckets_agree_at_every_bound() -> None:
    bounds = s.LATENCY_BUCKETS_MS
    for ms in [0, 1, *bounds, *(b - 1 for b in bounds), 10**9]:
        _key, sums = rollup.contribution(
            {
                "day": T0.date(),
                "country": "US",
                "status": "DELIVERED",
                "currency": "USD",
                "delivery_ms": ms,
            }
        )
        bucket = sums[len(rollup.BASE_SUMS) :].index(1)
        low = bounds[bucket - 1] if bucket else 0
        high = bounds[bucket] if bucket < len(bounds) else float("inf")
        assert low <= ms < high


statuses = st.sampled_from(["SENT", "DELIVERED", "UNDELIVERED", "FAILED", "CLICKED"])


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(st.tuples(st.integers(0, 5), statuses), max_size=25))
def test_any_sequence_of_events_keeps_the_rollup_exact(
    ledger_url: Callable[..., str], steps: list[tuple[int, str]]
) -> None:
    with Ledger(ledger_url()) as led:  # a new empty store per example
        mids = send(led, 3) + send(led, 3, country="IN", sender=None)
        for n, (i, status) in enumerate(steps):
            led.apply_event(body(mids[i], status, T0 + timedelta(seconds=n)))
        assert in_sync(led)
