"""Demo history: fill a ledger with realistic generated traffic, flagged ``demo`` so it can go.

Run: ``python -m kedacore.demo --days 90 --messages 1000000 [--ledger URL | --data-dir DIR]
[--seed N]``, and ``python -m kedacore.demo --remove`` to take it out again.

What it makes: a handful of countries with their own price, share of ``FAILED`` and
``UNDELIVERED`` and delivery latency (log-normal); transactional senders sending all day and
marketing campaigns sent in batches of 1,000 at a set hour; weekly seasonality (quiet weekends)
and slow growth; clicks on campaign links. Money is exact: ``cost = price × segments`` in
integer micro-units (``0`` for ``FAILED``, unknown while ``QUEUED``). Statuses agree with the
times: a message whose next step would fall after "now" is still ``QUEUED`` or ``SENT``.

Rows are written with large ``executemany`` chunks, one transaction per ~200,000 messages.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, insert

from kedacore.ledger import Ledger, rollup
from kedacore.ledger import schema as s
from kedacore.ledger.engine import writing

CURRENCY = "USD"
TASK_SEQ_BASE = 900_000  # demo task ids (YYYYMMDD-9NNNNN) stay clear of the service's own
WEEKDAY_WEIGHT = (
    1.1,
    1.15,
    1.12,
    1.08,
    1.0,
    0.62,
    0.5,
)  # Monday first: B2C traffic dips at weekends
HOUR_WEIGHT = np.array(
    [1, 1, 1, 1, 1, 2, 3, 5, 8, 9, 9, 9, 9, 9, 8, 8, 8, 8, 7, 6, 5, 4, 2, 1], dtype=float
)
CAMPAIGN_SHARE = 0.6  # of a day's messages, when a campaign is running
CAMPAIGN_THEMES = (
    "Spring sale",
    "Loyalty points",
    "New arrivals",
    "Flash deal",
    "Weekend offer",
    "Back in stock",
    "App launch",
    "Survey",
    "Black Friday",
    "Free shipping",
)


# One day's (task rows, message rows, the messages' time columns).
Day = tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, np.ndarray]]


@dataclass(frozen=True, slots=True)
class Country:
    """A destination: its price and how its carriers behave."""

    code: str
    dial: str
    price_micros: int  # per segment (the sandbox gateway's list price)
    weight: float  # share of traffic
    failed: float  # refused by the channel (released, not charged)
    undelivered: float  # charged, never delivered
    latency_ms: float  # median time from SENT to DELIVERED
    sigma: float  # spread of log-latency


COUNTRIES = (
    Country("US", "1", 50_000, 0.30, 0.010, 0.020, 2_500, 0.55),
    Country("GB", "44", 45_000, 0.12, 0.008, 0.015, 2_000, 0.50),
    Country("DE", "49", 85_000, 0.10, 0.006, 0.012, 2_200, 0.50),
    Country("FR", "33", 75_000, 0.08, 0.010, 0.018, 2_800, 0.55),
    Country("BR", "55", 30_000, 0.10, 0.030, 0.050, 5_000, 0.80),
    Country("IN", "91", 6_000, 0.16, 0.040, 0.060, 6_000, 0.90),
    Country("MX", "52", 40_000, 0.06, 0.025, 0.040, 4_000, 0.70),
    Country("NG", "234", 300_000, 0.04, 0.060, 0.080, 9_000, 1.00),
    Country("ID", "62", 350_000, 0.04, 0.050, 0.070, 8_000, 0.95),
)
TRANSACTIONAL_SENDERS = ("KedaAlerts", "KedaOTP", None)  # None: no sender id (the default)
TRANSACTIONAL_SENDER_WEIGHT = (0.45, 0.47, 0.08)
MARKETING_SENDERS = ("KedaShop", "KedaNews")


@dataclass(frozen=True, slots=True)
class DemoCampaign:
    """A planned demo campaign (before it has a database id)."""

    name: str
    sender: str
    countries: tuple[int, ...]  # indexes into COUNTRIES
    segments: int
    first_day: int  # index of the day it starts
    days: int
    hour: int  # UTC hour its batches go out
    ctr: float  # share of delivered messages clicked


@dataclass(frozen=True, slots=True)
class DemoReport:
    """What generate() wrote, and how long it took."""

    messages: int
    tasks: int
    campaigns: int
    first_day: date
    last_day: date
    seconds: float


def generate(
    ledger: Ledger,
    *,
    days: int = 90,
    messages: int = 1_000_000,
    seed: int = 0,
    now: datetime | None = None,
    chunk: int = 200_000,
    progress: Callable[[int, int], None] | None = None,
) -> DemoReport:
    """Write ``messages`` demo messages over the ``days`` days up to ``now`` (the ledger's clock).

    Args:
        ledger: where to write; demo rows already there are removed first.
        days: length of the history; the last day is today, up to ``now``.
        messages: how many messages in all (exactly).
        seed: the random seed (the same seed and ``now`` give the same rows).
        chunk: about how many messages per transaction.
        progress: called with (messages written, messages in all) after each transaction.
    """
    if days < 1 or messages < 0:
        raise ValueError("days must be at least 1 and messages not negative")
    started = time.perf_counter()
    now = (now or ledger.now()).astimezone(UTC).replace(tzinfo=None)
    rng = np.random.default_rng(seed)
    first = now.date() - timedelta(days=days - 1)
    per_day = _messages_per_day(rng, first, days, messages, now)
    plans = _plan_campaigns(rng, days)
    ledger.remove_demo_data()
    ids = _insert_campaigns(ledger, plans, first, now)
    run = f"{seed & 0xFFFF:04x}"
    written = tasks_written = 0
    batch: list[Day] = []
    pending = 0
    totals: dict[int, list[int]] = {cid: [0, 0, 0] for cid in ids}  # recipients, tasks, micros
    for d in range(days):
        day = first + timedelta(days=d)
        task_rows, message_rows, times = _day_rows(
            rng, d, day, int(per_day[d]), plans, ids, now, run, written + pending
        )
        for t in task_rows:
            if t["campaign_id"] is not None:
                total = totals[t["campaign_id"]]
                total[0] += t["recipients"]
                total[1] += 1
                total[2] += t["debited_micros"]
        batch.append((task_rows, message_rows, times))
        pending += len(message_rows)
        if pending >= chunk or d == days - 1:
            tasks_written += _write(ledger, batch)
            written += pending
            batch, pending = [], 0
            if progress is not None:
                progress(written, messages)
    _finish_campaigns(ledger, totals)
    return DemoReport(
        messages=written,
        tasks=tasks_written,
        campaigns=len(ids),
        first_day=first,
        last_day=now.date(),
        seconds=time.perf_counter() - started,
    )


def _messages_per_day(
    rng: np.random.Generator, first: date, days: int, messages: int, now: datetime
) -> np.ndarray:
    """Exactly ``messages`` spread over the days: weekly seasonality, growth, some noise."""
    weights = np.empty(days)
    for d in range(days):
        day = first + timedelta(days=d)
        growth = 1 + 0.3 * d / max(days - 1, 1)
        weights[d] = WEEKDAY_WEIGHT[day.weekday()] * growth * rng.uniform(0.9, 1.1)
    # Today has only run until now.
    elapsed = (now - datetime.combine(now.date(), datetime.min.time())).total_seconds() / 86_400
    weights[-1] *= max(elapsed, 0.01)
    return rng.multinomial(messages, weights / weights.sum())


def _plan_campaigns(rng: np.random.Generator, days: int) -> list[DemoCampaign]:
    """About one campaign every two and a half days, each running one to three days."""
    plans = []
    count = max(1, round(days / 2.5))
    starts = np.sort(rng.integers(0, days, size=count))
    for i, start in enumerate(starts):
        n_countries = int(rng.integers(1, 5))
        weights = np.array([c.weight for c in COUNTRIES])
        chosen = rng.choice(
            len(COUNTRIES), size=n_countries, replace=False, p=weights / weights.sum()
        )
        theme = CAMPAIGN_THEMES[i % len(CAMPAIGN_THEMES)]
        # No "#n" in the name: pages number campaigns themselves, demo ones apart ("Demo #3").
        round_ = i // len(CAMPAIGN_THEMES)
        plans.append(
            DemoCampaign(
                name=f"{theme} {round_ + 1}" if round_ else theme,
                sender=MARKETING_SENDERS[i % len(MARKETING_SENDERS)],
                countries=tuple(sorted(int(c) for c in chosen)),
                segments=int(rng.choice([1, 1, 1, 2, 2, 3])),
                first_day=int(start),
                days=int(rng.integers(1, 4)),
                hour=int(rng.integers(8, 18)),
                ctr=float(rng.uniform(0.02, 0.09)),
            )
        )
    return plans


def _insert_campaigns(
    ledger: Ledger, plans: list[DemoCampaign], first: date, now: datetime
) -> list[int]:
    """The campaigns' rows (totals filled in at the end); their ids, in plan order."""
    ids = []
    with writing(ledger.engine) as conn:
        for plan in plans:
            created = datetime.combine(first + timedelta(days=plan.first_day), datetime.min.time())
            created = min(created + timedelta(hours=plan.hour - 1), now)
            row = conn.execute(
                insert(s.campaigns)
                .values(
                    name=plan.name,
                    template=f"{plan.name}: see {{link}}",
                    sender=plan.sender,
                    created_at=created,
                    updated_at=created,
                    created_by="demo",
                    status="done",
                    currency=CURRENCY,
                    demo=True,
                )
                .returning(s.campaigns.c.id)
            )
            ids.append(int(row.scalar_one()))
    return ids


def _finish_campaigns(ledger: Ledger, totals: dict[int, list[int]]) -> None:
    """Each campaign's totals from what was written (an empty campaign stays a draft)."""
    with writing(ledger.engine) as conn:
        for cid, (recipients, tasks, micros) in totals.items():
            conn.execute(
                s.campaigns.update()
                .where(s.campaigns.c.id == cid)
                .values(
                    recipients=recipients,
                    batches=tasks,
                    estimated_micros=micros,
                    debited_micros=micros,
                    status="done" if recipients else "draft",
                )
            )


def _write(ledger: Ledger, batch: list[Day]) -> int:
    """One transaction: the tasks, then their messages (foreign keys), in large executemany."""
    task_rows = [t for tasks, _, _ in batch for t in tasks]
    with writing(ledger.engine) as conn:
        _bulk_pragmas(conn)
        if task_rows:
            conn.execute(insert(s.tasks), task_rows)
        for _, message_rows, times in batch:
            if not message_rows:
                continue
            if conn.dialect.name == "sqlite":
                _insert_sqlite(conn, message_rows, times)
            else:
                conn.execute(insert(s.messages), message_rows)
            rollup.add_rows(conn, message_rows, ledger.now())
    return len(task_rows)


def _insert_sqlite(
    conn: Connection, rows: list[dict[str, Any]], times: dict[str, np.ndarray]
) -> None:
    """The messages as SQLite stores them, straight to the driver's executemany.

    Half the time of a plain ``conn.execute(insert(...), rows)`` goes to SQLAlchemy turning
    each datetime into text one by one; here numpy formats whole columns at once, in the very
    text SQLAlchemy's SQLite DATETIME writes (``YYYY-MM-DD HH:MM:SS.ffffff``), so the rows
    read back and compare exactly like any other.
    """
    names = [c.name for c in s.messages.columns]
    compiled = insert(s.messages).compile(dialect=conn.dialect, column_keys=names)
    order = compiled.positiontup or names
    columns: dict[str, list[Any]] = {}
    for name in order:
        if name in times:
            text = np.char.replace(np.datetime_as_string(times[name], unit="us"), "T", " ")
            missing = np.isnat(times[name]).tolist()
            columns[name] = [None if m else t for t, m in zip(text.tolist(), missing, strict=True)]
        elif name == "day":
            columns[name] = [row["day"].isoformat() for row in rows]
        elif name == "demo":
            columns[name] = [1] * len(rows)
        else:
            columns[name] = [row[name] for row in rows]
    conn.exec_driver_sql(str(compiled), list(zip(*(columns[n] for n in order), strict=True)))


def _bulk_pragmas(conn: Connection) -> None:
    # A large page cache keeps the indexes' B-trees in memory during the load (SQLite only;
    # other databases size their buffers themselves).
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA cache_size=-262144")


def _day_rows(
    rng: np.random.Generator,
    d: int,
    day: date,
    n: int,
    plans: list[DemoCampaign],
    ids: list[int],
    now: datetime,
    run: str,
    offset: int,
) -> Day:
    """One day's tasks and messages (rows, and their times as numpy columns)."""
    active = [i for i, p in enumerate(plans) if p.first_day <= d < p.first_day + p.days]
    n_campaign = round(n * CAMPAIGN_SHARE) if active else 0
    midnight = np.datetime64(day.isoformat(), "us")
    now64 = np.datetime64(now.isoformat(), "us")
    limit_us = int((now64 - midnight) / np.timedelta64(1, "us"))  # today stops at now

    # Tasks: (campaign index or -1, country index, sender, segments, created offset µs, size)
    tasks: list[tuple[int, int, str | None, int, int, int]] = []
    split = rng.multinomial(n_campaign, [1 / len(active)] * len(active)) if active else []
    for plan_index, count in zip(active, split, strict=True):
        plan = plans[plan_index]
        weights = np.array([COUNTRIES[c].weight for c in plan.countries])
        by_country = rng.multinomial(int(count), weights / weights.sum())
        start = plan.hour * 3_600_000_000 + int(rng.integers(0, 600)) * 1_000_000
        batch_no = 0
        for country, size in zip(plan.countries, by_country, strict=True):
            for first in range(0, int(size), 1000):
                created = start + batch_no * 1_500_000  # one batch every 1.5 s
                batch_no += 1
                tasks.append(
                    (
                        plan_index,
                        country,
                        plan.sender,
                        plan.segments,
                        created,
                        min(1000, int(size) - first),
                    )
                )
    remaining = n - n_campaign
    weights = np.array([c.weight for c in COUNTRIES])
    while remaining > 0:
        sizes = np.minimum(rng.geometric(1 / 8, size=max(remaining // 8, 16)), 1000)
        sizes = sizes[np.cumsum(sizes) <= remaining] if sizes.sum() > remaining else sizes
        if sizes.size == 0:
            sizes = np.array([remaining])
        countries = rng.choice(len(COUNTRIES), size=sizes.size, p=weights / weights.sum())
        senders = rng.choice(
            len(TRANSACTIONAL_SENDERS), size=sizes.size, p=TRANSACTIONAL_SENDER_WEIGHT
        )
        segments = np.where(rng.random(sizes.size) < 0.85, 1, 2)
        hours = rng.choice(24, size=sizes.size, p=HOUR_WEIGHT / HOUR_WEIGHT.sum())
        created = hours * 3_600_000_000 + rng.integers(0, 3_600_000_000, size=sizes.size)
        for size, c, snd, seg, t in zip(
            sizes.tolist(),
            countries.tolist(),
            senders.tolist(),
            segments.tolist(),
            created.tolist(),
            strict=True,
        ):
            tasks.append((-1, c, TRANSACTIONAL_SENDERS[snd], seg, t, size))
        remaining -= int(sizes.sum())
    # Today: nothing is sent after now (such tasks move back into the past hours).
    tasks = [
        (p, c, snd, seg, t if t < limit_us else int(rng.integers(0, max(limit_us, 1))), size)
        for p, c, snd, seg, t, size in tasks
    ]
    tasks.sort(key=lambda task: task[4])

    task_rows: list[dict[str, Any]] = []
    sizes = np.array([t[5] for t in tasks], dtype=np.int64)
    stamp = day.strftime("%Y%m%d")
    created_task = midnight + np.array([t[4] for t in tasks], dtype="timedelta64[us]")
    created_task_py = created_task.tolist()
    for seq, (p, c, snd, seg, _t, size) in enumerate(tasks):
        price = COUNTRIES[c].price_micros * seg
        task_rows.append(
            {
                "task_id": f"{stamp}-{TASK_SEQ_BASE + seq + 1}",
                "campaign_id": ids[p] if p >= 0 else None,
                "country": COUNTRIES[c].code,
                "sender": snd,
                "content": plans[p].name if p >= 0 else "Your code is ######",
                "recipients": size,
                "segments": seg * size,
                "debited_micros": price * size,
                "currency": CURRENCY,
                "client_ref": None,
                "created_at": created_task_py[seq],
                "day": day,
                "demo": True,
            }
        )
    if not tasks:
        return task_rows, [], {}

    # Messages: task attributes repeated, then each message's fate drawn.
    m = int(sizes.sum())
    task_index = np.repeat(np.arange(len(tasks)), sizes)
    country = np.array([t[1] for t in tasks])[task_index]
    plan_of = np.array([t[0] for t in tasks])[task_index]
    seg = np.array([t[3] for t in tasks])[task_index]
    created = created_task[task_index]
    price = np.array([c.price_micros for c in COUNTRIES])[country] * seg
    failed_p = np.array([c.failed for c in COUNTRIES])[country]
    undelivered_p = np.array([c.undelivered for c in COUNTRIES])[country]
    u = rng.random(m)
    fate = np.where(u < failed_p, 2, np.where(u < failed_p + undelivered_p, 1, 0))  # 0 delivered
    us = np.timedelta64(1, "us")
    sent = created + (rng.lognormal(np.log(800), 0.6, m) * 1000).astype(np.int64) * us
    median = np.array([c.latency_ms for c in COUNTRIES])[country]
    sigma = np.array([c.sigma for c in COUNTRIES])[country]
    delivery_ms = np.maximum(rng.lognormal(np.log(median), sigma), 150).astype(np.int64)
    delivered = sent + delivery_ms * 1000 * us
    undelivered_at = sent + (rng.lognormal(np.log(60), 1.0, m) * 1e6).astype(np.int64) * us
    failed_at = created + (rng.lognormal(np.log(1500), 0.5, m) * 1000).astype(np.int64) * us
    final = np.where(fate == 0, delivered, np.where(fate == 1, undelivered_at, failed_at))
    # What has happened by now: a step after now has not happened yet.
    status_code = np.where(
        fate == 2,
        np.where(failed_at <= now64, 4, 0),
        np.where(sent > now64, 0, np.where(final > now64, 1, np.where(fate == 0, 2, 3))),
    )
    # 0 QUEUED, 1 SENT, 2 DELIVERED, 3 UNDELIVERED, 4 FAILED
    ctr = np.array([p.ctr for p in plans] + [0.0])[plan_of]  # -1 → the 0.0 at the end
    clicked = (status_code == 2) & (rng.random(m) < ctr)
    click_at = delivered + (rng.exponential(2_400, m) * 1e6).astype(np.int64) * us
    clicked &= click_at <= now64
    clicks = np.where(clicked, rng.geometric(0.6, m), 0)  # 1, sometimes more

    nat = np.datetime64("NaT", "us")
    sent_col = np.where((status_code == 0) | (status_code == 4), nat, sent)
    delivered_col = np.where(status_code == 2, delivered, nat)
    final_col = np.where(status_code >= 2, final, nat)
    click_col = np.where(clicked, click_at, nat)
    updated = np.where(status_code >= 2, final, np.where(status_code == 1, sent, created))
    updated = np.where(clicked, click_at, updated)
    cost = np.where(status_code == 4, 0, price)
    dial = np.array([c.dial for c in COUNTRIES], dtype=object)[country]
    national = rng.integers(200_000_000, 999_999_999, size=m)  # ~800M numbers: rarely repeated

    statuses = ("QUEUED", "SENT", "DELIVERED", "UNDELIVERED", "FAILED")
    codes = [c.code for c in COUNTRIES]
    task_ids = [row["task_id"] for row in task_rows]
    cids = [row["campaign_id"] for row in task_rows]
    senders = [row["sender"] for row in task_rows]
    columns = zip(
        task_index.tolist(),
        country.tolist(),
        status_code.tolist(),
        seg.tolist(),
        price.tolist(),
        cost.tolist(),
        created.tolist(),
        sent_col.tolist(),
        delivered_col.tolist(),
        final_col.tolist(),
        delivery_ms.tolist(),
        updated.tolist(),
        clicks.tolist(),
        click_col.tolist(),
        dial.tolist(),
        national.tolist(),
        strict=True,
    )
    rows = []
    for i, (t, c, st, sg, pr, co, cr, se, de, fi, dms, up, cl, ca, dl, nn) in enumerate(columns):
        rows.append(
            {
                "msgid": f"msg_de{run}{offset + i:010x}",
                "task_id": task_ids[t],
                "campaign_id": cids[t],
                "recipient": f"+{dl}{nn}",
                "country": codes[c],
                "sender": senders[t],
                "status": statuses[st],
                "segments": sg,
                "cost_micros": co if st else None,  # unknown while QUEUED
                "estimated_micros": pr,
                "currency": CURRENCY,
                "created_at": cr,
                "day": day,
                "sent_at": se,
                "delivered_at": de,
                "final_at": fi,
                "delivery_ms": dms if st == 2 else None,
                "updated_at": up,
                "clicks": cl,
                "last_click_at": ca,
                "source": "callback" if st else "send",
                "demo": True,
            }
        )
    times = {
        "created_at": created,
        "sent_at": sent_col,
        "delivered_at": delivered_col,
        "final_at": final_col,
        "updated_at": updated,
        "last_click_at": click_col,
    }
    return task_rows, rows, times


def main(argv: list[str] | None = None) -> int:
    """The command line: generate demo history, or remove it."""
    parser = argparse.ArgumentParser(
        prog="python -m kedacore.demo",
        description="Fill the ledger with generated demo history (flagged demo), or remove it.",
    )
    parser.add_argument("--days", type=int, default=90, help="days of history up to today (90)")
    parser.add_argument("--messages", type=int, default=100_000, help="messages in all (100000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--ledger", metavar="URL", help="SQLAlchemy URL (default: KEDA_DATABASE_URL)"
    )
    where.add_argument("--data-dir", metavar="DIR", help="the data folder (ledger.db inside)")
    parser.add_argument("--remove", action="store_true", help="remove the demo rows and stop")
    args = parser.parse_args(argv)
    with Ledger(args.ledger, data_dir=args.data_dir) as ledger:
        if args.remove:
            removed = ledger.remove_demo_data()
            print(f"removed {removed} demo messages from {ledger.url}")
            return 0

        def report(done: int, total: int) -> None:
            print(f"  {done:,} / {total:,} messages", file=sys.stderr, flush=True)

        result = generate(
            ledger, days=args.days, messages=args.messages, seed=args.seed, progress=report
        )
        print(
            f"wrote {result.messages:,} demo messages, {result.tasks:,} tasks, "
            f"{result.campaigns} campaigns ({result.first_day} … {result.last_day}) "
            f"to {ledger.url} in {result.seconds:.1f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
