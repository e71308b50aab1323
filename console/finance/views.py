"""Plain functions behind the Finance pages: periods, KPI cards, the cap form, the audit table.

No Streamlit here (tests call these directly). Aggregation is ``kedacore.analytics``'s; this
module only formats what it returns and checks what a person types into the cap form.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import plotly.graph_objects as go

from console.finance.alerts import percent
from console.views import local_time, money
from kedacore.analytics import Filters, KpiComparison
from kedacore.api.types import Limits
from kedacore.ledger import CapChange
from kedacore.ledger.caps import CAP_FIELDS
from kedacore.money import MAX_MICROS, MoneyError, normalize, to_decimal, to_micros

# -- periods -----------------------------------------------------------------------------------

PRESETS = {
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "month": "This month",
    "custom": "Custom range",
}


def preset_range(preset: str, today: date) -> tuple[date, date]:
    """The first and last UTC day of a preset period (both included)."""
    if preset == "month":
        return today.replace(day=1), today
    days = {"7d": 7, "30d": 30, "90d": 90}[preset]
    return today - timedelta(days=days - 1), today


def period_label(start: date, end: date) -> str:
    """``2026-01-01 … 2026-01-30 (30 days)``."""
    days = (end - start).days + 1
    return f"{start.isoformat()} … {end.isoformat()} ({days} day{'s' if days != 1 else ''})"


def previous_range(filters: Filters) -> tuple[date, date]:
    """The previous period's first and last day (dates-only filters)."""
    prev = filters.previous()
    assert isinstance(prev.start, date) and isinstance(prev.end, date)
    return prev.start, prev.end


# -- KPI cards ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KpiCard:
    """One ``st.metric``: label, value, delta (text or None) and how to colour the delta."""

    name: str
    label: str
    value: str
    delta: str | None
    delta_color: str  # "normal": up is good; "inverse": up is bad; "off": neither
    help: str


# name → (label, kind, delta colour). Spend going up is neither good nor bad for the page to
# judge; costs, failures and latency going up are bad.
KPI_CARDS: dict[str, tuple[str, str, str]] = {
    "spend": ("Spend", "money", "off"),
    "messages": ("Messages", "count", "off"),
    "segments": ("Segments", "count", "off"),
    "avg_cost": ("Avg cost", "money", "inverse"),
    "pending": ("Pending", "money", "off"),
    "delivery_rate": ("Delivery rate", "rate", "normal"),
    "failure_rate": ("Failure rate", "rate", "inverse"),
    "ctr": ("Click-through rate", "rate", "normal"),
    "median_ms": ("Median delivery time", "ms", "inverse"),
    "p95_ms": ("p95 delivery time", "ms", "inverse"),
}
# The cards in rows, by what they measure: money; volume and delivery; clicks and speed. Four
# at most to a row, so that a label like "Median delivery time" reads whole at 1280 px.
KPI_ROWS: tuple[tuple[str, ...], ...] = (
    ("spend", "avg_cost", "pending"),
    ("messages", "segments", "delivery_rate", "failure_rate"),
    ("ctr", "median_ms", "p95_ms"),
)
KPI_HELP = {
    "spend": "Money charged for messages the channel accepted (SENT, DELIVERED, UNDELIVERED).",
    "messages": "Messages created in the period (one per recipient).",
    "segments": "Segments billed, where the ledger knows them.",
    "avg_cost": "Average cost per message: spend ÷ messages whose charge is known.",
    "pending": "Frozen for messages not charged yet (not part of Spend).",
    "delivery_rate": "Delivered ÷ final (DELIVERED + UNDELIVERED + FAILED).",
    "failure_rate": "Refused by the channel (FAILED) ÷ final; FAILED messages cost nothing.",
    "ctr": "Messages clicked at least once ÷ delivered.",
    "median_ms": "SENT → DELIVERED, by the service's clock.",
    "p95_ms": "95 % of delivered messages arrived within this time.",
}


def amount(value: Decimal) -> str:
    """An exact amount without its currency, at least 2 decimals: ``0.048``, ``12.50``."""
    return money(value, "").strip()


def _value(kind: str, value: Any, currency: str) -> str:
    if value is None:
        return "—"
    if kind == "money":
        return amount(value) if currency else money(value, currency)
    if kind == "count":
        return f"{value:,}"
    if kind == "rate":
        return f"{value * 100:.2f} %"
    return seconds(value)


def seconds(ms: float) -> str:
    """Milliseconds as seconds for a person: ``2.51 s``, ``0.35 s``."""
    return f"{ms / 1000:,.2f} s"


def _delta(kind: str, change: Any, currency: str) -> str | None:
    if change is None:
        return None
    if kind == "money":
        return ("+" if change >= 0 else "-") + amount(abs(change))
    if kind == "count":
        return f"{change:+,}"
    if kind == "rate":
        return f"{change * 100:+.2f} pp"
    return f"{change / 1000:+,.2f} s"


def kpi_cards(comparison: KpiComparison, currency: str) -> list[KpiCard]:
    """The Spend page's KPIs, each with its change against the previous period."""
    start, end = previous_range(comparison.filters)
    cards = []
    for name, (label, kind, color) in KPI_CARDS.items():
        d = comparison.delta(name)
        before = _value(kind, d.previous, currency)
        if kind == "money" and d.previous is not None:
            before = money(d.previous, currency)
        rel = f" ({d.relative * 100:+.1f} %)" if d.relative is not None else ""
        if kind == "money" and currency:
            label = f"{label} ({currency})"  # the unit in the label keeps the value short
        cards.append(
            KpiCard(
                name=name,
                label=label,
                value=_value(kind, d.current, currency),
                delta=_delta(kind, d.change, currency),
                delta_color=color,
                help=f"{KPI_HELP[name]}  \nPrevious period ({start} … {end}): {before}{rel}.",
            )
        )
    return cards


# -- the cap form ------------------------------------------------------------------------------

MAX_SMS_CAP = 10**12  # the service's own bound
FIELD_LABELS = {
    "daily_sms_cap": "Daily SMS cap",
    "daily_spend_cap": "Daily spend cap",
    "alert_threshold": "Alert threshold",
    "block_on_limit": "Block on limit",
}


def cap_text(field: str, value: Any, currency: str) -> str:
    """A cap value for a person: ``5,000 messages``, ``2.50 USD``, ``80 %``, ``on``, ``no cap``."""
    if field == "block_on_limit":
        return "on (refuse sends over a cap)" if value else "off (alert only)"
    if value is None:
        return "no cap"
    if field == "daily_sms_cap":
        return f"{int(value):,} message{'' if int(value) == 1 else 's'}"
    if field == "daily_spend_cap":
        return money(Decimal(value), currency)
    return percent(Decimal(value))


def form_text(field: str, value: Any) -> str:
    """A cap value as the form's text box shows it (empty: no cap)."""
    if value is None:
        return ""
    if field == "daily_sms_cap":
        return str(int(value))
    return format(normalize(Decimal(value)), "f")


def parse_sms_cap(text: str) -> int | None:
    """The SMS cap typed in the form: empty → no cap; else a whole number ≥ 0."""
    raw = text.strip().replace(",", "").replace("_", "").replace(" ", "")
    if not raw:
        return None
    if not raw.isdigit():
        raise ValueError(
            f"Daily SMS cap: “{text.strip()}” is not a whole number of messages. Enter 0 or "
            "more (e.g. 5000), or leave it empty for no cap."
        )
    value = int(raw)
    if value > MAX_SMS_CAP:
        raise ValueError(f"Daily SMS cap: at most {MAX_SMS_CAP:,} messages.")
    return value


def parse_spend_cap(text: str, currency: str) -> Decimal | None:
    """The spend cap typed in the form: empty → no cap; else an amount ≥ 0, ≤ 6 decimals."""
    raw = text.strip().replace(",", "").replace(" ", "")
    if raw.upper().endswith(currency.upper()):
        raw = raw[: -len(currency)]
    if not raw:
        return None
    try:
        amount = to_decimal(raw) if "e" not in raw.lower() else None
    except MoneyError:
        amount = None
    if amount is None:
        raise ValueError(
            f"Daily spend cap: “{text.strip()}” is not an amount. Enter it in {currency} "
            "like 25 or 12.50 (a dot for decimals), or leave it empty for no cap."
        )
    if amount < 0:
        raise ValueError("Daily spend cap: the amount cannot be negative.")
    if to_micros_safe(amount) is None:
        if amount * 1_000_000 > MAX_MICROS:
            raise ValueError(f"Daily spend cap: at most {MAX_MICROS // 10**6:,} {currency}.")
        raise ValueError(
            f"Daily spend cap: {raw} has more than 6 decimals; amounts are exact to "
            f"0.000001 {currency}."
        )
    return normalize(amount)


def to_micros_safe(amount: Decimal) -> int | None:
    """Micro-units, or None when the amount is out of range or too precise."""
    try:
        return to_micros(amount)
    except MoneyError:
        return None


def parse_threshold(text: str) -> Decimal:
    """The alert threshold: a share in (0, 1] (``0.8``) or a percentage (``80 %``)."""
    raw = text.strip().replace(" ", "")
    is_percent = raw.endswith("%")
    raw = raw.rstrip("%")
    problem = (
        f"Alert threshold: “{text.strip()}” is not a share of a cap. Enter a number above 0 "
        "and at most 1 (0.8 means 80 %), or a percentage like 80 %."
    )
    try:
        value = to_decimal(raw) if raw and "e" not in raw.lower() else None
    except MoneyError:
        value = None
    if value is None:
        raise ValueError(problem)
    if is_percent:
        value = value / 100
    if not 0 < value <= 1:
        raise ValueError(
            f"Alert threshold: {text.strip()} is outside (0, 1]. It must be above 0 and at "
            "most 1 (100 %)."
        )
    if to_micros_safe(value) is None:
        raise ValueError(
            f"Alert threshold: {text.strip()} is too precise; use at most 6 decimals "
            "(or 4 in a percentage)."
        )
    return normalize(value)


@dataclass(frozen=True, slots=True)
class CapForm:
    """What the form asks for, checked: the values, or every error found."""

    values: dict[str, Any]
    errors: tuple[str, ...]


def parse_cap_form(
    sms_cap: str, spend_cap: str, threshold: str, block: bool, currency: str
) -> CapForm:
    """Check the four fields; each problem becomes one sentence saying what to type."""
    values: dict[str, Any] = {"block_on_limit": bool(block)}
    errors = []
    for field, parse in (
        ("daily_sms_cap", lambda: parse_sms_cap(sms_cap)),
        ("daily_spend_cap", lambda: parse_spend_cap(spend_cap, currency)),
        ("alert_threshold", lambda: parse_threshold(threshold)),
    ):
        try:
            values[field] = parse()
        except ValueError as exc:
            errors.append(str(exc))
    return CapForm(values if not errors else {}, tuple(errors))


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of a cap change: its values before and after."""

    field: str
    before: Any
    after: Any


def cap_changes(current: Limits, wanted: dict[str, Any]) -> list[FieldChange]:
    """The fields whose wanted value differs from the current one (in the fields' order)."""
    out = []
    for field in CAP_FIELDS:
        if field not in wanted:
            continue
        before, after = getattr(current, field), wanted[field]
        same = (
            before == after
            if before is None or after is None or field == "block_on_limit"
            else Decimal(before) == Decimal(after)
        )
        if not same:
            out.append(FieldChange(field, before, after))
    return out


def changes_frame(changes: Sequence[FieldChange], currency: str) -> pd.DataFrame:
    """The confirmation's table: field, now, after the change."""
    return pd.DataFrame(
        {
            "Field": [FIELD_LABELS[c.field] for c in changes],
            "Now": [cap_text(c.field, c.before, currency) for c in changes],
            "After": [cap_text(c.field, c.after, currency) for c in changes],
        }
    )


def update_arguments(changes: Sequence[FieldChange]) -> dict[str, Any]:
    """``client.limits.update`` keyword arguments: only the changed fields."""
    return {c.field: c.after for c in changes}


def change_warnings(current: Limits, changes: Sequence[FieldChange], currency: str) -> list[str]:
    """What a change will do today that a person may not expect."""
    after = {c.field: c.after for c in changes}
    block = after.get("block_on_limit", current.block_on_limit)
    sms = after.get("daily_sms_cap", current.daily_sms_cap)
    spend = after.get("daily_spend_cap", current.daily_spend_cap)
    usage = current.usage
    notes = []
    if block and sms is not None and usage.sms_sent >= sms:
        notes.append(
            f"Today {usage.sms_sent:,} messages are already sent: with an SMS cap of "
            f"{sms:,}, every send is refused until the next UTC day."
        )
    if block and spend is not None and usage.spend >= spend:
        notes.append(
            f"Today's spend is already {money(usage.spend, currency)}: with a spend cap of "
            f"{money(spend, currency)}, every send is refused until the next UTC day."
        )
    if not block and "block_on_limit" in after:
        notes.append("With blocking off, sends over a cap go through and only raise the alert.")
    return notes


# -- today's usage -----------------------------------------------------------------------------


def next_reset(now: datetime, tz: ZoneInfo) -> str:
    """When the daily usage starts again (the next UTC midnight), in the user's zone."""
    midnight = datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(), UTC)
    return f"{local_time(midnight, tz)} ({midnight:%H:%M} UTC)"


def usage_gauge(
    used: Decimal | int, cap: Decimal | int, threshold: Decimal, text: Callable[[Decimal], str]
) -> go.Figure:
    """Today's usage against a cap as a bar: green, amber from the alert threshold, red at the cap.

    Two lines mark the alert point (amber, dashed) and the cap (red), each labelled exactly with
    ``text``: the alert above the bar, the cap below it, each ending at its line (or starting
    there, in the left half). On one row they ran into each other ("alert 1,620cap 2,025").
    The bar is plotted as float (a gauge has no use for the sixth decimal).
    """
    used_d, cap_d = Decimal(used), Decimal(cap)
    alert = normalize(threshold * cap_d)
    top = float(max(cap_d, used_d)) * 1.08 or 1.0
    over = used_d >= cap_d
    alerting = used_d > 0 and used_d >= alert
    color = "#d62728" if over else ("#f0a30a" if alerting else "#2ca02c")
    fig = go.Figure(
        go.Bar(
            x=[float(used_d)],
            y=[0],
            orientation="h",
            width=0.5,
            marker_color=color,
            hovertemplate=f"Today: {text(used_d)}<extra></extra>",
        )
    )

    def band(low: float, high: float, fill: str) -> None:
        if high > low:
            fig.add_shape(
                type="rect", x0=low, x1=high, y0=-0.5, y1=0.5, fillcolor=fill,
                line_width=0, layer="below",
            )  # fmt: skip

    def mark(at: Decimal, line: dict[str, Any], label: str, above: bool) -> None:
        x = float(at)
        fig.add_shape(type="line", x0=x, x1=x, y0=-0.5, y1=0.5, line=line)
        fig.add_annotation(
            x=x, xref="x", y=1 if above else 0, yref="paper",
            yanchor="bottom" if above else "top", xanchor="right" if x >= top / 2 else "left",
            text=label, showarrow=False, font={"size": 12}, xshift=0,
        )  # fmt: skip

    band(0, float(alert), "#e8f5e9")
    band(float(alert), float(cap_d), "#fff3e0")
    band(float(cap_d), top, "#ffebee")
    if 0 < alert < cap_d:
        mark(alert, {"color": "#f0a30a", "width": 2, "dash": "dot"}, f"alert {text(alert)}", True)
    mark(cap_d, {"color": "#d62728", "width": 3}, f"cap {text(cap_d)}", False)
    fig.update_xaxes(range=[0, top], visible=False, fixedrange=True)
    fig.update_yaxes(range=[-0.5, 0.5], visible=False, fixedrange=True)
    fig.update_layout(
        height=84,
        margin={"l": 4, "r": 4, "t": 22, "b": 22},
        showlegend=False,
        plot_bgcolor="rgba(0,0,0,0)",
        paper_bgcolor="rgba(0,0,0,0)",
    )
    return fig


# -- the audit trail ---------------------------------------------------------------------------


def audit_frame(rows: Sequence[CapChange], tz: ZoneInfo, currency: str) -> pd.DataFrame:
    """The audit trail on screen: newest first, local time, values for a person."""
    return pd.DataFrame(
        {
            "When": [local_time(r.changed_at, tz) for r in rows],
            "Who": [r.changed_by for r in rows],
            "Field": [FIELD_LABELS.get(r.field, r.field) for r in rows],
            "Before": [cap_text(r.field, r.before, currency) for r in rows],
            "After": [cap_text(r.field, r.after, currency) for r in rows],
            "Change": [r.change_id[:8] for r in rows],
        },
        columns=["When", "Who", "Field", "Before", "After", "Change"],
    )


def _raw(value: Any) -> Any:
    # Exports keep the machine value: exact decimals, booleans, and empty for "no cap".
    return normalize(value) if isinstance(value, Decimal) else value


def audit_export(rows: Sequence[CapChange]) -> pd.DataFrame:
    """The audit trail for CSV/XLSX: UTC times, field names as the API has them, raw values."""
    return pd.DataFrame(
        {
            "changed_at": [r.changed_at for r in rows],
            "changed_by": [r.changed_by for r in rows],
            "field": [r.field for r in rows],
            "before": [_raw(r.before) for r in rows],
            "after": [_raw(r.after) for r in rows],
            "change_id": [r.change_id for r in rows],
        },
        columns=["changed_at", "changed_by", "field", "before", "after", "change_id"],
    )
