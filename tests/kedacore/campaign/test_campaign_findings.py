"""What marketing found while sending campaigns, held against the real gateway.

A Pause heard whenever it is asked (any run, any engine, before the first request); what a
finished campaign cost, labelled and equal to the Spend page's figures; demo history numbered
apart from real campaigns; the engine leaving the service's rate limit some room.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest

from kedacore import KedaClient, RateLimitError, envelope
from kedacore.analytics import Filters, kpis, spend_by_campaign
from kedacore.campaign import CampaignEngine
from kedacore.campaign.plan import plan_requests, preview_campaign
from kedacore.campaign.recipients import read_recipients
from kedacore.campaign.run import Pacer
from kedacore.demo import generate
from kedacore.ledger import Ledger
from tests.kedacore.campaign.helpers import client_factory, marketing_csv
from tests.support import poll


@pytest.fixture
def ledger(ledger_url: Callable[..., str]) -> Ledger:
    with Ledger(ledger_url()) as led:
        yield led


@pytest.fixture
def account(gateway):
    return gateway.create_account(balance="1000")


def factory(gateway, account, **options):
    return client_factory(gateway.base_url, account.api_key, account.encryption_key, **options)


def client(gateway, account) -> KedaClient:
    key, secret = account.api_key, account.encryption_key
    return KedaClient(key, secret, base_url=gateway.base_url, backup_url=gateway.base_url)


def slow(make, delay: float = 0.02):
    """A client factory whose sends each take ``delay`` s more: a run that lasts."""

    def slowed():
        made = make()
        send = made.sms.send

        async def later(*args, **kwargs):
            await asyncio.sleep(delay)
            return await send(*args, **kwargs)

        made.sms.send = later
        return made

    return slowed


def plan_of(gateway, account, data: bytes, template: str = "Hi {name}, 20% off today"):
    pricing = client(gateway, account).pricing()
    return plan_requests(preview_campaign(read_recipients(data), template, pricing=pricing))


def sent(ledger: Ledger, campaign_id: int) -> int:
    return ledger.campaign_batch_counts(campaign_id).get("sent", {}).get("recipients", 0)


# -- (2) Pause, whenever it is asked -----------------------------------------------------------


def test_a_pause_reaches_a_run_that_has_no_handle_in_this_engine(gateway, account, ledger):
    """Another engine (another page, another process) pauses a run: the ledger carries it."""
    engine = CampaignEngine(ledger, slow(factory(gateway, account)), watch_interval=0.05)
    data = marketing_csv(400, ("US",), names=400)  # one request per recipient
    campaign_id = engine.create(plan_of(gateway, account, data), name="F")
    reports = []
    runner = threading.Thread(
        target=lambda: reports.append(engine.run_sync(campaign_id, concurrency=2))
    )
    runner.start()
    try:
        poll(lambda: sent(ledger, campaign_id))
        other = CampaignEngine(ledger, factory(gateway, account))
        assert other.stop(campaign_id)
        assert ledger.campaign_status(campaign_id) in ("pausing", "paused")
    finally:
        runner.join(30)
    (report,) = reports
    assert report.status == "paused"
    assert report.reason.startswith("Paused at your request: "), report.reason
    assert 0 < report.progress.recipients_sent < 400


def test_a_pause_before_the_first_request_sends_nothing(gateway, account, ledger) -> None:
    """Pause clicked right after Confirm, before the run's thread has sent anything."""
    opened = threading.Event()
    make = factory(gateway, account)

    def slow_to_open():
        opened.wait(10)  # the run's thread is held before its first request
        return make()

    engine = CampaignEngine(ledger, slow_to_open)
    campaign_id = engine.create(plan_of(gateway, account, marketing_csv(50, ("US",))), name="P")
    handle = engine.start(campaign_id)
    assert engine.stop(campaign_id)
    opened.set()
    report = handle.wait(30)
    assert report is not None and report.status == "paused"
    assert report.recipients_sent == 0
    assert report.reason == (
        "Paused at your request: 0 of 50 recipients sent; 50 recipients in 7 batches are "
        "left. Resume to send them."
    )
    assert engine.run_sync(campaign_id).status == "done"  # Resume sends them all
    assert sent(ledger, campaign_id) == 50


def test_a_campaign_no_run_here_sends_is_paused_at_once(gateway, account, ledger) -> None:
    """Interrupted (the server was killed while sending): Pause makes it paused, with why."""
    engine = CampaignEngine(ledger, factory(gateway, account))
    campaign_id = engine.create(plan_of(gateway, account, marketing_csv(5, ("US",))), name="I")
    ledger.set_campaign_status(campaign_id, "sending")
    assert engine.stop(campaign_id)
    campaign = ledger.campaign(campaign_id)
    assert campaign.status == "paused"
    assert campaign.error.startswith("Paused at your request: 0 of 5 recipients sent")
    assert not engine.stop(campaign_id)  # nothing left to pause
    assert engine.run_sync(campaign_id).status == "done"


def test_a_pausing_left_by_a_run_that_died_does_not_stop_the_resume(gateway, account, ledger):
    engine = CampaignEngine(ledger, factory(gateway, account))
    campaign_id = engine.create(plan_of(gateway, account, marketing_csv(5, ("US",))), name="D")
    ledger.set_campaign_status(campaign_id, "sending")
    assert ledger.request_pause(campaign_id)  # then the process was killed
    assert engine.run_sync(campaign_id).status == "done"


# -- (3) what a campaign cost --------------------------------------------------------------------


def test_a_finished_campaign_s_money_is_labelled_and_equals_the_spend_page(
    gateway, account, ledger
) -> None:
    """Estimate, debited, refunded (FAILED), charged — charged equal to Spend's figure."""
    data = marketing_csv(6, ("US",), extra_lines=("+15005550001,Fay,US",))  # FAILED
    engine = CampaignEngine(ledger, factory(gateway, account))
    campaign_id = engine.create(plan_of(gateway, account, data), name="Money")
    assert engine.run_sync(campaign_id).status == "done"
    msgids = [m.msgid for m in engine.messages(campaign_id)]
    lookups = client(gateway, account)

    def final():
        answers = [lookups.sms.status(m) for m in msgids]
        return answers if all(a.status in ("DELIVERED", "FAILED") for a in answers) else None

    ledger.apply_statuses(poll(final, timeout=10))

    snapshot = ledger.campaign_snapshot(messages_of=campaign_id)
    money = snapshot.get(campaign_id)
    assert (money.estimate, money.debited) == (Decimal("0.35"), Decimal("0.35"))
    assert (money.refunded, money.charged, money.pending) == (
        Decimal("0.05"),
        Decimal("0.3"),
        Decimal(0),
    )
    assert money.statuses == {"DELIVERED": 6, "FAILED": 1}
    assert len(snapshot.messages) == 7
    # The Spend page reads the same ledger: the same charge, for the campaign and in all.
    period = Filters.last_days(1)
    by_campaign = spend_by_campaign(ledger, period).set_index("campaign_id")
    assert by_campaign.loc[campaign_id, "spend"] == money.charged
    assert kpis(ledger, period).spend == money.charged
    assert money.debited == money.charged + money.refunded + money.pending


# -- (8) demo history numbered apart ------------------------------------------------------------


def test_demo_campaigns_are_numbered_apart_and_real_ones_from_1(gateway, account, ledger):
    engine = CampaignEngine(ledger, factory(gateway, account))
    first = engine.create(plan_of(gateway, account, marketing_csv(2, ("US",))), name="First")
    report = generate(ledger, days=20, messages=2_000)
    second = engine.create(plan_of(gateway, account, marketing_csv(2, ("US",))), name="Second")
    snapshot = ledger.campaign_snapshot()
    real = [f.label for f in snapshot.campaigns if not f.demo]
    assert real == ["#2 Second", "#1 First"]  # newest first; ids kept (second is far above 2)
    assert second == first + report.campaigns + 1
    demo = sorted(f.number for f in snapshot.campaigns if f.demo)
    assert demo == list(range(1, report.campaigns + 1))
    assert all(f.label.startswith("Demo #") for f in snapshot.campaigns if f.demo)
    assert [f.label for f in ledger.active_campaigns().campaigns] == ["#2 Second", "#1 First"]


def test_the_snapshot_is_one_transaction(gateway, account, ledger) -> None:
    from sqlalchemy import event

    engine = CampaignEngine(ledger, factory(gateway, account))
    campaign_id = engine.create(plan_of(gateway, account, marketing_csv(3, ("US",))), name="O")
    begun: list[object] = []

    def began(conn) -> None:
        begun.append(conn)

    event.listen(ledger.engine, "begin", began)
    try:
        snapshot = ledger.campaign_snapshot(messages_of=campaign_id)
    finally:
        event.remove(ledger.engine, "begin", began)
    assert len(begun) == 1
    assert snapshot.get(campaign_id).batches["planned"]["recipients"] == 3


# -- (headroom) the pages' reads keep working while a campaign sends ----------------------------


def test_a_paced_campaign_leaves_the_service_room_for_the_pages(
    gateway_factory, ledger_url: Callable[..., str]
) -> None:
    """The gateway allows 100 requests/s per key (as KedaSMS and the sandbox do); the engine
    paced at 80 % leaves the rest: reads ten times a second are never refused, and the engine
    itself is never told 4029."""
    gateway = gateway_factory(rate_limit=100)
    account = gateway.create_account(balance="1000")
    with Ledger(ledger_url("paced")) as ledger:
        engine = CampaignEngine(ledger, factory(gateway, account), rate=80)
        plan = plan_of(gateway, account, marketing_csv(600, ("US",), names=600))
        campaign_id = engine.create(plan, name="Paced")
        handle = engine.start(campaign_id)
        probe = KedaClient(
            account.api_key,
            account.encryption_key,
            base_url=gateway.base_url,
            backup_url=gateway.base_url,
            max_retries=0,  # as the console's sidebar reads
        )
        reads = refused = 0
        started = time.monotonic()
        while handle.running:
            try:
                probe.account.balance()
            except RateLimitError:
                refused += 1
            reads += 1
            time.sleep(0.1)
        seconds = time.monotonic() - started
        report = handle.wait(30)
    assert report is not None and report.status == "done"
    assert refused == 0 and reads >= 30
    assert seconds >= 600 / 80 * 0.9  # paced: 600 requests at 80/s take 7.5 s
    assert gateway.query("SELECT count(*) FROM messages")[0][0] == 600


def test_the_pacer_keeps_its_rate_and_backs_off_on_4029() -> None:
    now = [0.0]
    pacer = Pacer(10, burst=2, clock=lambda: now[0])
    waits: list[float] = []

    async def take_all(n: int) -> None:
        for _ in range(n):
            before = len(waits)
            await pacer.take()
            if len(waits) == before:
                waits.append(max(0.0, -pacer.tokens / pacer.rate))

    asyncio.run(take_all(4))  # 2 at once (the burst), then one every 0.1 s
    assert waits == [0.0, 0.0, pytest.approx(0.1), pytest.approx(0.2)]
    pacer.slow_down()
    assert pacer.rate == 5
    pacer.slow_down()  # the same moment (requests in flight answered together): once
    assert pacer.rate == 5
    now[0] = 3.0  # two calm seconds after the first: a tenth of the ceiling back per second
    pacer._recover(now[0])
    assert pacer.rate == pytest.approx(7)
    now[0] = 10.0
    pacer._recover(now[0])
    assert pacer.rate == 10


def test_a_rate_limited_read_is_retried_after_retry_after_even_without_retries() -> None:
    """The sidebar's client has no retries (an unreachable service should say so at once),
    but a 4029 is no outage: the service says when to come back, and the read waits."""
    answers = [
        httpx.Response(
            429,
            headers={"Retry-After": "1"},
            json={"code": "4029", "message": "too many requests", "data": None},
        ),
        httpx.Response(
            200,
            json={
                "code": "0",
                "message": "Success",
                "data": {"balance": 12.5, "frozen": 0, "currency": "USD"},
            },
        ),
    ]
    sleeps: list[float] = []
    reader = KedaClient(
        "ak_test_key_0001",
        envelope.generate_key(),
        max_retries=0,
        transport=httpx.MockTransport(lambda request: answers.pop(0)),
    )
    reader._sleep = sleeps.append
    assert reader.account.balance().balance == Decimal("12.5")
    assert sleeps == [1.0]
    # A send without clientRef is never repeated, limited or not.
    answers[:] = [
        httpx.Response(
            429,
            headers={"Retry-After": "1"},
            json={"code": "4029", "message": "too many requests", "data": None},
        )
    ]
    with pytest.raises(RateLimitError):
        reader.sms.send("US", ["+12062000001"], "Hi")
