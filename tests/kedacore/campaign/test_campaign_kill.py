"""The kill test: a 10,000-recipient campaign whose sending process dies by SIGKILL, resumed.

The engine runs as ``python -m kedacore.campaign run`` in a subprocess against a gateway
started with ``start_gateway_process``. It is killed once the ledger records some batches
and the gateway has accepted more than the ledger knows (answers lost with the process);
another subprocess resumes. The gateway must then hold exactly one message per recipient,
and the money must agree three ways.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kedacore import AsyncKedaClient, KedaClient
from kedacore.campaign import CampaignEngine
from kedacore.campaign.plan import plan_requests, preview_campaign
from kedacore.campaign.recipients import read_recipients
from kedacore.ledger import Ledger
from kedacore.money import to_micros
from tests.kedacore.campaign.helpers import GatewayTally, marketing_csv
from tests.support import REPO_ROOT, start_gateway_process

RECIPIENTS = 10_000


def read(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return conn.execute(sql).fetchall()


def runner(ledger_url: str, campaign_id: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    args = ["run", "--ledger", ledger_url, "--campaign", str(campaign_id), "--concurrency", "16"]
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "kedacore.campaign", *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


# SQLite only (the embedded store, its file read while the sender dies): the kill test on
# PostgreSQL, with workers, is tests/kedacore/campaign/test_worker*.py.
@pytest.mark.slow
def test_a_killed_campaign_resumes_and_reaches_every_recipient_exactly_once(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    gw_db, ledger_db, log = tmp_path / "gateway.db", tmp_path / "ledger.db", tmp_path / "run.log"
    created = subprocess.run(
        [sys.executable, "-m", "gateway", "account", "create", "--db", str(gw_db)]
        + ["--email", "kill@example.com", "--balance", "100000"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    account = json.loads(created.stdout)
    gateway, base_url = start_gateway_process(gw_db, "--rate-limit", "0")
    try:
        env = {
            **os.environ,
            "KEDA_API_KEY": account["apiKey"],
            "KEDA_ENCRYPTION_KEY": account["encryptionKey"],
            "KEDA_BASE_URL": base_url,
            "KEDA_BACKUP_URL": base_url,
        }
        env.pop("KEDA_DATABASE_URL", None)
        # 601 names × 5 countries: ~3,000 requests of 3–4 recipients, texts "Hi {name}, …"
        client = KedaClient(account["apiKey"], account["encryptionKey"], base_url=base_url)
        pricing = client.pricing()
        preview = preview_campaign(
            read_recipients(marketing_csv(RECIPIENTS, names=601)),
            "Hi {name}, 20% off everything until Sunday: https://shop.example/spring",
            pricing=pricing,
            sender="Shop",
        )
        plan = plan_requests(preview)
        assert len(preview.rows) == RECIPIENTS and len(plan.requests) > 2_500
        ledger_url = f"sqlite:///{ledger_db}"
        with Ledger(ledger_url) as ledger:
            campaign_id = CampaignEngine(ledger, AsyncKedaClient).create(plan, name="Kill")
        batches = len(plan.requests)
        money_before = read(gw_db, "SELECT balance_micros FROM accounts")[0][0]

        # 1. send, and kill the sender mid-way while answers are still unrecorded
        first = runner(ledger_url, campaign_id, env, log)

        def sent_in_ledger() -> int:
            return read(
                ledger_db,
                f"SELECT count(*) FROM campaign_batches WHERE campaign_id = {campaign_id} "
                "AND state = 'sent'",
            )[0][0]

        def tasks_in_gateway() -> int:
            return read(gw_db, "SELECT count(*) FROM tasks")[0][0]

        deadline = time.monotonic() + 40
        while True:
            assert first.poll() is None, log.read_text()[-2000:]
            recorded = sent_in_ledger()
            if recorded >= batches // 10 and tasks_in_gateway() > recorded:
                break
            assert time.monotonic() < deadline, f"no progress: {recorded} batches recorded"
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
        time.sleep(0.3)  # requests already on the wire finish at the gateway
        recorded, accepted = sent_in_ledger(), tasks_in_gateway()
        assert 0 < recorded < accepted < batches, (recorded, accepted, batches)
        lost = accepted - recorded  # accepted by the gateway, never recorded by the ledger

        # 2. resume in a new process: the lost ones are sent again with their clientRef
        second = runner(ledger_url, campaign_id, env, log)
        assert second.wait(timeout=60) == 0, log.read_text()[-2000:]
        report = json.loads(log.read_text().splitlines()[-1])["report"]
        assert report["status"] == "done"
        assert report["batches_sent"] == batches - recorded

        # 3. exactly once: every recipient one message, every batch one task
        tally = GatewayTally.read(lambda sql: read(gw_db, sql))
        assert tally.repeated == []
        assert tally.messages == tally.recipients == RECIPIENTS
        recipients = {r for (r,) in read(gw_db, "SELECT recipient FROM messages")}
        assert recipients == {row.e164 for row in preview.rows}
        assert tally.tasks == tally.client_refs == batches

        # 4. money: balance drop == the ledger's debited total == Σ message prices == plan
        balance, frozen, charged = read(
            gw_db, "SELECT balance_micros, frozen_micros, charged_micros FROM accounts"
        )[0]
        with Ledger(ledger_url) as ledger:
            campaign = ledger.campaign(campaign_id)
            tasks_debited = sum(t for (t,) in read(ledger_db, "SELECT debited_micros FROM tasks"))
            assert {b.state for b in ledger.campaign_batches(campaign_id)} == {"sent"}
            assert sum(ledger.campaign_status_counts(campaign_id).values()) == RECIPIENTS
        drop = money_before - balance
        assert drop == frozen + charged
        assert drop == campaign.debited_micros == tasks_debited == tally.price_micros
        assert drop == to_micros(plan.total)
        print(
            f"\nkill test: {batches} batches; killed with {recorded} recorded and {accepted} "
            f"accepted ({lost} answers lost); resumed to {tally.messages} messages, "
            f"{plan.total} USD both sides, in {time.monotonic() - started:.1f} s"
        )
    finally:
        gateway.kill()
        gateway.wait(timeout=10)
