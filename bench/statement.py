"""Benchmark: the money statement (``Ledger.statement``) over a large ledger.

Run: python -m bench.statement [--messages 1000000] [--days 90] [--data-dir DIR] [--rounds 3]

The ledger is generated once (``kedacore.demo``) and kept in DIR, then its rows are turned
into real ones (the statement leaves demo rows out) and a balance reading is added every
``--every`` minutes over the whole history (what a console open all day keeps). Then the
statement of the last 30 days and of the whole history is timed (wall and CPU), and
``statement_gaps`` of one day. Every message is scanned once per movement kind: the cost
grows with the ledger's messages, not with the readings.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from kedacore.demo import generate
from kedacore.ledger import Ledger
from kedacore.ledger import schema as s


def prepare(folder: Path, messages: int, days: int, every: int) -> Path:
    """A ledger of ``messages`` real (not demo) messages over ``days`` days, with readings."""
    ready = folder / f"statement-{messages}-{days}-{every}.db"
    if ready.exists():
        return ready
    demo = folder / f"demo-{messages}-{days}.db"
    if not demo.exists():
        with Ledger(f"sqlite:///{demo}") as ledger:
            generate(ledger, days=days, messages=messages, seed=1)
    shutil.copy(demo, ready)
    with Ledger(f"sqlite:///{ready}") as ledger, ledger.engine.begin() as conn:
        for table in ("messages", "tasks", "campaigns"):
            conn.execute(text(f"UPDATE {table} SET demo = 0"))
        when = datetime.combine(
            ledger.now().date() - timedelta(days=days), datetime.min.time(), UTC
        )
        rows = []
        while when < ledger.now():
            rows.append(
                {"read_at": when, "balance_micros": 10**9, "frozen_micros": 0, "currency": "USD"}
            )
            when += timedelta(minutes=every)
        conn.execute(insert(s.balance_readings), rows)
    return ready


def timed(call: Any, rounds: int) -> dict[str, float]:
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"wall_s": round(min(walls), 3), "cpu_s": round(min(cpus), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--every", type=int, default=5, help="minutes between readings")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "kedabench")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    path = prepare(args.data_dir, args.messages, args.days, args.every)
    with Ledger(f"sqlite:///{path}") as ledger:
        today = ledger.now().date()
        month = today - timedelta(days=29)
        whole = today - timedelta(days=args.days - 1)
        result = {
            "messages": args.messages,
            "readings_every_min": args.every,
            "statement_30_days": timed(lambda: ledger.statement(month, today), args.rounds),
            f"statement_{args.days}_days": timed(
                lambda: ledger.statement(whole, today), args.rounds
            ),
            "gaps_one_day": timed(
                lambda: ledger.statement_gaps(today - timedelta(days=2)), args.rounds
            ),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
