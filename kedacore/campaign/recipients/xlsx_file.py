"""The first worksheet of an XLSX, read by the console itself part by part through expat, so
that every limit holds while it is read; values as openpyxl reads them (a test holds the two
equal). The zip is checked before any XML is read (:mod:`.xlsx_zip`)."""

from __future__ import annotations

import zipfile
from array import array
from collections.abc import Callable, Iterator
from itertools import accumulate
from posixpath import dirname, join, normpath
from typing import Any
from xml.parsers import expat

from kedacore.campaign.recipients.limits import (
    XLSX_MAX_PARTS,
    RecipientLimits,
    RecipientsError,
    _cell_too_long,
    _too_many_columns,
    _workbook_too_big,
)
from kedacore.campaign.recipients.rows import _Rows
from kedacore.campaign.recipients.xlsx_zip import _WORKBOOK_ERRORS, _damaged, _open_workbook

_XML_CHUNK = 64 * 1024  # XML fed to the parser at a time
XLSX_MAX_STYLES = 65_536  # cell formats (Excel allows 64,000)
_EXCEL_ROWS = 1_048_576
_EXCEL_COLUMNS = 16_384


class _Stop(Exception):
    """Raised by a handler when the rest of the part is not needed."""


def _read_xlsx(data: bytes, limits: RecipientLimits, rows: _Rows) -> None:
    book = _open_workbook(data, limits)
    try:
        with book:
            _Workbook(book, limits).read(rows)
    except RecipientsError:
        raise
    except _WORKBOOK_ERRORS as exc:  # a damaged zip or XML has many ways to fail
        raise _damaged(str(exc) or type(exc).__name__) from None


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
