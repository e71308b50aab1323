"""CSV and XLSX exports of the analytics frames: exact decimals, UTC times with ``Z``.

Money columns hold ``Decimal``: CSV gets its exact decimal text (``0.048``), XLSX a number
cell whose stored text is that same decimal (Excel can sum it; no binary rounding is written).
Times become ISO-8601 UTC with ``Z`` (``2024-03-01T09:00:00Z``, microseconds when present);
days are ISO dates (``2024-03-01``) in CSV and date cells in XLSX.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font

from kedacore.money import normalize


def iso_utc(value: datetime) -> str:
    """An aware (or naive UTC) datetime as ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    spec = "microseconds" if value.microsecond else "seconds"
    return value.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def cell_text(value: Any) -> str:
    """One value as CSV text: exact decimals, ISO UTC times, empty for missing."""
    if _missing(value):
        return ""
    if isinstance(value, Decimal):
        return format(normalize(value), "f")
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_csv(frame: pd.DataFrame) -> bytes:
    """The frame as UTF-8 CSV (header row, then one line per row)."""
    text = pd.DataFrame(
        {col: [cell_text(v) for v in frame[col]] for col in frame.columns}, columns=frame.columns
    ).to_csv(index=False, lineterminator="\n")
    return text.encode("utf-8")


def _xlsx_value(value: Any) -> Any:
    if _missing(value):
        return None
    if isinstance(value, Decimal):
        return normalize(value)  # written as its exact decimal text
    if isinstance(value, datetime):
        return iso_utc(value)  # a worksheet cell has no time zone: keep the text
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def to_xlsx(frames: pd.DataFrame | Mapping[str, pd.DataFrame]) -> bytes:
    """One worksheet per frame (name → sheet; a single frame is sheet "data")."""
    if isinstance(frames, pd.DataFrame):
        frames = {"data": frames}
    book = Workbook()
    book.remove(book.active)
    bold = Font(bold=True)
    for name, frame in frames.items():
        sheet = book.create_sheet(title=str(name)[:31])
        sheet.append([str(c) for c in frame.columns])
        for cell in sheet[1]:
            cell.font = bold
        for row in frame.itertuples(index=False, name=None):
            sheet.append([_xlsx_value(v) for v in row])
        for col_idx, col in enumerate(frame.columns, start=1):
            values = frame[col]
            letter = sheet.cell(row=1, column=col_idx).column_letter
            if any(isinstance(v, date) and not isinstance(v, datetime) for v in values):
                for cell in sheet[letter][1:]:
                    cell.number_format = "yyyy-mm-dd"
            elif any(isinstance(v, Decimal) for v in values):
                for cell in sheet[letter][1:]:
                    cell.number_format = "#,##0.00####"
            sheet.column_dimensions[letter].width = max(10, min(40, len(str(col)) + 4))
    if not book.worksheets:
        book.create_sheet("data")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
