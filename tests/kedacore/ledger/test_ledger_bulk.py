"""Bulk writes past SQLAlchemy's per-row processing store exactly what SQLAlchemy stores."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import bindparam, insert, select, update

from kedacore.campaign.plan import PlannedRequest
from kedacore.ledger import Ledger, PlannedBatch
from kedacore.ledger import schema as s
from kedacore.ledger.bulk import execute_many
from kedacore.ledger.engine import writing
from kedacore.money import MoneyError, to_micros

NOW = datetime(2025, 3, 1, 12, 30, 15, 250_000, tzinfo=UTC)
KEYS = ("task_id", "campaign_id", "country", "sender", "content", "recipients", "segments")
KEYS += ("debited_micros", "currency", "client_ref")
ROWS = [
    ("20250301-0001", None, "US", "Shop", "Hi 'you' — 20% \"off\"", 1, 1, 50_000, "USD", "r-1"),
    ("20250301-0002", None, "GB", None, "Hi %s %(x)s ?", 3, 6, 0, "USD", None),
]
INSERT_TASKS = insert(s.tasks).values(created_at=bindparam("now"), day=bindparam("day"), demo=False)
# The same keys in another order than the table's: the parameters are put in its order.
SHUFFLED = KEYS[::-1]
INSERT_SHUFFLED = insert(s.tasks).values(
    day=bindparam("day"), demo=False, created_at=bindparam("now")
)


def raw(path: Path, table: str) -> list[tuple]:
    """The rows as SQLite stores them (times as text), not as SQLAlchemy reads them back."""
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()


# The next three read the rows as SQLite's file stores them: SQLite only.
def test_inserted_rows_equal_sqlalchemys_own(tmp_path: Path) -> None:
    ours, theirs, shuffled = (Ledger(f"sqlite:///{tmp_path / f'{n}.db'}") for n in "abc")
    with writing(ours.engine) as conn:
        execute_many(conn, INSERT_TASKS, KEYS, ROWS, now=NOW, day=NOW.date())
    with writing(shuffled.engine) as conn:
        rows = [row[::-1] for row in ROWS]
        execute_many(conn, INSERT_SHUFFLED, SHUFFLED, rows, now=NOW, day=NOW.date())
    with writing(theirs.engine) as conn:
        dicts = [
            {**dict(zip(KEYS, row, strict=True)), "created_at": NOW, "day": NOW.date()}
            for row in ROWS
        ]
        conn.execute(insert(s.tasks), dicts)
    expected = raw(tmp_path / "b.db", "tasks")
    assert raw(tmp_path / "a.db", "tasks") == expected
    assert raw(tmp_path / "c.db", "tasks") == expected
    assert expected[0][-3:] == ("2025-03-01 12:30:15.250000", "2025-03-01", 0)
    assert ours.task("20250301-0001").created_at == NOW


def test_an_update_with_literals_and_one_time_per_call(tmp_path: Path) -> None:
    led = Ledger(f"sqlite:///{tmp_path / 'l.db'}", clock=lambda: NOW)
    cid = led.create_campaign("C")
    batches = led.plan_campaign(cid, [PlannedBatch("US", "Hi", (f"+1206200000{i}",)) for i in "12"])
    c = s.campaign_batches.c
    stmt = (
        update(s.campaign_batches)
        .where(c.id == bindparam("b_id"))
        .values(state="sent", task_id=bindparam("b_task"), attempts=c.attempts + 1)
        .values(error=None, updated_at=bindparam("now"))
    )
    later = datetime(2025, 3, 2, tzinfo=UTC)
    with writing(led.engine) as conn:
        rows = [(b.id, f"t{b.id}") for b in batches]
        execute_many(conn, stmt, ("b_id", "b_task"), rows, now=later)
    after = led.campaign_batches(cid)
    assert [(b.state, b.task_id, b.attempts) for b in after] == [
        ("sent", f"t{b.id}", 1) for b in batches
    ]
    # updated_at, then attempted_at and not_before (added by later migrations)
    assert {r[-3] for r in raw(tmp_path / "l.db", "campaign_batches")} == {
        "2025-03-02 00:00:00.000000"
    }


def test_values_that_need_converting_or_defaults_are_refused(tmp_path: Path) -> None:
    led = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    with writing(led.engine) as conn, pytest.raises(ValueError, match="created_at"):
        row = (*ROWS[0], NOW, date(2025, 3, 1))  # a time per row: SQLAlchemy converts it
        execute_many(conn, insert(s.tasks).values(demo=False), (*KEYS, "created_at", "day"), [row])
    with writing(led.engine) as conn, pytest.raises(ValueError, match="demo"):
        no_demo = insert(s.tasks).values(created_at=bindparam("now"), day=bindparam("day"))
        execute_many(conn, no_demo, KEYS, ROWS, now=NOW, day=NOW.date())  # demo's default
    with writing(led.engine) as conn, pytest.raises(TypeError, match="day"):
        execute_many(conn, INSERT_TASKS, KEYS, ROWS, now=NOW)
    assert raw(tmp_path / "l.db", "tasks") == []


def test_a_plan_is_returned_as_the_ledger_reads_it_back(
    store: str, ledger_url: Callable[..., str], tmp_path: Path
) -> None:
    led = Ledger(ledger_url("l"), clock=lambda: NOW)
    cid = led.create_campaign("C")
    first = led.plan_campaign(cid, [PlannedBatch("us", "Hi", ("+12062000001",), 7, "Shop")])
    odd = ("+12062000002", 'a "quoted" \\ number', "+12062000003", "ünï")  # JSON escapes
    planned = [PlannedBatch("GB", "Yo", odd, 9), PlannedBatch("DE", "Hallo", (), 0)]
    more = led.plan_campaign(cid, planned)
    assert first + more == led.campaign_batches(cid)
    assert [b.seq for b in first + more] == [1, 2, 3]
    assert more[0].recipients == odd and first[0].country == "US"
    if store == "sqlite":  # as the file stores them
        stored = raw(tmp_path / "l.db", "campaign_batches")
        assert {(r[-4], r[-3]) for r in stored} == {(NOW.strftime("%Y-%m-%d %H:%M:%S.%f"),) * 2}
    c = s.campaign_batches.c
    with led.engine.connect() as conn:
        times = conn.execute(select(c.created_at, c.updated_at)).all()
    assert {tuple(t.replace(tzinfo=UTC) for t in row) for row in times} == {(NOW, NOW)}
    campaign = led.campaign(cid)
    assert (campaign.batches, campaign.recipients, campaign.estimated_micros) == (3, 5, 16)


@given(
    st.decimals(min_value=0, max_value=10**9, places=8, allow_nan=False),
    st.integers(0, 12),
    st.integers(1, 1000),
)
def test_a_requests_micro_units_are_those_of_its_cost(price: Decimal, segments, count) -> None:
    request = PlannedRequest("US", None, "Hi", ("+1",) * count, segments, "GSM-7", price)
    try:
        expected = to_micros(request.cost)
    except MoneyError:
        with pytest.raises(MoneyError):
            _ = request.cost_micros
    else:
        assert request.cost_micros == expected


def test_each_paramstyle_stores_the_same(ledger_url: Callable[..., str]) -> None:
    """SQLite's qmark and psycopg's named paramstyle."""
    with Ledger(ledger_url(), clock=lambda: NOW) as led:
        with writing(led.engine) as conn:
            execute_many(
                conn, INSERT_SHUFFLED, SHUFFLED, [r[::-1] for r in ROWS], now=NOW, day=NOW.date()
            )
        tasks = [led.task(row[0]) for row in ROWS]
        assert [(t.content, t.sender, t.client_ref, t.created_at) for t in tasks] == [
            (row[4], row[3], row[9], NOW) for row in ROWS
        ]
        cid = led.create_campaign("C")
        planned = [PlannedBatch("GB", "Yo", ("+447400123456", 'a "q"'), 9)]
        assert led.plan_campaign(cid, planned) == led.campaign_batches(cid)
