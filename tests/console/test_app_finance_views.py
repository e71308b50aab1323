"""The Finance pages' plain functions (console/finance/views.py, console/finance/alerts.py)."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from console.finance.alerts import alert_state, blocked_caps, limit_banners, percent
from console.finance.views import (
    amount,
    audit_export,
    audit_frame,
    cap_changes,
    cap_text,
    change_warnings,
    changes_frame,
    kpi_cards,
    next_reset,
    parse_cap_form,
    parse_sms_cap,
    parse_spend_cap,
    parse_threshold,
    preset_range,
    update_arguments,
    usage_gauge,
)
from console.views import money
from kedacore.analytics import Filters, KpiComparison, to_csv
from kedacore.analytics.kpis import Kpis
from kedacore.api.types import Alert, Limits, Usage
from kedacore.ledger import CapChange


def limits(
    sms_cap: int | None = None,
    spend_cap: str | None = None,
    *,
    sent: int = 0,
    spend: str = "0",
    threshold: str = "0.8",
    block: bool = False,
    triggered: bool = False,
) -> Limits:
    return Limits(
        daily_sms_cap=sms_cap,
        daily_spend_cap=Decimal(spend_cap) if spend_cap is not None else None,
        alert_threshold=Decimal(threshold),
        block_on_limit=block,
        usage=Usage("2026-01-31", sent, Decimal(spend), Decimal(0)),
        alert=Alert(triggered, datetime(2026, 1, 31, 9, tzinfo=UTC) if triggered else None),
    )


# -- the cap form ------------------------------------------------------------------------------


def test_sms_caps_are_whole_numbers_or_empty() -> None:
    assert parse_sms_cap("") is None
    assert parse_sms_cap(" 5,000 ") == 5000
    assert parse_sms_cap("0") == 0
    for bad in ("-1", "1.5", "ten", "1e3"):
        with pytest.raises(ValueError, match="not a whole number"):
            parse_sms_cap(bad)
    with pytest.raises(ValueError, match="at most"):
        parse_sms_cap("1000000000001")


def test_spend_caps_are_exact_amounts_with_at_most_six_decimals() -> None:
    assert parse_spend_cap("", "USD") is None
    assert parse_spend_cap("12.50", "USD") == Decimal("12.5")
    assert parse_spend_cap("0.000001", "USD") == Decimal("0.000001")
    assert parse_spend_cap("1,000 USD", "USD") == Decimal("1000")
    assert parse_spend_cap("0", "USD") == Decimal(0)
    with pytest.raises(ValueError, match="more than 6 decimals"):
        parse_spend_cap("0.0000001", "USD")
    with pytest.raises(ValueError, match="cannot be negative"):
        parse_spend_cap("-1", "USD")
    for bad in ("abc", "1e3", "NaN", "Infinity", "1,2.3.4"):
        with pytest.raises(ValueError, match="not an amount"):
            parse_spend_cap(bad, "USD")
    with pytest.raises(ValueError, match="at most"):
        parse_spend_cap("1" + "0" * 30, "USD")


def test_thresholds_are_shares_in_zero_one_or_percentages() -> None:
    assert parse_threshold("0.8") == Decimal("0.8")
    assert parse_threshold("1") == Decimal(1)
    assert parse_threshold("80 %") == Decimal("0.8")
    assert parse_threshold("12.3456%") == Decimal("0.123456")
    for bad in ("0", "-0.1", "1.01", "150%"):
        with pytest.raises(ValueError, match=r"outside \(0, 1\]"):
            parse_threshold(bad)
    with pytest.raises(ValueError, match="too precise"):
        parse_threshold("0.1234567")
    for bad in ("", "high", "1e-1"):
        with pytest.raises(ValueError, match="not a share"):
            parse_threshold(bad)


def test_the_form_lists_every_problem_at_once() -> None:
    form = parse_cap_form("x", "1.1234567", "2", True, "USD")
    assert form.values == {}
    assert len(form.errors) == 3
    ok = parse_cap_form("100", "", "0.5", False, "USD")
    assert ok.errors == ()
    assert ok.values == {
        "block_on_limit": False,
        "daily_sms_cap": 100,
        "daily_spend_cap": None,
        "alert_threshold": Decimal("0.5"),
    }


def test_only_changed_fields_are_sent_and_confirmed_old_to_new() -> None:
    now = limits(100, "5", threshold="0.8")
    wanted = {
        "daily_sms_cap": 100,
        "daily_spend_cap": Decimal("5.000"),  # the same amount written differently
        "alert_threshold": Decimal("0.9"),
        "block_on_limit": True,
    }
    changes = cap_changes(now, wanted)
    assert [c.field for c in changes] == ["alert_threshold", "block_on_limit"]
    assert update_arguments(changes) == {"alert_threshold": Decimal("0.9"), "block_on_limit": True}
    table = changes_frame(changes, "USD")
    assert table.to_dict("records") == [
        {"Field": "Alert threshold", "Now": "80 %", "After": "90 %"},
        {
            "Field": "Block on limit",
            "Now": "off (alert only)",
            "After": "on (refuse sends over a cap)",
        },
    ]
    removed = cap_changes(now, {"daily_spend_cap": None})
    assert changes_frame(removed, "USD").to_dict("records") == [
        {"Field": "Daily spend cap", "Now": "5.00 USD", "After": "no cap"}
    ]


def test_the_confirmation_warns_when_the_new_cap_blocks_at_once() -> None:
    now = limits(None, None, sent=50, spend="3")
    changes = cap_changes(now, {"daily_sms_cap": 40, "block_on_limit": True})
    notes = change_warnings(now, changes, "USD")
    assert any("every send is refused" in n and "50 messages" in n for n in notes)
    off = cap_changes(limits(10, block=True), {"block_on_limit": False})
    assert any("only raise the alert" in n for n in change_warnings(now, off, "USD"))


def test_cap_values_read_as_sentences() -> None:
    assert cap_text("daily_sms_cap", 1, "USD") == "1 message"
    assert cap_text("daily_sms_cap", 12000, "USD") == "12,000 messages"
    assert cap_text("daily_spend_cap", Decimal("0.048"), "USD") == "0.048 USD"
    assert cap_text("daily_spend_cap", None, "USD") == "no cap"
    assert cap_text("alert_threshold", Decimal("0.123456"), "USD") == "12.3456 %"
    assert percent(Decimal("1")) == "100 %"


# -- banners -----------------------------------------------------------------------------------


def test_no_banner_below_the_threshold_or_without_limits() -> None:
    assert limit_banners(None, "USD") == []
    assert limit_banners(limits(100, "10", sent=79, spend="7.99"), "USD") == []


def test_the_alert_banner_names_the_cap_crossed() -> None:
    (banner,) = limit_banners(limits(100, "10", sent=80, triggered=True), "USD")
    assert banner.kind == "warning"
    assert "80 % of a daily cap" in banner.text and "SMS 80 of 100 messages" in banner.text
    (spend,) = limit_banners(limits(None, "10", spend="9.5", triggered=True), "USD")
    assert "spend 9.50 USD of 10.00 USD" in spend.text
    # Raised earlier, and the cap raised since: no cap is at its alert point now, nothing to say
    # on every page (the Limits page says when it was raised).
    assert limit_banners(limits(1000, None, sent=80, triggered=True), "USD") == []


def test_no_banner_about_a_cap_that_no_longer_exists() -> None:
    # The service keeps today's alert "triggered" after the caps are removed: no banner then.
    assert limit_banners(limits(None, None, sent=1700, spend="85", triggered=True), "USD") == []
    # The SMS cap whose alert was raised removed; the spend cap kept, below its alert point.
    gone = limits(None, "1000", sent=1700, spend="85", triggered=True)
    assert limit_banners(gone, "USD") == []
    # The cap still there and still crossed: the banner stays, with today's figures.
    (kept,) = limit_banners(limits(2025, None, sent=1700, triggered=True), "USD")
    assert "SMS 1,700 of 2,025 messages" in kept.text


def test_the_alert_today_says_what_happened_when_the_caps_changed() -> None:
    at = "09:00"
    assert alert_state(limits(100, None, sent=80, triggered=True), at) == (
        "Raised",
        "At 09:00: usage reached 80 % of the daily SMS cap.",
    )
    state, detail = alert_state(limits(None, None, sent=80, triggered=True), at)
    assert state == "Raised earlier" and "There is no daily cap now" in detail
    state, detail = alert_state(limits(1000, None, sent=80, triggered=True), at)
    assert state == "Raised earlier" and "no cap is at its alert point now" in detail
    assert alert_state(limits(None, None), at)[0] == "No cap"
    assert alert_state(limits(100, None, sent=10), at)[0] == "Not raised"
    assert alert_state(limits(10, None, sent=10, block=True, triggered=True), at)[0] == "Blocked"


def test_a_cap_at_its_limit_blocks_only_with_block_on_limit() -> None:
    at_cap = limits(10, None, sent=10, block=True, triggered=True)
    assert blocked_caps(at_cap) == ["dailySmsCap"]
    (banner,) = limit_banners(at_cap, "USD")  # blocked says it all: no second banner
    assert banner.kind == "error" and "Sending is blocked" in banner.text
    assert "10 of 10 messages" in banner.text and "Finance → Limits" in banner.text
    assert blocked_caps(limits(10, None, sent=10, block=False)) == []
    assert blocked_caps(limits(0, None, block=True)) == ["dailySmsCap"]  # a cap of 0
    both = limits(10, "1", sent=10, spend="1", block=True)
    assert blocked_caps(both) == ["dailySmsCap", "dailySpendCap"]
    assert "daily spend cap is reached (1.00 USD of 1.00 USD)" in limit_banners(both, "USD")[0].text
    # Over the SMS cap and blocked, and the spend cap's threshold crossed: both are said.
    mixed = limits(10, "1", sent=10, spend="0.9", block=True, triggered=True)
    kinds = [b.kind for b in limit_banners(mixed, "USD")]
    assert kinds == ["error", "warning"]


# -- KPIs, periods, figures, exports -----------------------------------------------------------


def kpis(**overrides: object) -> Kpis:
    base = {
        "spend": Decimal("10.5"),
        "pending": Decimal("0.25"),
        "messages": 1200,
        "segments": 1500,
        "accepted": 1150,
        "delivered": 1100,
        "undelivered": 30,
        "failed": 20,
        "final": 1150,
        "billed": 1150,
        "clicked": 40,
        "clicks": 50,
        "delivery_rate": 1100 / 1150,
        "failure_rate": 20 / 1150,
        "undelivered_rate": 30 / 1150,
        "avg_cost": Decimal("0.009130"),
        "ctr": 40 / 1100,
        "median_ms": 2510.0,
        "p95_ms": 9000.5,
        "currency": "USD",
    }
    base.update(overrides)
    return Kpis(**base)  # type: ignore[arg-type]


def test_kpi_cards_show_exact_values_and_their_change() -> None:
    f = Filters(date(2026, 1, 11), date(2026, 1, 20))
    before = kpis(spend=Decimal("12"), messages=1000, median_ms=3000.0, avg_cost=None)
    cards = {c.name: c for c in kpi_cards(KpiComparison(kpis(), before, f), "USD")}
    assert (cards["spend"].label, cards["spend"].value, cards["spend"].delta) == (
        "Spend (USD)",
        "10.50",
        "-1.50",
    )
    assert cards["spend"].delta_color == "off"
    assert (cards["messages"].value, cards["messages"].delta) == ("1,200", "+200")
    assert cards["delivery_rate"].value == "95.65 %" and cards["delivery_rate"].delta == "+0.00 pp"
    assert cards["median_ms"].value == "2.51 s" and cards["median_ms"].delta == "-0.49 s"
    assert cards["median_ms"].delta_color == "inverse"
    assert cards["avg_cost"].value == "0.00913" and cards["avg_cost"].delta is None
    assert "2026-01-01 … 2026-01-10" in cards["spend"].help  # the previous period
    assert "12.00 USD" in cards["spend"].help


def test_presets_are_whole_utc_days_up_to_today() -> None:
    today = date(2026, 3, 15)
    assert preset_range("7d", today) == (date(2026, 3, 9), today)
    assert preset_range("90d", today) == (date(2025, 12, 16), today)
    assert preset_range("month", today) == (date(2026, 3, 1), today)


def test_the_usage_gauge_marks_the_alert_point_and_the_cap() -> None:
    fig = usage_gauge(3, 10, Decimal("0.8"), lambda n: f"{n:,}")
    assert [a.text for a in fig.layout.annotations] == ["alert 8", "cap 10"]
    assert [(s.x0, s.line.color) for s in fig.layout.shapes if s.type == "line"] == [
        (8.0, "#f0a30a"),
        (10.0, "#d62728"),
    ]
    assert fig.data[0].marker.color == "#2ca02c"
    assert usage_gauge(8, 10, Decimal("0.8"), str).data[0].marker.color == "#f0a30a"
    assert usage_gauge(10, 10, Decimal("0.8"), str).data[0].marker.color == "#d62728"


CHAR_PX = 6.6  # the gauge's 12 px labels: the widest digits and letters
GAUGE_PX = 200  # the plot's width in the narrowest column the Limits page gives it


def _label_boxes(fig) -> dict[str, list[tuple[float, float, str]]]:
    """Every text of a gauge, per row, as (left px, right px, text) across ``GAUGE_PX``."""
    rows: dict[str, list[tuple[float, float, str]]] = {}

    def add(row: str, x: float, low: float, high: float, text: str, anchor: str = "center"):
        at = (x - low) / (high - low) * GAUGE_PX
        width = len(text) * CHAR_PX
        left = {"left": at, "right": at - width}.get(anchor, at - width / 2)
        rows.setdefault(row, []).append((left, left + width, text))

    for trace in fig.data:
        if trace.type == "indicator":  # a bullet gauge: its ticks are the labels
            axis = trace.gauge.axis
            for value, text in zip(axis.tickvals, axis.ticktext, strict=True):
                add("ticks", value, *axis.range, text)
    axis = fig.layout.xaxis
    if axis.tickvals is not None:
        for value, text in zip(axis.tickvals, axis.ticktext, strict=True):
            add("ticks", value, *axis.range, text)
    for note in fig.layout.annotations or ():
        low, high = axis.range if note.xref == "x" else (0, 1)
        add(f"{note.yref}:{note.y}:{note.yanchor}", note.x, low, high, note.text, note.xanchor)
    return rows


@pytest.mark.parametrize("threshold", ["0.5", "0.8", "0.9", "0.95", "0.99", "1"])
@pytest.mark.parametrize(
    ("used", "cap", "text"),
    [
        (1580, 2025, lambda n: f"{n:,}"),
        (0, 2025, lambda n: f"{n:,}"),
        (2025, 2025, lambda n: f"{n:,}"),
        (3000, 2025, lambda n: f"{n:,}"),
        (Decimal("79"), Decimal("100"), amount),
        (Decimal("17349.5"), Decimal("20000.125"), amount),
    ],
)
def test_the_gauge_labels_never_overlap(threshold, used, cap, text) -> None:
    """The finding read "alert 1,620cap 2,025": the alert point and the cap are labelled
    apart, whatever the threshold (at 0.95 they are a few pixels from each other)."""
    fig = usage_gauge(used, cap, Decimal(threshold), text)
    rows = _label_boxes(fig)
    assert sum(len(r) for r in rows.values()) >= 1
    for row, boxes in rows.items():
        boxes.sort()
        for (_, right, a), (left, _, b) in itertools.pairwise(boxes):
            assert right + 4 <= left, f"{a!r} and {b!r} overlap on {row}"
    labels = [t for boxes in rows.values() for _, _, t in boxes]
    assert f"cap {text(cap)}" in labels
    if Decimal(threshold) < 1:
        assert any(t.startswith("alert ") for t in labels)


def test_money_and_counts_have_thousands_separators_and_every_decimal() -> None:
    assert money(Decimal("43195.156"), "USD") == "43,195.156 USD"
    assert money(Decimal("1234567.000001"), "USD") == "1,234,567.000001 USD"
    assert money(Decimal("-1234.5"), "USD") == "-1,234.50 USD"
    assert money(Decimal("999.9"), "USD") == "999.90 USD"
    assert money(Decimal("100"), "USD") == "100.00 USD"
    assert amount(Decimal("17349.1234")) == "17,349.1234"
    assert cap_text("daily_spend_cap", Decimal("2025"), "USD") == "2,025.00 USD"
    f = Filters(date(2026, 1, 11), date(2026, 1, 20))
    big = kpis(spend=Decimal("43195.156"), pending=Decimal("1200"), messages=1_234_567)
    before = kpis(spend=Decimal("12000"), messages=1000)
    cards = {c.name: c for c in kpi_cards(KpiComparison(big, before, f), "USD")}
    assert (cards["spend"].value, cards["spend"].delta) == ("43,195.156", "+31,195.156")
    assert cards["pending"].value == "1,200.00"
    assert cards["messages"].value == "1,234,567" and cards["messages"].delta == "+1,233,567"
    assert "12,000.00 USD" in cards["spend"].help


def test_the_reset_is_the_next_utc_midnight_in_the_users_zone() -> None:
    now = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
    assert next_reset(now, ZoneInfo("Asia/Shanghai")) == "2026-02-01 08:00:00 (00:00 UTC)"


def test_the_audit_trail_on_screen_and_in_exports() -> None:
    rows = [
        CapChange(2, "b" * 32, datetime(2026, 1, 31, 10, tzinfo=UTC), "Bo", "daily_spend_cap",
                  None, Decimal("2.500000")),
        CapChange(1, "a" * 32, datetime(2026, 1, 31, 9, tzinfo=UTC), "Al", "daily_sms_cap",
                  None, 100),
    ]  # fmt: skip
    shown = audit_frame(rows, ZoneInfo("Europe/Paris"), "USD")
    assert list(shown["When"]) == ["2026-01-31 11:00:00", "2026-01-31 10:00:00"]
    assert list(shown["After"]) == ["2.50 USD", "100 messages"]
    exported = list(csv.DictReader(io.StringIO(to_csv(audit_export(rows)).decode())))
    assert exported[0]["changed_at"] == "2026-01-31T10:00:00Z"
    assert exported[0]["after"] == "2.5" and exported[0]["before"] == ""
    assert exported[1]["field"] == "daily_sms_cap" and exported[1]["after"] == "100"
