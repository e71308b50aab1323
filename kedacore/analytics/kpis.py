"""The Spend page's KPIs for a period and the previous period of the same length."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Connection

from kedacore.analytics import queries as q
from kedacore.analytics.filters import Filters
from kedacore.ledger.engine import reading
from kedacore.money import from_micros

MICRO = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class Kpis:
    """The headline figures of one period.

    Attributes:
        spend: charged money (the cost the service reported for messages it accepted).
        pending: the estimate of messages not charged yet (QUEUED, or a charge not reported).
        messages, segments: messages created in the period; their segments where known.
        accepted: messages the channel took (SENT, DELIVERED, UNDELIVERED).
        delivered, undelivered, failed, final: by outcome; final = the three together.
        billed: accepted messages whose cost is known (the divisor of ``avg_cost``).
        clicked: messages whose links were clicked at least once; clicks: every click.
        delivery_rate: delivered / final; failure_rate: failed / final;
        undelivered_rate: undelivered / final (None when nothing is final yet).
        avg_cost: spend / billed, to the micro-unit (half-even); None when nothing is billed.
        ctr: clicked / delivered.
        median_ms, p95_ms: exact percentiles of delivery time (SENT → DELIVERED), linear
            interpolation as in pandas; None without delivered messages.
        currency: the currency of the period's money; "mixed" if several, None if empty.
    """

    spend: Decimal
    pending: Decimal
    messages: int
    segments: int
    accepted: int
    delivered: int
    undelivered: int
    failed: int
    final: int
    billed: int
    clicked: int
    clicks: int
    delivery_rate: float | None
    failure_rate: float | None
    undelivered_rate: float | None
    avg_cost: Decimal | None
    ctr: float | None
    median_ms: float | None
    p95_ms: float | None
    currency: str | None


# The KPIs a page shows, with their labels, in order.
KPI_LABELS = {
    "spend": "Spend",
    "messages": "Messages",
    "segments": "Segments",
    "delivery_rate": "Delivery rate",
    "failure_rate": "Failure rate",
    "avg_cost": "Average cost per message",
    "ctr": "Click-through rate",
    "median_ms": "Median time to delivery (ms)",
    "p95_ms": "p95 time to delivery (ms)",
    "pending": "Pending (not charged yet)",
}


@dataclass(frozen=True, slots=True)
class Delta:
    """A KPI now and in the previous period."""

    current: Any
    previous: Any

    @property
    def change(self) -> Any:
        """current − previous (None when either is None)."""
        if self.current is None or self.previous is None:
            return None
        return self.current - self.previous

    @property
    def relative(self) -> float | None:
        """(current − previous) / previous; None when previous is 0 or unknown."""
        if self.change is None or not self.previous:
            return None
        return float(self.change) / float(self.previous)


@dataclass(frozen=True, slots=True)
class KpiComparison:
    """The KPIs of a period and of the period of the same length just before it."""

    current: Kpis
    previous: Kpis
    filters: Filters

    def delta(self, name: str) -> Delta:
        """One KPI, now and before."""
        return Delta(getattr(self.current, name), getattr(self.previous, name))

    def frame(self) -> pd.DataFrame:
        """One row per KPI: metric, label, current, previous, change, relative change."""
        rows = []
        for name, label in KPI_LABELS.items():
            d = self.delta(name)
            rows.append(
                {
                    "metric": name,
                    "label": label,
                    "current": d.current,
                    "previous": d.previous,
                    "change": d.change,
                    "change_pct": None if d.relative is None else d.relative * 100,
                }
            )
        return pd.DataFrame(rows)


def rate(part: int, whole: int) -> float | None:
    """part / whole, or None when whole is 0."""
    return part / whole if whole else None


def read_kpis(conn: Connection, f: Filters) -> tuple[Kpis, list[int]]:
    """The KPIs of the filters on an open connection, and their latency histogram."""
    row = q.kpi_row(conn, f)
    counts = q.histogram(row)
    median, p95 = q.quantiles(conn, f, counts, (0.5, 0.95))
    final = row["delivered"] + row["undelivered"] + row["failed"]
    accepted = row["sent"] + row["delivered"] + row["undelivered"]
    spend = from_micros(row["cost_micros"])
    if row["currency_min"] is None:
        currency = None
    elif row["currency_min"] == row["currency_max"]:
        currency = row["currency_min"]
    else:
        currency = "mixed"
    avg = None
    if row["billed"]:
        avg = (Decimal(row["cost_micros"]) / row["billed"] / 1_000_000).quantize(
            MICRO, rounding=ROUND_HALF_EVEN
        )
    kpis = Kpis(
        spend=spend,
        pending=from_micros(row["pending_micros"]),
        messages=row["messages"],
        segments=row["segments"],
        accepted=accepted,
        delivered=row["delivered"],
        undelivered=row["undelivered"],
        failed=row["failed"],
        final=final,
        billed=row["billed"],
        clicked=row["clicked"],
        clicks=row["clicks"],
        delivery_rate=rate(row["delivered"], final),
        failure_rate=rate(row["failed"], final),
        undelivered_rate=rate(row["undelivered"], final),
        avg_cost=avg,
        ctr=rate(row["clicked"], row["delivered"]),
        median_ms=median,
        p95_ms=p95,
        currency=currency,
    )
    return kpis, counts


def kpis(ledger: Any, filters: Filters) -> Kpis:
    """The KPIs of the filtered period."""
    with reading(q.engine_of(ledger)) as conn:
        return read_kpis(conn, filters)[0]


def compare_kpis(ledger: Any, filters: Filters) -> KpiComparison:
    """The KPIs of the period and of the previous period of the same length."""
    with reading(q.engine_of(ledger)) as conn:
        return KpiComparison(
            read_kpis(conn, filters)[0], read_kpis(conn, filters.previous())[0], filters
        )
