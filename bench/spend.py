"""Benchmark: the Spend page's queries for a 90-day period vs the naive pandas approach.

Run: python -m bench.spend [--messages 1000000] [--days 90] [--data-dir DIR] [--rounds 5]

The ledger (demo history, ``kedacore.demo``) is generated once and kept in DIR (by default a
folder in the temp directory named after the size), then reused. Each approach runs in its
own subprocess, so that its peak RSS is its own:

- page: ``kedacore.analytics.spend_page`` — every KPI of the period and of the previous one,
  and every chart frame — timed once cold (a fresh process and connection) and then warm;
- naive: the whole ``messages`` table read into pandas and grouped there into the same KPIs
  and frames (what the page would do without SQL aggregation).

Targets on the 2-core machine: the page's queries together ≤ 1 s, ≥ 10× faster than naive,
memory bounded.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _rss_mib() -> float:
    """This process's peak RSS in MiB since it started."""
    # VmHWM starts afresh at exec; ru_maxrss would carry the forking parent's peak over.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _filters(start: str, end: str) -> Any:
    from kedacore.analytics import Filters

    return Filters(date.fromisoformat(start), date.fromisoformat(end))


def child_page(url: str, start: str, end: str, rounds: int) -> dict[str, Any]:
    """The Spend page's queries, cold then warm."""
    from kedacore.analytics import spend_page
    from kedacore.ledger import Ledger

    baseline = _rss_mib()
    f = _filters(start, end)
    times = []
    with Ledger(url) as ledger:
        for _ in range(rounds + 1):
            t0 = time.perf_counter()
            data = spend_page(ledger, f)
            times.append(time.perf_counter() - t0)
    k = data.kpis.current
    return {
        "cold": times[0],
        "warm": statistics.median(times[1:]),
        "baseline_mib": baseline,
        "peak_mib": _rss_mib(),
        "check": _check(k.messages, k.spend, k.delivered, k.median_ms, k.p95_ms),
    }


def child_naive(url: str, start: str, end: str, rounds: int) -> dict[str, Any]:
    """The whole messages table into pandas, grouped there into the same KPIs and frames."""
    import pandas as pd
    from sqlalchemy import create_engine, select

    from kedacore.ledger import schema as s

    baseline = _rss_mib()
    f = _filters(start, end)
    times = []
    engine = create_engine(url)
    for _ in range(rounds):
        t0 = time.perf_counter()
        with engine.connect() as conn:
            m = pd.read_sql(select(s.messages), conn)
        out = _naive_page(m, f, pd)
        times.append(time.perf_counter() - t0)
        del m
    return {
        "cold": times[0],
        "warm": statistics.median(times),
        "baseline_mib": baseline,
        "peak_mib": _rss_mib(),
        "check": out,
    }


def _naive_page(m: Any, f: Any, pd: Any) -> list[Any]:
    """The page's KPIs (both periods) and frames, computed with pandas over every row."""
    m["created_at"] = pd.to_datetime(m["created_at"], utc=True)
    result: list[Any] = []
    for period in (f, f.previous()):
        start, end = period.bounds
        p = m[(m.created_at >= start) & (m.created_at < end)]
        status = p.status
        final = status.isin(["DELIVERED", "UNDELIVERED", "FAILED"])
        latency = p.delivery_ms.dropna()
        kpis = _check(
            len(p),
            int(p.cost_micros.fillna(0).sum()),
            int((status == "DELIVERED").sum()),
            float(latency.quantile(0.5)) if len(latency) else None,
            float(latency.quantile(0.95)) if len(latency) else None,
        )
        _ = (
            p.segments.fillna(0).sum(),
            p[p.cost_micros.isna() & (status != "FAILED")].estimated_micros.sum(),
            final.sum(),
            (p.clicks > 0).sum(),
            p.clicks.sum(),
        )
        if period is f:
            result = kpis
            p.groupby(["day", "country"]).agg(n=("msgid", "size"), spend=("cost_micros", "sum"))
            p.groupby(["day", "status"]).size()
            p.assign(final=final, delivered=status == "DELIVERED").groupby("country")[
                ["final", "delivered"]
            ].sum()
            pd.cut(
                latency, bins=[-1, 250, 500, 1000, 2000, 5000, 10_000, 60_000, 10**12]
            ).value_counts()
            p.groupby(p.sender.fillna("")).cost_micros.sum()
            p.assign(clicked=p.clicks > 0).groupby(p.campaign_id.fillna(0)).agg(
                spend=("cost_micros", "sum"), clicked=("clicked", "sum")
            )
    return result


def _check(messages: int, spend: Any, delivered: int, median: Any, p95: Any) -> list[Any]:
    """A few figures both approaches must agree on (money in micro-units)."""
    from decimal import Decimal

    if isinstance(spend, Decimal):
        spend = int(spend * 1_000_000)

    def ms(v: Any) -> Any:  # pandas and the SQL side may differ in the last binary digit
        return None if v is None else round(float(v), 6)

    return [messages, int(spend), delivered, ms(median), ms(p95)]


def _run_child(kind: str, url: str, start: str, end: str, rounds: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.spend", "--child", kind, "--url", url]
        + ["--start", start, "--end", end, "--rounds", str(rounds)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def _ledger(data_dir: Path, messages: int, days: int) -> tuple[str, date, date]:
    """The cached benchmark ledger (generated when missing or of another size)."""
    from kedacore.analytics import data_version, filter_options
    from kedacore.demo import generate
    from kedacore.ledger import Ledger

    with Ledger(data_dir=data_dir) as ledger:
        if data_version(ledger).messages != messages:
            print(f"generating {messages:,} messages over {days} days in {data_dir} …")
            report = generate(ledger, days=days, messages=messages, seed=1)
            rate = report.messages / report.seconds
            print(f"  generated in {report.seconds:.1f} s ({rate:,.0f} messages/s)")
        options = filter_options(ledger)
        assert options.last_day is not None
        return ledger.url, options.last_day - timedelta(days=days - 1), options.last_day


def arguments(doc: str) -> argparse.Namespace:
    """The command line both Spend benchmarks take (the parent's, and its children's)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", choices=["page", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--start", help=argparse.SUPPRESS)
    parser.add_argument("--end", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = arguments(__doc__)

    if args.child:
        run = child_page if args.child == "page" else child_naive
        print(json.dumps(run(args.url, args.start, args.end, args.rounds)))
        return

    data_dir = args.data_dir or Path(tempfile.gettempdir()) / f"kedasms-bench-spend-{args.messages}"
    url, first, last = _ledger(data_dir, args.messages, args.days)
    start, end = first.isoformat(), last.isoformat()
    page = _run_child("page", url, start, end, args.rounds)
    naive = _run_child("naive", url, start, end, max(1, min(args.rounds, 2)))
    agree = page["check"] == naive["check"]
    print(f"Spend page, {args.messages:,}-message ledger, {args.days}-day period {start} … {end}")
    print(f"  {'':28} {'cold':>8} {'warm':>8} {'peak RSS':>10} {'over imports':>13}")
    for name, r in (("page queries (SQL, rollup)", page), ("naive (whole table, pandas)", naive)):
        print(
            f"  {name:28} {r['cold']:7.3f}s {r['warm']:7.3f}s {r['peak_mib']:8.0f} MiB"
            f" {r['peak_mib'] - r['baseline_mib']:9.0f} MiB"
        )
    print(
        f"  naive / page: {naive['warm'] / page['warm']:,.0f}× warm, "
        f"{naive['cold'] / page['cold']:,.0f}× cold; same figures: {'yes' if agree else 'NO'}"
    )
    print("  targets: page ≤ 1 s, ≥ 10× faster than naive, memory bounded")
    if not agree:
        print(f"  page {page['check']}\n  naive {naive['check']}")


if __name__ == "__main__":
    main()
