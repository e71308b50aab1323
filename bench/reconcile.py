"""Benchmark: reconciliation of 10,000 non-final messages against the gateway's status API.

A separately started `python -m gateway serve` (realistic carrier fates, no delays) takes
10,000 messages (10 tasks of 1,000) sent with AsyncKedaClient without a callback URL; each
send is recorded in two ledgers, where every message stays QUEUED (no callback reaches
them). Once the gateway has settled every message, `kedacore.reconcile.reconcile` brings
each ledger up to date and is timed: the first as it chooses (whole-task lookups), the
second forced to ask one msgid at a time (10,000 status requests, concurrency 16).

Run: python -m bench.reconcile [--messages 10000] [--concurrency 16]
Target on the 2-core machine: 10,000 messages reconciled in ≤ 15 s.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from bench._gateway import running_gateway
from kedacore import AsyncKedaClient
from kedacore.ledger import Ledger
from kedacore.reconcile import ReconcileReport, reconcile

CONTENT = "Your appointment is tomorrow at 10:00"
PER_TASK = 1000
COUNTRIES = [("US", "+1206{:07d}", 4_000_000), ("GB", "+447400{:06d}", 100_000)]


def numbers(task: int, count: int) -> tuple[str, list[str]]:
    country, pattern, start = COUNTRIES[task % len(COUNTRIES)]
    return country, [pattern.format(start + task * PER_TASK + i) for i in range(count)]


async def send_all(client: AsyncKedaClient, ledgers: list[Ledger], messages: int) -> None:
    async def one(task: int) -> None:
        country, batch = numbers(task, min(PER_TASK, messages - task * PER_TASK))
        result = await client.sms.send(country, batch, CONTENT)
        for ledger in ledgers:
            await asyncio.to_thread(
                ledger.record_send, result, country=country, sender=None, content=CONTENT
            )

    await asyncio.gather(*(one(t) for t in range(-(-messages // PER_TASK))))


def wait_until_settled(db: Path, timeout: float = 120) -> None:
    """Until the gateway's carrier has moved every message to a final status."""
    deadline = time.monotonic() + timeout
    with sqlite3.connect(db) as conn:
        while conn.execute(
            "SELECT count(*) FROM messages WHERE next_event_at IS NOT NULL"
        ).fetchone()[0]:
            if time.monotonic() > deadline:
                raise SystemExit("the gateway did not settle every message")
            time.sleep(0.05)


def open_count(ledger: Ledger) -> int:
    return len(ledger.non_final_messages())


def charged_matches(ledger: Ledger, db: Path) -> bool:
    """The ledger's cost of every message equals what the gateway charged for it."""
    with sqlite3.connect(db) as conn:
        charged = dict(
            conn.execute(
                "SELECT msgid, CASE WHEN status = 'FAILED' THEN 0 ELSE price_micros END "
                "FROM messages"
            ).fetchall()
        )
    with ledger.engine.connect() as conn:
        ours = dict(conn.exec_driver_sql("SELECT msgid, cost_micros FROM messages").all())
    return ours == charged


def line(name: str, report: ReconcileReport) -> str:
    return (
        f"  {name}: {report.checked} checked, {report.now_final} now final in "
        f"{report.seconds:.2f} s ({report.task_requests} task + {report.status_requests} "
        f"status requests, {report.errors} errors)   target ≤ 15 s"
    )


async def run(gw, messages: int, concurrency: int, ledgers: list[Ledger]) -> list[ReconcileReport]:
    async with AsyncKedaClient(
        gw.api_key, gw.encryption_key, base_url=gw.base_url, backup_url=gw.base_url
    ) as client:
        await send_all(client, ledgers, messages)
        await asyncio.to_thread(wait_until_settled, gw.db)
        by_task = await reconcile(ledgers[0], client, concurrency=concurrency)
        # task_share above 1: no task is ever asked about whole, every msgid on its own.
        singles = await reconcile(ledgers[1], client, concurrency=concurrency, task_share=2.0)
    return [by_task, singles]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    serve_args = ["--profile", "realistic", "--sent-delay", "0", "--deliver-delay", "0"]
    with (
        tempfile.TemporaryDirectory(prefix="keda-bench-ledger-") as tmp,
        running_gateway(*serve_args) as gw,
    ):
        ledgers = [Ledger(f"sqlite:///{Path(tmp) / f'ledger-{i}.db'}") for i in range(2)]
        try:
            reports = asyncio.run(run(gw, args.messages, args.concurrency, ledgers))
            left = [open_count(ledger) for ledger in ledgers]
            exact = all(charged_matches(ledger, gw.db) for ledger in ledgers)
        finally:
            for ledger in ledgers:
                ledger.close()
    print(f"reconciliation of {args.messages} non-final messages (concurrency {args.concurrency})")
    print(line("whole tasks where worth it", reports[0]))
    print(line("one msgid at a time      ", reports[1]))
    print(f"  still open afterwards: {left}; every cost equals the gateway's charge: {exact}")
    if any(left) or not exact:
        raise SystemExit("reconciliation left messages open or costs differ")


if __name__ == "__main__":
    main()
