"""A workbook's zip, opened only once its directory shows nothing over the limits: parts,
their unpacked size in all, each large part's packing ratio, no encryption."""

from __future__ import annotations

import io
import lzma
import struct
import zipfile
import zlib
from xml.parsers import expat

from kedacore.campaign.recipients.limits import (
    _XLSX_DIRECTORY,
    XLSX_MAX_PARTS,
    XLSX_RATIO_FROM,
    RecipientLimits,
    RecipientsError,
    _over,
    _workbook_too_big,
)


def _damaged(why: str) -> RecipientsError:
    return RecipientsError(f"cannot read this workbook: {why}")


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
