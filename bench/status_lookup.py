"""Benchmark: a Status-page lookup of 10,000 msgids, half of them unknown to the ledger.

A separately started `python -m gateway serve` (its default rate limit, 100 requests/s per
key; every message delivered at once) takes 7,500 messages: 5,000 sent and recorded in the
console's ledger (SQLite, where they stay QUEUED: no callback reaches it) and 2,500 sent "by
another tool" (the gateway knows them, the ledger does not). The lookup asks about those
7,500 and 2,500 msgids nobody knows, shuffled: 10,000 ids, 5,000 unknown to the ledger.

Timed, through the console's own functions (console.messaging.lookup, as pages/status.py
calls them, not the browser): `refresh` on a fresh AsyncKedaClient (what `call_async` does),
then `rows_for`, `summarize` and `status_table` — the result the page draws. Twice: first
with the ledger's 5,000 still open (asked by task), then again (the ledger has them final:
only the 5,000 others are asked). Then, for scale, the per-msgid fallback a service without
the batch call gets (the real KedaSMS), on fewer ids: it is paced by the rate limit. The
two lookups run ``--repeat`` times (the ledger copied back before each first lookup); the
median is reported.

Run: python -m bench.status_lookup [--ids 10000] [--fallback-ids 500] [--repeat 3]
Target on the 2-core machine: 10,000 msgids looked up in ≤ 3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sqlite3
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from bench._gateway import running_gateway
from console.messaging.lookup import refresh, rows_for, status_table, summarize
from kedacore import AsyncKedaClient
from kedacore.ledger import Ledger

CONTENT = "Your parcel is on its way"
PER_TASK = 1000
TARGET = 3.0


@dataclass
class Timing:
    seconds: float
    refresh: float
    requests: Counter
    headline: str
    rows: int


def numbers(task: int, count: int) -> list[str]:
    return [f"+1206{4_000_000 + task * PER_TASK + i:07d}" for i in range(count)]


async def send(gw, ledger: Ledger, recorded: int, elsewhere: int) -> tuple[list[str], list[str]]:
    """Send ``recorded`` messages recorded in the ledger and ``elsewhere`` not recorded."""
    mine: list[str] = []
    others: list[str] = []
    async with AsyncKedaClient(
        gw.api_key, gw.encryption_key, base_url=gw.base_url, backup_url=gw.base_url
    ) as client:
        for task in range(-(-(recorded + elsewhere) // PER_TASK)):
            first = task * PER_TASK
            count = min(PER_TASK, recorded + elsewhere - first)
            result = await client.sms.send("US", numbers(task, count), CONTENT)
            ids = [m.msgid for m in result.messages]
            if first < recorded:
                ledger.record_send(result, country="US", sender=None, content=CONTENT)
                mine += ids
            else:
                others += ids
    return mine, others


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


def look_up(gw, ledger: Ledger, msgids: list[str], *, batch: bool = True) -> Timing:
    """What pages/status.py does for a list: refresh, then the rows, summary and table."""
    requests: Counter = Counter()

    async def work() -> object:
        async with AsyncKedaClient(
            gw.api_key, gw.encryption_key, base_url=gw.base_url, backup_url=gw.base_url
        ) as client:
            attempt = client._attempt

            async def counted(endpoint):  # type: ignore[no-untyped-def]
                requests[endpoint.name] += 1
                return await attempt(endpoint)

            client._attempt = counted  # type: ignore[method-assign]
            if not batch:
                client._status_batch = False  # as a service without the batch call
            return await refresh(ledger, client, msgids, on_progress=lambda *_: None)

    started = time.perf_counter()
    found = asyncio.run(work())
    refreshed = time.perf_counter() - started
    rows = rows_for(ledger, msgids, found.api_only, "USD")  # type: ignore[attr-defined]
    summary = summarize(msgids, rows, found.not_found, found.errors, found.pending)  # type: ignore[attr-defined]
    status_table(rows, ZoneInfo("UTC"))
    summary.missing_frame()
    return Timing(time.perf_counter() - started, refreshed, requests, summary.headline(), len(rows))


def line(name: str, t: Timing, target: bool = True) -> str:
    asked = ", ".join(f"{n} {what}" for what, n in sorted(t.requests.items()))
    goal = f"   target ≤ {TARGET:.0f} s" if target else ""
    return (
        f"  {name}: {t.seconds:.2f} s (refresh {t.refresh:.2f} s; requests: {asked})\n"
        f"      → {t.headline}{goal}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=10_000)
    parser.add_argument("--fallback-ids", type=int, default=500)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each lookup (the median is reported)"
    )
    args = parser.parse_args()
    half = args.ids // 2
    serve_args = ["--sent-delay", "0", "--deliver-delay", "0", "--rate-limit", "100"]
    with (
        tempfile.TemporaryDirectory(prefix="keda-bench-ledger-") as tmp,
        running_gateway(*serve_args) as gw,
    ):
        db = Path(tmp) / "ledger.db"
        saved = Path(tmp) / "ledger-before.db"
        ledger = Ledger(f"sqlite:///{db}")
        mine, others = asyncio.run(send(gw, ledger, half, half // 2))
        wait_until_settled(gw.db)
        ledger.close()
        shutil.copyfile(db, saved)  # the ledger before any lookup: its messages open
        left = args.ids - len(mine) - len(others)
        nobody = [f"msg_{0xDEAD00000000 + i:012x}" for i in range(left)]
        msgids = mine + others + nobody
        random.Random(7).shuffle(msgids)
        firsts: list[Timing] = []
        agains: list[Timing] = []
        for _ in range(max(1, args.repeat)):
            shutil.copyfile(saved, db)
            ledger = Ledger(f"sqlite:///{db}")
            try:
                firsts.append(look_up(gw, ledger, msgids))
                agains.append(look_up(gw, ledger, msgids))
            finally:
                ledger.close()
        ledger = Ledger(f"sqlite:///{db}")
        try:
            sample = [m for m in msgids if m not in set(mine)][: args.fallback_ids]
            fallback = look_up(gw, ledger, sample, batch=False)
        finally:
            ledger.close()
    first, again = median(firsts), median(agains)
    print(
        f"Status lookup of {len(msgids):,} msgids ({len(mine):,} in the ledger, "
        f"{len(others):,} known only to the gateway, {len(nobody):,} unknown to both); "
        f"gateway rate limit 100 requests/s; median of {len(firsts)} run(s)"
    )
    print(line("first lookup (ledger's messages open)", first))
    print(f"      all runs: {', '.join(f'{t.seconds:.2f}' for t in firsts)} s")
    print(line("second lookup (ledger's messages final)", again))
    print(f"      all runs: {', '.join(f'{t.seconds:.2f}' for t in agains)} s")
    rate = len(sample) / fallback.refresh
    print(line(f"without the batch call, {len(sample):,} ids", fallback, target=False))
    print(
        f"      ({rate:.0f} msgids/s, the first 200 a burst; paced at 100 requests/s, "
        f"10,000 unknown msgids take about {(10_000 - 200) / 100:.0f} s)"
    )
    if first.seconds > TARGET or again.seconds > TARGET:
        print(f"  over the target of {TARGET:.0f} s")


def median(timings: list[Timing]) -> Timing:
    return sorted(timings, key=lambda t: t.seconds)[len(timings) // 2]


if __name__ == "__main__":
    main()
