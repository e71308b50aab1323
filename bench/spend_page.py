"""Benchmark: a full AppTest run of the Spend page on a 1,000,000-message ledger (90 days),
side by side with the same page done naively (the whole table read into pandas).

Run: python -m bench.spend_page [--messages 1000000] [--days 90] [--data-dir DIR] [--rounds 5]

The ledger is bench.spend's (generated once with kedacore.demo, then reused). Each approach
runs in its own subprocess, so that its peak RSS (``VmHWM``) is its own:

- page: ``AppTest`` of ``app.py`` (its first run, the Send page, starts the runtime and the
  sandbox gateway: reported apart as *start-up*), then switched to ``pages/spend.py`` with the
  "Last 90 days" preset, the ledger given by ``KEDA_DATABASE_URL``. Timed three ways: *first
  view* (the first run of the Spend page: its imports, queries and figures); *uncached* (the
  run again after ``st.cache_data.clear()``: the page's queries and drawing, what a new filter
  costs); *cached* (the run again: data version unchanged, answers from ``st.cache_data``).
- naive: the same AppTest flow, but the page script reads the whole ``messages`` table
  with ``pandas.read_sql``, computes the KPIs and frames in pandas (``bench.spend``'s naive
  computation) and draws the seven charts.

Target on the 2-core machine: the AppTest run ≤ 3 s; peak RSS reported.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.spend import _ledger, _rss_mib, arguments

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")

# The naive page: what the Spend page would be without SQL aggregation.
NAIVE_PAGE = """
import pandas as pd
import plotly.express as px
import streamlit as st
from datetime import date
from sqlalchemy import create_engine, select

from bench.spend import _naive_page
from kedacore.analytics import Filters
from kedacore.ledger import schema as s

url, start, end = st.session_state["naive_args"]
f = Filters(date.fromisoformat(start), date.fromisoformat(end))
with create_engine(url).connect() as conn:
    m = pd.read_sql(select(s.messages), conn)
kpis = _naive_page(m, f, pd)
for label, value in zip(["Messages", "Spend (micros)", "Delivered", "Median ms", "p95 ms"], kpis):
    st.metric(label, value)
p = m[(m.created_at >= f.bounds[0]) & (m.created_at < f.bounds[1])]
daily = p.groupby(["day", "country"], as_index=False).cost_micros.sum()
st.plotly_chart(px.bar(daily, x="day", y="cost_micros", color="country"), key="c1")
status = p.groupby(["day", "status"], as_index=False).size()
st.plotly_chart(px.bar(status, x="day", y="size", color="status"), key="c2")
final = p[p.status.isin(["DELIVERED", "UNDELIVERED", "FAILED"])]
rate = final.assign(ok=final.status == "DELIVERED").groupby("country", as_index=False).ok.mean()
st.plotly_chart(px.bar(rate, x="country", y="ok"), key="c3")
st.plotly_chart(px.histogram(p.delivery_ms.dropna(), nbins=30), key="c4")
sender = p.groupby(p.sender.fillna("(none)"), as_index=False).cost_micros.sum()
st.plotly_chart(px.bar(sender, x="cost_micros", y="sender", orientation="h"), key="c5")
camp = p.groupby(p.campaign_id.fillna(0), as_index=False).cost_micros.sum()
st.plotly_chart(px.bar(camp, x="cost_micros", y="campaign_id", orientation="h"), key="c6")
funnel = pd.DataFrame({"stage": ["Sent", "Delivered", "Clicked"], "n": [
    int(p.status.isin(["SENT", "DELIVERED", "UNDELIVERED"]).sum()),
    int((p.status == "DELIVERED").sum()), int((p.clicks > 0).sum())]})
st.plotly_chart(px.funnel(funnel, x="n", y="stage"), key="c7")
"""


def _environment(url: str) -> str:
    """A fresh sandbox data folder, with the benchmark ledger as the console's ledger."""
    folder = tempfile.mkdtemp(prefix="kedasms-bench-page-")
    for name in ("KEDA_API_KEY", "KEDA_ENCRYPTION_KEY", "KEDA_BASE_URL", "KEDA_BACKUP_URL"):
        os.environ.pop(name, None)
    os.environ["KEDA_DATA_DIR"] = folder
    os.environ["KEDA_DATABASE_URL"] = url
    return folder


def child_page(url: str, start: str, end: str, rounds: int) -> dict[str, Any]:
    """The Spend page under AppTest: first view, then uncached and cached reruns."""
    baseline = _rss_mib()
    _environment(url)
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from console import runtime as _runtime

    t0 = time.perf_counter()
    at = AppTest.from_file(APP, default_timeout=120).run()  # the Send page: the runtime starts
    start_up = time.perf_counter() - t0
    at.session_state["spend_period"] = "90d"
    t0 = time.perf_counter()
    at.switch_page("pages/spend.py").run()
    first = time.perf_counter() - t0
    _assert_page(at, start, end)
    uncached, cached = [], []
    for _ in range(rounds):
        st.cache_data.clear()
        t0 = time.perf_counter()
        at.run()
        uncached.append(time.perf_counter() - t0)
        _assert_page(at, start, end)
        t0 = time.perf_counter()
        at.run()
        cached.append(time.perf_counter() - t0)
    metrics = {m.label: m.value for m in at.metric}
    _runtime.reset()
    return {
        "start_up": start_up,
        "first": first,
        "uncached": statistics.median(uncached),
        "cached": statistics.median(cached),
        "baseline_mib": baseline,
        "peak_mib": _rss_mib(),
        "messages": int(metrics["Messages"].replace(",", "")),
    }


def _assert_page(at: Any, start: str, end: str) -> None:
    """The run drew the whole page for the 90-day period, without an error."""
    assert not at.exception, at.exception
    assert not [e.value for e in at.error if "Sending is blocked" not in e.value]
    assert len(at.get("plotly_chart")) == 7, "the charts are missing"
    assert any(f"{start} … {end}" in c.value for c in at.caption), "another period was shown"


def child_naive(url: str, start: str, end: str, rounds: int) -> dict[str, Any]:
    """The naive page under AppTest (whole table into pandas)."""
    baseline = _rss_mib()
    _environment(url)
    from streamlit.testing.v1 import AppTest

    times = []
    for _ in range(rounds):
        at = AppTest.from_string(NAIVE_PAGE, default_timeout=600)
        at.session_state["naive_args"] = (url, start, end)
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
        assert not at.exception, at.exception
        assert len(at.get("plotly_chart")) == 7
    metrics = {m.label: m.value for m in at.metric}
    return {
        "first": times[0],
        "uncached": statistics.median(times),
        "cached": None,
        "baseline_mib": baseline,
        "peak_mib": _rss_mib(),
        "messages": int(str(metrics["Messages"]).replace(",", "")),
    }


def _run_child(kind: str, url: str, start: str, end: str, rounds: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.spend_page", "--child", kind, "--url", url]
        + ["--start", start, "--end", end, "--rounds", str(rounds)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    args = arguments(__doc__)

    if args.child:
        run = child_page if args.child == "page" else child_naive
        print(json.dumps(run(args.url, args.start, args.end, args.rounds)))
        return

    data_dir = args.data_dir or Path(tempfile.gettempdir()) / f"kedasms-bench-spend-{args.messages}"
    url, _, _ = _ledger(data_dir, args.messages, args.days)
    # The page's "Last 90 days" ends today (UTC); the ledger's history ends the day it was made.
    end = datetime.now(UTC).date()
    start = end - timedelta(days=args.days - 1)
    page = _run_child("page", url, start.isoformat(), end.isoformat(), args.rounds)
    naive = _run_child("naive", url, start.isoformat(), end.isoformat(), 1)
    print(f"Spend page under AppTest, {args.messages:,}-message ledger, period {start} … {end}")
    print(f"  {'':32} {'first view':>11} {'uncached':>9} {'cached':>8} {'peak RSS':>10}")
    for name, r in (("page (SQL over the rollup)", page), ("naive (whole table, pandas)", naive)):
        cached = f"{r['cached']:7.3f}s" if r["cached"] is not None else f"{'—':>8}"
        print(
            f"  {name:32} {r['first']:10.3f}s {r['uncached']:8.3f}s {cached} "
            f"{r['peak_mib']:7.0f} MiB"
        )
    print(
        f"  before the page: the console's first run (Send page, sandbox gateway start) "
        f"{page['start_up']:.3f}s"
    )
    print(
        f"  naive / page (uncached run): {naive['uncached'] / page['uncached']:,.0f}×; "
        f"messages in the period: page {page['messages']:,}, naive {naive['messages']:,}"
    )
    print("  target: the AppTest run ≤ 3 s; memory bounded")


if __name__ == "__main__":
    main()
