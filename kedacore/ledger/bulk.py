"""Many rows in one statement, without SQLAlchemy's per-row parameter processing.

``conn.execute(insert(table), rows)`` passes every row through SQLAlchemy's parameter
processing — about 5 µs for a row of a dozen columns (more with a time column, whose UTC
conversion and SQLite text formatting run for each row), before the database sees it: more
than SQLite then takes to store it. A campaign's plan is 10,000 batch rows at once, and the
engine records its answers in groups of hundreds of task, message and batch rows.

:func:`execute_many` compiles the statement for the connection's dialect (SQLAlchemy Core:
the SQL stays portable) and gives the rows to the driver's ``executemany`` as they are. What
is the same for every row goes in the statement: a literal (a state, a flag), or a named
``bindparam`` given once per call (a time) — each converted once by its type. The values of
the rows must be what the driver takes as is: the columns they fill must have no bind
processor on the dialect (integers, strings — checked when the statement is compiled), and
every column with a Python-side default must be given.
tests/kedacore/ledger/test_ledger_bulk.py holds the stored rows equal to SQLAlchemy's own
``execute``.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql.dml import UpdateBase

# Prepared statements by (dialect, statement, keys of the rows): statements built once, at
# module level (a statement built per call would only fill this; it is cleared past 256).
_PREPARED: dict[tuple[Any, ...], _Prepared] = {}


class _Prepared:
    """A statement compiled for one dialect, and how a row becomes the driver's parameters."""

    def __init__(self, conn: Connection, stmt: UpdateBase, keys: tuple[str, ...]) -> None:
        dialect = conn.dialect
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
        prefetch = [*compiled.insert_prefetch, *compiled.update_prefetch]
        if prefetch:  # a Python-side default SQLAlchemy would compute per row
            raise ValueError(f"give {[c.name for c in prefetch]} in the rows or the statement")
        missing = set(keys) - set(compiled.binds)
        if missing:
            raise ValueError(f"no parameter {sorted(missing)} in the statement")
        self.sql = compiled.string
        self.keys = keys
        self.literals: dict[str, Any] = {}  # values written in the statement, converted
        self.converters: dict[str, Any] = {}  # the per-call values' conversions (or None)
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if name in keys:
                if process is not None:  # SQLAlchemy would convert it: the driver cannot
                    raise ValueError(f"{name!r} needs converting: give it once per call")
            elif bind.value is None and bind.callable is None and bind.required:
                self.converters[name] = process
            else:
                value = bind.effective_value
                self.literals[name] = process(value) if process is not None else value
        self.order = tuple(compiled.positiontup or ()) if compiled.positional else None

    def parameters(self, rows: Sequence[Sequence[Any]], same: dict[str, Any]) -> list[Any]:
        """The driver's parameters: one tuple (or dict, for a named paramstyle) per row."""
        if set(same) != set(self.converters):
            raise TypeError(f"give {sorted(self.converters)} once per call, got {sorted(same)}")
        shared = dict(self.literals)
        for name, process in self.converters.items():
            shared[name] = process(same[name]) if process is not None else same[name]
        keys = self.keys
        if self.order is None:
            return [{**shared, **dict(zip(keys, row, strict=True))} for row in rows]
        if self.order == keys:
            return list(rows)
        at = {key: i for i, key in enumerate(keys)}
        at.update({name: len(keys) + i for i, name in enumerate(shared)})
        tail = tuple(shared.values())
        if len(self.order) == 1:
            (only,) = (at[name] for name in self.order)
            return [((tuple(row) + tail)[only],) for row in rows]
        get = itemgetter(*(at[name] for name in self.order))
        return [get(tuple(row) + tail) for row in rows]


def execute_many(
    conn: Connection,
    stmt: UpdateBase,
    keys: Sequence[str],
    rows: Sequence[Sequence[Any]],
    **same: Any,
) -> None:
    """Execute ``stmt`` once per row, in one ``executemany``.

    Args:
        stmt: an INSERT or UPDATE (SQLAlchemy Core), built once: bind parameters named
            ``keys`` take each row's values, other bind parameters without a value take
            ``same``, literals stay as written.
        keys: the names of the rows' values (an INSERT's column keys, or bindparam names).
        rows: tuples in ``keys`` order, of values the driver takes as they are.
        same: the values every row shares, converted once by their types.
    """
    if not rows:
        return
    key = (conn.dialect, stmt, tuple(keys))
    prepared = _PREPARED.get(key)
    if prepared is None:
        if len(_PREPARED) >= 256:
            _PREPARED.clear()
        prepared = _PREPARED[key] = _Prepared(conn, stmt, tuple(keys))
    conn.exec_driver_sql(prepared.sql, prepared.parameters(rows, same))
