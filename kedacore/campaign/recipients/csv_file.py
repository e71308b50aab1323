"""A CSV of recipients: its encoding and delimiter, its lines decoded a megabyte at a time and
read by ``csv`` one record at a time, a record that runs on for longer than a row can be
refused, a broken one kept with its row number."""

from __future__ import annotations

import codecs
import csv
from collections import deque
from collections.abc import Iterator

from kedacore.campaign.recipients.encoding import check_encoding, detect_encoding, label
from kedacore.campaign.recipients.limits import (
    MB,
    RecipientLimits,
    RecipientsError,
    _row_too_long,
    _too_many_rows,
)
from kedacore.campaign.recipients.rows import _Rows

DELIMITERS = ",;\t|"


_CHUNK = MB  # bytes decoded at a time


def _read_csv(
    data: bytes, encoding: str | None, limits: RecipientLimits, rows: _Rows
) -> tuple[str, str]:
    """Read the CSV into ``rows``; returns the encoding and the delimiter used."""
    used = check_encoding(encoding) if encoding else detect_encoding(data)
    try:
        lines = _Lines(data, used, limits)
        # The header is the first line that is not blank; its delimiter is the file's.
        for number, line in lines:
            if line.strip():
                lines.replay.append((number, line))
                break
            if number > limits.rows:
                raise _too_many_rows(limits)
        else:
            raise RecipientsError("the file has no rows")
        delimiter = _delimiter(lines.replay[0][1])
        _csv_records(lines, delimiter, limits, rows)
    except _RecordTooLong as exc:
        raise _row_too_long(limits, exc.row) from None
    except UnicodeDecodeError as exc:
        raise RecipientsError(
            f"the file cannot be read as {label(used)} text ({exc.reason}): choose its "
            "encoding, or save it as UTF-8"
        ) from None
    return used, delimiter


def _delimiter(header: str) -> str:
    """The delimiter the header line uses most (a single-column file has none: ",")."""
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class _Lines:
    """The file's lines, numbered from 1 as ``str.splitlines`` splits them, decoded a chunk at
    a time; csv.reader reads them through this, one record at a time.

    ``span`` keeps the lines of the record being read: a record longer than a row can be
    within the limits stops the reading (a quote never closed would otherwise swallow the
    file), and one cut short by the end of the file is read again from its second line.
    """

    def __init__(self, data: bytes, codec: str, limits: RecipientLimits) -> None:
        self.source = enumerate(self._decoded(data, codec, limits.longest_row), start=1)
        self.longest = limits.longest_row
        self.replay: deque[tuple[int, str]] = deque()  # lines to hand out again first
        self.span: list[tuple[int, str]] = []
        self.span_chars = 0
        self._ahead = next(self.source, None)  # one line ahead: is the last one handed out the end?

    @staticmethod
    def _decoded(data: bytes, codec: str, longest: int) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder(codec)()
        view = memoryview(data)
        carry = ""
        count = 0
        for at in range(0, len(view), _CHUNK):
            text = carry + decoder.decode(view[at : at + _CHUNK])
            lines = text.splitlines(keepends=True)
            # The last piece may go on in the next chunk ("\r" then "\n" too): kept for it.
            carry = lines.pop() if lines else ""
            if len(carry) > longest:
                raise _RecordTooLong(count + len(lines) + 1)
            if lines and max(map(len, lines)) > longest:
                raise _RecordTooLong(
                    count + 1 + next(i for i, x in enumerate(lines) if len(x) > longest)
                )
            count += len(lines)
            yield from lines
        yield from (carry + decoder.decode(b"", final=True)).splitlines(keepends=True)

    def __iter__(self) -> Iterator[tuple[int, str]]:
        return self

    def __next__(self) -> tuple[int, str]:
        if self.replay:
            return self.replay.popleft()
        line = self._ahead
        if line is None:
            raise StopIteration
        self._ahead = next(self.source, None)
        return line

    @property
    def done(self) -> bool:
        """Whether the last line handed out is the file's last."""
        return not self.replay and self._ahead is None

    def for_csv(self) -> Iterator[str]:
        """The lines as csv.reader wants them, each added to the record's span."""
        for number, line in self:
            self.span.append((number, line))
            self.span_chars += len(line)
            if self.span_chars > self.longest:
                raise _RecordTooLong(self.span[0][0])
            yield line

    def record_done(self) -> None:
        self.span.clear()
        self.span_chars = 0


class _RecordTooLong(Exception):
    def __init__(self, row: int) -> None:
        self.row = row


def _csv_records(lines: _Lines, delimiter: str, limits: RecipientLimits, rows: _Rows) -> None:
    reader = csv.reader(lines.for_csv(), delimiter=delimiter, strict=True)
    reread = 0  # characters read again after unclosed quotes
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if not lines.span:  # csv reads a line before it can find anything wrong
                raise RecipientsError(f"unreadable CSV: {exc}") from None
            first = lines.span[0][0]
            if "field larger than field limit" in str(exc):  # 131,072 characters
                raise _row_too_long(limits, first) from None
            rows.add_broken(first, f"unreadable CSV: {exc}")
            if lines.done and len(lines.span) > 1:
                # An unclosed quote swallowed the rest of the file: read on from the line
                # after the one it opened on (a bounded number of times: see _Lines).
                reread += lines.span_chars
                if reread > 4 * limits.longest_row:
                    raise _row_too_long(limits, first) from None
                lines.replay.extend(lines.span[1:])
                lines.record_done()
                reader = csv.reader(lines.for_csv(), delimiter=delimiter, strict=True)
            else:
                lines.record_done()
            continue
        span = lines.span
        number = span[0][0]
        span.clear()
        lines.span_chars = 0
        if number - rows.header_row > limits.rows and rows.header is not None:
            raise _too_many_rows(limits)  # blank lines count: a spreadsheet shows them
        if "".join(cells).strip():  # not blank (any cell with more than spaces)
            rows.add(number, cells)
