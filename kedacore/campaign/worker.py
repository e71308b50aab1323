"""``python -m kedacore.campaign worker``: run the campaign jobs a PostgreSQL ledger holds.

Any number of workers, on any machine that reaches the database and the service, take the
jobs the console (or ``send --yes``) enqueues (:mod:`kedacore.campaign.tasks`) and send each
campaign with :func:`~kedacore.campaign.tasks.run_campaign`, the code the console runs itself
on SQLite. One campaign is sent by one worker at a time (procrastinate's lock, and the
campaign's advisory lock); one worker sends up to ``--concurrency`` campaigns at once.

Takeover: every worker beats its heartbeat every 2 s and, every 3 s, hands back the campaign
jobs of workers silent for 10 s (procrastinate's ``get_stalled_jobs`` / ``retry_job``); a
live worker takes the job and resumes the campaign where the ledger has it — a planned batch
is sent again with its clientRef, which the service answers with the first send's result, so
no recipient gets two messages. A killed worker's campaign goes on within about 15 s.

SIGTERM (or SIGINT): the worker takes no new job and finishes the campaigns it is sending,
then exits 0. A second signal ends it at once (as a kill would): another worker then takes
its campaigns over, exactly once per recipient. (systemd: ``TimeoutStopSec=`` bounds the wait.)

Keys: live mode, ``KEDA_API_KEY``/``KEDA_ENCRYPTION_KEY``/``KEDA_BASE_URL``/``KEDA_BACKUP_URL``
(environment, or ``[keda]`` in ``./.streamlit/secrets.toml``), as the console reads them.
Sandbox mode (no API key): the sandbox gateway runs inside a console, so a worker can only
send through the console of this machine — it reads the data folder's sandbox account and
port (``sandbox_account.json``, ``sandbox_port``) and refuses when they are not there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kedacore.api.async_client import AsyncKedaClient
from kedacore.campaign import tasks
from kedacore.campaign.engine import DEFAULT_CONCURRENCY, run_loop
from kedacore.ledger import Ledger
from kedacore.redaction import redact_text
from kedacore.settings import Settings, load_settings

logger = logging.getLogger("kedacore.campaign.worker")

EXIT_STOPPED = 0
EXIT_FAILED = 1
EXIT_BAD_SETUP = 2
EXIT_CODES = {
    EXIT_STOPPED: "stopped by SIGTERM/SIGINT after finishing the campaigns it was sending",
    EXIT_FAILED: "failed: the database was lost or the worker broke (said on stderr)",
    EXIT_BAD_SETUP: "bad setup: a SQLite ledger, no keys, no sandbox to reach, a database "
    "that cannot be reached; nothing was run",
}
SECRETS_FILE = Path(".streamlit") / "secrets.toml"
SANDBOX_HINT = (
    "no API key is set (sandbox mode), and the sandbox gateway runs inside a console: no "
    "sandbox account and port were found in the data folder {folder}. Start the console on "
    "this machine first and give the worker the console's data folder (KEDA_DATA_DIR), or set "
    "KEDA_API_KEY and KEDA_ENCRYPTION_KEY for live mode"
)


class BadSetup(ValueError):
    """The worker cannot start as configured (exit 2)."""


def read_secrets() -> dict[str, Any] | None:
    """./.streamlit/secrets.toml, as the console reads it (None when there is none)."""
    if not SECRETS_FILE.is_file():
        return None
    try:
        return tomllib.loads(SECRETS_FILE.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadSetup(f"{SECRETS_FILE} cannot be read: {exc}") from None


def settings_from(env: dict[str, str] | None = None) -> Settings:
    """The console's settings: the environment, then ``[keda]`` of ./.streamlit/secrets.toml."""
    secrets = read_secrets()
    env = dict(os.environ if env is None else env)
    env.setdefault("KEDA_WEBHOOK_TOKEN", "unused")  # never written into the data folder here
    return load_settings(secrets, env)


def runner_token(settings: Settings) -> str | None:
    """The receiver's token this worker puts back into a campaign's kept callback URL:
    KEDA_WEBHOOK_TOKEN (shared by a team's replicas and workers), else the one in the data
    folder of the console on this machine; None when neither is known."""
    if settings.webhook_token and settings.webhook_token != "unused":
        return settings.webhook_token
    with contextlib.suppress(OSError):
        return (settings.data_dir / "webhook_token").read_text().strip() or None
    return None


def client_factory(settings: Settings) -> Callable[[], AsyncKedaClient]:
    """How the worker's runs make their client: live keys, or this machine's sandbox."""
    if settings.mode == "live":
        key, secret = settings.api_key, settings.encryption_key
        base, backup = settings.base_url, settings.backup_url
    else:
        try:
            account = json.loads((settings.data_dir / "sandbox_account.json").read_text())
            port = int((settings.data_dir / "sandbox_port").read_text().strip())
            key, secret = account["apiKey"], account["encryptionKey"]
        except (OSError, ValueError, KeyError):
            raise BadSetup(SANDBOX_HINT.format(folder=settings.data_dir.resolve())) from None
        base = backup = f"http://127.0.0.1:{port}/api"
        logger.info("sandbox mode: sending through the console's sandbox gateway at %s", base)

    def make() -> AsyncKedaClient:
        return AsyncKedaClient(key, secret, base_url=base, backup_url=backup)

    make()  # an unusable key or address is said now (ConfigurationError), not per job
    return make


class CampaignWorker:
    """The runner of campaign jobs in one worker process."""

    def __init__(
        self,
        ledger: Ledger,
        make_client: Callable[[], AsyncKedaClient],
        *,
        callback_url: str | None = None,
        rate: float | None = None,
        sends: int = DEFAULT_CONCURRENCY,
        data_dir: Path | None = None,
        webhook_token: str | None = None,
    ) -> None:
        self.webhook_token = webhook_token
        self.ledger = ledger
        self.make_client = make_client
        self.callback_url = callback_url
        self.rate = rate
        self.sends = sends
        self.data_dir = data_dir

    async def run_job(self, campaign_id: int, requested: str) -> str:
        # The campaign runs on a loop of its own in a thread: the worker's loop keeps its
        # heartbeats and job polls on time, however busy the sending is.
        return await asyncio.to_thread(self._run, campaign_id, requested)

    def _run(self, campaign_id: int, requested: str) -> str:
        with tasks.campaign_guard(self.ledger.url, campaign_id):
            stale = tasks.stale_request(self.ledger, campaign_id, requested)
            if stale is not None:
                logger.info("campaign %s: not sent: %s", campaign_id, stale)
                return stale
            logger.info("campaign %s: sending", campaign_id)
            report = run_loop(
                tasks.run_campaign(
                    self.ledger,
                    campaign_id,
                    self.make_client,
                    callback_url=self.callback_url,
                    rate=self.rate,
                    concurrency=self.sends,
                    data_dir=self.data_dir,
                    guard=False,  # held above, with the stale check
                    webhook_token=self.webhook_token,
                )
            )
        line = f"campaign {campaign_id}: {report.status} ({report.recipients_sent} sent)"
        if report.status == "scheduled":  # later parts: a job for then, no worker held
            due, nxt = self.ledger.next_part_at(campaign_id)
            when = self.ledger.now() if due else nxt  # due meanwhile: a new job, now
            if when is not None:
                tasks.enqueue(self.ledger.url, campaign_id, self.ledger.now(), at=when)
                line += f"; next part at {when:%Y-%m-%d %H:%M:%S} UTC"
        logger.info("%s", line)
        return line


async def rescue_stalled(app: Any) -> None:
    """Every RESCUE_EVERY s: campaign jobs of workers silent for STALLED_AFTER s go back to
    ``todo`` (each worker does it; the second to try a job finds it done and lets it be)."""
    while True:
        await asyncio.sleep(tasks.RESCUE_EVERY)
        try:
            stalled = await app.job_manager.get_stalled_jobs(
                task_name=tasks.TASK_NAME, seconds_since_heartbeat=tasks.STALLED_AFTER
            )
            for job in stalled:
                try:
                    await app.job_manager.retry_job(job)
                    logger.warning(
                        "campaign job %s of a stalled worker: handed to a live worker", job.id
                    )
                except Exception as exc:  # another worker did it first, or a job waits
                    logger.info("campaign job %s not retried here: %s", job.id, exc)
                    await _fail_if_blocked(app, job)
            await app.job_manager.prune_stalled_workers(tasks.STALLED_AFTER * 3)
        except Exception:
            logger.exception("looking for stalled campaign jobs failed; trying again")


async def _fail_if_blocked(app: Any, job: Any) -> None:
    """A stalled job that cannot go back to ``todo`` because another job of the campaign
    waits there (a Resume clicked meanwhile): failed, so that the waiting one runs."""
    from procrastinate.jobs import Status

    with contextlib.suppress(Exception):
        status = await app.job_manager.get_job_status_async(job.id)
        if status == Status.DOING:
            await app.job_manager.finish_job_by_id_async(job.id, Status.FAILED, False)


async def serve(url: str, worker: CampaignWorker, concurrency: int) -> None:
    """Run the procrastinate worker and the stalled-job rescue until a stop signal."""
    tasks.ensure_schema(url)
    app = tasks.build_app(url, worker.run_job, pool_size=max(4, concurrency + 3))
    async with app.open_async():
        rescue = asyncio.create_task(rescue_stalled(app))
        try:
            await app.run_worker_async(
                queues=[tasks.QUEUE],
                concurrency=concurrency,
                update_heartbeat_interval=tasks.HEARTBEAT,
                stalled_worker_timeout=tasks.STALLED_AFTER * 3,
                fetch_job_polling_interval=tasks.POLL_JOBS,
                delete_jobs="successful",
                name=f"campaigns@{os.uname().nodename}:{os.getpid()}",
            )
        finally:
            rescue.cancel()
            await asyncio.gather(rescue, return_exceptions=True)


def add_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--concurrency", type=int, default=4, help="campaigns sent at once (default 4)"
    )
    sub.add_argument(
        "--database-url",
        default=None,
        help="the ledger (PostgreSQL); default: the console's (KEDA_DATABASE_URL, secrets)",
    )
    sub.add_argument(
        "--sends", type=int, default=DEFAULT_CONCURRENCY, help="requests in flight per campaign"
    )
    sub.add_argument(
        "--rate",
        type=float,
        default=None,
        help="requests a second per campaign (default: the console's pace, KEDA_RATE_LIMIT × "
        "KEDA_CAMPAIGN_RATE_SHARE = 80; 0: no pace)",
    )


def main(args: argparse.Namespace) -> int:
    """``worker``: serve campaign jobs until SIGTERM/SIGINT; returns the exit status."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("procrastinate").setLevel(logging.WARNING)  # job args are not logged
    try:
        if args.concurrency < 1 or args.sends < 1:
            raise BadSetup("--concurrency and --sends must be at least 1")
        if args.rate is not None and args.rate < 0:
            raise BadSetup("--rate must be 0 (no pace) or more requests a second")
        settings = settings_from()
        if args.rate is None:  # the pace the console's own runs take: the key is shared
            rate = tasks.campaign_rate(os.environ, (read_secrets() or {}).get("keda") or {})
        else:
            rate = args.rate or None
        url = args.database_url or settings.ledger_url
        if not tasks.is_postgres(url):
            raise BadSetup(
                "workers need a PostgreSQL ledger (KEDA_DATABASE_URL or --database-url); with "
                "the SQLite ledger the console runs campaigns itself, no worker is needed"
            )
        make_client = client_factory(settings)
        ledger = Ledger(url)
        logger.info(
            "serving campaign jobs: %s mode, up to %s campaigns at once, %s",
            settings.mode,
            args.concurrency,
            f"{rate:g} requests/s per campaign" if rate else "no pace",
        )
    except BadSetup as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_SETUP
    except Exception as exc:  # a ConfigurationError, a database that cannot be reached
        print(f"error: {redact_text(str(exc).splitlines()[0])}", file=sys.stderr)
        return EXIT_BAD_SETUP
    worker = CampaignWorker(
        ledger,
        make_client,
        callback_url=settings.callback_url,
        rate=rate,
        sends=args.sends,
        data_dir=settings.data_dir,
        webhook_token=runner_token(settings),
    )
    try:
        asyncio.run(serve(url, worker, args.concurrency))
    except Exception as exc:
        logger.exception("the worker stopped")
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"error: {redact_text(first)}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        ledger.close()
    return EXIT_STOPPED
