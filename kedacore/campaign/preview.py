"""A campaign's preview: every row of the recipients file checked, rendered and priced.

:func:`preview_campaign` gives, per row of a recipients file (``RecipientFile``), its
E.164 number, country, rendered text, segments, encoding and price, or the reasons it will
not be sent (docs/campaigns.md, "The preview"). ``kedacore.campaign.plan`` groups the rows
into requests.

A file has up to tens of thousands of rows but few distinct countries, senders and prices:
:class:`_Lookups` settles each distinct value once, and a row costs its number's parse, one
``str.format`` of the template and one segment count (docs/campaigns.md, "Speed").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber

from kedacore.api.types import Pricing
from kedacore.campaign.recipients import (
    RecipientFile,
    RecipientsError,
    Template,
    check_sender,
    column_key,
    parse_template,
)
from kedacore.money import normalize
from kedacore.phones import ParsedNumber, parse_number, region_and_validity
from kedacore.segments import MAX_SEGMENTS, count_segments

if TYPE_CHECKING:  # pandas is imported when a frame is asked for: a worker or the CLI
    import pandas as pd  # sending a campaign has no use for its ~80 MB

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
CHUNK_ROWS = 8192  # rows whose numbers are parsed ahead at a time (see _Lookups.chunked)
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
    # Rows that would be sent but whose number is opted out (kedacore.ledger.optouts): left
    # out, not problems; and the numbers messaged within the frequency window (flagged; left
    # out only by leave_out_recent).
    opted_out: tuple[PreviewRow, ...] = ()
    recent: frozenset[str] = frozenset()
    recent_left_out: tuple[PreviewRow, ...] = ()

    def leave_out_recent(self) -> CampaignPreview:
        """This preview without the rows whose number was messaged within the window."""
        if not self.recent:
            return self
        keep = tuple(r for r in self.rows if r.e164 not in self.recent)
        gone = tuple(r for r in self.rows if r.e164 in self.recent)
        return replace(self, rows=keep, recent_left_out=self.recent_left_out + gone)

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
        import pandas as pd

        return pd.DataFrame(data, columns=[*PREVIEW_COLUMNS, "price"])

    def problems_frame(self) -> pd.DataFrame:
        """Every problem, by row number."""
        data = [(p.row, p.phone, p.kind, p.reason) for p in self.problems]
        import pandas as pd

        return pd.DataFrame(data, columns=PROBLEM_COLUMNS)

    def problems_csv(self) -> bytes:
        """The problems as a CSV download (UTF-8 with BOM, so that Excel reads it right).

        Written by ``kedacore.exports``: the file's own cells (a phone like
        ``+cmd|' /C calc'!A0``) come back with a leading ``'``, never as a formula.
        """
        from kedacore.exports import to_csv

        return to_csv(self.problems_frame(), bom=True)


def preview_campaign(
    recipients: RecipientFile,
    template: str | Template,
    *,
    pricing: Pricing,
    default_country: str | None = None,
    sender: str | None = None,
    suppressed: Callable[[Iterable[str]], Collection[str]] | Collection[str] | None = None,
    recent: Callable[[Iterable[str]], Collection[str]] | Collection[str] | None = None,
) -> CampaignPreview:
    """Render and check every row; a number repeated after a row that is sent is a duplicate.

    Args:
        recipients: from :func:`read_recipients`.
        template: the text with ``{column}`` placeholders (any column of the file).
        pricing: the price per segment by country (``client.pricing()``).
        default_country: ISO code for national numbers of rows without a country. E.164
            numbers of rows without a country keep their own; a row's own country is strict.
        sender: the campaign's sender id (a ``sender`` column overrides it per row).
        suppressed: the opted-out numbers (``ledger.suppressed``, or a set): rows that would
            be sent to one are left out (``opted_out``), neither problems nor sent.
        recent: the numbers messaged within the frequency window (``ledger.recently_messaged``
            bound to its start, or a set): flagged (``recent``); ``leave_out_recent()``.
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
    # The placeholders' cells by position; a key given twice is its last column, as in a dict.
    at = {k: i for i, k in enumerate(keys)}
    names = dict(zip(keys, columns, strict=True))
    used = [(names[k], at[k]) for k in dict.fromkeys(p[1] for p in tpl.parts) if k is not None]
    render = tpl.renderer(keys)
    look = _Lookups(pricing, default)
    problems = [Problem(n, "", BROKEN_ROW, why) for n, why in recipients.broken]
    rows: list[PreviewRow] = []
    first_row: dict[str, int] = {}  # E.164 → the row that sends it
    for number, cells in look.chunked(recipients.rows, phone_at, country_at):
        phone = cells[phone_at]
        found: list[tuple[str, str]] = []  # (kind, reason)
        number_of: _Number | None = None  # (E.164, country, error), once it was parsed
        own, why = look.country(cells[country_at]) if country_at is not None else (None, None)
        if why:
            found.append((UNKNOWN_COUNTRY, why))
        else:
            number_of = look.number(phone, own)
            if number_of[2]:
                found.append(_number_problem(number_of))
        missing = [name for name, i in used if not cells[i]]
        for name in missing:
            found.append((MISSING_VARIABLE, f"empty value for {{{name}}}"))
        row_sender = (cells[sender_at] if sender_at is not None else "") or sender
        if row_sender and (why := look.sender_problem(row_sender)):
            found.append((INVALID_SENDER, why))
        text = "" if missing else render(*cells)
        if not missing and not text.strip():
            found.append((EMPTY_TEXT, "the rendered text is empty"))
        segments, encoding = look.segments(text)
        if segments > MAX_SEGMENTS:
            # The template's doing (with this row's values), not the file's: say what to shorten.
            if used:
                why = f"with this row's values the message is {segments} segments long; at "
                why += f"most {MAX_SEGMENTS}: shorten the template or this row's values"
            else:
                why = f"the message is {segments} segments long; at most {MAX_SEGMENTS}: "
                why += "shorten the template"
            found.append((TOO_LONG, why))
        price_per_segment = None
        if number_of is not None and number_of[2] is None:
            price_per_segment = look.price(number_of[1])
            if price_per_segment is None:
                found.append((UNPRICED_COUNTRY, f"no price for country {number_of[1]}"))
            elif not found and number_of[0] in first_row:
                found.append((DUPLICATE, f"duplicate of row {first_row[number_of[0]]}"))
        if found:
            problems.extend(Problem(number, phone, kind, why) for kind, why in found)
            continue
        assert number_of is not None and price_per_segment
        e164, country, _ = number_of
        assert e164 and country
        first_row[e164] = number
        rows.append(
            PreviewRow(
                number,
                phone,
                e164,
                country,
                row_sender or None,
                text,
                segments,
                encoding,
                price_per_segment,
            )
        )
    problems.sort(key=lambda p: p.row)
    preview = CampaignPreview(
        tpl,
        sender,
        pricing.currency,
        tuple(rows),
        tuple(problems),
        len(recipients.rows) + len(recipients.broken),
    )
    return with_audience(preview, suppressed=suppressed, recent=recent)


def with_audience(
    preview: CampaignPreview,
    *,
    suppressed: Callable[[Iterable[str]], Collection[str]] | Collection[str] | None = None,
    recent: Callable[[Iterable[str]], Collection[str]] | Collection[str] | None = None,
) -> CampaignPreview:
    """``preview`` with its opted-out rows left out and its recently messaged flagged (see
    :func:`preview_campaign`); a preview kept from before is checked again this way."""
    rows = preview.rows
    opted_out = preview.opted_out
    if suppressed is not None and rows:
        out = suppressed([r.e164 for r in rows]) if callable(suppressed) else suppressed
        if out:
            opted_out += tuple(r for r in rows if r.e164 in out)
            rows = tuple(r for r in rows if r.e164 not in out)
    flagged: frozenset[str] = frozenset()
    if recent is not None and rows:
        numbers = [r.e164 for r in rows]
        found = recent(numbers) if callable(recent) else recent
        flagged = frozenset(found).intersection(numbers)
    if rows is preview.rows and not flagged:
        return preview
    return replace(preview, rows=rows, opted_out=opted_out, recent=flagged)


def left_out_words(preview: CampaignPreview) -> str:
    """``37 opted out, left out`` (and the recently messaged left out), or ``""``."""
    parts = []
    if preview.opted_out:
        parts.append(f"{len(preview.opted_out):,} opted out, left out")
    if preview.recent_left_out:
        parts.append(f"{len(preview.recent_left_out):,} messaged recently, left out")
    return "; ".join(parts)


def _number_problem(number_of: _Number) -> tuple[str, str]:
    """The problem of a number that was refused: of another country, or not valid at all."""
    e164, _, error = number_of
    if e164:
        return WRONG_COUNTRY, f"number of another country: {e164} {error}"
    return INVALID_NUMBER, f"invalid number: {error}"


# A parsed number as the preview keeps it: (E.164, country, error). A tuple of strings, which
# the garbage collector stops tracking, rather than 10,000 ParsedNumber objects it would walk.
_Number = tuple[str | None, str | None, str | None]


@dataclass(slots=True)
class _Lookups:
    """What the rows of one preview share, each distinct value settled once.

    Countries, senders and prices repeat across a file; so do texts when they are not
    personalised, and a number written twice the same way.
    """

    pricing: Pricing
    default: str | None  # the default country, for national numbers of rows without one
    countries: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    numbers: dict[tuple[str, str | None], _Number] = field(default_factory=dict)
    senders: dict[str, str | None] = field(default_factory=dict)
    texts: dict[str, tuple[int, str]] = field(default_factory=dict)
    prices: dict[str | None, Decimal | None] = field(default_factory=dict)

    def country(self, cell: str) -> tuple[str | None, str | None]:
        """A row's own country from its cell, or why it is unusable (see _row_country)."""
        found = self.countries.get(cell)
        if found is None:
            found = self.countries[cell] = _row_country(cell)
        return found

    def number(self, phone: str, own: str | None) -> _Number:
        """The row's number parsed for its own country (strict), else the default one."""
        key = (phone, own)
        found = self.numbers.get(key)
        if found is None and (found := _plain_e164(phone, own)) is not None:
            self.numbers[key] = found
        elif found is None:
            if own is not None:
                parsed = _parse(phone, own, strict=True)
            else:
                parsed = _parse(phone, self.default, strict=False)
            found = self.numbers[key] = (parsed.e164, parsed.country, parsed.error)
        return found

    def parse_numbers(
        self, rows: Iterable[tuple[int, tuple[str, ...]]], phone_at: int, country_at: int | None
    ) -> None:
        """Parse every row's number ahead of the other checks (the rows then find them here).

        The same work in another order, a tenth faster: parsed one after another, numbers
        keep phonenumbers' code and metadata in the processor's caches, which the rendering
        and counting of each row's text would otherwise push out between two numbers.
        """
        for _, cells in rows:
            own, why = self.country(cells[country_at]) if country_at is not None else (None, None)
            if why is None:
                self.number(cells[phone_at], own)

    def chunked(
        self, rows: Sequence[tuple[int, tuple[str, ...]]], phone_at: int, country_at: int | None
    ) -> Iterator[tuple[int, tuple[str, ...]]]:
        """The rows, their numbers parsed ahead a chunk at a time (``parse_numbers``); the
        numbers and texts kept for reuse are let go between chunks, so that a million-row
        file does not keep a million of each besides its rows."""
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = rows[start : start + CHUNK_ROWS]
            self.numbers.clear()
            if len(self.texts) > CHUNK_ROWS:
                self.texts.clear()
            self.parse_numbers(chunk, phone_at, country_at)
            yield from chunk

    def sender_problem(self, sender: str) -> str | None:
        """Why the row's sender id would be refused (None when it is fine)."""
        if sender not in self.senders:
            self.senders[sender] = check_sender(sender)
        return self.senders[sender]

    def segments(self, text: str) -> tuple[int, str]:
        """The rendered text's segments and encoding."""
        found = self.texts.get(text)
        if found is None:
            info = count_segments(text)
            found = self.texts[text] = (info.segments, info.encoding)
        return found

    def price(self, country: str | None) -> Decimal | None:
        """The price per segment of the number's country (None: not priced)."""
        if country not in self.prices:
            self.prices[country] = self.pricing.price_for(country or "")
        return self.prices[country]


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


# An E.164 number written plainly: "+" and digits only.
_PLAIN_E164 = re.compile(r"\+[1-9][0-9]{5,16}")
_PREFIXES: dict[str, re.Pattern[str]] = {}


def _plain_e164(phone: str, own: str | None) -> _Number | None:
    """``_parse``'s answer for a valid number written as plain E.164, without
    ``phonenumbers.parse`` (two thirds of the time of a number); None: ask ``_parse``.

    For such text ``phonenumbers.parse`` takes the calling code (the first 1–3 digits it
    knows), and the rest as the national number — unless the region's national prefix could
    be stripped from it, which is left to ``phonenumbers.parse`` — with its leading zeros
    noted; ``parse_number`` then checks it with ``region_and_validity``, as here. Only valid
    numbers of the row's own country (if it has one) are answered: every refusal, with its
    reason, comes from ``_parse``. tests/kedacore/campaign/test_preview_e164.py holds the two
    equal.
    """
    text = phone.strip()
    if _PLAIN_E164.fullmatch(text) is None:
        return None
    digits = text[1:]
    for size in (1, 2, 3):
        code = int(digits[:size])
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code)
        if regions:
            break
    else:
        return None
    nsn = digits[size:]
    if len(nsn) < 2:
        return None
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, regions[0])
    if metadata is None:
        return None
    prefix = metadata.national_prefix_for_parsing
    if prefix:
        pattern = _PREFIXES.get(prefix)
        if pattern is None:
            pattern = _PREFIXES[prefix] = re.compile(prefix)
        if pattern.match(nsn):
            return None
    number = PhoneNumber(country_code=code, national_number=int(nsn))
    if nsn[0] == "0":  # phonenumbers' _set_italian_leading_zeros_for_phone_number
        number.italian_leading_zero = True
        zeros = 1
        while zeros < len(nsn) - 1 and nsn[zeros] == "0":
            zeros += 1
        if zeros != 1:
            number.number_of_leading_zeros = zeros
    region, valid = region_and_validity(number)
    if not valid or region is None:
        return None
    if own is not None and (own != region or own not in phonenumbers.SUPPORTED_REGIONS):
        return None
    return text, region, None


def _parse(phone: str, country: str | None, *, strict: bool) -> ParsedNumber:
    text = phone.strip()
    international = text.startswith(("+", "00"))
    # A country from the default applies to national numbers only; one from the row is strict.
    return parse_number(text, country if strict or not international else None)


__all__ = [
    "CampaignPreview",
    "PreviewRow",
    "Problem",
    "left_out_words",
    "preview_campaign",
    "with_audience",
]
