"""The campaign engine against the real gateway: exactly once, money, pause, resume, threads."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest

from kedacore import AsyncKedaClient, KedaClient, envelope
from kedacore.campaign import CampaignBusyError, CampaignEngine, CampaignProgress, run_loop
from kedacore.campaign.cli import main as cli
from kedacore.campaign.plan import CampaignPlan, plan_requests, preview_campaign
from kedacore.campaign.recipients import read_recipients
from kedacore.ledger import Ledger, PlannedBatch
from kedacore.money import to_micros
from tests.kedacore.campaign.helpers import GatewayTally, client_factory, marketing_csv
from tests.support import free_port


@pytest.fixture
def ledger(ledger_url: Callable[..., str]) -> Ledger:
    with Ledger(ledger_url()) as led:
        yield led


@pytest.fixture
def account(gateway):
    return gateway.create_account(balance="1000")


@pytest.fixture
def engine(gateway, account, ledger) -> CampaignEngine:
    factory = client_factory(gateway.base_url, account.api_key, account.encryption_key)
    return CampaignEngine(ledger, factory, progress_interval=0)


def sync_client(gateway, account) -> KedaClient:
    return KedaClient(
        account.api_key,
        account.encryption_key,
        base_url=gateway.base_url,
        backup_url=gateway.base_url,
    )


def plan_csv(gateway, account, data: bytes, template: str = "Hi {name}, 20% off today"):
    pricing = sync_client(gateway, account).pricing()
    preview = preview_campaign(read_recipients(data), template, pricing=pricing, sender="Shop")
    return preview, plan_requests(preview)


def spent(gateway, account) -> int:
    money = gateway.money(account.email)
    return money["topped_up"] - money["balance"]


def assert_exactly_once(gateway, plan: CampaignPlan, *, before: int = 0) -> None:
    tally = GatewayTally.read(gateway.query)
    wanted = {n for r in plan.requests for n in r.recipients}
    assert tally.repeated == []
    assert tally.messages == tally.recipients == len(wanted) + before
    assert wanted <= {r for (r,) in gateway.query("SELECT recipient FROM messages")}
    assert tally.tasks == tally.client_refs  # one task per clientRef, never two


def test_a_campaign_reaches_each_recipient_once_and_the_money_matches(
    gateway, account, ledger, engine
) -> None:
    data = marketing_csv(
        60,
        ("US", "GB", "CN"),
        extra_lines=("+12069999999,Bad,US,extra", "not a number,Zed,US"),
    )
    preview, plan = plan_csv(gateway, account, data)
    assert [(p.row, p.kind) for p in preview.problems] == [
        (62, "broken_row"),
        (63, "invalid_number"),
    ]
    assert len(preview.rows) == 60
    assert 3 < len(plan.requests) < 60  # 7 names × 3 countries: shared texts, several per request
    campaign_id = engine.create(plan, name="Spring", created_by="ann")
    # the plan is in the ledger before any request, each batch with its own clientRef
    batches = ledger.campaign_batches(campaign_id)
    assert [b.state for b in batches] == ["planned"] * len(plan.requests)
    assert len({b.client_ref for b in batches}) == len(batches)
    assert gateway.query("SELECT count(*) FROM messages") == [(0,)]
    seen: list[CampaignProgress] = []
    report = engine.run_sync(campaign_id, concurrency=4, on_progress=seen.append)
    assert (report.status, report.reason) == ("done", None)
    assert (report.batches_sent, report.recipients_sent) == (len(plan.requests), 60)
    assert report.debited == plan.total
    assert [p.recipients_sent for p in seen] == sorted(p.recipients_sent for p in seen)
    assert seen[-1].status == "done" and seen[-1].fraction == 1 and not seen[-1].running
    tally = GatewayTally.read(gateway.query)
    assert tally.repeated == [] and tally.messages == tally.recipients == 60
    assert {r for (r,) in gateway.query("SELECT recipient FROM messages")} == {
        row.e164 for row in preview.rows
    }
    # money: the gateway's balance drop == the ledger's debited total == Σ message prices
    campaign = ledger.campaign(campaign_id)
    assert campaign.status == "done"
    assert spent(gateway, account) == campaign.debited_micros == tally.price_micros
    assert campaign.debited_micros == campaign.estimated_micros == to_micros(plan.total)
    assert sum(ledger.campaign_status_counts(campaign_id).values()) == 60
    progress = engine.progress(campaign_id)
    assert (progress.batches_sent, progress.recipients_sent, progress.debited) == (
        len(plan.requests),
        60,
        plan.total,
    )
    # a second run finds nothing left to send
    again = engine.run_sync(campaign_id)
    assert (again.status, again.batches_sent) == ("done", 0)
    assert GatewayTally.read(gateway.query).messages == 60


@pytest.mark.parametrize(
    ("cap", "low", "high"),
    [("daily_sms_cap", 25, 1000), ("daily_spend_cap", "1.25", "100")],
)
def test_a_cap_pauses_the_campaign_and_raising_it_lets_it_finish(
    gateway, account, ledger, engine, cap: str, low, high
) -> None:
    client = sync_client(gateway, account)
    client.limits.update(**{cap: low}, block_on_limit=True)
    _, plan = plan_csv(gateway, account, marketing_csv(40, ("US",), names=40))
    assert len(plan.requests) == 40  # US at 0.05: the cap lets exactly 25 through
    campaign_id = engine.create(plan, name="Capped")
    report = engine.run_sync(campaign_id, concurrency=4)
    wire = {"daily_sms_cap": "dailySmsCap", "daily_spend_cap": "dailySpendCap"}[cap]
    assert report.status == "paused"
    assert wire in report.reason and "15 recipients in 15 batches are left" in report.reason
    campaign = ledger.campaign(campaign_id)
    assert (campaign.status, campaign.error) == ("paused", report.reason)
    assert GatewayTally.read(gateway.query).messages == 25
    client.limits.update(**{cap: high})
    resumed = engine.resume_sync(campaign_id, concurrency=4)
    assert (resumed.status, resumed.batches_sent, resumed.recipients_sent) == ("done", 15, 15)
    assert_exactly_once(gateway, plan)
    assert spent(gateway, account) == ledger.campaign(campaign_id).debited_micros == 2_000_000


def test_a_short_balance_pauses_with_the_shortfall_then_a_top_up_finishes(gateway, ledger) -> None:
    account = gateway.create_account(balance="1")  # 20 messages at 0.05
    engine = CampaignEngine(
        ledger, client_factory(gateway.base_url, account.api_key, account.encryption_key)
    )
    _, plan = plan_csv(gateway, account, marketing_csv(30, ("US",), names=30))
    campaign_id = engine.create(plan, name="Short")
    report = engine.run_sync(campaign_id, concurrency=3)
    assert report.status == "paused"
    # The balance as it was, and when: the reason is shown later, after a top-up perhaps.
    assert re.fullmatch(
        r"Paused: insufficient balance — the batches left need 0\.5 USD; the balance was 0 "
        r"USD at \d\d:\d\d UTC: top up at least 0\.5 USD, then resume\. \(10 recipients in 10 "
        r"batches are left\.\)",
        report.reason,
    ), report.reason
    assert report.progress.estimated_left == Decimal("0.5")
    gateway.topup(account.email, "5")
    assert engine.resume_sync(campaign_id).status == "done"
    assert_exactly_once(gateway, plan)
    assert spent(gateway, account) == 1_500_000


def test_a_refused_batch_is_marked_and_the_others_are_sent(gateway, account, ledger, engine):
    campaign_id = ledger.create_campaign("Mixed", template="Sale")
    ledger.plan_campaign(
        campaign_id,
        [
            PlannedBatch("US", "Sale", ("+12062000001", "+12062000002"), 100_000),
            PlannedBatch("US", "Sale", ("+120620",), 50_000),  # too short: 2001
            PlannedBatch("GB", "Sale", ("+447400000001",), 45_000),
        ],
    )
    report = engine.run_sync(campaign_id)
    assert report.status == "done" and report.batches_refused == 1
    assert report.reason.startswith("1 batches (1 recipients) were refused")
    states = [(b.state, b.error) for b in ledger.campaign_batches(campaign_id)]
    assert [s for s, _ in states] == ["sent", "refused", "sent"]
    assert "+120620" in states[1][1] and "2001" in states[1][1]
    assert GatewayTally.read(gateway.query).messages == 3
    assert engine.progress(campaign_id).recipients_refused == 1


def test_a_refused_callback_url_keeps_the_receivers_token_out_of_the_ledger(
    gateway, account, ledger
) -> None:
    # The gateway (without --allow-private-callbacks) refuses a loopback callback URL and
    # echoes it; the URL's path carries the console receiver's secret token.
    token = "Zq8yXk3vN5mP2wR7tB9cH4jL6dF1gS0a"
    factory = client_factory(gateway.base_url, account.api_key, account.encryption_key)
    engine = CampaignEngine(
        ledger, factory, callback_url=f"http://127.0.0.1:8501/hooks/keda/{token}"
    )
    campaign_id = ledger.create_campaign("Hooked", template="Sale")
    ledger.plan_campaign(campaign_id, [PlannedBatch("US", "Sale", ("+12062000001",), 50_000)])
    report = engine.run_sync(campaign_id)
    assert report.batches_refused == 1
    (batch,) = ledger.campaign_batches(campaign_id)
    assert batch.state == "refused" and "2001" in batch.error and "127.0.0.1" in batch.error
    with ledger.engine.connect() as conn:
        stored = [
            str(v) for row in conn.exec_driver_sql("SELECT * FROM campaign_batches") for v in row
        ] + [str(v) for row in conn.exec_driver_sql("SELECT * FROM campaigns") for v in row]
    assert not any(token in value for value in stored)


def test_a_lost_answer_is_sent_again_with_its_client_ref_and_counted_once(
    gateway, account, ledger, engine
) -> None:
    _, plan = plan_csv(gateway, account, marketing_csv(12, ("US", "GB"), names=3))
    campaign_id = engine.create(plan, name="Lost")
    lost = ledger.campaign_batches(campaign_id)[1]
    # the request went out and the gateway accepted it, but the process died before recording
    first = sync_client(gateway, account).sms.send(
        lost.country,
        lost.recipients,
        lost.content,
        sender_id=lost.sender,
        client_ref=lost.client_ref,
    )
    assert ledger.campaign_batches(campaign_id)[1].state == "planned"
    report = engine.run_sync(campaign_id)
    assert report.status == "done" and report.batches_sent == len(plan.requests)
    assert ledger.campaign_batches(campaign_id)[1].task_id == first.task_id
    assert_exactly_once(gateway, plan)
    assert GatewayTally.read(gateway.query).tasks == len(plan.requests)
    assert spent(gateway, account) == ledger.campaign(campaign_id).debited_micros


def test_connection_errors_leave_batches_planned_then_a_resume_sends_them(
    gateway, account, ledger
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/api"  # nothing listens there
    down = CampaignEngine(
        ledger, client_factory(dead, account.api_key, account.encryption_key, max_retries=0)
    )
    _, plan = plan_csv(gateway, account, marketing_csv(20, ("US",), names=20))
    campaign_id = down.create(plan, name="Offline")
    report = down.run_sync(campaign_id, concurrency=2)
    assert report.status == "paused" and "cannot be reached" in report.reason
    batches = ledger.campaign_batches(campaign_id)
    assert {b.state for b in batches} == {"planned"}
    # 8 failures in a row (and the one in flight beside the eighth), then it stopped trying
    assert sum(b.attempts for b in batches) in (8, 9)
    up = CampaignEngine(
        ledger, client_factory(gateway.base_url, account.api_key, account.encryption_key)
    )
    assert up.resume_sync(campaign_id).status == "done"
    assert_exactly_once(gateway, plan)


def test_a_rate_limit_is_waited_out_and_sending_continues(ledger) -> None:
    key = envelope.generate_key()
    calls = {"n": 0, "limited": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] in (2, 3, 5):
            calls["limited"] += 1
            return httpx.Response(
                429,
                headers={"Retry-After": "0"},
                json={"code": "4029", "message": "too many requests", "data": None},
            )
        payload = json.loads(envelope.open_body(json.loads(request.content), key))
        (number,) = payload["phoneNumbers"]
        data = {
            "taskId": f"20240101-{calls['n']:04d}",
            "message": "SMS task created",
            "debitedAmount": 0.05,
            "currency": "USD",
            "segments": 1,
            "messages": [{"msgid": f"msg_{calls['n']:012x}", "recipient": number}],
        }
        return httpx.Response(200, json={"code": "0", "message": "Success", "data": data})

    engine = CampaignEngine(
        ledger,
        lambda: AsyncKedaClient(
            "ak_test_key_0001", key, max_retries=0, transport=httpx.MockTransport(handler)
        ),
    )
    campaign_id = ledger.create_campaign("Limited", template="Hi")
    ledger.plan_campaign(
        campaign_id,
        [PlannedBatch("US", f"Hi {i}", (f"+1206200{i:04d}",), 50_000) for i in range(6)],
    )
    report = engine.run_sync(campaign_id, concurrency=1)
    assert (report.status, report.batches_sent) == ("done", 6)
    assert calls == {"n": 9, "limited": 3}
    assert ledger.campaign(campaign_id).debited_micros == 300_000


def test_a_background_run_survives_its_caller_and_is_polled_from_the_ledger(
    gateway, account, ledger, engine
) -> None:
    _, plan = plan_csv(gateway, account, marketing_csv(150, ("US", "GB"), names=150))
    campaign_id = engine.create(plan, name="Background")
    handle = engine.start(campaign_id, concurrency=2)
    assert engine.start(campaign_id) is handle  # a second click joins the same run
    assert engine.is_running(campaign_id) and engine.background_run(campaign_id) is handle
    with pytest.raises(CampaignBusyError):
        engine.run_sync(campaign_id)
    with pytest.raises(CampaignBusyError):
        engine.cancel(campaign_id)
    # another engine (a new page session) sees the same run and reads progress from the ledger
    other = CampaignEngine(Ledger(ledger.url), engine.client_factory)
    assert other.is_running(campaign_id)
    report = handle.wait(timeout=60)
    assert report is not None and report.status == "done" and handle.error is None
    progress = other.progress(campaign_id)
    assert (progress.status, progress.fraction, progress.running) == ("done", 1.0, False)
    assert handle.progress == report.progress
    assert_exactly_once(gateway, plan)


def test_stopping_a_background_run_pauses_it_and_resume_finishes_once(
    gateway, account, ledger, engine
) -> None:
    _, plan = plan_csv(gateway, account, marketing_csv(300, ("US",), names=300))
    campaign_id = engine.create(plan, name="Stopped")
    handle = engine.start(campaign_id, concurrency=2)
    gateway.poll(lambda: (handle.progress and handle.progress.batches_sent) or not handle.running)
    assert engine.stop(campaign_id)
    report = handle.wait(timeout=30)
    assert report.status == "paused" and report.reason.startswith("Paused at your request: ")
    assert 0 < report.batches_sent < 300
    assert not engine.stop(campaign_id)  # nothing running any more
    assert engine.resume_sync(campaign_id, concurrency=8).status == "done"
    assert_exactly_once(gateway, plan)


def test_a_cancel_said_while_a_run_sends_is_never_undone_by_the_run(
    gateway, account, ledger, engine
) -> None:
    """Another process (the command line, a replica) cancels while this run sends: the run
    hears it, stops, and ends *cancelled* — not paused, so nothing left is ever sent."""
    _, plan = plan_csv(gateway, account, marketing_csv(300, ("US",), names=300))
    campaign_id = engine.create(plan, name="Cancelled mid-way")
    handle = engine.start(campaign_id, concurrency=2)
    gateway.poll(lambda: (handle.progress and handle.progress.batches_sent) or not handle.running)
    ledger.set_campaign_status(campaign_id, "cancelled", error="cancelled")  # as `cancel` does
    report = handle.wait(timeout=30)
    assert report.status == "cancelled"
    assert ledger.campaign_status(campaign_id) == "cancelled"
    sent = GatewayTally.read(gateway.query).messages
    assert 0 < sent < 300
    with pytest.raises(ValueError, match="cancelled"):
        engine.resume_sync(campaign_id)
    assert GatewayTally.read(gateway.query).messages == sent


class StopScript(Exception):
    """What Streamlit raises inside a script whose session went away."""


def test_a_progress_callback_that_raises_pauses_then_resume_finishes_once(
    gateway, account, ledger, engine
) -> None:
    # The first progress report comes with the first transaction (after ~0.1 s of sending):
    # far more batches than go out by then, or the run may finish before the callback raises.
    _, plan = plan_csv(gateway, account, marketing_csv(1000, ("US",), names=1000))
    campaign_id = engine.create(plan, name="Interrupted")

    def on_progress(progress: CampaignProgress) -> None:
        if progress.batches_sent >= 10:
            raise StopScript

    with pytest.raises(StopScript):
        engine.run_sync(campaign_id, concurrency=2, on_progress=on_progress)
    campaign = ledger.campaign(campaign_id)
    assert campaign.status == "paused" and campaign.error.startswith("Interrupted (StopScript)")
    assert not engine.is_running(campaign_id)
    assert engine.resume_sync(campaign_id).status == "done"
    assert_exactly_once(gateway, plan)


def test_run_sync_refuses_a_running_loop_and_cancelled_campaigns(engine, ledger) -> None:
    campaign_id = ledger.create_campaign("X", template="Hi")
    ledger.plan_campaign(campaign_id, [PlannedBatch("US", "Hi", ("+12062000001",), 50_000)])

    async def inside() -> None:
        engine.run_sync(campaign_id)

    with pytest.raises(RuntimeError, match="inside an event loop"):
        asyncio.run(inside())
    engine.cancel(campaign_id)
    with pytest.raises(ValueError, match="cancelled"):
        engine.run_sync(campaign_id)
    with pytest.raises(KeyError):
        engine.run_sync(999)
    with pytest.raises(ValueError, match="no recipients"):
        engine.create(CampaignPlan("t", None, "USD", ()), name="Empty")


def test_the_command_line_runs_and_reports(gateway, account, ledger, monkeypatch, capsys) -> None:
    _, plan = plan_csv(gateway, account, marketing_csv(10, ("US",), names=2))
    campaign_id = CampaignEngine(ledger, AsyncKedaClient).create(plan, name="CLI")
    monkeypatch.setenv("KEDA_API_KEY", account.api_key)
    monkeypatch.setenv("KEDA_ENCRYPTION_KEY", account.encryption_key)
    monkeypatch.setenv("KEDA_BASE_URL", gateway.base_url)
    monkeypatch.setenv("KEDA_BACKUP_URL", gateway.base_url)
    assert cli(["run", "--ledger", ledger.url, "--campaign", str(campaign_id)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    report = lines[-1]["report"]
    assert (report["status"], report["recipients_sent"]) == ("done", 10)
    assert Decimal(report["debited"]) == plan.total
    assert cli(["status", "--ledger", ledger.url, "--campaign", str(campaign_id)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["status"], status["recipients_sent"]) == ("done", 10)
    assert cli(["status", "--ledger", ledger.url, "--campaign", "999"]) == 1
    assert_exactly_once(gateway, plan)


def test_a_ledger_that_cannot_be_written_stops_the_sending(
    gateway, account, ledger, engine, monkeypatch
) -> None:
    # Many more batches than go out before the second transaction fails (~0.2 s of sending,
    # ~170 batches at concurrency 2 on the 2-core machine): "it stopped" must not be a race.
    _, plan = plan_csv(gateway, account, marketing_csv(1000, ("US",), names=1000))
    campaign_id = engine.create(plan, name="Disk full")
    record = ledger.mark_batches_sent
    calls = {"n": 0}

    def failing(results):
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError("disk full")
        return record(results)

    monkeypatch.setattr(ledger, "mark_batches_sent", failing)
    with pytest.raises(OSError, match="disk full"):
        engine.run_sync(campaign_id, concurrency=2)
    campaign = ledger.campaign(campaign_id)
    assert campaign.status == "paused" and "ledger could not be written" in campaign.error
    assert GatewayTally.read(gateway.query).messages < 1000  # it stopped sending
    monkeypatch.setattr(ledger, "mark_batches_sent", record)
    assert engine.resume_sync(campaign_id).status == "done"
    assert_exactly_once(gateway, plan)
    assert spent(gateway, account) == ledger.campaign(campaign_id).debited_micros


def test_run_sync_and_start_run_on_uvloop_where_installed(gateway, account, ledger) -> None:
    uvloop = pytest.importorskip("uvloop")
    make = client_factory(gateway.base_url, account.api_key, account.encryption_key)
    loops: list[type] = []

    def factory() -> AsyncKedaClient:
        loops.append(type(asyncio.get_running_loop()))
        return make()

    engine = CampaignEngine(ledger, factory, progress_interval=0)
    first = engine.create(plan_csv(gateway, account, marketing_csv(3, ("US",)))[1], name="A")
    assert engine.run_sync(first).status == "done"
    second = engine.create(plan_csv(gateway, account, marketing_csv(3, ("GB",)))[1], name="B")
    report = engine.start(second).wait(timeout=60)
    assert report is not None and report.status == "done"
    assert loops == [uvloop.Loop, uvloop.Loop]


def test_without_uvloop_the_engine_runs_on_asyncio(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if not installed: import fails

    async def loop_type() -> type:
        return type(asyncio.get_running_loop())

    assert run_loop(loop_type()).__module__.startswith("asyncio.")


def test_the_last_answers_are_recorded_without_waiting_out_the_linger(
    gateway, account, ledger
) -> None:
    """The writer lets answers gather (``linger``), but not once the sending is over."""
    factory = client_factory(gateway.base_url, account.api_key, account.encryption_key)
    engine = CampaignEngine(ledger, factory, progress_interval=0, linger=30)
    _, plan = plan_csv(gateway, account, marketing_csv(5, ("US",), names=5))
    campaign_id = engine.create(plan, name="Quick")
    started = time.monotonic()
    report = engine.run_sync(campaign_id)
    assert report.status == "done" and report.recipients_sent == 5
    assert time.monotonic() - started < 15  # a 30 s linger would have held the end back
    assert ledger.campaign(campaign_id).status == "done"
    assert_exactly_once(gateway, plan)
