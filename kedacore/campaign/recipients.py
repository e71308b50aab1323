"""A campaign's recipients file (CSV or XLSX) and its message template.

:func:`read_recipients` turns the file into rows of text — encoding and delimiter detected,
rows that cannot be read kept (with their row number) instead of dropped — and finds the
phone, country and sender columns; every column is a variable for :func:`parse_template`.
``kedacore.campaign.plan`` validates the rows, renders the texts and groups them into requests.

A file comes from whoever uploads it, so everything is bounded before the work it would cost
(:class:`RecipientLimits`, docs/campaigns.md "Limits"): its size; its rows, columns and cell
length while it is read, stopping at the first one over; for a workbook, every part's size and
packing ratio from the zip directory before any XML is read, and the bytes actually unpacked
while reading (never more than the directory declared, nor than the limit in all). A file over
a limit raises :class:`RecipientsLimitError`, whose message names the limit and what to do.

The work is done a piece at a time — text decoded a megabyte at a time, XML fed to the
parser 64 KB at a time — so no single step holds the interpreter (and the server's other
threads, such as the callback receiver) for long, and nothing but the rows is kept.
"""

from __future__ import annotations

import codecs
import csv
import io
import lzma
import os
import re
import string
import struct
import zipfile
import zlib
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from itertools import accumulate
from posixpath import dirname, join, normpath
from typing import Any, BinaryIO
from xml.parsers import expat

# Column names are compared after column_key(): case, spaces, "_" and "-" do not matter.
PHONE_COLUMNS = ("phone", "phonenumber", "number", "mobile", "mobilenumber", "msisdn", "cell")
PHONE_COLUMNS += ("cellphone", "tel", "telephone", "recipient")
COUNTRY_COLUMNS = ("country", "countrycode", "region", "iso")
SENDER_COLUMNS = ("sender", "senderid")
DELIMITERS = ",;\t|"

MB = 1024 * 1024  # as Streamlit counts server.maxUploadSize


class RecipientsError(ValueError):
    """The file or the template cannot be used at all (no phone column, unknown placeholder…)."""


class RecipientsLimitError(RecipientsError):
    """The file is over one of :class:`RecipientLimits`; the message is a whole sentence naming
    the limit (``setting``, e.g. ``KEDA_MAX_ROWS``) and what to do."""

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


def column_key(name: str) -> str:
    """A column name as placeholders and known names are matched: case, spaces, _ and - ignored."""
    return "".join(ch for ch in name.casefold() if ch not in " _-\t")


# -- limits ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecipientLimits:
    """What a recipients file may hold; each is a setting of the console (docs/campaigns.md).

    The defaults keep the check of the largest file allowed — 200,000 rows, each of which
    costs 30–60 µs, most of it parsing its phone number — within 20 s and a few hundred MB
    (docs/campaigns.md, "Limits"); an operator who needs larger campaigns raises them.
    """

    upload_mb: int = 50  # KEDA_MAX_UPLOAD_MB: the file's size
    rows: int = 200_000  # KEDA_MAX_ROWS: rows below the header (blank ones included)
    columns: int = 100  # KEDA_MAX_COLUMNS
    cell_chars: int = 2_000  # KEDA_MAX_CELL_CHARS: characters in one cell (a whole SMS fits)
    xlsx_mb: int = 200  # KEDA_MAX_XLSX_MB: a workbook's parts unpacked, in all
    xlsx_ratio: int = 100  # KEDA_MAX_XLSX_RATIO: unpacked ÷ packed size of a part over 1 MB

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{LIMIT_SETTINGS[f.name]} must be a whole number of at least 1")
        if self.cell_chars > MAX_CELL_CHARS:
            raise ValueError(f"KEDA_MAX_CELL_CHARS can be at most {MAX_CELL_CHARS:,}")

    @property
    def upload_bytes(self) -> int:
        return self.upload_mb * MB

    @property
    def xlsx_bytes(self) -> int:
        return self.xlsx_mb * MB

    @property
    def longest_row(self) -> int:
        """Characters a CSV row can take within the limits: every cell full, its quotes doubled."""
        return self.columns * (2 * self.cell_chars + 3) + 2


LIMIT_SETTINGS = {
    "upload_mb": "KEDA_MAX_UPLOAD_MB",
    "rows": "KEDA_MAX_ROWS",
    "columns": "KEDA_MAX_COLUMNS",
    "cell_chars": "KEDA_MAX_CELL_CHARS",
    "xlsx_mb": "KEDA_MAX_XLSX_MB",
    "xlsx_ratio": "KEDA_MAX_XLSX_RATIO",
}
# csv refuses a field over 131,072 characters (csv.field_size_limit, process-wide: left alone).
MAX_CELL_CHARS = 100_000
XLSX_MAX_PARTS = 1_000  # files in a workbook's zip (one has a dozen; a bomb can have millions)
XLSX_RATIO_FROM = MB  # the packing ratio is checked for parts larger than this
_XLSX_DIRECTORY = 1 * MB  # bytes of zip directory read (a thousand parts take ~100 KB)


def load_limits(
    secrets: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> RecipientLimits:
    """The limits from the environment, then ``secrets["keda"]``, then the defaults — looked
    up as ``kedacore.settings.load_settings`` does (``KEDA_MAX_ROWS`` or ``keda_max_rows``).

    Raises:
        ValueError: a setting that is not a whole number of at least 1 (named).
    """
    env = os.environ if env is None else env
    section: Mapping[str, Any] = {}
    if secrets is not None:
        try:
            section = secrets.get("keda") or {}
        except Exception:  # st.secrets raises when no secrets file exists
            section = {}
    values = {}
    for name, setting in LIMIT_SETTINGS.items():
        raw = env.get(setting)
        if raw in (None, ""):
            raw = section.get(setting.lower())
        if raw in (None, ""):
            continue
        try:
            values[name] = int(str(raw).strip().replace(",", "").replace("_", ""))
        except ValueError:
            raise ValueError(f"{setting} must be a whole number, not {str(raw)!r}") from None
    return RecipientLimits(**values)


def _over(setting: str, sentence: str) -> RecipientsLimitError:
    return RecipientsLimitError(sentence, setting)


def _too_many_rows(limits: RecipientLimits) -> RecipientsLimitError:
    return _over(
        "KEDA_MAX_ROWS",
        f"The file has more than {limits.rows:,} rows, the most a campaign takes "
        "(KEDA_MAX_ROWS). Split it into smaller files.",
    )


def _too_many_columns(limits: RecipientLimits) -> RecipientsLimitError:
    return _over(
        "KEDA_MAX_COLUMNS",
        f"The file has more than {limits.columns:,} columns, the most a campaign takes "
        "(KEDA_MAX_COLUMNS). Keep the columns the message needs and save it again.",
    )


def _cell_too_long(limits: RecipientLimits, row: int | None) -> RecipientsLimitError:
    where = f"Row {row:,} has a cell" if row is not None else "The file has a cell"
    return _over(
        "KEDA_MAX_CELL_CHARS",
        f"{where} of more than {limits.cell_chars:,} characters, the longest a campaign "
        "takes (KEDA_MAX_CELL_CHARS). Shorten it and save the file again.",
    )


def _row_too_long(limits: RecipientLimits, row: int) -> RecipientsLimitError:
    return _over(
        "KEDA_MAX_CELL_CHARS",
        f"Row {row:,} runs on for more than {limits.longest_row:,} characters: a quote that "
        f"is never closed, or cells longer than {limits.cell_chars:,} characters, the longest "
        "a campaign takes (KEDA_MAX_CELL_CHARS). Correct it and save the file again.",
    )


def _workbook_too_big(limits: RecipientLimits) -> RecipientsLimitError:
    return _over(
        "KEDA_MAX_XLSX_MB",
        f"The workbook unpacks to more than {limits.xlsx_mb:,} MB, the most a campaign takes "
        "(KEDA_MAX_XLSX_MB). Save it as CSV, or split it into smaller files.",
    )


# -- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecipientFile:
    """The rows of a recipients file, as text; ``broken`` are rows that could not be read."""

    columns: tuple[str, ...]
    rows: tuple[tuple[int, tuple[str, ...]], ...]  # (row number in the file, cells)
    broken: tuple[tuple[int, str], ...]  # (row number, why)
    phone_column: str
    country_column: str | None
    sender_column: str | None
    encoding: str  # "xlsx" for a workbook
    delimiter: str | None


def read_recipients(
    source: bytes | str | os.PathLike[str] | BinaryIO,
    *,
    filename: str | None = None,
    encoding: str | None = None,
    limits: RecipientLimits | None = None,
) -> RecipientFile:
    """Read a CSV or XLSX of recipients; row numbers are as in the file (the header is row 1).

    Args:
        source: the file's bytes, its path, or an open binary file (Streamlit's upload).
        filename: the name, when ``source`` is bytes (``.xlsx`` picks the workbook reader).
        encoding: the CSV's encoding; by default a BOM, else UTF-8, else GB18030 (only when
            it yields CJK text), else Windows-1252.
        limits: what the file may hold; :class:`RecipientLimits`'s defaults when None (the
            console passes the operator's, :func:`load_limits`).

    Raises:
        RecipientsLimitError: the file is over a limit (the message says which and what to do).
        RecipientsError: the file cannot be used (no phone column, not a workbook…).
    """
    limits = limits or RecipientLimits()
    data, filename = _source_bytes(source, filename, limits)
    if data[:4] == b"\xd0\xcf\x11\xe0":
        raise RecipientsError(
            "this is an old Excel .xls file or a password-protected workbook: "
            "save it as .xlsx (without a password) or .csv"
        )
    if data[:4] == b"PK\x03\x04" or (filename or "").lower().endswith((".xlsx", ".xlsm")):
        rows = _Rows(limits, widen=True)
        _read_xlsx(data, limits, rows)
        return rows.table("xlsx", None)
    rows = _Rows(limits)
    used, delimiter = _read_csv(data, encoding, limits, rows)
    return rows.table(used, delimiter)


def _source_bytes(
    source: bytes | str | os.PathLike[str] | BinaryIO, filename: str | None, limits: RecipientLimits
) -> tuple[bytes, str | None]:
    """The file's bytes, refused before they are read when there are more than the limit."""
    cap = limits.upload_bytes
    if isinstance(source, (str, os.PathLike)):
        filename = filename or os.fspath(source)
        try:
            if os.stat(source).st_size > cap:
                raise _too_large(limits)
            with open(source, "rb") as f:
                data = f.read(cap + 1)
        except OSError as exc:
            raise RecipientsError(f"the file cannot be opened: {exc.strerror}") from None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        size = source.nbytes if isinstance(source, memoryview) else len(source)
        if size > cap:
            raise _too_large(limits)
        data = bytes(source)
    else:
        filename = filename or getattr(source, "name", None)
        data = source.read(cap + 1)
    if len(data) > cap:
        raise _too_large(limits)
    return data, filename


def _too_large(limits: RecipientLimits) -> RecipientsLimitError:
    return _over(
        "KEDA_MAX_UPLOAD_MB",
        f"The file is larger than {limits.upload_mb:,} MB, the largest a campaign takes "
        "(KEDA_MAX_UPLOAD_MB). Split it into smaller files.",
    )


class _Rows:
    """The rows as they are read: the header's checks at once, each row's as it comes.

    Nothing is kept but the rows themselves. A column whose first thousand values repeat
    (country, sender, a first name) keeps one string per distinct value instead of one per
    row.
    """

    POOL_AFTER = 1_000  # rows looked at before choosing the columns to share values of
    POOL_DISTINCT = 100  # at most this many distinct values among them: shared
    POOL_SIZE = 10_000  # values kept per shared column

    def __init__(self, limits: RecipientLimits, *, widen: bool = False) -> None:
        self.limits = limits
        self.widen = widen  # a workbook: values right of the header make unnamed columns
        self.header: list[str] | None = None
        self.header_row = 0
        self.width = 0
        self.rows: list[tuple[int, tuple[str, ...]]] = []
        self.broken: list[tuple[int, str]] = []
        self.pools: list[tuple[int, dict[str, str]]] | None = None
        self.wider = 0  # the widest row kept (widen)
        self.named: dict[str, str] = {}

    def add(self, number: int, cells: list[str]) -> None:
        """A record of the file (not blank); the first is the header."""
        limits = self.limits
        if cells and max(map(len, cells)) > limits.cell_chars:
            raise _cell_too_long(limits, number)
        if self.header is None:
            if len(cells) > limits.columns:
                raise _too_many_columns(limits)
            self.header, self.header_row = [c.strip() for c in cells], number
            self.width = len(cells)
            self._check_header()
            return
        if number - self.header_row > limits.rows:
            raise _too_many_rows(limits)
        row = tuple(map(str.strip, cells))
        width = self.width
        if len(row) != width:
            if len(row) < width:
                row += ("",) * (width - len(row))
            elif not any(row[width:]):
                row = row[:width]
            elif self.widen:  # kept whole: table() widens the header
                self.wider = max(self.wider, len(row))
            else:
                self.broken.append((number, f"{len(row)} fields where the header has {width}"))
                return
        if self.pools is not None:
            if self.pools:
                cells = list(row)
                for at, pool in self.pools:
                    value = cells[at]
                    cells[at] = pool.get(value) or self._pool(pool, value)
                row = tuple(cells)
        elif len(self.rows) == self.POOL_AFTER:
            self._choose_pools()
        self.rows.append((number, row))

    def add_broken(self, number: int, why: str) -> None:
        if self.header is None or number <= self.header_row:
            return  # before the header: not a row of the table
        if number - self.header_row > self.limits.rows:
            raise _too_many_rows(self.limits)
        self.broken.append((number, why))

    def _pool(self, pool: dict[str, str], value: str) -> str:
        if len(pool) < self.POOL_SIZE:
            pool[value] = value
        return value

    def _choose_pools(self) -> None:
        self.pools = []
        for at in range(self.width):
            values = {cells[at] for _, cells in self.rows}
            if len(values) <= self.POOL_DISTINCT:
                self.pools.append((at, {v: v for v in values}))
        if self.pools:  # the rows so far share them too
            for i, (number, row) in enumerate(self.rows):
                cells = list(row)
                for at, pool in self.pools:
                    cells[at] = pool[cells[at]]
                self.rows[i] = (number, tuple(cells))

    def _check_header(self) -> None:
        assert self.header is not None
        seen: dict[str, str] = {}
        for column in self.header:
            if column:
                if column_key(column) in seen:
                    raise RecipientsError(f"the column {column!r} appears twice in the header")
                seen[column_key(column)] = column
        self.named = seen
        if _find(seen, PHONE_COLUMNS) is None:
            header = ", ".join(seen.values()) or "empty"
            if len(header) > 200:  # the message is shown whole: a header can be 200,000
                header = header[:200] + "…"
            raise RecipientsError(
                f"no phone column: name one of {', '.join(PHONE_COLUMNS[:6])}… "
                f"(the header is {header})"
            )

    def table(self, encoding: str, delimiter: str | None) -> RecipientFile:
        if self.header is None:
            raise RecipientsError("the file has no rows")
        columns = self.header
        if self.wider > self.width:
            # A workbook's header spans every column used below it (unnamed ones ""), as the
            # spreadsheet shows it: values right of the named columns are not an error there.
            columns = columns + [""] * (self.wider - self.width)
            width = len(columns)
            for i, (number, cells) in enumerate(self.rows):
                if len(cells) < width:
                    self.rows[i] = (number, cells + ("",) * (width - len(cells)))
        return RecipientFile(
            columns=tuple(columns),
            rows=tuple(self.rows),
            broken=tuple(sorted(self.broken)),
            phone_column=_find(self.named, PHONE_COLUMNS) or "",
            country_column=_find(self.named, COUNTRY_COLUMNS),
            sender_column=_find(self.named, SENDER_COLUMNS),
            encoding=encoding,
            delimiter=delimiter,
        )


def _find(columns: Mapping[str, str], names: Sequence[str]) -> str | None:
    return next((columns[n] for n in names if n in columns), None)


# -- CSV -------------------------------------------------------------------------------------

_CHUNK = MB  # bytes decoded at a time
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
_CJK = re.compile("[\u4e00-\u9fff]")


def _read_csv(
    data: bytes, encoding: str | None, limits: RecipientLimits, rows: _Rows
) -> tuple[str, str]:
    """Read the CSV into ``rows``; returns the encoding and the delimiter used."""
    used = _encoding(data, encoding)
    try:
        lines = _Lines(data, used, limits)
        # The header is the first line that is not blank; its delimiter is the file's.
        for number, line in lines:
            if line.strip():
                lines.replay.append((number, line))
                break
            if number > limits.rows:
                raise _too_many_rows(limits)
        else:
            raise RecipientsError("the file has no rows")
        delimiter = _delimiter(lines.replay[0][1])
        _csv_records(lines, delimiter, limits, rows)
    except _RecordTooLong as exc:
        raise _row_too_long(limits, exc.row) from None
    except UnicodeDecodeError as exc:
        raise RecipientsError(
            f"the file is not {used} text ({exc.reason}): save it as UTF-8"
        ) from None
    return used, delimiter


def _encoding(data: bytes, encoding: str | None) -> str:
    """The codec: the one given, a BOM's, else UTF-8, else GB18030 when it yields Chinese text
    (Excel's "CSV" on a Chinese Windows), else Windows-1252 (Excel in the West), else Latin-1.
    Each is tried a megabyte at a time."""
    if encoding:
        try:
            codecs.getincrementaldecoder(encoding)
        except (LookupError, TypeError):
            raise RecipientsError(f"unknown encoding {encoding!r}") from None
        return encoding
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    if _decodes(data, "utf-8"):
        return "utf-8"
    # GB18030 decodes most byte soups, so it is believed only when the text it yields is Chinese.
    if _decodes(data, "gb18030", _CJK):
        return "gb18030"
    return "cp1252" if _decodes(data, "cp1252") else "latin-1"


def _decodes(data: bytes, codec: str, wanted: re.Pattern[str] | None = None) -> bool:
    decoder = codecs.getincrementaldecoder(codec)()
    found = wanted is None
    view = memoryview(data)
    try:
        for at in range(0, len(view), _CHUNK):
            text = decoder.decode(view[at : at + _CHUNK])
            found = found or wanted.search(text) is not None  # type: ignore[union-attr]
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return found


def _delimiter(header: str) -> str:
    """The delimiter the header line uses most (a single-column file has none: ",")."""
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class _Lines:
    """The file's lines, numbered from 1 as ``str.splitlines`` splits them, decoded a chunk at
    a time; csv.reader reads them through this, one record at a time.

    ``span`` keeps the lines of the record being read: a record longer than a row can be
    within the limits stops the reading (a quote never closed would otherwise swallow the
    file), and one cut short by the end of the file is read again from its second line.
    """

    def __init__(self, data: bytes, codec: str, limits: RecipientLimits) -> None:
        self.source = enumerate(self._decoded(data, codec, limits.longest_row), start=1)
        self.longest = limits.longest_row
        self.replay: deque[tuple[int, str]] = deque()  # lines to hand out again first
        self.span: list[tuple[int, str]] = []
        self.span_chars = 0
        self._ahead = next(self.source, None)  # one line ahead: is the last one handed out the end?

    @staticmethod
    def _decoded(data: bytes, codec: str, longest: int) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder(codec)()
        view = memoryview(data)
        carry = ""
        count = 0
        for at in range(0, len(view), _CHUNK):
            text = carry + decoder.decode(view[at : at + _CHUNK])
            lines = text.splitlines(keepends=True)
            # The last piece may go on in the next chunk ("\r" then "\n" too): kept for it.
            carry = lines.pop() if lines else ""
            if len(carry) > longest:
                raise _RecordTooLong(count + len(lines) + 1)
            if lines and max(map(len, lines)) > longest:
                raise _RecordTooLong(
                    count + 1 + next(i for i, x in enumerate(lines) if len(x) > longest)
                )
            count += len(lines)
            yield from lines
        yield from (carry + decoder.decode(b"", final=True)).splitlines(keepends=True)

    def __iter__(self) -> Iterator[tuple[int, str]]:
        return self

    def __next__(self) -> tuple[int, str]:
        if self.replay:
            return self.replay.popleft()
        line = self._ahead
        if line is None:
            raise StopIteration
        self._ahead = next(self.source, None)
        return line

    @property
    def done(self) -> bool:
        """Whether the last line handed out is the file's last."""
        return not self.replay and self._ahead is None

    def for_csv(self) -> Iterator[str]:
        """The lines as csv.reader wants them, each added to the record's span."""
        for number, line in self:
            self.span.append((number, line))
            self.span_chars += len(line)
            if self.span_chars > self.longest:
                raise _RecordTooLong(self.span[0][0])
            yield line

    def record_done(self) -> None:
        self.span.clear()
        self.span_chars = 0


class _RecordTooLong(Exception):
    def __init__(self, row: int) -> None:
        self.row = row


def _csv_records(lines: _Lines, delimiter: str, limits: RecipientLimits, rows: _Rows) -> None:
    reader = csv.reader(lines.for_csv(), delimiter=delimiter, strict=True)
    reread = 0  # characters read again after unclosed quotes
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if not lines.span:  # csv reads a line before it can find anything wrong
                raise RecipientsError(f"unreadable CSV: {exc}") from None
            first = lines.span[0][0]
            if "field larger than field limit" in str(exc):  # 131,072 characters
                raise _row_too_long(limits, first) from None
            rows.add_broken(first, f"unreadable CSV: {exc}")
            if lines.done and len(lines.span) > 1:
                # An unclosed quote swallowed the rest of the file: read on from the line
                # after the one it opened on (a bounded number of times: see _Lines).
                reread += lines.span_chars
                if reread > 4 * limits.longest_row:
                    raise _row_too_long(limits, first) from None
                lines.replay.extend(lines.span[1:])
                lines.record_done()
                reader = csv.reader(lines.for_csv(), delimiter=delimiter, strict=True)
            else:
                lines.record_done()
            continue
        span = lines.span
        number = span[0][0]
        span.clear()
        lines.span_chars = 0
        if number - rows.header_row > limits.rows and rows.header is not None:
            raise _too_many_rows(limits)  # blank lines count: a spreadsheet shows them
        if "".join(cells).strip():  # not blank (any cell with more than spaces)
            rows.add(number, cells)


# -- XLSX ------------------------------------------------------------------------------------

_XML_CHUNK = 64 * 1024  # XML fed to the parser at a time
XLSX_MAX_STYLES = 65_536  # cell formats (Excel allows 64,000)
_EXCEL_ROWS = 1_048_576
_EXCEL_COLUMNS = 16_384


class _Stop(Exception):
    """Raised by a handler when the rest of the part is not needed."""


def _damaged(why: str) -> RecipientsError:
    return RecipientsError(f"cannot read this workbook: {why}")


def _read_xlsx(data: bytes, limits: RecipientLimits, rows: _Rows) -> None:
    book = _open_workbook(data, limits)
    try:
        with book:
            _Workbook(book, limits).read(rows)
    except RecipientsError:
        raise
    except _WORKBOOK_ERRORS as exc:  # a damaged zip or XML has many ways to fail
        raise _damaged(str(exc) or type(exc).__name__) from None


def _zip_directory(data: bytes) -> tuple[int, int]:
    """(entries, bytes) of the zip's central directory, from its end record as zipfile finds
    it (and the zip64 one when there is one) — read before zipfile builds an object per entry."""
    end = len(data) - 22
    if not (end >= 0 and data[end : end + 4] == b"PK\x05\x06" and data[-2:] == b"\0\0"):
        end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65_535))
        if end < 0 or len(data) - end < 22:
            return 0, 0  # not a zip: zipfile says so
    entries = int.from_bytes(data[end + 10 : end + 12], "little")
    size = int.from_bytes(data[end + 12 : end + 16], "little")
    locator = end - 20
    if locator >= 56 and data[locator : locator + 4] == b"PK\x06\x07":
        record = locator - 56
        if data[record : record + 4] == b"PK\x06\x06":
            entries = max(entries, int.from_bytes(data[record + 32 : record + 40], "little"))
            size = max(size, int.from_bytes(data[record + 40 : record + 48], "little"))
    return entries, size


def _open_workbook(data: bytes, limits: RecipientLimits) -> zipfile.ZipFile:
    """The workbook's zip, once its directory shows nothing over the limits."""
    entries, directory = _zip_directory(data)
    if entries > XLSX_MAX_PARTS or directory > _XLSX_DIRECTORY:
        raise _damaged(
            f"its zip holds more than {XLSX_MAX_PARTS:,} parts, which no spreadsheet writes"
        )
    try:
        book = zipfile.ZipFile(io.BytesIO(data))
    except _WORKBOOK_ERRORS as exc:
        raise _damaged(str(exc) or type(exc).__name__) from None
    infos = book.infolist()
    if len(infos) > XLSX_MAX_PARTS:
        raise _damaged(
            f"its zip holds more than {XLSX_MAX_PARTS:,} parts, which no spreadsheet writes"
        )
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise RecipientsError("the workbook is encrypted: save it without a password")
        total += info.file_size
        if info.file_size > limits.xlsx_bytes or total > limits.xlsx_bytes:
            raise _workbook_too_big(limits)
        packed = max(info.compress_size, 1)
        if info.file_size > XLSX_RATIO_FROM and info.file_size > limits.xlsx_ratio * packed:
            raise _over(
                "KEDA_MAX_XLSX_RATIO",
                f"A part of the workbook unpacks to {info.file_size // packed:,} times its "
                f"packed size, more than {limits.xlsx_ratio:,} times, the most a campaign takes "
                "(KEDA_MAX_XLSX_RATIO): it is not an ordinary workbook. Open it in Excel and "
                "save it again, or save it as CSV.",
            )
    return book


def _refuse_dtd(*_: object) -> None:
    # What defusedxml does (forbid_dtd): a DTD is where entity bombs and external entities
    # live, and no spreadsheet writes one. Without a DTD, expat knows only the five XML
    # entities.
    raise _damaged(
        "it holds an XML document type declaration, which spreadsheets never write "
        "(it can hide an entity bomb); save it again from Excel, or as CSV"
    )


def _local_name(cache: dict[str, str], name: str) -> str:
    local = cache[name] = name.rpartition(":")[2]
    return local


def _column_index(letters: str) -> int:
    """0 for A, 25 for Z, 26 for AA … (refused past XFD, Excel's last column)."""
    if not (0 < len(letters) <= 3 and letters.isascii() and letters.isalpha()):
        raise _damaged(f"a cell reference is not a column and row ({letters[:10]!r})")
    index = 0
    for ch in letters.upper():
        index = index * 26 + ord(ch) - 64
    if index > _EXCEL_COLUMNS:
        raise _damaged("a cell lies past Excel's last column")
    return index - 1


class _Strings:
    """The shared strings, packed: one text per 1,024 strings and where each ends in it — a
    million short strings take their characters and 4 bytes each rather than ~60 bytes."""

    BLOCK = 1024

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.ends: list[array[int]] = []
        self.pending: list[str] = []
        self.count = 0

    def append(self, text: str) -> None:
        self.pending.append(text)
        self.count += 1
        if len(self.pending) == self.BLOCK:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.blocks.append("".join(self.pending))
            self.ends.append(array("I", accumulate(map(len, self.pending))))
            self.pending = []

    def __getitem__(self, index: int) -> str:
        if not 0 <= index < self.count:
            raise _damaged(f"a cell refers to shared string {index:,} of {self.count:,}")
        block, at = divmod(index, self.BLOCK)
        ends = self.ends[block]
        return self.blocks[block][ends[at - 1] if at else 0 : ends[at]]


class _Workbook:
    """The first worksheet of a workbook, read part by part with the bytes unpacked counted."""

    def __init__(self, book: zipfile.ZipFile, limits: RecipientLimits) -> None:
        self.book = book
        self.limits = limits
        self.parts = {info.filename.lower(): info for info in book.infolist()}
        self.left = limits.xlsx_bytes  # bytes that may still be unpacked, in all

    def chunks(self, name: str) -> Iterator[bytes]:
        """The part's bytes, a chunk at a time; never more than the zip directory declared
        (zipfile stops there too, then checks the CRC), nor than the limit in all."""
        info = self.parts.get(name.lower())
        if info is None:
            raise _damaged(f"the part {name[:60]!r} is missing")
        out = 0
        with self.book.open(info) as part:
            while chunk := part.read(_XML_CHUNK):
                out += len(chunk)
                if out > info.file_size:
                    raise _damaged("a part unpacks to more than the zip directory says")
                self.left -= len(chunk)
                if self.left < 0:
                    raise _workbook_too_big(self.limits)
                yield chunk

    def parse(
        self,
        name: str,
        start: Callable[[str, dict[str, str]], None],
        end: Callable[[str], None] | None = None,
        text: Callable[[str], None] | None = None,
    ) -> None:
        """Feed the part to expat 64 KB at a time (each call short), with no DTD allowed."""
        parser = expat.ParserCreate()
        parser.buffer_text = True
        parser.StartDoctypeDeclHandler = _refuse_dtd
        parser.EntityDeclHandler = _refuse_dtd
        parser.ExternalEntityRefHandler = _refuse_dtd
        parser.StartElementHandler = start
        if end is not None:
            parser.EndElementHandler = end
        if text is not None:
            parser.CharacterDataHandler = text
        try:
            for chunk in self.chunks(name):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
        except _Stop:
            pass

    def relationships(self, part: str) -> dict[str, tuple[str, str]]:
        """A part's relationships: id → (type, target part)."""
        folder = dirname(part)
        rels = join(folder, "_rels", part[len(folder) :].lstrip("/") + ".rels")
        found: dict[str, tuple[str, str]] = {}
        if rels.lower() not in self.parts:
            return found
        names: dict[str, str] = {}

        def start(name: str, attrs: dict[str, str]) -> None:
            tag = names.get(name) or _local_name(names, name)
            external = attrs.get("TargetMode") == "External"
            if tag == "Relationship" and not external and len(found) < XLSX_MAX_PARTS:
                target = attrs.get("Target", "")
                path = target[1:] if target.startswith("/") else join(folder, target)
                found[attrs.get("Id", "")] = (attrs.get("Type", ""), normpath(path))

        self.parse(rels, start)
        return found

    def read(self, rows: _Rows) -> None:
        package = self.relationships("")
        main = next(
            (t for kind, t in package.values() if kind.endswith("/officeDocument")),
            "xl/workbook.xml",
        )
        sheet_ids: list[str] = []
        date1904 = False
        names: dict[str, str] = {}

        def workbook(name: str, attrs: dict[str, str]) -> None:
            nonlocal date1904
            tag = names.get(name) or _local_name(names, name)
            if tag == "sheet" and len(sheet_ids) < XLSX_MAX_PARTS:
                rid = next((v for k, v in attrs.items() if k.endswith(":id")), None)
                if rid:
                    sheet_ids.append(rid)
            elif tag == "workbookPr":
                date1904 = attrs.get("date1904", "").lower() in ("1", "true")

        self.parse(main, workbook)
        rels = self.relationships(main)
        sheet = next(
            (rels[i][1] for i in sheet_ids if rels.get(i, ("", ""))[0].endswith("/worksheet")),
            None,
        )
        if sheet is None:
            raise _damaged("it has no worksheet")
        by_type = {kind.rpartition("/")[2]: target for kind, target in rels.values()}
        strings = _Strings()
        if "sharedStrings" in by_type and by_type["sharedStrings"].lower() in self.parts:
            self.shared_strings(by_type["sharedStrings"], strings)
        dates, deltas = frozenset[int](), frozenset[int]()
        if "styles" in by_type and by_type["styles"].lower() in self.parts:
            dates, deltas = self.date_styles(by_type["styles"])
        self.sheet(sheet, strings, dates, deltas, date1904, rows)

    def shared_strings(self, name: str, strings: _Strings) -> None:
        limit = self.limits.cell_chars
        names: dict[str, str] = {}
        text: list[str] = []
        size = 0
        capture = phonetic = False

        def start(name: str, attrs: dict[str, str]) -> None:
            nonlocal size, capture, phonetic
            tag = names.get(name) or _local_name(names, name)
            if tag == "t":
                capture = not phonetic
            elif tag == "si":
                text.clear()
                size = 0
            elif tag == "rPh":  # a phonetic reading, not part of the text (as openpyxl reads it)
                phonetic = True

        def end(name: str) -> None:
            nonlocal capture, phonetic
            tag = names.get(name) or _local_name(names, name)
            if tag == "t":
                capture = False
            elif tag == "si":
                strings.append("".join(text).replace("x005F_", ""))  # as openpyxl reads it
            elif tag == "rPh":
                phonetic = False

        def chars(data: str) -> None:
            nonlocal size
            if capture:
                size += len(data)
                if size > limit:
                    raise _cell_too_long(self.limits, None)
                text.append(data)

        self.parse(name, start, end, chars)
        strings.flush()

    def date_styles(self, name: str) -> tuple[frozenset[int], frozenset[int]]:
        """The cell formats (``s`` of a cell) that show a number as a date, and as a duration,
        as openpyxl tells them."""
        from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format

        custom: dict[int, str] = {}
        formats: list[int] = []  # each cell format's number format id
        in_cell_formats = False
        names: dict[str, str] = {}

        def start(name: str, attrs: dict[str, str]) -> None:
            nonlocal in_cell_formats
            tag = names.get(name) or _local_name(names, name)
            if tag == "numFmt" and len(custom) < XLSX_MAX_STYLES:
                custom[int(attrs.get("numFmtId", "0"))] = attrs.get("formatCode", "")
            elif tag == "cellXfs":
                in_cell_formats = True
            elif tag == "xf" and in_cell_formats:
                if len(formats) >= XLSX_MAX_STYLES:
                    raise _damaged(f"it has more than {XLSX_MAX_STYLES:,} cell formats")
                formats.append(int(attrs.get("numFmtId", "0")))

        def end(name: str) -> None:
            nonlocal in_cell_formats
            if (names.get(name) or _local_name(names, name)) == "cellXfs":
                in_cell_formats = False

        self.parse(name, start, end)
        dates, deltas = set(), set()
        for style, number_format in enumerate(formats):
            if number_format in custom:
                code = custom[number_format]
            else:
                code = BUILTIN_FORMATS.get(number_format)
            if is_date_format(code):
                dates.add(style)
            if is_timedelta_format(code):
                deltas.add(style)
        return frozenset(dates), frozenset(deltas)

    def sheet(
        self,
        name: str,
        strings: _Strings,
        dates: frozenset[int],
        deltas: frozenset[int],
        date1904: bool,
        rows: _Rows,
    ) -> None:
        """The worksheet's rows into ``rows``: each row with a value, its cells by column."""
        from openpyxl.utils.datetime import MAC_EPOCH, WINDOWS_EPOCH

        epoch = MAC_EPOCH if date1904 else WINDOWS_EPOCH
        limits = self.limits
        cap, columns = limits.cell_chars, limits.columns
        names: dict[str, str] = {}
        letters_at: dict[str, int] = {}
        cells: list[str] = []
        text: list[str] = []
        row_number = size = 0
        col = -1
        kind, style = "n", 0
        capture = inline = phonetic = False

        def start(name: str, attrs: dict[str, str]) -> None:
            nonlocal row_number, col, kind, style, size, capture, inline, phonetic
            tag = names.get(name) or _local_name(names, name)
            if tag == "c":
                ref = attrs.get("r")
                if ref:
                    letters = ref.rstrip("0123456789")
                    at = letters_at.get(letters)
                    if at is None:
                        at = letters_at[letters] = _column_index(letters)
                    col = at
                else:
                    col += 1
                kind = attrs.get("t", "n")
                s = attrs.get("s")
                style = int(s) if s else 0
                text.clear()
                size = 0
                capture = inline = False
            elif tag == "v":
                capture = not inline
            elif tag == "t":
                capture = inline and not phonetic
            elif tag == "is":
                inline = True
            elif tag == "rPh":
                phonetic = True
            elif tag == "row":
                r = attrs.get("r")
                row_number = int(r) if r else row_number + 1
                if not 0 < row_number <= _EXCEL_ROWS:
                    raise _damaged("a row lies past Excel's last row")
                cells.clear()
                col = -1

        def end(name: str) -> None:
            nonlocal capture, inline, phonetic
            tag = names.get(name) or _local_name(names, name)
            if tag == "c":
                capture = False
                if not text:
                    return
                raw = text[0] if len(text) == 1 else "".join(text)
                if kind == "s":
                    value = strings[int(raw)].strip()
                elif kind == "n":
                    value = _number_text(raw, style, dates, deltas, epoch)
                elif kind == "b":
                    value = str(bool(int(raw)))
                elif kind == "d":
                    value = _iso_text(raw)
                else:  # str (a formula's text), inlineStr, e (#N/A…)
                    value = raw.strip()
                if value:
                    if col >= columns:
                        raise _too_many_columns(limits)
                    have = len(cells)
                    if col >= have:
                        if col > have:
                            cells.extend([""] * (col - have))
                        cells.append(value)
                    else:
                        cells[col] = value
            elif tag == "v" or tag == "t":
                capture = False
            elif tag == "row":
                if cells:
                    rows.add(row_number, cells)
            elif tag == "is":
                inline = False
            elif tag == "rPh":
                phonetic = False
            elif tag == "sheetData":
                raise _Stop  # the rest of the sheet (merged cells, print setup…) is not read

        def chars(data: str) -> None:
            nonlocal size
            if capture:
                size += len(data)
                if size > cap:
                    raise _cell_too_long(limits, row_number)
                text.append(data)

        self.parse(name, start, end, chars)


def _number_text(
    raw: str, style: int, dates: frozenset[int], deltas: frozenset[int], epoch: Any
) -> str:
    """A number cell as text, as openpyxl reads it (then ``_cell_text``): a date when its
    format is one; ``12062000001.0`` without the ``.0``."""
    try:
        value: Any = float(raw) if "." in raw or "E" in raw or "e" in raw else int(raw)
    except ValueError:
        return raw.strip()
    if style in dates:
        from openpyxl.utils.datetime import from_excel

        try:
            value = from_excel(value, epoch, timedelta=style in deltas)
        except (OverflowError, ValueError):
            return "#VALUE!"
    return _cell_text(value)


def _iso_text(raw: str) -> str:
    from openpyxl.utils.datetime import from_ISO8601

    try:
        return _cell_text(from_ISO8601(raw))
    except (ValueError, OverflowError, TypeError):
        return raw.strip()


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone number typed into a numeric cell
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value).strip()


_WORKBOOK_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    lzma.LZMAError,
    struct.error,
    expat.ExpatError,
    EOFError,
    OSError,  # bz2's damaged data, among others
    NotImplementedError,  # a compression zipfile does not know
    RuntimeError,  # zipfile: a password needed
    ValueError,  # int() of a damaged number, a date out of range, UnicodeDecodeError
    KeyError,
    IndexError,
    OverflowError,
)
# -- the template ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Template:
    """A message template with ``{name}`` placeholders (``{{`` and ``}}`` are literal braces)."""

    text: str
    parts: tuple[tuple[str, str | None, str | None, str], ...]  # literal, key, conversion, spec
    fields: tuple[str, ...]  # placeholders as written, first-seen order

    def render(self, values: Mapping[str, str]) -> str:
        """The text for one recipient; ``values`` are keyed by column key (see ``column_key``)."""
        out = []
        for literal, key, conversion, spec in self.parts:
            out.append(literal)
            if key is not None:
                value: Any = values[key]
                if conversion:
                    value = _FORMATTER.convert_field(value, conversion)
                out.append(format(value, spec) if spec else str(value))
        return "".join(out)

    def renderer(self, keys: Sequence[str]) -> Callable[..., str]:
        """``render`` for rows of cells in ``keys`` order: ``renderer(keys)(*cells)``.

        The template becomes one format string with positional fields, so a row is rendered
        by a single ``str.format`` call — no dict of its values, no loop over the parts in
        Python (a campaign renders every one of its rows). ``str.format`` applies the
        conversion and the spec exactly as ``render`` does. A key given twice in ``keys`` is
        its last position, as in ``dict(zip(keys, cells))``.
        """
        at = {key: i for i, key in enumerate(keys)}
        pieces = []
        for literal, key, conversion, spec in self.parts:
            pieces.append(literal.replace("{", "{{").replace("}", "}}"))
            if key is not None:
                conv = f"!{conversion}" if conversion else ""
                pieces.append(f"{{{at[key]}{conv}{':' + spec if spec else ''}}}")
        return "".join(pieces).format


_FORMATTER = string.Formatter()


def parse_template(text: str, columns: Iterable[str] | None = None) -> Template:
    """Check a template (and, given the file's columns, that every placeholder is one).

    Raises:
        RecipientsError: naming the unknown placeholder, or what is malformed.
    """
    if not text.strip():
        raise RecipientsError("the template is empty")
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as exc:
        raise RecipientsError(f"the template is malformed: {exc} (write {{{{ or }}}})") from None
    known = {column_key(c): c for c in columns or () if c}
    parts, fields = [], []
    for literal, field, spec, conversion in parsed:
        if field is None:
            parts.append((literal, None, None, ""))
            continue
        name = field.strip()
        # Only plain names: "{0}", "{}" and "{a.b}"/"{a[0]}" would reach into Python objects.
        if not name or name.isdigit() or any(ch in name for ch in ".[]"):
            raise RecipientsError(f"placeholder {{{field}}} is not a column name")
        if "{" in (spec or ""):
            raise RecipientsError(f"placeholder {{{field}}} has a nested placeholder")
        try:
            format("", spec or "")
        except ValueError as exc:
            raise RecipientsError(f"placeholder {{{field}:{spec}}}: {exc}") from None
        if columns is not None and column_key(name) not in known:
            raise RecipientsError(
                f"unknown placeholder {{{name}}}: the file has no such column "
                f"(columns: {', '.join(known.values())})"
            )
        if name not in fields:
            fields.append(name)
        parts.append((literal, column_key(name), conversion, spec or ""))
    return Template(text, tuple(parts), tuple(fields))


def check_sender(sender: str) -> str | None:
    """Why a sender id would be refused (None when it is fine): 1–11 letters/digits or a number."""
    plain = sender[1:] if sender.startswith("+") else sender
    if plain.isascii() and plain.isdigit() and len(plain) <= 15:
        return None
    if sender.isascii() and sender.isalnum() and 1 <= len(sender) <= 11:
        return None
    return f"sender {sender!r} must be 1–11 letters and digits, or a number of up to 15 digits"


__all__ = [
    "COUNTRY_COLUMNS",
    "LIMIT_SETTINGS",
    "PHONE_COLUMNS",
    "SENDER_COLUMNS",
    "RecipientFile",
    "RecipientLimits",
    "RecipientsError",
    "RecipientsLimitError",
    "Template",
    "check_sender",
    "column_key",
    "load_limits",
    "parse_template",
    "read_recipients",
]
