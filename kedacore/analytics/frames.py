"""KPIs and chart frames for the Spend page: small dataclasses and pandas DataFrames of aggregates.

Every public function takes a ``Ledger`` (or an ``Engine``) and ``Filters``. Money comes back
as exact ``Decimal`` (never float), rates as float in [0, 1] (None when undefined), latencies
in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Connection

from kedacore.analytics import queries as q
from kedacore.analytics.filters import Filters
from kedacore.analytics.kpis import KpiComparison, Kpis, kpis, rate, read_kpis
from kedacore.ledger.engine import reading
from kedacore.money import from_micros, money_str

NO_SENDER_LABEL = "(no sender id)"
NO_CAMPAIGN_LABEL = "(no campaign)"


# -- frames ------------------------------------------------------------------------------------

DAILY_SPEND_COLUMNS = ["day", "country", "messages", "spend", "pending"]
STATUS_COLUMNS = ["day", "status", "messages"]
COUNTRY_COLUMNS = [
    "country",
    "messages",
    "final",
    "delivered",
    "undelivered",
    "failed",
    "delivery_rate",
]
LATENCY_COLUMNS = ["bucket", "low_ms", "high_ms", "label", "messages", "share"]
SENDER_COLUMNS = ["sender", "label", "messages", "segments", "spend", "pending"]
CAMPAIGN_COLUMNS = [
    "campaign_id",
    "campaign",
    "messages",
    "spend",
    "pending",
    "sent",
    "delivered",
    "clicked",
    "ctr",
]
FUNNEL_COLUMNS = ["stage", "messages", "share_of_sent"]


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def _daily_spend(conn: Connection, f: Filters) -> pd.DataFrame:
    rows = [
        {
            "day": r["day"],
            "country": r["country"],
            "messages": r["messages"],
            "spend": from_micros(r["cost_micros"]),
            "pending": from_micros(r["pending_micros"]),
        }
        for r in q.grouped_rows(conn, f, ["day", "country"])
    ]
    return _frame(rows, DAILY_SPEND_COLUMNS)


def _status_by_day(conn: Connection, f: Filters) -> pd.DataFrame:
    rows = [
        {"day": r["day"], "status": r["status"], "messages": r["messages"]}
        for r in q.grouped_rows(conn, f, ["day", "status"])
        if r["messages"]
    ]
    return _frame(rows, STATUS_COLUMNS)


def _delivery_by_country(conn: Connection, f: Filters) -> pd.DataFrame:
    rows = []
    for r in q.grouped_rows(conn, f, ["country"]):
        final = r["delivered"] + r["undelivered"] + r["failed"]
        rows.append(
            {
                "country": r["country"],
                "messages": r["messages"],
                "final": final,
                "delivered": r["delivered"],
                "undelivered": r["undelivered"],
                "failed": r["failed"],
                "delivery_rate": rate(r["delivered"], final),
            }
        )
    return _frame(rows, COUNTRY_COLUMNS)


def latency_label(low: int, high: int | None) -> str:
    """A bucket's label in seconds: ``2–2.5 s``, ``≥ 3600 s``."""

    def sec(ms: int) -> str:
        return money_str(Decimal(ms) / 1000)  # shortest decimal: 10000 → "10", 2500 → "2.5"

    return f"≥ {sec(low)} s" if high is None else f"{sec(low)}–{sec(high)} s"


def latency_frame(counts: list[int]) -> pd.DataFrame:
    """The latency histogram (every bucket, empty ones too, so the axis stays the same)."""
    total = sum(counts)
    bounds = q.BOUNDS
    rows = []
    for i, n in enumerate(counts):
        low = bounds[i - 1] if i else 0
        high = bounds[i] if i < len(bounds) else None
        rows.append(
            {
                "bucket": i,
                "low_ms": low,
                "high_ms": high,
                "label": latency_label(low, high),
                "messages": n,
                "share": n / total if total else 0.0,
            }
        )
    return _frame(rows, LATENCY_COLUMNS)


def _by_sender(conn: Connection, f: Filters) -> pd.DataFrame:
    rows = [
        {
            "sender": r["sender"] or None,
            "label": r["sender"] or NO_SENDER_LABEL,
            "messages": r["messages"],
            "segments": r["segments"],
            "spend": from_micros(r["cost_micros"]),
            "pending": from_micros(r["pending_micros"]),
        }
        for r in q.grouped_rows(conn, f, ["sender"])
    ]
    rows.sort(key=lambda r: (-r["spend"], r["label"]))
    frame = _frame(rows, SENDER_COLUMNS)
    frame["sender"] = frame["sender"].astype(object).where(frame["sender"].notna(), None)
    return frame


def _by_campaign(conn: Connection, f: Filters) -> pd.DataFrame:
    grouped = q.grouped_rows(conn, f, ["campaign_id"])
    names = q.campaign_names(conn, [int(r["campaign_id"]) for r in grouped])
    rows = []
    for r in grouped:
        cid = int(r["campaign_id"]) or None
        accepted = r["sent"] + r["delivered"] + r["undelivered"]
        rows.append(
            {
                "campaign_id": cid,
                "campaign": NO_CAMPAIGN_LABEL if cid is None else names.get(cid, f"campaign {cid}"),
                "messages": r["messages"],
                "spend": from_micros(r["cost_micros"]),
                "pending": from_micros(r["pending_micros"]),
                "sent": accepted,
                "delivered": r["delivered"],
                "clicked": r["clicked"],
                "ctr": rate(r["clicked"], r["delivered"]),
            }
        )
    rows.sort(key=lambda r: (-r["spend"], r["campaign"]))
    return _frame(rows, CAMPAIGN_COLUMNS).astype({"campaign_id": "Int64"})


def funnel_frame(k: Kpis) -> pd.DataFrame:
    """Sent (accepted by the channel) → delivered → clicked, with each stage's share of sent."""
    rows = [
        {"stage": stage, "messages": n, "share_of_sent": rate(n, k.accepted)}
        for stage, n in (("Sent", k.accepted), ("Delivered", k.delivered), ("Clicked", k.clicked))
    ]
    return _frame(rows, FUNNEL_COLUMNS)


def daily_spend_by_country(ledger: Any, filters: Filters) -> pd.DataFrame:
    """Spend per day and country: day, country, messages, spend, pending."""
    with reading(q.engine_of(ledger)) as conn:
        return _daily_spend(conn, filters)


def messages_by_status(ledger: Any, filters: Filters) -> pd.DataFrame:
    """Messages per day and status: day, status, messages."""
    with reading(q.engine_of(ledger)) as conn:
        return _status_by_day(conn, filters)


def delivery_by_country(ledger: Any, filters: Filters) -> pd.DataFrame:
    """Outcomes and delivery rate per country."""
    with reading(q.engine_of(ledger)) as conn:
        return _delivery_by_country(conn, filters)


def latency_distribution(ledger: Any, filters: Filters) -> pd.DataFrame:
    """Delivered messages per latency bucket: bucket, low_ms, high_ms, label, messages, share."""
    with reading(q.engine_of(ledger)) as conn:
        return latency_frame(q.histogram(q.kpi_row(conn, filters)))


def spend_by_sender(ledger: Any, filters: Filters) -> pd.DataFrame:
    """Spend per sender id (None: sent without one), dearest first."""
    with reading(q.engine_of(ledger)) as conn:
        return _by_sender(conn, filters)


def spend_by_campaign(ledger: Any, filters: Filters) -> pd.DataFrame:
    """Spend and funnel per campaign (None: messages outside campaigns), dearest first."""
    with reading(q.engine_of(ledger)) as conn:
        return _by_campaign(conn, filters)


def funnel(ledger: Any, filters: Filters) -> pd.DataFrame:
    """The funnel of the filtered messages: Sent → Delivered → Clicked."""
    return funnel_frame(kpis(ledger, filters))


@dataclass(frozen=True, slots=True)
class SpendData:
    """Everything the Spend page shows for one set of filters (read in one snapshot)."""

    filters: Filters
    kpis: KpiComparison
    daily_spend: pd.DataFrame
    status_by_day: pd.DataFrame
    delivery_by_country: pd.DataFrame
    latency: pd.DataFrame
    by_sender: pd.DataFrame
    by_campaign: pd.DataFrame
    funnel: pd.DataFrame

    @property
    def empty(self) -> bool:
        """No message in the period (with these filters)."""
        return self.kpis.current.messages == 0

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every table by name (the sheets of an export), the KPIs first."""
        out = {"kpis": self.kpis.frame()}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, pd.DataFrame):
                out[f.name] = value
        return out


def spend_page(ledger: Any, filters: Filters) -> SpendData:
    """All the Spend page's aggregates for ``filters``, on one connection."""
    with reading(q.engine_of(ledger)) as conn:
        current, counts = read_kpis(conn, filters)
        previous, _ = read_kpis(conn, filters.previous())
        return SpendData(
            filters=filters,
            kpis=KpiComparison(current, previous, filters),
            daily_spend=_daily_spend(conn, filters),
            status_by_day=_status_by_day(conn, filters),
            delivery_by_country=_delivery_by_country(conn, filters),
            latency=latency_frame(counts),
            by_sender=_by_sender(conn, filters),
            by_campaign=_by_campaign(conn, filters),
            funnel=funnel_frame(current),
        )


# -- filter options and the data version -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class FilterOptions:
    """What the filters can choose from: the values present in the ledger."""

    countries: tuple[str, ...]
    senders: tuple[str | None, ...]  # None: messages without a sender id
    campaigns: tuple[tuple[int | None, str], ...]  # (id, name); None: outside campaigns
    statuses: tuple[str, ...]
    currencies: tuple[str, ...]
    first_day: date | None
    last_day: date | None
    has_demo: bool


def filter_options(ledger: Any) -> FilterOptions:
    """The countries, senders, campaigns, statuses and currencies present (one small query)."""
    with reading(q.engine_of(ledger)) as conn:
        rows = q.options_rows(conn)
        ids = sorted({int(r.campaign_id) for r in rows})
        names = q.campaign_names(conn, ids)
    senders = sorted({r.sender for r in rows})
    order = {st: i for i, st in enumerate(q.rollup_statuses())}
    return FilterOptions(
        countries=tuple(sorted({r.country for r in rows})),
        senders=tuple(snd or None for snd in senders),
        campaigns=tuple(
            (None, NO_CAMPAIGN_LABEL) if not i else (i, names.get(i, f"campaign {i}")) for i in ids
        ),
        statuses=tuple(sorted({r.status for r in rows}, key=lambda st: order.get(st, 99))),
        currencies=tuple(sorted({r.currency for r in rows})),
        first_day=min((r[6] for r in rows), default=None),
        last_day=max((r[7] for r in rows), default=None),
        has_demo=any(r.demo for r in rows),
    )


@dataclass(frozen=True, slots=True)
class DataVersion:
    """Changes whenever a message is recorded, changes status, is clicked or removed.

    Cheap (one aggregate over the small rollup table): a page keys its short-TTL cache on it.
    """

    rows: int
    messages: int
    revision: int
    updated_at: datetime | None


def data_version(ledger: Any) -> DataVersion:
    """The ledger's analytics data version (see DataVersion)."""
    with reading(q.engine_of(ledger)) as conn:
        return DataVersion(*q.version_row(conn))
