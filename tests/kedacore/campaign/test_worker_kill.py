"""The kill test on PostgreSQL: two workers; the one sending a 20,000-recipient personalised
campaign is killed (SIGKILL) mid-way; the other takes it over with no click and finishes it.

The gateway (a real process, its SQLite database read directly) must hold each recipient
exactly once, and the money must agree: the ledger's debited total = the balance drop at the
gateway = the sum of the gateway's charged messages' prices = the plan's estimate.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from kedacore.campaign import tasks
from kedacore.ledger import Ledger
from kedacore.money import to_micros
from tests.kedacore.campaign.helpers import GatewayTally
from tests.kedacore.campaign.test_worker import (  # noqa: F401 (fixtures)
    Gateway,
    gateway,
    needs_postgres,
    pg_ledger_url,
    plan_for,
    start_worker,
    stop,
    wait_for,
)

RECIPIENTS = 20_000
TAKEOVER_LIMIT = 30.0  # seconds from the kill to the other worker's first recorded batch


@needs_postgres
@pytest.mark.slow
def test_a_killed_workers_campaign_is_finished_by_the_other_exactly_once(
    pg_ledger_url: str,  # noqa: F811
    gateway: Gateway,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = pg_ledger_url
    preview, plan = plan_for(gateway, RECIPIENTS)
    assert len(preview.rows) == RECIPIENTS and len(plan.requests) > 2_500
    with Ledger(url) as ledger:
        from kedacore import AsyncKedaClient
        from kedacore.campaign import CampaignEngine

        options = tasks.SendOptions(callback=False).as_json()
        campaign_id = CampaignEngine(ledger, AsyncKedaClient).create(
            plan, name="Kill", options=options
        )
    batches = len(plan.requests)
    money_before = gateway.read("SELECT balance_micros FROM accounts")[0][0]
    home = tmp_path / "w"
    # Paced (--rate) so that the kill lands mid-way whatever the machine's speed.
    workers = {
        name: start_worker(url, gateway, home, name, "--sends", "16", "--rate", "150")
        for name in ("a", "b")
    }
    try:
        with Ledger(url) as ledger:
            wait_for(lambda: tasks.live_workers(ledger) == 2, 30, "two workers")
            tasks.enqueue(url, campaign_id, ledger.now())

            def sent() -> int:
                return ledger.campaign_batch_counts(campaign_id).get("sent", {}).get("batches", 0)

            wait_for(lambda: sent() >= batches // 5, 120, "a fifth of the batches sent")
            runner = next(
                name
                for name, (_, log) in workers.items()
                if f"campaign {campaign_id}: sending" in log.read_text()
            )
            proc, _ = workers[runner]
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
            killed_at = time.monotonic()
            time.sleep(0.3)  # requests already on the wire finish at the gateway
            at_kill = sent()
            accepted = gateway.read("SELECT count(*) FROM tasks")[0][0]
            assert 0 < at_kill < batches, (at_kill, batches)

            wait_for(lambda: sent() > at_kill, TAKEOVER_LIMIT + 10, "the takeover")
            takeover = time.monotonic() - killed_at
            wait_for(lambda: ledger.campaign_status(campaign_id) == "done", 240, "done")
            finished = time.monotonic() - killed_at
            campaign = ledger.campaign(campaign_id)
            assert campaign is not None
            assert {b.state for b in ledger.campaign_batches(campaign_id)} == {"sent"}
            assert sum(ledger.campaign_status_counts(campaign_id).values()) == RECIPIENTS
            with ledger.engine.connect() as conn:
                from sqlalchemy import text

                tasks_debited = conn.scalar(text("SELECT sum(debited_micros) FROM tasks"))
    finally:
        codes = {name: stop(proc) for name, (proc, _) in workers.items()}
    other = "b" if runner == "a" else "a"
    logs = {name: log.read_text() for name, (_, log) in workers.items()}
    assert codes[other] == 0, logs[other][-3000:]
    assert f"campaign {campaign_id}: sending" in logs[other]
    assert takeover <= TAKEOVER_LIMIT, takeover

    # exactly once: every recipient one message, every batch one task
    tally = GatewayTally.read(gateway.read)
    assert tally.repeated == []
    assert tally.messages == tally.recipients == RECIPIENTS
    recipients = {r for (r,) in gateway.read("SELECT recipient FROM messages")}
    assert recipients == {row.e164 for row in preview.rows}
    assert tally.tasks == tally.client_refs == batches

    # money: the ledger's debited total = the balance drop = Σ charged messages = the plan
    balance, frozen, charged = gateway.read(
        "SELECT balance_micros, frozen_micros, charged_micros FROM accounts"
    )[0]
    drop = money_before - balance
    assert drop == frozen + charged
    assert drop == campaign.debited_micros == tasks_debited == tally.price_micros
    assert drop == to_micros(plan.total)
    print(
        f"\nkill test: {RECIPIENTS:,} recipients in {batches:,} requests; killed worker {runner} "
        f"at {at_kill:,} batches recorded ({accepted:,} accepted by the gateway); worker "
        f"{other} took over in {takeover:.1f} s and finished {finished:.1f} s after the kill"
    )
