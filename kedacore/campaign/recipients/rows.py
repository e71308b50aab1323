"""The row collector every reader feeds (:class:`_Rows`): the header's checks at once, each
row's limits as it comes, short rows padded, long ones broken (or widened, in a workbook)."""

from __future__ import annotations

from kedacore.campaign.recipients.columns import (
    COUNTRY_COLUMNS,
    PHONE_COLUMNS,
    SENDER_COLUMNS,
    RecipientFile,
    _find,
    column_key,
)
from kedacore.campaign.recipients.limits import (
    RecipientLimits,
    RecipientsError,
    _cell_too_long,
    _too_many_columns,
    _too_many_rows,
)


class _Rows:
    """The rows as they are read: the header's checks at once, each row's as it comes.

    Nothing is kept but the rows themselves. A column whose first thousand values repeat
    (country, sender, a first name) keeps one string per distinct value instead of one per
    row.
    """

    POOL_AFTER = 1_000  # rows looked at before choosing the columns to share values of
    POOL_DISTINCT = 100  # at most this many distinct values among them: shared
    POOL_SIZE = 10_000  # values kept per shared column

    def __init__(self, limits: RecipientLimits, *, widen: bool = False) -> None:
        self.limits = limits
        self.widen = widen  # a workbook: values right of the header make unnamed columns
        self.header: list[str] | None = None
        self.header_row = 0
        self.width = 0
        self.rows: list[tuple[int, tuple[str, ...]]] = []
        self.broken: list[tuple[int, str]] = []
        self.pools: list[tuple[int, dict[str, str]]] | None = None
        self.wider = 0  # the widest row kept (widen)
        self.named: dict[str, str] = {}

    def add(self, number: int, cells: list[str]) -> None:
        """A record of the file (not blank); the first is the header."""
        limits = self.limits
        if cells and max(map(len, cells)) > limits.cell_chars:
            raise _cell_too_long(limits, number)
        if self.header is None:
            if len(cells) > limits.columns:
                raise _too_many_columns(limits)
            self.header, self.header_row = [c.strip() for c in cells], number
            self.width = len(cells)
            self._check_header()
            return
        if number - self.header_row > limits.rows:
            raise _too_many_rows(limits)
        row = tuple(map(str.strip, cells))
        width = self.width
        if len(row) != width:
            if len(row) < width:
                row += ("",) * (width - len(row))
            elif not any(row[width:]):
                row = row[:width]
            elif self.widen:  # kept whole: table() widens the header
                self.wider = max(self.wider, len(row))
            else:
                self.broken.append((number, f"{len(row)} fields where the header has {width}"))
                return
        if self.pools is not None:
            if self.pools:
                cells = list(row)
                for at, pool in self.pools:
                    value = cells[at]
                    cells[at] = pool.get(value) or self._pool(pool, value)
                row = tuple(cells)
        elif len(self.rows) == self.POOL_AFTER:
            self._choose_pools()
        self.rows.append((number, row))

    def add_broken(self, number: int, why: str) -> None:
        if self.header is None or number <= self.header_row:
            return  # before the header: not a row of the table
        if number - self.header_row > self.limits.rows:
            raise _too_many_rows(self.limits)
        self.broken.append((number, why))

    def _pool(self, pool: dict[str, str], value: str) -> str:
        if len(pool) < self.POOL_SIZE:
            pool[value] = value
        return value

    def _choose_pools(self) -> None:
        self.pools = []
        for at in range(self.width):
            values = {cells[at] for _, cells in self.rows}
            if len(values) <= self.POOL_DISTINCT:
                self.pools.append((at, {v: v for v in values}))
        if self.pools:  # the rows so far share them too
            for i, (number, row) in enumerate(self.rows):
                cells = list(row)
                for at, pool in self.pools:
                    cells[at] = pool[cells[at]]
                self.rows[i] = (number, tuple(cells))

    def _check_header(self) -> None:
        assert self.header is not None
        seen: dict[str, str] = {}
        for column in self.header:
            if column:
                if column_key(column) in seen:
                    raise RecipientsError(f"the column {column!r} appears twice in the header")
                seen[column_key(column)] = column
        self.named = seen
        if _find(seen, PHONE_COLUMNS) is None:
            header = ", ".join(seen.values()) or "empty"
            if len(header) > 200:  # the message is shown whole: a header can be 200,000
                header = header[:200] + "…"
            raise RecipientsError(
                f"no phone column: name one of {', '.join(PHONE_COLUMNS[:6])}… "
                f"(the header is {header})"
            )

    def table(self, encoding: str, delimiter: str | None) -> RecipientFile:
        if self.header is None:
            raise RecipientsError("the file has no rows")
        columns = self.header
        if self.wider > self.width:
            # A workbook's header spans every column used below it (unnamed ones ""), as the
            # spreadsheet shows it: values right of the named columns are not an error there.
            columns = columns + [""] * (self.wider - self.width)
            width = len(columns)
            for i, (number, cells) in enumerate(self.rows):
                if len(cells) < width:
                    self.rows[i] = (number, cells + ("",) * (width - len(cells)))
        return RecipientFile(
            columns=tuple(columns),
            rows=tuple(self.rows),
            broken=tuple(sorted(self.broken)),
            phone_column=_find(self.named, PHONE_COLUMNS) or "",
            country_column=_find(self.named, COUNTRY_COLUMNS),
            sender_column=_find(self.named, SENDER_COLUMNS),
            encoding=encoding,
            delimiter=delimiter,
        )
