"""Reading a recipients file into a :class:`RecipientFile`: its bytes (refused over the size
limit before they are read), then the workbook or the CSV reader."""

from __future__ import annotations

import os
from typing import BinaryIO

from kedacore.campaign.recipients.columns import RecipientFile
from kedacore.campaign.recipients.csv_file import _read_csv
from kedacore.campaign.recipients.limits import (
    RecipientLimits,
    RecipientsError,
    _too_large,
)
from kedacore.campaign.recipients.rows import _Rows
from kedacore.campaign.recipients.xlsx_file import _read_xlsx


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
