"""Workbooks written by hand, part by part: ordinary ones, and the hostile shapes a recipients
file can take (a shared string that unpacks to a gigabyte, a zip directory that lies, a DTD,
a cell at Excel's last column)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from xml.sax.saxutils import escape

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"

_SHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml"
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_SHEET_TYPE}.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    f'ContentType="{_SHEET_TYPE}.worksheet+xml"/>'
    "</Types>"
)
SHARED_TYPE = (
    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_SHEET_TYPE}.sharedStrings+xml"/>'
)
ROOT_RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PACKAGE_RELS}">'
    f'<Relationship Id="rId1" Type="{RELS}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
WORKBOOK = (
    f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" xmlns:r="{RELS}">'
    '<sheets><sheet name="Recipients" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PACKAGE_RELS}">'
    f'<Relationship Id="rId1" Type="{RELS}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{RELS}/sharedStrings" Target="sharedStrings.xml"/>'
    "</Relationships>"
)


def sheet_xml(rows: list[list[str]] | None = None, cells: str | None = None) -> str:
    """A worksheet of inline strings (``rows``), or of the ``<row>`` elements given."""
    if cells is None:
        cells = "".join(
            f'<row r="{r}">'
            + "".join(
                f'<c r="{_column(c)}{r}" t="inlineStr"><is><t>{escape(v)}</t></is></c>'
                for c, v in enumerate(row)
            )
            + "</row>"
            for r, row in enumerate(rows or [], start=1)
        )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}">'
        f"<sheetData>{cells}</sheetData></worksheet>"
    )


def _column(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def workbook(
    sheet: str | bytes,
    shared: str | bytes | None = None,
    extra: dict[str, bytes] | None = None,
    *,
    shared_type: bool = False,
) -> bytes:
    """An .xlsx of the given worksheet (and shared strings), deflated; ``shared_type`` lists
    the shared strings part in the content types when it is added afterwards."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as book:
        types = CONTENT_TYPES
        if shared is not None or shared_type:
            types = types.replace("</Types>", SHARED_TYPE + "</Types>")
        book.writestr("[Content_Types].xml", types)
        book.writestr("_rels/.rels", ROOT_RELS)
        book.writestr("xl/workbook.xml", WORKBOOK)
        book.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        book.writestr("xl/worksheets/sheet1.xml", sheet)
        if shared is not None:
            book.writestr("xl/sharedStrings.xml", shared)
        for name, data in (extra or {}).items():
            book.writestr(name, data)
    return buffer.getvalue()


def shared_string_bomb(unpacked: int, declared: int | None = None) -> bytes:
    """A workbook whose one shared string unpacks to ``unpacked`` bytes of "A" (1 GiB packs
    into about 1 MB: deflate's best ratio is ~1,000), used by the sheet's header cell; its
    zip directory declares ``declared`` bytes (a lie, when given)."""
    head = f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN}"><si><t>'.encode()
    tail = b"</t></si></sst>"
    # After a full flush deflate starts afresh, so every megabyte of "A" packs to the same
    # bytes: packed once, repeated.
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = [packer.compress(head) + packer.flush(zlib.Z_FULL_FLUSH)]
    crc = zlib.crc32(head)
    block = b"A" * (1 << 20)
    whole, rest = divmod(unpacked, len(block))
    block_packed = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    packed += [block_packed] * whole
    for _ in range(whole):
        crc = zlib.crc32(block, crc)
    packed.append(packer.compress(block[:rest]) + packer.compress(tail) + packer.flush())
    crc = zlib.crc32(tail, zlib.crc32(block[:rest], crc))
    size = len(head) + unpacked + len(tail)
    sheet = sheet_xml(cells='<row r="1"><c r="A1" t="s"><v>0</v></c></row>')
    return _with_raw_member(
        workbook(sheet, shared_type=True),
        "xl/sharedStrings.xml",
        b"".join(packed),
        crc,
        size,
        declared or size,
    )


def _with_raw_member(
    base: bytes, name: str, packed: bytes, crc: int, size: int, declared: int
) -> bytes:
    """``base`` (a zip) with one more deflated member written from its packed bytes, its
    directory entry declaring ``declared`` bytes unpacked (a liar when it is not ``size``)."""
    data = base
    end = data.rfind(b"PK\x05\x06")
    entries, directory_size, directory_at = struct.unpack("<HII", data[end + 10 : end + 20])
    directory = bytes(data[directory_at : directory_at + directory_size])
    local_at = directory_at
    encoded = name.encode()
    local = (
        struct.pack(
            "<4s5H3I2H",
            b"PK\x03\x04",
            20,
            0,
            zipfile.ZIP_DEFLATED,
            0,
            0x21,
            crc,
            len(packed),
            declared,
            len(encoded),
            0,
        )
        + encoded
        + packed
    )
    central = (
        struct.pack(
            "<4s6H3I5H2I",
            b"PK\x01\x02",
            20,
            20,
            0,
            zipfile.ZIP_DEFLATED,
            0,
            0x21,
            crc,
            len(packed),
            declared,
            len(encoded),
            0,
            0,
            0,
            0,
            0,
            local_at,
        )
        + encoded
    )
    new_directory_at = local_at + len(local)
    new_directory = directory + central
    end_record = struct.pack(
        "<4s4H2IH",
        b"PK\x05\x06",
        0,
        0,
        entries + 1,
        entries + 1,
        len(new_directory),
        new_directory_at,
        0,
    )
    return data[:directory_at] + local + new_directory + end_record


def entity_bomb() -> bytes:
    """Billion laughs in the shared strings: ten levels of ten references each."""
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    ]
    shared = (
        f'<?xml version="1.0"?><!DOCTYPE sst [{"".join(levels)}]>'
        f'<sst xmlns="{MAIN}"><si><t>&lol9;</t></si></sst>'
    )
    return workbook(sheet_xml(cells='<row r="1"><c r="A1" t="s"><v>0</v></c></row>'), shared)
