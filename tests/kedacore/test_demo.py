"""The demo-history generator: consistent rows, exact money, removable without a trace."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from kedacore import demo
from kedacore.api.types import SendResult, SentMessage
from kedacore.ledger import Ledger, rollup
from kedacore.ledger import schema as s
from kedacore.ledger.engine import reading

NOW = datetime(2024, 3, 10, 15, 30, tzinfo=UTC)
PRICES = {c.code: c.price_micros for c in demo.COUNTRIES}


@pytest.fixture(scope="module")
def ledger(module_ledger_url: Callable[..., str]) -> Iterator[Ledger]:
    with Ledger(module_ledger_url("demo"), clock=lambda: NOW) as led:
        result = SendResult(
            "20240310-0001",
            "ok",
            Decimal("0.05"),
            "USD",
            1,
            (SentMessage("msg_0000000000aa", "+12065550100"),),
        )
        led.record_send(result, country="US", sender="Real", content="hi", created_at=NOW)
        report = demo.generate(led, days=7, messages=3_000, seed=7)
        assert report.messages == 3_000 and report.campaigns >= 1
        yield led


def frame(ledger: Ledger, table: s.Table) -> pd.DataFrame:
    with reading(ledger.engine) as conn:
        return pd.DataFrame(conn.execute(select(table)).mappings().all())


def test_statuses_agree_with_times(ledger: Ledger) -> None:
    m = frame(ledger, s.messages)
    m = m[m.demo]
    assert len(m) == 3_000
    assert set(m.status) <= {"QUEUED", "SENT", "DELIVERED", "UNDELIVERED", "FAILED"}
    assert {"DELIVERED", "UNDELIVERED", "FAILED"} <= set(m.status)
    now = pd.Timestamp(NOW)
    for col in ("created_at", "sent_at", "delivered_at", "final_at", "updated_at", "last_click_at"):
        assert (m[col].dropna() <= now).all(), col
    assert (m.created_at.map(lambda t: t.date()) == m.day).all()
    queued = m[m.status == "QUEUED"]
    assert queued.sent_at.isna().all() and queued.cost_micros.isna().all()
    failed = m[m.status == "FAILED"]
    assert failed.sent_at.isna().all() and (failed.cost_micros == 0).all()
    assert failed.final_at.notna().all()
    sent_or_later = m[m.status.isin(["SENT", "DELIVERED", "UNDELIVERED"])]
    assert (sent_or_later.sent_at >= sent_or_later.created_at).all()
    delivered = m[m.status == "DELIVERED"]
    assert (delivered.final_at == delivered.delivered_at).all()
    ms = (delivered.delivered_at - delivered.sent_at) // pd.Timedelta(milliseconds=1)
    assert (ms == delivered.delivery_ms).all()
    others = m[m.status != "DELIVERED"]
    assert others.delivered_at.isna().all() and others.delivery_ms.isna().all()
    assert m[m.status.isin(["QUEUED", "SENT"])].final_at.isna().all()
    clicked = m[m.clicks > 0]
    assert (clicked.status == "DELIVERED").all() and clicked.last_click_at.notna().all()
    assert m[m.clicks == 0].last_click_at.isna().all()
    assert clicked.campaign_id.notna().all()  # only campaign messages carry links


def test_money_is_price_times_segments(ledger: Ledger) -> None:
    m = frame(ledger, s.messages)
    m = m[m.demo]
    price = m.country.map(PRICES) * m.segments
    assert (m.estimated_micros == price).all()
    charged = m[m.status.isin(["SENT", "DELIVERED", "UNDELIVERED"])]
    assert (charged.cost_micros == price[charged.index]).all()
    t = frame(ledger, s.tasks)
    t = t[t.demo].set_index("task_id")
    per_task = m.groupby("task_id").agg(
        n=("msgid", "size"), seg=("segments", "sum"), est=("estimated_micros", "sum")
    )
    assert (per_task.n == t.recipients[per_task.index]).all()
    assert (per_task.seg == t.segments[per_task.index]).all()
    assert (per_task.est == t.debited_micros[per_task.index]).all()
    assert len(per_task) == len(t)
    c = frame(ledger, s.campaigns)
    assert c.demo.all()
    by_campaign = m.groupby("campaign_id").msgid.size()
    for row in c.itertuples():
        assert row.recipients == by_campaign.get(row.id, 0)
    assert m.msgid.str.fullmatch(r"msg_[0-9a-f]{12,}").all()
    assert m.recipient.str.fullmatch(r"\+[1-9][0-9]{6,14}").all()


def test_the_rollup_counts_the_demo_rows(ledger: Ledger) -> None:
    with reading(ledger.engine) as conn:
        assert rollup.differences(conn) == {}


def test_removal_leaves_other_rows_and_generation_is_repeatable(
    ledger_url: Callable[..., str],
) -> None:
    with Ledger(ledger_url(), clock=lambda: NOW) as led:
        result = SendResult(
            "20240310-0001",
            "ok",
            Decimal("0.05"),
            "USD",
            1,
            (SentMessage("msg_0000000000aa", "+12065550100"),),
        )
        led.record_send(result, country="US", sender="Real", content="hi", created_at=NOW)
        demo.generate(led, days=3, messages=500, seed=3)
        first = frame(led, s.messages).sort_values("msgid").reset_index(drop=True)
        demo.generate(led, days=3, messages=500, seed=3)  # replaces the demo rows
        again = frame(led, s.messages).sort_values("msgid").reset_index(drop=True)
        # Campaign ids are new ones on PostgreSQL (a sequence is never reused; SQLite reuses
        # the highest rowid): the same messages in the same campaigns, whatever their ids.
        pd.testing.assert_frame_equal(
            first.drop(columns=["updated_at", "campaign_id"]),
            again.drop(columns=["updated_at", "campaign_id"]),
        )
        pairs = set(zip(first.campaign_id.fillna(0), again.campaign_id.fillna(0), strict=True))
        assert len(pairs) == first.campaign_id.nunique(dropna=False)  # one to one
        assert led.remove_demo_data() == 500
        with reading(led.engine) as conn:
            assert conn.scalar(select(func.count()).select_from(s.messages)) == 1
            assert conn.scalar(select(func.count()).select_from(s.tasks)) == 1
            assert conn.scalar(select(func.count()).select_from(s.campaigns)) == 0
            assert rollup.differences(conn) == {}
        assert led.message("msg_0000000000aa") is not None


# The command writes to a data folder's ledger: SQLite (and the in-memory one below) only.
def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--data-dir", str(tmp_path), "--days", "2", "--messages", "200"]) == 0
    assert "wrote 200 demo messages" in capsys.readouterr().out
    assert demo.main(["--data-dir", str(tmp_path), "--remove"]) == 0
    assert "removed 200 demo messages" in capsys.readouterr().out


def test_today_stops_at_now() -> None:
    with Ledger("sqlite://", clock=lambda: NOW) as led:
        demo.generate(led, days=1, messages=400, seed=1)
        m = frame(led, s.messages)
        assert (m.created_at <= pd.Timestamp(NOW)).all()
        assert (m.created_at >= pd.Timestamp(NOW - timedelta(hours=16))).all()
