"""The ledger's schema, upgraded in place (Alembic; revisions in ``kedacore/ledger/migrations``).

``upgrade(engine)`` runs on every ``Ledger(...)`` open:

- a ledger at head: one ``SELECT version_num FROM alembic_version``, nothing else;
- a new, empty database: ``schema.metadata.create_all``, the audit log's triggers, stamped at
  head (a test shows this is the schema the revisions give: ``differences`` is empty);
- an older ledger — at an earlier revision, or made before migrations (tables but no
  ``alembic_version``: the baseline revision brings any of them to Step 8's schema) — runs the
  revisions up to head.

Made or upgraded once, whoever opens at the same moment (console replicas, workers): the work
is done in one transaction that first takes a lock — PostgreSQL ``pg_advisory_xact_lock``,
SQLite ``BEGIN IMMEDIATE`` (the database's write lock) — and reads the version again under it;
whoever waited finds the ledger at head and does nothing. PostgreSQL's DDL is transactional
(SQLite's too, here): an upgrade that fails leaves the ledger as it was.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Dialect, Engine, insert, inspect, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.schema import CreateIndex, CreateTable

from kedacore.ledger import rollup
from kedacore.ledger import schema as s
from kedacore.ledger.audit import protect_audit_log

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = s.alembic_version.name
# pg_advisory_xact_lock(class, id) held while the schema is made or upgraded: its own class,
# apart from the messages' (engine.MESSAGE_LOCK_CLASS, "KEDA").
UPGRADE_LOCK = (0x4B45444D, 1)  # "KEDM"
_LOCK = text("SELECT pg_advisory_xact_lock(:cls, :key)")
_WRITE = {"kedacore_ledger_write": True}  # engine._WRITE: BEGIN IMMEDIATE on SQLite
SQLITE_LOCK_WAIT_S = 600.0  # a long upgrade elsewhere: wait for it (busy timeouts, retried)


class LedgerTooNew(RuntimeError):
    """The ledger is at a revision this code does not know (a newer release upgraded it)."""


@dataclass(frozen=True)
class Upgraded:
    """What ``upgrade`` found and did."""

    before: str | None  # the revision found (None: no alembic_version)
    after: str
    action: str  # "current" (nothing to do), "created" (a new ledger), "upgraded"


def config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, in code (no alembic.ini)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def script() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def head() -> str:
    """The newest revision (there is one line of revisions, no branches)."""
    found = script().get_current_head()
    assert found is not None
    return found


def _version(conn: Connection) -> str | None:
    rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(rows) > 1:
        raise RuntimeError(f"{VERSION_TABLE} holds several revisions: {sorted(rows)}")
    return rows[0] if rows else None


def current(engine: Engine) -> str | None:
    """The ledger's revision; None when it has no ``alembic_version`` (new, or from before
    migrations)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        return _version(conn)


def upgrade(engine: Engine, *, now: Callable[[], datetime] | None = None) -> Upgraded:
    """Bring the ledger to head (see the module's docstring). ``now``: the rollup's clock."""
    target = head()
    with engine.connect() as conn:  # the common case: one SELECT
        try:
            found = _version(conn)
        except DBAPIError:  # no alembic_version (PostgreSQL: its transaction is aborted)
            conn.rollback()
            found = None
    if found == target:
        return Upgraded(found, target, "current")
    if engine.dialect.name != "sqlite":
        return _locked_upgrade(engine, target, now)
    deadline = time.monotonic() + SQLITE_LOCK_WAIT_S
    while True:  # BEGIN IMMEDIATE waits out the busy timeout; a long upgrade may take longer
        try:
            return _locked_upgrade(engine, target, now)
        except OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise


def _locked_upgrade(engine: Engine, target: str, now: Callable[[], datetime] | None) -> Upgraded:
    with engine.connect() as conn:
        conn.execution_options(**_WRITE)
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(_LOCK, {"cls": UPGRADE_LOCK[0], "key": UPGRADE_LOCK[1]})
            tables = set(inspect(conn).get_table_names())
            found = _version(conn) if VERSION_TABLE in tables else None
            if found == target:  # someone else did it while this waited for the lock
                return Upgraded(found, target, "current")
            if found is not None and found not in {r.revision for r in script().walk_revisions()}:
                raise LedgerTooNew(
                    f"the ledger is at revision {found}, which this code does not know (its "
                    f"newest is {target}): run the release that upgraded it, or a later one"
                )
            ledger_tables = set(s.metadata.tables) - {VERSION_TABLE}
            if found is None and not tables & ledger_tables:
                _create(conn, target, tables)
                return Upgraded(None, target, "created")
            cfg = config(conn)
            command.upgrade(cfg, target)
            if cfg.attributes.get("rebuild_rollup"):  # a ledger from before the rollup
                rollup.rebuild_in(conn, (now or _utcnow)())
            return Upgraded(found, target, "upgraded")


def _create(conn: Connection, target: str, have: set[str]) -> None:
    """A new ledger: today's tables (what ``metadata.create_all`` makes, its DDL compiled once
    per process: tests make thousands of ledgers), the audit log's triggers, stamped at head."""
    for table, statements in _ddl(type(conn.dialect)):
        if table not in have:
            for statement in statements:
                conn.exec_driver_sql(statement)
    protect_audit_log(conn)
    conn.execute(insert(s.alembic_version), {"version_num": target})


@functools.cache
def _ddl(dialect_class: type[Dialect]) -> list[tuple[str, list[str]]]:
    """(table, its CREATE TABLE and CREATE INDEX statements), in the order of the foreign keys."""
    engine_dialect = dialect_class()
    out = []
    for table in s.metadata.sorted_tables:
        statements = [str(CreateTable(table).compile(dialect=engine_dialect)).strip()]
        statements += [
            str(CreateIndex(index).compile(dialect=engine_dialect)).strip()
            for index in sorted(table.indexes, key=lambda i: i.name or "")
        ]
        out.append((table.name, statements))
    return out


def _utcnow() -> datetime:
    return datetime.now(UTC)


def history() -> list[tuple[str, str | None, str]]:
    """(revision, the one it follows, its first line), oldest first."""
    out = []
    for rev in script().walk_revisions():
        down = rev.down_revision
        out.append((rev.revision, down if isinstance(down, str) else None, rev.doc or ""))
    return out[::-1]


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """What Alembic's compare and autogenerate look at: the ledger's tables only — not its own
    (in the metadata so that ``drop_all`` empties a ledger, but made by no revision), nor
    another's in the same database (procrastinate's jobs: never a ``drop_table`` in a draft)."""
    if type_ != "table":
        return True
    return name != VERSION_TABLE and name in s.metadata.tables


def differences(engine: Engine) -> list[Any]:
    """How the database's schema differs from ``schema.metadata`` (Alembic's compare_metadata,
    types included, Alembic's own table left out): empty when they agree."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": include_name}
        )
        return list(compare_metadata(context, s.metadata))
