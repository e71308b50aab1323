"""Benchmark: a campaign's 100,000 numbers checked against an opt-out list of 1,000,000.

Run: python -m bench.suppression [--list 1000000] [--recipients 100000] [--url URL] [--rounds 3]

The ledger (SQLite in a temp folder by default, or ``--url``, e.g. a PostgreSQL database) gets
``--list`` opted-out numbers (one in ten of them later removed, so the index holds removed
rows too) once; then ``Ledger.suppressed`` is timed on ``--recipients`` numbers of which one in
ten is opted out, cold (a fresh ledger, its first call) and warm, and ``with_audience`` (what
the preview does with the answer) on a preview of that many rows. Target: ≤ 2 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update

from kedacore.ledger import Ledger
from kedacore.ledger import schema as s
from kedacore.ledger.engine import writing


def number(i: int) -> str:
    """A distinct, valid-looking US number per index (+1 201 2xx xxxx …)."""
    return f"+1{201 + i // 10_000_000}{2_000_000 + i % 10_000_000:07d}"


def seed(ledger: Ledger, size: int) -> float:
    """``size`` opted-out numbers (every 10th removed), unless the ledger holds them."""
    with ledger.engine.connect() as conn:
        have = conn.scalar(select(func.count()).select_from(s.suppressions)) or 0
    if have >= size:
        return 0.0
    started = time.perf_counter()
    now = datetime.now(UTC)
    with writing(ledger.engine) as conn:
        for start in range(have, size, 50_000):
            rows = [
                {
                    "phone": number(2 * i),  # even indexes: the odd ones are never opted out
                    "reason": "bench",
                    "source": "import",
                    "added_by": "bench",
                    "added_at": now,
                }
                for i in range(start, min(size, start + 50_000))
            ]
            conn.execute(insert(s.suppressions), rows)
        t = s.suppressions.c
        conn.execute(
            update(s.suppressions)
            .where(t.id % 10 == 0)
            .values(removed_at=now, removed_by="bench", removed_reason="bench")
        )
    if ledger.engine.dialect.name == "postgresql":
        with ledger.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE suppressions")
    return time.perf_counter() - started


def recipients(size: int, list_size: int) -> list[str]:
    """``size`` numbers, one in ten of them on the list (even indexes), the rest not (odd)."""
    step = max(1, list_size // max(1, size // 10))
    on = [number(2 * ((i * step) % list_size)) for i in range(size // 10)]
    off = [number(2 * i + 1) for i in range(size - len(on))]
    return on + off


def run(url: str, list_size: int, size: int, rounds: int) -> dict[str, Any]:
    with Ledger(url) as ledger:
        seeded = seed(ledger, list_size)
    numbers = recipients(size, list_size)
    times = []
    found = 0
    for _ in range(rounds):
        with Ledger(url) as ledger:  # a fresh pool: the first call is cold
            started = time.perf_counter()
            found = len(ledger.suppressed(numbers))
            times.append(time.perf_counter() - started)
    from kedacore.campaign.preview import CampaignPreview, PreviewRow, with_audience
    from kedacore.campaign.recipients import parse_template

    rows = tuple(
        PreviewRow(i + 2, n, n, "US", None, "Hi", 1, "GSM-7", Decimal("0.05"))
        for i, n in enumerate(numbers)
    )
    preview = CampaignPreview(parse_template("Hi", ["phone"]), None, "USD", rows, (), len(rows))
    with Ledger(url) as ledger:
        started = time.perf_counter()
        checked = with_audience(preview, suppressed=ledger.suppressed)
        whole = time.perf_counter() - started
    return {
        "store": url.split(":", 1)[0],
        "list": list_size,
        "active": list_size - list_size // 10,
        "recipients": size,
        "opted_out_found": found,
        "left_out_by_preview": len(checked.opted_out),
        "seed_s": round(seeded, 1),
        "suppressed_cold_s": round(times[0], 3),
        "suppressed_warm_median_s": round(statistics.median(times[1:] or times), 3),
        "preview_with_audience_s": round(whole, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", type=int, default=1_000_000)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--url", default=None, help="ledger URL (default: SQLite in a temp dir)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = args.url
    if url is None:
        folder = Path(tempfile.gettempdir()) / f"keda-bench-suppression-{args.list}"
        folder.mkdir(exist_ok=True)
        url = f"sqlite:///{folder / 'ledger.db'}"
    print(json.dumps(run(url, args.list, args.recipients, args.rounds), indent=2))


if __name__ == "__main__":
    main()
