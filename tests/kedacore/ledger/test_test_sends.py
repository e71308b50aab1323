"""A campaign's test send in the ledger (New campaign → Send a test; migration 0005).

A test is a Send-page send marked ``test``: its record and its task say so, its answer is
audited as ``campaign_test`` (not ``send``), it belongs to no campaign, and Spend's
"of which tests" reads it from the messages of test tasks. An ordinary send is not a test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import select

from kedacore.analytics import Filters
from kedacore.analytics.queries import spend_of_tests
from kedacore.api.types import SendResult, SentMessage
from kedacore.ledger import Ledger
from kedacore.ledger import schema as s
from kedacore.ledger.audit import AuditFilter
from tests.kedacore.ledger.test_ledger_sends import T0, Clock, begin, result


@pytest.fixture
def ledger(ledger_url: Callable[..., str]) -> Iterator[Ledger]:
    with Ledger(ledger_url(), clock=Clock()) as led:
        yield led


def ordinary(task_id: str) -> SendResult:
    """An ordinary send's answer: one message, its own msgid."""
    msg = SentMessage(f"msg_{task_id.lower()}", "+12065550199")
    return replace(result(task_id, ("+12065550199",)), messages=(msg,), segments=1)


def _task_test(ledger: Ledger, task_id: str) -> bool:
    with ledger.engine.connect() as conn:
        return bool(
            conn.execute(select(s.tasks.c.test).where(s.tasks.c.task_id == task_id)).scalar_one()
        )


def _actions(ledger: Ledger) -> list[tuple[str, str, str]]:
    entries = ledger.audit_entries(AuditFilter(actions=["send", "campaign_test"]))
    return sorted((e.action, e.target, e.outcome) for e in entries)


def test_a_test_send_is_marked_in_its_record_its_task_and_the_audit(ledger: Ledger) -> None:
    record = begin(ledger, "test-a-0", created_by="ana@example.com", test=True)
    assert record.test and record.pending
    begin(ledger, "console-1")  # an ordinary send beside it
    ledger.finish_send("test-a-0", result("T-TEST"), actor="ana@example.com")
    ledger.finish_send("console-1", ordinary("T-SEND"), actor="ana@example.com")

    assert ledger.send_record("test-a-0").test  # type: ignore[union-attr]
    assert not ledger.send_record("console-1").test  # type: ignore[union-attr]
    assert _task_test(ledger, "T-TEST") and not _task_test(ledger, "T-SEND")
    with ledger.engine.connect() as conn:
        campaigns = conn.execute(
            select(s.messages.c.campaign_id).where(s.messages.c.task_id == "T-TEST")
        ).all()
    assert campaigns == [(None,)] * 3  # no campaign: a test is not a campaign's message
    marked = {(r.task_id, r.test) for r in ledger.message_log().rows}  # the log labels it
    assert marked == {("T-TEST", True), ("T-SEND", False)}
    assert _actions(ledger) == [
        ("campaign_test", "send test-a-0", "done"),
        ("send", "send console-1", "done"),
    ]


def test_a_refused_test_is_audited_as_a_test(ledger: Ledger) -> None:
    begin(ledger, "test-b-0", test=True)
    ledger.refuse_send("test-b-0", "Insufficient balance", code="3002", actor="ana@example.com")
    assert ledger.send_record("test-b-0").state == "refused"  # type: ignore[union-attr]
    assert _actions(ledger) == [("campaign_test", "send test-b-0", "refused")]


def test_the_same_reference_twice_is_one_test(ledger: Ledger) -> None:
    begin(ledger, "test-c-0", test=True)
    again = begin(ledger, "test-c-0", test=True)
    ledger.finish_send("test-c-0", result("T-C"), actor="ana@example.com")
    ledger.finish_send("test-c-0", result("T-C"), actor="ana@example.com")  # a repeat
    assert again.test
    with ledger.engine.connect() as conn:
        assert conn.execute(select(s.sends.c.id)).all() == [(1,)]
        tasks = conn.execute(select(s.tasks.c.task_id)).all()
    assert tasks == [("T-C",)]
    assert len(_actions(ledger)) == 1


def test_spend_counts_the_tests_of_the_period(ledger: Ledger) -> None:
    begin(ledger, "test-d-0", test=True, estimated_micros=150_000)
    ledger.finish_send("test-d-0", result("T-D"), actor="ana@example.com")
    begin(ledger, "console-2")
    ledger.finish_send("console-2", ordinary("T-E"))
    day = T0.date()
    assert spend_of_tests(ledger, Filters(day, day)) == (3, 0, 150_000)  # frozen, not charged yet
    assert spend_of_tests(ledger, Filters(day, day, countries=("GB",))) == (0, 0, 0)
    assert spend_of_tests(ledger, Filters(date(2024, 1, 2), date(2024, 1, 3))) == (0, 0, 0)
