"""The no-regression rule, event deduplication and order independence."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kedacore.api.types import STATUSES, MessageStatus, SendResult, SentMessage
from kedacore.ledger import (
    RANK,
    EventError,
    Ledger,
    MessageState,
    Outcome,
    StatusUpdate,
    merge,
    parse_event,
)

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
_counter = itertools.count()


def new_message(ledger: Ledger) -> str:
    """Record a one-message task and return its msgid."""
    n = next(_counter)
    mid = f"msg_{n:012x}"
    result = SendResult(
        f"T-{n}", "ok", Decimal("0.05"), "USD", 1, (SentMessage(mid, "+12065550123"),)
    )
    ledger.record_send(result, country="US", sender="KedaSMS", content="hi")
    return mid


def event(mid: str, status: str, **times: Any) -> dict[str, Any]:
    """A callback body as the gateway sends it."""
    body: dict[str, Any] = {"msgid": mid, "status": status, "recipient": "+12065550123"}
    if status == "CLICKED":
        body |= {"url": "https://example.com/", "shortUrl": "http://gw/s/abc"}
    else:
        body |= {"sender": "KedaSMS", "sent_time": None, "delivered_time": None, "cost": "0.05"}
        if status == "FAILED":
            body["cost"] = "0"
    return body | times


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@pytest.fixture(scope="module")
def ledger(module_ledger_url: Callable[..., str]) -> Iterator[Ledger]:
    with Ledger(module_ledger_url("status")) as led:
        yield led


def update_for(mid: str, status: str, minute: int) -> StatusUpdate:
    at = T0 + timedelta(minutes=minute)
    return StatusUpdate(
        mid,
        status,
        sent_at=T0 if status in ("SENT", "DELIVERED", "UNDELIVERED") else None,
        delivered_at=at if status == "DELIVERED" else None,
        occurred_at=at,
        cost_micros=0 if status == "FAILED" else 50_000,
    )


@pytest.mark.parametrize(("first", "second"), list(itertools.product(STATUSES, STATUSES)))
def test_no_regression_matrix(ledger: Ledger, first: str, second: str) -> None:
    mid = new_message(ledger)
    outcomes = ledger.apply_statuses([update_for(mid, first, 1)], source="callback")
    outcomes += ledger.apply_statuses([update_for(mid, second, 2)], source="callback")
    m = ledger.message(mid)
    assert m is not None
    expected = second if RANK[second] > RANK[first] else first
    assert m.status == expected
    assert outcomes[0] == (Outcome.APPLIED if first != "QUEUED" else Outcome.STALE)
    moved = RANK[second] > RANK[first]
    assert outcomes[1] == (Outcome.APPLIED if moved else Outcome.STALE)
    if expected in ("DELIVERED", "UNDELIVERED", "FAILED"):
        # the time of the status that won, never of a later loser
        assert m.final_at == T0 + timedelta(minutes=1 if expected == first else 2)
    else:
        assert m.final_at is None


def test_delivered_before_sent_fills_sent_time_and_is_not_undone(ledger: Ledger) -> None:
    mid = new_message(ledger)
    delivered = event(mid, "DELIVERED", delivered_time="2024-01-01T12:00:05Z")
    assert ledger.apply_event(delivered, "e-1") is Outcome.APPLIED
    m = ledger.message(mid)
    assert m is not None and m.sent_at is None and m.delivery_ms is None
    late_sent = event(mid, "SENT", sent_time="2024-01-01T12:00:01Z")
    assert ledger.apply_event(late_sent, "e-2") is Outcome.STALE
    m = ledger.message(mid)
    assert m is not None
    assert (m.status, m.sent_at, m.delivery_ms) == ("DELIVERED", T0 + timedelta(seconds=1), 4000)
    assert [e.outcome for e in ledger.message_events(mid)] == ["applied", "stale"]


def test_duplicates_have_no_second_effect(ledger: Ledger) -> None:
    mid = new_message(ledger)
    click = event(mid, "CLICKED", clicked_time="2024-01-01T12:01:00Z")
    assert ledger.apply_event(click, "c-1") is Outcome.APPLIED
    assert ledger.apply_event(click, "c-1") is Outcome.DUPLICATE
    # the same body under another id is a replay (the id is not signed); a real second
    # visit has a clicked_time of its own
    assert ledger.apply_event(click, "c-2") is Outcome.DUPLICATE
    # without an event id, msgid + status + time is the key
    other = event(mid, "CLICKED", clicked_time="2024-01-01T12:02:00Z")
    assert ledger.apply_event(other) is Outcome.APPLIED
    assert ledger.apply_event(other) is Outcome.DUPLICATE
    again = event(mid, "CLICKED", clicked_time="2024-01-01T12:03:00Z")
    parsed = [parse_event(again, event_id="c-3"), parse_event(again, event_id="c-3")]
    assert ledger.apply_events(parsed) == [Outcome.APPLIED, Outcome.DUPLICATE]  # in one group
    parsed = [parse_event(again, event_id="c-4"), parse_event(again, event_id="c-5")]
    assert ledger.apply_events(parsed) == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    m = ledger.message(mid)
    assert m is not None and m.clicks == 3
    assert m.last_click_at == T0 + timedelta(minutes=3)
    assert len(ledger.message_events(mid)) == 3


def test_events_for_unknown_messages_are_kept_and_replayed(ledger: Ledger) -> None:
    mid = f"msg_{next(_counter):012x}"
    sent = event(mid, "SENT", sent_time="2024-01-01T12:00:01Z")
    assert ledger.apply_event(sent, "u-1") is Outcome.UNKNOWN
    assert ledger.apply_event(sent, "u-1") is Outcome.DUPLICATE
    assert [e.event_id for e in ledger.unknown_events()][-1] == "u-1"
    result = SendResult("T-late", "ok", Decimal("0.05"), "USD", 1, (SentMessage(mid, "+1206"),))
    ledger.record_send(result, country="US", sender="KedaSMS", content="hi")
    m = ledger.message(mid)
    assert m is not None and (m.status, m.cost_micros) == ("SENT", 50_000)
    assert [e.outcome for e in ledger.message_events(mid)] == ["applied"]
    assert "u-1" not in [e.event_id for e in ledger.unknown_events()]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"msgid": "msg_ABC"}, "msgid"),
        ({"status": "READ"}, "status"),
        ({"recipient": "12065550123"}, "recipient"),
        ({"sent_time": "2024-01-01 12:00:00"}, "sent_time"),
        ({"sent_time": "2024-13-01T12:00:00Z"}, "sent_time"),
        ({"cost": 0.05}, "cost"),
        ({"cost": "1e-3"}, "cost"),
        ({"cost": None}, "cost"),
        ({"status": "SENT", "sent_time": None}, "sent_time"),
        ({"delivered_time": "2024-01-01T12:00:05Z"}, "delivered_time"),
        ({"sender": 7}, "sender"),
    ],
)
def test_strict_event_validation(body: dict[str, Any], field: str) -> None:
    good = event("msg_0123456789ab", "SENT", sent_time="2024-01-01T12:00:01Z")
    with pytest.raises(EventError) as info:
        parse_event(good | body)
    assert field in [f for f, _ in info.value.errors]


def test_event_validation_of_odd_shapes() -> None:
    with pytest.raises(EventError, match="JSON object"):
        parse_event([1, 2])
    click = event("msg_0123456789ab", "CLICKED", clicked_time="2024-01-01T12:00:01Z")
    with pytest.raises(EventError, match="url"):
        parse_event(click | {"url": "javascript:alert(1)"})
    with pytest.raises(EventError, match="Event-Id"):
        parse_event(click, event_id="x" * 200)
    assert parse_event(click).dedup_key == "msg_0123456789ab:CLICKED:2024-01-01T12:00:01Z"


def test_merge_rejects_an_unknown_status() -> None:
    with pytest.raises(ValueError, match="not a message status"):
        merge(MessageState("QUEUED"), StatusUpdate("msg_0123456789ab", "READ"))


fates = st.sampled_from(["DELIVERED", "UNDELIVERED", "FAILED"])


@st.composite
def histories(draw: st.DrawFn) -> tuple[str, list[tuple[str, dict[str, Any], str | None]]]:
    """A realistic set of events of one message: (status, body, event id) with duplicates."""
    fate = draw(fates)
    sent_at = T0 + timedelta(milliseconds=draw(st.integers(0, 5000)))
    final_at = sent_at + timedelta(milliseconds=draw(st.integers(0, 60_000)))
    items: list[tuple[str, dict[str, Any], str | None]] = []
    if fate != "FAILED":
        items.append(("SENT", {"sent_time": iso(sent_at)}, "s"))
    times: dict[str, Any] = {"updated_time": iso(final_at)}
    if fate == "DELIVERED":
        times = {"delivered_time": iso(final_at)}
    if fate != "FAILED" and draw(st.booleans()):  # the final event may omit sent_time
        times |= {"sent_time": iso(sent_at)}
    items.append((fate, times, "f"))
    for k in range(draw(st.integers(0, 3))):
        clicked = final_at + timedelta(seconds=1000 * k + draw(st.integers(1, 600)))
        items.append(("CLICKED", {"clicked_time": iso(clicked)}, f"c{k}"))
    with_ids = draw(st.booleans())
    items = [(status, body, eid if with_ids else None) for status, body, eid in items]
    repeats = draw(st.lists(st.sampled_from(items), max_size=4))
    return fate, items + repeats


@settings(max_examples=60, deadline=None)
@given(history=histories(), data=st.data())
def test_any_order_of_the_same_events_ends_in_the_same_state(
    ledger: Ledger, history: tuple[str, list[Any]], data: st.DataObject
) -> None:
    fate, items = history
    ordered, shuffled = new_message(ledger), new_message(ledger)
    permutation = data.draw(st.permutations(items))
    group = data.draw(st.integers(1, len(items)))
    for status, times, eid in items:
        ledger.apply_event(event(ordered, status, **times), eid and f"{ordered}-{eid}")
    for start in range(0, len(permutation), group):  # in groups, as the receiver writes them
        ledger.apply_events(
            parse_event(event(shuffled, status, **times), event_id=eid and f"{shuffled}-{eid}")
            for status, times, eid in permutation[start : start + group]
        )
    a, b = ledger.message(ordered), ledger.message(shuffled)
    assert a is not None and b is not None
    fields = ("status", "sent_at", "delivered_at", "final_at", "delivery_ms", "cost_micros")
    assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]
    assert (a.clicks, a.last_click_at) == (b.clicks, b.last_click_at)
    assert a.status == fate
    assert a.clicks == len({str(t) for s, t, _ in items if s == "CLICKED"})
    assert len(ledger.message_events(ordered)) == len(ledger.message_events(shuffled))


@pytest.mark.parametrize(
    ("status", "cost"),
    [("QUEUED", None), ("SENT", 50_000), ("DELIVERED", 50_000), ("UNDELIVERED", 50_000)]
    + [("FAILED", 0)],
)
def test_a_lookups_cost_counts_once_the_message_is_charged(status: str, cost: int | None) -> None:
    reported = Decimal("0") if status in ("QUEUED", "FAILED") else Decimal("0.05")
    answer = MessageStatus(
        "msg_00000000000a", status, "+12065550123", None, "hi", None, 1, reported,
        T0, None, None, T0,
    )  # fmt: skip
    assert StatusUpdate.from_status(answer).cost_micros == cost
