"""Campaign work on procrastinate workers (PostgreSQL): ``python -m kedacore.campaign worker``.

Real worker subprocesses, a real gateway process, the ledger in a schema of its own in the
database ``KEDA_TEST_POSTGRES_URL`` names (skipped without it, failed under ``CI=true``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from kedacore import AsyncKedaClient, KedaClient
from kedacore.campaign import CampaignBusyError, CampaignEngine, tasks
from kedacore.campaign.plan import plan_requests, preview_campaign
from kedacore.campaign.recipients import read_recipients
from kedacore.ledger import Ledger
from tests.kedacore.campaign.helpers import GatewayTally, client_factory, marketing_csv
from tests.support import REPO_ROOT, start_gateway_process

PG_URL = os.environ.get("KEDA_TEST_POSTGRES_URL")
if not PG_URL and os.environ.get("CI") == "true":
    raise RuntimeError("KEDA_TEST_POSTGRES_URL must be set in CI: the worker tests need it")
needs_postgres = pytest.mark.skipif(not PG_URL, reason="KEDA_TEST_POSTGRES_URL is not set")
TEXT = "Hi {name}, 20% off everything until Sunday: https://shop.example/spring"


def _admin() -> object:
    assert PG_URL
    return create_engine(PG_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT")


@pytest.fixture
def pg_ledger_url() -> Iterator[str]:
    """A fresh schema for this test in KEDA_TEST_POSTGRES_URL's database; its URL."""
    schema = f"w_{os.urandom(6).hex()}"
    engine = _admin()
    with engine.connect() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with engine.connect() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql("SET lock_timeout = '60s'")
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()  # type: ignore[attr-defined]


@dataclass
class Gateway:
    db: Path
    base_url: str
    api_key: str
    encryption_key: str

    def read(self, sql: str) -> list[tuple]:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10) as conn:
            return conn.execute(sql).fetchall()

    def env(self, home: Path) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("KEDA_") or k == "KEDA_TEST_POSTGRES_URL"
        }
        return {
            **env,
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONUNBUFFERED": "1",
            "KEDA_API_KEY": self.api_key,
            "KEDA_ENCRYPTION_KEY": self.encryption_key,
            "KEDA_BASE_URL": self.base_url,
            "KEDA_BACKUP_URL": self.base_url,
            "KEDA_DATA_DIR": str(home / "data"),
        }

    def client(self) -> KedaClient:
        return KedaClient(self.api_key, self.encryption_key, base_url=self.base_url)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    db = tmp_path / "gateway.db"
    created = subprocess.run(
        [sys.executable, "-m", "gateway", "account", "create", "--db", str(db)]
        + ["--email", "worker@example.com", "--balance", "100000"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    account = json.loads(created.stdout)
    proc, base_url = start_gateway_process(db, "--rate-limit", "0")
    try:
        yield Gateway(db, base_url, account["apiKey"], account["encryptionKey"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # still trying to deliver a callback
            proc.kill()
            proc.wait(timeout=10)


def plan_for(gateway: Gateway, count: int, names: int = 601):
    with gateway.client() as client:
        pricing = client.pricing()
    preview = preview_campaign(
        read_recipients(marketing_csv(count, names=names)), TEXT, pricing=pricing, sender="Shop"
    )
    return preview, plan_requests(preview)


def create(url: str, gateway: Gateway, count: int, **options: object) -> tuple[int, int]:
    """A planned campaign of ``count`` recipients; (its id, its batches)."""
    _, plan = plan_for(gateway, count)
    with Ledger(url) as ledger:
        opts = tasks.SendOptions(**options).as_json()  # type: ignore[arg-type]
        campaign_id = CampaignEngine(ledger, AsyncKedaClient).create(
            plan, name="Workers", options=opts
        )
    return campaign_id, len(plan.requests)


def start_worker(
    url: str, gateway: Gateway, home: Path, name: str, *extra: str
) -> tuple[subprocess.Popen, Path]:
    home.mkdir(exist_ok=True)
    log = home / f"{name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kedacore.campaign", "worker", "--database-url", url, *extra],
            cwd=home,  # no ./.streamlit/secrets.toml of the repository
            env=gateway.env(home),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, log


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.terminate()
    return proc.wait(timeout=60)


def wait_for(check: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def status(url: str, campaign_id: int) -> str | None:
    with Ledger(url) as ledger:
        return ledger.campaign_status(campaign_id)


# -- the tests ---------------------------------------------------------------------------------


@needs_postgres
def test_two_enqueues_make_one_job_and_the_schema_is_made_once(pg_ledger_url: str) -> None:
    with Ledger(pg_ledger_url) as ledger:
        campaign_id = ledger.create_campaign("Twice")
        first = tasks.enqueue(pg_ledger_url, campaign_id)
        tasks._SCHEMA_READY.clear()  # another process: finds the schema there
        second = tasks.enqueue(pg_ledger_url, campaign_id)
        other = tasks.enqueue(pg_ledger_url, campaign_id + 1)
        assert first is not None and second is None and other not in (None, first)
        jobs = tasks.active_jobs(ledger)
        assert jobs == {campaign_id: (first, "todo"), campaign_id + 1: (other, "todo")}
        assert tasks.live_workers(ledger) == 0
        # A pause before any worker took it: the waiting job is cancelled, nothing is sent
        engine = tasks.QueuedCampaignEngine(ledger, AsyncKedaClient)
        assert engine.is_running(campaign_id)
        engine.stop(campaign_id)
        assert campaign_id not in tasks.active_jobs(ledger)


@needs_postgres
def test_two_workers_send_a_queued_campaign_once_with_its_options(
    pg_ledger_url: str, gateway: Gateway, tmp_path: Path
) -> None:
    campaign_id, batches = create(pg_ledger_url, gateway, 1_500, track_click=True, callback=False)
    workers = [start_worker(pg_ledger_url, gateway, tmp_path / "w", f"w{i}") for i in (1, 2)]
    try:
        with Ledger(pg_ledger_url) as ledger:
            engine = tasks.QueuedCampaignEngine(ledger, AsyncKedaClient)
            engine.start(campaign_id)
            engine.start(campaign_id)  # a second click (or replica): still one job
            wait_for(lambda: tasks.live_workers(ledger) == 2, 30, "two workers")
        wait_for(lambda: status(pg_ledger_url, campaign_id) == "done", 90, "the campaign done")
    finally:
        codes = [stop(proc) for proc, _ in workers]
    logs = [log.read_text() for _, log in workers]
    assert codes == [0, 0], logs
    ran = [text.count(f"campaign {campaign_id}: sending") for text in logs]
    assert sorted(ran) == [0, 1], logs  # one runner, one run
    tally = GatewayTally.read(gateway.read)
    assert tally.repeated == [] and tally.messages == tally.recipients == 1_500
    assert tally.tasks == tally.client_refs == batches
    # its options, kept in the ledger, reached the worker: short links, no callback
    assert gateway.read("SELECT DISTINCT track_click, callback_url FROM tasks") == [(1, None)]


@needs_postgres
def test_a_pause_from_the_ledger_stops_a_workers_run_and_a_resume_finishes_it(
    pg_ledger_url: str, gateway: Gateway, tmp_path: Path
) -> None:
    campaign_id, batches = create(
        pg_ledger_url,
        gateway,
        3_000,
        callback=True,
        callback_url="https://hooks.example.com/keda/t0k3n",
    )
    proc, log = start_worker(pg_ledger_url, gateway, tmp_path / "w", "w", "--rate", "100")
    try:
        with Ledger(pg_ledger_url) as ledger:
            engine = tasks.QueuedCampaignEngine(ledger, AsyncKedaClient)
            engine.start(campaign_id)

            def sent() -> int:
                counts = ledger.campaign_batch_counts(campaign_id)
                return counts.get("sent", {}).get("batches", 0)

            wait_for(lambda: sent() >= 50, 60, "some batches sent")
            engine._cache = None
            assert engine.is_running(campaign_id)  # a worker's run, seen from here
            assert engine.stop(campaign_id)  # the console's Pause: "pausing" in the ledger
            wait_for(lambda: ledger.campaign_status(campaign_id) == "paused", 30, "paused")
            paused_at = sent()
            assert 0 < paused_at < batches
            time.sleep(1.5)
            assert sent() == paused_at  # nothing more goes out
            engine._cache = None
            wait_for(lambda: not engine.is_running(campaign_id), 10, "the job finished")
            engine._cache = None
            engine.start(campaign_id)  # Resume
            wait_for(lambda: ledger.campaign_status(campaign_id) == "done", 90, "done")
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
    tally = GatewayTally.read(gateway.read)
    assert tally.repeated == [] and tally.messages == 3_000
    assert tally.tasks == tally.client_refs == batches
    assert gateway.read("SELECT DISTINCT callback_url FROM tasks") == [
        ("https://hooks.example.com/keda/t0k3n",)
    ]


def test_a_sqlite_ledger_is_refused_by_worker(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEDA_")}
    env.update(PYTHONPATH=str(REPO_ROOT), KEDA_DATA_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "kedacore.campaign", "worker"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "workers need a PostgreSQL ledger" in done.stderr
    assert "the console runs campaigns itself" in done.stderr


def test_on_sqlite_the_campaign_runs_in_process_through_the_same_task_code(
    tmp_path: Path, gateway: Gateway
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert not tasks.uses_workers(url)
    campaign_id, batches = create(url, gateway, 300, track_click=True, callback=False)
    make = client_factory(gateway.base_url, gateway.api_key, gateway.encryption_key)
    with Ledger(url) as ledger:
        engine = tasks.campaign_engine(ledger, campaign_id, make, callback_url="http://x/cb")
        assert engine.track_click and engine.callback_url is None  # the campaign's options
        run = engine.start(campaign_id)  # the console's background thread
        report = run.wait(60)
        assert report is not None and report.status == "done"
    tally = GatewayTally.read(gateway.read)
    assert tally.messages == 300 and tally.tasks == batches
    assert gateway.read("SELECT DISTINCT track_click FROM tasks") == [(1,)]


@needs_postgres
def test_cli_run_refuses_a_campaign_a_worker_is_sending(pg_ledger_url: str) -> None:
    with Ledger(pg_ledger_url) as ledger:
        campaign_id = ledger.create_campaign("Busy")
    holder = tasks.acquire_guard(pg_ledger_url, campaign_id)
    # The same ledger spelled otherwise (another option, the application's name): the lock
    # is the ledger's, not the URL's (a review ran a second runner past it that way).
    other = pg_ledger_url.replace(
        "options=", "application_name=other&options=-cstatement_timeout%3D0%20"
    )
    assert other != pg_ledger_url
    try:
        with pytest.raises(CampaignBusyError):
            tasks.acquire_guard(pg_ledger_url, campaign_id, wait=0.2)
        with pytest.raises(CampaignBusyError):
            tasks.acquire_guard(other, campaign_id, wait=0.2)
    finally:
        holder.close()
    tasks.acquire_guard(pg_ledger_url, campaign_id, wait=0).close()  # free again


def test_the_receivers_token_is_never_kept_in_the_ledger_and_each_runner_puts_back_its_own() -> (
    None
):
    url = "https://console.example.com/hooks/keda/Tok3n-secret-123"
    kept = tasks.kept_callback(url, "Tok3n-secret-123")
    assert kept == "https://console.example.com/hooks/keda/{webhook_token}"
    assert tasks.callback_for(kept, "Tok3n-secret-123") == url
    assert tasks.callback_for(kept, None) is None  # the runner's own KEDA_CALLBACK_URL instead
    assert tasks.callback_for("https://x.example/plain", None) == "https://x.example/plain"
    assert tasks.kept_callback(url, None) == url and tasks.kept_callback(None, "t" * 10) is None
