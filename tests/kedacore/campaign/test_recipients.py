"""Recipients files and templates: encodings, delimiters, XLSX, row numbers, placeholders."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kedacore.campaign.recipients import (
    RecipientsError,
    check_sender,
    column_key,
    parse_template,
    read_recipients,
)


def test_utf8_with_bom_semicolons_and_a_mobile_column() -> None:
    data = "\ufeffMobile;First Name;Country\n+12062000001;Zoë;US\n".encode()
    table = read_recipients(data)
    assert table.columns == ("Mobile", "First Name", "Country")
    assert (table.encoding, table.delimiter) == ("utf-8-sig", ";")
    assert (table.phone_column, table.country_column) == ("Mobile", "Country")
    assert table.rows == ((2, ("+12062000001", "Zoë", "US")),)


@pytest.mark.parametrize("name", ["phone", "PHONE", "Phone Number", "msisdn", "number", "tel"])
def test_common_phone_column_names_are_found(name: str) -> None:
    assert read_recipients(f"{name},x\n1,2\n".encode()).phone_column == name


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_the_one_the_header_uses(delimiter: str) -> None:
    text = delimiter.join(["phone", "name", "city"]) + "\n"
    text += delimiter.join(["+12062000001", "Ann, Jr.", "Paris"]) + "\n"
    if delimiter == ",":
        text = 'phone,name,city\n+12062000001,"Ann, Jr.",Paris\n'
    table = read_recipients(text.encode())
    assert table.delimiter == delimiter
    assert table.rows[0][1] == ("+12062000001", "Ann, Jr.", "Paris")


@pytest.mark.parametrize(
    ("data", "encoding", "name"),
    [
        ("phone,name\n1,José\n".encode("cp1252"), "cp1252", "José"),
        ("phone,name\n1,王小明\n".encode("gb18030"), "gb18030", "王小明"),
        ("phone,name\n1,Łucja\n".encode("utf-16"), "utf-16", "Łucja"),
        ("phone,name\n1,Łucja\n".encode(), "utf-8", "Łucja"),
    ],
)
def test_encodings_are_detected(data: bytes, encoding: str, name: str) -> None:
    table = read_recipients(data)
    assert table.encoding == encoding
    assert table.rows[0][1][1] == name


def test_an_explicit_encoding_wins() -> None:
    assert read_recipients("phone,n\n1,é\n".encode("latin-1"), encoding="latin-1").rows[0][1] == (
        "1",
        "é",
    )


def test_row_numbers_are_the_file_lines_and_blank_lines_are_skipped() -> None:
    data = b"phone,name\n\n+12062000001,Ann\n\n\n+12062000002,Bob\n"
    assert [n for n, _ in read_recipients(data).rows] == [3, 6]


def test_broken_rows_are_kept_with_their_number_and_the_rest_read_on() -> None:
    data = (
        b"phone,name\n"
        b"+12062000001,Ann\n"
        b"+12062000002,Bob,extra\n"  # a field too many
        b'+12062000003,"Cy"x\n'  # text after a closing quote
        b"+12062000004\n"  # a field short: read, the name is empty
        b"+12062000005,Dee,,\n"  # empty trailing fields are fine
        b'+12062000006,"Eve\n'  # a quote never closed
        b"+12062000007,Fay\n"
    )
    table = read_recipients(data)
    assert [n for n, _ in table.rows] == [2, 5, 6, 8]
    assert table.rows[1][1] == ("+12062000004", "")
    broken = dict(table.broken)
    assert set(broken) == {3, 4, 7}
    assert "3 fields where the header has 2" in broken[3]
    assert broken[4].startswith("unreadable CSV")


def test_a_path_and_an_open_file_are_read_too(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(b"phone\n+12062000001\n")
    assert read_recipients(path).rows == ((2, ("+12062000001",)),)
    assert read_recipients(str(path)).rows == ((2, ("+12062000001",)),)
    with open(path, "rb") as f:
        assert read_recipients(f).rows == ((2, ("+12062000001",)),)


def test_xlsx_numbers_dates_and_blank_rows(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Phone", "Name", "Amount"])
    sheet.append([12062000001, "Ann", 12.5])  # a number typed into a numeric cell
    sheet.append([None, None, None])
    sheet.append(["+447400000001", "Bo", 3])
    buffer = io.BytesIO()
    book.save(buffer)
    table = read_recipients(buffer.getvalue())
    assert table.encoding == "xlsx" and table.delimiter is None
    assert table.rows == ((2, ("12062000001", "Ann", "12.5")), (4, ("+447400000001", "Bo", "3")))
    path = tmp_path / "list.xlsx"
    path.write_bytes(buffer.getvalue())
    assert read_recipients(path).rows == table.rows


def test_unusable_files_say_why() -> None:
    with pytest.raises(RecipientsError, match="no phone column"):
        read_recipients(b"name,city\nAnn,Paris\n")
    with pytest.raises(RecipientsError, match="appears twice"):
        read_recipients(b"phone,Name,name\n1,a,b\n")
    with pytest.raises(RecipientsError, match="no rows"):
        read_recipients(b"\n\n")
    with pytest.raises(RecipientsError, match="xls"):
        read_recipients(b"\xd0\xcf\x11\xe0rest")
    with pytest.raises(RecipientsError, match="workbook"):
        read_recipients(b"PK\x03\x04not really a zip")


def test_template_fields_literal_braces_and_rendering() -> None:
    tpl = parse_template("Hi {name}, {{not a field}} {name} {code:>4}", ["phone", "Name", "code"])
    assert tpl.fields == ("name", "code")
    assert tpl.render({"name": "Ann", "code": "7"}) == "Hi Ann, {not a field} Ann    7"


def test_an_unknown_placeholder_is_named() -> None:
    with pytest.raises(RecipientsError, match=r"unknown placeholder \{frist_name\}"):
        parse_template("Hi {frist_name}", ["phone", "first_name"])


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("Hi {name", "malformed"),
        ("Hi name}", "malformed"),
        ("Hi {}", "not a column name"),
        ("Hi {0}", "not a column name"),
        ("Hi {name.__class__}", "not a column name"),
        ("Hi {name[0]}", "not a column name"),
        ("Hi {name:{width}}", "nested"),
        ("Hi {name:d}", "name:d"),
        ("   ", "empty"),
    ],
)
def test_malformed_templates_are_refused(template: str, match: str) -> None:
    with pytest.raises(RecipientsError, match=match):
        parse_template(template, ["name", "width"])


def test_sender_ids() -> None:
    assert check_sender("Shop") is None
    assert check_sender("+12065550100") is None
    assert check_sender("TwelveChars1") is not None
    assert check_sender("Shop & Co") is not None


_COLUMNS = ["Name", "code", "First name", "name"]  # "Name" and "name": one key, the last wins
_template_part = st.one_of(
    st.text(alphabet="ab {}é€\n", max_size=6).map(
        lambda t: t.replace("{", "{{").replace("}", "}}")
    ),
    st.sampled_from(["{Name}", "{code}", "{first_name}", "{ code }", "{code!r}", "{Name:>8}"]),
    st.sampled_from(["{code!s:*^9}", "{name!a}", "{CODE:.2}"]),
)


@given(
    st.lists(_template_part, min_size=1, max_size=8).map("".join).filter(str.strip),
    st.lists(st.text(max_size=8), min_size=4, max_size=4),
)
def test_the_renderer_of_rows_renders_as_render_does(template: str, cells: list[str]) -> None:
    tpl = parse_template(template, _COLUMNS)
    keys = [column_key(c) for c in _COLUMNS]
    expected = tpl.render(dict(zip(keys, cells, strict=True)))
    assert tpl.renderer(keys)(*cells) == expected


@pytest.mark.parametrize(
    ("template", "said"),
    [
        ("Hi {name", "a { is never closed"),
        ("Hi name}", "a } with no { before it"),
        ("Hi {name:>>>}", "write just {name}"),
    ],
)
def test_a_malformed_template_is_explained_for_a_person(template: str, said: str) -> None:
    """Python's own words ("Single '{' encountered in format string") never reach the page."""
    with pytest.raises(RecipientsError) as caught:
        parse_template(template)
    message = str(caught.value)
    assert said in message
    assert "format string" not in message and "Single" not in message
