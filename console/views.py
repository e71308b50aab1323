"""Plain functions behind the pages: formats, estimates, tables. No Streamlit here.

Money is shown exactly with its currency; times in the user's zone on screen and in UTC
(ISO-8601 with ``Z``) in exports.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import phonenumbers

from kedacore.api.types import (
    FINAL_STATUSES,
    Balance,
    Limits,
    MessageStatus,
)
from kedacore.exports import to_csv
from kedacore.ledger import LedgerEvent, LedgerMessage
from kedacore.money import normalize
from kedacore.phones import NumberReport, parse_numbers, split_numbers
from kedacore.segments import MAX_SEGMENTS, count_segments, price
from kedacore.wiretime import format_time

URL_RE = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
SHORT_CODE_LENGTH = 7  # the gateway's codes; the estimate assumes links of this shape
STATUS_STYLE = {  # colour and Material icon of each status, for badges and headings
    "QUEUED": ("gray", ":material/schedule:"),
    "SENT": ("blue", ":material/outbox:"),
    "DELIVERED": ("green", ":material/check_circle:"),
    "UNDELIVERED": ("orange", ":material/sms_failed:"),
    "FAILED": ("red", ":material/cancel:"),
    "CLICKED": ("violet", ":material/ads_click:"),
}


# -- user text in Markdown -----------------------------------------------------------------

WORD_JOINER = "\u2060"  # invisible, no line break, not a space: splits what would autolink
_ASCII_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_AUTOLINK_STARTS = re.compile(r"(:|@)|(www)(?=\.)", re.IGNORECASE)
_LINE_BREAKS = re.compile(r"\r\n?|\n|[\v\f\x1c-\x1e\x85\u2028\u2029]")


def plain(text: object) -> str:
    """Text a person typed (or a file or the service brought) as Markdown that shows it as is.

    For embedding in any string Streamlit renders as Markdown: ``st.markdown``, ``st.caption``,
    ``st.error`` and the other alerts, ``st.toast``, ``st.progress`` text, widget labels,
    ``help=`` tooltips, metric labels. Every ASCII punctuation character is backslash-escaped
    (no link, image, emphasis, code, heading, list, HTML, math, ``:color[…]`` or
    ``:material/…:``), and an invisible word joiner (U+2060) follows every ``:`` and ``@`` and
    splits ``www.`` — Streamlit's Markdown (remark-gfm) turns a bare ``https://…``,
    ``www.…`` or ``name@host`` into a live link *after* escapes are read, so escaping alone is
    not enough. Line breaks become spaces (the text stays in its sentence). Never use it for
    text Streamlit shows plainly (``st.text``, ``st.code``, table cells, selectbox options,
    input values): there the backslashes would show.
    """
    value = _LINE_BREAKS.sub(" ", str(text))
    value = _AUTOLINK_STARTS.sub(lambda m: (m.group(1) or m.group(2)) + WORD_JOINER, value)
    return _ASCII_PUNCTUATION.sub(r"\\\1", value)


def status_badge(status: str) -> str:
    """A status as a coloured Streamlit markdown badge."""
    color, icon = STATUS_STYLE.get(status, ("gray", ""))
    return f":{color}-badge[{icon} {plain(status)}]"


# -- money and time ----------------------------------------------------------------------


def money(amount: Decimal | None, currency: str) -> str:
    """An exact amount with its currency, at least 2 decimals and thousands grouped:
    ``0.048 USD``, ``100.00 USD``, ``43,195.156 USD`` (every decimal kept)."""
    if amount is None:
        return "—"
    text = format(normalize(amount), ",f")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')} {currency}"


def zone(name: str | None) -> ZoneInfo:
    """The user's time zone (the browser's), UTC when unknown."""
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(value: datetime | None, tz: ZoneInfo) -> str:
    """A time in the user's zone, to the second (``2026-01-31 14:05:09``)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def utc_iso(value: datetime | None) -> str:
    """A time as UTC ISO-8601 with ``Z`` (exports)."""
    if value is None:
        return ""
    return format_time(value if value.tzinfo else value.replace(tzinfo=UTC)) or ""


# -- sending -----------------------------------------------------------------------------


def country_label(code: str, price_per_segment: Decimal | None, currency: str) -> str:
    """``US (+1) · 0.05 USD per segment``."""
    calling = phonenumbers.country_code_for_region(code)
    prefix = f" (+{calling})" if calling else ""
    cost = f" · {money(price_per_segment, currency)} per segment" if price_per_segment else ""
    return f"{code}{prefix}{cost}"


def check_numbers(text: str, country: str) -> NumberReport:
    """Numbers pasted one per line (or comma separated), parsed for ``country``."""
    return parse_numbers(split_numbers(text), country)


def rewritten_for_estimate(content: str, short_base: str) -> str:
    """The text as trackClick sends it: each URL replaced by a short link of the usual length."""
    placeholder = f"{short_base.rstrip('/')}/s/{'x' * SHORT_CODE_LENGTH}"
    return URL_RE.sub(placeholder, content)


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a send will cost, computed like the service's charge (kedacore.segments)."""

    characters: int
    encoding: str
    segments: int
    per_segment: int
    remaining: int
    ucs2_characters: tuple[str, ...]
    recipients: int
    price_per_segment: Decimal | None
    currency: str
    urls_rewritten: int

    @property
    def too_long(self) -> bool:
        return self.segments > MAX_SEGMENTS

    @property
    def total(self) -> Decimal | None:
        if self.price_per_segment is None:
            return None
        return price(self.price_per_segment, self.segments, self.recipients)


def estimate_send(
    content: str,
    *,
    recipients: int,
    price_per_segment: Decimal | None,
    currency: str,
    track_click: bool = False,
    short_base: str = "",
) -> Estimate:
    """Segments and price of one text to ``recipients`` numbers (URLs shortened with trackClick)."""
    urls = len(URL_RE.findall(content)) if track_click else 0
    text = rewritten_for_estimate(content, short_base) if urls else content
    info = count_segments(text)
    return Estimate(
        characters=len(content),
        encoding=info.encoding,
        segments=info.segments,
        per_segment=info.per_segment,
        remaining=info.remaining,
        ucs2_characters=info.ucs2_characters,
        recipients=recipients,
        price_per_segment=price_per_segment,
        currency=currency,
        urls_rewritten=urls,
    )


def describe_characters(chars: Sequence[str], limit: int = 12) -> str:
    """The characters that force UCS-2, as Markdown: ``“é” U+00E9, “😀” U+1F600``."""
    shown = [
        f"“{plain(c)}” U+{ord(c):04X}" if c.isprintable() else f"U+{ord(c):04X}" for c in chars
    ]
    more = f" and {len(shown) - limit} more" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


@dataclass(frozen=True, slots=True)
class Headroom:
    """What today's caps and the balance still allow, and whether a send fits."""

    sms_left: int | None  # None: no SMS cap
    spend_left: Decimal | None  # None: no spend cap
    balance: Decimal
    problems: tuple[str, ...]  # why the send would be refused or raise the alert

    @property
    def fits(self) -> bool:
        return not self.problems


def headroom(limits: Limits, balance: Balance, messages: int, total: Decimal | None) -> Headroom:
    """Headroom under today's caps for a send of ``messages`` costing ``total``."""
    usage = limits.usage
    sms_left = None
    spend_left = None
    problems = []
    outcome = (
        "KedaSMS will refuse the send (caps block sends)."
        if limits.block_on_limit
        else "It will go through and raise the usage alert."
    )
    if limits.daily_sms_cap is not None:
        sms_left = max(limits.daily_sms_cap - usage.sms_sent, 0)
        if messages > sms_left:
            problems.append(
                f"{messages} messages exceed what is left under today's SMS cap "
                f"({sms_left} of {limits.daily_sms_cap}). {outcome}"
            )
    if limits.daily_spend_cap is not None:
        spend_left = max(limits.daily_spend_cap - usage.spend, Decimal(0))
        if total is not None and total > spend_left:
            problems.append(
                f"{money(total, balance.currency)} exceeds what is left under today's spend "
                f"cap ({money(spend_left, balance.currency)}). {outcome}"
            )
    if total is not None and total > balance.balance:
        problems.append(
            f"{money(total, balance.currency)} exceeds the balance of "
            f"{money(balance.balance, balance.currency)}. KedaSMS will refuse the send: "
            "top up first."
        )
    return Headroom(sms_left, spend_left, balance.balance, tuple(problems))


# -- status ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusRow:
    """One message as the Status page shows it, from the ledger or from the status API."""

    msgid: str
    task_id: str | None
    recipient: str
    sender: str | None
    status: str
    created_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    final_at: datetime | None
    latency_ms: int | None
    cost: Decimal | None
    currency: str
    clicks: int | None
    last_click_at: datetime | None
    source: str  # "ledger" or "status API"

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @classmethod
    def from_ledger(cls, m: LedgerMessage) -> StatusRow:
        return cls(
            msgid=m.msgid,
            task_id=m.task_id,
            recipient=m.recipient,
            sender=m.sender,
            status=m.status,
            created_at=m.created_at,
            sent_at=m.sent_at,
            delivered_at=m.delivered_at,
            final_at=m.final_at,
            latency_ms=m.delivery_ms,
            cost=m.cost,
            currency=m.currency,
            clicks=m.clicks,
            last_click_at=m.last_click_at,
            source="ledger",
        )

    @classmethod
    def from_status(cls, s: MessageStatus, currency: str) -> StatusRow:
        latency = None
        if s.delivered_time and s.sent_time:
            latency = int((s.delivered_time - s.sent_time).total_seconds() * 1000)
        final_at = s.delivered_time if s.status == "DELIVERED" else None
        if final_at is None and s.status in FINAL_STATUSES:
            final_at = s.updated_time
        return cls(
            msgid=s.msgid,
            task_id=s.task_id,
            recipient=s.recipient,
            sender=s.sender,
            status=s.status,
            created_at=s.created_time,
            sent_at=s.sent_time,
            delivered_at=s.delivered_time,
            final_at=final_at,
            latency_ms=latency,
            cost=s.cost,
            currency=currency,
            clicks=None,
            last_click_at=None,
            source="status API",
        )


def status_counts(rows: Iterable[StatusRow]) -> dict[str, int]:
    """How many messages are in each status, in the order of the lifecycle."""
    counts = Counter(r.status for r in rows)
    order = ["QUEUED", "SENT", "DELIVERED", "UNDELIVERED", "FAILED"]
    return {s: counts[s] for s in order + sorted(set(counts) - set(order)) if counts[s]}


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else round(ms / 1000, 3)


def status_frame(rows: Sequence[StatusRow], tz: ZoneInfo) -> pd.DataFrame:
    """The Status table: local times, latency in seconds, exact cost as text."""
    return pd.DataFrame(
        {
            "Status": [r.status for r in rows],
            "Recipient": [r.recipient for r in rows],
            "Final": [local_time(r.final_at, tz) for r in rows],
            "Latency (s)": pd.array([_seconds(r.latency_ms) for r in rows], dtype="Float64"),
            "Cost": [money(r.cost, r.currency) if r.cost is not None else "" for r in rows],
            "Clicks": pd.array([r.clicks for r in rows], dtype="Int64"),
            "msgid": [r.msgid for r in rows],
            "Task": [r.task_id or "" for r in rows],
            "Sender": [r.sender or "" for r in rows],
            "Accepted": [local_time(r.created_at, tz) for r in rows],
            "Sent": [local_time(r.sent_at, tz) for r in rows],
            "Last click": [local_time(r.last_click_at, tz) for r in rows],
        }
    )


def status_csv(rows: Sequence[StatusRow]) -> bytes:
    """The Status table for export: UTC times, exact amounts, wire-like column names.

    Written by ``kedacore.exports`` (text that could run as a spreadsheet formula gets a
    leading ``'``, so E.164 recipients read ``'+12065550123``; numbers stay numbers).
    """
    frame = pd.DataFrame(
        {
            "msgid": [r.msgid for r in rows],
            "task_id": [r.task_id or "" for r in rows],
            "recipient": [r.recipient for r in rows],
            "sender": [r.sender or "" for r in rows],
            "status": [r.status for r in rows],
            "created_utc": [utc_iso(r.created_at) for r in rows],
            "sent_utc": [utc_iso(r.sent_at) for r in rows],
            "delivered_utc": [utc_iso(r.delivered_at) for r in rows],
            "final_utc": [utc_iso(r.final_at) for r in rows],
            "latency_ms": pd.array([r.latency_ms for r in rows], dtype="Int64"),
            "cost": [r.cost for r in rows],
            "currency": [r.currency for r in rows],
            "clicks": pd.array([r.clicks for r in rows], dtype="Int64"),
            "last_click_utc": [utc_iso(r.last_click_at) for r in rows],
            "source": [r.source for r in rows],
        }
    )
    return to_csv(frame)


def timeline(row: StatusRow, events: Sequence[LedgerEvent]) -> list[tuple[datetime, str, str]]:
    """A message's story as ``(when, what, detail)``, oldest first."""
    items: list[tuple[datetime, str, str]] = []
    if row.created_at:
        items.append((row.created_at, "QUEUED", "accepted by KedaSMS; price frozen"))
    if row.sent_at:
        cost = f"; charged {money(row.cost, row.currency)}" if row.cost is not None else ""
        items.append((row.sent_at, "SENT", f"handed to the carrier{cost}"))
    if row.final_at and row.status in FINAL_STATUSES:
        detail = {
            "DELIVERED": "delivered to the handset",
            "UNDELIVERED": "the carrier could not deliver it (charged)",
            "FAILED": "refused by the channel (nothing charged)",
        }[row.status]
        if row.status == "DELIVERED" and row.latency_ms is not None:
            detail += f" {row.latency_ms / 1000:.3f} s after it was sent"
        items.append((row.final_at, row.status, detail))
    for e in events:
        what = "click" if e.status == "CLICKED" else f"callback {e.status}"
        items.append((e.received_at, what, f"callback received by this console ({e.outcome})"))
    return sorted(items, key=lambda item: item[0])


def timeline_frame(row: StatusRow, events: Sequence[LedgerEvent], tz: ZoneInfo) -> pd.DataFrame:
    """The timeline as a table (local time, with the UTC time beside it)."""
    items = timeline(row, events)
    return pd.DataFrame(
        {
            "When": [local_time(when, tz) for when, _, _ in items],
            "Event": [what for _, what, _ in items],
            "Detail": [detail for _, _, detail in items],
            "UTC": [utc_iso(when) for when, _, _ in items],
        }
    )
