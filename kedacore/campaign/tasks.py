"""The one task code that runs a campaign, and the procrastinate jobs that carry it on PostgreSQL.

:func:`run_campaign` is what runs a campaign, whoever runs it: a worker
(``python -m kedacore.campaign worker``, :mod:`kedacore.campaign.worker`) for a job, the
console's background thread on SQLite (through :func:`campaign_engine` and
``CampaignEngine.start``), the command line's ``run``. It reads the campaign's send options
from the ledger (:func:`send_options`), builds the engine and sends every batch still planned.

With a PostgreSQL ledger the console and ``send --yes`` only enqueue (:func:`enqueue`): a
procrastinate job in the ledger's own database (same schema, same ``search_path``), with
``lock=campaign-<id>`` (two workers never run one campaign's jobs at once) and
``queueing_lock=campaign-<id>`` (two clicks make one waiting job). Belt and braces, a run on
PostgreSQL also holds a session advisory lock on the campaign for as long as it sends
(:func:`campaign_guard`): a second runner — a job retried while its first worker still lives,
a ``run`` typed by hand — waits for it, and the lock goes with the connection when a runner
dies. Exactly once per recipient is the ledger's own rule (a planned batch is sent again with
its clientRef; the service answers with the first send's result): a takeover relies on it.

``KEDA_CAMPAIGN_WORKERS=off`` keeps the console running campaigns in its own process on
PostgreSQL too (one console only; no worker needed): :func:`uses_workers`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from kedacore.campaign.engine import DEFAULT_CONCURRENCY, CampaignEngine, ClientFactory
from kedacore.campaign.progress import CampaignBusyError, CampaignProgress, CampaignReport
from kedacore.ledger import Campaign, Ledger

logger = logging.getLogger("kedacore.campaign.tasks")

TASK_NAME = "kedacore.campaign.run"
QUEUE = "campaigns"
OPTIONS_FILE = "campaign_options.json"  # where the console kept options before the column
WORKERS_ENV = "KEDA_CAMPAIGN_WORKERS"  # "off": the console runs campaigns itself on PostgreSQL
SCHEMA_LOCK = 0x6B656461  # the advisory lock two processes take to create procrastinate's schema
# What a running job's worker must keep up: a heartbeat every 2 s; a worker silent for 10 s is
# stalled and its campaign job is retried by any other worker (checked every 3 s), so a killed
# worker's campaign goes on within about 15 s.
HEARTBEAT = 2.0
STALLED_AFTER = 10.0
RESCUE_EVERY = 3.0
POLL_JOBS = 1.0  # the most a worker waits before looking for jobs (NOTIFY usually wakes it)


# -- where a campaign runs ---------------------------------------------------------------------


# The service's limit of requests per second for one API key (KedaSMS's, and the sandbox
# gateway's), and the share of it a campaign may use: the rest is left to the console's own
# pages (balance, caps, lookups), which use the same key. The console's runs and the workers'
# take the same pace.
RATE_LIMIT = 100.0  # KEDA_RATE_LIMIT (0: no limit, campaigns are not paced)
RATE_SHARE = 0.8  # KEDA_CAMPAIGN_RATE_SHARE, between 0.05 and 1


def campaign_rate(
    env: Mapping[str, str] | None = None, section: Mapping[str, Any] | None = None
) -> float | None:
    """Requests per second a campaign may send: KEDA_RATE_LIMIT × KEDA_CAMPAIGN_RATE_SHARE
    (``env``, then ``section`` — ``[keda]`` of the secrets — by their lower-case names); None
    when the limit is 0 (no pace). A value that is not a number is ignored (the default)."""
    env = os.environ if env is None else env
    section = section or {}

    def number(name: str, default: float) -> float:
        raw = env.get(name)
        if raw in (None, ""):
            raw = section.get(name.lower())
        try:
            return float(str(raw).replace("_", "")) if raw not in (None, "") else default
        except ValueError:
            return default

    limit = number("KEDA_RATE_LIMIT", RATE_LIMIT)
    share = min(max(number("KEDA_CAMPAIGN_RATE_SHARE", RATE_SHARE), 0.05), 1.0)
    return limit * share if limit > 0 else None


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def uses_workers(url: str) -> bool:
    """Whether campaigns of this ledger are run by workers (PostgreSQL, unless
    ``KEDA_CAMPAIGN_WORKERS=off``) rather than by the process that starts them."""
    off = os.environ.get(WORKERS_ENV, "").strip().lower() in ("off", "0", "no", "false")
    return is_postgres(url) and not off


def conninfo(url: str) -> str:
    """A libpq connection string for a SQLAlchemy URL (``postgresql+psycopg://user@host/db?
    host=/tmp/pg&port=5433&options=-csearch_path%3Dt_1``): user, password, host, port, database
    and every query parameter (``host``, ``port``, ``options``, ``sslmode``…) kept."""
    from psycopg.conninfo import make_conninfo

    u = make_url(url)
    parts: dict[str, Any] = {
        "user": u.username,
        "password": u.password,
        "host": u.host,
        "port": u.port,
        "dbname": u.database,
    }
    for key, value in u.query.items():
        parts[key] = value[-1] if isinstance(value, tuple) else value
    return make_conninfo("", **{k: str(v) for k, v in parts.items() if v not in (None, "")})


def lock_name(campaign_id: int) -> str:
    return f"campaign-{campaign_id}"


# -- send options --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendOptions:
    """A campaign's send options, the same for every run wherever it runs."""

    track_click: bool = False
    callback: bool = True  # status callbacks (to callback_url, else the runner's KEDA_CALLBACK_URL)
    callback_url: str | None = None  # where the console that started it receives them

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, found: dict[str, Any]) -> SendOptions:
        url = found.get("callback_url")
        return cls(
            track_click=bool(found.get("track_click", False)),
            callback=bool(found.get("callback", True)),
            callback_url=str(url) if url else None,
        )


# The receiver's token is a secret (docs/security.md): a callback URL kept in the ledger has it
# replaced by this slot, and each runner puts back its own (KEDA_WEBHOOK_TOKEN, which every
# replica and worker of a team shares, or the data folder's on the console's machine).
TOKEN_SLOT = "{webhook_token}"


def kept_callback(url: str | None, token: str | None) -> str | None:
    """``url`` as the ledger keeps it: the receiver's ``token`` in it replaced by the slot."""
    if not url or not token or len(token) < 8:
        return url
    return url.replace(token, TOKEN_SLOT)


def callback_for(kept: str | None, token: str | None) -> str | None:
    """The callback URL a runner posts to: the kept one with ``token`` put back; None when it
    has a slot and this runner knows no token (its own KEDA_CALLBACK_URL is used instead)."""
    if not kept or TOKEN_SLOT not in kept:
        return kept
    return kept.replace(TOKEN_SLOT, token) if token else None


def _file_options(data_dir: Path | None, campaign: Campaign) -> dict[str, Any] | None:
    """Options the console kept in ``campaign_options.json`` before the ledger had a column."""
    if data_dir is None:
        return None
    with contextlib.suppress(OSError, ValueError):
        saved = json.loads((data_dir / OPTIONS_FILE).read_text())
        # The creation time too: a ledger replaced under the same data folder reuses ids.
        found = saved.get(f"{campaign.id}@{campaign.created_at.isoformat()}")
        if isinstance(found, dict):
            return found
    return None


def send_options(ledger: Ledger, campaign_id: int, data_dir: Path | None = None) -> SendOptions:
    """The campaign's send options: the ledger's column, else (a campaign planned before it) the
    data folder's old file, else the defaults."""
    found = ledger.campaign_options(campaign_id)
    if found is None:
        campaign = ledger.campaign(campaign_id)
        found = _file_options(data_dir, campaign) if campaign is not None else None
    return SendOptions.from_json(found or {})


# -- the one task code -----------------------------------------------------------------------------


def campaign_engine(
    ledger: Ledger,
    campaign_id: int,
    client_factory: ClientFactory,
    *,
    callback_url: str | None = None,
    rate: float | None = None,
    data_dir: Path | None = None,
    webhook_token: str | None = None,
    engine_class: type[CampaignEngine] = CampaignEngine,
    **engine_options: Any,
) -> CampaignEngine:
    """The engine a run of this campaign sends with: its options from the ledger; callbacks to
    the URL kept with them (``webhook_token``, the runner's, put back in it), else
    ``callback_url`` (the runner's own), when the campaign asks."""
    options = send_options(ledger, campaign_id, data_dir)
    kept = callback_for(options.callback_url, webhook_token)
    return engine_class(
        ledger,
        client_factory,
        callback_url=(kept or callback_url) if options.callback else None,
        track_click=options.track_click,
        rate=rate,
        **engine_options,
    )


async def run_campaign(
    ledger: Ledger,
    campaign_id: int,
    client_factory: ClientFactory,
    *,
    callback_url: str | None = None,
    rate: float | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    data_dir: Path | None = None,
    on_progress: Callable[[CampaignProgress], Any] | None = None,
    stop: threading.Event | None = None,
    wait: float | None = None,
    guard: bool = True,
    webhook_token: str | None = None,
) -> CampaignReport:
    """Run (start or resume) the campaign to its end or a pause: every batch still planned.

    On PostgreSQL the run holds the campaign's advisory lock (:func:`campaign_guard`); it waits
    at most ``wait`` seconds for it (None: as long as it takes) and then raises
    ``CampaignBusyError``. ``guard=False``: the caller holds it already (a worker's job)."""
    import asyncio

    engine = campaign_engine(
        ledger, campaign_id, client_factory, callback_url=callback_url, rate=rate,
        data_dir=data_dir, webhook_token=webhook_token,
    )  # fmt: skip
    if not guard or not is_postgres(ledger.url):
        return await engine.run(
            campaign_id, concurrency=concurrency, on_progress=on_progress, stop=stop
        )
    guard = await asyncio.to_thread(acquire_guard, ledger.url, campaign_id, wait)
    try:
        return await engine.run(
            campaign_id, concurrency=concurrency, on_progress=on_progress, stop=stop
        )
    finally:
        await asyncio.to_thread(guard.close)


def _guard_key(schema: str, campaign_id: int) -> int:
    """A 64-bit advisory lock key for this campaign of this ledger. Advisory locks belong to
    one database already; the schema is the one the server says the connection uses — never
    read from the URL, which two processes may spell differently (a host name or an address,
    a socket or TCP) for the same ledger."""
    where = f"{schema}|{campaign_id}"
    digest = hashlib.blake2b(where.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def acquire_guard(url: str, campaign_id: int, wait: float | None = None) -> Any:
    """A connection holding the campaign's session advisory lock (close it to let go); waits
    while another runner holds it, at most ``wait`` s (then ``CampaignBusyError``). TCP
    keepalives: the lock of a runner whose machine vanished is freed within about 15 s."""
    import psycopg

    info = conninfo(url)
    extra = "keepalives=1 keepalives_idle=5 keepalives_interval=2 keepalives_count=3"
    conn = psycopg.connect(f"{info} {extra}", autocommit=True)
    deadline = None if wait is None else time.monotonic() + wait
    try:
        key = _guard_key(conn.execute("SELECT current_schema()").fetchone()[0], campaign_id)
        said = False
        while not conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
            if deadline is not None and time.monotonic() >= deadline:
                raise CampaignBusyError(
                    f"campaign {campaign_id} is being sent by another process (a worker)"
                )
            if not said:
                logger.info("campaign %s: another runner holds it; waiting", campaign_id)
                said = True
            time.sleep(0.5)
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def campaign_guard(url: str, campaign_id: int, wait: float | None = None) -> Iterator[None]:
    """:func:`acquire_guard` as a context manager (nothing on SQLite)."""
    if not is_postgres(url):
        yield
        return
    conn = acquire_guard(url, campaign_id, wait)
    try:
        yield
    finally:
        conn.close()


# -- the jobs ------------------------------------------------------------------------------------


JobRunner = Callable[[int, str], Any]  # (campaign_id, requested) -> awaitable


def build_app(url: str, runner: JobRunner | None = None, *, pool_size: int = 4) -> Any:
    """The procrastinate App on the ledger's database, with the campaign task registered.

    ``runner`` is what a worker does with a job (:mod:`kedacore.campaign.worker`); a process
    that only enqueues passes none."""
    from procrastinate import App, PsycopgConnector

    app = App(connector=PsycopgConnector(conninfo=conninfo(url), min_size=1, max_size=pool_size))

    async def run_campaign_job(campaign_id: int, requested: str) -> str:
        if runner is None:
            raise RuntimeError("this process enqueues campaign jobs; workers run them")
        return await runner(campaign_id, requested)

    app.task(name=TASK_NAME, queue=QUEUE)(run_campaign_job)
    return app


_SCHEMA_READY: set[str] = set()
_SCHEMA_LOCK = threading.Lock()


def ensure_schema(url: str) -> None:
    """procrastinate's tables and functions in the ledger's database (its ``search_path``),
    created when absent; two processes starting at once take turns (an advisory lock)."""
    if url in _SCHEMA_READY:
        return
    import psycopg
    from procrastinate.schema import SchemaManager

    with _SCHEMA_LOCK, psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            present = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0]
            if present is None:
                with conn.transaction():
                    conn.execute(SchemaManager.get_schema())  # type: ignore[arg-type]
                logger.info("procrastinate's schema created")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))
    _SCHEMA_READY.add(url)


def enqueue(
    url: str, campaign_id: int, requested: datetime | None = None, *, at: datetime | None = None
) -> int | None:
    """A job to run the campaign; its id, or None when one is already waiting (two clicks,
    two replicas: one job). ``requested``: when it was asked (a pause after it wins). ``at``:
    not before then (procrastinate's ``schedule_at``: a scheduled campaign's next part)."""
    from procrastinate.exceptions import AlreadyEnqueued

    ensure_schema(url)
    when = (requested or datetime.now(UTC)).astimezone(UTC).isoformat()
    app = build_app(url, pool_size=1)
    with app.open():
        later = {"schedule_at": at.astimezone(UTC)} if at is not None else {}
        task = app.tasks[TASK_NAME].configure(
            lock=lock_name(campaign_id), queueing_lock=lock_name(campaign_id), **later
        )
        try:
            return int(task.defer(campaign_id=campaign_id, requested=when))
        except AlreadyEnqueued:
            return None


def active_jobs(ledger: Ledger) -> dict[int, tuple[int, str]]:
    """Campaign id → (job id, status) of the campaign jobs waiting (``todo``) or running
    (``doing``, which a dead worker's job stays until a live worker retries it); the running
    one when a campaign has both."""
    query = text(
        "SELECT id, status::text, args FROM procrastinate_jobs "
        "WHERE task_name = :task AND status IN ('todo', 'doing') ORDER BY id"
    )
    ensure_schema(ledger.url)
    found: dict[int, tuple[int, str]] = {}
    with ledger.engine.connect() as conn:
        for job_id, status, args in conn.execute(query, {"task": TASK_NAME}):
            args = json.loads(args) if isinstance(args, str) else args
            campaign = int(args.get("campaign_id", -1))
            if campaign not in found or status == "doing":
                found[campaign] = (int(job_id), status)
    return found


def cancel_waiting(ledger: Ledger, campaign_id: int) -> bool:
    """Cancel the campaign's job still waiting for a worker (a pause before it started)."""
    job = active_jobs(ledger).get(campaign_id)
    if job is None or job[1] != "todo":
        return False
    app = build_app(ledger.url, pool_size=1)
    with app.open():
        return bool(app.job_manager.cancel_job_by_id(job[0]))


def live_workers(ledger: Ledger) -> int:
    """Workers whose heartbeat is recent (they run or will take campaign jobs)."""
    ensure_schema(ledger.url)
    query = text(
        "SELECT count(*) FROM procrastinate_workers "
        "WHERE last_heartbeat > now() - make_interval(secs => :stalled)"
    )
    with ledger.engine.connect() as conn:
        return int(conn.scalar(query, {"stalled": STALLED_AFTER}) or 0)


class QueuedCampaignEngine(CampaignEngine):
    """The console's engine on PostgreSQL: ``start`` enqueues a job for a worker; a campaign
    whose job waits or runs anywhere ``is_running``; ``stop`` cancels a job still waiting and
    asks a running one to pause through the ledger (its ``_watch`` hears it)."""

    _cache: tuple[float, dict[int, tuple[int, str]]] | None = None

    def jobs(self) -> dict[int, tuple[int, str]]:
        now = time.monotonic()
        if self._cache is None or now - self._cache[0] > 1.0:  # one query per page run
            self._cache = (now, active_jobs(self.ledger))
        return self._cache[1]

    def is_running(self, campaign_id: int) -> bool:
        return super().is_running(campaign_id) or campaign_id in self.jobs()

    def start(self, campaign_id: int, *, concurrency: int = DEFAULT_CONCURRENCY) -> Any:
        from kedacore.campaign.progress import CampaignRun

        self._not_held(campaign_id)
        enqueue(self.ledger.url, campaign_id, self.ledger.now())
        self._cache = None
        return CampaignRun(campaign_id)  # no thread here: a worker runs it

    def stop(self, campaign_id: int) -> bool:
        cancelled = cancel_waiting(self.ledger, campaign_id)
        self._cache = None
        return super().stop(campaign_id) or cancelled

    def cancel(self, campaign_id: int) -> None:
        """A scheduled campaign's job waits (``todo``, for its time): cancelled with it."""
        if cancel_waiting(self.ledger, campaign_id):
            self._cache = None
        super().cancel(campaign_id)

    def wake_scheduled(self) -> list[int]:
        """The workers start scheduled campaigns (their jobs wait for the time): nothing."""
        return []


def stale_request(ledger: Ledger, campaign_id: int, requested: str) -> str | None:
    """Why a job should not send (paused or cancelled after it was asked for, or nothing
    left), or None."""
    campaign = ledger.campaign(campaign_id)
    if campaign is None:
        return f"no campaign {campaign_id}"
    asked = datetime.fromisoformat(requested)
    updated = campaign.updated_at
    if updated.tzinfo is None:
        updated = updated.replace(tzinfo=UTC)
    if campaign.status in ("paused", "pausing") and updated > asked:
        if campaign.status == "pausing":  # the run that was asked to pause is gone
            ledger.settle_stale_pause(campaign_id)
        return f"campaign {campaign_id} was paused after this job was asked for"
    if campaign.status in ("done", "cancelled", "rejected", "awaiting"):
        return f"campaign {campaign_id} is {campaign.status}"
    return None


__all__ = [
    "QUEUE",
    "TASK_NAME",
    "QueuedCampaignEngine",
    "SendOptions",
    "active_jobs",
    "build_app",
    "campaign_engine",
    "campaign_guard",
    "conninfo",
    "enqueue",
    "ensure_schema",
    "live_workers",
    "run_campaign",
    "send_options",
    "uses_workers",
]
