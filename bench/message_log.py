"""Benchmark: the message log (``Ledger.message_log``) on a 1,000,000-message ledger.

Run: python -m bench.message_log [--messages 1000000] [--days 90] [--data-dir DIR]
     [--url postgresql+psycopg://…] [--rounds 5]

The ledger is generated once (``kedacore.demo``) and kept in DIR (SQLite), or written into the
database ``--url`` names when it holds fewer messages. Timed (best of ``--rounds``, wall):
page 1 of 100 rows with no filter; page 1 and a deep page (the 50th, reached by following the
cursors; keyset paging makes it cost what page 1 costs) with 3 filters (the last 30 days,
DELIVERED, two countries); the bounded count of that set; a text search; an export's first
5,000 rows.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from kedacore.demo import generate
from kedacore.ledger import Ledger
from kedacore.ledger import schema as s
from kedacore.ledger.log import LogCursor, LogFilter


def timed(call: Any, rounds: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(rounds):
        start = time.perf_counter()
        out = call()
        best = min(best, time.perf_counter() - start)
    return round(best, 4), out


def ledger_for(args: argparse.Namespace) -> Ledger:
    url = args.url or f"sqlite:///{args.data_dir / f'demo-{args.messages}-{args.days}.db'}"
    ledger = Ledger(url)
    with ledger.engine.connect() as conn:
        have = conn.execute(select(func.count()).select_from(s.messages)).scalar_one()
    if have < args.messages:
        generate(ledger, days=args.days, messages=args.messages, seed=1)
    return ledger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--url", default=None)
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "kedabench")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    with ledger_for(args) as ledger:
        now = ledger.now()
        three = LogFilter(
            since=now - timedelta(days=30),
            statuses=("DELIVERED",),
            countries=("GB", "DE"),
        )
        out: dict[str, Any] = {"store": ledger.engine.dialect.name, "messages": args.messages}
        out["page_1_no_filter_s"], _ = timed(lambda: ledger.message_log(limit=100), args.rounds)
        out["page_1_3_filters_s"], first = timed(
            lambda: ledger.message_log(three, limit=100), args.rounds
        )
        cursor: LogCursor | None = first.next
        for _ in range(48):  # to the 50th page
            cursor = ledger.message_log(three, after=cursor, limit=100).next
        out["page_50_3_filters_s"], deep = timed(
            lambda: ledger.message_log(three, after=cursor, limit=100), args.rounds
        )
        assert len(first.rows) == len(deep.rows) == 100
        out["count_3_filters_s"], count = timed(
            lambda: ledger.message_log_count(three), args.rounds
        )
        out["count"] = str(count)
        out["text_search_page_1_s"], _ = timed(
            lambda: ledger.message_log(LogFilter(text="code"), limit=100), args.rounds
        )
        out["text_no_match_s"], _ = timed(
            lambda: ledger.message_log(LogFilter(text="zzqqzz"), limit=100), 1
        )
        out["export_5000_rows_s"], _ = timed(
            lambda: list(ledger.message_log_rows(three, limit=5000)), 1
        )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
