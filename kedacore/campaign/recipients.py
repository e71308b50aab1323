"""A campaign's recipients file (CSV or XLSX) and its message template.

:func:`read_recipients` turns the file into rows of text — encoding and delimiter detected,
rows that cannot be read kept (with their row number) instead of dropped — and finds the
phone, country and sender columns; every column is a variable for :func:`parse_template`.
``kedacore.campaign.plan`` validates the rows, renders the texts and groups them into requests.
"""

from __future__ import annotations

import csv
import io
import os
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

# Column names are compared after column_key(): case, spaces, "_" and "-" do not matter.
PHONE_COLUMNS = ("phone", "phonenumber", "number", "mobile", "mobilenumber", "msisdn", "cell")
PHONE_COLUMNS += ("cellphone", "tel", "telephone", "recipient")
COUNTRY_COLUMNS = ("country", "countrycode", "region", "iso")
SENDER_COLUMNS = ("sender", "senderid")
DELIMITERS = ",;\t|"


class RecipientsError(ValueError):
    """The file or the template cannot be used at all (no phone column, unknown placeholder…)."""


def column_key(name: str) -> str:
    """A column name as placeholders and known names are matched: case, spaces, _ and - ignored."""
    return "".join(ch for ch in name.casefold() if ch not in " _-\t")


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
) -> RecipientFile:
    """Read a CSV or XLSX of recipients; row numbers are as in the file (the header is row 1).

    Args:
        source: the file's bytes, its path, or an open binary file (Streamlit's upload).
        filename: the name, when ``source`` is bytes (``.xlsx`` picks the workbook reader).
        encoding: the CSV's encoding; by default a BOM, else UTF-8, else GB18030 (only when
            it yields CJK text), else Windows-1252.
    """
    if isinstance(source, (str, os.PathLike)):
        filename = filename or os.fspath(source)
        data = Path(source).read_bytes()
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        filename = filename or getattr(source, "name", None)
        data = source.read()
    if data[:4] == b"\xd0\xcf\x11\xe0":
        raise RecipientsError("this is an old Excel .xls file: save it as .xlsx or .csv")
    if data[:4] == b"PK\x03\x04" or (filename or "").lower().endswith((".xlsx", ".xlsm")):
        records, broken, used, delimiter = _xlsx_records(data), [], "xlsx", None
    else:
        text, used = _decode(data, encoding)
        delimiter = _delimiter(text)
        records, broken = _csv_records(text, delimiter)
    return _table(records, broken, used, delimiter)


def _decode(data: bytes, encoding: str | None) -> tuple[str, str]:
    if encoding:
        return data.decode(encoding), encoding
    for bom, name in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(name), name
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    # Excel saves "CSV" in the system's code page: GBK in China, 1252 in the West. GB18030
    # decodes most byte soups, so it is believed only when the text it yields is Chinese.
    try:
        text = data.decode("gb18030")
        if any("\u4e00" <= ch <= "\u9fff" for ch in text):
            return text, "gb18030"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _delimiter(text: str) -> str:
    """The delimiter the header line uses most (a single-column file has none: ",")."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_records(
    text: str, delimiter: str
) -> tuple[list[tuple[int, list[str]]], list[tuple[int, str]]]:
    lines = text.splitlines(keepends=True)
    records: list[tuple[int, list[str]]] = []
    broken: list[tuple[int, str]] = []
    start = 0  # lines before this one are done
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
                    # An unclosed quote swallowed the rest of the file: read on from the
                    # line after the one it opened on.
                    start = first
                    break
                continue
            if any(c.strip() for c in cells):
                records.append((start + before + 1, cells))
    return records, broken


def _xlsx_records(data: bytes) -> list[tuple[int, list[str]]]:
    import openpyxl  # only workbooks need it

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise RecipientsError(f"cannot read this workbook: {exc}") from None
    try:
        sheet = book.worksheets[0]
        records = []
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_cell_text(v) for v in values]
            if any(cells):
                records.append((number, cells))
        return records
    finally:
        book.close()


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone number typed into a numeric cell
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value).strip()


def _table(
    records: list[tuple[int, list[str]]],
    broken: list[tuple[int, str]],
    encoding: str,
    delim: str | None,
) -> RecipientFile:
    if not records:
        raise RecipientsError("the file has no rows")
    header_row, header = records[0]
    columns = [c.strip() for c in header]
    named = [c for c in columns if c]
    seen: dict[str, str] = {}
    for column in named:
        if column_key(column) in seen:
            raise RecipientsError(f"the column {column!r} appears twice in the header")
        seen[column_key(column)] = column
    phone = _find(seen, PHONE_COLUMNS)
    if phone is None:
        raise RecipientsError(
            f"no phone column: name one of {', '.join(PHONE_COLUMNS[:6])}… "
            f"(the header is {', '.join(named) or 'empty'})"
        )
    width = len(columns)
    rows = []
    for number, cells in records[1:]:
        cells = [c.strip() for c in cells]
        extra = [c for c in cells[width:] if c]
        if extra:
            broken.append((number, f"{len(cells)} fields where the header has {width}"))
            continue
        rows.append((number, tuple(cells[:width] + [""] * (width - len(cells)))))
    broken = [(n, why) for n, why in broken if n > header_row]
    return RecipientFile(
        columns=tuple(columns),
        rows=tuple(rows),
        broken=tuple(sorted(broken)),
        phone_column=phone,
        country_column=_find(seen, COUNTRY_COLUMNS),
        sender_column=_find(seen, SENDER_COLUMNS),
        encoding=encoding,
        delimiter=delim,
    )


def _find(columns: Mapping[str, str], names: Sequence[str]) -> str | None:
    return next((columns[n] for n in names if n in columns), None)


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
    "PHONE_COLUMNS",
    "SENDER_COLUMNS",
    "RecipientFile",
    "RecipientsError",
    "Template",
    "check_sender",
    "column_key",
    "parse_template",
    "read_recipients",
]
