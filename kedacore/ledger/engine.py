"""The ledger's database engine: SQLite tuned for many small writers, or any SQLAlchemy URL."""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.pool import StaticPool

from kedacore.private import private_dir, sqlite_file
from kedacore.settings import DEFAULT_DATA_DIR

BUSY_TIMEOUT_MS = 15_000
_WRITE = "kedacore_ledger_write"

# PostgreSQL advisory locks on messages: (class, bucket of the msgid). A fixed number of
# buckets, not one lock per msgid: a campaign's group write holds up to 20,000 msgids, and
# that many locks in one transaction would exhaust PostgreSQL's lock table
# (max_locks_per_transaction × max_connections, 6,400 by default).
MESSAGE_LOCK_CLASS = 0x4B454441  # "KEDA"
MESSAGE_LOCK_BUCKETS = 256
_LOCK_BUCKETS = text(
    "SELECT pg_advisory_xact_lock(:cls, b) FROM unnest(CAST(:buckets AS integer[])) AS b"
)


def ledger_url(url: str | None = None, data_dir: str | os.PathLike[str] | None = None) -> str:
    """The database URL: the argument, else KEDA_DATABASE_URL, else ledger.db in the data folder."""
    url = url or os.environ.get("KEDA_DATABASE_URL")
    if url:
        return url
    folder = private_dir(data_dir or os.environ.get("KEDA_DATA_DIR") or DEFAULT_DATA_DIR)
    return f"sqlite:///{folder.resolve() / 'ledger.db'}"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, synchronous=NORMAL, a busy timeout, foreign keys."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    memory = url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in url
    options: dict[str, Any] = {
        "connect_args": {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
    }
    if memory:
        options["poolclass"] = StaticPool
    else:
        options.update(pool_size=8, max_overflow=16)
        database = make_url(url).database
        if database and not database.startswith("file:"):
            sqlite_file(database)  # 0600 before SQLite creates it (and so its -wal, -shm)
    engine = create_engine(url, **options)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the sqlite3 module so that _sqlite_begin decides its kind.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # SQLite's own lower() folds ASCII only; searches (the audit log's) fold as Python does.
    dbapi_connection.create_function("casefold", 1, _casefold, deterministic=True)


def _casefold(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _sqlite_begin(conn: Connection) -> None:
    # A writer reads the rows it is about to change, then writes them: BEGIN IMMEDIATE takes
    # the write lock first (waiting up to the busy timeout), so no other writer can slip in
    # between and no deferred transaction fails to upgrade its lock with SQLITE_BUSY.
    immediate = conn.get_execution_options().get(_WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def message_lock_buckets(msgids: Iterable[str]) -> list[int]:
    """The advisory-lock buckets of these msgids, in the one order every writer takes them."""
    return sorted({zlib.crc32(m.encode()) % MESSAGE_LOCK_BUCKETS for m in msgids})


def lock_messages(conn: Connection, msgids: Iterable[str]) -> None:
    """On PostgreSQL, hold these messages until the transaction ends (SQLite: nothing to do).

    Every write that records messages (a send) or applies something to them (a callback, a
    lookup) takes these locks first, in ascending bucket order (so two writers never wait
    for each other in a circle). Under READ COMMITTED a callback that overtakes its send
    would otherwise find no message while the send's transaction is still open, and the
    send would not see the callback's stored event either: the event would stay ``unknown``
    for ever. With the lock, the second writer waits, and its next statement sees what the
    first committed. SQLite needs none of this: ``BEGIN IMMEDIATE`` serialises every writer.
    A transaction may take the locks again for a subset of its msgids (they are re-entrant)
    but never for new ones after its first call.
    """
    if conn.dialect.name != "postgresql":
        return
    buckets = message_lock_buckets(msgids)
    if buckets:
        conn.execute(_LOCK_BUCKETS, {"cls": MESSAGE_LOCK_CLASS, "buckets": buckets})


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction (committed on success, rolled back on error)."""
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads (one consistent snapshot)."""
    with engine.connect() as conn:
        yield conn
