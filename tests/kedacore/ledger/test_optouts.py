"""Opt-outs in the ledger: add (one active row per number), remove with a reason, the state of
a number, search and paging, ``suppressed`` and ``recently_messaged`` — on both stores."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from kedacore.api.types import SendResult, SentMessage
from kedacore.ledger import Ledger
from kedacore.ledger.optouts import OptoutError, normalize_numbers


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(ledger_url: Callable[..., str], clock: Clock) -> Iterator[Ledger]:
    with Ledger(ledger_url(), clock=clock) as led:
        yield led


A, B, C = "+12015550123", "+12015550124", "+447400123456"


def test_add_counts_numbers_already_opted_out_and_audits(ledger: Ledger) -> None:
    first = ledger.add_optouts([A], by="mia@example.com", reason="asked by phone")
    assert first.added == (A,) and first.already == ()
    again = ledger.add_optouts([A, B, B], by="ann@example.com", reason="STOP", source="import")
    assert again.added == (B,) and again.already == (A,)
    assert ledger.suppressed([A, B, C]) == {A, B}
    assert ledger.optout_count() == 2
    log = ledger.audit_entries()
    assert [(e.actor, e.action, e.target, e.after, e.detail) for e in log] == [
        (
            "ann@example.com",
            "optout_import",
            "2 numbers",
            {"added": 1, "already": 1, "source": "import"},
            "STOP",
        ),
        (
            "mia@example.com",
            "optout_add",
            f"opt-out {A}",
            {"added": 1, "already": 0, "source": "hand"},
            "asked by phone",
        ),
    ]


def test_add_refuses_invalid_numbers_and_no_reason_adding_nothing(ledger: Ledger) -> None:
    with pytest.raises(OptoutError, match=r"not E\.164"):
        ledger.add_optouts([A, "2015550125"], by="mia@example.com", reason="x")
    with pytest.raises(OptoutError, match="reason"):
        ledger.add_optouts([A], by="mia@example.com", reason="  ")
    assert ledger.optout_count(active=None) == 0
    assert ledger.audit_entries() == []


def test_remove_keeps_the_row_with_who_and_why(ledger: Ledger, clock: Clock) -> None:
    ledger.add_optouts([A], by="mia@example.com", reason="STOP reply")
    with pytest.raises(OptoutError, match="reason"):
        ledger.remove_optout(A, by="fin@example.com", reason="")
    clock.now += timedelta(days=2)
    removed = ledger.remove_optout(A, by="fin@example.com", reason="opted in again on the web")
    assert not removed.active and removed.removed_by == "fin@example.com"
    assert removed.removed_reason == "opted in again on the web"
    assert removed.removed_at == clock.now and removed.reason == "STOP reply"
    assert ledger.suppressed([A]) == set()
    with pytest.raises(OptoutError, match="not opted out"):
        ledger.remove_optout(A, by="fin@example.com", reason="again")
    assert ledger.optout_count() == 0 and ledger.optout_count(active=None) == 1
    # opted out again: a new active row; the state is the active one
    clock.now += timedelta(days=1)
    ledger.add_optouts([A], by="mia@example.com", reason="STOP again")
    state = ledger.optout_state(A)
    assert state is not None and state.active and state.reason == "STOP again"
    assert ledger.optout_count(active=False) == 1
    assert ledger.optout_state(C) is None
    assert ledger.audit_entries()[1].action == "optout_remove"


def test_search_and_paging(ledger: Ledger, clock: Clock) -> None:
    numbers = [f"+1201555{n:04d}" for n in range(130)]
    ledger.add_optouts(numbers[:100], by="mia@example.com", reason="old list", source="import")
    clock.now += timedelta(minutes=1)
    ledger.add_optouts(numbers[100:], by="ann@example.com", reason="complaint 100%")
    assert ledger.optout_count() == 130
    page = ledger.optouts(limit=50, offset=0)
    assert len(page) == 50 and page[0].added_by == "ann@example.com"
    assert len(ledger.optouts(limit=50, offset=100)) == 30
    assert ledger.optout_count("complaint 100%") == 30
    assert ledger.optout_count("100%") == 30  # % taken literally
    assert ledger.optout_count("5550007") == 1
    assert ledger.optout_count("ANN@") == 30


def test_two_adds_at_once_make_one_active_row(ledger_url: Callable[..., str]) -> None:
    url = ledger_url()
    Ledger(url).close()
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def add(who: int) -> None:
        try:
            with Ledger(url) as led:
                barrier.wait()
                led.add_optouts([A, B], by=f"u{who}@example.com", reason="STOP")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Ledger(url) as led:
        assert led.optout_count(active=None) == 2
        added = sorted(e.after["added"] for e in led.audit_entries())
        assert added == [0, 0, 0, 2]


def test_suppressed_many_numbers(ledger: Ledger) -> None:
    numbers = [f"+1201555{n:04d}" for n in range(3000)]
    ledger.add_optouts(numbers[::3], by="mia@example.com", reason="bulk", source="import")
    assert ledger.suppressed(numbers) == set(numbers[::3])
    assert ledger.suppressed([]) == set()


def test_recently_messaged(ledger: Ledger, clock: Clock) -> None:
    sent_at = clock.now - timedelta(hours=3)
    result = SendResult(
        task_id="T1",
        message="ok",
        debited_amount=Decimal("0.02"),
        currency="USD",
        segments=2,
        messages=(SentMessage("m1", A), SentMessage("m2", B)),
    )
    ledger.record_send(result, country="US", sender=None, content="hi", created_at=sent_at)
    assert ledger.recently_messaged([A, C], clock.now - timedelta(hours=24)) == {A}
    assert ledger.recently_messaged([A, B], clock.now - timedelta(hours=2)) == set()


def test_normalize_numbers() -> None:
    read = normalize_numbers(["+1 201 555 0123", "2015550124", "+12015550123", "abc"], "US")
    assert read.valid == (A, B) and read.repeated == 1
    assert [(i, raw) for i, raw, _ in read.invalid] == [(4, "abc")]
