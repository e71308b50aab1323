"""The console's own sends in the ledger: pending before the request, then sent or refused.

A send is written as ``pending`` (with its clientRef and everything needed to repeat it)
before the request goes out, and completed with the answer: ``sent`` (its task and messages
recorded in the same transaction) or ``refused`` (why, redacted). A pending send whose
answer was lost stays pending, so the Send page can show it and check it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import inspect, text

from kedacore.api.types import SendResult, SentMessage
from kedacore.ledger import SEND_STATES, Ledger, LedgerSend
from kedacore.ledger import schema as s

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
NUMBERS = ("+12065550100", "+12065550101", "+12065550102")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(ledger_url: Callable[..., str], clock: Clock) -> Ledger:
    with Ledger(ledger_url(), clock=clock) as led:
        yield led


def result(task_id: str = "20240101-0001", numbers: tuple[str, ...] = NUMBERS) -> SendResult:
    return SendResult(
        task_id=task_id,
        message="SMS task created",
        debited_amount=Decimal("0.15"),
        currency="USD",
        segments=len(numbers),
        messages=tuple(SentMessage(f"msg_{i:016x}", n) for i, n in enumerate(numbers, 1)),
    )


def begin(ledger: Ledger, ref: str = "console-1", **extra: object) -> LedgerSend:
    values = {
        "country": "US",
        "sender": "Shop",
        "content": "Hello",
        "recipients": NUMBERS,
        "currency": "USD",
        "estimated_micros": 150_000,
        "created_by": None,
        "session": "a1b2c3",
    }
    values.update(extra)
    return ledger.begin_send(ref, **values)  # type: ignore[arg-type]


def test_the_table_is_made_by_create_all_also_in_an_existing_ledger(
    ledger_url: Callable[..., str],
) -> None:
    url = ledger_url()
    with Ledger(url) as led:
        with led.engine.begin() as conn:
            conn.execute(text("DROP TABLE sends"))  # a ledger from before this table
            conn.execute(text("DROP TABLE alembic_version"))  # and before migrations
        assert "sends" not in inspect(led.engine).get_table_names()
    with Ledger(url) as led:
        assert "sends" in inspect(led.engine).get_table_names()
        assert begin(led).state == "pending"
    assert s.sends.name == "sends"
    assert set(SEND_STATES) == {"awaiting", "pending", "sent", "refused", "rejected", "withdrawn"}


def test_a_send_is_pending_before_the_request_and_keeps_what_repeats_it(ledger: Ledger) -> None:
    record = begin(ledger, track_click=True)
    assert record.state == "pending" and record.pending
    assert record.client_ref == "console-1"
    assert record.recipients == NUMBERS and record.recipient_count == 3
    assert (record.country, record.sender, record.content) == ("US", "Shop", "Hello")
    assert record.track_click is True
    assert record.estimated == Decimal("0.15") and record.debited is None
    assert record.created_at == T0 and record.attempts == 1
    assert record.session == "a1b2c3" and record.created_by is None
    assert ledger.send_record("console-1") == record
    assert ledger.send_record("nope") is None


def test_beginning_the_same_reference_twice_returns_the_first_record(ledger: Ledger) -> None:
    first = begin(ledger)
    again = begin(ledger, content="Something else")  # a double click, a rerun
    assert again == first


def test_the_answer_completes_it_with_its_task_in_one_go(ledger: Ledger, clock: Clock) -> None:
    begin(ledger)
    clock.now = T0 + timedelta(seconds=2)
    done = ledger.finish_send("console-1", result())
    assert done.state == "sent" and not done.pending
    assert done.task_id == "20240101-0001" and done.debited == Decimal("0.15")
    assert done.updated_at == T0 + timedelta(seconds=2) and done.error is None
    task = ledger.task("20240101-0001")
    assert task is not None and task.client_ref == "console-1" and task.sender == "Shop"
    assert [m.recipient for m in ledger.task_messages("20240101-0001")] == list(NUMBERS)
    assert ledger.finish_send("console-1", result()) == done  # the same answer again: no change
    assert len(ledger.task_messages("20240101-0001")) == 3


def test_a_refusal_is_kept_with_why_and_never_overrides_a_send(ledger: Ledger) -> None:
    begin(ledger)
    refused = ledger.refuse_send(
        "console-1",
        "Not sent: today's SMS cap is 2 messages. See http://127.0.0.1:8501/hooks/keda/"
        "abcdefabcdefabcdefabcdef",
        code="3002",
    )
    assert refused.state == "refused" and refused.error_code == "3002"
    assert "today's SMS cap" in (refused.error or "")
    assert "abcdefabcdefabcdefabcdef" not in (refused.error or "")  # redacted
    assert refused.task_id is None and refused.debited is None

    begin(ledger, "console-2")
    ledger.finish_send("console-2", result("20240101-0002"))
    assert ledger.refuse_send("console-2", "late", code="3002").state == "sent"


def test_a_lost_answer_stays_pending_with_the_error_and_a_check_counts(
    ledger: Ledger, clock: Clock
) -> None:
    begin(ledger)
    noted = ledger.note_send_error("console-1", "Could not reach KedaSMS: connection reset.")
    assert noted.state == "pending" and "connection reset" in (noted.error or "")
    clock.now = T0 + timedelta(minutes=5)
    retried = ledger.retry_send("console-1")
    assert retried.attempts == 2 and retried.updated_at == T0 + timedelta(minutes=5)
    assert retried.created_at == T0
    done = ledger.finish_send("console-1", result())
    assert done.state == "sent" and done.error is None


def test_a_sent_answer_wins_over_an_earlier_refusal(ledger: Ledger) -> None:
    """The gateway accepted it after all (a check after a cap was raised): money moved."""
    begin(ledger)
    ledger.refuse_send("console-1", "cap", code="3002")
    assert ledger.finish_send("console-1", result()).state == "sent"


def test_unknown_references_are_refused_loudly(ledger: Ledger) -> None:
    for call in (
        lambda: ledger.finish_send("nope", result()),
        lambda: ledger.refuse_send("nope", "x"),
        lambda: ledger.note_send_error("nope", "x"),
        lambda: ledger.retry_send("nope"),
    ):
        with pytest.raises(KeyError):
            call()


def test_recent_sends_newest_first_with_a_limit(ledger: Ledger, clock: Clock) -> None:
    for i in range(5):
        clock.now = T0 + timedelta(minutes=i)
        begin(ledger, f"console-{i}")
    recent = ledger.recent_sends(limit=3)
    assert [r.client_ref for r in recent] == ["console-4", "console-3", "console-2"]
    assert len(ledger.recent_sends()) == 5


def test_status_counts_per_task(ledger: Ledger) -> None:
    begin(ledger)
    ledger.finish_send("console-1", result())
    from kedacore.ledger import StatusUpdate

    ledger.apply_status(StatusUpdate("msg_0000000000000001", "SENT", occurred_at=T0))
    ledger.apply_status(StatusUpdate("msg_0000000000000002", "FAILED", occurred_at=T0))
    counts = ledger.task_status_counts(["20240101-0001", "nope"])
    assert counts == {"20240101-0001": {"QUEUED": 1, "SENT": 1, "FAILED": 1}}


def test_two_threads_finishing_the_same_send_record_it_once(ledger: Ledger) -> None:
    """A check from another tab and the original request's late answer, at once."""
    begin(ledger)
    errors: list[BaseException] = []

    def finish() -> None:
        try:
            ledger.finish_send("console-1", result())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=finish) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(ledger.task_messages("20240101-0001")) == 3
    assert ledger.send_record("console-1").state == "sent"  # type: ignore[union-attr]
