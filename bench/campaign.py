"""Benchmark: a 10,000-recipient campaign over 5 countries, from CSV bytes to every task accepted.

Against a separately started `python -m gateway serve` (rate limit off) on loopback, with the
ledger in a fresh SQLite file as the console uses it. Phases, each timed:

- parse: ``read_recipients`` (decode, delimiter, rows);
- validate: ``preview_campaign`` (numbers, template, segments, prices, duplicates);
- plan: ``plan_requests`` and ``CampaignEngine.create`` (the plan written to the ledger);
- send: ``CampaignEngine.run`` until every batch is accepted and recorded.

Two cases: personalised marketing text ("Hi {name}, … {code}") — every text differs, so every
recipient is a request of its own — and one shared text per country (requests of 1,000).

Run: python -m bench.campaign [--recipients 10000] [--concurrency 64] [--case personalised]
Target on the 2-core machine: ≤ 5 s in all.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench._gateway import running_gateway
from kedacore import AsyncKedaClient, KedaClient
from kedacore.campaign import DEFAULT_CONCURRENCY, CampaignEngine
from kedacore.campaign.plan import plan_requests, preview_campaign
from kedacore.campaign.recipients import read_recipients
from kedacore.ledger import Ledger
from kedacore.phones import parse_number

COUNTRIES = ("US", "GB", "DE", "IN", "BR")


def phone(country: str, i: int, national: bool) -> str:
    """The i-th number of a valid mobile range of the country, in E.164 or national form."""
    if country == "US":
        if national:
            return f"(206) {200 + i // 10_000:03d}-{i % 10_000:04d}"
        return f"+1206{2_000_000 + i:07d}"
    if country == "GB":
        return f"074{i // 1_000_000:02d} {i % 1_000_000:06d}" if national else f"+4474{i:08d}"
    if country == "DE":
        return f"0151 {i:08d}" if national else f"+49151{i:08d}"
    if country == "IN":
        return f"081{i // 100_000:03d} {i % 100_000:05d}" if national else f"+9181{i:08d}"
    return f"(11) 9{i // 10_000:04d}-{i % 10_000:04d}" if national else f"+55119{i:08d}"


NAMES = ("Ana", "Ben", "Chloé", "Dev", "Emma", "Felix", "Gita", "Hugo", "Iris", "João", "Kai")
PERSONAL = (
    "Hi {name}, your code {code} takes 20% off everything until Sunday. "
    "Show it in store or use it at https://shop.example/spring"
)
SHARED = "Spring sale: 20% off everything until Sunday at https://shop.example/spring"


def recipients_csv(count: int) -> bytes:
    """A marketing list: phone (E.164 or national), name, country, a per-recipient code."""
    lines = ["phone,name,country,code"]
    for i in range(count):
        country = COUNTRIES[i % len(COUNTRIES)]
        number = phone(country, i // len(COUNTRIES), national=i % 2 == 0)
        lines.append(f"{number},{NAMES[i % len(NAMES)]},{country},SPR{i:06d}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def run_case(
    gw,
    label: str,
    template: str,
    count: int,
    concurrency: int,
    *,
    ledger_url: str | None = None,
    send: Callable[[CampaignEngine, int], dict[str, float]] | None = None,
) -> dict[str, float]:
    """One campaign from CSV bytes to every task accepted; the time of each phase.

    ``ledger_url``: the ledger (default: a fresh SQLite file); ``send``: what sends the planned
    campaign instead of ``engine.run_sync`` (workers, bench.scale), returning figures to add.
    """
    with tempfile.TemporaryDirectory(prefix="keda-bench-ledger-") as tmp:
        ledger = Ledger(ledger_url or f"sqlite:///{Path(tmp) / 'ledger.db'}")
        pricing = KedaClient(
            gw.api_key, gw.encryption_key, base_url=gw.base_url, backup_url=gw.base_url
        ).pricing()
        engine = CampaignEngine(
            ledger,
            lambda: AsyncKedaClient(
                gw.api_key, gw.encryption_key, base_url=gw.base_url, backup_url=gw.base_url
            ),
        )
        data = recipients_csv(count)
        times: dict[str, float] = {}
        t0 = time.perf_counter()
        table = read_recipients(data, filename="recipients.csv")
        times["parse"] = time.perf_counter() - t0
        t = time.perf_counter()
        preview = preview_campaign(table, template, pricing=pricing, sender="Shop")
        times["validate"] = time.perf_counter() - t
        t = time.perf_counter()
        plan = plan_requests(preview)
        campaign_id = engine.create(plan, name=label)
        times["plan"] = time.perf_counter() - t
        t, cpu, gw_cpu = time.perf_counter(), time.process_time(), gw.cpu_seconds()
        extra: dict[str, float] = {}
        if send is None:
            report = engine.run_sync(campaign_id, concurrency=concurrency)
            status, reason, sent, debited = (
                report.status,
                report.reason,
                report.recipients_sent,
                report.debited,
            )
        else:
            extra = send(engine, campaign_id)
            progress = engine.progress(campaign_id)
            status, reason, sent, debited = (
                progress.status,
                progress.error,
                progress.recipients_sent,
                progress.debited,
            )
        # Workers (bench.scale): the time they took to start is not the campaign's.
        started = extra.pop("worker_start", 0.0)
        times["send"] = time.perf_counter() - t - started
        times["total"] = time.perf_counter() - t0 - started
        times["cpu"] = time.process_time() - cpu
        times["gateway_cpu"] = gw.cpu_seconds() - gw_cpu
        # Not part of the total: what phone-number parsing alone costs within "validate".
        t = time.perf_counter()
        for _, cells in table.rows:
            parse_number(cells[0], cells[2])
        times["numbers"] = time.perf_counter() - t
        assert status == "done", reason
        assert sent == count and not preview.problems
        assert debited == plan.total
        times.update(extra)
        ledger.close()
        times["requests"] = len(plan.requests)
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument(
        "--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="the engine's default"
    )
    parser.add_argument("--case", choices=("personalised", "shared"), help="run only this case")
    args = parser.parse_args()
    cases = [
        (label, template)
        for label, template in (("personalised", PERSONAL), ("shared text", SHARED))
        if args.case is None or label.startswith(args.case)
    ]
    with running_gateway() as gw:
        print(f"{args.recipients:,} recipients over 5 countries, concurrency {args.concurrency}")
        print(
            f"{'case':<14}{'requests':>9}{'parse':>8}{'validate':>10}{'plan':>8}{'send':>8}", end=""
        )
        print(f"{'total':>8}  (seconds)")
        before = _messages(gw.db)
        notes = []
        for label, template in cases:
            r = run_case(gw, label, template, args.recipients, args.concurrency)
            print(
                f"{label:<14}{int(r['requests']):>9,}{r['parse']:>8.2f}{r['validate']:>10.2f}"
                f"{r['plan']:>8.2f}{r['send']:>8.2f}{r['total']:>8.2f}"
                f"   {args.recipients / r['send']:,.0f} recipients/s sent"
            )
            per_request = 1000 * r["cpu"] / r["requests"]
            gw_per_request = 1000 * r["gateway_cpu"] / r["requests"]
            notes.append(
                f"{label}: {r['requests'] / r['send']:,.0f} requests/s; CPU while sending: this "
                f"process {r['cpu']:.2f} s ({per_request:.3f} ms per request), the gateway "
                f"{r['gateway_cpu']:.2f} s ({gw_per_request:.3f} ms per request); phone numbers "
                f"alone {r['numbers']:.2f} s of validate"
            )
        print("\n".join(notes))
        sent = _messages(gw.db) - before
        assert sent == len(cases) * args.recipients, f"the gateway holds {sent} messages"
        print(f"gateway: {sent:,} messages accepted, each recipient once per campaign")


def _messages(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM messages").fetchone()[0]


if __name__ == "__main__":
    main()
