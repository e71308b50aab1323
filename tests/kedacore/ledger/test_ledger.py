"""The ledger: schema, recording sends, lookups at scale, campaigns, the cap audit trail."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from kedacore.api.types import Limits, MessageStatus, SendResult, SentMessage
from kedacore.ledger import Ledger, Outcome, PlannedBatch, StatusUpdate
from kedacore.ledger import schema as s

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def msgid(n: int, prefix: str = "a") -> str:
    return f"msg_{prefix}{n:011x}"


def send_result(task_id: str, n: int, *, prefix: str = "a", debited: str = "0.144") -> SendResult:
    return SendResult(
        task_id=task_id,
        message="SMS task created",
        debited_amount=Decimal(debited),
        currency="USD",
        segments=n,
        messages=tuple(SentMessage(msgid(i, prefix), f"+1206555{i:04d}") for i in range(n)),
    )


@pytest.fixture
def ledger(ledger_url: Callable[..., str]) -> Ledger:
    with Ledger(ledger_url()) as led:
        yield led


# SQLite only (the data folder's default file and its pragmas), as is the next one.
def test_default_is_sqlite_in_the_data_folder_with_the_pragmas(tmp_path: Path) -> None:
    led = Ledger(data_dir=tmp_path / "data")
    assert (tmp_path / "data" / "ledger.db").exists()
    tables = set(inspect(led.engine).get_table_names())
    assert tables >= {
        "campaigns",
        "campaign_batches",
        "tasks",
        "messages",
        "events",
        "status_lookups",
        "cap_changes",
    }
    with led.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
    indexes = {i["name"] for i in inspect(led.engine).get_indexes("messages")}
    assert {"ix_messages_day_country", "ix_messages_recipient", "ix_messages_task"} <= indexes
    led.close()
    Ledger(data_dir=tmp_path / "data").close()  # opening again keeps the tables


def test_url_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEDA_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    Ledger().close()
    assert (tmp_path / "env.db").exists()


def test_schema_compiles_for_postgresql() -> None:
    dialect = postgresql.dialect()
    for table in s.metadata.sorted_tables:
        assert "CREATE TABLE" in str(CreateTable(table).compile(dialect=dialect))
        for index in table.indexes:
            str(CreateIndex(index).compile(dialect=dialect))


def test_record_send_writes_the_task_and_every_message(ledger: Ledger) -> None:
    result = send_result("20240101-0001", 3)
    assert ledger.record_send(result, country="us", sender="KedaSMS", content="hi") == 3
    task = ledger.task("20240101-0001")
    assert task is not None
    assert (task.country, task.recipients, task.debited, task.segments) == (
        "US",
        3,
        Decimal("0.144"),
        3,
    )
    messages = ledger.task_messages("20240101-0001")
    assert [m.msgid for m in messages] == sorted(msgid(i) for i in range(3))
    assert {m.status for m in messages} == {"QUEUED"}
    assert sum(m.estimated_micros or 0 for m in messages) == 144_000
    assert all(m.segments == 1 and m.currency == "USD" for m in messages)
    assert messages[0].created_at.tzinfo is not None
    # idempotent: recording the same answer again (a resumed campaign) adds nothing
    assert ledger.record_send(result, country="US", sender="KedaSMS", content="hi") == 0
    assert len(ledger.task_messages("20240101-0001")) == 3


def test_estimates_split_exactly_or_given_per_message(ledger: Ledger) -> None:
    ledger.record_send(send_result("T-1", 3, debited="0.1"), country="US", sender=None, content="")
    shares = sorted(m.estimated_micros for m in ledger.task_messages("T-1"))
    assert shares == [33_333, 33_333, 33_334]
    ledger.record_send(
        send_result("T-2", 2, prefix="b"),
        country="US",
        sender=None,
        content="",
        estimated_micros=[10, 20],
    )
    assert [m.estimated_micros for m in ledger.task_messages("T-2")] == [10, 20]
    with pytest.raises(ValueError, match="estimates"):
        ledger.record_send(
            send_result("T-3", 2, prefix="c"),
            country="US",
            sender=None,
            content="",
            estimated_micros=[1],
        )
    assert ledger.task("T-3") is None  # the failed transaction left nothing behind


def test_lookups_by_phone_and_unknown_ids(ledger: Ledger) -> None:
    ledger.record_send(send_result("T-1", 2), country="US", sender="A", content="x", created_at=T0)
    ledger.record_send(
        send_result("T-2", 2, prefix="b"),
        country="US",
        sender="A",
        content="y",
        created_at=T0 + timedelta(hours=1),
    )
    found = ledger.messages_by_recipient("+12065550000")
    assert [m.task_id for m in found] == ["T-2", "T-1"]  # newest first
    assert found[0].created_at == T0 + timedelta(hours=1)
    assert ledger.message("msg_ffffffffffff") is None
    assert ledger.task("nope") is None
    assert ledger.messages_by_recipient("+10000000000") == []


def test_ten_thousand_msgids_at_once(ledger: Ledger) -> None:
    for t in range(10):
        ledger.record_send(
            send_result(f"T-{t}", 1000, prefix=f"{t:x}"), country="US", sender=None, content=""
        )
    wanted = [msgid(i, f"{t:x}") for t in reversed(range(10)) for i in range(1000)]
    wanted.insert(5, "msg_ffffffffffff")  # unknown: left out
    wanted.append(wanted[0])  # repeated: once
    found = ledger.messages_many(wanted)
    assert len(found) == 10_000
    assert [m.msgid for m in found] == [w for w in wanted[:-1] if w != "msg_ffffffffffff"]
    assert len(ledger.non_final_messages()) == 10_000
    assert len(ledger.non_final_messages(limit=10)) == 10
    counts = ledger.task_message_counts(f"T-{t}" for t in range(10))
    assert counts == {f"T-{t}": 1000 for t in range(10)}


def test_lookups_are_recorded_and_applied_together(ledger: Ledger) -> None:
    ledger.record_send(send_result("T-1", 1), country="US", sender="A", content="x")
    answer = MessageStatus.from_wire(
        {
            "msgid": msgid(0),
            "status": "DELIVERED",
            "recipient": "+12065550000",
            "taskId": "T-1",
            "cost": "0.048",
            "segments": 1,
            "sent_time": "2024-01-01T12:00:00Z",
            "delivered_time": "2024-01-01T12:00:02.500Z",
        }
    )
    assert ledger.apply_lookups([answer]) == [Outcome.APPLIED]
    m = ledger.message(msgid(0))
    assert m is not None
    assert (m.status, m.cost, m.delivery_ms, m.source) == (
        "DELIVERED",
        Decimal("0.048"),
        2500,
        "lookup",
    )
    assert m.final_at == datetime(2024, 1, 1, 12, 0, 2, 500_000, tzinfo=UTC)
    [lookup] = ledger.lookups(msgid(0))
    assert lookup.status == "DELIVERED" and '"cost":"0.048"' in lookup.result
    assert ledger.record_lookups([answer]) == 1
    assert len(ledger.lookups(msgid(0))) == 2


def test_clicks_count_on_the_message(ledger: Ledger) -> None:
    ledger.record_send(send_result("T-1", 1), country="US", sender="A", content="x")
    assert ledger.record_click(msgid(0), clicked_at=T0) is Outcome.APPLIED
    assert ledger.record_click(msgid(0), clicked_at=T0 - timedelta(minutes=1)) is Outcome.APPLIED
    m = ledger.message(msgid(0))
    assert m is not None and (m.clicks, m.last_click_at) == (2, T0)
    assert ledger.record_click("msg_ffffffffffff") is Outcome.UNKNOWN


def test_derived_day_column_is_the_utc_date(ledger: Ledger) -> None:
    berlin_morning = datetime(2024, 1, 2, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    naive_late = datetime(2024, 1, 1, 23, 59)  # naive: taken as UTC
    for i, created in enumerate([berlin_morning, naive_late]):
        result = send_result(f"T-{i}", 1, prefix=str(i))
        ledger.record_send(result, country="US", sender="A", content="", created_at=created)
    with ledger.engine.connect() as conn:
        rows = conn.execute(select(s.messages.c.day, s.tasks.c.day).join(s.tasks)).all()
    assert rows == [(date(2024, 1, 1), date(2024, 1, 1))] * 2
    m = ledger.message(msgid(0, "0"))
    assert m is not None and m.created_at == datetime(2024, 1, 1, 22, 30, tzinfo=UTC)


def test_cap_changes_are_an_audit_trail(ledger: Ledger) -> None:
    before = Limits.from_wire(
        {"dailySmsCap": None, "dailySpendCap": None, "alertThreshold": 0.8, "blockOnLimit": False}
    )
    changes = ledger.record_cap_change(
        before,
        {"dailySmsCap": 5000, "dailySpendCap": Decimal("200.50"), "alertThreshold": "0.8"},
        changed_by="finance@example.com",
        changed_at=T0,
    )
    assert [(c.field, c.before, c.after) for c in changes] == [
        ("daily_sms_cap", None, 5000),
        ("daily_spend_cap", None, Decimal("200.5")),
    ]
    assert (
        ledger.record_cap_change(before, {"alertThreshold": Decimal("0.80")}, changed_by="x") == []
    )
    ledger.record_cap_change(
        {"block_on_limit": False},
        {"block_on_limit": True},
        changed_by="ops",
        changed_at=T0 + timedelta(minutes=5),
    )
    trail = ledger.cap_changes()
    assert [(c.changed_by, c.field, c.after) for c in trail] == [
        ("ops", "block_on_limit", True),
        ("finance@example.com", "daily_spend_cap", Decimal("200.5")),
        ("finance@example.com", "daily_sms_cap", 5000),
    ]
    assert trail[1].change_id == trail[2].change_id != trail[0].change_id
    assert trail[0].changed_at == T0 + timedelta(minutes=5)
    with pytest.raises(ValueError, match="not cap fields"):
        ledger.record_cap_change({}, {"apiKey": "secret"}, changed_by="x")
    with pytest.raises(ValueError, match="changed_by"):
        ledger.record_cap_change({}, {"daily_sms_cap": 1}, changed_by=" ")
    with pytest.raises(TypeError, match="float"):
        ledger.record_cap_change({}, {"daily_spend_cap": 0.1}, changed_by="x")


def test_a_campaign_plan_resumes_exactly_once(ledger: Ledger) -> None:
    cid = ledger.create_campaign("Spring", template="Hi {name}", sender="Shop", created_by="ann")
    plan = [
        PlannedBatch("US", "Hi A", ("+12065550000", "+12065550001"), estimated_micros=96_000),
        PlannedBatch("CN", "Hi B", ("+8613800138000",), estimated_micros=50_000, sender="Shop"),
    ]
    batches = ledger.plan_campaign(cid, plan)
    assert [(b.seq, b.state, b.recipients) for b in batches] == [
        (1, "planned", ("+12065550000", "+12065550001")),
        (2, "planned", ("+8613800138000",)),
    ]
    assert len({b.client_ref for b in batches}) == 2
    campaign = ledger.campaign(cid)
    assert campaign is not None
    assert (campaign.status, campaign.recipients, campaign.batches, campaign.estimated_micros) == (
        "planned",
        3,
        2,
        146_000,
    )
    first = send_result("T-1", 2, debited="0.096")
    assert ledger.mark_batch_sent(batches[0].id, first) == 2
    assert ledger.mark_batch_sent(batches[0].id, first) == 0  # a resume after the commit
    ledger.note_batch_error(batches[1].id, "3002: daily SMS cap reached")
    pending = ledger.campaign_batches(cid, states=["planned"])
    assert [(b.seq, b.attempts, b.error) for b in pending] == [
        (2, 1, "3002: daily SMS cap reached")
    ]
    ledger.mark_batch_refused(batches[1].id, "2001: invalid number")
    assert ledger.campaign_batches(cid, states=["planned"]) == []
    ledger.set_campaign_status(cid, "done")
    campaign = ledger.campaign(cid)
    assert campaign is not None and (campaign.status, campaign.debited_micros) == ("done", 96_000)
    assert {m.campaign_id for m in ledger.task_messages("T-1")} == {cid}
    assert ledger.campaign_status_counts(cid) == {"QUEUED": 2}
    assert [c.id for c in ledger.campaigns()] == [cid]
    with pytest.raises(ValueError, match="campaign status"):
        ledger.set_campaign_status(cid, "bogus")
    with pytest.raises(KeyError):
        ledger.mark_batch_refused(999, "x")


def test_demo_rows_can_be_removed(ledger: Ledger) -> None:
    ledger.record_send(send_result("T-1", 2), country="US", sender="A", content="")
    with ledger.engine.begin() as conn:
        conn.execute(s.messages.update().where(s.messages.c.msgid == msgid(0)).values(demo=True))
    assert ledger.remove_demo_data() == 1
    assert [m.msgid for m in ledger.task_messages("T-1")] == [msgid(1)]


def test_concurrent_writers_never_see_a_locked_database(ledger: Ledger) -> None:
    ledger.record_send(send_result("T-1", 50), country="US", sender="A", content="")
    errors: list[BaseException] = []

    def work(kind: str) -> None:
        try:
            for i in range(50):
                if kind == "click":
                    ledger.record_click(msgid(i))
                else:
                    ledger.apply_status(StatusUpdate(msgid(i), kind, occurred_at=T0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in ("SENT", "DELIVERED", "click")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    messages = ledger.task_messages("T-1")
    assert {m.status for m in messages} == {"DELIVERED"}
    assert {m.clicks for m in messages} == {1}
