"""Every CSV and XLSX the console writes: exact values, and no cell a spreadsheet runs.

One rule against spreadsheet formula injection (OWASP "CSV injection", ASVS 1.2.10), for
every export — Spend, Limits, Status, a campaign's messages, a campaign's problems:

- A **text** cell that begins with ``=``, ``+``, ``-``, ``@``, a tab, a carriage return, a
  line feed or NUL — or whose first non-blank character is one of ``= + - @`` — is
  *formula-like*. In CSV it is written with a leading ``'`` (``'=HYPERLINK(…)``,
  ``'+12065550123``): a spreadsheet shows it as text and never evaluates it; strip that one
  ``'`` to get the value back. XLSX has cell types: every text cell is written as a string
  cell (never a formula, an error value or a number read from text), and a formula-like one
  keeps its exact text with Excel's own "quote prefix" flag (what Excel records when you type
  a leading ``'``), so editing it does not turn it into a formula either.
- Numbers (``int``, ``float``, ``Decimal``), booleans, dates and times are not text: they are
  written as values, untouched (``-0.5`` is a negative amount, not a formula).
- A phone number in E.164 is text (``+12065550123``): CSV has ``'+12065550123``, XLSX the
  string ``+12065550123``. Written raw, a spreadsheet would read it as the formula ``+1206…``
  and show the number 12065550123 — the ``+`` lost — so the quote costs nothing useful.

Values: money columns hold ``Decimal``: CSV gets its exact decimal text (``0.048``), XLSX a
number cell whose stored text is that same decimal (Excel can sum it; no binary rounding is
written). Times become ISO-8601 UTC with ``Z`` (``2024-03-01T09:00:00Z``, microseconds when
present); days are ISO dates (``2024-03-01``) in CSV and date cells in XLSX. In XLSX times are
text like in CSV, unless the caller asks for date-time cells (``to_xlsx(…, datetimes=True)``):
then each is a real date-time cell in UTC, without a zone (a worksheet cell has none; name
the column so that it says UTC), which a spreadsheet can sort, filter and compute with.

``DataFrame.to_csv`` / ``to_excel`` must not be used for a download: ``to_excel`` through
openpyxl writes a string starting with ``=`` as a live formula and ``#N/A`` as an error cell.
``tests/kedacore/test_exports.py`` checks that every download goes through this module.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from kedacore.money import normalize

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
# Full-width forms: some spreadsheets (East Asian locales) read ＝ as =.
_WIDE_FORMULA = ("\uff1d", "\uff0b", "\uff0d", "\uff20")
_FORMULA_FIRST = frozenset(FORMULA_START + _WIDE_FORMULA)
# Blanks first, then a formula sign: spreadsheets trim leading spaces (also no-break and
# other Unicode spaces, and a stray byte-order mark) before reading a cell.
_BLANK_THEN_FORMULA = re.compile(
    r"[\s\0\u00a0\u2000-\u200b\u202f\u205f\u3000\ufeff]+[=+\-@\uff1d\uff0b\uff0d\uff20]"
)
# Quoted: a comma, a double quote, a line break — and a semicolon or a tab, because a
# spreadsheet set to split on those (Excel in much of Europe) would otherwise cut the cell
# there, and the part after it could start with "=". Quotes keep the cell whole either way.
_NEEDS_QUOTES = re.compile(r'[,;"\t\r\n]')
# What XML 1.0 (so XLSX) cannot hold; openpyxl refuses the whole workbook for one of them.
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_NUMBER_TYPES = (int, float, Decimal)


def formula_like(text: str) -> bool:
    """Whether a spreadsheet could take this text cell for a formula (see the module doc)."""
    first = text[:1]
    if first in _FORMULA_FIRST:
        return True
    return (first.isspace() or first == "\ufeff") and _BLANK_THEN_FORMULA.match(text) is not None


def safe_text(text: str) -> str:
    """A text cell as CSV writes it: a formula-like one gets a leading ``'``."""
    return "'" + text if formula_like(text) else text


def iso_utc(value: datetime) -> str:
    """An aware (or naive UTC) datetime as ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    spec = "microseconds" if value.microsecond else "seconds"
    return value.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _scalar(value: Any) -> Any:
    # numpy scalars (np.int64, np.float64, np.bool_…) as the Python value they hold
    if hasattr(value, "item") and not isinstance(value, (str, bytes, Decimal, datetime, date)):
        return value.item()
    return value


def cell_text(value: Any) -> str:
    """One value as CSV text: exact decimals, ISO UTC times, empty for missing, and text
    neutralised (``safe_text``)."""
    if type(value) is str:  # the common case first: exports are mostly text
        return safe_text(value)
    value = _scalar(value)
    if _missing(value):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(normalize(value), "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    return safe_text(str(value))


def _csv_field(value: Any) -> str:
    """One cell as a CSV field: ``cell_text``, quoted when it holds a comma, a double quote, a
    line feed or a carriage return.

    A bare carriage return is quoted too (``csv.writer`` with line-feed line ends leaves it
    bare, and a spreadsheet starts a new row there, whose first cell could be a formula).
    """
    if type(value) is str:  # most cells are text, and a file may have millions
        text = "'" + value if formula_like(value) else value
    else:
        text = cell_text(value)
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def to_csv(frame: pd.DataFrame, *, bom: bool = False) -> bytes:
    """The frame as UTF-8 CSV (header row, then one line per row, each ending in a line feed).

    Args:
        bom: start with a UTF-8 byte order mark (Excel then reads accents right).
    """
    columns = [  # by position: a frame may repeat a column name
        [_csv_field(str(name)), *map(_csv_field, frame.iloc[:, i].tolist())]
        for i, name in enumerate(frame.columns)
    ]
    lines = [",".join(fields) for fields in zip(*columns, strict=True)]
    if len(columns) == 1:  # a lone empty field is written "" (a blank line is no row)
        lines = [line or '""' for line in lines]
    return (("\ufeff" if bom else "") + "".join(line + "\n" for line in lines)).encode("utf-8")


def naive_utc(value: datetime) -> datetime:
    """An aware (or naive UTC) datetime as the naive UTC datetime a worksheet cell holds."""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def _xlsx_value(value: Any, datetimes: bool = False) -> Any:
    value = _scalar(value)
    if _missing(value):
        return None
    if isinstance(value, Decimal):
        return normalize(value)  # written as its exact decimal text
    if isinstance(value, datetime):
        # A worksheet cell has no time zone: the ISO text with its Z, or (asked for) the
        # date-time cell of the UTC time.
        return naive_utc(value) if datetimes else iso_utc(value)
    if isinstance(value, (bool, *_NUMBER_TYPES, date)):
        return value
    return str(value)


def _put(cell: Any, value: Any) -> None:
    """One cell: a value as itself; text always as a string cell, never a formula."""
    if not isinstance(value, str):
        cell.value = value
        return
    cell.value = _XML_ILLEGAL.sub("\ufffd", value)
    cell.data_type = "s"  # openpyxl types "=…" as a formula and "#N/A" as an error
    if formula_like(value):
        cell.quotePrefix = True


def to_xlsx(
    frames: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    datetimes: bool = False,
    widths: Mapping[str, float] | None = None,
    wrap: Collection[str] = (),
) -> bytes:
    """One worksheet per frame (name → sheet; a single frame is sheet "data").

    Args:
        datetimes: write times as date-time cells in UTC (``yyyy-mm-dd hh:mm:ss``) rather
            than ISO text; the column's name should say UTC (the cell cannot).
        widths: column name → width in characters (any sheet with that column); the other
            columns get a width from their name.
        wrap: column names whose text wraps within the column's width.
    """
    from openpyxl import Workbook  # only workbooks need it
    from openpyxl.styles import Alignment, Font

    if isinstance(frames, pd.DataFrame):
        frames = {"data": frames}
    widths = widths or {}
    book = Workbook()
    book.remove(book.active)
    bold = Font(bold=True)
    wrapped = Alignment(wrap_text=True, vertical="top")
    for name, frame in frames.items():
        sheet = book.create_sheet(title=str(name)[:31])
        for col_idx, col in enumerate(frame.columns, start=1):
            cell = sheet.cell(row=1, column=col_idx)
            _put(cell, str(col))
            cell.font = bold
        for row_idx, row in enumerate(frame.itertuples(index=False, name=None), start=2):
            for col_idx, value in enumerate(row, start=1):
                _put(sheet.cell(row=row_idx, column=col_idx), _xlsx_value(value, datetimes))
        for col_idx, col in enumerate(frame.columns, start=1):
            values = frame.iloc[:, col_idx - 1]
            letter = sheet.cell(row=1, column=col_idx).column_letter
            if datetimes and any(isinstance(v, datetime) for v in values):
                for cell in sheet[letter][1:]:
                    cell.number_format = "yyyy-mm-dd hh:mm:ss"
            elif any(isinstance(v, date) and not isinstance(v, datetime) for v in values):
                for cell in sheet[letter][1:]:
                    cell.number_format = "yyyy-mm-dd"
            elif any(isinstance(v, Decimal) for v in values):
                for cell in sheet[letter][1:]:
                    cell.number_format = "#,##0.00####"
            if str(col) in wrap:
                for cell in sheet[letter][1:]:
                    cell.alignment = wrapped
            width = widths.get(str(col))
            if width is None:
                width = max(10, min(40, len(str(col)) + 4))
            sheet.column_dimensions[letter].width = width
    if not book.worksheets:
        book.create_sheet("data")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
