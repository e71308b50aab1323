"""The Spend page's aggregates equal a brute-force pandas computation over the same rows."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import openpyxl
import pandas as pd
import plotly.graph_objects as go
import pytest
from sqlalchemy import select

from kedacore import demo
from kedacore.analytics import (
    Filters,
    compare_kpis,
    daily_spend_by_country,
    data_version,
    figures,
    filter_options,
    spend_page,
    to_csv,
    to_xlsx,
)
from kedacore.analytics.charts import NO_DATA
from kedacore.analytics.export import iso_utc
from kedacore.api.types import SendResult, SentMessage
from kedacore.ledger import Ledger, StatusUpdate
from kedacore.ledger import schema as s
from kedacore.ledger.engine import reading
from kedacore.money import from_micros

NOW = datetime(2024, 5, 20, 14, 45, tzinfo=UTC)
TODAY = NOW.date()
STATUS_ORDER = ["QUEUED", "SENT", "DELIVERED", "UNDELIVERED", "FAILED"]


def send(led: Ledger, task: str, n: int, **kwargs: Any) -> list[str]:
    mids = [f"msg_{task}{i:08x}" for i in range(n)]
    result = SendResult(
        task_id=f"20240520-{task}",
        message="ok",
        debited_amount=kwargs.pop("debited", Decimal("0.1")),
        currency=kwargs.pop("currency", "USD"),
        segments=kwargs.pop("segments", n),
        messages=tuple(SentMessage(m, f"+1206555{i:04d}") for i, m in enumerate(mids)),
    )
    led.record_send(result, content="hi", **kwargs)
    return mids


@pytest.fixture(scope="module")
def ledger(module_ledger_url: Callable[..., str]) -> Iterator[Ledger]:
    with Ledger(module_ledger_url("analytics"), clock=lambda: NOW) as led:
        demo.generate(led, days=21, messages=4_000, seed=11)
        # Real rows around the demo ones: no sender, unknown per-message segments, a charge
        # not reported yet, another currency, a period cut inside a day.
        at = NOW - timedelta(hours=3)
        a = send(led, "a0000001", 3, country="US", sender=None, segments=7, created_at=at)
        led.apply_statuses([StatusUpdate(a[0], "SENT", sent_at=at)])  # no cost yet
        led.apply_statuses(
            [
                StatusUpdate(
                    a[1],
                    "DELIVERED",
                    sent_at=at,
                    delivered_at=at + timedelta(milliseconds=1_234),
                    cost_micros=77_777,
                    segments=3,
                )
            ]
        )
        led.record_click(a[1], clicked_at=at + timedelta(minutes=1))
        send(led, "e0000001", 2, country="DE", sender="Shop", currency="EUR", created_at=at)
        yield led


@pytest.fixture(scope="module")
def rows(ledger: Ledger) -> pd.DataFrame:
    """The whole messages table (this is the test; the page never does this)."""
    with reading(ledger.engine) as conn:
        m = pd.DataFrame(conn.execute(select(s.messages)).mappings().all())
        names = dict(conn.execute(select(s.campaigns.c.id, s.campaigns.c.name)).all())
    m.attrs["names"] = names
    return m


def pick(m: pd.DataFrame, f: Filters) -> pd.DataFrame:
    start, end = f.bounds
    sel = (m.created_at >= start) & (m.created_at < end)
    if f.countries:
        sel &= m.country.isin(f.countries)
    if f.statuses:
        sel &= m.status.isin(f.statuses)
    if f.currency:
        sel &= m.currency == f.currency
    for col, values in (("sender", f.senders), ("campaign_id", f.campaign_ids)):
        if values:
            known = [v for v in values if v is not None]
            part = m[col].isin(known)
            if None in values:
                part |= m[col].isna()
            sel &= part
    return m[sel]


def money(micros: Any) -> Decimal:
    return from_micros(int(micros))


def brute_kpis(m: pd.DataFrame) -> dict[str, Any]:
    n = {st: int((m.status == st).sum()) for st in STATUS_ORDER}
    final = n["DELIVERED"] + n["UNDELIVERED"] + n["FAILED"]
    accepted = n["SENT"] + n["DELIVERED"] + n["UNDELIVERED"]
    charged = m[m.status.isin(["SENT", "DELIVERED", "UNDELIVERED"]) & m.cost_micros.notna()]
    spend = int(m.cost_micros.fillna(0).sum())
    pending = m[m.cost_micros.isna() & (m.status != "FAILED")].estimated_micros.fillna(0).sum()
    latency = m.delivery_ms.dropna().astype(float)
    clicked = int((m.clicks > 0).sum())
    currencies = set(m.currency)
    return {
        "spend": money(spend),
        "pending": money(pending),
        "messages": len(m),
        "segments": int(m.segments.fillna(0).sum()),
        "accepted": accepted,
        "delivered": n["DELIVERED"],
        "undelivered": n["UNDELIVERED"],
        "failed": n["FAILED"],
        "final": final,
        "billed": len(charged),
        "clicked": clicked,
        "clicks": int(m.clicks.sum()),
        "delivery_rate": n["DELIVERED"] / final if final else None,
        "failure_rate": n["FAILED"] / final if final else None,
        "undelivered_rate": n["UNDELIVERED"] / final if final else None,
        "avg_cost": (Decimal(spend) / len(charged) / 1_000_000).quantize(Decimal("0.000001"))
        if len(charged)
        else None,
        "ctr": clicked / n["DELIVERED"] if n["DELIVERED"] else None,
        "median_ms": latency.quantile(0.5) if len(latency) else None,
        "p95_ms": latency.quantile(0.95) if len(latency) else None,
        "currency": (currencies.pop() if len(currencies) == 1 else "mixed") if currencies else None,
    }


def assert_kpis(kpis: Any, expected: dict[str, Any]) -> None:
    for name, value in expected.items():
        got = getattr(kpis, name)
        if isinstance(value, float):
            assert got == pytest.approx(value, rel=1e-12), name
        else:
            assert got == value, name


def filter_cases(m: pd.DataFrame) -> list[Filters]:
    campaign = int(m.campaign_id.dropna().value_counts().index[0])
    return [
        Filters(TODAY - timedelta(days=30), TODAY),
        Filters.last_days(7, today=TODAY, countries=["US", "IN"]),
        Filters(
            NOW - timedelta(days=9, hours=5, minutes=7),
            NOW - timedelta(hours=1),
            senders=["KedaShop", None],
            statuses=["DELIVERED", "UNDELIVERED", "SENT"],
        ),
        Filters(TODAY - timedelta(days=20), TODAY, campaign_ids=[campaign, None]),
        Filters(datetime(2024, 5, 10, 6, tzinfo=UTC), datetime(2024, 5, 10, 18, tzinfo=UTC)),
        Filters(TODAY - timedelta(days=3), TODAY, statuses=["FAILED"], countries=["NG", "ID"]),
        Filters(TODAY, TODAY, currency="EUR"),
        Filters(date(2023, 1, 1), date(2023, 1, 31)),  # nothing there
        Filters(TODAY, TODAY, countries=["ZZ"]),  # nothing matches
    ]


def test_kpis_and_previous_period_equal_brute_force(ledger: Ledger, rows: pd.DataFrame) -> None:
    for f in filter_cases(rows):
        comparison = compare_kpis(ledger, f)
        assert_kpis(comparison.current, brute_kpis(pick(rows, f)))
        assert_kpis(comparison.previous, brute_kpis(pick(rows, f.previous())))
        d = comparison.delta("messages")
        assert d.change == comparison.current.messages - comparison.previous.messages
    assert compare_kpis(ledger, filter_cases(rows)[0]).current.currency == "mixed"


def test_frames_equal_brute_force(ledger: Ledger, rows: pd.DataFrame) -> None:
    for f in filter_cases(rows):
        m = pick(rows, f)
        data = spend_page(ledger, f)
        assert data.empty == m.empty

        g = m.groupby(["day", "country"]).agg(
            messages=("msgid", "size"), spend=("cost_micros", lambda c: money(c.fillna(0).sum()))
        )
        got = data.daily_spend.set_index(["day", "country"])
        assert got.messages.to_dict() == g.messages.to_dict()
        assert got.spend.to_dict() == g.spend.to_dict()

        g = m.groupby(["day", "status"]).size()
        assert data.status_by_day.set_index(["day", "status"]).messages.to_dict() == g.to_dict()

        by_country = data.delivery_by_country.set_index("country")
        for country, part in m.groupby("country"):
            final = part.status.isin(["DELIVERED", "UNDELIVERED", "FAILED"]).sum()
            delivered = (part.status == "DELIVERED").sum()
            assert by_country.messages[country] == len(part)
            rate = by_country.delivery_rate[country]
            assert (rate is None or np.isnan(rate)) if not final else rate == delivered / final
        assert set(by_country.index) == set(m.country)

        bounds = np.array(s.LATENCY_BUCKETS_MS)
        buckets = np.searchsorted(bounds, m.delivery_ms.dropna().to_numpy(), side="right")
        expected = np.bincount(buckets, minlength=len(bounds) + 1)
        assert data.latency.messages.tolist() == expected.tolist()

        g = m.groupby(m.sender.fillna("")).cost_micros.apply(lambda c: money(c.fillna(0).sum()))
        got = {
            (k or ""): v for k, v in zip(data.by_sender.sender, data.by_sender.spend, strict=True)
        }
        assert got == g.to_dict()

        names = rows.attrs["names"]
        g = m.groupby(m.campaign_id.fillna(0).astype(int))
        got = data.by_campaign.assign(cid=data.by_campaign.campaign_id.fillna(0).astype(int))
        got = got.set_index("cid")
        for cid, part in g:
            assert got.messages[cid] == len(part)
            assert got.spend[cid] == money(part.cost_micros.fillna(0).sum())
            assert got.clicked[cid] == (part.clicks > 0).sum()
            assert got.campaign[cid] == (names[cid] if cid else "(no campaign)")
        assert len(got) == g.ngroups

        k = brute_kpis(m)
        assert data.funnel.messages.tolist() == [k["accepted"], k["delivered"], k["clicked"]]


def test_filter_options_and_data_version(ledger: Ledger, rows: pd.DataFrame) -> None:
    opts = filter_options(ledger)
    assert opts.countries == tuple(sorted(set(rows.country)))
    assert set(opts.senders) == {None if pd.isna(x) else x for x in rows.sender}
    assert {c for c, _ in opts.campaigns} == {
        None if pd.isna(c) else int(c) for c in rows.campaign_id
    }
    assert opts.currencies == ("EUR", "USD")
    assert opts.first_day == min(rows.day) and opts.last_day == max(rows.day)
    assert opts.has_demo
    assert opts.statuses == tuple(st for st in STATUS_ORDER if st in set(rows.status))
    v1 = data_version(ledger)
    assert v1 == data_version(ledger)
    assert v1.messages == len(rows)


def test_data_version_moves_with_every_change(ledger_url: Callable[..., str]) -> None:
    ticks = iter(range(10**6))
    with Ledger(ledger_url(), clock=lambda: NOW + timedelta(seconds=next(ticks))) as led:
        empty = data_version(led)
        mids = send(led, "b0000001", 2, country="US", sender="A")
        v1 = data_version(led)
        led.apply_statuses([StatusUpdate(mids[0], "SENT", sent_at=NOW, cost_micros=50_000)])
        v2 = data_version(led)
        led.record_click(mids[0])
        v3 = data_version(led)
        assert len({empty, v1, v2, v3}) == 4
        assert filter_options(led).campaigns == ((None, "(no campaign)"),)


def test_exports_are_exact(ledger: Ledger) -> None:
    tricky = [Decimal("0.1"), Decimal("0.2"), Decimal("0.3"), Decimal("123456789.123456")]
    frame = pd.DataFrame(
        {
            "day": [date(2024, 5, 1)] * 4,
            "spend": tricky,
            "at": [datetime(2024, 5, 1, 12, 0, 1, 5, tzinfo=UTC)] * 3 + [None],
            "rate": [0.5, None, 1.0, 0.25],
        }
    )
    text = to_csv(frame).decode()
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert [Decimal(r["spend"]) for r in parsed] == tricky
    assert [r["spend"] for r in parsed] == ["0.1", "0.2", "0.3", "123456789.123456"]
    assert parsed[0]["at"] == "2024-05-01T12:00:01.000005Z" and parsed[3]["at"] == ""
    assert parsed[0]["day"] == "2024-05-01"

    book = to_xlsx(
        {
            "spend": frame,
            "daily": daily_spend_by_country(ledger, Filters.last_days(21, today=TODAY)),
        }
    )
    sheet = openpyxl.load_workbook(io.BytesIO(book))["spend"]
    values = [row for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert [Decimal(repr(v[1])) for v in values] == tricky
    assert values[0][2] == "2024-05-01T12:00:01.000005Z"
    xml = zipfile.ZipFile(io.BytesIO(book)).read("xl/worksheets/sheet1.xml").decode()
    stored = re.findall(r'<c r="B\d+"[^>]*><v>([^<]*)</v>', xml)
    assert stored == ["0.1", "0.2", "0.3", "123456789.123456"]  # the exact text, no float
    daily = openpyxl.load_workbook(io.BytesIO(book))["daily"]
    assert daily.max_row > 1

    data = spend_page(ledger, Filters.last_days(21, today=TODAY))
    for name, f in data.frames().items():
        assert to_csv(f).startswith(b",".join(str(c).encode() for c in f.columns)), name
    assert openpyxl.load_workbook(io.BytesIO(to_xlsx(data.frames()))).sheetnames[0] == "kpis"
    assert iso_utc(datetime(2024, 1, 1, 1, tzinfo=UTC)) == "2024-01-01T01:00:00Z"


def test_figures_build_with_and_without_data(ledger: Ledger) -> None:
    full = figures(spend_page(ledger, Filters.last_days(21, today=TODAY, currency="USD")))
    empty = figures(spend_page(ledger, Filters(date(2023, 1, 1), date(2023, 1, 7))))
    assert full.keys() == empty.keys()
    for name, fig in full.items():
        assert isinstance(fig, go.Figure) and fig.data, name
        fig.to_json()
    for name, fig in empty.items():
        assert not fig.data and fig.layout.annotations[0].text == NO_DATA, name
    colors = {t.name: t.marker.color for t in full["status_by_day"].data}
    assert colors["DELIVERED"] == "#2ca02c" and colors["FAILED"] == "#d62728"
    assert "Spend (" in full["daily_spend"].layout.yaxis.title.text


def test_filters() -> None:
    f = Filters(date(2024, 5, 1), date(2024, 5, 10))
    assert f.previous() == Filters(date(2024, 4, 21), date(2024, 4, 30))
    g = Filters(datetime(2024, 5, 1, 6, tzinfo=UTC), datetime(2024, 5, 1, 18, tzinfo=UTC))
    assert g.previous().bounds == (
        datetime(2024, 4, 30, 18, tzinfo=UTC),
        datetime(2024, 5, 1, 6, tzinfo=UTC),
    )
    assert Filters(date(2024, 5, 1), date(2024, 5, 1), countries=["us"]).countries == ("US",)
    with pytest.raises(ValueError, match="before it starts"):
        Filters(date(2024, 5, 2), date(2024, 5, 1))
    with pytest.raises(ValueError, match="unknown status"):
        Filters(date(2024, 5, 1), date(2024, 5, 1), statuses=["LOST"])
    assert hash(Filters.last_days(7, today=TODAY, senders=[None, "A"]))


def test_latency_labels_keep_the_zeros_of_whole_seconds() -> None:
    from kedacore.analytics.frames import latency_label

    assert latency_label(8000, 10000) == "8–10 s"
    assert latency_label(10000, 12500) == "10–12.5 s"
    assert latency_label(0, 500) == "0–0.5 s"
    assert latency_label(3_600_000, None) == "≥ 3600 s"
