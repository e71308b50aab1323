"""Benchmark: personalised campaigns of 10,000 and 100,000 recipients, in one invocation.

Each size runs in a process of its own (so that its peak memory — ``VmHWM`` of
/proc/self/status — is the sending process's own), against a gateway of its own (a separately
started ``python -m gateway serve``, rate limit off, a fresh database), from CSV bytes to every
task accepted and recorded: the phases of ``bench.campaign`` (parse, validate, plan, send).
Then the gateway's database is read: every recipient exactly once.

SQLite (the embedded default): the case process runs the campaign itself
(``CampaignEngine.run_sync``), as the console does.

PostgreSQL (``--store postgresql --database-url URL --workers N``): the case process parses,
validates and plans into that ledger, then enqueues the campaign; ``N`` processes of
``python -m kedacore.campaign worker`` send it (their peak memory is reported per worker).

Run: python -m bench.scale [--sizes 10000 100000] [--store sqlite|postgresql] [--workers N]
Target (issue 13): the 100,000 case within 10.5× the 10,000 one's time, peak ≤ 300 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench._gateway import RunningGateway, running_gateway

PHASES = ("parse", "validate", "plan", "send")


def peak_mib(pid: int | str = "self") -> float:
    """The process's peak resident memory (VmHWM), in MiB."""
    return _status_kib(pid, "VmHWM") / 1024


def _status_kib(pid: int | str, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


# -- one case, in its own process -----------------------------------------------------------


def run_one(args: argparse.Namespace) -> dict[str, float]:
    """The case process: one personalised campaign of ``args.case`` recipients."""
    from bench.campaign import PERSONAL, run_case

    gw = RunningGateway(
        args.base_url, Path(args.gateway_db), args.api_key, args.enc_key, args.gateway_pid
    )
    baseline = _status_kib("self", "VmRSS") / 1024
    if args.store == "sqlite":
        times = run_case(gw, "personalised", PERSONAL, args.case, args.concurrency)
    else:
        times = run_case(
            gw,
            "personalised",
            PERSONAL,
            args.case,
            args.concurrency,
            ledger_url=args.database_url,
            send=lambda engine, campaign_id: send_with_workers(args, campaign_id),
        )
    times["baseline_mib"] = baseline
    times["peak_mib"] = peak_mib()
    return times


def send_with_workers(args: argparse.Namespace, campaign_id: int) -> dict[str, float]:
    """PostgreSQL: enqueue the campaign (``kedacore.campaign.tasks.enqueue``), let
    ``args.workers`` processes of ``python -m kedacore.campaign worker`` send it, and wait
    until the ledger says it is done. Returns the workers' largest peak memory (MiB)."""
    from kedacore.campaign import tasks
    from kedacore.ledger import Ledger

    data_dir = tempfile.mkdtemp(prefix="keda-scale-worker-")
    env = dict(
        os.environ,
        KEDA_DATA_DIR=data_dir,
        KEDA_DATABASE_URL=args.database_url,
        KEDA_API_KEY=args.api_key,
        KEDA_ENCRYPTION_KEY=args.enc_key,
        KEDA_BASE_URL=args.base_url,
        KEDA_BACKUP_URL=args.base_url,
        PYTHONUNBUFFERED="1",
    )
    command = [sys.executable, "-m", "kedacore.campaign", "worker"]
    command += ["--database-url", args.database_url, "--sends", str(args.concurrency)]
    tasks.ensure_schema(args.database_url)  # before the workers: they would race to it
    workers = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(args.workers)
    ]
    peaks: dict[int, float] = {}
    cpu: dict[int, float] = {}
    ledger = Ledger(args.database_url)
    try:
        started = time.monotonic()  # not the campaign's time: the workers' start
        while tasks.live_workers(ledger) < args.workers:
            if time.monotonic() - started > 120 or any(w.poll() is not None for w in workers):
                raise RuntimeError("the workers did not start")
            time.sleep(0.1)
        worker_start = time.monotonic() - started
        tasks.enqueue(args.database_url, campaign_id)
        deadline = time.monotonic() + 1800
        while ledger.campaign_status(campaign_id) != "done":
            for w in workers:
                if w.poll() is None:
                    peaks[w.pid] = peak_mib(w.pid)
                    cpu[w.pid] = RunningGateway("", Path(), "", "", w.pid).cpu_seconds()
                else:
                    error = w.stderr.read() if w.stderr else b""
                    raise RuntimeError(f"a worker exited {w.returncode}: {error!r}")
            if time.monotonic() > deadline:
                raise RuntimeError("the campaign was not done within 30 minutes")
            time.sleep(0.2)
    finally:
        ledger.close()
        shutil.rmtree(data_dir, ignore_errors=True)
        for w in workers:
            if w.poll() is None:
                peaks[w.pid] = peak_mib(w.pid)
                w.terminate()
        for w in workers:
            try:
                w.wait(timeout=60)
            except subprocess.TimeoutExpired:
                w.kill()
    return {
        "worker_peak_mib": max(peaks.values(), default=0.0),
        "worker_cpu": sum(cpu.values()),
        "worker_start": worker_start,
    }


# -- the invocation: every size, each in its own process ------------------------------------


def case(gw: RunningGateway, size: int, args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.scale", "--case", str(size)]
    command += ["--base-url", gw.base_url, "--gateway-db", str(gw.db)]
    command += ["--api-key", gw.api_key, "--enc-key", gw.encryption_key]
    command += ["--concurrency", str(args.concurrency), "--store", args.store]
    command += ["--workers", str(args.workers), "--gateway-pid", str(gw.pid)]
    if args.database_url:
        command += ["--database-url", args.database_url]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    with sqlite3.connect(gw.db) as conn:
        messages, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT recipient) FROM messages"
        ).fetchone()
    assert messages == distinct == size, (
        f"the gateway holds {messages} messages for {distinct} recipients, not {size} once each"
    )
    result["gateway_messages"] = messages
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--database-url", help="the PostgreSQL ledger (--store postgresql)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (PostgreSQL)")
    # The case process's own arguments (bench.scale runs itself once per size).
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--gateway-pid", type=int, help=argparse.SUPPRESS)
    for name in ("--base-url", "--gateway-db", "--api-key", "--enc-key"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is not None:
        print(json.dumps(run_one(args)))
        return
    if args.store == "postgresql" and not args.database_url:
        parser.error("--store postgresql needs --database-url")
    where = (
        "SQLite, in-process" if args.store == "sqlite" else f"PostgreSQL, {args.workers} worker(s)"
    )
    print(f"personalised campaigns, 5 countries, concurrency {args.concurrency}, {where}")
    print(f"{'recipients':>10}" + "".join(f"{p:>10}" for p in PHASES) + f"{'total':>10}", end="")
    print(f"{'peak MiB':>10}{'CPU s':>8}")
    results = {}
    for size in args.sizes:
        with running_gateway() as gw, _store(args) as sized:
            r = results[size] = case(gw, size, sized)
        peak = r.get("worker_peak_mib") or r["peak_mib"]
        cpu = r["cpu"] + r.get("worker_cpu", 0.0)
        print(
            f"{size:>10,}" + "".join(f"{r[p]:>10.2f}" for p in PHASES) + f"{r['total']:>10.2f}"
            f"{peak:>10.0f}{cpu:>8.2f}"
        )
    sizes = sorted(results)
    if len(sizes) >= 2:
        small, large = results[sizes[0]], results[sizes[-1]]
        print(
            f"{sizes[-1]:,} vs {sizes[0]:,}: {large['total'] / small['total']:.2f}× the time "
            f"for {sizes[-1] / sizes[0]:.0f}× the recipients (send alone "
            f"{large['send'] / small['send']:.2f}×)"
        )
    print("gateway: every recipient once, " + ", ".join(f"{s:,}" for s in sizes))


@contextlib.contextmanager
def _store(args: argparse.Namespace) -> Iterator[argparse.Namespace]:
    """The arguments of one size: on PostgreSQL, a schema of its own in the database (the
    ledger's tables and procrastinate's are created there), dropped afterwards."""
    if args.store != "postgresql":
        yield args
        return
    import psycopg

    from kedacore.campaign.tasks import conninfo

    schema = f"bench_scale_{secrets.token_hex(4)}"
    with psycopg.connect(conninfo(args.database_url), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    glue = "&" if "?" in args.database_url else "?"
    url = f"{args.database_url}{glue}options=-csearch_path%3D{schema}"
    try:
        yield argparse.Namespace(**{**vars(args), "database_url": url})
    finally:
        with psycopg.connect(conninfo(args.database_url), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
