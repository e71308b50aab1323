"""Resuming a campaign against the 24 h memory of clientRef: a lost answer is never sent twice.

A batch gets ``attempted_at`` before its request goes out. If the answer is lost and the
campaign is resumed within 23 h, the batch is sent again with its clientRef and the service
answers with the first send's result. Later than that, the service may have forgotten the
clientRef: the batch is held as ``uncertain`` for a check on the Status page instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import inspect

from kedacore import AsyncKedaClient, KedaClient, envelope
from kedacore.campaign import CampaignEngine
from kedacore.ledger import Ledger, PlannedBatch
from tests.kedacore.campaign.helpers import NUMBERS, GatewayTally

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class LoseAnswers(httpx.AsyncBaseTransport):
    """Forwards every request; for the sends of the given clientRefs, the answer is lost."""

    def __init__(self, key: str, lose: set[str], check=None) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.key = key
        self.lose = lose
        self.check = check  # called with each send's clientRef before it goes out

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        ref = None
        if request.url.path.endswith("/sms/send"):
            ref = json.loads(envelope.open_body(json.loads(request.content), self.key))["clientRef"]
            if self.check is not None:
                self.check(ref)
        response = await self.inner.handle_async_request(request)
        if ref in self.lose:
            await response.aread()
            await response.aclose()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def make_engine(gateway, account, ledger: Ledger, lose=(), check=None) -> CampaignEngine:
    def factory() -> AsyncKedaClient:
        return AsyncKedaClient(
            account.api_key,
            account.encryption_key,
            base_url=gateway.base_url,
            backup_url=gateway.base_url,
            max_retries=0,
            transport=LoseAnswers(account.encryption_key, set(lose), check),
        )

    return CampaignEngine(ledger, factory, progress_interval=0)


def plan(ledger: Ledger, count: int = 3) -> tuple[int, list]:
    campaign_id = ledger.create_campaign("Resume", template="Hi")
    batches = ledger.plan_campaign(
        campaign_id,
        [PlannedBatch("US", f"Hi {i}", (NUMBERS["US"](i),), 50_000) for i in range(count)],
    )
    return campaign_id, batches


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(ledger_url: Callable[..., str], clock: Clock) -> Ledger:
    with Ledger(ledger_url(), clock=clock) as led:
        yield led


def test_a_lost_answer_older_than_23_h_is_held_for_a_check_not_sent_twice(
    gateway_factory, ledger: Ledger, clock: Clock
) -> None:
    # client_ref_ttl=0: this gateway remembers no clientRef, as the service after 24 h.
    gateway = gateway_factory(client_ref_ttl=0)
    account = gateway.create_account(balance="100")
    campaign_id, batches = plan(ledger)
    lost = batches[1]
    first = make_engine(gateway, account, ledger, lose={lost.client_ref}).run_sync(campaign_id)
    assert first.status == "paused" and first.batches_sent == 2
    # The pause says until when a resume is safe (23 h after that request went out).
    assert "resume before 2025-03-02 08:00 UTC" in first.reason
    assert ledger.campaign_batches(campaign_id)[1].attempted_at == T0
    assert GatewayTally.read(gateway.query).messages == 3  # the lost one was accepted too

    clock.now = T0 + timedelta(hours=24)
    second = make_engine(gateway, account, ledger).run_sync(campaign_id)
    tally = GatewayTally.read(gateway.query)
    assert (tally.messages, tally.repeated) == (3, [])  # not sent a second time
    held = ledger.campaign_batches(campaign_id)[1]
    assert held.state == "uncertain" and held.uncertain
    assert "Sent status unknown" in held.error and "2025-03-01 09:00 UTC" in held.error
    assert "Status page" in held.error
    assert second.status == "paused" and "need a check" in second.reason
    campaign = ledger.campaign(campaign_id)
    assert (campaign.status, campaign.error) == ("paused", second.reason)
    progress = make_engine(gateway, account, ledger).progress(campaign_id)
    assert (progress.batches_uncertain, progress.recipients_uncertain) == (1, 1)
    assert progress.batches_left == 1
    # A third resume holds it still; someone who checked the Status page releases it.
    make_engine(gateway, account, ledger).run_sync(campaign_id)
    assert GatewayTally.read(gateway.query).messages == 3
    assert make_engine(gateway, account, ledger).resend_uncertain(campaign_id) == 1
    released = ledger.campaign_batches(campaign_id)[1]
    assert (released.state, released.attempted_at, released.error) == ("planned", None, None)


def test_a_lost_answer_resumed_within_23_h_is_recognised_by_its_client_ref(
    gateway, ledger: Ledger, clock: Clock
) -> None:
    account = gateway.create_account(balance="100")
    campaign_id, batches = plan(ledger)
    lost = batches[0]
    make_engine(gateway, account, ledger, lose={lost.client_ref}).run_sync(campaign_id)
    clock.now = T0 + timedelta(hours=22, minutes=59)
    report = make_engine(gateway, account, ledger).run_sync(campaign_id)
    assert (report.status, report.batches_sent) == ("done", 1)
    tally = GatewayTally.read(gateway.query)
    assert (tally.messages, tally.repeated, tally.tasks) == (3, [], 3)


def test_a_cap_pause_resumed_the_next_day_holds_nothing_back(
    gateway, ledger: Ledger, clock: Clock
) -> None:
    account = gateway.create_account(balance="100")
    client = KedaClient(
        account.api_key,
        account.encryption_key,
        base_url=gateway.base_url,
        backup_url=gateway.base_url,
    )
    client.limits.update(daily_sms_cap=2, block_on_limit=True)
    campaign_id, _ = plan(ledger, count=6)
    first = make_engine(gateway, account, ledger).run_sync(campaign_id, concurrency=2)
    assert first.status == "paused" and "dailySmsCap" in first.reason
    assert "resets at 00:00 UTC" in first.reason and "resume before" not in first.reason
    # Every request was answered (sent, or refused by the cap): no attempt is left behind.
    assert {b.attempted_at for b in ledger.campaign_batches(campaign_id, states=["planned"])} == {
        None
    }
    clock.now = T0 + timedelta(hours=25)
    client.limits.update(daily_sms_cap=1000)
    second = make_engine(gateway, account, ledger).run_sync(campaign_id, concurrency=2)
    assert (second.status, second.batches_sent) == ("done", 4)
    assert GatewayTally.read(gateway.query).messages == 6


def test_attempted_at_is_in_the_ledger_before_the_request_goes_out(gateway, ledger: Ledger) -> None:
    account = gateway.create_account(balance="100")
    campaign_id, _ = plan(ledger, count=5)
    seen: list[tuple[str, datetime | None]] = []

    def check(client_ref: str) -> None:
        (batch,) = [b for b in ledger.campaign_batches(campaign_id) if b.client_ref == client_ref]
        seen.append((batch.state, batch.attempted_at))

    engine = make_engine(gateway, account, ledger, check=check)
    assert engine.run_sync(campaign_id, concurrency=2).status == "done"
    assert seen == [("planned", T0)] * 5


def test_an_older_ledger_gets_the_attempted_at_column(ledger_url: Callable[..., str]) -> None:
    url = ledger_url("old")
    with Ledger(url) as led:
        campaign_id, _ = plan(led)
        with led.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE campaign_batches DROP COLUMN attempted_at")
            conn.exec_driver_sql("DROP TABLE alembic_version")  # from before migrations
    with Ledger(url) as led:
        columns = {c["name"] for c in inspect(led.engine).get_columns("campaign_batches")}
        assert "attempted_at" in columns
        assert [b.attempted_at for b in led.campaign_batches(campaign_id)] == [None] * 3
