"""Recipients files over the limits: refused fast, with a sentence naming the limit.

The first tests use the default limits and only names that existed before the limits did
(``read_recipients``, ``RecipientsError``), so that each one also runs — and fails, by
reading the file, or by running past its timeout — against the reader before them. Then the
limits as settings, the property that any bytes give rows within the limits or a
``RecipientsError``, and the streaming reader held equal to reading the whole file at once.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kedacore.campaign.recipients import RecipientsError, csv_file, read_recipients, xlsx_file
from tests.kedacore.campaign.workbooks import (
    MAIN,
    entity_bomb,
    shared_string_bomb,
    sheet_xml,
    workbook,
)

MB = 1024 * 1024


# -- each limit, at its default ----------------------------------------------------------------


@pytest.mark.timeout(30)
def test_a_file_over_50_mb_is_refused_before_it_is_read() -> None:
    data = b"phone\n" + b" " * (50 * MB)
    with pytest.raises(RecipientsError, match=r"larger than 50 MB.*\(KEDA_MAX_UPLOAD_MB\)"):
        read_recipients(data)


@pytest.mark.timeout(60)
def test_more_than_200_000_rows_is_refused() -> None:
    data = b"phone\n" + b"+12062000001\n" * 200_001
    with pytest.raises(
        RecipientsError,
        match=r"The file has more than 200,000 rows, the most a campaign takes "
        r"\(KEDA_MAX_ROWS\)\. Split it into smaller files\.",
    ):
        read_recipients(data)
    # Exactly the limit is fine.
    table = read_recipients(b"phone\n" + b"+12062000001\n" * 200_000)
    assert len(table.rows) == 200_000


@pytest.mark.timeout(30)
def test_more_than_100_columns_is_refused() -> None:
    header = ",".join(["phone", *(f"c{i}" for i in range(100))])
    with pytest.raises(RecipientsError, match=r"more than 100 columns.*\(KEDA_MAX_COLUMNS\)"):
        read_recipients(f"{header}\n+12062000001\n".encode())
    assert len(read_recipients(f"{header[: header.rindex(',')]}\n1\n".encode()).columns) == 100


@pytest.mark.timeout(30)
def test_a_cell_over_2000_characters_is_refused_with_its_row() -> None:
    data = f"phone,note\n+12062000001,ok\n+12062000002,{'x' * 2001}\n".encode()
    with pytest.raises(
        RecipientsError, match=r"Row 3 has a cell of more than 2,000 characters.*KEDA_MAX_CELL"
    ):
        read_recipients(data)
    assert read_recipients(f"phone,note\n1,{'x' * 2000}\n".encode()).rows[0][1][1] == "x" * 2000


@pytest.mark.timeout(30)
def test_an_unclosed_quote_cannot_swallow_the_file() -> None:
    data = b'phone,name\n+12062000001,"Ann\n' + b"+12062000002,Bob\n" * 100_000
    with pytest.raises(RecipientsError, match=r"Row 2 runs on .* a quote that is never closed"):
        read_recipients(data)


@pytest.mark.timeout(30)
def test_the_shared_string_bomb_is_refused_from_the_zip_directory() -> None:
    data = shared_string_bomb(1 << 30)  # 1 MB that unpacks to 1 GiB
    assert len(data) < 2 * MB
    with pytest.raises(
        RecipientsError,
        match=r"The workbook unpacks to more than 200 MB, the most a campaign takes "
        r"\(KEDA_MAX_XLSX_MB\)\. Save it as CSV, or split it into smaller files\.",
    ):
        read_recipients(data, filename="list.xlsx")


@pytest.mark.timeout(30)
def test_a_part_packed_more_than_100_to_1_is_refused() -> None:
    data = shared_string_bomb(20 * MB)  # within 200 MB, but 1,000 to 1
    with pytest.raises(RecipientsError, match=r"more than 100 times.*\(KEDA_MAX_XLSX_RATIO\)"):
        read_recipients(data)


@pytest.mark.timeout(30)
def test_a_cell_at_excels_last_column_is_refused_not_filled_in() -> None:
    # Two cells far apart: a reader that fills the rectangle between them makes 17 billion.
    cells = (
        '<row r="1"><c r="A1" t="inlineStr"><is><t>phone</t></is></c></row>'
        '<row r="2"><c r="XFD2"><v>1</v></c></row>'
    )
    with pytest.raises(RecipientsError, match=r"more than 100 columns.*\(KEDA_MAX_COLUMNS\)"):
        read_recipients(workbook(sheet_xml(cells=cells)))


@pytest.mark.timeout(30)
def test_a_workbook_row_past_the_row_limit_is_refused() -> None:
    cells = (
        '<row r="1"><c r="A1" t="inlineStr"><is><t>phone</t></is></c></row>'
        '<row r="1048576"><c r="A1048576"><v>12062000001</v></c></row>'
    )
    with pytest.raises(RecipientsError, match=r"more than 200,000 rows.*\(KEDA_MAX_ROWS\)"):
        read_recipients(workbook(sheet_xml(cells=cells)))


@pytest.mark.timeout(30)
def test_a_long_shared_string_is_refused_while_it_is_read() -> None:
    shared = f'<sst xmlns="{MAIN}"><si><t>phone</t></si><si><t>{"y" * 5000}</t></si></sst>'
    cells = (
        '<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="2"><c r="A2" t="s"><v>1</v></c></row>'
    )
    with pytest.raises(RecipientsError, match=r"more than 2,000 characters.*KEDA_MAX_CELL_CHARS"):
        read_recipients(workbook(sheet_xml(cells=cells), shared))


# -- damaged and hostile workbooks -------------------------------------------------------------


def test_a_zip_directory_that_understates_a_part_is_not_believed() -> None:
    data = shared_string_bomb(5 * MB, declared=1_000)  # passes the directory's checks
    with pytest.raises(RecipientsError, match="cannot read this workbook"):
        read_recipients(data)


def test_an_xml_entity_bomb_is_refused() -> None:
    with pytest.raises(RecipientsError, match="document type declaration"):
        read_recipients(entity_bomb())


def test_a_zip_of_too_many_parts_is_refused_before_zipfile_reads_its_directory() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as book:
        for i in range(1_001):
            book.writestr(f"p{i}", b"")
    with pytest.raises(RecipientsError, match="more than 1,000 parts"):
        read_recipients(buffer.getvalue())


def test_a_refusal_quotes_a_long_header_cut_short() -> None:
    header = ",".join(f"column{i}_" + "x" * 1_000 for i in range(10))
    with pytest.raises(RecipientsError, match="no phone column") as caught:
        read_recipients(f"{header}\n1\n".encode())
    assert len(str(caught.value)) < 400


def test_an_encrypted_or_old_workbook_says_so() -> None:
    with pytest.raises(RecipientsError, match="password"):
        read_recipients(b"\xd0\xcf\x11\xe0" + bytes(100))


# -- the limits as settings --------------------------------------------------------------------


def test_the_limits_come_from_the_environment_then_secrets() -> None:
    from kedacore.campaign.recipients import RecipientLimits, load_limits

    assert load_limits(None, {}) == RecipientLimits()
    limits = load_limits(
        {"keda": {"keda_max_rows": 5000, "keda_max_columns": "12"}},
        {"KEDA_MAX_ROWS": "2,000", "KEDA_MAX_UPLOAD_MB": "10", "KEDA_MAX_XLSX_RATIO": ""},
    )
    assert (limits.rows, limits.columns, limits.upload_mb) == (2_000, 12, 10)
    assert limits.xlsx_ratio == RecipientLimits().xlsx_ratio
    with pytest.raises(ValueError, match="KEDA_MAX_ROWS must be a whole number, not 'many'"):
        load_limits(None, {"KEDA_MAX_ROWS": "many"})
    with pytest.raises(ValueError, match="KEDA_MAX_COLUMNS must be a whole number of at least 1"):
        load_limits(None, {"KEDA_MAX_COLUMNS": "0"})


def test_each_limit_as_configured_is_named_in_its_refusal() -> None:
    from kedacore.campaign.recipients import RecipientLimits, RecipientsLimitError

    cases = [
        (RecipientLimits(upload_mb=1), b"phone\n" + b"1\n" * MB, "KEDA_MAX_UPLOAD_MB"),
        (RecipientLimits(rows=3), b"phone\n1\n2\n\n4\n", "KEDA_MAX_ROWS"),  # blank rows count
        (RecipientLimits(columns=2), b"phone,a,b\n1,2,3\n", "KEDA_MAX_COLUMNS"),
        (RecipientLimits(cell_chars=5), b"phone\n123456\n", "KEDA_MAX_CELL_CHARS"),
        (RecipientLimits(xlsx_mb=1), shared_string_bomb(2 * MB), "KEDA_MAX_XLSX_MB"),
        (RecipientLimits(xlsx_ratio=1_000_000), shared_string_bomb(300 * MB), "KEDA_MAX_XLSX_MB"),
    ]
    for limits, data, setting in cases:
        with pytest.raises(RecipientsLimitError) as caught:
            read_recipients(data, limits=limits)
        assert caught.value.setting == setting
        assert f"({setting})" in str(caught.value)
        assert str(caught.value).endswith(".")
    assert len(read_recipients(b"phone\n1\n2\n3\n", limits=RecipientLimits(rows=3)).rows) == 3


def test_a_path_over_the_size_is_refused_without_reading_it(tmp_path) -> None:
    from kedacore.campaign.recipients import RecipientLimits

    path = tmp_path / "big.csv"
    with open(path, "wb") as f:
        f.truncate(2 * MB)
    with pytest.raises(RecipientsError, match="KEDA_MAX_UPLOAD_MB"):
        read_recipients(path, limits=RecipientLimits(upload_mb=1))
    with open(path, "rb") as f, pytest.raises(RecipientsError, match="KEDA_MAX_UPLOAD_MB"):
        read_recipients(f, limits=RecipientLimits(upload_mb=1))


# -- any bytes: rows within the limits, or a RecipientsError -----------------------------------

_PARTS = [
    "[Content_Types].xml",
    "_rels/.rels",
    "xl/workbook.xml",
    "xl/_rels/workbook.xml.rels",
    "xl/worksheets/sheet1.xml",
    "xl/sharedStrings.xml",
    "xl/styles.xml",
]
_XML = st.sampled_from(
    [
        b"",
        b"<",
        b"<?xml version='1.0'?><!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>",
        f'<sst xmlns="{MAIN}"><si><t>phone</t></si>'.encode()
        + b"<si><r><t>a</t></r><rPh><t>b</t></rPh></si></sst>",
        b'<styleSheet><numFmts><numFmt numFmtId="164" formatCode="yyyy"/></numFmts>'
        b'<cellXfs><xf numFmtId="164"/><xf numFmtId="x"/></cellXfs></styleSheet>',
        sheet_xml(
            cells='<row r="1"><c r="A1" t="s"><v>0</v></c><c t="s"><v>9</v></c></row>'
        ).encode(),
        sheet_xml(cells='<row><c r="B1" s="0"><v>1e400</v></c><c r="ZZZZ9"/></row>').encode(),
        sheet_xml(
            cells='<row r="0"><c t="b"><v>x</v></c><c t="d"><v>2024-13-01</v></c></row>'
        ).encode(),
        sheet_xml([["phone", "name"], ["+12062000001", "Ann"], ["2", "x" * 40]]).encode(),
    ]
)


@st.composite
def small_zips(draw: st.DrawFn) -> bytes:
    buffer = io.BytesIO()
    method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2]))
    with zipfile.ZipFile(buffer, "w", method) as book:
        written = set()
        if draw(st.booleans()):
            standard = [b"<Types/>", *(x.encode() for x in _standard_parts())]
            for name, content in zip(_PARTS[:4], standard, strict=True):
                book.writestr(name, content)
                written.add(name)
        for name in draw(st.lists(st.sampled_from(_PARTS), max_size=8, unique=True)):
            if name not in written:
                book.writestr(name, draw(st.one_of(_XML, st.binary(max_size=64))))
    data = buffer.getvalue()
    if draw(st.booleans()) and data:  # damage one byte
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    return data


def _standard_parts() -> list[str]:
    from tests.kedacore.campaign import workbooks

    return [workbooks.ROOT_RELS, workbooks.WORKBOOK, workbooks.WORKBOOK_RELS]


_CSVISH = st.text(alphabet='ph0ne,;|\t"\r\n +12é\x00\u2028x', max_size=300)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=400),
        _CSVISH.map(lambda t: ("phone," + t).encode()),
        _CSVISH.map(lambda t: ("phone\t" + t).encode("utf-16")),
        small_zips(),
    ),
    st.sampled_from([None, "list.csv", "list.xlsx"]),
)
def test_any_bytes_give_rows_within_the_limits_or_a_recipients_error(
    data: bytes, filename: str | None
) -> None:
    from kedacore.campaign.recipients import RecipientLimits

    limits = RecipientLimits(upload_mb=1, rows=6, columns=4, cell_chars=12, xlsx_mb=1)
    try:
        table = read_recipients(data, filename=filename, limits=limits)
    except RecipientsError:
        return
    assert 1 <= len(table.columns) <= limits.columns
    assert table.phone_column in table.columns
    assert len(table.rows) + len(table.broken) <= limits.rows
    for number, cells in table.rows:
        assert len(cells) == len(table.columns)
        assert all(isinstance(c, str) and len(c) <= limits.cell_chars for c in cells)
        assert number > 1
    assert [n for n, _ in table.rows] == sorted(n for n, _ in table.rows)


# -- the streaming reader reads what reading it whole read -------------------------------------


def _read_whole(data: bytes) -> tuple[list, list]:
    """The reader before streaming: the whole text split into lines, csv over them."""
    text = data.decode("utf-8")
    header = next(line for line in text.splitlines() if line.strip())
    delimiter = csv_file._delimiter(header)
    lines = text.splitlines(keepends=True)
    records, broken, start = [], [], 0
    while start < len(lines):
        reader = csv.reader(iter(lines[start:]), delimiter=delimiter, strict=True)
        while True:
            before = reader.line_num
            try:
                cells = next(reader)
            except StopIteration:
                start = len(lines)
                break
            except csv.Error as exc:
                first = start + before + 1
                broken.append((first, f"unreadable CSV: {exc}"))
                if start + reader.line_num >= len(lines) and reader.line_num - before > 1:
                    start = first
                    break
                continue
            if any(c.strip() for c in cells):
                records.append((start + before + 1, cells))
    return records, broken


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.text(alphabet='ab ,"é\r', max_size=5), min_size=1, max_size=4),
            st.sampled_from(["\n", "\r\n", "\r", "\u2028"]),
        ),
        max_size=12,
    ),
    st.integers(1, 9),
)
def test_reading_a_chunk_at_a_time_reads_what_the_whole_text_gives(
    lines: list[tuple[list[str], str]], chunk: int
) -> None:
    text = "phone,name\n" + "".join(",".join(cells) + end for cells, end in lines)
    data = text.encode()
    records, broken = _read_whole(data)
    expected_rows = [
        (n, tuple(c.strip() for c in cells) + ("",) * (2 - len(cells)))
        for n, cells in records[1:]
        if not any(c.strip() for c in cells[2:])
    ]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(csv_file, "_CHUNK", chunk)
        table = read_recipients(data)
    assert [(n, cells[:2]) for n, cells in table.rows] == [
        (n, cells[:2]) for n, cells in expected_rows
    ]
    assert {n for n, _ in table.broken} >= {n for n, _ in broken if n > 1}


# -- workbooks read as openpyxl reads them -----------------------------------------------------


def _openpyxl_rows(data: bytes) -> list[tuple[int, list[str]]]:
    """The reader before: openpyxl's read-only mode, each value as _cell_text made it."""
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    rows = []
    for number, values in enumerate(book.worksheets[0].iter_rows(values_only=True), start=1):
        cells = [xlsx_file._cell_text(v) for v in values]
        if any(cells):
            rows.append((number, cells))
    book.close()
    return rows


_VALUES = st.one_of(
    st.none(),
    st.text(alphabet="ab 1_é\u4e00", max_size=6),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.datetimes(min_value=dt.datetime(1901, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    st.dates(min_value=dt.date(1901, 1, 1), max_value=dt.date(2100, 1, 1)),
    st.times(),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(_VALUES, min_size=1, max_size=4), min_size=1, max_size=5),
    st.booleans(),
)
def test_workbooks_are_read_as_openpyxl_reads_them(values: list[list], mac_dates: bool) -> None:
    book = openpyxl.Workbook()
    book.epoch = openpyxl.utils.datetime.CALENDAR_MAC_1904 if mac_dates else book.epoch
    sheet = book.active
    sheet.append(["phone", "name", "when", "more"])
    for row in values:
        sheet.append(row)
    sheet["F9"] = "=A1"  # a formula without a cached value: empty
    sheet["B12"].number_format = "[h]:mm:ss"
    sheet["B12"] = 1.5
    buffer = io.BytesIO()
    book.save(buffer)
    data = buffer.getvalue()
    table = read_recipients(data)
    expected = _openpyxl_rows(data)
    width = len(table.columns)
    assert table.columns[:4] == ("phone", "name", "when", "more")
    got = [(n, list(cells)) for n, cells in table.rows]
    want = [
        (n, [c.strip() for c in cells] + [""] * (width - len(cells))) for n, cells in expected[1:]
    ]
    assert got == [(n, cells[:width]) for n, cells in want]
