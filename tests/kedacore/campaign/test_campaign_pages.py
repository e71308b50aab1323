"""A run reads its planned batches a page at a time: every batch still sent exactly once.

The pages are made small here (``kedacore.campaign.run.PAGE``) so that a few dozen batches
cross several of them, with rate limits, a pause and a resume on the way.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from kedacore import AsyncKedaClient, envelope
from kedacore.campaign import CampaignEngine, run
from kedacore.campaign.plan import plan_requests, preview_campaign
from kedacore.campaign.recipients import read_recipients
from kedacore.ledger import Ledger, PlannedBatch
from tests.kedacore.campaign.helpers import GatewayTally, client_factory, marketing_csv


@pytest.fixture
def ledger(ledger_url: Callable[..., str]) -> Ledger:
    with Ledger(ledger_url()) as led:
        yield led


@pytest.fixture
def small_pages(monkeypatch) -> int:
    monkeypatch.setattr(run, "PAGE", 7)
    return 7


def reads(ledger: Ledger, monkeypatch) -> list[int]:
    """The size of every page the run reads (the ledger's own method, counted)."""
    sizes: list[int] = []
    read = ledger.planned_batches

    def counted(*args, **kwargs):
        found = read(*args, **kwargs)
        sizes.append(len(found))
        return found

    monkeypatch.setattr(ledger, "planned_batches", counted)
    return sizes


def test_pages_with_rate_limits_send_every_batch_once(ledger, small_pages, monkeypatch) -> None:
    key = envelope.generate_key()
    accepted: dict[str, int] = {}  # clientRef → accepted sends
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] % 9 == 0:  # now and then, across page boundaries: wait and send again
            return httpx.Response(
                429,
                headers={"Retry-After": "0"},
                json={"code": "4029", "message": "too many requests", "data": None},
            )
        payload = json.loads(envelope.open_body(json.loads(request.content), key))
        ref = payload["clientRef"]
        accepted[ref] = accepted.get(ref, 0) + 1
        (number,) = payload["phoneNumbers"]
        data = {
            "taskId": f"t-{ref}",
            "message": "SMS task created",
            "debitedAmount": 0.05,
            "currency": "USD",
            "segments": 1,
            "messages": [{"msgid": f"m-{ref}", "recipient": number}],
        }
        return httpx.Response(200, json={"code": "0", "message": "Success", "data": data})

    engine = CampaignEngine(
        ledger,
        lambda: AsyncKedaClient(
            "ak_test_key_0001", key, max_retries=0, transport=httpx.MockTransport(handler)
        ),
    )
    campaign_id = ledger.create_campaign("Pages", template="Hi")
    ledger.plan_campaign(
        campaign_id,
        [PlannedBatch("US", f"Hi {i}", (f"+1206200{i:04d}",), 50_000) for i in range(40)],
    )
    sizes = reads(ledger, monkeypatch)
    report = engine.run_sync(campaign_id, concurrency=3)
    assert (report.status, report.batches_sent, report.recipients_sent) == ("done", 40, 40)
    assert sizes == [7, 7, 7, 7, 7, 5]  # 40 batches in pages of 7: never all at once
    batches = ledger.campaign_batches(campaign_id)
    assert sorted(accepted) == sorted(b.client_ref for b in batches)
    assert set(accepted.values()) == {1}
    assert {b.state for b in batches} == {"sent"}
    assert ledger.campaign(campaign_id).debited_micros == 40 * 50_000
    # the attempts were cleared for nothing sent, kept for nothing: all were answered
    assert all(b.attempted_at is not None for b in batches)


def test_a_paused_run_over_pages_resumes_and_sends_each_recipient_once(
    gateway, ledger, small_pages, monkeypatch
) -> None:
    account = gateway.create_account(balance="1000")
    factory = client_factory(gateway.base_url, account.api_key, account.encryption_key)
    engine = CampaignEngine(ledger, factory, progress_interval=0)
    from kedacore import KedaClient

    pricing = KedaClient(
        account.api_key, account.encryption_key, base_url=gateway.base_url,
        backup_url=gateway.base_url,
    ).pricing()  # fmt: skip
    data = marketing_csv(120, ("US", "GB"), names=120)  # personalised: 120 batches
    preview = preview_campaign(read_recipients(data), "Hi {name}", pricing=pricing)
    plan = plan_requests(preview)
    assert len(plan.requests) == 120
    campaign_id = engine.create(plan, name="Paged")
    handle = engine.start(campaign_id, concurrency=2)
    gateway.poll(
        lambda: (handle.progress and handle.progress.batches_sent > 20) or not handle.running
    )
    engine.stop(campaign_id)
    first = handle.wait(timeout=60)
    assert first is not None and first.status == "paused", first
    assert 20 < first.batches_sent < 120
    sizes = reads(ledger, monkeypatch)
    second = engine.resume_sync(campaign_id, concurrency=8)
    assert second.status == "done"
    assert first.recipients_sent + second.recipients_sent == 120
    assert sum(sizes) == 120 - first.batches_sent  # the resume read only what was left
    tally = GatewayTally.read(gateway.query)
    assert tally.repeated == [] and tally.messages == tally.recipients == 120
    assert ledger.campaign(campaign_id).debited_micros == tally.price_micros
