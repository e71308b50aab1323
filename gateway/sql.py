"""Hot-path statements: SQLAlchemy Core compiled once, run straight on the sqlite3 driver.

SQLAlchemy's per-execution bookkeeping costs ~40 µs a statement, more than SQLite itself;
a send runs about ten. ``Prepared`` keeps the statement written in Core (tables, columns,
upserts) but compiles it once to SQL with named parameters and runs it on the driver's
connection, inside the transaction SQLAlchemy opened. Parameters must be complete (no
Python-side column defaults apply) and rows come back as plain tuples.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import Executable

_DIALECT = sqlite.dialect(paramstyle="named")


class Prepared:
    """One Core statement, compiled once for the sqlite3 driver."""

    def __init__(self, statement: Executable) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        self.sql = str(compiled)
        # Literal values written into the statement (e.g. ``.values(last=1)``) become
        # parameters too; every other parameter must be passed (a missing one is an error).
        self.defaults = {k: v for k, v in compiled.params.items() if v is not None}
        columns = [c.key for c in getattr(statement, "exported_columns", ())]
        self.row = namedtuple("Row", columns, rename=True) if columns else None

    @staticmethod
    def _raw(conn: Connection) -> sqlite3.Connection:
        return conn.connection.driver_connection  # type: ignore[return-value]

    def run(self, conn: Connection, params: Mapping[str, Any]) -> sqlite3.Cursor:
        return self._raw(conn).execute(self.sql, {**self.defaults, **params})

    def run_many(self, conn: Connection, rows: Iterable[Mapping[str, Any]]) -> sqlite3.Cursor:
        defaults = self.defaults
        return self._raw(conn).executemany(self.sql, ({**defaults, **row} for row in rows))

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """The first row (a named tuple of the selected or returned columns), or None."""
        row = self.run(conn, params).fetchone()
        return self.row._make(row) if row is not None and self.row else row

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        rows = self.run(conn, params).fetchall()
        return [self.row._make(r) for r in rows] if self.row else rows
