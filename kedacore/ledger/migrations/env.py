"""Alembic's environment for the ledger.

Run through :mod:`kedacore.ledger.migrate` (``Ledger(...)`` on open, ``python -m kedacore.ledger
upgrade``), which passes the connection in ``config.attributes["connection"]`` inside the
transaction that holds its lock (PostgreSQL: an advisory lock; SQLite: ``BEGIN IMMEDIATE``):
the revisions run in that transaction and Alembic neither begins nor commits one of its own.
Importing this module outside Alembic (a tool walking every module) does nothing.
"""

from __future__ import annotations

from alembic import context

from kedacore.ledger import schema
from kedacore.ledger.migrate import VERSION_TABLE, include_name


def run_migrations() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "run the ledger's migrations through kedacore.ledger.migrate "
            "(python -m kedacore.ledger upgrade), which passes the connection and takes the lock"
        )
    context.configure(
        connection=connection,
        target_metadata=schema.metadata,
        include_name=include_name,
        compare_type=True,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


if getattr(context, "config", None) is not None:  # run by Alembic, not merely imported
    run_migrations()
