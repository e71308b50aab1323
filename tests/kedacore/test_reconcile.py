"""Reconciliation against a fake client with the AsyncKedaClient's method names."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from kedacore.api.types import MessageStatus, SendResult, SentMessage
from kedacore.ledger import Ledger, StatusUpdate
from kedacore.reconcile import reconcile

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


class NotFound(Exception):
    """Like kedacore.api.errors.NotFoundError: carries the HTTP status."""

    http_status = 404


class FakeSms:
    """The service's truth, served like ``client.sms`` of AsyncKedaClient."""

    def __init__(self) -> None:
        self.truth: dict[str, MessageStatus] = {}
        self.broken_tasks: set[str] = set()
        self.broken_msgids: set[str] = set()
        self.calls = {"status": 0, "task": 0}
        self.in_flight = 0
        self.most_in_flight = 0
        self.delay = 0.0

    async def _enter(self) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(self.delay)
        self.in_flight -= 1

    async def status(self, msgid: str) -> MessageStatus:
        self.calls["status"] += 1
        await self._enter()
        if msgid in self.broken_msgids:
            raise ConnectionError("connection reset")
        if msgid not in self.truth:
            raise NotFound(f"no message {msgid}")
        return self.truth[msgid]

    async def task(self, task_id: str) -> list[MessageStatus]:
        self.calls["task"] += 1
        await self._enter()
        if task_id in self.broken_tasks:
            raise ConnectionError("connection reset")
        return [m for m in self.truth.values() if m.task_id == task_id]


class FakeClient:
    def __init__(self) -> None:
        self.sms = FakeSms()


def status(msgid: str, task_id: str, state: str) -> MessageStatus:
    return MessageStatus(
        msgid=msgid,
        status=state,
        recipient="+12065550123",
        sender="KedaSMS",
        message="hi",
        task_id=task_id,
        segments=1,
        cost=Decimal("0") if state == "FAILED" else Decimal("0.05"),
        created_time=T0,
        sent_time=None if state in ("QUEUED", "FAILED") else T0,
        delivered_time=T0.replace(second=3) if state == "DELIVERED" else None,
        updated_time=T0.replace(second=4),
    )


def record_task(ledger: Ledger, client: FakeClient, task_id: str, n: int, state: str) -> list[str]:
    ids = [f"msg_{task_id.encode().hex()[-6:]}{i:06x}" for i in range(n)]
    result = SendResult(
        task_id,
        "ok",
        Decimal("0.05") * n,
        "USD",
        n,
        tuple(SentMessage(m, "+12065550123") for m in ids),
    )
    ledger.record_send(result, country="US", sender="KedaSMS", content="hi")
    for m in ids:
        client.sms.truth[m] = status(m, task_id, state)
    return ids


@pytest.fixture
def ledger(ledger_url: Callable[..., str]) -> Iterator[Ledger]:
    with Ledger(ledger_url()) as led:
        yield led


def test_ten_thousand_open_messages_by_task(ledger: Ledger) -> None:
    client = FakeClient()
    for t in range(10):
        record_task(ledger, client, f"T{t:03d}", 1000, "DELIVERED")
    started = time.perf_counter()
    report = asyncio.run(reconcile(ledger, client))
    assert time.perf_counter() - started < 30  # ~2 s here; generous for a loaded CI machine
    assert (report.checked, report.updated, report.now_final, report.errors) == (
        10_000,
        10_000,
        10_000,
        0,
    )
    assert (report.task_requests, report.status_requests) == (10, 0)
    assert ledger.non_final_messages() == []
    some = ledger.task_messages("T003")[17]
    assert (some.status, some.cost_micros, some.delivery_ms, some.source) == (
        "DELIVERED",
        50_000,
        3000,
        "reconcile",
    )
    assert len(ledger.lookups(some.msgid)) == 1
    again = asyncio.run(reconcile(ledger, client))
    assert (again.checked, again.task_requests, again.status_requests) == (0, 0, 0)


def test_mostly_final_tasks_are_asked_one_msgid_at_a_time(ledger: Ledger) -> None:
    client = FakeClient()
    ids = record_task(ledger, client, "T1", 60, "DELIVERED")
    ledger.apply_statuses(client.sms.truth[m] for m in ids[2:])  # 58 of 60 already final
    client.sms.truth[ids[1]] = status(ids[1], "T1", "SENT")
    client.sms.truth[ids[0]] = status(ids[0], "T1", "UNDELIVERED")
    report = asyncio.run(reconcile(ledger, client))
    assert (report.task_requests, report.status_requests) == (0, 2)
    assert (report.checked, report.updated, report.now_final) == (2, 2, 1)
    m = ledger.message(ids[0])
    assert m is not None and m.status == "UNDELIVERED" and m.final_at == T0.replace(second=4)


def test_errors_are_counted_and_a_failed_task_falls_back(ledger: Ledger) -> None:
    client = FakeClient()
    ids = record_task(ledger, client, "T1", 5, "SENT")
    lone = record_task(ledger, client, "T2", 1, "FAILED")
    client.sms.broken_tasks.add("T1")
    client.sms.broken_msgids.add(ids[0])
    del client.sms.truth[ids[1]]
    report = asyncio.run(reconcile(ledger, client))
    assert (report.task_requests, report.status_requests) == (1, 6)
    assert (report.checked, report.updated, report.now_final) == (4, 4, 1)
    assert (report.errors, report.not_found) == (2, 1)
    assert any("connection reset" in e for e in report.error_samples)
    still = {m.msgid: m.status for m in ledger.non_final_messages()}
    assert still == {ids[0]: "QUEUED", ids[1]: "QUEUED"} | {m: "SENT" for m in ids[2:]}
    lone_message = ledger.message(lone[0])
    assert lone_message is not None and lone_message.cost_micros == 0


def test_answers_never_move_a_message_back(ledger: Ledger) -> None:
    client = FakeClient()
    ids = record_task(ledger, client, "T1", 2, "QUEUED")
    ledger.apply_status(StatusUpdate(ids[0], "SENT", sent_at=T0, occurred_at=T0))
    report = asyncio.run(reconcile(ledger, client))  # the service lags: still QUEUED
    assert (report.checked, report.updated) == (2, 0)
    m = ledger.message(ids[0])
    assert m is not None and m.status == "SENT"


def test_concurrency_and_limit_are_respected(ledger: Ledger) -> None:
    client = FakeClient()
    for t in range(40):
        ids = record_task(ledger, client, f"T{t:02d}", 3, "DELIVERED")
        ledger.apply_statuses(client.sms.truth[m] for m in ids[:2])  # one open in each
    client.sms.delay = 0.002
    options = {"concurrency": 4, "limit": 30, "group_size": 7, "task_share": 0.5}
    report = asyncio.run(reconcile(ledger, client, **options))
    assert report.status_requests == 30 and report.checked == 30
    assert client.sms.most_in_flight == 4
    assert len(ledger.non_final_messages()) == 10
    with pytest.raises(ValueError, match="concurrency"):
        asyncio.run(reconcile(ledger, client, concurrency=0))


def test_an_answer_about_another_message_is_an_error(ledger: Ledger) -> None:
    client = FakeClient()
    ids = record_task(ledger, client, "T1", 1, "DELIVERED")
    client.sms.truth[ids[0]] = replace(client.sms.truth[ids[0]], msgid="msg_ffffffffffff")
    report = asyncio.run(reconcile(ledger, client))
    assert (report.checked, report.errors) == (0, 1)
