"""What a campaign will send and cost: the preview of every row, the requests, the funds check.

1. :func:`preview_campaign` — per row of a :class:`~kedacore.recipients.RecipientFile`: E.164,
   country, rendered text, segments, encoding and price, or the reasons it will not be sent;
2. :func:`plan_requests` — the rows to send grouped by (country, text, sender) into requests
   of at most 1,000 numbers, each with its exact cost;
3. :func:`check_funds` — whether the plan fits the balance and today's caps, and what blocks
   it by how much.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pandas as pd
import phonenumbers

from kedacore.ledger.records import PlannedBatch
from kedacore.money import money_str, normalize, to_micros
from kedacore.phones import ParsedNumber, parse_number
from kedacore.recipients import (
    RecipientFile,
    RecipientsError,
    Template,
    check_sender,
    column_key,
    parse_template,
)
from kedacore.segments import MAX_SEGMENTS, count_segments
from kedacore.types import Balance, Limits, Pricing

MAX_PER_REQUEST = 1000

# Problem kinds, as listed in the preview and the downloadable CSV.
BROKEN_ROW = "broken_row"
INVALID_NUMBER = "invalid_number"
WRONG_COUNTRY = "wrong_country"
UNKNOWN_COUNTRY = "unknown_country"
DUPLICATE = "duplicate"
MISSING_VARIABLE = "missing_variable"
EMPTY_TEXT = "empty_text"
TOO_LONG = "too_long"
UNPRICED_COUNTRY = "unpriced_country"
INVALID_SENDER = "invalid_sender"


@dataclass(frozen=True, slots=True)
class PreviewRow:
    """One recipient that will be sent: where, what, and what it costs."""

    row: int
    phone: str
    e164: str
    country: str
    sender: str | None
    text: str
    segments: int
    encoding: str
    price_per_segment: Decimal

    @property
    def price(self) -> Decimal:
        return normalize(self.price_per_segment * self.segments)


@dataclass(frozen=True, slots=True)
class Problem:
    """Why one row (or part of it) will not be sent."""

    row: int
    phone: str
    kind: str
    reason: str


PROBLEM_COLUMNS = ["row", "phone", "problem", "reason"]
PREVIEW_COLUMNS = ["row", "phone", "e164", "country", "sender", "text", "segments", "encoding"]


@dataclass(frozen=True, slots=True)
class CampaignPreview:
    """Every row of the file: the ones to send (``rows``) and the ``problems`` of the others."""

    template: Template
    sender: str | None
    currency: str
    rows: tuple[PreviewRow, ...]
    problems: tuple[Problem, ...]
    rows_read: int  # data rows in the file, broken ones included

    @property
    def total(self) -> Decimal:
        return normalize(sum((r.price for r in self.rows), Decimal(0)))

    @property
    def rejected_rows(self) -> int:
        return len({p.row for p in self.problems})

    def frame(self) -> pd.DataFrame:
        """The rows to send, one per recipient (price as an exact Decimal)."""
        data = [
            (r.row, r.phone, r.e164, r.country, r.sender, r.text, r.segments, r.encoding, r.price)
            for r in self.rows
        ]
        return pd.DataFrame(data, columns=[*PREVIEW_COLUMNS, "price"])

    def problems_frame(self) -> pd.DataFrame:
        """Every problem, by row number."""
        data = [(p.row, p.phone, p.kind, p.reason) for p in self.problems]
        return pd.DataFrame(data, columns=PROBLEM_COLUMNS)

    def problems_csv(self) -> bytes:
        """The problems as a CSV download (UTF-8 with BOM, so that Excel reads it right)."""
        return self.problems_frame().to_csv(index=False).encode("utf-8-sig")


def preview_campaign(
    recipients: RecipientFile,
    template: str | Template,
    *,
    pricing: Pricing,
    default_country: str | None = None,
    sender: str | None = None,
) -> CampaignPreview:
    """Render and check every row; a number repeated after a row that is sent is a duplicate.

    Args:
        recipients: from :func:`read_recipients`.
        template: the text with ``{column}`` placeholders (any column of the file).
        pricing: the price per segment by country (``client.pricing()``).
        default_country: ISO code for national numbers of rows without a country. E.164
            numbers of rows without a country keep their own; a row's own country is strict.
        sender: the campaign's sender id (a ``sender`` column overrides it per row).
    """
    columns = recipients.columns
    tpl = template if isinstance(template, Template) else parse_template(template, columns)
    if isinstance(template, Template):
        parse_template(template.text, columns)  # its placeholders must exist in this file
    if sender is not None and (why := check_sender(sender)):
        raise RecipientsError(why)
    default = default_country.strip().upper() if default_country else None
    if default and default not in phonenumbers.SUPPORTED_REGIONS:
        raise RecipientsError(f"unknown default country {default_country!r}")
    keys = [column_key(c) for c in columns]
    phone_at = columns.index(recipients.phone_column)
    country_at = columns.index(recipients.country_column) if recipients.country_column else None
    sender_at = columns.index(recipients.sender_column) if recipients.sender_column else None
    used = [k for k in dict.fromkeys(p[1] for p in tpl.parts) if k is not None]
    names = dict(zip(keys, columns, strict=True))
    problems = [Problem(n, "", BROKEN_ROW, why) for n, why in recipients.broken]
    rows: list[PreviewRow] = []
    first_row: dict[str, int] = {}  # E.164 → the row that sends it
    parsed_cache: dict[tuple[str, str | None, bool], ParsedNumber] = {}
    segments_cache: dict[str, tuple[int, str]] = {}
    for number, cells in recipients.rows:
        phone = cells[phone_at]
        found: list[tuple[str, str]] = []  # (kind, reason)
        parsed: ParsedNumber | None = None
        own, why = _row_country(cells[country_at]) if country_at is not None else (None, None)
        if why:
            found.append((UNKNOWN_COUNTRY, why))
        else:
            key = (phone, own or default, own is not None)
            parsed = parsed_cache.get(key)
            if parsed is None:
                parsed = parsed_cache[key] = _parse(phone, own or default, strict=own is not None)
            if parsed.error and parsed.e164:
                why = f"number of another country: {parsed.e164} {parsed.error}"
                found.append((WRONG_COUNTRY, why))
            elif parsed.error:
                found.append((INVALID_NUMBER, f"invalid number: {parsed.error}"))
        values = dict(zip(keys, cells, strict=True))
        missing = [names[k] for k in used if not values[k]]
        for name in missing:
            found.append((MISSING_VARIABLE, f"empty value for {{{name}}}"))
        row_sender = (cells[sender_at] if sender_at is not None else "") or sender
        if row_sender and (why := check_sender(row_sender)):
            found.append((INVALID_SENDER, why))
        text = "" if missing else tpl.render(values)
        if not missing and not text.strip():
            found.append((EMPTY_TEXT, "the rendered text is empty"))
        segments, encoding = segments_cache.get(text) or _segments(text, segments_cache)
        if segments > MAX_SEGMENTS:
            why = f"the text is {segments} segments long; at most {MAX_SEGMENTS}"
            found.append((TOO_LONG, why))
        price_per_segment = None
        if parsed is not None and parsed.valid:
            price_per_segment = pricing.price_for(parsed.country or "")
            if price_per_segment is None:
                found.append((UNPRICED_COUNTRY, f"no price for country {parsed.country}"))
            elif not found and parsed.e164 in first_row:
                found.append((DUPLICATE, f"duplicate of row {first_row[parsed.e164]}"))
        if found:
            problems.extend(Problem(number, phone, kind, why) for kind, why in found)
            continue
        assert parsed is not None and parsed.e164 and parsed.country and price_per_segment
        first_row[parsed.e164] = number
        rows.append(
            PreviewRow(
                number,
                phone,
                parsed.e164,
                parsed.country,
                row_sender or None,
                text,
                segments,
                encoding,
                price_per_segment,
            )
        )
    problems.sort(key=lambda p: p.row)
    return CampaignPreview(
        tpl,
        sender,
        pricing.currency,
        tuple(rows),
        tuple(problems),
        len(recipients.rows) + len(recipients.broken),
    )


def _row_country(cell: str) -> tuple[str | None, str | None]:
    """A row's own country from its cell (ISO code or +calling code), or why it is unusable."""
    value = cell.strip().upper()
    if not value:
        return None, None
    if value.lstrip("+").isdigit():
        region = phonenumbers.region_code_for_country_code(int(value.lstrip("+")))
        if region != "ZZ":
            return region, None
    elif value in phonenumbers.SUPPORTED_REGIONS:
        return value, None
    return None, f"unknown country {cell.strip()!r}: use its ISO code (US, GB, CN…)"


def _parse(phone: str, country: str | None, *, strict: bool) -> ParsedNumber:
    text = phone.strip()
    international = text.startswith(("+", "00"))
    # A country from the default applies to national numbers only; one from the row is strict.
    return parse_number(text, country if strict or not international else None)


def _segments(text: str, cache: dict[str, tuple[int, str]]) -> tuple[int, str]:
    info = count_segments(text)
    cache[text] = (info.segments, info.encoding)
    return cache[text]


# -- the plan --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """One future send: a country, a sender, a text and up to 1,000 numbers, with its cost."""

    country: str
    sender: str | None
    content: str
    recipients: tuple[str, ...]
    segments: int
    encoding: str
    price_per_segment: Decimal

    @property
    def cost(self) -> Decimal:
        return normalize(self.price_per_segment * self.segments * len(self.recipients))

    def batch(self) -> PlannedBatch:
        """This request as the ledger plans it."""
        return PlannedBatch(
            self.country, self.content, self.recipients, to_micros(self.cost), self.sender
        )


@dataclass(frozen=True, slots=True)
class CampaignPlan:
    """The requests a campaign will make, and what they cost in all."""

    template: str
    sender: str | None
    currency: str
    requests: tuple[PlannedRequest, ...]

    @property
    def total(self) -> Decimal:
        return normalize(sum((r.cost for r in self.requests), Decimal(0)))

    @property
    def recipients(self) -> int:
        return sum(len(r.recipients) for r in self.requests)

    @property
    def messages(self) -> int:
        """Messages the caps count: one per recipient."""
        return self.recipients

    def batches(self) -> list[PlannedBatch]:
        """Every request as the ledger plans it."""
        return [r.batch() for r in self.requests]

    def frame(self) -> pd.DataFrame:
        """One line per request: country, sender, recipients, segments, cost, text."""
        data = [
            (i, r.country, r.sender, len(r.recipients), r.segments, r.encoding, r.cost, r.content)
            for i, r in enumerate(self.requests, start=1)
        ]
        cols = ["request", "country", "sender", "recipients", "segments", "encoding", "cost"]
        return pd.DataFrame(data, columns=[*cols, "text"])


def plan_requests(
    preview: CampaignPreview, *, max_per_request: int = MAX_PER_REQUEST
) -> CampaignPlan:
    """Group the rows to send by (country, text, sender) into requests of ≤ ``max_per_request``.

    With personalised text most groups hold one recipient: that is what the API allows (one
    text per request). Requests come in the order of their first row.
    """
    if not 1 <= max_per_request <= MAX_PER_REQUEST:
        raise ValueError(f"max_per_request must be 1–{MAX_PER_REQUEST}, got {max_per_request!r}")
    groups: dict[tuple[str, str, str | None], list[PreviewRow]] = {}
    for row in preview.rows:
        groups.setdefault((row.country, row.text, row.sender), []).append(row)
    requests = []
    for (country, text, sender), rows in groups.items():
        for start in range(0, len(rows), max_per_request):
            part = rows[start : start + max_per_request]
            requests.append(
                PlannedRequest(
                    country,
                    sender,
                    text,
                    tuple(r.e164 for r in part),
                    part[0].segments,
                    part[0].encoding,
                    part[0].price_per_segment,
                )
            )
    return CampaignPlan(preview.template.text, preview.sender, preview.currency, tuple(requests))


# -- does it fit? ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CapCheck:
    """One daily cap against what the campaign needs (numbers for SMS, Decimal for spend)."""

    cap: str  # "dailySmsCap" or "dailySpendCap", as the API names them
    limit: int | Decimal
    used: int | Decimal
    needed: int | Decimal
    blocks: bool  # blockOnLimit: a send past the cap is refused, not only alerted

    @property
    def headroom(self) -> int | Decimal:
        return max(self.limit - self.used, 0)

    @property
    def over_by(self) -> int | Decimal:
        return max(self.needed - self.headroom, 0)

    @property
    def fits(self) -> bool:
        return not self.over_by


@dataclass(frozen=True, slots=True)
class FundsCheck:
    """Whether the plan fits the balance and today's caps, and what blocks it by how much."""

    cost: Decimal
    balance: Decimal
    currency: str
    caps: tuple[CapCheck, ...]  # every cap that is set

    @property
    def shortfall(self) -> Decimal:
        return max(self.cost - self.balance, Decimal(0))

    @property
    def blocked_by(self) -> tuple[CapCheck, ...]:
        return tuple(c for c in self.caps if c.blocks and not c.fits)

    @property
    def fits(self) -> bool:
        return not self.shortfall and not self.blocked_by

    def messages(self) -> list[str]:
        """What stands in the way, one sentence each (empty when it fits)."""
        out = []
        if self.shortfall:
            cur = self.currency
            out.append(
                f"The balance is {money_str(self.balance)} {cur}; the campaign costs "
                f"{money_str(self.cost)} {cur}: top up at least {money_str(self.shortfall)} {cur}."
            )
        for c in self.caps:
            if c.fits:
                continue
            what = "blocks the campaign" if c.blocks else "is passed (alert only, not refused)"
            if c.cap == "dailySmsCap":
                used, needed, over = f"{c.used} of {c.limit} messages", c.needed, c.over_by
            else:
                cur = f" {self.currency}"
                used = f"{money_str(Decimal(c.used))} of {money_str(Decimal(c.limit))}{cur}"
                needed = f"{money_str(Decimal(c.needed))}{cur}"
                over = f"{money_str(Decimal(c.over_by))}{cur}"
            out.append(
                f"{c.cap} {what}: {used} used today; the campaign needs {needed}, "
                f"{over} over the cap."
            )
        return out


def check_funds(plan: CampaignPlan, balance: Balance, limits: Limits) -> FundsCheck:
    """Compare the plan with the balance and today's usage of each cap."""
    caps = []
    if limits.daily_sms_cap is not None:
        caps.append(
            CapCheck(
                "dailySmsCap",
                limits.daily_sms_cap,
                limits.usage.sms_sent,
                plan.messages,
                limits.block_on_limit,
            )
        )
    if limits.daily_spend_cap is not None:
        caps.append(
            CapCheck(
                "dailySpendCap",
                limits.daily_spend_cap,
                limits.usage.spend,
                plan.total,
                limits.block_on_limit,
            )
        )
    return FundsCheck(plan.total, balance.balance, balance.currency, tuple(caps))


__all__ = [
    "MAX_PER_REQUEST",
    "CampaignPlan",
    "CampaignPreview",
    "CapCheck",
    "FundsCheck",
    "PlannedRequest",
    "PreviewRow",
    "Problem",
    "check_funds",
    "plan_requests",
    "preview_campaign",
]
